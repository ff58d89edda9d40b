"""The journey engine: moves one enrollment through its version's steps.

:func:`enrollment_advance` is the one entry point of the scheduler and of the tasks the triggers start.
It locks the enrollment row (``SELECT … FOR UPDATE``), and runs steps until the enrollment waits (a
delay, a wait-for, a guard hold) or ends. Every step that finishes writes its ``JourneyStepRun``
(UNIQUE(enrollment, step_key)) in the same transaction as its effect: an outbound message queued by
``message_send`` with the idempotency key ``journey:<enrollment>:<step>``, a task, a tag. So a step
runs exactly once whatever the retries, crashes or concurrent schedulers: a second worker waits on the
row lock, then finds the enrollment moved on (or not due) and does nothing.

A step "arrives" with ``waiting_for == ""`` and ``due_at <= now``; a waiting step is resumed by its
timer (delay over, wait timed out, hold over) or by :func:`enrollment_wait_resolve` (the reply, event
or segment it waited for), called inside the triggering event's after-commit handling.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.dateparse import parse_date

from customers.consent import consent_check_send
from customers.models import Customer
from customers.profile import ProfileInvalid, customer_timezone, customer_update
from engagement import events
from engagement.campaigns.content import RenderFailed, content_render
from engagement.campaigns.schedule import wall_to_utc, zone_get
from engagement.models import (
    Channel,
    Conversation,
    Enrollment,
    EnrollmentState,
    Interaction,
    JourneyStatus,
    JourneyStepRun,
    JourneyVersion,
    Segment,
    StepOutcome,
)
from engagement.models.conversations import Direction
from engagement.segments.services import segment_contains
from engagement.services.automation import (
    human_has_answered,
    interaction_is_automated,
    reply_target,
    template_render,
)
from engagement.services.guards import campaign_settings_for, send_guard_check
from engagement.services.messaging import SendRejected, message_send

from .clock import journey_now
from .definition import StepInfo, branch_entry, definition_index
from .services import agent_task_create, enrollment_finish

logger = logging.getLogger(__name__)

PAUSED_RECHECK = dt.timedelta(seconds=60)
MAX_STEPS_PER_ADVANCE = 50


@dataclass
class _Move:
    """What a step decided: go to ``next_key`` now; or wait (``waiting_for``, ``due_at``); or end."""

    next_key: str | None = None
    waiting_for: str = ""
    wait_detail: str = ""
    due_at: dt.datetime | None = None
    end: str = ""  # "completed" / "exited"
    end_reason: str = ""


def _run(
    enrollment: Enrollment,
    info: StepInfo,
    outcome: str,
    now: dt.datetime,
    *,
    reason: str = "",
    detail: str = "",
    interaction: Interaction | None = None,
) -> None:
    JourneyStepRun.objects.create(
        enrollment=enrollment,
        journey_id=enrollment.journey_id,
        step_key=info.step["key"],
        step_type=info.step["type"],
        outcome=outcome,
        reason=reason[:64],
        detail=detail[:300],
        interaction=interaction,
        created_at=now,
    )


def enrollment_advance(*, enrollment_id: int, now: dt.datetime | None = None) -> str:
    """Run the enrollment's due steps. Returns its state afterwards ("active", "completed"…, or
    "not_due" when nothing was due, "missing"). Each call owns its transaction; safe to call twice at
    once (the row lock serializes, the second finds nothing due)."""
    now = now or journey_now()
    with transaction.atomic():
        enrollment = (
            Enrollment.objects.select_for_update(of=("self",))
            .select_related("journey", "version", "customer", "workspace")
            .filter(pk=enrollment_id)
            .first()
        )
        if enrollment is None:
            return "missing"
        if enrollment.state != EnrollmentState.ACTIVE or enrollment.due_at is None or enrollment.due_at > now:
            _lease_release(enrollment)
            return "not_due" if enrollment.state == EnrollmentState.ACTIVE else enrollment.state
        if enrollment.journey.status != JourneyStatus.LIVE:
            # Paused: the enrollment stays where it is and is looked at again later; archived journeys
            # removed their enrollments already.
            _save(enrollment, now, due_at=now + PAUSED_RECHECK, lease_until=None)
            return "paused"
        index = _index(enrollment.version)
        for _ in range(MAX_STEPS_PER_ADVANCE):
            key = enrollment.current_step
            if not key:
                _end(enrollment, EnrollmentState.COMPLETED, "finished", now)
                return enrollment.state
            info = index.get(key)
            if info is None:  # cannot happen with a frozen version; never loop on it
                _end(enrollment, EnrollmentState.EXITED, "unknown_step", now)
                return enrollment.state
            move = _step(enrollment, info, now)
            if move.end:
                _end(enrollment, move.end, move.end_reason, now)
                return enrollment.state
            if move.next_key is not None:
                enrollment.current_step = move.next_key
                enrollment.waiting_for = ""
                enrollment.wait_detail = ""
                continue
            _save(
                enrollment,
                now,
                waiting_for=move.waiting_for,
                wait_detail=move.wait_detail[:300],
                due_at=move.due_at,
                lease_until=None,
            )
            return enrollment.state
        # A long run of instant steps: the rest in the next call (due now).
        _save(enrollment, now, due_at=now, lease_until=None, waiting_for="", wait_detail="")
        return enrollment.state


def enrollments_advance_inline(*, enrollment_ids: list[int]) -> list[int]:
    """Advance up to ``JOURNEYS_INLINE_ADVANCE`` of ``enrollment_ids`` here and now (the relay's
    journeys listener: a keyword's first message is queued in the same pass that enrolled the customer,
    instead of a Celery task's round trip first); returns the ids left for the task: the rest, and any
    whose step raised (logged; the task or the scheduler tries again — each step still runs once)."""
    limit = settings.JOURNEYS_INLINE_ADVANCE
    left = list(enrollment_ids[limit:])
    for enrollment_id in enrollment_ids[:limit]:
        try:
            enrollment_advance(enrollment_id=enrollment_id)
        except Exception:
            logger.exception("journey enrollment %s failed inline; handed to the task", enrollment_id)
            left.append(enrollment_id)
    return left


_INDEXES: dict[int, dict[str, StepInfo]] = {}


def _index(version: JourneyVersion) -> dict[str, StepInfo]:
    """The version's step index, computed once per process (a published version never changes)."""
    found = _INDEXES.get(version.pk)
    if found is None:
        if len(_INDEXES) > 1000:
            _INDEXES.clear()
        found = _INDEXES[version.pk] = definition_index(version.definition)
    return found


def _save(enrollment: Enrollment, now: dt.datetime, **values: Any) -> None:
    for name, value in values.items():
        setattr(enrollment, name, value)
    enrollment.updated_at = now
    enrollment.save(
        update_fields=["current_step", "waiting_for", "wait_detail", "due_at", "lease_until", "updated_at"]
    )


def _lease_release(enrollment: Enrollment) -> None:
    if enrollment.lease_until is not None:
        Enrollment.objects.filter(pk=enrollment.pk).update(lease_until=None)


def _end(enrollment: Enrollment, state: str, reason: str, now: dt.datetime) -> None:
    enrollment_finish(enrollment=enrollment, state=state, reason=reason, now=now)


def _step(enrollment: Enrollment, info: StepInfo, now: dt.datetime) -> _Move:
    kind = info.step["type"]
    handler = _HANDLERS[kind]
    return handler(enrollment, info, now)


# ---------------------------------------------------------------- send


def _send_channels(enrollment: Enrollment, step: dict[str, Any]) -> list[Channel]:
    ids: list[int] = list(step.get("channel_ids") or [])
    trigger_channel = (enrollment.context or {}).get("channel_id")
    if step.get("reply_on_trigger_channel") and trigger_channel:
        if step.get("format") == "automation":  # a rule's reply channel first (SMS after a missed call)
            ids = [*[i for i in ids if i != trigger_channel], int(trigger_channel)]
        else:
            ids = [int(trigger_channel), *[i for i in ids if i != trigger_channel]]
    found = {c.pk: c for c in Channel.objects.filter(workspace_id=enrollment.workspace_id, pk__in=ids)}
    channels = [found[i] for i in ids if i in found]
    content = step.get("content") or {}
    if step.get("format") != "automation":
        channels = [c for c in channels if c.kind in content]
    return channels


def _trigger_interaction(enrollment: Enrollment) -> Interaction | None:
    interaction_id = (enrollment.context or {}).get("interaction_id")
    if not interaction_id:
        return None
    return (
        Interaction.objects.select_related("channel", "customer", "conversation", "workspace")
        .filter(pk=interaction_id, workspace_id=enrollment.workspace_id)
        .first()
    )


@dataclass
class _Sent:
    """What one send attempt recorded: the step run's outcome, reason, detail and message."""

    outcome: str
    reason: str = ""
    detail: str = ""
    interaction: Interaction | None = None


def _send(enrollment: Enrollment, info: StepInfo, now: dt.datetime) -> _Move:
    step = info.step
    trigger = _trigger_interaction(enrollment)
    if step.get("answer") and trigger is not None:
        if interaction_is_automated(interaction=trigger):
            _run(enrollment, info, StepOutcome.SKIPPED, now, reason="automated_sender")
            return _Move(next_key=info.next_key)
        if human_has_answered(interaction=trigger):
            _run(enrollment, info, StepOutcome.SKIPPED, now, reason="human_answered")
            return _Move(next_key=info.next_key)
    sent = _send_attempt(enrollment, info, now, trigger=trigger, attempt=0, start_at=0)
    if isinstance(sent, _Move):
        return sent
    _run(
        enrollment,
        info,
        sent.outcome,
        now,
        reason=sent.reason,
        detail=sent.detail,
        interaction=sent.interaction,
    )
    return _Move(next_key=info.next_key)


def _send_attempt(
    enrollment: Enrollment,
    info: StepInfo,
    now: dt.datetime,
    *,
    trigger: Interaction | None,
    attempt: int,
    start_at: int,
) -> _Sent | _Move:
    """Guard pipeline from the ``start_at``-th candidate channel on, then ``message_send`` keyed
    ``journey:<enrollment>:<step>`` (``…:<attempt>`` for a fallback). A ``_Move`` when it must wait
    (a guard's hold)."""
    step = info.step
    journey = enrollment.journey
    purpose = step.get("purpose") or journey.purpose
    channels = _send_channels(enrollment, step)
    rules = campaign_settings_for(workspace_id=enrollment.workspace_id)
    decision = send_guard_check(
        customer=enrollment.customer,
        channels=channels,
        purpose=purpose,
        now=now,
        prefer_customer_channel=bool(step.get("prefer_customer_channel")),
        start_at=start_at,
        rules=rules,
        pace=attempt == 0,  # a fallback is not put off for pacing: it has no timer to wait on
    )
    key = f"journey:{enrollment.pk}:{step['key']}" + (f":{attempt}" if attempt else "")
    answer = step.get("format") == "automation"
    if decision.action == "hold":
        until = decision.until or now
        return _Move(waiting_for=f"hold:{decision.reason}"[:32], wait_detail=decision.detail, due_at=until)
    channel: Channel | None = decision.channel
    customer: Customer = decision.customer or enrollment.customer
    to_address: str | None = decision.address or None
    if decision.action == "skip":
        # An automated answer the customer's consent forbids is still recorded on the timeline as a
        # blocked message with the reason (message_send does that), as automation rules always did.
        if (
            answer
            and channels
            and attempt == 0
            and (decision.reason.startswith("consent:") or decision.reason == "no_address")
        ):
            channel, to_address = channels[0], None
        else:
            return _Sent(StepOutcome.SKIPPED, reason=decision.reason, detail=decision.detail)
    assert channel is not None
    conversation: Conversation | None = None
    metadata: dict[str, Any] = {
        "journey_id": journey.pk,
        "journey_name": journey.name,
        "journey_version": enrollment.version.number,
        "enrollment_id": enrollment.pk,
        "step_key": step["key"],
        "channel_index": decision.channel_index,
    }
    if attempt:
        metadata["attempt"] = attempt
    media: tuple[str, ...] = ()
    if answer:
        if trigger is None or trigger.channel is None:
            return _Sent(StepOutcome.SKIPPED, reason="no_trigger_message")
        body = template_render(template=step["template"], interaction=trigger)
        channel, conversation, to_address = reply_target(
            reply_channel=channel, interaction=trigger, channel=trigger.channel
        )
    else:
        try:
            rendered = content_render(
                content=step["content"],
                kind=channel.kind,
                customer=customer,
                purpose=purpose,
                sms_opt_out_hint=rules.sms_opt_out_hint,
            )
        except RenderFailed as exc:
            return _Sent(StepOutcome.SKIPPED, reason="render_error", detail=str(exc))
        body, media = rendered.body, rendered.media_urls
        if channel.kind == "email":
            metadata["email"] = {"subject": rendered.subject, "html": rendered.html}
        if trigger is not None and trigger.channel_id == channel.pk:
            conversation = trigger.conversation
    try:
        interaction, _ = message_send(
            workspace=enrollment.workspace,
            channel=channel,
            customer=customer,
            body=body,
            to_address=to_address,
            conversation=conversation,
            automation_rule=journey.automation_rule if journey.automation_rule_id else None,
            idempotency_key=key,
            purpose=purpose,
            media_urls=media,
            metadata=metadata,
        )
    except SendRejected as exc:
        return _Sent(StepOutcome.SKIPPED, reason="rejected", detail=str(exc))
    if interaction.status == "blocked":
        reason = str((interaction.metadata or {}).get("blocked_reason") or "blocked")
        return _Sent(StepOutcome.SKIPPED, reason=reason, interaction=interaction)
    return _Sent(StepOutcome.SENT, interaction=interaction)


def journey_send_fallback(*, interaction_id: int, now: dt.datetime | None = None) -> Interaction | None:
    """A journey message failed hard at its provider (status ``failed``: the provider refused it, or
    its retries ran out): send the step again on the next channel of the step's list, as campaigns do
    (``engagement/campaigns/sending.py`` run_sync; order from ``guards.candidate_channels``). A soft
    failure (retryable: 429, 5xx, network) is retried by the outbound task on the same channel and never
    reaches here while it is being retried.

    Under the enrollment's row lock and the step run's: only when the step run still points at the
    failed message (a redelivered event finds it moved on), never after the enrollment was removed,
    exited or reached its goal. The new message is keyed ``journey:<enrollment>:<step>:<attempt>``
    and becomes the step run's (reason ``fell_back:<error code>``); with no channel left the step run
    becomes ``failed`` with the provider's code. Returns the new message, or None."""
    now = now or journey_now()
    failed = Interaction.objects.filter(pk=interaction_id, status="failed").first()
    meta = (failed.metadata or {}) if failed is not None else {}
    if failed is None or not meta.get("enrollment_id") or not meta.get("step_key"):
        return None
    with transaction.atomic():
        enrollment = (
            Enrollment.objects.select_for_update(of=("self",))
            .select_related("journey", "version", "customer", "workspace")
            .filter(pk=int(meta["enrollment_id"]))
            .first()
        )
        if enrollment is None:
            return None
        run = (
            JourneyStepRun.objects.select_for_update()
            .filter(enrollment=enrollment, step_key=str(meta["step_key"]))
            .first()
        )
        if run is None or run.interaction_id != failed.pk:
            return None
        code = failed.error_code or "failed"
        info = _index(enrollment.version).get(run.step_key)
        ended = enrollment.state in (EnrollmentState.EXITED, EnrollmentState.REMOVED) or (
            enrollment.exit_reason == "goal"
        )
        sent: _Sent | _Move | None = None
        if info is not None and info.step["type"] == "send" and not ended:
            sent = _send_attempt(
                enrollment,
                info,
                now,
                trigger=_trigger_interaction(enrollment),
                attempt=int(meta.get("attempt") or 0) + 1,
                start_at=int(meta.get("channel_index") or 0) + 1,
            )
        if isinstance(sent, _Sent) and sent.interaction is not None:
            run.outcome, run.interaction = sent.outcome, sent.interaction
            run.reason = f"fell_back:{code}"[:64]
            kind = failed.channel.kind if failed.channel else ""
            run.detail = f"{kind} failed: {failed.error_message}"[:300]
        else:
            held = f" (the next channel: {sent.wait_detail})" if isinstance(sent, _Move) else ""
            skipped = f" (the next channel: {sent.reason})" if isinstance(sent, _Sent) and sent.reason else ""
            run.outcome, run.reason = StepOutcome.FAILED, code[:64]
            run.detail = f"{failed.error_message}{held}{skipped}"[:300]
        run.save(update_fields=["outcome", "reason", "detail", "interaction"])
    return sent.interaction if isinstance(sent, _Sent) else None


# ---------------------------------------------------------------- delay and wait


def _customer_zone(enrollment: Enrollment) -> Any:
    rules = campaign_settings_for(workspace_id=enrollment.workspace_id)
    name, _ = customer_timezone(customer=enrollment.customer)
    return zone_get(name or "", fallback=rules.default_timezone)


def delay_until(
    *, step: dict[str, Any], customer: Customer, zone: Any, now: dt.datetime
) -> dt.datetime | None:
    """When a delay step ends: ``now + seconds``; the next ``until_local_time`` in the customer's zone
    (DST-correct, ``zoneinfo``); or the date attribute plus ``offset_days`` at ``at_local_time`` (None
    when the customer has no such date, or it is past: the step is skipped)."""
    if step.get("seconds"):
        return now + dt.timedelta(seconds=int(step["seconds"]))
    if step.get("until_local_time"):
        hour, minute = map(int, step["until_local_time"].split(":"))
        local = now.astimezone(zone)
        at = wall_to_utc(local.date(), dt.time(hour, minute), zone)
        if at <= now:
            at = wall_to_utc(local.date() + dt.timedelta(days=1), dt.time(hour, minute), zone)
        return at
    raw = (customer.attributes or {}).get(step.get("until_attribute") or "")
    day = parse_date(str(raw)[:10]) if raw else None
    if day is None:
        return None
    hour, minute = map(int, (step.get("at_local_time") or "09:00").split(":"))
    at = wall_to_utc(day + dt.timedelta(days=int(step.get("offset_days") or 0)), dt.time(hour, minute), zone)
    return at if at > now else None


def _delay(enrollment: Enrollment, info: StepInfo, now: dt.datetime) -> _Move:
    if enrollment.waiting_for == "delay":  # the timer fired
        _run(enrollment, info, StepOutcome.DONE, now)
        return _Move(next_key=info.next_key)
    until = delay_until(
        step=info.step, customer=enrollment.customer, zone=_customer_zone(enrollment), now=now
    )
    if until is None:
        _run(enrollment, info, StepOutcome.SKIPPED, now, reason="no_date")
        return _Move(next_key=info.next_key)
    return _Move(waiting_for="delay", wait_detail=f"until {until:%Y-%m-%d %H:%M} UTC", due_at=until)


def _wait_for(enrollment: Enrollment, info: StepInfo, now: dt.datetime) -> _Move:
    step = info.step
    if enrollment.waiting_for == step["for"]:  # the timeout fired
        _run(enrollment, info, StepOutcome.TIMED_OUT, now)
        return _Move(next_key=branch_entry(steps=step.get("timeout") or [], next_key=info.next_key))
    if step["for"] == "segment":
        segment = Segment.objects.filter(pk=step["segment_id"], workspace_id=enrollment.workspace_id).first()
        if segment is not None and segment_contains(segment=segment, customer=enrollment.customer, now=now):
            _run(enrollment, info, StepOutcome.MATCHED, now, reason="already_in_segment")
            return _Move(next_key=branch_entry(steps=step.get("matched") or [], next_key=info.next_key))
    until = now + dt.timedelta(seconds=int(step["timeout_seconds"]))
    what = {"reply": "a reply", "event": f"event {step.get('event_name')!r}", "segment": "entering a segment"}
    return _Move(
        waiting_for=step["for"],
        wait_detail=f"waiting for {what[step['for']]} until {until:%Y-%m-%d %H:%M} UTC",
        due_at=until,
    )


def enrollment_wait_resolve(*, enrollment_id: int, waiting_for: str, now: dt.datetime | None = None) -> bool:
    """What ``enrollment_id`` waited for happened (a reply, the event, the segment): record the step
    as matched and make the matched branch due at once. False when it no longer waits for that (the
    timeout won the race, or it ended). Locks the row; the caller then advances it."""
    now = now or journey_now()
    with transaction.atomic():
        enrollment = (
            Enrollment.objects.select_for_update(of=("self",))
            .select_related("version")
            .filter(pk=enrollment_id, state=EnrollmentState.ACTIVE, waiting_for=waiting_for)
            .first()
        )
        if enrollment is None:
            return False
        info = definition_index(enrollment.version.definition).get(enrollment.current_step)
        if info is None or info.step["type"] != "wait_for":
            return False
        _run(enrollment, info, StepOutcome.MATCHED, now)
        nxt = branch_entry(steps=info.step.get("matched") or [], next_key=info.next_key)
        _save(enrollment, now, current_step=nxt, waiting_for="", wait_detail="", due_at=now, lease_until=None)
    return True


# ---------------------------------------------------------------- conditions and splits


def condition_holds(
    *, condition: dict[str, Any], customer: Customer, now: dt.datetime, enrollment: Enrollment | None = None
) -> bool:
    """Evaluate a condition branch's test for ``customer`` now (segment via the compiler's per-customer
    query, attribute, tag, consent as the ledger derives it, the channel of their newest message, and
    whether the message an earlier send step of ``enrollment`` sent was opened or clicked)."""
    kind = condition["kind"]
    if kind == "message_engaged":
        if enrollment is None:
            return False
        sent = (
            JourneyStepRun.objects.filter(enrollment=enrollment, step_key=condition["step"])
            .values_list("interaction__metadata", flat=True)
            .first()
        )
        stats = (sent or {}).get("engagement") or {}
        return int(stats.get("clicks" if condition["engagement"] == "click" else "opens") or 0) > 0
    if kind == "segment":
        segment = Segment.objects.filter(
            pk=condition["segment_id"], workspace_id=customer.workspace_id
        ).first()
        return segment is not None and segment_contains(segment=segment, customer=customer, now=now)
    if kind == "attribute":
        attrs = customer.attributes or {}
        key, op = condition["key"], condition["op"]
        present = attrs.get(key) not in (None, "")
        if op == "is_set":
            return present
        if op == "not_set":
            return not present
        value, wanted = attrs.get(key), condition.get("value")
        if op == "equals":
            return present and str(value).casefold() == str(wanted).casefold()
        if op == "not_equals":
            return not present or str(value).casefold() != str(wanted).casefold()
        if op == "contains":
            return present and str(wanted).casefold() in str(value).casefold()
        try:
            left, right = float(value), float(wanted)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            left_s, right_s = str(value), str(wanted)  # ISO dates compare as text
            return present and (left_s > right_s if op == "greater" else left_s < right_s)
        return left > right if op == "greater" else left < right
    if kind == "tag":
        return condition["tag"] in (customer.tags or [])
    if kind == "consent":
        return consent_check_send(
            customer=customer, channel_kind=condition["channel_kind"], purpose=condition["purpose"]
        ).allowed
    if kind == "last_channel":
        last = (
            Interaction.objects.filter(customer=customer, direction=Direction.INBOUND, channel__isnull=False)
            .order_by("-created_at", "-id")
            .values_list("channel__kind", flat=True)
            .first()
        )
        return last == condition["channel_kind"]
    return False


def _condition(enrollment: Enrollment, info: StepInfo, now: dt.datetime) -> _Move:
    step = info.step
    holds = condition_holds(
        condition=step["if"], customer=enrollment.customer, now=now, enrollment=enrollment
    )
    _run(enrollment, info, StepOutcome.DONE, now, reason="yes" if holds else "no")
    branch = step.get("yes") if holds else step.get("no")
    return _Move(next_key=branch_entry(steps=branch or [], next_key=info.next_key))


def split_branch(*, journey_id: int, step_key: str, customer_id: int, weights: list[int]) -> int:
    """The branch index for a customer: ``md5("<journey>:<step>:<customer>")`` (first 32 bits) over the
    cumulative weights, so a customer always lands on the same branch (re-entries, retries)."""
    digest = hashlib.md5(f"{journey_id}:{step_key}:{customer_id}".encode(), usedforsecurity=False).digest()
    point = int.from_bytes(digest[:4], "big") % sum(weights)
    total = 0
    for i, weight in enumerate(weights):
        total += weight
        if point < total:
            return i
    return len(weights) - 1


def _random_split(enrollment: Enrollment, info: StepInfo, now: dt.datetime) -> _Move:
    branches = info.step["branches"]
    chosen = split_branch(
        journey_id=enrollment.journey_id,
        step_key=info.step["key"],
        customer_id=enrollment.customer_id,
        weights=[int(b["weight"]) for b in branches],
    )
    _run(enrollment, info, StepOutcome.DONE, now, reason=f"branch:{chosen}")
    return _Move(next_key=branch_entry(steps=branches[chosen].get("steps") or [], next_key=info.next_key))


# ---------------------------------------------------------------- actions


def _update(enrollment: Enrollment, info: StepInfo, now: dt.datetime) -> _Move:
    step = info.step
    customer = enrollment.customer
    try:
        tags = None
        if step.get("remove_tags"):
            tags = [t for t in customer.tags or [] if t not in step["remove_tags"]]
        updated = customer_update(
            workspace=enrollment.workspace,
            customer=customer,
            attributes=dict(step.get("set_attributes") or {}) or None,
            tags=tags,
            add_tags=list(step.get("add_tags") or []) or None,
        )
        enrollment.customer = updated
        _run(enrollment, info, StepOutcome.DONE, now)
    except ProfileInvalid as exc:
        _run(enrollment, info, StepOutcome.FAILED, now, reason="profile_invalid", detail=str(exc))
    return _Move(next_key=info.next_key)


def _conversation_for(enrollment: Enrollment) -> Conversation | None:
    conversation_id = (enrollment.context or {}).get("conversation_id")
    rows = Conversation.objects.filter(
        workspace_id=enrollment.workspace_id, customer_id=enrollment.customer_id
    )
    if conversation_id:
        found = rows.filter(pk=conversation_id).first()
        if found is not None:
            return found
    return rows.order_by("-last_activity_at", "-id").first()


def _assign_conversation(enrollment: Enrollment, info: StepInfo, now: dt.datetime) -> _Move:
    conversation = _conversation_for(enrollment)
    if conversation is None:
        _run(enrollment, info, StepOutcome.SKIPPED, now, reason="no_conversation")
        return _Move(next_key=info.next_key)
    conversation.assignee_id = info.step.get("assignee_id")
    conversation.save(update_fields=["assignee"])
    events.publish_on_commit(
        events.DomainEvent(
            name=events.CONVERSATION_UPDATED,
            workspace_id=enrollment.workspace_id,
            conversation_id=conversation.pk,
            customer_id=conversation.customer_id,
            data={"assignee_id": conversation.assignee_id},
        )
    )
    _run(enrollment, info, StepOutcome.DONE, now)
    return _Move(next_key=info.next_key)


def _create_task(enrollment: Enrollment, info: StepInfo, now: dt.datetime) -> _Move:
    step = info.step
    due = now + dt.timedelta(seconds=int(step["due_in_seconds"])) if step.get("due_in_seconds") else None
    agent_task_create(
        workspace=enrollment.workspace,
        customer=enrollment.customer,
        title=step["title"],
        detail=step.get("detail") or f"From the journey {enrollment.journey.name!r}",
        conversation=_conversation_for(enrollment),
        assignee_id=step.get("assignee_id"),
        due_at=due,
        enrollment=enrollment,
        now=now,
    )
    _run(enrollment, info, StepOutcome.DONE, now)
    return _Move(next_key=info.next_key)


def _webhook(enrollment: Enrollment, info: StepInfo, now: dt.datetime) -> _Move:
    """Publishes ``journey.webhook``; the outbound webhooks room delivers it to subscribed endpoints."""
    events.publish_on_commit(
        events.DomainEvent(
            name=events.JOURNEY_WEBHOOK,
            workspace_id=enrollment.workspace_id,
            customer_id=enrollment.customer_id,
            data={
                "journey_id": enrollment.journey_id,
                "enrollment_id": enrollment.pk,
                "step": info.step["key"],
                "name": info.step.get("name") or info.step["key"],
                "data": info.step.get("data") or {},
            },
        )
    )
    _run(enrollment, info, StepOutcome.DONE, now)
    return _Move(next_key=info.next_key)


def _exit(enrollment: Enrollment, info: StepInfo, now: dt.datetime) -> _Move:
    _run(enrollment, info, StepOutcome.DONE, now)
    return _Move(end=EnrollmentState.EXITED, end_reason="exit_step")


_HANDLERS = {
    "send": _send,
    "delay": _delay,
    "wait_for": _wait_for,
    "condition": _condition,
    "random_split": _random_split,
    "update": _update,
    "assign_conversation": _assign_conversation,
    "create_task": _create_task,
    "webhook": _webhook,
    "exit": _exit,
}


# ---------------------------------------------------------------- a test run for one customer


def journey_simulate(
    *,
    journey: Any,
    customer: Customer,
    definition: dict[str, Any] | None = None,
    waits: str = "timeout",
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """Which path ``customer`` would take through ``definition`` (default: the journey's draft,
    validated), without changing anything: ``[{"key", "type", "label", "decision"}]`` in order.

    Sends run the guard pipeline without pacing ("send on sms to +1…", "skip: consent:…", "hold:
    quiet_hours…"); delays give their end; conditions and splits are evaluated now (a "message
    opened/clicked" test counts as not yet); a wait takes the ``waits`` branch ("timeout" or "matched").
    Errors: DefinitionInvalid for a definition that does not validate."""
    from .services import journey_validate

    now = now or journey_now()
    clean, _, _ = journey_validate(workspace=journey.workspace, definition=definition or journey.definition)
    index = definition_index(clean)
    rules = campaign_settings_for(workspace_id=customer.workspace_id)
    zone = zone_get(customer_timezone(customer=customer)[0] or "", fallback=rules.default_timezone)
    path: list[dict[str, Any]] = []
    key = clean["steps"][0]["key"]
    with transaction.atomic():  # the frequency cap's row lock, released at once; nothing is written
        while key and len(path) < MAX_STEPS_PER_ADVANCE:
            info = index[key]
            step = info.step
            decision, key = _simulate_step(journey, customer, info, rules, zone, waits, now)
            path.append(
                {
                    "key": step["key"],
                    "type": step["type"],
                    "label": step.get("label", ""),
                    "decision": decision,
                }
            )
    return path


def _simulate_step(
    journey: Any, customer: Customer, info: StepInfo, rules: Any, zone: Any, waits: str, now: dt.datetime
) -> tuple[str, str]:
    step = info.step
    kind = step["type"]
    if kind == "send":
        ids = list(step.get("channel_ids") or [])
        found = {c.pk: c for c in Channel.objects.filter(workspace_id=customer.workspace_id, pk__in=ids)}
        channels = [found[i] for i in ids if i in found]
        if step.get("format") != "automation":
            channels = [c for c in channels if c.kind in (step.get("content") or {})]
        decision = send_guard_check(
            customer=customer,
            channels=channels,
            purpose=step.get("purpose") or journey.purpose,
            now=now,
            prefer_customer_channel=bool(step.get("prefer_customer_channel")),
            rules=rules,
            pace=False,
        )
        if decision.action == "send" and decision.channel is not None:
            return f"send on {decision.channel.kind} to {decision.address}", info.next_key
        if decision.action == "hold":
            return f"hold: {decision.reason} ({decision.detail}), then send", info.next_key
        return f"skip: {decision.reason}", info.next_key
    if kind == "delay":
        until = delay_until(step=step, customer=customer, zone=zone, now=now)
        return (f"wait until {until:%Y-%m-%d %H:%M} UTC" if until else "skip: no date"), info.next_key
    if kind == "wait_for":
        branch = step.get("matched") if waits == "matched" else step.get("timeout")
        what = "it happens" if waits == "matched" else f"{step['timeout_seconds']} s pass without it"
        return f"wait for {step['for']}: assumed {what}", branch_entry(
            steps=branch or [], next_key=info.next_key
        )
    if kind == "condition":
        holds = condition_holds(condition=step["if"], customer=customer, now=now)
        branch = step.get("yes") if holds else step.get("no")
        return ("yes" if holds else "no"), branch_entry(steps=branch or [], next_key=info.next_key)
    if kind == "random_split":
        branches = step["branches"]
        chosen = split_branch(
            journey_id=journey.pk,
            step_key=step["key"],
            customer_id=customer.pk,
            weights=[int(b["weight"]) for b in branches],
        )
        return f"branch {chosen + 1}", branch_entry(
            steps=branches[chosen].get("steps") or [], next_key=info.next_key
        )
    if kind == "exit":
        return "exit", ""
    return {
        "update": "update the profile",
        "assign_conversation": "assign the conversation",
        "create_task": f"create the task {step.get('title')!r}",
        "webhook": "call the outbound webhook",
    }[kind], info.next_key
