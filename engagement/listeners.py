"""The core's listeners of domain events. Which listeners run, and for which events, is listed in one
place: ``config/listeners.py``."""

from __future__ import annotations

from engagement.events import DomainEvent
from engagement.realtime import push_to_workspace
from engagement.tasks import run_automations_task


def automation_listener(event: DomainEvent) -> None:
    """Automation rules run in a Celery task, never on the request path."""
    run_automations_task.delay(event.as_dict())


def realtime_listener(event: DomainEvent) -> None:
    """The console's live updates (websocket group of the workspace)."""
    push_to_workspace(event)
