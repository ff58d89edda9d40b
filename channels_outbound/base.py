"""The shared outbound base: every provider runs the same send sequence and returns the same result.

``send()`` = ``build_payload`` → ``post_to_provider`` → ``parse_result``. A provider module subclasses
:class:`OutboundSender`, implements those three steps (and ``classify_error``), and registers itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
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
    # The request may have reached the provider (it timed out waiting for the answer): a marketing
    # message is then not retried (at most once) but left for the status callback to settle.
    ambiguous: bool = False


class OutboundSender(ABC):
    provider: ClassVar[str]
    channel_kinds: ClassVar[tuple[str, ...]]

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
