"""Outbound delivery: hand a queued interaction to its provider exactly once, with retries that are safe."""

from __future__ import annotations

import enum
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from customers.consent import SendPurpose, consent_check_send, consent_record
from engagement import events
from engagement.models import Channel, ChannelKind, Interaction, InteractionStatus
from engagement.models.conversations import InteractionKind
from engagement.services.email_threading import EmailEnvelope, email_outbound_prepare
from engagement.services.guards import RELEASE_CANCEL, RELEASE_HOLD, pacing_send_slot, send_release_check
from engagement.services.sms import sms_segment_count
from engagement.services.timeline import interaction_follow_merges, status_is_forward

from .base import LookupUnsupported, OutboundMessage, SendResult
from .registry import sender_for

logger = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    SENT = "sent"
    FAILED = "failed"
    RETRY = "retry"
    # The provider may have the message (no answer came): left to recovery to reconcile.
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


def outbound_interaction_send(
    *, interaction_id: int, final_attempt: bool = False, slotted: bool = False
) -> SendAttempt:
    """Send one queued outbound interaction through its channel's provider.

    Precondition: the interaction is ``queued``. It is claimed (moved to ``sending``, with a lease of
    ``OUTBOUND_SEND_LEASE_SECONDS`` and ``send_attempts`` + 1 as the claim's number) in a committed
    transaction before the provider is called, so a second task for the same interaction skips it, and
    a worker that dies mid-call leaves a lease that :func:`outbound_lease_reclaim` settles.
    Retryable failures put it back to ``queued`` unless ``final_attempt``.

    A paced message (``metadata["paced"]``: campaign sends) first reserves its sender's next call slot
    (``pacing_send_slot``: one call every 1/rate seconds across all workers) and waits for it with
    no lock held and nothing claimed, so a worker that dies while waiting leaves it queued, not ambiguous
    (``slotted``: the caller reserved and waited for it already, :func:`outbound_route`).
    """
    while True:
        attempt = _claim_and_send(interaction_id=interaction_id, final_attempt=final_attempt, slotted=slotted)
        if isinstance(attempt, SendAttempt):
            return attempt
        slotted = True
        time.sleep(attempt)


def _claim_and_send(*, interaction_id: int, final_attempt: bool, slotted: bool) -> SendAttempt | float:
    """:func:`outbound_interaction_send`'s work; the seconds to wait for the pacing slot instead when the
    message is paced, not yet ``slotted`` and its slot is ahead."""
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
        if not slotted and (interaction.metadata or {}).get("paced"):
            wait = pacing_send_slot(channel=interaction.channel)
            if wait > 0.0005:
                return wait
        # Consent is checked when a message is queued and again now: a STOP that arrived while it
        # waited (for a retry, or behind a rate limit) still wins, and so does the survivor's ledger
        # when the customer was merged away meanwhile (the message moves to the survivor).
        customer = interaction_follow_merges(interaction=interaction)
        decision = consent_check_send(
            customer=customer,
            channel_kind=interaction.channel.kind,
            purpose=interaction.metadata.get("purpose") or SendPurpose.TRANSACTIONAL,
        )
        if not decision.allowed:
            return _block(interaction, code=f"consent:{decision.reason}", message=decision.detail)
        # A campaign message waits while its run is paused and is never sent once it is cancelled
        # (engagement.services.guards.send_release_check), so pause takes effect at the provider too.
        release = send_release_check(interaction=interaction)
        if release == RELEASE_HOLD:
            return SendAttempt(Outcome.SKIPPED)
        if release == RELEASE_CANCEL:
            return _block(
                interaction,
                code="campaign:cancelled",
                message="the campaign run was cancelled before this message was sent",
            )
        now = timezone.now()
        interaction.status = InteractionStatus.SENDING
        interaction.send_attempts += 1
        interaction.status_changed_at = now
        interaction.lease_until = now + timedelta(seconds=settings.OUTBOUND_SEND_LEASE_SECONDS)
        interaction.save(update_fields=["status", "send_attempts", "status_changed_at", "lease_until"])
        envelope = EmailEnvelope(subject="", headers={}, reply_to="")
        if interaction.channel.kind == ChannelKind.EMAIL:
            envelope = email_outbound_prepare(interaction=interaction)
    channel = interaction.channel
    message = _outbound_message(interaction, channel, envelope)
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
    return _record_result(
        interaction_id=interaction.pk,
        result=result,
        final_attempt=final_attempt,
        claim=interaction.send_attempts,
    )


