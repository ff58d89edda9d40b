"""The journeys' scheduler: timers in PostgreSQL, claimed in batches, never Celery ETA tasks.

Every timer is an active enrollment's ``due_at`` (a delay's end, a wait's timeout, a guard's hold, "now"
for a step to run at once) under the partial index ``enrollment_due_idx`` (active rows only). Celery
beat runs :func:`journeys_tick` every second (``journeys-tick`` in ``CELERY_BEAT_SCHEDULE``, expiring
after 5 s so a backlog of ticks never piles up). Once nothing is due, a tick sleeps until the next due
time (:func:`next_due_at`) and fires it, for up to ``JOURNEYS_TICK_FOLLOW_SECONDS`` (the beat interval)
from its start, so a timer due between two beats fires when due, not up to a second later.

A tick claims a batch (``JOURNEYS_BATCH_SIZE``) in ONE statement, in the transaction that fires it::

    SELECT id, journey_id, version_id, current_step, waiting_for, due_at, … FROM enrollment
    WHERE state = 'active' AND due_at <= now AND (lease_until IS NULL OR lease_until < now)
    ORDER BY due_at LIMIT n FOR UPDATE SKIP LOCKED

so two ticks (or two beats by mistake) never take the same row, and the rows stay locked until the
batch commits. (An ``UPDATE … SET lease_until … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)
RETURNING`` claim, :func:`enrollments_claim`, wrote every row twice per batch — lease, then the step —
and made the 20,000-row batch run take twice as long; only the rows handed on below get a lease.)

The batch is then fired set-based (:func:`_batch_fire`): the steps that need nothing but the version's
definition and the clock — a delay that ended, a wait that timed out (→ its timeout branch), a
``seconds`` delay or a reply/event wait starting, a random split, an exit step, the end of the journey
— are walked in Python for every row, then written with ONE ``INSERT`` of their ``JourneyStepRun`` rows
and ONE ``UPDATE … FROM json_to_recordset(…)`` of the enrollments, and ONE outbox ``INSERT`` of the ended
ones' ``journey.enrollment_changed`` events. A row that reaches a step needing more (a send, a
condition, an update, a task, a webhook, a segment wait, a local-time delay, a guard hold, a paused
journey) is left at that step, due now, with a lease (``JOURNEYS_LEASE_SECONDS``: no other tick takes
it meanwhile; if this worker dies it is claimed again after it). After the commit those rows go, in
chunks of ``JOURNEYS_ADVANCE_CHUNK`` (one transaction each, a savepoint per enrollment), through
:func:`enrollment_advance` — the exactly-once path (row lock, re-check that it is still due,
``JourneyStepRun`` UNIQUE(enrollment, step_key), ``message_send`` keyed ``journey:<enrollment>:<step>``).
A goal, an exit condition or an agent ending an enrollment meanwhile waits on the row lock, or is seen by
``enrollment_advance``'s re-check. A published version never changes, so the walk reads each version's
step index once per process.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from engagement import events
from engagement.models import (
    Enrollment,
    EnrollmentState,
    Journey,
    JourneyStatus,
    JourneyStepRun,
    JourneyVersion,
    StepOutcome,
)

from .clock import journey_now
from .definition import StepInfo, branch_entry, definition_index
from .engine import MAX_STEPS_PER_ADVANCE, enrollment_advance, split_branch
from .services import ENROLLMENT_CHANGED

logger = logging.getLogger(__name__)


def enrollments_claim(*, now: dt.datetime, limit: int, lease_seconds: float) -> list[int]:
    """Lease up to ``limit`` due enrollments, oldest due first, and commit the lease at once; their ids
    (``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING id``). The per-row fallback of
    :func:`journeys_tick`; the batches lock instead (module docstring)."""
    table = Enrollment._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} SET lease_until = %s
            WHERE id IN (
                SELECT id FROM {table}
                WHERE state = 'active' AND due_at <= %s AND (lease_until IS NULL OR lease_until < %s)
                ORDER BY due_at
                LIMIT %s
                FOR UPDATE SKIP LOCKED
            )
            RETURNING id
            """,  # noqa: S608 - the table name is the model's, every value a parameter
            [now + dt.timedelta(seconds=lease_seconds), now, now, limit],
        )
        return [row[0] for row in cursor.fetchall()]


