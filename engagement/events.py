"""Domain events and their one dispatcher.

This module is the bottom of the stack: event names, :class:`DomainEvent`, :func:`publish_on_commit` and
:func:`dispatch` over a registry of listeners. It names no listener and imports nothing of the project.
The listeners are listed in one visible place, ``config/listeners.py``, and registered at start-up
(``config.apps.WiringConfig.ready``), as Chatwoot keeps its dispatcher's listeners in one file.

Services publish with :func:`publish_on_commit`, which writes the events to the transactional outbox
(``engagement.models.OutboxEvent``) in the caller's transaction. The relay (``engagement/outbox.py``, run
by ``manage.py outbox_relay``) dispatches committed rows afterwards: nothing is dispatched unless the
transaction commits, and nothing that committed is lost while a listener's backend (Redis) is away.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

MESSAGE_RECEIVED = "message.received"
CONVERSATION_OPENED = "conversation.opened"
INTERACTION_UPDATED = "interaction.updated"
CONVERSATION_UPDATED = "conversation.updated"
# Team tools (engagement/services/teamwork.py): a conversation got an assignee or team (``data``:
# assignee_id, team_id, previous_assignee_id, how: manual/auto/reply); a private note was written
# (``data``: note_id, author_id, mentioned_user_ids).
CONVERSATION_ASSIGNED = "conversation.assigned"
NOTE_CREATED = "note.created"
# An inbound call ended without an agent answering; a caller left a voicemail.
CALL_MISSED = "call.missed"
VOICEMAIL_RECEIVED = "voicemail.received"
# The outbound port: an interaction was queued for delivery (``interaction_id``). The core never names
# an adapter's task; the delivery listener that ``channels_outbound`` registers hands it to its sender.
OUTBOUND_QUEUED = "outbound.queued"
# Work handed to a task after commit: an attachment to download (``data["attachment_id"]``), a customer
# import to run (``data["import_id"]``). Written to the outbox like every event, so no task is lost.
ATTACHMENT_STORED = "attachment.stored"
IMPORT_QUEUED = "import.queued"
# Events only for a task, never for the console's live updates.
TASK_EVENTS = frozenset({OUTBOUND_QUEUED, ATTACHMENT_STORED, IMPORT_QUEUED})
# The customer record and its privacy: a customer was created (first seen, imported, added), erased
# (``data["erasure_id"]``); a consent change was recorded (``data`` has channel, purpose, status, source).
CUSTOMER_CREATED = "customer.created"
CUSTOMER_ERASED = "customer.erased"
CONSENT_CHANGED = "consent.changed"
# A conversation's service-level clock ran past due (``data``: breach_id, metric, policy_id, started_at,
# due_at); published once per breach by engagement/services/sla.py. Journeys and webhooks consume it.
SLA_BREACHED = "sla.breached"
# A customer answered a satisfaction survey (``data``: csat_id, score, resolution_id).
CSAT_RECEIVED = "csat.received"
# A journey's "call an outbound webhook" step (``data``: journey_id, enrollment_id, step, name, data);
# the outbound webhooks listener delivers it to the endpoints subscribed to "journey.webhook".
JOURNEY_WEBHOOK = "journey.webhook"
# A campaign's state changed (``data``: campaign_id, state, previous_state, reason); published by
# engagement/campaigns/ in the transaction that changed it. Webhooks deliver it as campaign.<state>.
CAMPAIGN_STATE_CHANGED = "campaign.state_changed"


def _event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


# ``OUTBOUND_QUEUED`` events of bulk sends (campaigns) say so in ``data["lane"]``; the delivery listener
# puts their tasks on the bulk queue.
LANE_BULK = "bulk"


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
        """The fields as a dict (shallow: ``data`` is the event's own dict; it is only serialized)."""
        return {
            "name": self.name,
            "workspace_id": self.workspace_id,
            "interaction_id": self.interaction_id,
            "conversation_id": self.conversation_id,
            "customer_id": self.customer_id,
            "data": self.data,
            "event_id": self.event_id,
            "occurred_at": self.occurred_at,
        }


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
    """Hand ``event`` to every listener that wants it, now. One failing listener never stops the others.

    Services do not call this: they publish through the outbox (:func:`publish_on_commit`), whose relay
    records which listener took an event and retries the ones that failed."""
    for listener in _LISTENERS:
        if not listener.wants(event):
            continue
        try:
            listener.handler(event)
        except Exception:
            logger.exception("listener %s failed for %s", listener.name, event.name)


_OUTBOX_INSERT = (
    "INSERT INTO engagement_outboxevent"
    " (name, payload, customer_id, created_at, relayed_at, attempts, next_attempt_at, listeners_done,"
    " last_error)"
    " SELECT u.name, u.payload::jsonb, u.customer_id, %s, NULL, 0, NULL, '[]'::jsonb, ''"
    " FROM unnest(%s::text[], %s::text[], %s::bigint[]) WITH ORDINALITY AS u(name, payload, customer_id, n)"
    " ORDER BY u.n RETURNING id"
)

# Many events at once (the journeys scheduler's batches): ONE json parameter, serialized by json.dumps
# in C, instead of text arrays psycopg quotes element by element.
_OUTBOX_INSERT_MANY = (
    "INSERT INTO engagement_outboxevent"
    " (name, payload, customer_id, created_at, relayed_at, attempts, next_attempt_at, listeners_done,"
    " last_error)"
    " SELECT u.e->>'name', u.e, (u.e->>'customer_id')::bigint, %s, NULL, 0, NULL, '[]'::jsonb, ''"
    " FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS u(e, n)"
    " ORDER BY u.n RETURNING id"
)
_MANY = 50


def publish_on_commit(*published: DomainEvent) -> None:
    """Write ``published`` to the transactional outbox in the current transaction: one INSERT, whatever
    their number (outside a transaction it commits at once).

    The relay dispatches them once the transaction commits (an INSERT trigger NOTIFYs it at commit) and
    retries a listener that failed, so a request whose transaction committed never fails on a side
    effect. With ``settings.OUTBOX_RELAY_INLINE`` (unit tests) this process relays them on commit.
    """
    if not published:
        return
    # One fixed prepared statement for any number of events (the ORM's save() cost ~0.5 ms of
    # statement building per webhook); the columns' defaults are the model's.
    with connection.cursor() as cursor:
        if len(published) >= _MANY:
            cursor.execute(
                _OUTBOX_INSERT_MANY,
                [timezone.now(), json.dumps([event.as_dict() for event in published])],
            )
        else:
            cursor.execute(
                _OUTBOX_INSERT,
                [
                    timezone.now(),
                    [event.name for event in published],
                    [json.dumps(event.as_dict()) for event in published],
                    [event.customer_id for event in published],
                ],
            )
        ids = [int(row[0]) for row in cursor.fetchall()]
    if settings.OUTBOX_RELAY_INLINE:

        def relay() -> None:
            from engagement.outbox import outbox_relay_ids

            outbox_relay_ids(ids=ids)

        transaction.on_commit(relay)