def _block(interaction: Interaction, *, code: str, message: str) -> SendAttempt:
    """Settle a message that must not be sent as ``blocked`` with why (``code``: at most 32 characters
    kept, ``message``: 500), never to be retried; publishes the status change."""
    interaction.status = InteractionStatus.BLOCKED
    interaction.status_changed_at = timezone.now()
    interaction.error_code = code[:32]
    interaction.error_message = message[:500]
    interaction.next_attempt_at = None
    interaction.save(
        update_fields=["status", "status_changed_at", "error_code", "error_message", "next_attempt_at"]
    )
    _publish_status(interaction)
    return SendAttempt(Outcome.BLOCKED)


def _outbound_message(interaction: Interaction, channel: Channel, envelope: EmailEnvelope) -> OutboundMessage:
    return OutboundMessage(
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


def _record_result(
    *, interaction_id: int, result: SendResult, final_attempt: bool, claim: int
) -> SendAttempt:
    """Record what the provider answered to claim number ``claim`` (the ``send_attempts`` it set).

    A claim whose lease was settled meanwhile (reconciled and queued again, or claimed anew) is stale:
    an accepted answer still wins over a queued resend that has not started, anything else is dropped.
    """
    with transaction.atomic():
        interaction = (
            Interaction.objects.select_for_update(of=("self",))
            .select_related("channel", "customer")
            .get(pk=interaction_id)
        )
        now = timezone.now()
        stale = interaction.send_attempts != claim or interaction.status == InteractionStatus.QUEUED
        if stale and not (result.accepted and interaction.status == InteractionStatus.QUEUED):
            logger.warning("stale send result for interaction %s (claim %s) dropped", interaction_id, claim)
            return SendAttempt(Outcome.SKIPPED, result)
        interaction.lease_until = None
        fields = [
            "status",
            "status_changed_at",
            "error_code",
            "error_message",
            "next_attempt_at",
            "metadata",
            "lease_until",
        ]
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
        if result.outcome_unknown and not result.accepted:
            # Stays ``sending`` with its lease expired now: the next recovery run asks the provider
            # whether the message arrived before anything is sent again.
            outcome = Outcome.UNKNOWN
            interaction.lease_until = now
            interaction.next_attempt_at = None
        elif result.accepted:
            outcome = Outcome.SENT
            interaction.provider_message_id = result.provider_message_id
            fields.append("provider_message_id")
            # A status callback may already have moved it further (delivered): never go back.
            if status_is_forward(interaction.status, InteractionStatus.SENT):
                interaction.status = InteractionStatus.SENT
            interaction.next_attempt_at = None
        elif result.retryable and not final_attempt:
            outcome = Outcome.RETRY
            interaction.status = InteractionStatus.QUEUED
            delay = max(retry_delay(interaction.send_attempts), result.retry_after or 0.0)
            interaction.next_attempt_at = now + timedelta(seconds=delay)
        else:
            outcome = Outcome.FAILED
            interaction.status = InteractionStatus.FAILED
            interaction.next_attempt_at = None
        if outcome != Outcome.UNKNOWN:  # an unknown outcome keeps its claim's time for the reconciliation
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


def outbound_stuck_requeue(*, older_than: timedelta | None = None) -> list[int]:
    """Queued interactions whose send task was lost (broker restart, a killed worker's prefetched task)
    are to be handed to a new task; returns their ids (at most 500).

    Their ``next_attempt_at`` moves to now, so one that merely waits in a long queue is handed over again
    only after another ``older_than``. Safe to run at any time: the send claims the interaction under a
    row lock, so a duplicate task skips.
    """
    if older_than is None:
        older_than = timedelta(seconds=settings.OUTBOUND_REQUEUE_AFTER_SECONDS)
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Interaction.objects.select_for_update(skip_locked=True)
            .filter(status=InteractionStatus.QUEUED, next_attempt_at__lt=now - older_than)
            .values_list("pk", flat=True)[:500]
        )
        Interaction.objects.filter(pk__in=ids).update(next_attempt_at=now)
    return ids


