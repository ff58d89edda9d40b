"""The delivery side of the core's outbound port (``engagement.events.OUTBOUND_QUEUED``)."""

from __future__ import annotations

from django.conf import settings

from engagement.events import LANE_BULK, DomainEvent

from .tasks import send_interaction


def outbound_delivery_listener(event: DomainEvent) -> None:
    """Hand a queued interaction to its channel's sender, in a Celery task: on the bulk queue for a
    campaign's send (``data["lane"]``), else on the default queue, where conversational traffic (agent
    replies, automated answers) never waits behind a campaign's fan-out."""
    if event.interaction_id is None:
        return
    if event.data.get("lane") == LANE_BULK:
        send_interaction.apply_async((event.interaction_id,), queue=settings.CELERY_BULK_QUEUE)
    else:
        send_interaction.delay(event.interaction_id)
