"""Ingestion: store each normalized event (deduplicated by its provider id) and apply it to the timeline."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from engagement import rows
from engagement.inbound import CallEvent, DeliveryStatus, InboundEvent, InboundMessage, inbound_event_clean
from engagement.models import Channel, Workspace
from engagement.sanitize import json_clean
from engagement.services import calls
from engagement.services.email_feedback import interaction_record_feedback
from engagement.services.media import interaction_media_attach
from engagement.services.sms import sms_segments_reported
from engagement.services.timeline import interaction_apply_status, interaction_record_inbound

from .models import ProviderEvent

logger = logging.getLogger(__name__)


_CHANNEL_FOR_WEBHOOK: list[str] = []


def channel_for_webhook(*, provider: str, token: str) -> Channel | None:
    """The channel whose webhook URL carries ``token`` for ``provider`` (active or not: an inactive
    channel's signed requests are kept for when it is back), with its workspace; None if none.

    One hand-written statement (``engagement/rows.py``): the queryset
    ``Channel.objects.select_related("workspace").filter(webhook_token=..., provider=...)`` cost ~1 ms
    of statement building per webhook. ``webhook_token`` is unique, so there is at most one row."""
    if not _CHANNEL_FOR_WEBHOOK:
        _CHANNEL_FOR_WEBHOOK.append(
            f"SELECT {rows.columns(Channel, 'ch')}, {rows.columns(Workspace, 'w')}"  # noqa: S608 - our models' names
            f" FROM {Channel._meta.db_table} ch JOIN {Workspace._meta.db_table} w ON w.id = ch.workspace_id"
            " WHERE ch.webhook_token = %s AND ch.provider = %s"
        )
    with connection.cursor() as cursor:
        cursor.execute(_CHANNEL_FOR_WEBHOOK[0], [token, provider])
        row = cursor.fetchone()
    if row is None:
        return None
    channel = rows.model_from_row(Channel, row[: rows.width(Channel)])
    Channel.workspace.field.set_cached_value(
        channel, rows.model_from_row(Workspace, row[rows.width(Channel) :])
    )
    return channel


def _payload(event: InboundEvent) -> dict[str, Any]:
    # Cleaned again here: the row must store whatever the provider sent (jsonb refuses \u0000).
    return json_clean(event.raw or {k: str(v) for k, v in asdict(event).items() if k != "raw"})


_INSERT_EVENT = """
INSERT INTO channels_inbound_providerevent
    (workspace_id, channel_id, provider, event_type, provider_event_id, payload,
     received_at, processed_at, attempts, last_error)
VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, %s, 1, '')
ON CONFLICT (provider, provider_event_id) DO NOTHING
RETURNING id
"""


def provider_event_insert(*, channel: Channel, event: InboundEvent, processed: bool) -> int | None:
    """Insert the event row under its unique provider id; None when it was stored before.

    One statement (``ON CONFLICT DO NOTHING``), no savepoint: a concurrent duplicate waits for the
    first insert to commit and then reports a conflict. Runs in the caller's transaction.
    """
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_EVENT,
            [
                channel.workspace_id,
                channel.pk,
                channel.provider,
                event.event_type,
                event.provider_event_id,
                json.dumps(_payload(event), cls=DjangoJSONEncoder),
                now,
                now if processed else None,
            ],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else None


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
            known_new=True,
            segments=sms_segments_reported(reported=event.metadata.get("num_segments"), body=event.body)
            if channel.kind == "sms"
            else None,
        )
        media = event.metadata.get("media") if channel.kind == "sms" else None
        if created and media:
            interaction_media_attach(interaction=interaction, media=media)
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
    """Store and apply each event (``event_ingest``); returns how many were applied now (repeats count
    zero)."""
    return sum(1 for event in events if event_ingest(channel=channel, event=event))


def event_ingest(*, channel: Channel, event: InboundEvent) -> bool:
    """Store one provider event and apply it, in one transaction; False when it was applied before.

    The row is inserted already marked processed and the event is applied inside a savepoint. If
    applying fails, the savepoint rolls back, the row is kept unprocessed with the error, the
    transaction still commits (nothing valid is lost) and the error is re-raised so the provider
    retries; the retry finds the unprocessed row and applies it.

    The event is first made storable (``inbound_event_clean``: NUL characters and lone surrogates a
    provider sent are removed or replaced), so an authentic event is applied, never answered 500.
    """
    event = inbound_event_clean(event)
    failure: Exception | None = None
    with transaction.atomic():
        inserted = provider_event_insert(channel=channel, event=event, processed=True)
        retry = inserted is None
        if inserted is None:
            stored = (
                ProviderEvent.objects.select_for_update()
                .filter(provider=channel.provider, provider_event_id=event.provider_event_id)
                .only("id", "processed_at")
                .first()
            )
            if stored is None or stored.processed_at is not None:
                return False
            row_id: int = stored.pk
        else:
            row_id = inserted
        try:
            with transaction.atomic():
                _apply(channel=channel, event=event)
        except Exception as exc:
            failure = exc
            ProviderEvent.objects.filter(pk=row_id).update(
                processed_at=None,
                attempts=F("attempts") + (1 if retry else 0),
                last_error=f"{type(exc).__name__}: {exc}"[:2000],
            )
        else:
            if retry:
                ProviderEvent.objects.filter(pk=row_id).update(
                    processed_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
                )
    if failure is not None:
        raise failure
    return True
