"""Domain events and their one dispatcher.

This module is the bottom of the stack: event names, :class:`DomainEvent`, :func:`publish_on_commit` and
:func:`dispatch` over a registry of listeners. It names no listener and imports nothing of the project.
The listeners are listed in one visible place, ``config/listeners.py``, and registered at start-up
(``config.apps.WiringConfig.ready``), as Chatwoot keeps its dispatcher's listeners in one file.

Services publish with :func:`publish_on_commit`; nothing is dispatched unless the transaction commits.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

MESSAGE_RECEIVED = "message.received"
CONVERSATION_OPENED = "conversation.opened"
INTERACTION_UPDATED = "interaction.updated"
CONVERSATION_UPDATED = "conversation.updated"
# An inbound call ended without an agent answering; a caller left a voicemail.
CALL_MISSED = "call.missed"
VOICEMAIL_RECEIVED = "voicemail.received"
# The outbound port: an interaction was queued for delivery (``interaction_id``). The core never names
# an adapter's task; the delivery listener that ``channels_outbound`` registers hands it to its sender.
OUTBOUND_QUEUED = "outbound.queued"
# The customer record and its privacy: a customer was created (first seen, imported, added), erased
# (``data["erasure_id"]``); a consent change was recorded (``data`` has channel, purpose, status, source).
CUSTOMER_CREATED = "customer.created"
CUSTOMER_ERASED = "customer.erased"
CONSENT_CHANGED = "consent.changed"


def _event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class DomainEvent:
    name: str
    workspace_id: int
    interaction_id: int | None = None
    conversation_id: int | None = None
    customer_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # Stable identity of this occurrence: kept through ``as_dict()`` and ``DomainEvent(**d)`` (a relayed or
    # retried event keeps its id), so listeners can deduplicate on it (outbound webhooks do).
    event_id: str = field(default_factory=_event_id)
    occurred_at: str = field(default_factory=_now_iso)  # ISO 8601, UTC

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Handler = Callable[[DomainEvent], None]


@dataclass(frozen=True)
class Listener:
    """A side effect of domain events: ``handler`` runs for every event whose name is in ``names``
    (every event when ``names`` is empty) and not in ``excluded``."""

    name: str
    handler: Handler
    names: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()

    def wants(self, event: DomainEvent) -> bool:
        return (not self.names or event.name in self.names) and event.name not in self.excluded


_LISTENERS: list[Listener] = []


def listener_register(
    *, name: str, handler: Handler, names: Iterable[str] = (), excluded: Iterable[str] = ()
) -> None:
    """Add a listener (idempotent by ``name``: registering again replaces it)."""
    listener = Listener(name=name, handler=handler, names=frozenset(names), excluded=frozenset(excluded))
    for i, existing in enumerate(_LISTENERS):
        if existing.name == name:
            _LISTENERS[i] = listener
            return
    _LISTENERS.append(listener)


def listeners() -> tuple[Listener, ...]:
    return tuple(_LISTENERS)


def dispatch(event: DomainEvent) -> None:
    """Hand ``event`` to every listener that wants it. One failing listener never stops the others."""
    for listener in _LISTENERS:
        if not listener.wants(event):
            continue
        try:
            listener.handler(event)
        except Exception:
            logger.exception("listener %s failed for %s", listener.name, event.name)


def publish_on_commit(event: DomainEvent) -> None:
    """Dispatch ``event`` once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: dispatch(event))
