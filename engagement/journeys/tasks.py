"""Celery tasks of journeys. Thin: each imports its service inside its body (HackSoft "Celery"); the
services import these at their top. Registered with the worker through ``engagement.journeys.services``
(imported at start-up by the listener list)."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


@shared_task(name="engagement.journeys.tasks.journeys_tick", acks_late=True, ignore_result=True)
def journeys_tick_task() -> dict[str, Any]:
    """The journeys' scheduler (Celery beat ``journeys-tick``, every second): fire due timers."""
    from .scheduler import journeys_tick

    return journeys_tick()


# Idempotent: advancing runs only what is due, under the enrollment's row lock.
@shared_task(
    name="engagement.journeys.tasks.journeys_advance",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=DATABASE_UNAVAILABLE,
    retry_backoff=1,
    retry_backoff_max=30,
    max_retries=8,
    ignore_result=True,
)
def journeys_advance_task(enrollment_ids: list[int]) -> int:
    """Advance enrollments a trigger, a reply or an API call made due now."""
    from .engine import enrollment_advance

    for enrollment_id in enrollment_ids:
        enrollment_advance(enrollment_id=enrollment_id)
    return len(enrollment_ids)


@shared_task(name="engagement.journeys.tasks.journeys_evaluate", acks_late=True, ignore_result=True)
def journeys_evaluate_task() -> dict[str, int]:
    """Periodic triggers (Celery beat ``journeys-evaluate``): segment entered/left, date attributes."""
    from .periodic import journeys_evaluate

    return journeys_evaluate()
