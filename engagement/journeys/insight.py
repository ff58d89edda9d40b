"""What a journey would do and what it did: a test run for one customer (a dry run that sends nothing)
and per-step stats for the editor.

:func:`journey_test_run` walks the journey's draft (validated as publishing would) for one customer with
the engine's own decisions (``send_guard_check`` without pacing, ``delay_until``, ``condition_holds``,
``split_branch``), inside a transaction that is always rolled back: nothing is sent, enrolled or
written. What cannot be known in advance (whether a reply or event comes while a step waits for it) is
an assumption the caller picks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count

from customers.models import Customer
from customers.profile import customer_timezone
from engagement.campaigns.content import RenderFailed, content_render
from engagement.campaigns.schedule import zone_get
from engagement.errors import NotFound, ValidationFailed
from engagement.models import Channel, Enrollment, EnrollmentState, Journey, ReentryPolicy, Segment
from engagement.segments.services import segment_contains
from engagement.services.guards import campaign_settings_for, send_guard_check

from .clock import journey_now
from .definition import branch_entry, definition_index
from .engine import condition_holds, delay_until, split_branch
from .services import journey_stats, journey_validate

WAIT_ASSUMPTIONS = ("timeout", "matched")


class _DryRun(Exception):
    """Raised at the end of a test run to roll its transaction back."""


MAX_TEST_STEPS = 200


@dataclass
class TestStep:
    """One step of the path: what would happen (``outcome``: send, skip, hold, wait, branch, done,
    exit) and why (``detail``), at the simulated time ``at``; ``depth`` is its indentation."""

    key: str
    type: str
    label: str
    depth: int
    outcome: str
    detail: str
    at: dt.datetime
    preview: str = ""


@dataclass
class TestRun:
    """The path ``customer`` would take: its steps, how it ends (``end``) and notes about entry (the
    re-entry policy) and goals."""

    customer: Customer
    steps: list[TestStep] = field(default_factory=list)
    end: str = ""
    notes: list[str] = field(default_factory=list)


def condition_text(condition: dict[str, Any]) -> str:
    """A condition branch's test in words (``definition.condition_validate``'s shapes)."""
    kind = condition.get("kind")
    if kind == "segment":
        return f"in segment {condition.get('segment_id')}"
    if kind == "attribute":
        op = str(condition.get("op") or "equals").replace("_", " ")
        value = "" if op in ("is set", "not set") else f" {condition.get('value')!r}"
        return f"attribute {condition.get('key')} {op}{value}"
    if kind == "tag":
        return f"tagged “{condition.get('tag')}”"
    if kind == "consent":
        return f"consents to {condition.get('purpose')} {condition.get('channel_kind')}"
    if kind == "last_channel":
        return f"last wrote on {condition.get('channel_kind')}"
    if kind == "message_engaged":
        verb = "clicked a link in" if condition.get("engagement") == "click" else "opened"
        return f"{verb} the message of step {condition.get('step')}"
    return str(condition)


def _depths(definition: dict[str, Any]) -> dict[str, int]:
    depths: dict[str, int] = {}

    def walk(steps: list[dict[str, Any]], depth: int) -> None:
        for step in steps:
            depths[step["key"]] = depth
            for name in ("matched", "timeout", "yes", "no"):
                walk(step.get(name) or [], depth + 1)
            for branch in step.get("branches") or []:
                walk(branch.get("steps") or [], depth + 1)

    walk(definition.get("steps") or [], 0)
    return depths


def _entry_notes(journey: Journey, customer: Customer) -> list[str]:
    notes = []
    mine = Enrollment.objects.filter(journey=journey, customer=customer)
    if journey.reentry == ReentryPolicy.ONCE_EVER and mine.exists():
        notes.append(
            "This customer was in this journey before; it enters once ever, so the trigger would not "
            "enroll them."
        )
    elif journey.reentry != ReentryPolicy.EVERY_TIME and mine.filter(state=EnrollmentState.ACTIVE).exists():
        notes.append(
            "This customer is in this journey now; it enters once at a time, so the trigger would not "
            "enroll them again."
        )
    if journey.goal:
        notes.append(f"Goal {journey.goal}: reaching it at any step ends the journey at once.")
    for condition in journey.exit_conditions or []:
        notes.append(f"Exit condition {condition}: it ends the journey at once.")
    return notes


def journey_test_run(
    *, journey: Journey, customer: Customer, waits: str = "timeout", now: dt.datetime | None = None
) -> TestRun:
    """The path ``customer`` would take through the journey's draft if enrolled at ``now``, sending
    nothing. ``waits``: what happens at a wait-for step, "timeout" (nothing comes) or "matched" (the
    reply / event / segment comes at once). Delays move the simulated clock (``TestStep.at``).

    Errors: DefinitionInvalid (400) when the draft does not validate (the same message publishing
    gives), ValidationFailed for an unknown ``waits``, NotFound for a customer of another workspace."""
    if waits not in WAIT_ASSUMPTIONS:
        raise ValidationFailed(f"waits must be one of {', '.join(WAIT_ASSUMPTIONS)}", field="waits")
    if customer.workspace_id != journey.workspace_id:
        raise NotFound("no such customer in this workspace", field="customer")
    definition, _, _ = journey_validate(
        workspace=journey.workspace,
        definition=journey.definition,
        goal=journey.goal,
        exit_conditions=journey.exit_conditions,
    )
    at = now or journey_now()
    run = TestRun(customer=customer, notes=_entry_notes(journey, customer))
    index = definition_index(definition)
    depths = _depths(definition)
    rules = campaign_settings_for(workspace_id=journey.workspace_id)
    zone_name, _ = customer_timezone(customer=customer)
    zone = zone_get(zone_name or "", fallback=rules.default_timezone)
    channels = {c.pk: c for c in Channel.objects.filter(workspace_id=journey.workspace_id)}
    key = definition["steps"][0]["key"]
    try:
        with transaction.atomic():
            for _ in range(MAX_TEST_STEPS):
                if not key:
                    run.end = "completed: the last step is done"
                    break
                info = index[key]
                step = info.step

                def add(
                    outcome: str,
                    detail: str,
                    preview: str = "",
                    *,
                    _step: dict[str, Any] = step,
                    _at: dt.datetime = at,
                ) -> None:
                    run.steps.append(
                        TestStep(
                            key=_step["key"],
                            type=_step["type"],
                            label=str(_step.get("label") or ""),
                            depth=depths.get(_step["key"], 0),
                            outcome=outcome,
                            detail=detail,
                            at=_at,
                            preview=preview,
                        )
                    )

                kind = step["type"]
                nxt: str = info.next_key
                if kind == "send":
                    purpose = step.get("purpose") or journey.purpose
                    candidates = [channels[i] for i in step.get("channel_ids") or [] if i in channels]
                    if step.get("format") != "automation":
                        candidates = [c for c in candidates if c.kind in (step.get("content") or {})]
                    if step.get("reply_on_trigger_channel"):
                        add_note = "replies on the channel of the message that triggered it"
                    else:
                        add_note = ""
                    decision = send_guard_check(
                        customer=customer,
                        channels=candidates,
                        purpose=purpose,
                        now=at,
                        prefer_customer_channel=bool(step.get("prefer_customer_channel")),
                        rules=rules,
                        pace=False,
                    )
                    if decision.action == "skip":
                        if not candidates and add_note:
                            add("send", f"would send a {purpose} message: {add_note}")
                        else:
                            add("skip", f"skipped: {decision.reason} ({decision.detail})")
                    else:
                        # A hold (quiet hours) sends when it ends: shown as held, the clock moved on.
                        held = f"held ({decision.detail}), then " if decision.action == "hold" else ""
                        channel = decision.channel
                        assert channel is not None
                        preview = ""
                        if step.get("format") == "automation":
                            preview = step.get("template") or ""
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
                                add("skip", f"skipped: render_error ({exc})")
                                key = nxt
                                continue
                            preview = (f"{rendered.subject}: " if rendered.subject else "") + rendered.body
                        add(
                            "hold" if held else "send",
                            f"{held}would send by {channel.kind} ({channel.name}) to {decision.address}",
                            preview,
                        )
                        if held and decision.until is not None:
                            at = max(at, decision.until)
                elif kind == "delay":
                    until = delay_until(step=step, customer=customer, zone=zone, now=at)
                    if until is None:
                        add("skip", "skipped: the customer has no such date, or it is past")
                    else:
                        add("wait", f"waits until {until:%Y-%m-%d %H:%M} UTC")
                        at = until
                elif kind == "wait_for":
                    timeout_at = at + dt.timedelta(seconds=int(step["timeout_seconds"]))
                    already = False
                    if step["for"] == "segment":
                        segment = Segment.objects.filter(
                            pk=step["segment_id"], workspace_id=journey.workspace_id
                        ).first()
                        already = segment is not None and segment_contains(
                            segment=segment, customer=customer, now=at
                        )
                    what = {
                        "reply": "a reply",
                        "event": f"event {step.get('event_name')!r}",
                        "segment": "entering the segment",
                    }[step["for"]]
                    if already or waits == "matched":
                        why = "already in the segment" if already else f"assuming {what} comes"
                        add("branch", f"waits for {what}: {why} → “It happened”")
                        nxt = branch_entry(steps=step.get("matched") or [], next_key=info.next_key)
                    else:
                        add(
                            "branch",
                            f"waits for {what} until {timeout_at:%Y-%m-%d %H:%M} UTC: "
                            "assuming none → “Timed out”",
                        )
                        at = timeout_at
                        nxt = branch_entry(steps=step.get("timeout") or [], next_key=info.next_key)
                elif kind == "condition":
                    holds = condition_holds(condition=step["if"], customer=customer, now=at, enrollment=None)
                    extra = (
                        " (a test run sends nothing, so nothing was opened or clicked)"
                        if step["if"]["kind"] == "message_engaged"
                        else ""
                    )
                    add("branch", f"if {condition_text(step['if'])}: {'yes' if holds else 'no'}{extra}")
                    nxt = branch_entry(steps=step.get("yes" if holds else "no") or [], next_key=info.next_key)
                elif kind == "random_split":
                    branches = step["branches"]
                    chosen = split_branch(
                        journey_id=journey.pk,
                        step_key=step["key"],
                        customer_id=customer.pk,
                        weights=[int(b["weight"]) for b in branches],
                    )
                    add("branch", f"random split: this customer always lands on branch {chosen + 1}")
                    nxt = branch_entry(steps=branches[chosen].get("steps") or [], next_key=info.next_key)
                elif kind == "update":
                    parts = []
                    if step.get("set_attributes"):
                        parts.append(f"set {step['set_attributes']}")
                    if step.get("add_tags"):
                        parts.append(f"tag {', '.join(step['add_tags'])}")
                    if step.get("remove_tags"):
                        parts.append(f"untag {', '.join(step['remove_tags'])}")
                    add("done", "would " + "; ".join(parts))
                elif kind == "assign_conversation":
                    add(
                        "done",
                        f"would assign their conversation to member {step.get('assignee_id') or '(nobody)'}",
                    )
                elif kind == "create_task":
                    add("done", f"would create the task “{step['title']}” for an agent")
                elif kind == "webhook":
                    add("done", f"would call the outbound webhook “{step.get('name')}”")
                elif kind == "exit":
                    add("exit", "exits the journey")
                    run.end = "exited at an exit step"
                    break
                key = nxt
            else:
                run.end = f"stopped after {MAX_TEST_STEPS} steps"
            raise _DryRun
    except _DryRun:
        pass  # rolled back: nothing a guard or a segment query might write survives
    return run


# ---------------------------------------------------------------- stats


def journey_step_stats(*, journey: Journey, version_number: int | None = None) -> dict[str, Any]:
    """``journey_stats`` (per step: entered, waiting, sent, skipped by reason, outcomes; totals) plus,
    per step, the enrollments that ended there by reaching the goal (``exited_goal``) or an exit
    condition (``exited_condition``), from one more grouped query. ``version_number`` limits it to
    one version (None: all versions; step keys carry across versions)."""
    version = journey.versions.filter(number=version_number).first() if version_number else None
    stats = journey_stats(journey=journey, version=version)
    ended = Enrollment.objects.filter(journey=journey, exit_reason__in=("goal", "exit_condition"))
    if version is not None:
        ended = ended.filter(version=version)
    for row in ended.values("current_step", "exit_reason").annotate(n=Count("id")):
        slot = stats["steps"].setdefault(
            row["current_step"], {"entered": 0, "waiting": 0, "sent": 0, "skipped": {}, "outcomes": {}}
        )
        name = "exited_goal" if row["exit_reason"] == "goal" else "exited_condition"
        slot[name] = slot.get(name, 0) + row["n"]
    for slot in stats["steps"].values():
        slot.setdefault("exited_goal", 0)
        slot.setdefault("exited_condition", 0)
        slot["skipped_total"] = sum(slot["skipped"].values())
    stats["version"] = version.number if version is not None else None
    return stats