_LOCK = """
    SELECT id, journey_id, version_id, workspace_id, customer_id, current_step, waiting_for, due_at,
           %s::timestamptz
    FROM {table}
    WHERE state = 'active' AND due_at <= %s AND (lease_until IS NULL OR lease_until < %s)
    ORDER BY due_at
    LIMIT %s
    FOR UPDATE SKIP LOCKED
"""


@dataclass
class _Row:
    id: int
    journey_id: int
    version_id: int
    workspace_id: int
    customer_id: int
    current_step: str
    waiting_for: str
    due_at: dt.datetime
    lease_until: dt.datetime


@dataclass
class _Outcome:
    """What the set-based walk decided for one row: the step runs it passed, then where it stands."""

    runs: list[tuple[StepInfo, str, str]] = field(default_factory=list)  # (step, outcome, reason)
    step: str = ""
    state: str = EnrollmentState.ACTIVE
    exit_reason: str = ""
    waiting_for: str = ""
    wait_detail: str = ""
    due_at: dt.datetime | None = None
    advance: bool = False  # left at a step the engine runs (due now, still leased)


def _walk(row: _Row, index: dict[str, StepInfo], now: dt.datetime) -> _Outcome:
    """The steps of ``row`` that need only the definition and the clock; see the module docstring."""
    out = _Outcome(step=row.current_step)
    key, waiting = row.current_step, row.waiting_for
    for _ in range(MAX_STEPS_PER_ADVANCE):
        if not key:
            out.step, out.state, out.exit_reason = "", EnrollmentState.COMPLETED, "finished"
            return out
        info = index.get(key)
        if info is None:
            out.advance = True  # the engine ends it ("unknown_step")
            return out
        step = info.step
        kind = step["type"]
        out.step = key
        if waiting:  # a timer fired at this step
            if kind == "delay" and waiting == "delay":
                out.runs.append((info, StepOutcome.DONE, ""))
                key, waiting = info.next_key, ""
                continue
            if kind == "wait_for" and waiting == step["for"]:
                out.runs.append((info, StepOutcome.TIMED_OUT, ""))
                key = branch_entry(steps=step.get("timeout") or [], next_key=info.next_key)
                waiting = ""
                continue
            out.advance = True  # a guard's hold ends: the send step re-checks
            return out
        if kind == "delay" and step.get("seconds"):
            until = now + dt.timedelta(seconds=int(step["seconds"]))
            out.waiting_for, out.wait_detail, out.due_at = "delay", f"until {until:%Y-%m-%d %H:%M} UTC", until
            return out
        if kind == "wait_for" and step["for"] in ("reply", "event"):
            until = now + dt.timedelta(seconds=int(step["timeout_seconds"]))
            what = "a reply" if step["for"] == "reply" else f"event {step.get('event_name')!r}"
            out.waiting_for, out.due_at = step["for"], until
            out.wait_detail = f"waiting for {what} until {until:%Y-%m-%d %H:%M} UTC"
            return out
        if kind == "random_split":
            branches = step["branches"]
            chosen = split_branch(
                journey_id=row.journey_id,
                step_key=key,
                customer_id=row.customer_id,
                weights=[int(b["weight"]) for b in branches],
            )
            out.runs.append((info, StepOutcome.DONE, f"branch:{chosen}"))
            key = branch_entry(steps=branches[chosen].get("steps") or [], next_key=info.next_key)
            continue
        if kind == "exit":
            out.runs.append((info, StepOutcome.DONE, ""))
            out.state, out.exit_reason = EnrollmentState.EXITED, "exit_step"
            return out
        out.advance = True
        return out
    out.advance = True  # a long run of instant steps: the engine goes on
    return out


_INDEXES: dict[int, dict[str, StepInfo]] = {}


def _indexes(version_ids: set[int]) -> dict[int, dict[str, StepInfo]]:
    """Step indexes of the versions, cached per process (a published version never changes)."""
    missing = version_ids - _INDEXES.keys()
    if missing:
        if len(_INDEXES) > 1000:
            _INDEXES.clear()
        for pk, definition in JourneyVersion.objects.filter(pk__in=missing).values_list("pk", "definition"):
            _INDEXES[pk] = definition_index(definition)
    return {pk: _INDEXES[pk] for pk in version_ids if pk in _INDEXES}


