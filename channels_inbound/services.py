"""Ingestion: store each normalized event first (deduplicated), then apply it to the timeline."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from engagement.models import Channel
from engagement.services import calls
from engagement.services.email_feedback import interaction_record_feedback
from engagement.services.media import interaction_sms_details_record
from engagement.services.timeline import interaction_apply_status, interaction_record_inbound

from .events import CallEvent, DeliveryStatus, InboundEvent, InboundMessage
from .models import ProviderEvent

logger = logging.getLogger(__name__)


def _payload(event: InboundEvent) -> dict[str, Any]:
    return event.raw or {k: str(v) for k, v in asdict(event).items() if k != "raw"}


def provider_event_store(*, channel: Channel, event: InboundEvent) -> tuple[ProviderEvent, bool]:
    """Persist the event under its unique provider id; a repeat returns the stored row."""
    try:
        with transaction.atomic():
            return (
                ProviderEvent.objects.create(
                    workspace_id=channel.workspace_id,
                    channel=channel,
                    provider=channel.provider,
                    event_type=event.event_type,
                    provider_event_id=event.provider_event_id,
                    payload=_payload(event),
                ),
                True,
            )
    except IntegrityError:
        return ProviderEvent.objects.get(
            provider=channel.provider, provider_event_id=event.provider_event_id
        ), False


def _apply(*, channel: Channel, event: InboundEvent) -> None:
    if isinstance(event, InboundMessage):
        interaction, created = interaction_record_inbound(
            channel=channel,
            sender=event.sender,
            body=event.body,
            provider_message_id=event.provider_event_id,
            occurred_at=event.occurred_at,
            sender_name=event.sender_name,
            metadata=event.metadata,
            subject=event.subject,
            thread=event.thread,
            attachments=event.attachments,
            is_auto_reply=event.is_auto_reply,
        )
        if created and channel.kind == "sms":
            interaction_sms_details_record(
                interaction=interaction,
                media=event.metadata.get("media") or [],
                segments=event.metadata.get("num_segments"),
            )
    elif isinstance(event, DeliveryStatus):
        if event.status:
            interaction_apply_status(
                channel=channel,
                status=event.status,
                provider_message_id=event.provider_message_id,
                interaction_id=event.interaction_id,
                error_code=event.error_code,
                error_message=event.error_message,
                occurred_at=event.occurred_at,
            )
        if event.engagement or event.opt_out_source:
            interaction_record_feedback(
                channel=channel,
                occurred_at=event.occurred_at,
                provider_message_id=event.provider_message_id,
                interaction_id=event.interaction_id,
                engagement=event.engagement,
                engagement_details=event.engagement_details,
                opt_out_source=event.opt_out_source,
                opt_out_purpose=event.opt_out_purpose,
                evidence=event.raw,
            )
    elif isinstance(event, CallEvent):
        _apply_call(channel=channel, event=event)


def _apply_call(*, channel: Channel, event: CallEvent) -> None:
    if event.action == "started" and event.caller is not None:
        calls.call_record_inbound(
            channel=channel,
            caller=event.caller,
            call_id=event.call_id,
            occurred_at=event.occurred_at,
            metadata=event.metadata,
        )
    elif event.action == "status":
        calls.call_apply_status(
            channel=channel,
            call_id=event.leg_call_id or event.call_id,
            parent_call_id=event.call_id if event.leg else "",
            status=event.status,
            occurred_at=event.occurred_at,
            interaction_id=event.interaction_id,
            leg=event.leg,
            duration_seconds=event.duration_seconds,
            agent_address=event.agent_address,
            caller=event.caller,
        )
    elif event.action == "voicemail_left":
        calls.call_record_voicemail_left(
            channel=channel, call_id=event.call_id, recording_duration=event.duration_seconds
        )
    elif event.action == "recording":
        calls.call_attach_recording(
            channel=channel,
            call_id=event.call_id,
            recording_id=event.recording_id,
            recording_url=event.recording_url,
            recording_status=event.recording_status,
            duration_seconds=event.duration_seconds,
            content_type=event.recording_content_type,
        )
    elif event.action == "transcription":
        calls.call_attach_transcript(
            channel=channel,
            call_id=event.call_id,
            transcription_id=event.transcription_id,
            transcription_status=event.transcription_status,
            text=event.transcript,
        )
    else:
        logger.warning(
            "ignored call event %s (%s) on channel %s", event.action, event.provider_event_id, channel.pk
        )


def events_ingest(*, channel: Channel, events: list[InboundEvent]) -> int:
    """Store, then apply, each event. Returns how many were applied now (repeats count zero).

    The event row commits before it is applied, so nothing valid is lost if applying fails: the error
    is recorded on the row and re-raised, the provider retries, and the retry applies it.
    """
    applied = 0
    for event in events:
        stored, _ = provider_event_store(channel=channel, event=event)
        if stored.processed_at is not None:
            continue
        try:
            with transaction.atomic():
                locked = ProviderEvent.objects.select_for_update().get(pk=stored.pk)
                if locked.processed_at is not None:
                    continue
                _apply(channel=channel, event=event)
                locked.processed_at = timezone.now()
                locked.attempts += 1
                locked.save(update_fields=["processed_at", "attempts"])
                applied += 1
        except Exception as exc:
            ProviderEvent.objects.filter(pk=stored.pk).update(
                attempts=stored.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000]
            )
            raise
    return applied
