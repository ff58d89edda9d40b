"""Twilio Programmable Messaging through the official ``twilio`` SDK (Messages API)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from channels_inbound.providers.twilio_errors import OPT_OUT_ERRORS, PERMANENT_ERRORS, RETRYABLE_CODES

from ..base import OutboundMessage, OutboundSender, SendResult, retry_after_seconds
from ..registry import register


class _BaseUrlHttpClient(TwilioHttpClient):
    """Sends the SDK's requests to ``TWILIO_API_BASE_URL`` (a regional edge, or a local fake in tests)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if self.base_url != "https://api.twilio.com" and url.startswith("https://api.twilio.com"):
            url = self.base_url + url[len("https://api.twilio.com") :]
        response = super().request(method, url, *args, **kwargs)
        # The SDK's exceptions drop the headers; a 429's Retry-After is read from here.
        self.last_headers = response.headers or {}
        return response


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
        client = twilio_client(message.channel.config)
        try:
            return client.messages.create(**payload)
        except TwilioRestException as exc:
            _remember_retry_after(exc, client)
            raise

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

    def lookup(
        self, message: OutboundMessage, *, since: datetime, exclude: frozenset[str]
    ) -> SendResult | None:
        """Twilio's Messages list (newest first) filtered by To and From: a message created since
        ``since`` (less a minute of clock skew) with our body that no other interaction recorded.
        ``DateSent`` is not used as a filter: Twilio leaves it empty until the carrier took the message,
        and a message still queued at Twilio is exactly one we must not send again."""
        config = message.channel.config
        service = config.get("messaging_service_sid") or ""
        filters: dict[str, Any] = {"to": message.to}
        if not service:
            filters["from_"] = message.channel.address
        earliest = since - timedelta(minutes=1)
        found = [
            m
            for m in twilio_client(config).messages.list(**filters, limit=100, page_size=100)
            if m.sid not in exclude
            and (m.body or "") == message.body
            and (m.date_created is None or m.date_created >= earliest)
            and (not service or m.messaging_service_sid == service)
        ]
        if not found:
            return None
        match = min(found, key=lambda m: (m.date_created or since, m.sid))
        result = self.parse_result(match)
        return SendResult(
            accepted=True,
            provider_message_id=result.provider_message_id,
            status="sent",
            raw={**result.raw, "reconciled": True},
            segments=result.segments,
        )


def _remember_retry_after(exc: TwilioRestException, client: Client) -> None:
    """The SDK's exception drops the response headers; keep its Retry-After for the retry's delay."""
    headers = getattr(client.http_client, "last_headers", None) or {}
    exc.retry_after = retry_after_seconds(headers.get("Retry-After"))


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
            retry_after=getattr(exc, "retry_after", None),
        )
    if isinstance(exc, requests.RequestException):
        return SendResult(
            accepted=False,
            status="failed",
            error_code="network",
            error_message=f"{type(exc).__name__}: {exc}"[:500],
            retryable=True,
            outcome_unknown=_may_have_arrived(exc),
        )
    return None


def _may_have_arrived(exc: requests.RequestException) -> bool:
    """Did the request possibly reach Twilio? Not when the connection was never made (refused, DNS,
    connect timeout); yes when the answer timed out or the connection dropped after the request left."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ReadTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        from urllib3.exceptions import NewConnectionError

        reason = exc.args[0] if exc.args else None
        return not isinstance(getattr(reason, "reason", reason), NewConnectionError)
    return False
