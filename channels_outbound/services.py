"""Outbound delivery: hand a queued interaction to its provider exactly once, with retries that are safe."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from customers.consent import SendPurpose, consent_check_send, consent_record
from engagement import events
from engagement.models import Channel, ChannelKind, Interaction, InteractionStatus
from engagement.models.conversations import InteractionKind
from engagement.services.email_threading import EmailEnvelope, email_outbound_prepare
from engagement.services.guards import RELEASE_CANCEL, RELEASE_HOLD, send_release_check
from engagement.services.sms import sms_segment_count
from engagement.services.timeline import status_is_forward

from .base import OutboundMessage, SendResult
from .registry import sender_for

logger = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    SENT = "sent"
    FAILED = "failed"
    RETRY = "retry"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class SendAttempt:
    outcome: Outcome
    result: SendResult | None = None


def status_callback_url(*, channel: Channel, interaction_id: int) -> str:
    path = reverse(
        "channels_inbound:webhook",
        kwargs={"provider": channel.provider, "token": channel.webhook_token, "hook": "status"},
    )
    return f"{settings.PUBLIC_BASE_URL}{path}?iid={interaction_id}"


def outbound_interaction_send(*, interaction_id: int, final_attempt: bool = False) -> SendAttempt:
    """Send one queued outbound interaction through its channel's provider.

    Precondition: the interaction is ``queued``. It is claimed (moved to ``sending``) in a committed
    transaction before the provider is called, so a second task for the same interaction skips it.
    Retryable failures put it back to ``queued`` unless ``final_attempt``.
    """
    with transaction.atomic():
        interaction = (
            Interaction.objects.select_for_update(of=("self",))
            .select_related("channel", "customer")
            .filter(pk=interaction_id)
            .first()
        )
        if (
            interaction is None
            or interaction.status != InteractionStatus.QUEUED
            or interaction.channel is None
        ):
            return SendAttempt(Outcome.SKIPPED)
        # Consent is checked when a message is queued and again now: a STOP that arrived while it
        # waited (for a retry, or behind a rate limit) still wins.
        decision = consent_check_send(
            customer=interaction.customer,
            channel_kind=interaction.channel.kind,
            purpose=interaction.metadata.get("purpose") or SendPurpose.TRANSACTIONAL,
        )
        if not decision.allowed:
            interaction.status = InteractionStatus.BLOCKED
            interaction.status_changed_at = timezone.now()
            interaction.error_code = f"consent:{decision.reason}"[:32]
            interaction.error_message = decision.detail[:500]
            interaction.next_attempt_at = None
            interaction.save(
                update_fields=[
                    "status",
                    "status_changed_at",
                    "error_code",
                    "error_message",
                    "next_attempt_at",
                ]
            )
            _publish_status(interaction)
            return SendAttempt(Outcome.BLOCKED)
        # A campaign message waits while its run is paused and is never sent once it is cancelled
        # (engagement.services.guards.send_release_check), so pause takes effect at the provider too.
        release = send_release_check(interaction=interaction)
        if release == RELEASE_HOLD:
            return SendAttempt(Outcome.SKIPPED)
        if release == RELEASE_CANCEL:
            interaction.status = InteractionStatus.BLOCKED
            interaction.status_changed_at = timezone.now()
            interaction.error_code = "campaign:cancelled"
            interaction.error_message = "the campaign run was cancelled before this message was sent"
            interaction.next_attempt_at = None
            interaction.save(
                update_fields=[
                    "status",
                    "status_changed_at",
                    "error_code",
                    "error_message",
                    "next_attempt_at",
                ]
            )
            _publish_status(interaction)
            return SendAttempt(Outcome.BLOCKED)
        interaction.status = InteractionStatus.SENDING
        interaction.send_attempts += 1
        interaction.status_changed_at = timezone.now()
        interaction.save(update_fields=["status", "send_attempts", "status_changed_at"])
        envelope = EmailEnvelope(subject="", headers={}, reply_to="")
        if interaction.channel.kind == ChannelKind.EMAIL:
            envelope = email_outbound_prepare(interaction=interaction)
    channel = interaction.channel
    message = OutboundMessage(
        interaction_id=interaction.pk,
        channel=channel,
        to=interaction.customer_address,
        body=interaction.body,
        status_callback_url=status_callback_url(channel=channel, interaction_id=interaction.pk),
        subject=envelope.subject,
        headers=envelope.headers,
        reply_to=envelope.reply_to,
        media_urls=tuple(interaction.metadata.get("media_urls") or ()),
        html=str((interaction.metadata.get("email") or {}).get("html") or ""),
        connect_via=interaction.metadata.get("connect_via", ""),
    )
    try:
        result = sender_for(channel).send(message)
    except Exception as exc:
        logger.exception("sender crashed for interaction %s", interaction.pk)
        result = SendResult(
            accepted=False,
            status="failed",
            error_code="internal",
            error_message=str(exc)[:500],
            retryable=True,
        )
    return _record_result(interaction_id=interaction.pk, result=result, final_attempt=final_attempt)


def _record_result(*, interaction_id: int, result: SendResult, final_attempt: bool) -> SendAttempt:
    with transaction.atomic():
        interaction = (
            Interaction.objects.select_for_update(of=("self",))
            .select_related("channel", "customer")
            .get(pk=interaction_id)
        )
        now = timezone.now()
        fields = ["status", "status_changed_at", "error_code", "error_message", "next_attempt_at", "metadata"]
        interaction.error_code, interaction.error_message = result.error_code, result.error_message
        if result.raw:
            interaction.metadata = {**interaction.metadata, "provider": result.raw}
        segments = result.segments
        if (
            segments is None
            and interaction.kind == InteractionKind.MESSAGE
            and interaction.channel is not None
        ):
            segments = sms_segment_count(interaction.body) if interaction.channel.kind == "sms" else None
        if segments is not None:
            interaction.segments = segments
            fields.append("segments")
        if result.opted_out:
            _record_opt_out(interaction=interaction, result=result, at=now)
        if result.accepted:
            outcome = Outcome.SENT
            interaction.provider_message_id = result.provider_message_id
            fields.append("provider_message_id")
            # A status callback may already have moved it further (delivered): never go back.
            if status_is_forward(interaction.status, InteractionStatus.SENT):
                interaction.status = InteractionStatus.SENT
            interaction.next_attempt_at = None
        elif result.ambiguous and interaction.metadata.get("purpose") == SendPurpose.MARKETING:
            # At most once: not retried; stays "sending" until the status callback (our id is in its
            # URL) says what happened.
            outcome = Outcome.UNKNOWN
            interaction.error_code = "ambiguous"
            interaction.next_attempt_at = None
        elif result.retryable and not final_attempt:
            outcome = Outcome.RETRY
            interaction.status = InteractionStatus.QUEUED
            interaction.next_attempt_at = now + timedelta(seconds=retry_delay(interaction.send_attempts))
        else:
            outcome = Outcome.FAILED
            interaction.status = InteractionStatus.FAILED
            interaction.next_attempt_at = None
        interaction.status_changed_at = now
        interaction.save(update_fields=fields)
        _publish_status(interaction)
    return SendAttempt(outcome, result)


def _publish_status(interaction: Interaction) -> None:
    events.publish_on_commit(
        events.DomainEvent(
            name=events.INTERACTION_UPDATED,
            workspace_id=interaction.workspace_id,
            interaction_id=interaction.pk,
            conversation_id=interaction.conversation_id,
            customer_id=interaction.customer_id,
            data={"status": interaction.status},
        )
    )


def _record_opt_out(*, interaction: Interaction, result: SendResult, at: datetime) -> None:
    """The provider refused because the recipient opted out with it (Twilio 21610 after STOP): our
    consent ledger learns it too, so nothing more is queued to them on this channel."""
    channel = interaction.channel
    consent_record(
        customer=interaction.customer,
        channel=channel.kind if channel is not None else "sms",
        status="opted_out",
        source="provider_error",
        evidence={
            "error_code": result.error_code,
            "error_message": result.error_message,
            "provider": channel.provider if channel is not None else "",
            "interaction_id": interaction.pk,
            "address": interaction.customer_address,
        },
        occurred_at=at,
    )


def retry_delay(attempt: int) -> float:
    """Exponential backoff: base · 2^(attempt-1), capped."""
    base: float = settings.OUTBOUND_RETRY_BASE_SECONDS
    return float(min(base * (2 ** max(attempt - 1, 0)), settings.OUTBOUND_RETRY_MAX_SECONDS))


def outbound_stuck_requeue(*, older_than: timedelta = timedelta(minutes=2)) -> list[int]:
    """Queued interactions whose send task was lost (broker restart) are handed to a new task.

    Safe to run at any time: the send claims the interaction under a row lock, so a duplicate task skips.
    """
    cutoff = timezone.now() - older_than
    return list(
        Interaction.objects.filter(status=InteractionStatus.QUEUED, next_attempt_at__lt=cutoff).values_list(
            "pk", flat=True
        )[:500]
    )
