"""The shared outbound base: every provider runs the same send sequence and returns the same result.

``send()`` = ``build_payload`` → ``post_to_provider`` → ``parse_result``. A provider module subclasses
:class:`OutboundSender`, implements those three steps (and ``classify_error``), and registers itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from engagement.models import Channel


@dataclass(frozen=True)
class OutboundMessage:
    interaction_id: int
    channel: Channel
    to: str
    body: str
    status_callback_url: str
    media_urls: tuple[str, ...] = ()
    # Voice click-to-call: ring this number (the agent's phone) first, then connect it to ``to``.
    connect_via: str = ""
    # Email: subject, extra headers (Message-ID, In-Reply-To, References, List-Unsubscribe…), reply-to.
    subject: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    reply_to: str = ""
    # Email: the HTML part when the message has its own (campaigns); else one is made from ``body``.
    html: str = ""


@dataclass(frozen=True)
class SendResult:
    """What happened at the provider. ``retryable`` failures are tried again with backoff."""

    accepted: bool
    provider_message_id: str = ""
    status: str = "sent"
    error_code: str = ""
    error_message: str = ""
    retryable: bool = False
    raw: dict[str, Any] = field(default_factory=dict)
    # SMS: how many segments the provider bills for the message.
    segments: int | None = None
    # The provider refused because the recipient opted out (Twilio 21610): recorded in the consent ledger.
    opted_out: bool = False
    # Seconds the provider asked us to wait before trying again (HTTP Retry-After on a 429 or 503).
    retry_after: float | None = None
    # The request left but no answer came (read timeout, connection dropped mid-response): the provider
    # may have the message. Never simply retried; recovery reconciles it with the provider first.
    outcome_unknown: bool = False


class LookupUnsupported(Exception):
    """The provider offers no way to find a message by what we sent."""


class OutboundSender(ABC):
    provider: ClassVar[str]
    channel_kinds: ClassVar[tuple[str, ...]]
    # Does :meth:`lookup` see a message as soon as the provider accepted it? When not (an index that
    # lags, like SendGrid's Email Activity), "not found" is trusted only after a grace period.
    lookup_is_immediate: ClassVar[bool] = True

    # How many messages one provider request may carry (SendGrid: 1,000 personalizations); 1 = no batches.
    max_batch: ClassVar[int] = 1
    # A batched message's text and HTML travel as per-recipient substitutions: at most this many bytes.
    max_batch_message_bytes: ClassVar[int] = 0

    def send_batch(self, messages: Sequence[OutboundMessage]) -> SendResult:
        """Send ``messages`` (same channel, at most :attr:`max_batch`) in ONE provider request; the
        provider answers the request as a whole, so one result stands for all of them."""
        payload = self.build_batch_payload(messages)
        try:
            response = self.post_to_provider(messages[0], payload)
        except Exception as exc:
            result = self.classify_error(exc)
            if result is None:
                raise
            return result
        return self.parse_result(response)

    def build_batch_payload(self, messages: Sequence[OutboundMessage]) -> dict[str, Any]:
        raise NotImplementedError(f"{self.provider} does not send batches")

    def send(self, message: OutboundMessage) -> SendResult:
        payload = self.build_payload(message)
        try:
            response = self.post_to_provider(message, payload)
        except Exception as exc:
            result = self.classify_error(exc)
            if result is None:
                raise
            return result
        return self.parse_result(response)

    @abstractmethod
    def build_payload(self, message: OutboundMessage) -> dict[str, Any]: ...

    @abstractmethod
    def post_to_provider(self, message: OutboundMessage, payload: dict[str, Any]) -> Any: ...

    @abstractmethod
    def parse_result(self, response: Any) -> SendResult: ...

    def classify_error(self, exc: Exception) -> SendResult | None:
        """Turn a provider exception into a failed result; None re-raises it."""
        return None

    def lookup(
        self, message: OutboundMessage, *, since: datetime, exclude: frozenset[str]
    ) -> SendResult | None:
        """Find at the provider the message a send of ``message`` created at or after ``since`` (our
        request left, but the worker died before it recorded the answer), ignoring provider ids in
        ``exclude`` (messages already recorded on other interactions).

        Returns the accepted result when the provider has it, None when it does not (safe to send
        again). Raises :class:`LookupUnsupported` when the provider cannot be asked, and any other
        exception when it cannot be asked now (try later).
        """
        raise LookupUnsupported(self.provider)


def retry_after_seconds(value: str | None) -> float | None:
    """An HTTP ``Retry-After`` header (RFC 9110 §10.2.3): delay-seconds or an HTTP-date; None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from django.utils import timezone

    return max((when - timezone.now()).total_seconds(), 0.0)
