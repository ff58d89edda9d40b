"""Twilio Programmable Messaging through the official ``twilio`` SDK (Messages API)."""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ..base import OutboundMessage, OutboundSender, SendResult
from ..registry import register

# Twilio error codes that no retry can fix (PROTOCOLS.md D; twilio.com/docs/api/errors).
PERMANENT_ERRORS = {
    "21211": "invalid 'To' phone number",
    "21408": "permission to send to this region is not enabled",
    "21610": "recipient has opted out (replied STOP)",
    "21612": "the 'To' number cannot be reached from this 'From' number",
    "21614": "'To' is not a mobile number",
    "21606": "the 'From' number cannot send SMS",
    "21617": "body exceeds the 1600 character limit",
    "30003": "unreachable destination handset",
    "30004": "message blocked",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "carrier filtered the message",
}
RETRYABLE_CODES = {"20429", "20500", "20503"}


class _BaseUrlHttpClient(TwilioHttpClient):
    """Sends the SDK's requests to ``TWILIO_API_BASE_URL`` (a regional edge, or a local fake in tests)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if self.base_url != "https://api.twilio.com" and url.startswith("https://api.twilio.com"):
            url = self.base_url + url[len("https://api.twilio.com") :]
        return super().request(method, url, *args, **kwargs)


def twilio_client(config: dict[str, Any]) -> Client:
    account_sid = config.get("account_sid") or settings.TWILIO_ACCOUNT_SID
    auth_token = config.get("auth_token") or settings.TWILIO_AUTH_TOKEN
    base_url = config.get("api_base_url") or settings.TWILIO_API_BASE_URL
    return Client(
        account_sid, auth_token, http_client=_BaseUrlHttpClient(base_url, settings.TWILIO_HTTP_TIMEOUT)
    )


@register
class TwilioSmsSender(OutboundSender):
    provider = "twilio"
    channel_kinds = ("sms",)

    def build_payload(self, message: OutboundMessage) -> dict[str, Any]:
        config = message.channel.config
        payload: dict[str, Any] = {
            "to": message.to,
            "body": message.body,
            "status_callback": message.status_callback_url,
        }
        if config.get("messaging_service_sid"):
            payload["messaging_service_sid"] = config["messaging_service_sid"]
        else:
            payload["from_"] = message.channel.address
        if message.media_urls:
            payload["media_url"] = list(message.media_urls)
        return payload

    def post_to_provider(self, message: OutboundMessage, payload: dict[str, Any]) -> Any:
        return twilio_client(message.channel.config).messages.create(**payload)

    def parse_result(self, response: Any) -> SendResult:
        return SendResult(
            accepted=True,
            provider_message_id=response.sid,
            status="sent",
            raw={"status": response.status, "num_segments": response.num_segments},
        )

    def classify_error(self, exc: Exception) -> SendResult | None:
        if isinstance(exc, TwilioRestException):
            code = str(exc.code or "")
            retryable = exc.status == 429 or exc.status >= 500 or code in RETRYABLE_CODES
            reason = PERMANENT_ERRORS.get(code, "")
            return SendResult(
                accepted=False,
                status="failed",
                error_code=code or str(exc.status),
                error_message=(reason or exc.msg or "provider error")[:500],
                retryable=retryable,
            )
        if isinstance(exc, requests.RequestException):
            return SendResult(
                accepted=False,
                status="failed",
                error_code="network",
                error_message=f"{type(exc).__name__}: {exc}"[:500],
                retryable=True,
            )
        return None