def outbound_leases_expired(*, limit: int = 200) -> list[int]:
    """Interactions left in ``sending`` by a worker whose lease expired (it died or hung mid-send)."""
    return list(
        Interaction.objects.filter(status=InteractionStatus.SENDING, lease_until__lt=timezone.now())
        .order_by("lease_until")
        .values_list("pk", flat=True)[:limit]
    )


def outbound_lease_reclaim(*, interaction_id: int) -> Outcome | None:
    """Settle a send whose worker's lease expired, without sending twice.

    The worker died after it claimed the interaction, maybe after its request reached the provider. So
    the provider is asked first (:meth:`OutboundSender.lookup`: Twilio's Messages list by To/From and our
    body; SendGrid's Email Activity by our custom arg ``iid``, trusted to say "not there" only after
    another lease's time since its index lags; a provider that cannot be asked gets that time for its
    status callback, which names our interaction id, to arrive): a message found there is recorded as
    sent (``SENT``); one the
    provider does not have is queued again (``RETRY``, sent by a new task through the outbox). None when
    there is nothing to settle (another recovery took it, or the lease is alive). A provider that cannot
    be reached now leaves it for the next run. Source of the rule: issue 10, "No message stuck, none sent
    twice".
    """
    lease = timedelta(seconds=settings.OUTBOUND_SEND_LEASE_SECONDS)
    with transaction.atomic():
        interaction = (
            Interaction.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("channel")
            .filter(pk=interaction_id, status=InteractionStatus.SENDING, lease_until__lt=timezone.now())
            .first()
        )
        if interaction is None or interaction.channel is None:
            return None
        claim, claimed_at = interaction.send_attempts, interaction.status_changed_at
        # Held while the provider is asked, so a concurrent recovery leaves it alone.
        interaction.lease_until = timezone.now() + lease
        interaction.save(update_fields=["lease_until"])
    channel = interaction.channel
    message = _outbound_message(interaction, channel, EmailEnvelope(subject="", headers={}, reply_to=""))
    exclude = frozenset(
        Interaction.objects.filter(channel=channel, customer_address=interaction.customer_address)
        .exclude(pk=interaction.pk)
        .exclude(provider_message_id="")
        .filter(created_at__gte=claimed_at - timedelta(days=1))
        .values_list("provider_message_id", flat=True)
    )
    sender = sender_for(channel)
    grace_over = timezone.now() >= claimed_at + 2 * lease
    try:
        found = sender.lookup(message, since=claimed_at, exclude=exclude)
    except LookupUnsupported:
        if not grace_over:
            return None  # its status callback may still come; the next run decides
        found = None
    except Exception:
        logger.warning(
            "could not reconcile interaction %s with its provider; later", interaction_id, exc_info=True
        )
        return None
    if found is None and not sender.lookup_is_immediate and not grace_over:
        return None  # the provider's index may lag: asked again on the next run, until the grace is over
    if found is not None:
        logger.info(
            "interaction %s: the provider has it (%s); recorded as sent",
            interaction_id,
            found.provider_message_id,
        )
        return _record_result(
            interaction_id=interaction_id, result=found, final_attempt=False, claim=claim
        ).outcome
    with transaction.atomic():
        interaction = Interaction.objects.select_for_update(of=("self",)).get(pk=interaction_id)
        if interaction.status != InteractionStatus.SENDING or interaction.send_attempts != claim:
            return None
        now = timezone.now()
        interaction.status = InteractionStatus.QUEUED
        interaction.status_changed_at = now
        interaction.next_attempt_at = now
        interaction.lease_until = None
        interaction.error_code = "lease_expired"
        interaction.error_message = "the sending worker was lost; the provider does not have the message"
        interaction.save(
            update_fields=[
                "status",
                "status_changed_at",
                "next_attempt_at",
                "lease_until",
                "error_code",
                "error_message",
            ]
        )
        events.publish_on_commit(
            events.DomainEvent(
                name=events.OUTBOUND_QUEUED,
                workspace_id=interaction.workspace_id,
                interaction_id=interaction.pk,
                conversation_id=interaction.conversation_id,
                customer_id=interaction.customer_id,
            )
        )
    logger.info("interaction %s: not at the provider; queued again", interaction_id)
    return Outcome.RETRY


