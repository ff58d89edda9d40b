"""The customers app's listeners of domain events (registered in ``config/listeners.py``)."""

from __future__ import annotations

from engagement.events import DomainEvent

from .tasks import run_import_task


def import_run_listener(event: DomainEvent) -> None:
    """A queued customer import runs in a Celery task."""
    run_import_task.delay(event.data["import_id"])
