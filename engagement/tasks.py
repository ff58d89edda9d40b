"""Celery tasks of the core. Thin: fetch by id, call a service."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from engagement.services.automation import automations_run
from engagement.services.media import MediaFetchRetryable, attachment_fetch


@shared_task(name="engagement.tasks.run_automations", acks_late=True, max_retries=5, default_retry_delay=5)
def run_automations(event: dict[str, Any]) -> int:
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
    autoretry_for=(MediaFetchRetryable,),
    max_retries=6,
    retry_backoff=5,
    retry_backoff_max=600,
)
def fetch_attachment(attachment_id: int) -> bool:
    """Download an attachment's source URL (MMS media, a call recording) into storage."""
    return attachment_fetch(attachment_id=attachment_id)


@shared_task(name="engagement.tasks.campaigns_tick", acks_late=True, ignore_result=True)
def campaigns_tick() -> dict[str, Any]:
    """The campaign scheduler (Celery beat, every second): start due runs, send due recipients."""
    from engagement.campaigns.sending import campaigns_tick as tick

    return tick()
