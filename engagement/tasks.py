"""Celery tasks of the core. Thin: fetch by id, call a service.

Direction (HackSoft "Celery"): a service imports its task at the top as ``<name>_task``; the task
imports the service inside its body.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from engagement.errors import TransientError


@shared_task(name="engagement.tasks.run_automations", acks_late=True, max_retries=5, default_retry_delay=5)
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
    autoretry_for=(TransientError,),
    max_retries=6,
    retry_backoff=5,
    retry_backoff_max=600,
)
def fetch_attachment_task(attachment_id: int) -> bool:
    """Download an attachment's source URL (MMS media, a call recording) into storage."""
    from engagement.services.media import attachment_fetch

    return attachment_fetch(attachment_id=attachment_id)


@shared_task(name="engagement.tasks.idempotency_records_purge")
def idempotency_records_purge_task() -> int:
    """Hourly (beat): delete ``Idempotency-Key`` records past their 24 hours."""
    from engagement.api.idempotency import idempotency_records_purge

    return idempotency_records_purge()