# The batch's writes take ONE json parameter each (json_to_recordset): psycopg quotes text arrays
# element by element in Python, json.dumps does it in C.
_APPLY = """
    UPDATE {table} AS e SET
        state = v.state, current_step = v.step, waiting_for = v.waiting_for, wait_detail = v.detail,
        due_at = v.due_at, lease_until = v.lease_until, exit_reason = v.exit_reason,
        finished_at = CASE WHEN v.state = 'active' THEN NULL ELSE %s END, updated_at = %s
    FROM json_to_recordset(%s::json) AS v(id bigint, state text, step text, waiting_for text, detail text,
                                          due_at timestamptz, lease_until timestamptz, exit_reason text)
    WHERE e.id = v.id AND e.state = 'active'
"""
_RUNS = """
    INSERT INTO {table} (enrollment_id, journey_id, step_key, step_type, outcome, reason, detail,
                         interaction_id, created_at)
    SELECT v.enrollment_id, v.journey_id, v.step_key, v.step_type, v.outcome, v.reason, '', NULL, %s
    FROM json_to_recordset(%s::json) AS v(enrollment_id bigint, journey_id bigint, step_key text,
                                          step_type text, outcome text, reason text)
"""


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _batch_fire(*, now: dt.datetime, limit: int, lease_seconds: float) -> tuple[list[_Row], list[int]]:
    """Claim a batch and fire its timers set-based (in the caller's transaction): the claimed rows,
    and the ids left for :func:`enrollment_advance`."""
    table = Enrollment._meta.db_table
    lease_until = now + dt.timedelta(seconds=lease_seconds)
    with connection.cursor() as cursor:
        cursor.execute(
            _LOCK.format(table=table),
            [lease_until, now, now, limit],
        )
        rows = [_Row(*r) for r in cursor.fetchall()]
    if not rows:
        return rows, []
    live = set(
        Journey.objects.filter(pk__in={r.journey_id for r in rows}, status=JourneyStatus.LIVE).values_list(
            "pk", flat=True
        )
    )
    indexes = _indexes({r.version_id for r in rows if r.journey_id in live})
    runs: list[dict[str, Any]] = []
    changes: list[tuple[_Row, _Outcome]] = []
    advance: list[int] = []
    still: list[int] = []
    for row in rows:
        index = indexes.get(row.version_id)
        if row.journey_id not in live or index is None:
            advance.append(row.id)  # paused: the engine puts it off
            still.append(row.id)
            continue
        out = _walk(row, index, now)
        for info, outcome, reason in out.runs:
            runs.append(
                {
                    "enrollment_id": row.id,
                    "journey_id": row.journey_id,
                    "step_key": info.step["key"],
                    "step_type": info.step["type"],
                    "outcome": outcome,
                    "reason": reason,
                }
            )
        if out.advance:
            advance.append(row.id)
            if not out.runs:
                still.append(row.id)  # nothing moved: the engine takes it as it is
                continue
            out.due_at, out.waiting_for, out.wait_detail = now, "", ""
        changes.append((row, out))
    with connection.cursor() as cursor:
        if still:
            cursor.execute(f"UPDATE {table} SET lease_until = %s WHERE id = ANY(%s)", [lease_until, still])  # noqa: S608
        if runs:
            cursor.execute(_RUNS.format(table=JourneyStepRun._meta.db_table), [now, json.dumps(runs)])
        if changes:
            cursor.execute(
                _APPLY.format(table=Enrollment._meta.db_table),
                [
                    now,
                    now,
                    json.dumps(
                        [
                            {
                                "id": r.id,
                                "state": o.state,
                                "step": o.step,
                                "waiting_for": o.waiting_for,
                                "detail": o.wait_detail[:300],
                                "due_at": _iso(o.due_at if o.state == EnrollmentState.ACTIVE else None),
                                "lease_until": _iso(r.lease_until if o.advance else None),
                                "exit_reason": o.exit_reason,
                            }
                            for r, o in changes
                        ]
                    ),
                ],
            )
    if changes:
        ended = [
            events.DomainEvent(
                name=ENROLLMENT_CHANGED,
                workspace_id=r.workspace_id,
                customer_id=r.customer_id,
                data={"enrollment_id": r.id, "journey_id": r.journey_id, "state": o.state, "step": o.step},
            )
            for r, o in changes
            if o.state != EnrollmentState.ACTIVE
        ]
        events.publish_on_commit(*ended)
    return rows, advance


