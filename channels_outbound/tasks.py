"""Outbound tasks: thin wrappers; retries and backoff live here, the work in services."""

from __future__ import annotations

import time

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from engagement.models import Channel

from .services import (
    BATCH_WAIT_KEY,
    Outcome,
    outbound_batch_pending,
    outbound_email_batches_drain,
    outbound_interaction_send,
    outbound_lease_reclaim,
    outbound_leases_expired,
    outbound_route,
    outbound_stuck_requeue,
    retry_delay,
)

MAX_SEND_RETRIES = 6


# Idempotent (the send claims its interaction under a row lock; a lost worker's claim is reconciled by
# lease), so acknowledged late and given back to the broker when its worker dies.
@shared_task(
    bind=True,
    name="channels_outbound.tasks.send_interaction",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_SEND_RETRIES,
    # PostgreSQL unreachable for a moment: tried again (a claim that committed is reconciled by lease).
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=1,
    retry_backoff_max=60,
)
def send_interaction(self, interaction_id: int) -> str:
    channel_id, pacing_wait = outbound_route(interaction_id=interaction_id)
    if pacing_wait:
        time.sleep(pacing_wait)  # the sender's next slot (campaign sends: engagement.services.guards)
    if channel_id is not None:
        # Campaign email goes out in batches (SendGrid: 1,000 per request): one flush per channel is
        # scheduled at a time and sends this message with the others queued meanwhile.
        email_batch_schedule(channel_id=channel_id)
        return "batched"
    attempt = outbound_interaction_send(
        interaction_id=interaction_id,
        final_attempt=self.request.retries >= MAX_SEND_RETRIES,
        slotted=pacing_wait is not None,
    )
    if attempt.outcome == Outcome.RETRY:
        # A provider's Retry-After (429, 503) is honoured when it asks for longer than our backoff.
        asked = attempt.result.retry_after if attempt.result is not None else None
        raise self.retry(countdown=max(retry_delay(self.request.retries + 1), asked or 0.0))
    return attempt.outcome.value


@shared_task(
    name="channels_outbound.tasks.requeue_stuck_outbound", acks_late=True, reject_on_worker_lost=True
)
def requeue_stuck_outbound() -> int:
    """Recovery, run by beat: sends whose worker's lease expired are reconciled with the provider (sent
    once, never twice), and queued sends whose task was lost get a new task."""
    settled = 0
    for pk in outbound_leases_expired():
        if outbound_lease_reclaim(interaction_id=pk) is not None:
            settled += 1
    ids = outbound_stuck_requeue()
    for pk in ids:
        send_interaction.delay(pk)
    return settled + len(ids)


@shared_task(name="channels_outbound.tasks.sandbox_report_delivery")
def sandbox_report_delivery(channel_id: int, provider_message_id: str, interaction_id: int) -> None:
    from channels_inbound.services import events_ingest
    from engagement.inbound import DeliveryStatus

    channel = Channel.objects.select_related("workspace").get(pk=channel_id)
    events_ingest(
        channel=channel,
        events=[
            DeliveryStatus(
                provider_event_id=f"{provider_message_id}:delivered",
                provider_message_id=provider_message_id,
                status="delivered",
                interaction_id=interaction_id,
                occurred_at=timezone.now(),
                raw={"MessageSid": provider_message_id, "MessageStatus": "delivered"},
            )
        ],
    )


SANDBOX_CALL_SECONDS = 30


@shared_task(name="channels_outbound.tasks.sandbox_report_call")
def sandbox_report_call(channel_id: int, call_sid: str, interaction_id: int, click_to_call: bool) -> None:
    """The sandbox's call status callbacks: the callee answered (for click-to-call, the customer's leg
    too) and hung up after a while."""
    from channels_inbound.services import events_ingest
    from engagement.inbound import CallEvent, InboundEvent

    channel = Channel.objects.select_related("workspace").get(pk=channel_id)
    now = timezone.now()
    events: list[InboundEvent] = []
    if click_to_call:
        events.append(
            CallEvent(
                provider_event_id=f"{call_sid}L:completed",
                action="status",
                call_id=call_sid,
                leg="customer",
                leg_call_id=f"{call_sid}L",
                status="completed",
                interaction_id=interaction_id,
                duration_seconds=SANDBOX_CALL_SECONDS,
                occurred_at=now,
            )
        )
    events.append(
        CallEvent(
            provider_event_id=f"{call_sid}:completed",
            action="status",
            call_id=call_sid,
            status="completed",
            interaction_id=interaction_id,
            duration_seconds=SANDBOX_CALL_SECONDS,
            occurred_at=now,
            raw={"CallSid": call_sid, "CallStatus": "completed"},
        )
    )
    events_ingest(channel=channel, events=events)


def email_batch_schedule(*, channel_id: int) -> None:
    """Schedule the channel's batch flush in ``OUTBOUND_EMAIL_BATCH_WAIT_SECONDS`` unless one is pending
    (a cache key, added atomically, marks it; it expires on its own should the flush be lost)."""
    wait = settings.OUTBOUND_EMAIL_BATCH_WAIT_SECONDS
    if cache.add(BATCH_WAIT_KEY.format(channel_id=channel_id), 1, timeout=wait + 60):
        send_email_batch.apply_async((channel_id,), countdown=wait)


@shared_task(name="channels_outbound.tasks.send_email_batch", acks_late=True, reject_on_worker_lost=True)
def send_email_batch(channel_id: int) -> int:
    """Send the channel's queued campaign emails in batches (see ``outbound_email_batches_drain``).
    Messages queued after the last batch, or waiting for a retry, get the next flush."""
    channel = Channel.objects.select_related("workspace").get(pk=channel_id)
    try:
        reports = outbound_email_batches_drain(
            channel=channel,
            budget_seconds=settings.OUTBOUND_EMAIL_BATCH_BUDGET_SECONDS,
            wait_seconds=settings.OUTBOUND_EMAIL_BATCH_WAIT_SECONDS,
        )
    finally:
        cache.delete(BATCH_WAIT_KEY.format(channel_id=channel_id))
    if outbound_batch_pending(channel=channel):
        email_batch_schedule(channel_id=channel_id)
    return sum(r.claimed for r in reports)
