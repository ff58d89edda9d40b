"""Automation rules as one-step journeys: a rule's trigger and match become the journey's trigger, its
reply one send step (format "automation": the rule's Django-template text, answered on the trigger's
channel or the rule's reply channel, capped per hour like every automated answer).

:func:`automation_rule_definition` is pure (the data migration 0012 uses it on historical rows);
:func:`automation_rules_convert` makes the journey of every rule that has none yet.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from customers.keywords import keyword_normalize
from engagement import events
from engagement.models import (
    AutomationRule,
    Enrollment,
    Interaction,
    Journey,
    JourneyStatus,
    JourneyStepRun,
    JourneyVersion,
    ReentryPolicy,
)

from .clock import journey_now


def automation_rule_definition(
    *,
    trigger: str,
    channel_kind: str,
    match_type: str,
    keywords: str,
    template: str,
    reply_channel_id: int | None,
    rule_id: int,
) -> dict[str, Any]:
    """The journey definition of one automation rule (its fields given as plain values)."""
    words = [keyword_normalize(k) for k in (keywords or "").split(",")]
    trigger_node: dict[str, Any] = {
        "type": trigger,
        "channel_kind": channel_kind or "",
        "channel_ids": [],
        "match": match_type or "any",
    }
    if trigger_node["match"] != "any":
        trigger_node["keywords"] = [w for w in dict.fromkeys(words) if w]
    return {
        "trigger": trigger_node,
        "steps": [
            {
                "key": "answer",
                "type": "send",
                "channel_ids": [reply_channel_id] if reply_channel_id else [],
                "reply_on_trigger_channel": True,
                "prefer_customer_channel": False,
                "purpose": "transactional",
                "answer": True,
                "format": "automation",
                "template": template,
                "automation_rule_id": rule_id,
            }
        ],
    }


def automation_rule_convert(*, rule: AutomationRule) -> Journey:
    """The live (or, for a disabled rule, paused) journey of ``rule``, made once (the journey's
    one-to-one link to the rule keeps a concurrent conversion from making a second)."""
    existing = Journey.objects.filter(automation_rule=rule).first()
    if existing is not None:
        return existing
    definition = automation_rule_definition(
        trigger=rule.trigger,
        channel_kind=rule.channel_kind,
        match_type=rule.match_type,
        keywords=rule.keywords,
        template=rule.template,
        reply_channel_id=rule.reply_channel_id,
        rule_id=rule.pk,
    )
    now = journey_now()
    try:
        with transaction.atomic():
            journey = Journey.objects.create(
                workspace_id=rule.workspace_id,
                name=rule.name,
                description="An automation rule: one answer to one trigger.",
                status=JourneyStatus.LIVE if rule.enabled else JourneyStatus.PAUSED,
                reentry=ReentryPolicy.EVERY_TIME,
                purpose="transactional",
                definition=definition,
                trigger_type=rule.trigger,
                automation_rule=rule,
            )
            version = JourneyVersion.objects.create(
                journey=journey, number=1, definition=definition, created_at=now
            )
            journey.live_version = version
            journey.save(update_fields=["live_version"])
    except IntegrityError:
        return Journey.objects.get(automation_rule=rule)
    return journey


def automation_rules_convert(*, workspace_id: int) -> int:
    """Convert the workspace's rules that have no journey yet (one query when there are none)."""
    rules = AutomationRule.objects.filter(workspace_id=workspace_id, journey__isnull=True)
    converted = 0
    for rule in rules:
        automation_rule_convert(rule=rule)
        converted += 1
    return converted


def automation_event_run(*, event_name: str, workspace_id: int, interaction_id: int) -> list[Interaction]:
    """Run the automation-rule journeys for one interaction event now (in this process): trigger,
    advance, and return the answers (also those of an earlier run of the same event)."""
    from .engine import enrollment_advance
    from .triggers import journeys_event_handle

    interaction = (
        Interaction.objects.filter(pk=interaction_id, workspace_id=workspace_id)
        .values("customer_id", "conversation_id", "channel__kind")
        .first()
    )
    if interaction is None:
        return []
    journeys_event_handle(
        event=events.DomainEvent(
            name=event_name,
            workspace_id=workspace_id,
            interaction_id=interaction_id,
            conversation_id=interaction["conversation_id"],
            customer_id=interaction["customer_id"],
            data={"channel_kind": interaction["channel__kind"]},
        ),
        only_automation=True,
    )
    enrollments = list(
        Enrollment.objects.filter(
            workspace_id=workspace_id,
            trigger_key=f"{event_name}:{interaction_id}",
            journey__automation_rule__isnull=False,
        ).values_list("pk", flat=True)
    )
    for enrollment_id in enrollments:
        enrollment_advance(enrollment_id=enrollment_id)
    ids = JourneyStepRun.objects.filter(enrollment_id__in=enrollments, interaction__isnull=False).values_list(
        "interaction_id", flat=True
    )
    return list(Interaction.objects.filter(pk__in=list(ids)).order_by("id"))
