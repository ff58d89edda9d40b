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

# Twilio error codes that no retry can fix, and their reasons (PROTOCOLS.md D; twilio.com/docs/api/errors).
PERMANENT_ERRORS = {
    "21211": "invalid 'To' phone number",
    "21408": "permission to send to this region is not enabled",
    "21610": "recipient has opted out (replied STOP)",
    "21612": "the 'To' number cannot be reached from this 'From' number",
    "21614": "'To' is not a mobile number",
    "21606": "the 'From' number cannot send SMS",
    "21617": "body exceeds the 1600 character limit",
    "21620": "invalid media URL",
    "21623": "too many media files (at most 10)",
    "30003": "unreachable destination handset",
    "30004": "message blocked",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "carrier filtered the message",
    "30019": "content size exceeds the carrier limit",
    "30032": "toll-free number is not verified",
    "30034": "US A2P 10DLC: the sender is not registered",
}
# Every code we can explain, for failed/undelivered status callbacks that carry only ErrorCode.
ERROR_REASONS = {
    **PERMANENT_ERRORS,
    "20429": "too many requests to the Twilio API",
    "30001": "queue overflow: the sender's queue is full",
    "30002": "account suspended",
    "30008": "unknown error from the carrier",
    "30022": "US A2P 10DLC throughput exceeded",
}
OPT_OUT_ERRORS = {"21610"}
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
        segments = str(response.num_segments or "")
        return SendResult(
            accepted=True,
            provider_message_id=response.sid,
            status="sent",
            raw={"status": response.status, "num_segments": response.num_segments},
            segments=int(segments) if segments.isdigit() else None,
        )

    def classify_error(self, exc: Exception) -> SendResult | None:
        return twilio_error_result(exc, opt_out_codes=OPT_OUT_ERRORS)


def twilio_error_result(exc: Exception, *, opt_out_codes: set[str]) -> SendResult | None:
    """A Twilio API or network error as a failed result: 429/5xx and network errors are retryable."""
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
            opted_out=code in opt_out_codes,
        )
    if isinstance(exc, requests.RequestException):
        return SendResult(
            accepted=False,
            status="failed",
            error_code="network",
            error_message=f"{type(exc).__name__}: {exc}"[:500],
            retryable=True,
            # Sent, but no answer in time: Twilio may have accepted it.
            ambiguous=isinstance(exc, requests.ReadTimeout),
        )
    return None