# ---------------------------------------------------------------- broadcast email in batches

BATCH_WAIT_KEY = "outbound:email-batch:{channel_id}"


def outbound_batch_channel(*, interaction_id: int) -> int | None:
    """The channel to batch this queued interaction with, or None to send it alone. Batched: campaign
    email (``metadata.campaign_run_id``, not a test send) to a live customer on a channel whose sender
    sends batches, small enough for the provider's per-recipient substitutions. One query."""
    return outbound_route(interaction_id=interaction_id)[0]


def outbound_route(*, interaction_id: int) -> tuple[int | None, float | None]:
    """(:func:`outbound_batch_channel`'s answer, the seconds until the pacing slot this call reserved —
    None when the message is not paced or is batched). One query; the send task sleeps for the slot
    and then calls :func:`outbound_interaction_send` with ``slotted=True``."""
    row = (
        Interaction.objects.filter(pk=interaction_id, status=InteractionStatus.QUEUED)
        .values(
            "channel_id",
            "channel__provider",
            "channel__kind",
            "channel__address",
            "channel__config",
            "body",
            "metadata",
            "customer__merged_into_id",
        )
        .first()
    )
    if row is None or row["channel_id"] is None:
        return None, None
    if row["channel__kind"] != ChannelKind.EMAIL:
        if not (row["metadata"] or {}).get("paced"):
            return None, None
        channel = Channel(
            pk=row["channel_id"],
            provider=row["channel__provider"],
            kind=row["channel__kind"],
            address=row["channel__address"],
            config=row["channel__config"],
        )
        return None, pacing_send_slot(channel=channel)
    return _email_batch_channel(row), None


def _email_batch_channel(row: Mapping[str, Any]) -> int | None:
    metadata = row["metadata"] or {}
    if not metadata.get("campaign_run_id") or metadata.get("test") or row["customer__merged_into_id"]:
        return None
    sender = sender_for(Channel(provider=row["channel__provider"], kind=row["channel__kind"]))
    if sender.max_batch <= 1:
        return None
    html = str((metadata.get("email") or {}).get("html") or "")
    if len(row["body"].encode()) + len(html.encode()) >= sender.max_batch_message_bytes:
        return None
    return int(row["channel_id"])


@dataclass(frozen=True)
class BatchReport:
    """One batch: how many were claimed and sent in the request, blocked, left queued (paused run)."""

    sent: int = 0
    failed: int = 0
    retry: int = 0
    unknown: int = 0
    blocked: int = 0
    held: int = 0
    requests: int = 0

    @property
    def claimed(self) -> int:
        return self.sent + self.failed + self.retry + self.unknown


