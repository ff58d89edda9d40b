"""The campaign engine: start runs, snapshot audiences, claim recipients, send through the outbox, sync
outcomes, complete runs. Driven by one Celery beat task (``engagement.tasks.campaigns_tick``).

Exactly once, step by step (ARCHITECTURE.md "Campaigns" has the argument in full):

1. A run is created under UNIQUE(campaign, occurrence) while the campaign's row is locked, so two ticks
   never start the same occurrence; its audience is snapshotted by ONE ``INSERT … SELECT`` into
   ``CampaignRecipient`` under UNIQUE(run, customer).
2. Ticks (several may work one run at once: parallel beat ticks, worker threads) claim due rows in
   batches with ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING id`` (state → claimed
   with a lease), re-reading the run's state before every batch (pause/cancel take effect within a
   batch). Two ticks never claim the same row.
3. Each claimed batch gets ONE transaction: lock the rows, re-check each is still claimed, run the guard
   pipeline per row in a savepoint, take the batch's pacing tokens in one call per sender, and either
   record skip/hold, or queue the message with ``message_send`` (idempotency key
   ``campaign:<run>:<customer>``) and move the row to ``sending`` — row and message commit together or
   neither does. The provider is called by the outbound task after commit, at the sender's next pacing
   slot (``pacing_send_slot``).
4. Outcomes come back from the interaction (set-based sync): accepted → sent; hard failure → the next
   channel or failed; left "sending" by a killed worker with no callback → unknown (never resent).
   Queued messages whose task was lost are handed to a new task (the task claims under a row lock).
5. A run is completed in one transaction that finds no pending/held/claimed/sending row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from engagement import events
from engagement.campaigns.content import RenderFailed, content_for_variant, content_render
from engagement.models import (
    Campaign,
    CampaignRecipient,
    CampaignRun,
    CampaignSettings,
    CampaignState,
    Channel,
    Interaction,
    RecipientState,
    RunState,
)
from engagement.models.campaigns import ACTIVE_RECIPIENT_STATES, LatePolicy, ScheduleKind
from engagement.segments.services import segment_queryset
from engagement.services.guards import (
    GuardDecision,
    GuardPrefetch,
    campaign_settings_for,
    pacing_take_many,
    send_guard_check,
    send_guard_prefetch,
    sender_key,
    sender_rate,
)
from engagement.services.messaging import SendRejected, message_send

from .schedule import rrule_next

logger = logging.getLogger(__name__)

HOLDOUT = "holdout"
BUCKETS = 10_000


# ---------------------------------------------------------------- variants: a deterministic hash


def _hash_slices(campaign_id: int, customer_id: int) -> tuple[int, int]:
    digest = hashlib.md5(f"{campaign_id}:{customer_id}".encode(), usedforsecurity=False).hexdigest()
    return int(digest[:8], 16), int(digest[8:16], 16)


def variant_for(*, campaign: Campaign, customer_id: int) -> str:
    """The variant ``customer_id`` gets in ``campaign``: "holdout" when the first hash slice falls in the
    holdout share, else a variant chosen by the second slice over the cumulative weights. Pure function
    of (campaign id, customer id, variants, holdout): a resume or re-run never reshuffles. The launch
    snapshot computes the same thing in SQL (:func:`_variant_sql`)."""
    first, second = _hash_slices(campaign.pk, customer_id)
    if first % BUCKETS < campaign.holdout_percent * 100:
        return HOLDOUT
    variants = campaign.variants or []
    if not variants:
        return "A"
    total = sum(int(v["weight"]) for v in variants)
    point = second % total
    for v in variants:
        point -= int(v["weight"])
        if point < 0:
            return str(v["key"])
    return str(variants[-1]["key"])


def _variant_sql(campaign: Campaign) -> tuple[str, list[Any]]:
    h = f"md5('{int(campaign.pk)}:' || m.id::text)"  # an integer, inlined
    first = f"(('x' || substr({h}, 1, 8))::bit(32)::bigint %% {BUCKETS})"
    second = f"('x' || substr({h}, 9, 8))::bit(32)::bigint"
    variants = campaign.variants or []
    choice_params: list[Any] = []
    if not variants:
        choice = "'A'"
    else:
        total = sum(int(v["weight"]) for v in variants)
        whens: list[str] = []
        upper = 0
        for v in variants[:-1]:
            upper += int(v["weight"])
            whens.append(f"WHEN p < {upper} THEN %s")
            choice_params.append(str(v["key"]))
        choice = (
            f"(SELECT CASE {' '.join(whens)} ELSE %s END FROM (SELECT ({second} %% {total}) AS p) AS pick)"  # noqa: S608 - table names and integers, values as parameters
        )
        choice_params.append(str(variants[-1]["key"]))
    sql = f"CASE WHEN {first} < %s THEN 'holdout' ELSE {choice} END"
    return sql, [campaign.holdout_percent * 100, *choice_params]


# ---------------------------------------------------------------- starting runs


def _due_sql(campaign: Campaign, occurrence: dt.datetime) -> tuple[str, list[Any]]:
    """Each recipient's due time: the occurrence, or (local-time campaigns) the wall-clock time in the
    customer's zone (unknown or empty zone → the fallback zone); NULL means "skip: too late"."""
    if campaign.schedule_kind != ScheduleKind.LOCAL_TIME:
        return "%s::timestamptz", [occurrence]
    zone = "(CASE WHEN m.timezone IN (SELECT name FROM pg_timezone_names) THEN m.timezone ELSE %s END)"
    at = f"((%s::date + %s::time) AT TIME ZONE {zone})"
    next_day = f"((%s::date + 1 + %s::time) AT TIME ZONE {zone})"
    day, wall, fallback = campaign.local_date, campaign.local_time, campaign.fallback_timezone or "UTC"
    late: tuple[str, list[Any]] = {  # type: ignore[assignment]
        LatePolicy.SEND_NOW: ("%s::timestamptz", [occurrence]),
        LatePolicy.NEXT_DAY: (next_day, [day, wall, fallback]),
        LatePolicy.SKIP: ("NULL", []),
    }[LatePolicy(campaign.late_policy)]
    sql = f"(CASE WHEN {at} >= %s THEN {at} ELSE {late[0]} END)"
    return sql, [day, wall, fallback, occurrence, day, wall, fallback, *late[1]]


