"""Domain events → journeys: goals and exit conditions, waits, and triggers, in that order.

:func:`journeys_event_handle` runs inside the event's after-commit handling (the outbox relay's
"journeys" listener, ``config/listeners.py``), so a goal or an exit acts within the relay's latency of
the event (milliseconds: the relay is woken by the commit's NOTIFY) and cancels every pending step of
the enrollment at once; a reply reaches the enrollment waiting for it the same way. It only changes
enrollment rows (cheap, indexed by customer) and returns the enrollments to advance now; the listener
hands those to a Celery task (the scheduler picks them up as well, as they are due now).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from customers.events import CUSTOMER_EVENT_RECORDED
from customers.keywords import keyword_normalize
from customers.merging import customer_current
from customers.models import Customer, CustomerEvent
from engagement import events
from engagement.models import (
    Enrollment,
    EnrollmentState,
    Interaction,
    Journey,
    JourneyStatus,
    Segment,
    Workspace,
)
from engagement.models.conversations import Direction
from engagement.segments.services import segment_contains

from .automation import automation_rules_convert
from .clock import journey_now
from .definition import definition_index
from .services import enrollment_create, enrollment_finish

logger = logging.getLogger(__name__)

# The domain events the journeys listener takes.
JOURNEY_EVENT_NAMES = frozenset(
    {
        events.MESSAGE_RECEIVED,
        events.CONVERSATION_OPENED,
        events.CALL_MISSED,
        events.VOICEMAIL_RECEIVED,
        events.INTERACTION_UPDATED,
        events.SLA_BREACHED,
        CUSTOMER_EVENT_RECORDED,
    }
)
INTERACTION_TRIGGERS = ("message.received", "conversation.opened", "call.missed", "voicemail.received")


def _facts(event: events.DomainEvent) -> dict[str, Any] | None:
    """What the event says, for matching: ``types`` (trigger types it can start), ``interaction``,
    ``custom`` (a CustomerEvent), ``reply`` (an inbound message). None: nothing for journeys."""
    facts: dict[str, Any] = {
        "types": [],
        "interaction": None,
        "custom": None,
        "reply": False,
        "data": event.data or {},
    }
    if event.name == events.INTERACTION_UPDATED:
        engagement = (event.data or {}).get("engagement")
        if engagement not in ("open", "click"):
            return None  # a status change: nothing here (the common case, no query)
        facts["types"] = ["email.opened" if engagement == "open" else "email.clicked"]
    elif event.name == CUSTOMER_EVENT_RECORDED:
        facts["types"] = ["event"]
        custom_id = (event.data or {}).get("event_id")
        facts["custom"] = CustomerEvent.objects.filter(pk=int(custom_id)).first() if custom_id else None
        if facts["custom"] is None:
            return None
    else:
        facts["types"] = [event.name]
        if event.name == events.MESSAGE_RECEIVED:
            facts["types"].append("campaign.reply")
            facts["reply"] = True
        if event.name == events.CONVERSATION_OPENED and (event.data or {}).get("channel_kind") == "webchat":
            facts["types"].append("chat.started")
    if event.interaction_id:
        facts["interaction"] = (
            Interaction.objects.select_related("channel")
            .filter(pk=event.interaction_id, workspace_id=event.workspace_id)
            .first()
        )
        if facts["interaction"] is None:
            return None
    return facts


def journeys_event_handle(*, event: events.DomainEvent, only_automation: bool = False) -> list[int]:
    """Apply one domain event to journeys; returns the ids of enrollments to advance now.

    1. goals and exit conditions of the customer's active enrollments (completed "goal" / exited
       "exit_condition": their timers and pending steps are cancelled in the same UPDATE);
    2. waits: an inbound message resolves "wait for reply", a custom event "wait for event <name>", any
       event of theirs re-checks "wait for segment";
    3. triggers: every live journey whose trigger matches enrolls the customer (re-entry policy and the
       unique trigger key ``<event>:<interaction>`` / ``event:<id>`` make redelivery harmless).
    A message that failed hard (``interaction.updated`` with status ``failed``) instead goes to
    :func:`engine.journey_send_fallback` (the send step's next channel).
    ``only_automation``: triggers of automation-rule journeys only (``automations_run``)."""
    if event.name == events.INTERACTION_UPDATED and (event.data or {}).get("status") == "failed":
        # A journey message failed hard at its provider: the step's next channel (engine.py).
        if event.interaction_id is not None and not only_automation:
            from .engine import journey_send_fallback

            journey_send_fallback(interaction_id=event.interaction_id)
        return []
    if event.customer_id is None:
        return []
    facts = _facts(event)
    if facts is None:
        return []
    now = journey_now()
    interaction: Interaction | None = facts["interaction"]
    customer_id = interaction.customer_id if interaction is not None else event.customer_id
    workspace = Workspace.objects.filter(pk=event.workspace_id).first()
    # A merged-away customer lives on in the survivor: its journeys, waits and goals are the survivor's.
    customer = customer_current(workspace=workspace, customer_id=customer_id) if workspace else None
    if customer is None or customer.erased_at is not None:
        return []
    inbound = interaction is not None and interaction.direction == Direction.INBOUND
    due: list[int] = []
    if not only_automation:
        due += _goals_and_waits(customer=customer, facts=facts, inbound=inbound, now=now)
    due += _triggers(event=event, customer=customer, facts=facts, only_automation=only_automation, now=now)
    return due


def _condition_met(
    cond: dict[str, Any], *, customer: Customer, facts: dict[str, Any], now: dt.datetime
) -> bool:
    kind = cond.get("type")
    if kind == "event":
        custom = facts["custom"]
        return custom is not None and custom.name == cond.get("name")
    if kind == "reply":
        return bool(facts["reply"])
    if kind == "tag":
        return cond.get("tag") in (customer.tags or [])
    if kind == "segment":
        segment_id = int(cond.get("segment_id") or 0)
        segment = Segment.objects.filter(pk=segment_id, workspace_id=customer.workspace_id).first()
        return segment is not None and segment_contains(segment=segment, customer=customer, now=now)
    return False


def _goals_and_waits(
    *, customer: Customer, facts: dict[str, Any], inbound: bool, now: dt.datetime
) -> list[int]:
    active = list(
        Enrollment.objects.filter(customer=customer, state=EnrollmentState.ACTIVE).select_related("version")
    )
    due: list[int] = []
    from .engine import enrollment_wait_resolve

    for enrollment in active:
        version = enrollment.version
        goal = version.goal or {}
        if goal and _condition_met(goal, customer=customer, facts=facts, now=now):
            enrollment_finish(enrollment=enrollment, state=EnrollmentState.COMPLETED, reason="goal", now=now)
            continue
        exits = version.exit_conditions or []
        if any(_condition_met(c, customer=customer, facts=facts, now=now) for c in exits):
            enrollment_finish(
                enrollment=enrollment, state=EnrollmentState.EXITED, reason="exit_condition", now=now
            )
            continue
        waiting = enrollment.waiting_for
        if waiting not in ("reply", "event", "segment"):
            continue
        step = definition_index(version.definition).get(enrollment.current_step)
        if step is None:
            continue
        matched = False
        if waiting == "reply":
            matched = bool(facts["reply"]) and inbound
        elif waiting == "event":
            custom = facts["custom"]
            matched = custom is not None and custom.name == step.step.get("event_name")
        else:
            matched = _condition_met(
                {"type": "segment", "segment_id": step.step.get("segment_id")},
                customer=customer,
                facts=facts,
                now=now,
            )
        if matched and enrollment_wait_resolve(enrollment_id=enrollment.pk, waiting_for=waiting, now=now):
            due.append(enrollment.pk)
    return due


def trigger_matches(
    *, trigger: dict[str, Any], facts: dict[str, Any], customer: Customer, now: dt.datetime
) -> bool:
    """Whether an event (its facts) meets a journey's trigger: channel, keyword/contains/any with the
    opt-out handling's normalization (``keyword_normalize``), the custom event's name, a reply to a
    campaign message within ``within_hours``."""
    kind = trigger.get("type")
    if kind not in facts["types"]:
        return False
    interaction: Interaction | None = facts["interaction"]
    if kind in INTERACTION_TRIGGERS or kind == "chat.started":
        if interaction is None:
            return False
        channel = interaction.channel
        if trigger.get("channel_kind") and (channel is None or channel.kind != trigger["channel_kind"]):
            return False
        if trigger.get("channel_ids") and interaction.channel_id not in trigger["channel_ids"]:
            return False
        match = trigger.get("match") or "any"
        if match != "any":
            text = keyword_normalize(interaction.body or "")
            words = trigger.get("keywords") or []
            if match == "keyword":
                return text in words
            padded = f" {text} "
            return any(f" {w} " in padded for w in words)
        return True
    if kind == "event":
        custom = facts["custom"]
        return custom is not None and custom.name == trigger.get("name")
    if kind == "campaign.reply":
        if interaction is None:
            return False
        since = interaction.created_at - dt.timedelta(hours=int(trigger.get("within_hours") or 72))
        sent = Interaction.objects.filter(
            customer_id=interaction.customer_id,
            direction=Direction.OUTBOUND,
            created_at__gte=since,
            created_at__lte=interaction.created_at,
        ).filter(metadata__has_key="campaign_id")
        if trigger.get("campaign_id"):
            sent = sent.filter(metadata__campaign_id=int(trigger["campaign_id"]))
        return sent.exists()
    if kind == "sla.breached":
        return not trigger.get("metric") or facts["data"].get("metric") == trigger["metric"]
    return kind in ("email.opened", "email.clicked")


def _trigger_key(event: events.DomainEvent, facts: dict[str, Any]) -> str:
    if facts["custom"] is not None:
        return f"event:{facts['custom'].pk}"
    if event.interaction_id and event.name != events.INTERACTION_UPDATED:
        return f"{event.name}:{event.interaction_id}"
    return f"{event.name}:{event.event_id}"


def _triggers(
    *,
    event: events.DomainEvent,
    customer: Customer,
    facts: dict[str, Any],
    only_automation: bool,
    now: dt.datetime,
) -> list[int]:
    types = list(facts["types"])
    if types and types[0] in INTERACTION_TRIGGERS:
        automation_rules_convert(workspace_id=event.workspace_id)
    journeys = Journey.objects.filter(
        workspace_id=event.workspace_id, status=JourneyStatus.LIVE, trigger_type__in=types
    ).select_related("live_version")
    if only_automation:
        journeys = journeys.filter(automation_rule__isnull=False)
    context: dict[str, Any] = {"trigger": event.name, "event_id": event.event_id}
    interaction: Interaction | None = facts["interaction"]
    if interaction is not None:
        context.update(
            interaction_id=interaction.pk,
            conversation_id=interaction.conversation_id,
            channel_id=interaction.channel_id,
            channel_kind=interaction.channel.kind if interaction.channel else "",
        )
    if facts["custom"] is not None:
        context.update(custom_event_id=facts["custom"].pk, event_name=facts["custom"].name)
    if interaction is None and event.conversation_id is not None:
        context.update(conversation_id=event.conversation_id)  # an SLA breach names its conversation
    key = _trigger_key(event, facts)
    due: list[int] = []
    for journey in journeys.order_by("id"):
        version = journey.live_version
        if version is None:
            continue
        try:
            if not trigger_matches(
                trigger=version.definition.get("trigger") or {}, facts=facts, customer=customer, now=now
            ):
                continue
            enrollment, _ = enrollment_create(
                journey=journey, customer=customer, context=context, trigger_key=key, now=now
            )
        except Exception:  # one journey's fault never stops the others, nor holds the relay back
            logger.exception("journey %s could not take event %s", journey.pk, event.event_id)
            continue
        if enrollment is not None:
            due.append(enrollment.pk)
    return due
