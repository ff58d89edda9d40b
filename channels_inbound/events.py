"""The normalized inbound event every provider adapter produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from customers.services import Identifier


@dataclass(frozen=True)
class InboundMessage:
    """A customer wrote to us on some channel."""

    provider_event_id: str
    sender: Identifier
    body: str
    occurred_at: datetime
    sender_name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    event_type = "message"


@dataclass(frozen=True)
class DeliveryStatus:
    """The provider reports progress of a message we sent. ``status`` is in our vocabulary."""

    provider_event_id: str
    provider_message_id: str
    status: str
    occurred_at: datetime
    interaction_id: int | None = None
    error_code: str = ""
    error_message: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    event_type = "status"


InboundEvent = InboundMessage | DeliveryStatus