def _advance(ids: list[int], now: dt.datetime | None) -> None:
    """The exactly-once engine for rows the set-based walk left at a step it does not run: one
    transaction per chunk (one commit), a savepoint per enrollment (a failing step rolls back alone; its
    lease then expires and it is tried again)."""
    chunk = settings.JOURNEYS_ADVANCE_CHUNK
    for start in range(0, len(ids), chunk):
        with transaction.atomic():
            for enrollment_id in ids[start : start + chunk]:
                try:
                    enrollment_advance(enrollment_id=enrollment_id, now=now or journey_now())
                except Exception:
                    logger.exception("journey enrollment %s failed at its step", enrollment_id)


def next_due_at(*, after: dt.datetime) -> dt.datetime | None:
    """The earliest ``due_at`` of an active enrollment later than ``after`` (None: none), read from the
    first entry past ``after`` in ``enrollment_due_idx`` (one index probe, whatever the table's size)."""
    table = Enrollment._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT min(due_at) FROM {table} WHERE state = 'active' AND due_at > %s",  # noqa: S608
            [after],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def journeys_tick(
    *,
    budget_seconds: float | None = None,
    now: dt.datetime | None = None,
    follow_seconds: float | None = None,
) -> dict[str, Any]:
    """Fire due timers for up to ``budget_seconds`` (``JOURNEYS_TICK_BUDGET_SECONDS``): claim a batch
    (``JOURNEYS_BATCH_SIZE``), fire it set-based, run the rows left at a send (or another step with
    effects) through the engine, repeat while rows are due.

    Then, for the first ``follow_seconds`` (``JOURNEYS_TICK_FOLLOW_SECONDS``, by default the beat
    interval ``JOURNEYS_TICK_SECONDS``; never past the budget) after the tick started, it sleeps until the
    next timer's due time (:func:`next_due_at`) and fires it, so a timer due between two beats fires
    when due instead of at the next beat (up to a whole interval late). The claim stays the same
    ``FOR UPDATE SKIP LOCKED`` batch, so overlapping ticks (this one still following when the next beat
    arrives, or several workers) never take the same row. 0 turns the follow off (one pass per beat).

    ``now`` (tests) fixes the clock and turns the follow off; otherwise :func:`journey_now` is read per
    batch. Returns ``{"fired", "batches", "advanced", "max_lateness_seconds", "followed"}``
    (``advanced``: rows that went through the per-enrollment engine; ``followed``: sleeps until a next
    due time)."""
    budget = settings.JOURNEYS_TICK_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    follow = settings.JOURNEYS_TICK_FOLLOW_SECONDS if follow_seconds is None else follow_seconds
    started = time.monotonic()
    deadline = started + budget
    follow_until = started + min(follow, budget) if now is None else started
    fired = batches = advanced = followed = 0
    lateness = 0.0
    while time.monotonic() < deadline:
        at = now or journey_now()
        limit, lease = settings.JOURNEYS_BATCH_SIZE, settings.JOURNEYS_LEASE_SECONDS
        try:
            with transaction.atomic():
                rows, advance = _batch_fire(now=at, limit=limit, lease_seconds=lease)
        except IntegrityError:
            # A step run that already exists (cannot happen while every writer locks the row): fall back
            # to the engine, row by row, which records what is left exactly once.
            logger.exception("journeys: set-based batch refused; advancing one by one")
            ids = enrollments_claim(now=at, limit=limit, lease_seconds=lease)
            rows, advance = [], ids
            fired += len(ids)
            batches += 1 if ids else 0
            if not ids:
                break
        if not rows and not advance:
            left = follow_until - time.monotonic()
            if left <= 0:
                break
            upcoming = next_due_at(after=at)
            if upcoming is None:
                break
            wait = (upcoming - at).total_seconds()
            if wait > left:
                break
            followed += 1
            time.sleep(max(wait, 0.0))
            continue
        if rows:
            batches += 1
            fired += len(rows)
            lateness = max(lateness, max((at - r.due_at).total_seconds() for r in rows))
        advanced += len(advance)
        _advance(advance, now)
    return {
        "fired": fired,
        "batches": batches,
        "advanced": advanced,
        "max_lateness_seconds": round(lateness, 3),
        "followed": followed,
    }
