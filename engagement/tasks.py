"""Celery tasks of the core. Thin: fetch by id, call a service."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from engagement.services.automation import automations_run


@shared_task(name="engagement.tasks.run_automations", acks_late=True, max_retries=5, default_retry_delay=5)
def run_automations(event: dict[str, Any]) -> int:
    interaction_id = event.get("interaction_id")
    if interaction_id is None:
        return 0
    sent = automations_run(
        event_name=event["name"], workspace_id=event["workspace_id"], interaction_id=interaction_id
    )
    return len(sent)
