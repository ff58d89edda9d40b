"""Celery tasks of the core. Thin: fetch by id, call a service.

Direction (HackSoft "Celery"): a service imports its task at the top as ``<name>_task``; the task
imports the service inside its body.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from engagement.errors import TransientError

# PostgreSQL unreachable for a moment (a restart, a failover): the task is tried again, never lost.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


# Idempotent (each automated reply carries the key automation:<rule>:<interaction>): acknowledged late and
# given back to the broker when its worker dies.
@shared_task(
    name="engagement.tasks.run_automations",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=DATABASE_UNAVAILABLE,
    retry_backoff=1,
    retry_backoff_max=60,
    max_retries=8,
)
def run_automations_task(event: dict[str, Any]) -> int:
    from engagement.services.automation import automations_run

    interaction_id = event.get("interaction_id")
    if interaction_id is None:
        return 0
    sent = automations_run(
        event_name=event["name"], workspace_id=event["workspace_id"], interaction_id=interaction_id
    )
    return len(sent)


@shared_task(
    name="engagement.tasks.fetch_attachment",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(TransientError, *DATABASE_UNAVAILABLE),
    max_retries=6,
    retry_backoff=5,
    retry_backoff_max=600,
)
def fetch_attachment_task(attachment_id: int) -> bool:
    """Download an attachment's source URL (MMS media, a call recording) into storage."""
    from engagement.services.media import attachment_fetch

    return attachment_fetch(attachment_id=attachment_id)


@shared_task(name="engagement.tasks.campaigns_tick", acks_late=True, ignore_result=True)
def campaigns_tick() -> dict[str, Any]:
    """The campaign scheduler (Celery beat, every second): start due runs, send due recipients."""
    from engagement.campaigns.sending import campaigns_tick as tick

    return tick()


@shared_task(name="engagement.tasks.idempotency_records_purge")
def idempotency_records_purge_task() -> int:
    """Hourly (beat): delete ``Idempotency-Key`` records past their 24 hours."""
    from engagement.api.idempotency import idempotency_records_purge

    return idempotency_records_purge()
