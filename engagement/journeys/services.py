"""Journeys: create, edit, publish (a new version), pause, archive; enroll and remove customers; agent
tasks; stats. Console pages, the REST API and the engine call these.

The engine that moves enrollments step by step is ``engine.py``; the scheduler that fires timers is
``scheduler.py``; triggers from domain events are ``triggers.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q

from customers.models import Customer
from engagement import events
from engagement.errors import Conflict, NotFound, ValidationFailed
from engagement.models import (
    AgentTask,
    Campaign,
    Channel,
    Conversation,
    Enrollment,
    EnrollmentState,
    Journey,
    JourneyStatus,
    JourneyStepRun,
    JourneyVersion,
    Membership,
    ReentryPolicy,
    Segment,
    Workspace,
)

from .clock import journey_now
from .definition import (
    DefinitionInvalid,
    definition_index,
    definition_references,
    definition_validate,
    first_step_key,
    goals_validate,
)
from .tasks import journeys_advance_task

JOURNEY_EDITABLE = ("name", "description", "reentry", "purpose", "definition", "goal", "exit_conditions")
ENROLLMENT_CHANGED = "journey.enrollment_changed"
AGENT_TASK_CREATED = "agent_task.created"


class JourneyStateConflict(Conflict):
    code = "journey_state"
    title = "The journey's state does not allow this"


class EnrollmentRefused(Conflict):
    """The journey's re-entry policy refuses the customer (already in it, or was once)."""

    code = "enrollment_refused"
    title = "The customer cannot enter this journey now"


# ---------------------------------------------------------------- validation