def audience_snapshot(*, run: CampaignRun, now: dt.datetime) -> int:
    """Insert one recipient row per member of the campaign's segment, in ONE ``INSERT … SELECT`` (the
    segment's compiled query as the source; no Python loop over customers). Variant by
    :func:`variant_for`'s hash; holdout rows (and local-time rows too late under the "skip" policy) are
    inserted already skipped, so they are counted. Rows are inserted in customer order (whatever plan
    the segment's query gets), so claims, which go by due time then row id, go in customer order too.
    Returns the number of rows inserted."""
    campaign = run.campaign
    members = segment_queryset(segment=campaign.segment, now=now).values("id", "timezone")
    members_sql, members_params = members.query.sql_with_params()
    variant_sql, variant_params = _variant_sql(campaign)
    due_sql, due_params = _due_sql(campaign, run.occurrence)
    table = CampaignRecipient._meta.db_table
    sql = f"""
        INSERT INTO {table} (run_id, campaign_id, customer_id, state, variant, due_at, hold_reason,
                             skip_reason, detail, attempt, finished_at, created_at, updated_at)
        SELECT %s, %s, v.id,
               CASE WHEN v.variant = 'holdout' OR v.due IS NULL THEN 'skipped' ELSE 'pending' END,
               v.variant, COALESCE(v.due, %s), '',
               CASE WHEN v.variant = 'holdout' THEN 'holdout' WHEN v.due IS NULL THEN 'too_late' ELSE '' END,
               '', 0,
               CASE WHEN v.variant = 'holdout' OR v.due IS NULL THEN %s::timestamptz END, %s, %s
        FROM (SELECT m.id, {variant_sql} AS variant, {due_sql} AS due FROM ({members_sql}) AS m) AS v
        ORDER BY v.id
        ON CONFLICT (run_id, customer_id) DO NOTHING
    """  # noqa: S608 - table names and integers; values are parameters
    params = [run.pk, campaign.pk, now, now, now, now, *variant_params, *due_params, *members_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def campaign_run_start(*, campaign: Campaign, occurrence: dt.datetime, now: dt.datetime) -> CampaignRun:
    """The run for ``occurrence``, created and snapshotted if it does not exist yet.

    Precondition: called inside a transaction holding the campaign's row lock; the unique
    (campaign, occurrence) constraint makes a second start of the same occurrence find the first."""
    run, created = CampaignRun.objects.get_or_create(
        campaign=campaign,
        occurrence=occurrence,
        defaults={"workspace_id": campaign.workspace_id, "started_at": now, "state": RunState.RUNNING},
    )
    if created:
        run.campaign = campaign
        run.targeted = audience_snapshot(run=run, now=now)
        run.save(update_fields=["targeted"])
    return run


def campaign_state_publish(*, campaign: Campaign, previous: str, reason: str = "") -> None:
    """Publish ``campaign.state_changed`` (outbox, after commit) when ``campaign.state`` differs from
    ``previous``; call it inside the transaction that saved the new state."""
    if campaign.state == previous:
        return
    events.publish_on_commit(
        events.DomainEvent(
            name=events.CAMPAIGN_STATE_CHANGED,
            workspace_id=campaign.workspace_id,
            data={
                "campaign_id": campaign.pk,
                "state": str(campaign.state),
                "previous_state": str(previous),
                "reason": reason,
            },
        )
    )


def campaigns_start_due(*, now: dt.datetime) -> list[int]:
    """Start the runs whose time has come: campaigns with ``next_run_at`` ≤ now (indexed). Each in its own
    transaction with the campaign row locked (SKIP LOCKED: a parallel tick moves on). Returns run ids."""
    started: list[int] = []
    due = Campaign.objects.filter(
        state__in=[CampaignState.SCHEDULED, CampaignState.RUNNING], next_run_at__lte=now
    ).values_list("pk", flat=True)[:20]
    for pk in list(due):
        with transaction.atomic():
            campaign = (
                Campaign.objects.select_for_update(skip_locked=True)
                .select_related("segment", "workspace")
                .filter(
                    pk=pk, state__in=[CampaignState.SCHEDULED, CampaignState.RUNNING], next_run_at__lte=now
                )
                .first()
            )
            if campaign is None or campaign.next_run_at is None:
                continue
            run = campaign_run_start(campaign=campaign, occurrence=campaign.next_run_at, now=now)
            started.append(run.pk)
            following = None
            if campaign.schedule_kind == ScheduleKind.RECURRING and campaign.send_at is not None:
                following = rrule_next(
                    rule=campaign.rrule,
                    start=campaign.send_at,
                    zone=campaign.schedule_timezone,
                    after=campaign.next_run_at,
                )
            campaign.next_run_at = following
            previous = campaign.state
            campaign.state = CampaignState.RUNNING
            campaign.save(update_fields=["next_run_at", "state", "updated_at"])
            campaign_state_publish(campaign=campaign, previous=previous)
    return started


# ---------------------------------------------------------------- claiming and sending


@dataclass
class TickContext:
    now: dt.datetime
    channels: dict[int, list[Channel]] = field(default_factory=dict)
    rules: dict[int, CampaignSettings] = field(default_factory=dict)
    max_queued: dict[int, int] = field(default_factory=dict)

    def channels_for(self, campaign: Campaign) -> list[Channel]:
        if campaign.pk not in self.channels:
            by_id = {
                c.pk: c
                for c in Channel.objects.filter(
                    workspace_id=campaign.workspace_id, pk__in=campaign.channel_ids
                )
            }
            self.channels[campaign.pk] = [by_id[i] for i in campaign.channel_ids if i in by_id]
        return self.channels[campaign.pk]

    def max_queued_for(self, run_id: int) -> int:
        """How many of the run's messages may wait for a send task: ``CAMPAIGN_MAX_QUEUED``, or enough
        to fill email batches (``CAMPAIGN_EMAIL_MAX_QUEUED``) when the campaign has an email channel."""
        if run_id not in self.max_queued:
            campaign = Campaign.objects.filter(runs__pk=run_id).first()
            has_email = campaign is not None and any(c.kind == "email" for c in self.channels_for(campaign))
            limit = settings.CAMPAIGN_MAX_QUEUED
            self.max_queued[run_id] = max(limit, settings.CAMPAIGN_EMAIL_MAX_QUEUED) if has_email else limit
        return self.max_queued[run_id]

    def rules_for(self, workspace_id: int) -> CampaignSettings:
        if workspace_id not in self.rules:
            self.rules[workspace_id] = campaign_settings_for(workspace_id=workspace_id)
        return self.rules[workspace_id]


def recipients_claim(*, run_id: int, now: dt.datetime, limit: int) -> list[int]:
    """Claim up to ``limit`` due rows of the run: pending, held past its time, or claimed by a worker
    whose lease ran out. One atomic statement (``FOR UPDATE SKIP LOCKED`` inside an UPDATE): two
    workers never claim the same row."""
    table = CampaignRecipient._meta.db_table
    lease = now + dt.timedelta(seconds=settings.CAMPAIGN_CLAIM_LEASE_SECONDS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} SET state = 'claimed', lease_until = %s, updated_at = %s
            WHERE id IN (
                SELECT id FROM {table}
                WHERE run_id = %s AND state IN ('pending', 'held', 'claimed') AND due_at <= %s
                  AND (state <> 'claimed' OR lease_until < %s)
                ORDER BY due_at, id LIMIT %s
                FOR UPDATE SKIP LOCKED
            ) RETURNING id
            """,  # noqa: S608 - table names and integers; values are parameters
            [lease, now, run_id, now, now, limit],
        )
        return sorted(row[0] for row in cursor.fetchall())


def recipient_process(*, recipient_id: int, context: TickContext) -> str:
    """Guard and send one claimed recipient (:func:`recipients_process` for a batch of one). Returns the
    row's new state."""
    return recipients_process(recipient_ids=[recipient_id], context=context).get(
        recipient_id, RecipientState.FAILED
    )


def recipients_process(*, recipient_ids: list[int], context: TickContext) -> dict[int, str]:
    """Guard and send a claimed batch in ONE transaction (see the module docstring): the rows are read
    and locked in one query, each row's guards and queueing run in their own savepoint (an unexpected
    error fails that row only, with the error as its detail), and the pacing tokens of the batch's sends
    are taken in one Redis call per sender; the rows without a token are held until their token's time.
    Everything commits together, so the queued messages' send tasks start after one commit. Returns
    recipient id → new state (ids no longer claimed keep the state another worker gave them)."""
    with transaction.atomic():
        return _recipients_process(recipient_ids, context)


def _fail(recipient: CampaignRecipient, exc: Exception, now: dt.datetime) -> str:
    logger.error("campaign recipient %s failed: %r", recipient.pk, exc, exc_info=exc)
    CampaignRecipient.objects.filter(pk=recipient.pk, state=RecipientState.CLAIMED).update(
        state=RecipientState.FAILED,
        skip_reason="error",
        detail=f"{type(exc).__name__}: {exc}"[:300],
        lease_until=None,
        finished_at=now,
        updated_at=now,
    )
    return RecipientState.FAILED


def _finish(recipient: CampaignRecipient, state: str, now: dt.datetime, **values: Any) -> str:
    recipient.state = state
    recipient.lease_until = None
    recipient.updated_at = now
    if state in (RecipientState.SKIPPED, RecipientState.FAILED):
        recipient.finished_at = now
    for key, value in values.items():
        setattr(recipient, key, value)
    recipient.save()
    return state


def _recipients_process(recipient_ids: list[int], context: TickContext) -> dict[int, str]:
    now = timezone.now()
    rows = list(
        CampaignRecipient.objects.select_for_update(of=("self",))
        .select_related("run", "campaign", "campaign__segment", "campaign__workspace", "customer")
        .filter(pk__in=recipient_ids)
        .order_by("pk")
    )
    states: dict[int, str] = {}
    sends: list[tuple[CampaignRecipient, GuardDecision]] = []
    prefetch: dict[int, GuardPrefetch] = {}  # per campaign (a batch is one run's: one campaign)
    for recipient in rows:
        campaign = recipient.campaign
        if recipient.state == RecipientState.CLAIMED and campaign.pk not in prefetch:
            prefetch[campaign.pk] = send_guard_prefetch(
                customer_ids=[r.customer_id for r in rows if r.campaign_id == campaign.pk],
                channels=context.channels_for(campaign),
                purpose=campaign.purpose,
                segment=campaign.segment,
                workspace_id=campaign.workspace_id,
                now=now,
            )
    for recipient in rows:
        if recipient.state != RecipientState.CLAIMED:
            states[recipient.pk] = recipient.state  # another worker finished it after our lease ran out
            continue
        try:
            with transaction.atomic():
                decision = _guard(recipient, context, now, prefetch.get(recipient.campaign_id))
        except Exception as exc:
            states[recipient.pk] = _fail(recipient, exc, now)
            continue
        if decision.action == "send":
            sends.append((recipient, decision))
        else:
            states[recipient.pk] = _finish_decision(recipient, decision, now)
    # Pacing, in bulk: one token per send from its sender's bucket, one Redis call per sender.
    by_sender: dict[str, list[tuple[CampaignRecipient, GuardDecision]]] = {}
    for recipient, decision in sends:
        assert decision.channel is not None
        by_sender.setdefault(sender_key(decision.channel), []).append((recipient, decision))
    for group in by_sender.values():
        channel = group[0][1].channel
        assert channel is not None
        granted, wait = pacing_take_many(channel=channel, count=len(group))
        rate = sender_rate(channel)
        for index, (recipient, decision) in enumerate(group):
            if index >= granted:
                # Held until its own token's time: the rows behind come back spread at the rate.
                until = now + dt.timedelta(seconds=wait + (index - granted) / rate)
                states[recipient.pk] = _finish(
                    recipient,
                    RecipientState.HELD,
                    now,
                    due_at=until,
                    hold_reason="pacing",
                    detail=f"sender at its rate; {(until - now).total_seconds():.3f} s",
                )
                continue
            try:
                with transaction.atomic():
                    states[recipient.pk] = _queue(recipient, decision, context, now)
            except Exception as exc:
                states[recipient.pk] = _fail(recipient, exc, now)
    return states


def _guard(
    recipient: CampaignRecipient, context: TickContext, now: dt.datetime, prefetch: GuardPrefetch | None
) -> GuardDecision:
    campaign = recipient.campaign
    return send_guard_check(
        customer=recipient.customer,
        channels=context.channels_for(campaign),
        purpose=campaign.purpose,
        segment=campaign.segment,
        now=now,
        prefer_customer_channel=campaign.prefer_customer_channel,
        start_at=recipient.attempt,
        rules=context.rules_for(campaign.workspace_id),
        pace=False,  # taken for the whole batch by the caller
        prefetch=prefetch,
    )


def _finish_decision(recipient: CampaignRecipient, decision: GuardDecision, now: dt.datetime) -> str:
    if decision.action == "skip":
        return _finish(
            recipient,
            RecipientState.SKIPPED,
            now,
            skip_reason=decision.reason[:64],
            detail=decision.detail[:300],
            channel=decision.channel,
        )
    assert decision.until is not None
    return _finish(
        recipient,
        RecipientState.HELD,
        now,
        due_at=decision.until,
        hold_reason=decision.reason[:64],
        detail=decision.detail[:300],
    )


def _queue(
    recipient: CampaignRecipient, decision: GuardDecision, context: TickContext, now: dt.datetime
) -> str:
    assert decision.channel is not None
    assert decision.customer is not None
    campaign = recipient.campaign
    rules = context.rules_for(campaign.workspace_id)
    channel, customer = decision.channel, decision.customer
    content = content_for_variant(
        content=campaign.content, variants=campaign.variants, variant=recipient.variant
    )
    try:
        rendered = content_render(
            content=content,
            kind=channel.kind,
            customer=customer,
            purpose=campaign.purpose,
            sms_opt_out_hint=rules.sms_opt_out_hint,
        )
    except RenderFailed as exc:
        return _finish(
            recipient, RecipientState.SKIPPED, now, skip_reason="render_error", detail=str(exc)[:300]
        )
    key = f"campaign:{recipient.run_id}:{customer.pk}"
    if decision.channel_index:
        key += f":{decision.channel_index}"
    metadata: dict[str, Any] = {
        "campaign_id": campaign.pk,
        "campaign_name": campaign.name,
        "campaign_run_id": recipient.run_id,
        "campaign_recipient_id": recipient.pk,
        "variant": recipient.variant,
        # Spaced at the sender's rate by the send task (channels_outbound: pacing_send_slot).
        "paced": True,
    }
    if channel.kind == "email":
        metadata["email"] = {"subject": rendered.subject, "html": rendered.html}
    try:
        interaction, created = message_send(
            workspace=campaign.workspace,
            channel=channel,
            customer=customer,
            body=rendered.body,
            to_address=decision.address,
            idempotency_key=key,
            purpose=campaign.purpose,
            media_urls=rendered.media_urls,
            metadata=metadata,
        )
    except SendRejected as exc:
        return _finish(recipient, RecipientState.SKIPPED, now, skip_reason="rejected", detail=str(exc)[:300])
    if not created and interaction.metadata.get("campaign_recipient_id") != recipient.pk:
        # Merged into a customer who is also in this run: they get one message, not two.
        return _finish(
            recipient,
            RecipientState.SKIPPED,
            now,
            skip_reason="duplicate",
            detail="merged into another recipient",
        )
    return _finish(
        recipient,
        RecipientState.SENDING,
        now,
        channel=channel,
        interaction=interaction,
        sent_at=now,
        attempt=decision.channel_index,
        hold_reason="",
        detail="",
    )


def run_outbox_depth(*, run_id: int) -> int:
    """How many of the run's messages wait in the outbox for their send task."""
    return CampaignRecipient.objects.filter(
        run_id=run_id, state=RecipientState.SENDING, interaction__status="queued"
    ).count()


def run_process(*, run_id: int, deadline: float, context: TickContext) -> int:
    """Claim and process due recipients of a running run in batches until none is due or ``deadline``
    (``time.monotonic()``) passes. The run's state is read before every batch, so a pause or cancel
    stops it within one batch. Returns how many rows were processed."""
    done = 0
    while time.monotonic() < deadline:
        state = CampaignRun.objects.filter(pk=run_id).values_list("state", flat=True).first()
        if state != RunState.RUNNING:
            break
        if run_outbox_depth(run_id=run_id) >= context.max_queued_for(run_id):
            break  # the send tasks are behind: keep the provider queue shallow (pause stays quick)
        ids = recipients_claim(run_id=run_id, now=timezone.now(), limit=settings.CAMPAIGN_BATCH_SIZE)
        if not ids:
            break
        recipients_process(recipient_ids=ids, context=context)
        done += len(ids)
    return done


# ---------------------------------------------------------------- outcomes and completion

SENT_STATUSES = ("sent", "delivered", "read", "undelivered")


def run_sync(*, run: CampaignRun, now: dt.datetime) -> dict[str, int]:
    """Bring the run's ``sending`` rows up to date with their interactions, hand lost messages to a new
    task, mark ambiguous ones unknown, and complete the run when nothing is left. Set-based."""
    table = CampaignRecipient._meta.db_table
    itable = Interaction._meta.db_table
    result: dict[str, int] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} r SET state = 'sent', finished_at = %s, updated_at = %s
            FROM {itable} i
            WHERE r.run_id = %s AND r.state IN ('sending', 'unknown') AND r.interaction_id = i.id
              AND i.status = ANY(%s)
            """,  # noqa: S608 - table names and integers; values are parameters
            [now, now, run.pk, list(SENT_STATUSES)],
        )
        result["sent"] = cursor.rowcount
        cursor.execute(
            f"""
            UPDATE {table} r SET state = 'unknown', finished_at = %s, updated_at = %s,
                   detail = 'the provider did not answer in time: not resent; its status callback settles it'
            FROM {itable} i
            WHERE r.run_id = %s AND r.state = 'sending' AND r.interaction_id = i.id
              AND i.status = 'sending' AND i.status_changed_at < %s
            """,  # noqa: S608 - table names and integers; values are parameters
            [now, now, run.pk, now - dt.timedelta(seconds=settings.CAMPAIGN_AMBIGUOUS_AFTER_SECONDS)],
        )
        result["unknown"] = cursor.rowcount
    failed = list(
        CampaignRecipient.objects.filter(
            run=run, state=RecipientState.SENDING, interaction__status__in=["failed", "blocked"]
        ).values_list("pk", "interaction__status", "interaction__error_code", "interaction__error_message")
    )
    n_channels = len(run.campaign.channel_ids or [])
    for pk, status, code, message in failed:
        with transaction.atomic():
            recipient = CampaignRecipient.objects.select_for_update().filter(pk=pk, state="sending").first()
            if recipient is None:
                continue
            if code == "campaign:cancelled":
                _finish(recipient, RecipientState.SKIPPED, now, skip_reason="cancelled", detail=message[:300])
            elif recipient.attempt + 1 < n_channels:
                # A hard failure or a consent block at send time: fall back to the next channel.
                _finish(
                    recipient,
                    RecipientState.PENDING,
                    now,
                    attempt=recipient.attempt + 1,
                    due_at=now,
                    detail=f"fell back after {status} {code}"[:300],
                )
            else:
                _finish(
                    recipient,
                    RecipientState.FAILED if status == "failed" else RecipientState.SKIPPED,
                    now,
                    skip_reason=(code or status)[:64],
                    detail=message[:300],
                )
    result["failed"] = len(failed)
    if run.state == RunState.RUNNING and run_autopause_check(run_id=run.pk, campaign_id=run.campaign_id):
        run.state = RunState.PAUSED
        result["auto_paused"] = 1
    if run.state == RunState.RUNNING:
        result["requeued"] = len(run_requeue_lost(run_id=run.pk, now=now))
    run_complete_if_done(run_id=run.pk, now=now)
    return result


def run_error_rate(*, run_id: int, window: int) -> tuple[int, int]:
    """(attempts, failed) among the run's last ``window`` attempts: rows that reached the provider
    (sent, failed, unknown), newest first. One query over the run's rows."""
    table = CampaignRecipient._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*), count(*) FILTER (WHERE state = 'failed') FROM (
                SELECT state FROM {table}
                WHERE run_id = %s AND state IN ('sent', 'failed', 'unknown')
                ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT %s
            ) AS recent
            """,  # noqa: S608 - table names; values are parameters
            [run_id, window],
        )
        attempts, failed = cursor.fetchone()
    return int(attempts), int(failed)


def run_autopause_check(*, run_id: int, campaign_id: int) -> bool:
    """Pause the campaign when its run's error rate passes the threshold: at least
    ``CAMPAIGN_AUTOPAUSE_FAILED_PERCENT`` % failed among the last ``CAMPAIGN_AUTOPAUSE_WINDOW`` attempts
    (judged once that many were made). The reason is stored on the campaign (``paused_reason``) and
    shown in the console; resume clears it. Source: CAMPAIGNS.md lesson 9 (auto-pause on error rate).
    Returns True when it paused."""
    window = settings.CAMPAIGN_AUTOPAUSE_WINDOW
    attempts, failed = run_error_rate(run_id=run_id, window=window)
    if attempts < window or failed * 100 < settings.CAMPAIGN_AUTOPAUSE_FAILED_PERCENT * attempts:
        return False
    reason = (
        f"Paused automatically: {failed} of the last {attempts} sends failed "
        f"(threshold {settings.CAMPAIGN_AUTOPAUSE_FAILED_PERCENT:g}%). Check the recipients' failure "
        "reasons and the channel, then resume."
    )
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None or campaign.state != CampaignState.RUNNING:
            return False
        campaign.state = CampaignState.PAUSED
        campaign.paused_reason = reason
        campaign.save(update_fields=["state", "paused_reason", "updated_at"])
        campaign_state_publish(campaign=campaign, previous=CampaignState.RUNNING, reason="error_rate")
        CampaignRun.objects.filter(campaign_id=campaign_id, state=RunState.RUNNING).update(
            state=RunState.PAUSED, lease_until=None
        )
    logger.warning("campaign %s: %s", campaign_id, reason)
    return True


def recipients_settle_late(*, now: dt.datetime, within: dt.timedelta = dt.timedelta(days=2)) -> int:
    """Rows left "unknown" whose message the provider has since reported sent (a status callback that
    came after the run completed) become "sent": the stats follow the provider. One statement over the
    partial index of unknown rows."""
    table = CampaignRecipient._meta.db_table
    itable = Interaction._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} r SET state = 'sent', updated_at = %s, detail = 'settled by the provider'
            FROM {itable} i
            WHERE r.state = 'unknown' AND r.updated_at > %s AND r.interaction_id = i.id
              AND i.status = ANY(%s)
            """,  # noqa: S608 - table names; values are parameters
            [now, now - within, list(SENT_STATUSES)],
        )
        return cursor.rowcount


