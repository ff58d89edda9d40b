"""The delivery side of the core's outbound port (``engagement.events.OUTBOUND_QUEUED``)."""

from __future__ import annotations

from engagement.events import DomainEvent

from .tasks import send_interaction


def outbound_delivery_listener(event: DomainEvent) -> None:
    """Hand a queued interaction to its channel's sender, in a Celery task."""
    if event.interaction_id is not None:
        send_interaction.delay(event.interaction_id)