def _batch_claim(
    *, channel: Channel, limit: int, max_bytes: int
) -> tuple[list[Interaction], dict[str, int], Any]:
    """Claim up to ``limit`` queued campaign emails of ``channel`` in ONE transaction (``FOR UPDATE SKIP
    LOCKED``: two batches never take the same row): a paused run's stay queued, a cancelled run's and
    those consent no longer allows are blocked (set-based), the rest move to ``sending`` with one lease
    (its instant names this claim) and their Message-ID and headers. The provider is called after
    commit. Returns (claimed, counts, lease)."""
    from customers.consent import consent_allows_q
    from customers.models import Customer
    from engagement.services.email_threading import email_broadcast_envelope
    from engagement.services.guards import (
        RELEASE_CANCEL,
        RELEASE_HOLD,
        send_release_check_many,
    )

    now = timezone.now()
    counts = {"blocked": 0, "held": 0}
    lease = now + timedelta(seconds=settings.OUTBOUND_SEND_LEASE_SECONDS)
    itable = Interaction._meta.db_table
    ctable = Customer._meta.db_table
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT i.id FROM {itable} i JOIN {ctable} c ON c.id = i.customer_id
                WHERE i.channel_id = %s AND i.status = 'queued' AND i.next_attempt_at <= %s
                  AND i.metadata ? 'campaign_run_id' AND NOT i.metadata @> '{{"test": true}}'
                  AND c.merged_into_id IS NULL
                  AND octet_length(i.body) + octet_length(COALESCE(i.metadata->'email'->>'html', '')) < %s
                ORDER BY i.id LIMIT %s
                FOR UPDATE OF i SKIP LOCKED
                """,  # noqa: S608 - table names; values are parameters
                [channel.pk, now, max_bytes, limit],
            )
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return [], counts, lease
        rows = list(Interaction.objects.filter(pk__in=ids).order_by("pk"))
        for r in rows:
            # All of the batch's channel (the claim's filter): shared, so its encrypted config is
            # decrypted once, not once per row as a select_related would.
            r.channel = channel
        release = send_release_check_many(run_ids={int(r.metadata["campaign_run_id"]) for r in rows})
        rows_by_purpose: dict[str, list[Interaction]] = {}
        cancelled: list[Interaction] = []
        for r in rows:
            decision = release[int(r.metadata["campaign_run_id"])]
            if decision == RELEASE_HOLD:
                counts["held"] += 1  # stays queued: the run's resume hands it back
            elif decision == RELEASE_CANCEL:
                cancelled.append(r)
            else:
                rows_by_purpose.setdefault(r.metadata.get("purpose") or SendPurpose.TRANSACTIONAL, []).append(
                    r
                )
        # Consent again at send time (a STOP while it waited wins), one query per purpose.
        refused: list[Interaction] = []
        claimed: list[Interaction] = []
        for purpose, group in rows_by_purpose.items():
            allowed = set(
                Customer.objects.filter(pk__in={r.customer_id for r in group})
                .filter(
                    consent_allows_q(
                        channel_kind=channel.kind, purpose=purpose, workspace_id=channel.workspace_id
                    )
                )
                .values_list("pk", flat=True)
            )
            for r in group:
                (claimed if r.customer_id in allowed else refused).append(r)
        blocked_fields = ["status", "status_changed_at", "error_code", "error_message", "next_attempt_at"]
        for r, code, text in [
            *(
                (r, "campaign:cancelled", "the campaign run was cancelled before this message was sent")
                for r in cancelled
            ),
            *((r, "consent:not_allowed", "consent no longer allows this message") for r in refused),
        ]:
            r.status, r.status_changed_at, r.next_attempt_at = InteractionStatus.BLOCKED, now, None
            r.error_code, r.error_message = code, text
        if cancelled or refused:
            Interaction.objects.bulk_update([*cancelled, *refused], blocked_fields)
            for r in (*cancelled, *refused):
                _publish_status(r)
            counts["blocked"] = len(cancelled) + len(refused)
        for r in claimed:
            r.envelope = email_broadcast_envelope(interaction=r)  # type: ignore[attr-defined]
        if claimed:
            # One statement for the claim (a bulk_update's CASE over 1,000 rows cost seconds to build).
            with connection.cursor() as cursor:
                cursor.execute(
                    f"""
                    UPDATE {itable} AS i SET status = 'sending', send_attempts = i.send_attempts + 1,
                           status_changed_at = %s, lease_until = %s, email_message_id = v.mid,
                           metadata = v.meta
                    FROM unnest(%s::bigint[], %s::text[], %s::jsonb[]) AS v(id, mid, meta)
                    WHERE i.id = v.id
                    """,  # noqa: S608 - table names; values are parameters
                    [
                        now,
                        lease,
                        [r.pk for r in claimed],
                        [r.email_message_id for r in claimed],
                        [json.dumps(r.metadata, cls=DjangoJSONEncoder) for r in claimed],
                    ],
                )
    return claimed, counts, lease


def outbound_email_batch_send(*, channel: Channel, limit: int | None = None) -> BatchReport:
    """Send up to ``limit`` (default: the sender's ``max_batch``, SendGrid 1,000) queued campaign emails
    of ``channel`` in ONE provider request, exactly once each: claimed and committed as ``sending``
    before the call (:func:`_batch_claim`), every recipient a personalization that carries our
    interaction id (``custom_args.iid``), the outcome recorded set-based only on rows still holding this
    claim's lease. Accepted → ``sent`` (``provider_message_id`` = the request's ``X-Message-Id``, a dot
    and our id: unique per recipient); retryable (429 with Retry-After, 5xx, network) → ``queued`` with
    a backoff; refused → ``failed``; no answer → left ``sending`` with its lease expired, for recovery to
    reconcile with the provider by ``iid`` (never resent blindly)."""
    sender = sender_for(channel)
    size = min(limit or sender.max_batch, sender.max_batch)
    claimed, counts, lease = _batch_claim(
        channel=channel, limit=size, max_bytes=sender.max_batch_message_bytes
    )
    if not claimed:
        return BatchReport(blocked=counts["blocked"], held=counts["held"])
    messages = [
        OutboundMessage(
            interaction_id=r.pk,
            channel=channel,
            to=r.customer_address,
            body=r.body,
            status_callback_url="",
            subject=r.envelope.subject,  # type: ignore[attr-defined]
            headers=r.envelope.headers,  # type: ignore[attr-defined]
            reply_to=r.envelope.reply_to,  # type: ignore[attr-defined]
            html=str((r.metadata.get("email") or {}).get("html") or ""),
        )
        for r in claimed
    ]
    try:
        result = sender.send_batch(messages)
    except Exception as exc:
        logger.exception("batch sender crashed for channel %s", channel.pk)
        result = SendResult(
            accepted=False,
            status="failed",
            error_code="internal",
            error_message=str(exc)[:500],
            retryable=True,
        )
    ids = [r.pk for r in claimed]
    now = timezone.now()
    itable = Interaction._meta.db_table
    if result.outcome_unknown and not result.accepted:
        sql = f"""
            UPDATE {itable} SET lease_until = %s
            WHERE id = ANY(%s) AND status = 'sending' AND lease_until = %s
        """  # noqa: S608 - table names; values are parameters
        params: list[Any] = [now, ids, lease]
        outcome = "unknown"
    elif result.accepted:
        sql = f"""
            UPDATE {itable} SET status = 'sent', status_changed_at = %s, lease_until = NULL,
                   next_attempt_at = NULL, error_code = '', error_message = '',
                   provider_message_id = %s || '.' || id::text,
                   metadata = metadata || jsonb_build_object('provider', %s::jsonb)
            WHERE id = ANY(%s) AND status = 'sending' AND lease_until = %s
            RETURNING id, workspace_id, conversation_id, customer_id, status
        """  # noqa: S608 - table names; values are parameters
        raw = {**result.raw, "batch": len(ids)}
        params = [now, result.provider_message_id, json.dumps(raw), ids, lease]
        outcome = "sent"
    elif result.retryable:
        delay = max(retry_delay(1), result.retry_after or 0.0)
        sql = f"""
            UPDATE {itable} SET status = 'queued', status_changed_at = %s, lease_until = NULL,
                   next_attempt_at = %s, error_code = %s, error_message = %s
            WHERE id = ANY(%s) AND status = 'sending' AND lease_until = %s
            RETURNING id, workspace_id, conversation_id, customer_id, status
        """  # noqa: S608 - table names; values are parameters
        params = [
            now,
            now + timedelta(seconds=delay),
            result.error_code[:32],
            result.error_message[:500],
            ids,
            lease,
        ]
        outcome = "retry"
    else:
        sql = f"""
            UPDATE {itable} SET status = 'failed', status_changed_at = %s, lease_until = NULL,
                   next_attempt_at = NULL, error_code = %s, error_message = %s
            WHERE id = ANY(%s) AND status = 'sending' AND lease_until = %s
            RETURNING id, workspace_id, conversation_id, customer_id, status
        """  # noqa: S608 - table names; values are parameters
        params = [now, result.error_code[:32], result.error_message[:500], ids, lease]
        outcome = "failed"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall() if outcome != "unknown" else []
        events.publish_on_commit(
            *(
                events.DomainEvent(
                    name=events.INTERACTION_UPDATED,
                    workspace_id=workspace_id,
                    interaction_id=pk,
                    conversation_id=conversation_id,
                    customer_id=customer_id,
                    data={"status": status},
                )
                for pk, workspace_id, conversation_id, customer_id, status in rows
            )
        )
    n = len(ids)
    return BatchReport(
        sent=n if outcome == "sent" else 0,
        failed=n if outcome == "failed" else 0,
        retry=n if outcome == "retry" else 0,
        unknown=n if outcome == "unknown" else 0,
        blocked=counts["blocked"],
        held=counts["held"],
        requests=1,
    )


def outbound_email_batches_drain(
    *, channel: Channel, budget_seconds: float, wait_seconds: float
) -> list[BatchReport]:
    """Send the channel's queued campaign emails in batches until none is ready or ``budget_seconds``
    pass. A batch goes when it is full, or when its oldest message has waited ``wait_seconds`` (so a
    campaign still queueing fills its requests instead of sending them a few at a time)."""
    import time as time_module

    sender = sender_for(channel)
    deadline = time_module.monotonic() + budget_seconds
    reports: list[BatchReport] = []
    while time_module.monotonic() < deadline:
        ready = _batch_ready(channel=channel, size=sender.max_batch, wait_seconds=wait_seconds)
        if ready is None:
            break
        if not ready:
            time_module.sleep(min(0.2, wait_seconds))
            continue
        report = outbound_email_batch_send(channel=channel)
        reports.append(report)
        if not report.claimed and not report.blocked:
            break  # the ready rows belong to a paused run, or another worker took them
    return reports


def _batch_ready(*, channel: Channel, size: int, wait_seconds: float) -> bool | None:
    """None: nothing queued for a batch; True: a full batch, or the oldest has waited long enough."""
    now = timezone.now()
    queued = Interaction.objects.filter(
        channel=channel,
        status=InteractionStatus.QUEUED,
        next_attempt_at__lte=now,
        metadata__has_key="campaign_run_id",
    )
    found = list(queued.order_by("pk").values_list("created_at", flat=True)[:size])
    if not found:
        return None
    return len(found) >= size or min(found) <= now - timedelta(seconds=wait_seconds)


def outbound_batch_pending(*, channel: Channel) -> bool:
    """Campaign emails of ``channel`` queued and due now, not held by a paused run (those wait for its
    resume): another flush is needed. Those waiting for a retry's backoff come back through recovery
    (``run_requeue_lost``, ``outbound_stuck_requeue``), which hands them to a send task again."""
    from engagement.models import CampaignRun, RunState

    paused = CampaignRun.objects.filter(state=RunState.PAUSED).values_list("pk", flat=True)
    return (
        Interaction.objects.filter(
            channel=channel,
            status=InteractionStatus.QUEUED,
            next_attempt_at__lte=timezone.now(),
            metadata__has_key="campaign_run_id",
        )
        .exclude(metadata__campaign_run_id__in=list(paused))
        .exists()
    )