def journey_validate(
    *, workspace: Workspace, definition: Any, goal: Any = None, exit_conditions: Any = None
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """``(definition, goal, exit_conditions)`` normalized, or DefinitionInvalid (400) naming the path
    (``$.steps[2].channel_ids: …``). Ids of channels, segments, members and campaigns must belong to
    ``workspace`` (checked in a few queries, whatever the size)."""
    clean = definition_validate(definition)
    clean_goal, clean_exits = goals_validate(goal, exit_conditions)
    refs = definition_references(clean)
    for cond in [clean_goal, *clean_exits]:
        if cond.get("segment_id"):
            refs["segments"].add(int(cond["segment_id"]))
    checks: list[tuple[str, Any, str]] = [
        ("channels", Channel.objects.filter(workspace=workspace), "channel"),
        ("segments", Segment.objects.filter(workspace=workspace), "segment"),
        ("campaigns", Campaign.objects.filter(workspace=workspace), "campaign"),
        ("users", Membership.objects.filter(workspace=workspace), "member"),
    ]
    for name, queryset, label in checks:
        wanted = refs[name]
        if not wanted:
            continue
        column = "user_id" if name == "users" else "pk"
        found = set(queryset.filter(**{f"{column}__in": wanted}).values_list(column, flat=True))
        missing = sorted(wanted - found)
        if missing:
            raise DefinitionInvalid(
                f"$: unknown {label} id(s) in this workspace: {', '.join(map(str, missing))}",
                field="definition",
            )
    return clean, clean_goal, clean_exits


# ---------------------------------------------------------------- journeys


def journey_create(
    *,
    workspace: Workspace,
    name: str,
    definition: dict[str, Any] | None = None,
    description: str = "",
    reentry: str = ReentryPolicy.ONCE_AT_A_TIME,
    purpose: str = "transactional",
    goal: dict[str, Any] | None = None,
    exit_conditions: list[dict[str, Any]] | None = None,
    actor: AbstractBaseUser | None = None,
) -> Journey:
    """A draft journey. The definition may be incomplete while a draft (it is validated at publish);
    name, re-entry and purpose are checked now (ValidationFailed)."""
    journey = Journey(
        workspace=workspace,
        created_by=actor if actor is not None and actor.is_authenticated else None,  # type: ignore[misc]
    )
    _apply(
        journey,
        {
            "name": name,
            "description": description,
            "reentry": reentry,
            "purpose": purpose,
            "definition": definition or {},
            "goal": goal or {},
            "exit_conditions": exit_conditions or [],
        },
    )
    journey.save()
    return journey


def _apply(journey: Journey, fields: dict[str, Any]) -> None:
    unknown = sorted(set(fields) - set(JOURNEY_EDITABLE))
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    if "name" in fields:
        name = str(fields["name"] or "").strip()
        if not name or len(name) > 200:
            raise ValidationFailed("name is 1-200 characters", field="name")
        fields["name"] = name
    if "reentry" in fields and fields["reentry"] not in ReentryPolicy.values:
        raise ValidationFailed(f"reentry must be one of {', '.join(ReentryPolicy.values)}", field="reentry")
    if "purpose" in fields and fields["purpose"] not in ("transactional", "marketing"):
        raise ValidationFailed("purpose must be transactional or marketing", field="purpose")
    if "definition" in fields and not isinstance(fields["definition"], dict):
        raise ValidationFailed("definition must be an object", field="definition")
    for key, value in fields.items():
        setattr(journey, key, value)


def journey_update(*, journey: Journey, **fields: Any) -> Journey:
    """Change the draft (any of ``JOURNEY_EDITABLE``). A live journey keeps running its live version
    until :func:`journey_publish` makes the edit the next version. Archived journeys are read-only."""
    if journey.status == JourneyStatus.ARCHIVED:
        raise JourneyStateConflict("an archived journey cannot be edited")
    _apply(journey, dict(fields))
    journey.save()
    return journey


def journey_publish(*, journey: Journey, actor: AbstractBaseUser | None = None) -> JourneyVersion:
    """Validate the draft and freeze it as the next version; the journey goes live on it.

    New enrollments start on the new version; enrollments in flight finish on theirs. Errors:
    DefinitionInvalid (400, naming the step and field), JourneyStateConflict (archived)."""
    if journey.status == JourneyStatus.ARCHIVED:
        raise JourneyStateConflict("an archived journey cannot be published")
    definition, goal, exits = journey_validate(
        workspace=journey.workspace,
        definition=journey.definition,
        goal=journey.goal,
        exit_conditions=journey.exit_conditions,
    )
    with transaction.atomic():
        locked = Journey.objects.select_for_update().get(pk=journey.pk)
        number = (JourneyVersion.objects.filter(journey=locked).aggregate(n=Max("number"))["n"] or 0) + 1
        version = JourneyVersion.objects.create(
            journey=locked,
            number=number,
            definition=definition,
            goal=goal,
            exit_conditions=exits,
            created_by=actor if actor is not None and actor.is_authenticated else None,  # type: ignore[misc]
            created_at=journey_now(),
        )
        locked.definition, locked.goal, locked.exit_conditions = definition, goal, exits
        locked.live_version = version
        locked.trigger_type = definition["trigger"]["type"]
        locked.status = JourneyStatus.LIVE
        locked.save()
    journey.refresh_from_db()
    return version


def journey_pause(*, journey: Journey) -> Journey:
    """No new enrollments; enrollments in flight stop where they are (timers are not fired) until
    :func:`journey_resume`."""
    return _set_status(journey, JourneyStatus.PAUSED, allowed=(JourneyStatus.LIVE,))


def journey_resume(*, journey: Journey) -> Journey:
    return _set_status(journey, JourneyStatus.LIVE, allowed=(JourneyStatus.PAUSED,))


def journey_archive(*, journey: Journey) -> Journey:
    """Stop the journey for good: its active enrollments are removed ("archived")."""
    with transaction.atomic():
        journey = _set_status(
            journey,
            JourneyStatus.ARCHIVED,
            allowed=(JourneyStatus.DRAFT, JourneyStatus.LIVE, JourneyStatus.PAUSED),
        )
        now = journey_now()
        Enrollment.objects.filter(journey=journey, state=EnrollmentState.ACTIVE).update(
            state=EnrollmentState.REMOVED,
            exit_reason="archived",
            due_at=None,
            lease_until=None,
            finished_at=now,
            updated_at=now,
        )
    return journey


def _set_status(journey: Journey, status: str, *, allowed: tuple[str, ...]) -> Journey:
    with transaction.atomic():
        locked = Journey.objects.select_for_update().get(pk=journey.pk)
        if locked.status not in allowed:
            raise JourneyStateConflict(f"a {locked.status} journey cannot become {status}")
        if status == JourneyStatus.LIVE and locked.live_version_id is None:
            raise JourneyStateConflict("publish the journey first")
        locked.status = status
        locked.save(update_fields=["status", "updated_at"])
    return locked


def journey_delete(*, journey: Journey) -> None:
    """Delete a journey that never enrolled anyone (JourneyStateConflict otherwise: archive it)."""
    if Enrollment.objects.filter(journey=journey).exists():
        raise JourneyStateConflict("this journey has enrollments; archive it instead")
    journey.delete()


# ---------------------------------------------------------------- enrollments


def enrollment_create(
    *,
    journey: Journey,
    customer: Customer,
    context: dict[str, Any] | None = None,
    trigger_key: str = "",
    now: dt.datetime | None = None,
) -> tuple[Enrollment | None, str]:
    """Enroll ``customer`` in ``journey``'s live version, due at once: ``(enrollment, "")`` or
    ``(None, reason)`` when refused: "not_live", "already_active" (once at a time / once ever),
    "already_enrolled" (once ever), "duplicate_trigger" (this event enrolled them already).

    Runs in the caller's transaction or its own; races are settled by the partial unique indexes
    (one active exclusive enrollment per journey and customer; one per trigger key), in a savepoint.
    Publishes ``journey.enrollment_changed`` after commit; the engine takes it from there."""
    now = now or journey_now()
    if journey.status != JourneyStatus.LIVE or journey.live_version_id is None:
        return None, "not_live"
    if customer.merged_into_id is not None or customer.erased_at is not None:
        return None, "customer_gone"
    exclusive = journey.reentry != ReentryPolicy.EVERY_TIME
    mine = Enrollment.objects.filter(journey=journey, customer=customer)
    if journey.reentry == ReentryPolicy.ONCE_EVER and mine.exists():
        return None, "already_enrolled"
    if exclusive and mine.filter(state=EnrollmentState.ACTIVE).exists():
        return None, "already_active"
    version = journey.live_version
    assert version is not None
    try:
        with transaction.atomic():
            if journey.reentry == ReentryPolicy.ONCE_EVER:
                # Serialize entries of this customer so two events cannot both pass the check above.
                Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk").first()
                if mine.exists():
                    return None, "already_enrolled"
            enrollment = Enrollment.objects.create(
                workspace_id=journey.workspace_id,
                journey=journey,
                version=version,
                customer=customer,
                exclusive=exclusive,
                trigger_key=trigger_key[:200],
                context=context or {},
                current_step=first_step_key(version.definition),
                due_at=now,
                entered_at=now,
                updated_at=now,
            )
    except IntegrityError:
        if trigger_key and mine.filter(trigger_key=trigger_key[:200]).exists():
            return None, "duplicate_trigger"
        return None, "already_active"
    _changed(enrollment)
    return enrollment, ""


def journey_enroll(
    *, journey: Journey, customer: Customer, context: dict[str, Any] | None = None, trigger_key: str = ""
) -> Enrollment:
    """Enroll by hand (API, console): the enrollment, or EnrollmentRefused (409) with the reason. Its
    first steps run in a task after commit (``journeys_advance_task``)."""
    if customer.workspace_id != journey.workspace_id:
        raise NotFound("no such customer in this workspace", field="customer_id")
    enrollment, reason = enrollment_create(
        journey=journey, customer=customer, context=context or {"manual": True}, trigger_key=trigger_key
    )
    if enrollment is None:
        messages = {
            "not_live": "the journey is not live",
            "customer_gone": "the customer was merged away or erased",
            "already_enrolled": "the customer was in this journey once; it enters once ever",
            "already_active": "the customer is in this journey now; it enters once at a time",
            "duplicate_trigger": "this trigger already enrolled the customer",
        }
        raise EnrollmentRefused(messages.get(reason, reason), extra={"reason": reason})
    ids = [enrollment.pk]
    transaction.on_commit(lambda: journeys_advance_task.delay(ids))
    return enrollment


def enrollment_finish(
    *, enrollment: Enrollment, state: str, reason: str, now: dt.datetime | None = None
) -> bool:
    """End an active enrollment (completed / exited / removed) with ``reason``; its timer and pending
    steps are cancelled at once (one conditional UPDATE: a concurrent step that holds the row lock
    finishes first, then finds the enrollment ended). False when it had already ended. The step it
    ended at is kept (``enrollment.current_step`` as given)."""
    now = now or journey_now()
    values: dict[str, Any] = {
        "state": state,
        "exit_reason": reason[:64],
        "due_at": None,
        "lease_until": None,
        "waiting_for": "",
        "wait_detail": "",
        "finished_at": now,
        "updated_at": now,
        "current_step": enrollment.current_step,
    }
    with transaction.atomic(savepoint=False):  # inside the engine's step transaction: no savepoint
        updated = Enrollment.objects.filter(pk=enrollment.pk, state=EnrollmentState.ACTIVE).update(**values)
        if updated:
            for name, value in values.items():
                setattr(enrollment, name, value)
            _changed(enrollment)
    return bool(updated)


def enrollment_remove(*, enrollment: Enrollment, actor: AbstractBaseUser | None = None) -> Enrollment:
    """An agent or the API takes the customer out of the journey: removed, pending steps cancelled.
    JourneyStateConflict when the enrollment has already ended."""
    if not enrollment_finish(enrollment=enrollment, state=EnrollmentState.REMOVED, reason="removed"):
        raise JourneyStateConflict(f"this enrollment has already ended ({enrollment.state})")
    enrollment.refresh_from_db()
    return enrollment


def _changed(enrollment: Enrollment) -> None:
    events.publish_on_commit(
        events.DomainEvent(
            name=ENROLLMENT_CHANGED,
            workspace_id=enrollment.workspace_id,
            customer_id=enrollment.customer_id,
            data={
                "enrollment_id": enrollment.pk,
                "journey_id": enrollment.journey_id,
                "state": enrollment.state,
                "step": enrollment.current_step,
                "reason": enrollment.exit_reason,
            },
        )
    )


def customer_enrollments(*, customer: Customer, active_only: bool = False) -> list[dict[str, Any]]:
    """The journeys a customer is (or was) in, newest first, for the profile: enrollment, journey name,
    version number, state, the step it waits at (key, type, label) and why (``waiting_for``,
    ``wait_detail``, ``due_at``)."""
    rows = Enrollment.objects.filter(customer=customer).select_related("journey", "version")
    if active_only:
        rows = rows.filter(state=EnrollmentState.ACTIVE)
    out = []
    for row in rows.order_by("-entered_at")[:50]:
        step = definition_index(row.version.definition).get(row.current_step)
        out.append(
            {
                "enrollment": row,
                "journey": row.journey,
                "version": row.version.number,
                "state": row.state,
                "step_key": row.current_step,
                "step_type": step.step["type"] if step else "",
                "step_label": (step.step.get("label") or step.step["type"]) if step else "",
                "waiting_for": row.waiting_for,
                "wait_detail": row.wait_detail,
                "due_at": row.due_at,
            }
        )
    return out


# ---------------------------------------------------------------- agent tasks


def agent_task_create(
    *,
    workspace: Workspace,
    customer: Customer,
    title: str,
    detail: str = "",
    conversation: Conversation | None = None,
    assignee_id: int | None = None,
    due_at: dt.datetime | None = None,
    enrollment: Enrollment | None = None,
    now: dt.datetime | None = None,
) -> AgentTask:
    """A to-do for an agent ("Call this customer back"); publishes ``agent_task.created`` after commit
    (the console's live update)."""
    title = title.strip()
    if not title:
        raise ValidationFailed("a task needs a title", field="title")
    task = AgentTask.objects.create(
        workspace=workspace,
        customer=customer,
        conversation=conversation,
        assignee_id=assignee_id,
        title=title[:200],
        detail=detail,
        due_at=due_at,
        enrollment=enrollment,
        created_at=now or journey_now(),
    )
    events.publish_on_commit(
        events.DomainEvent(
            name=AGENT_TASK_CREATED,
            workspace_id=workspace.pk,
            customer_id=customer.pk,
            conversation_id=conversation.pk if conversation else None,
            data={"task_id": task.pk, "title": task.title},
        )
    )
    return task


def agent_task_complete(*, task: AgentTask, actor: AbstractBaseUser | None = None) -> AgentTask:
    """Mark done (idempotent: a done task keeps its first time and author)."""
    if task.done_at is None:
        task.done_at = journey_now()
        task.done_by = actor if actor is not None and actor.is_authenticated else None  # type: ignore[assignment]
        task.save(update_fields=["done_at", "done_by"])
    return task


def agent_tasks_open(
    *, workspace: Workspace, customer: Customer | None = None, mine_for: Any = None
) -> list[AgentTask]:
    """Open tasks of ``workspace`` (optionally one customer's), soonest due first, at most 200, in one
    query. ``mine_for`` (a user): only those assigned to them or to nobody."""
    rows = AgentTask.objects.filter(workspace=workspace, done_at__isnull=True).select_related(
        "customer", "assignee"
    )
    if customer is not None:
        rows = rows.filter(customer=customer)
    if mine_for is not None:
        rows = rows.filter(Q(assignee=mine_for) | Q(assignee__isnull=True))
    return list(rows.order_by("due_at", "id")[:200])


# ---------------------------------------------------------------- stats


def journey_stats(*, journey: Journey, version: JourneyVersion | None = None) -> dict[str, Any]:
    """Per step (by key): ``entered`` (step runs), ``waiting`` (active enrollments at it), ``sent``,
    ``skipped`` by reason, outcome counts; and totals: enrollments by state, ``exited_by_goal``.
    Counted from the rows in three grouped queries."""
    runs = JourneyStepRun.objects.filter(journey=journey)
    enrollments = Enrollment.objects.filter(journey=journey)
    if version is not None:
        runs = runs.filter(enrollment__version=version)
        enrollments = enrollments.filter(version=version)
    steps: dict[str, dict[str, Any]] = {}

    def slot(key: str) -> dict[str, Any]:
        return steps.setdefault(key, {"entered": 0, "waiting": 0, "sent": 0, "skipped": {}, "outcomes": {}})

    for row in runs.values("step_key", "outcome", "reason").annotate(n=Count("id")):
        entry = slot(row["step_key"])
        entry["entered"] += row["n"]
        entry["outcomes"][row["outcome"]] = entry["outcomes"].get(row["outcome"], 0) + row["n"]
        if row["outcome"] == "sent":
            entry["sent"] += row["n"]
        if row["outcome"] == "skipped":
            entry["skipped"][row["reason"] or "other"] = (
                entry["skipped"].get(row["reason"] or "other", 0) + row["n"]
            )
    waiting = enrollments.filter(state=EnrollmentState.ACTIVE).values("current_step").annotate(n=Count("id"))
    for at in waiting:
        slot(at["current_step"])["waiting"] += at["n"]
    states = {row["state"]: row["n"] for row in enrollments.values("state").annotate(n=Count("id"))}
    goal = enrollments.filter(Q(exit_reason="goal")).count()
    return {
        "steps": steps,
        "enrollments": {s: states.get(s, 0) for s in EnrollmentState.values},
        "exited_by_goal": goal,
    }
