"""SendGrid v3 Mail Send through the official ``sendgrid`` SDK (PROTOCOLS.md H).

Channel config: ``api_key`` (or settings ``SENDGRID_API_KEY``), optional ``api_base_url`` (EU edge, or a
local fake in tests), ``from_name``. Our interaction id travels as the custom arg ``iid``, which the
Event Webhook echoes as a top-level key; the 202's ``X-Message-Id`` is the prefix of every event's
``sg_message_id``.
"""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils.html import escape
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Content,
    CustomArg,
    Email,
    Header,
    Mail,
    ReplyTo,
    To,
)

from ..base import OutboundMessage, OutboundSender, SendResult, retry_after_seconds
from ..registry import register

DEFAULT_API_BASE_URL = "https://api.sendgrid.com"
# The shared content of a batch: each personalization substitutes its own rendered text and HTML.
SUBSTITUTION_TEXT = "%%ec_text%%"
SUBSTITUTION_HTML = "%%ec_html%%"
# HTTP statuses no retry can fix (twilio.com/docs/sendgrid/api-reference/mail-send/errors).
PERMANENT_STATUSES = {
    400: "SendGrid rejected the message",
    401: "SendGrid API key is not valid",
    403: "SendGrid API key lacks mail.send permission or the sender is not verified",
    413: "message is larger than SendGrid accepts",
}


def sendgrid_client(config: dict[str, Any]) -> SendGridAPIClient:
    api_key = config.get("api_key") or getattr(settings, "SENDGRID_API_KEY", "")
    host = (
        config.get("api_base_url") or getattr(settings, "SENDGRID_API_BASE_URL", "") or DEFAULT_API_BASE_URL
    )
    client = SendGridAPIClient(api_key, host=host.rstrip("/"))
    client.client.timeout = float(getattr(settings, "SENDGRID_HTTP_TIMEOUT", 10))
    return client


def _errors_text(body: bytes | str | None) -> str:
    try:
        data = json.loads(body or b"{}")
        return "; ".join(
            f"{e.get('field') + ': ' if e.get('field') else ''}{e.get('message', '')}" for e in data["errors"]
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return (body.decode(errors="replace") if isinstance(body, bytes) else str(body or ""))[:200]


@register
class SendGridSender(OutboundSender):
    provider = "sendgrid"
    channel_kinds = ("email",)

    def build_payload(self, message: OutboundMessage) -> dict[str, Any]:
        channel = message.channel
        mail = Mail(
            from_email=Email(channel.address, channel.config.get("from_name") or channel.name),
            to_emails=To(message.to),
            subject=message.subject or channel.name,
        )
        mail.add_content(Content("text/plain", message.body))
        html = message.html or "<p>" + escape(message.body).replace("\n", "<br>\n") + "</p>"
        mail.add_content(Content("text/html", html))
        for name, value in message.headers.items():
            mail.add_header(Header(name, value))
        if message.reply_to:
            mail.reply_to = ReplyTo(message.reply_to)
        mail.add_custom_arg(CustomArg("iid", str(message.interaction_id)))
        payload: dict[str, Any] = mail.get()
        return payload

    # Mail Send takes up to 1,000 personalizations per request; a personalization's substitutions may
    # total 10,000 bytes (twilio.com/docs/sendgrid/api-reference/mail-send/limitations).
    max_batch = 1000
    max_batch_message_bytes = 9000

    def build_batch_payload(self, messages: Sequence[OutboundMessage]) -> dict[str, Any]:
        """One Mail Send body for many recipients of a broadcast: one personalization each, carrying its
        own ``to``, subject, headers (Message-ID, List-Unsubscribe…), our interaction id as the custom arg
        ``iid`` (echoed by every Event Webhook event, so each recipient's status reaches its own
        interaction), and its rendered text and HTML as substitutions of the shared content's two tokens.
        The JSON the SDK's helpers (``Mail``, ``Personalization``…) build (the test module's reference),
        which the tests compare it with — written as plain dicts: the helpers cost ~0.2 s per 1,000."""
        channel = messages[0].channel
        personalizations = []
        for message in messages:
            html = message.html or "<p>" + escape(message.body).replace("\n", "<br>\n") + "</p>"
            personalization: dict[str, Any] = {
                "to": [{"email": message.to}],
                "subject": message.subject or channel.name,
            }
            if message.headers:
                personalization["headers"] = dict(message.headers)
            personalization["substitutions"] = {
                SUBSTITUTION_TEXT: message.body or " ",
                SUBSTITUTION_HTML: html,
            }
            personalization["custom_args"] = {"iid": str(message.interaction_id)}
            personalizations.append(personalization)
        payload: dict[str, Any] = {
            "from": {"email": channel.address, "name": channel.config.get("from_name") or channel.name},
            "personalizations": personalizations,
            "content": [
                {"type": "text/plain", "value": SUBSTITUTION_TEXT},
                {"type": "text/html", "value": SUBSTITUTION_HTML},
            ],
        }
        if messages[0].reply_to:
            payload["reply_to"] = {"email": messages[0].reply_to}
        return payload

    def post_to_provider(self, message: OutboundMessage, payload: dict[str, Any]) -> Any:
        return sendgrid_client(message.channel.config).send(payload)

    def parse_result(self, response: Any) -> SendResult:
        headers = response.headers
        message_id = (headers.get("X-Message-Id") if headers is not None else "") or ""
        return SendResult(
            accepted=True,
            provider_message_id=str(message_id),
            status="sent",
            raw={"status_code": response.status_code, "x_message_id": str(message_id)},
        )

    # The Email Activity index trails Mail Send by seconds to minutes.
    lookup_is_immediate = False

    def lookup(
        self, message: OutboundMessage, *, since: datetime, exclude: frozenset[str]
    ) -> SendResult | None:
        """SendGrid's Email Activity API (``GET /v3/messages``, the Email Activity History add-on) queried
        by our custom arg: ``unique_args['iid']="<interaction id>"`` names only this interaction's mail.
        The ``msg_id`` it lists starts with the Mail Send answer's ``X-Message-Id``."""
        query = f'unique_args[\'iid\']="{message.interaction_id}" AND to_email="{message.to}"'
        response = sendgrid_client(message.channel.config).client.messages.get(
            query_params={"query": query, "limit": 10}
        )
        for found in json.loads(response.body or b"{}").get("messages") or []:
            message_id = str(found.get("msg_id") or "").split(".", 1)[0]
            if message_id and message_id not in exclude:
                return SendResult(
                    accepted=True,
                    provider_message_id=message_id,
                    status="sent",
                    raw={
                        "x_message_id": message_id,
                        "activity_status": found.get("status"),
                        "reconciled": True,
                    },
                )
        return None

    def classify_error(self, exc: Exception) -> SendResult | None:
        if isinstance(exc, HTTPError):
            status = int(exc.status_code)
            retryable = status == 429 or status >= 500
            reason = PERMANENT_STATUSES.get(status, "provider error")
            detail = _errors_text(exc.body)
            return SendResult(
                accepted=False,
                status="failed",
                error_code=str(status),
                error_message=(f"{reason}: {detail}" if detail else reason)[:500],
                retryable=retryable,
                retry_after=retry_after_seconds((getattr(exc, "headers", None) or {}).get("Retry-After")),
            )
        if isinstance(exc, urllib.error.URLError | TimeoutError | ConnectionError):
            return SendResult(
                accepted=False,
                status="failed",
                error_code="network",
                error_message=f"{type(exc).__name__}: {exc}"[:500],
                retryable=True,
            )
        return None
