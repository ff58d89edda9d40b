"""The journeys' scheduler: timers in PostgreSQL, claimed in batches, never Celery ETA tasks.

Every timer is an active enrollment's ``due_at`` (a delay's end, a wait's timeout, a guard's hold, "now"
for a step to run at once) under the partial index ``enrollment_due_idx`` (active rows only). Celery
beat runs :func:`journeys_tick` every second (``journeys-tick`` in ``CELERY_BEAT_SCHEDULE``, expiring
after 5 s so a backlog of ticks never piles up). A tick claims due rows with ONE statement::

    UPDATE … SET lease_until = now + lease
    WHERE id IN (SELECT id … WHERE state = 'active' AND due_at <= now
                 AND (lease_until IS NULL OR lease_until < now)
                 ORDER BY due_at LIMIT n FOR UPDATE SKIP LOCKED)
    RETURNING id

so two ticks (or two beats by mistake) never take the same row; a worker killed mid-batch leaves its
rows leased until ``JOURNEYS_LEASE_SECONDS`` pass, then they are claimed again. Running a claimed row is
``enrollment_advance``, which re-checks under the row lock that it is still due: a step runs once.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from engagement.models import Enrollment

from .clock import journey_now
from .engine import enrollment_advance

logger = logging.getLogger(__name__)


def enrollments_claim(*, now: dt.datetime, limit: int, lease_seconds: float) -> list[int]:
    """Lease up to ``limit`` due enrollments, oldest due first; their ids."""
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


def journeys_tick(*, budget_seconds: float | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """Fire due timers for up to ``budget_seconds`` (``JOURNEYS_TICK_BUDGET_SECONDS``): claim a batch
    (``JOURNEYS_BATCH_SIZE``), advance each, repeat while rows are due. ``now`` (tests) fixes the
    clock; otherwise :func:`journey_now` is read per batch. Returns ``{"fired", "batches",
    "max_lateness_seconds"}``."""
    budget = settings.JOURNEYS_TICK_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    fired = batches = 0
    lateness = 0.0
    while time.monotonic() < deadline:
        at = now or journey_now()
        ids = enrollments_claim(
            now=at, limit=settings.JOURNEYS_BATCH_SIZE, lease_seconds=settings.JOURNEYS_LEASE_SECONDS
        )
        if not ids:
            break
        batches += 1
        due = dict(Enrollment.objects.filter(pk__in=ids).values_list("pk", "due_at"))
        # One transaction per batch, a savepoint per enrollment: one commit (one WAL flush) for the
        # batch, and an enrollment whose step fails is rolled back alone (its lease then expires and it
        # is tried again). Outbox rows of the batch's sends are relayed when the batch commits.
        with transaction.atomic():
            for enrollment_id in ids:
                started = now or journey_now()
                due_at = due.get(enrollment_id)
                if due_at is not None:
                    lateness = max(lateness, (started - due_at).total_seconds())
                try:
                    enrollment_advance(enrollment_id=enrollment_id, now=started)
                except Exception:
                    logger.exception("journey enrollment %s failed at its step", enrollment_id)
                fired += 1
    return {"fired": fired, "batches": batches, "max_lateness_seconds": round(lateness, 3)}
