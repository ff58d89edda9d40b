"""The public event types of outbound webhooks and their payloads.

A payload is the Standard Webhooks shape ``{"id", "type", "timestamp", "data"}`` (``timestamp`` ISO 8601
UTC, when the event happened; ``id`` is also the ``webhook-id`` header). ``data`` holds ids, types,
statuses and timestamps only: never message bodies, addresses, names or secrets, so a payload needs no
scrubbing when a customer is erased. Each builder is a pure function of the domain event (no query).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engagement import events

# Public type → what it means. Stable: integrators subscribe by these names.
EVENT_TYPES: dict[str, str] = {
    "message.received": "A customer's message arrived on a channel.",
    "message.status_changed": "A message's delivery status changed (queued, sent, delivered, failed…).",
    "conversation.opened": "A new conversation was opened by a customer's message.",
    "conversation.resolved": "An agent resolved a conversation.",
    "conversation.reopened": "A resolved conversation was set open again.",
    "conversation.assigned": "A conversation's assignee or team changed (assignee_id null: unassigned).",
    "note.created": "An agent wrote a private note on a customer's thread (with the mentioned members).",
    "call.missed": "An inbound call ended without an agent answering.",
    "voicemail.received": "A caller left a voicemail.",
    "customer.created": "A customer was created (first seen on a channel, or added through the API).",
    "customer.merged": "Two customers were merged; data.merged_customer_id no longer exists on its own.",
    "customer.unmerged": "A merge was undone.",
    "customer.erased": "A customer's personal data was erased.",
    "consent.changed": "A consent change was recorded for a customer.",
    "sla.breached": "A conversation missed a service-level target (first or next response, resolution).",
    "csat.received": "A customer answered the satisfaction survey sent after a resolution.",
    "journey.webhook": "A journey's outbound-webhook step ran (data: journey, step, name, data).",
    "journey.enrolled": "A customer entered a journey.",
    "journey.completed": "A customer reached the end (or the goal) of a journey.",
    "journey.exited": "A customer left a journey early (an exit condition, or removed; data.reason).",
    "campaign.scheduled": "A campaign was launched for a later time (or resumed before its first run).",
    "campaign.running": "A campaign started sending (launched now, its scheduled time came, or resumed).",
    "campaign.paused": "A campaign was paused (data.reason: manual or error_rate).",
    "campaign.completed": "A campaign sent to its whole audience and has no further occurrence.",
    "campaign.cancelled": "A campaign was cancelled for good.",
}


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str
    type: str
    timestamp: str
    customer_id: int | None
    data: dict[str, Any]

    def body(self) -> str:
        """The exact JSON sent (compact, keys in a fixed order)."""
        payload = {"id": self.event_id, "type": self.type, "timestamp": self.timestamp, "data": self.data}
        return json.dumps(payload, separators=(",", ":"), sort_keys=False)


def _message(event: events.DomainEvent) -> dict[str, Any]:
    return {
        "message_id": event.interaction_id,
        "conversation_id": event.conversation_id,
        "customer_id": event.customer_id,
        "channel_kind": event.data.get("channel_kind"),
    }


def _status(event: events.DomainEvent) -> tuple[str, dict[str, Any]] | None:
    if "status" not in event.data:  # engagement / opt-out feedback, auto-replies: not a status change
        return None
    data = {
        "message_id": event.interaction_id,
        "conversation_id": event.conversation_id,
        "customer_id": event.customer_id,
        "status": event.data["status"],
    }
    if event.data.get("blocked_reason"):
        data["blocked_reason"] = event.data["blocked_reason"]
    return "message.status_changed", data


def _conversation_status(event: events.DomainEvent) -> tuple[str, dict[str, Any]] | None:
    kind = {"resolved": "conversation.resolved", "open": "conversation.reopened"}.get(
        str(event.data.get("status"))
    )
    if kind is None:
        return None
    data = {"conversation_id": event.conversation_id, "customer_id": event.customer_id}
    return kind, {**data, "status": event.data["status"]}


def _merge(kind: str) -> Callable[[events.DomainEvent], tuple[str, dict[str, Any]]]:
    def build(event: events.DomainEvent) -> tuple[str, dict[str, Any]]:
        return kind, {
            "customer_id": event.customer_id,
            "merged_customer_id": event.data.get("merged_id"),
            "merge_id": event.data.get("merge_id"),
        }

    return build


def _fixed(
    kind: str, build: Callable[[events.DomainEvent], dict[str, Any]]
) -> Callable[[events.DomainEvent], tuple[str, dict[str, Any]]]:
    return lambda event: (kind, build(event))


def _enrollment(event: events.DomainEvent) -> tuple[str, dict[str, Any]] | None:
    kind = {
        "active": "journey.enrolled",
        "completed": "journey.completed",
        "exited": "journey.exited",
        "removed": "journey.exited",
    }.get(str(event.data.get("state")))
    if kind is None:
        return None
    data = {
        "customer_id": event.customer_id,
        "journey_id": event.data.get("journey_id"),
        "enrollment_id": event.data.get("enrollment_id"),
        "state": event.data.get("state"),
    }
    if kind == "journey.exited":
        data["reason"] = event.data.get("reason") or event.data.get("state")
    return kind, data


def _campaign(event: events.DomainEvent) -> tuple[str, dict[str, Any]] | None:
    state = str(event.data.get("state"))
    kind = f"campaign.{state}"
    if kind not in EVENT_TYPES:
        return None
    data = {
        "campaign_id": event.data.get("campaign_id"),
        "state": state,
        "previous_state": event.data.get("previous_state"),
    }
    if event.data.get("reason"):
        data["reason"] = event.data["reason"]
    return kind, data


_BUILDERS: dict[str, Callable[[events.DomainEvent], tuple[str, dict[str, Any]] | None]] = {
    events.MESSAGE_RECEIVED: _fixed("message.received", _message),
    events.INTERACTION_UPDATED: _status,
    events.CONVERSATION_OPENED: _fixed(
        "conversation.opened",
        lambda e: {
            "conversation_id": e.conversation_id,
            "customer_id": e.customer_id,
            "channel_kind": e.data.get("channel_kind"),
        },
    ),
    events.CONVERSATION_UPDATED: _conversation_status,
    events.CONVERSATION_ASSIGNED: _fixed(
        "conversation.assigned",
        lambda e: {
            "conversation_id": e.conversation_id,
            "customer_id": e.customer_id,
            "assignee_id": e.data.get("assignee_id"),
            "team_id": e.data.get("team_id"),
            "previous_assignee_id": e.data.get("previous_assignee_id"),
            "how": e.data.get("how"),
        },
    ),
    events.NOTE_CREATED: _fixed(
        "note.created",
        lambda e: {
            "note_id": e.data.get("note_id"),
            "conversation_id": e.conversation_id,
            "customer_id": e.customer_id,
            "author_id": e.data.get("author_id"),
            "mentioned_user_ids": list(e.data.get("mentioned_user_ids") or []),
        },
    ),
    events.CALL_MISSED: _fixed(
        "call.missed",
        lambda e: {
            "call_id": e.interaction_id,
            "conversation_id": e.conversation_id,
            "customer_id": e.customer_id,
        },
    ),
    events.VOICEMAIL_RECEIVED: _fixed(
        "voicemail.received",
        lambda e: {
            "call_id": e.interaction_id,
            "conversation_id": e.conversation_id,
            "customer_id": e.customer_id,
        },
    ),
    events.CUSTOMER_CREATED: _fixed(
        "customer.created",
        lambda e: {"customer_id": e.customer_id, "channel_kind": e.data.get("channel_kind") or None},
    ),
    # Names owned by customers/merging.py (CUSTOMER_MERGED, CUSTOMER_UNMERGED).
    "customer.merged": _merge("customer.merged"),
    "customer.unmerged": _merge("customer.unmerged"),
    events.CUSTOMER_ERASED: _fixed(
        "customer.erased", lambda e: {"customer_id": e.customer_id, "erasure_id": e.data.get("erasure_id")}
    ),
    events.CONSENT_CHANGED: _fixed(
        "consent.changed",
        lambda e: {
            "customer_id": e.customer_id,
            "consent_event_id": e.data.get("consent_event_id"),
            "channel": e.data.get("channel"),
            "purpose": e.data.get("purpose") or None,
            "status": e.data.get("status"),
            "source": e.data.get("source"),
        },
    ),
    events.SLA_BREACHED: _fixed(
        "sla.breached",
        lambda e: {
            "conversation_id": e.conversation_id,
            "customer_id": e.customer_id,
            "breach_id": e.data.get("breach_id"),
            "metric": e.data.get("metric"),
            "policy_id": e.data.get("policy_id"),
            "due_at": e.data.get("due_at"),
        },
    ),
    events.CSAT_RECEIVED: _fixed(
        "csat.received",
        lambda e: {
            "conversation_id": e.conversation_id,
            "customer_id": e.customer_id,
            "csat_id": e.data.get("csat_id"),
            "resolution_id": e.data.get("resolution_id"),
            "score": e.data.get("score"),
        },
    ),
    events.JOURNEY_WEBHOOK: _fixed(
        "journey.webhook",
        lambda e: {
            "customer_id": e.customer_id,
            "journey_id": e.data.get("journey_id"),
            "enrollment_id": e.data.get("enrollment_id"),
            "step": e.data.get("step"),
            "name": e.data.get("name"),
            "data": e.data.get("data") or {},
        },
    ),
    # Owned by engagement/journeys/services.py (ENROLLMENT_CHANGED).
    "journey.enrollment_changed": _enrollment,
    events.CAMPAIGN_STATE_CHANGED: _campaign,
}

# Domain events the webhook listener takes (config/listeners.py).
DOMAIN_EVENTS: frozenset[str] = frozenset(_BUILDERS)


def webhook_event_build(event: events.DomainEvent) -> WebhookEvent | None:
    """The public event for ``event``, or None when it has none (internal events, non-status updates)."""
    builder = _BUILDERS.get(event.name)
    built = builder(event) if builder is not None else None
    if built is None:
        return None
    kind, data = built
    return WebhookEvent(
        event_id=event.event_id,
        type=kind,
        timestamp=event.occurred_at,
        customer_id=event.customer_id,
        data=data,
    )
