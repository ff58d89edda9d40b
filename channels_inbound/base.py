"""The shared inbound base. A provider module subclasses :class:`WebhookAdapter` and registers itself.

The view runs, for every provider: size check (413) → :meth:`validate_request` (constant-time signature
check, 403 on failure) → :meth:`parse_events` → store and apply the normalized events → :meth:`respond`.
Malformed input (:class:`MalformedPayload`, or any other error but the database's) is not answered 4xx:
the request is kept unprocessed with the error and answered 2xx (channels_inbound/intake.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from engagement.errors import DomainError, ValidationFailed
from engagement.inbound import InboundEvent
from engagement.models import Channel


class SignatureInvalid(DomainError):
    """The request is not signed by the provider for this channel."""

    code = "signature_invalid"
    status = 403


class MalformedPayload(ValidationFailed):
    """The request is signed but its content is not what the provider sends. The message says why."""

    code = "payload_malformed"


class WebhookAdapter(ABC):
    provider: ClassVar[str]
    hooks: ClassVar[tuple[str, ...]]

    @abstractmethod
    def validate_request(self, request: HttpRequest, channel: Channel) -> None:
        """Raise SignatureInvalid unless the request carries a valid signature for ``channel``."""

    @abstractmethod
    def parse_events(self, request: HttpRequest, channel: Channel, hook: str) -> list[InboundEvent]:
        """Turn the payload into normalized events; raise MalformedPayload with a reason an admin can act
        on (it is shown beside the kept request on the console's unprocessed-events page)."""

    def max_body_bytes(self, hook: str) -> int:
        """Bodies larger than this are answered 413 before they are read. Override per hook."""
        return int(settings.WEBHOOK_MAX_BODY_BYTES)

    def acknowledge(self, hook: str) -> HttpResponse:
        return HttpResponse(status=200)

    def respond(
        self, request: HttpRequest, channel: Channel, hook: str, events: list[InboundEvent]
    ) -> HttpResponse:
        """The answer to a verified request whose events are stored and applied (``events`` is empty when
        it was kept unprocessed). Most hooks only acknowledge; a provider that expects instructions back
        (Twilio Voice wants TwiML) overrides this."""
        return self.acknowledge(hook)