def run_requeue_lost(*, run_id: int, now: dt.datetime, older_than: float | None = None) -> list[int]:
    """Queued messages of the run whose send task never ran (a killed worker takes its reserved task
    with it until the broker's visibility timeout) go to a new task. Safe to repeat: the outbound task
    claims the interaction (queued → sending) under a row lock, so a duplicate task skips it.

    The run's interaction ids are read first (an InitPlan over the recipients' run index), then the
    interactions by primary key: as a join, a plan built on stale statistics (rows written in the same
    transaction, never analysed) nested a scan of one table inside the other and ran for minutes."""
    cutoff = now - dt.timedelta(
        seconds=settings.CAMPAIGN_REQUEUE_AFTER_SECONDS if older_than is None else older_than
    )
    table = CampaignRecipient._meta.db_table
    itable = Interaction._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {itable} SET next_attempt_at = %s
            WHERE id IN (
                SELECT i.id FROM {itable} i
                WHERE i.id = ANY(ARRAY(
                    SELECT r.interaction_id FROM {table} r
                    WHERE r.run_id = %s AND r.state = 'sending' AND r.interaction_id IS NOT NULL
                  ))
                  AND i.status = 'queued' AND i.next_attempt_at <= %s
                LIMIT 1000
            ) RETURNING id
            """,  # noqa: S608 - table names and integers; values are parameters
            [now, run_id, cutoff],
        )
        ids = [row[0] for row in cursor.fetchall()]
        if ids:
            # Through the outbound port (the outbox relays it to channels_outbound's send task): the core
            # never names an adapter's task.
            workspace_id = (
                CampaignRun.objects.filter(pk=run_id).values_list("campaign__workspace_id", flat=True).get()
            )
            events.publish_on_commit(
                *(
                    events.DomainEvent(
                        name=events.OUTBOUND_QUEUED,
                        workspace_id=workspace_id,
                        interaction_id=pk,
                        data={"lane": events.LANE_BULK},
                    )
                    for pk in ids
                )
            )
    return ids


def run_complete_if_done(*, run_id: int, now: dt.datetime) -> bool:
    """Complete the run when no pending, held, claimed or sending row remains — decided in ONE
    transaction holding the run's lock, never before the last row is terminal. Then the campaign is
    completed when it has no further occurrence and no unfinished run."""
    with transaction.atomic():
        run = CampaignRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.completed_at is not None or run.state == RunState.PAUSED:
            return False
        if CampaignRecipient.objects.filter(run_id=run_id, state__in=ACTIVE_RECIPIENT_STATES).exists():
            return False
        if run.state == RunState.RUNNING:
            run.state = RunState.COMPLETED
        run.completed_at = now
        run.lease_until = None
        run.save(update_fields=["state", "completed_at", "lease_until"])
        campaign = Campaign.objects.select_for_update().get(pk=run.campaign_id)
        unfinished = CampaignRun.objects.filter(campaign=campaign, completed_at__isnull=True).exists()
        if campaign.state == CampaignState.RUNNING and campaign.next_run_at is None and not unfinished:
            campaign.state = CampaignState.COMPLETED
            campaign.completed_at = now
            campaign.save(update_fields=["state", "completed_at", "updated_at"])
            campaign_state_publish(campaign=campaign, previous=CampaignState.RUNNING)
    return True


def campaigns_tick(*, budget_seconds: float | None = None) -> dict[str, Any]:
    """One scheduler tick: start due runs, then for each unfinished run take its lease, process due
    recipients within the time budget, sync outcomes and complete it when done. Safe to run in
    parallel (leases, SKIP LOCKED, unique constraints)."""
    budget = settings.CAMPAIGN_TICK_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    now = timezone.now()
    started = campaigns_start_due(now=now)
    context = TickContext(now=now)
    processed = 0
    runs = list(
        CampaignRun.objects.filter(completed_at__isnull=True)
        .select_related("campaign")
        .order_by("lease_until", "pk")[:50]
    )
    deadline = time.monotonic() + budget
    for run in runs:
        if run.state == RunState.RUNNING:
            # No lease on the run: parallel ticks (beat fires every second, a tick may take its whole
            # budget; several worker threads) work the same run side by side, each on the rows it
            # claimed under SKIP LOCKED, so a run's throughput is not bounded by one tick's.
            processed += run_process(run_id=run.pk, deadline=deadline, context=context)
            run.refresh_from_db(fields=["state"])
        run_sync(run=run, now=timezone.now())
    settled = recipients_settle_late(now=timezone.now())
    return {"started": started, "processed": processed, "runs": len(runs), "settled": settled}
