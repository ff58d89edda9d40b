"""Campaigns: create, edit, approve, launch, pause, resume, cancel, preview, test-send, stats.

The API (``engagement/api/campaigns_api.py``) and the marketers' console are thin over these. Sending
itself is ``sending.py`` (driven by the scheduler tick); the guard pipeline is
``engagement/services/guards.py``.

State machine of a campaign::

    draft ──launch──▶ scheduled ──(its time; the tick starts a run)──▶ running ──(no run left)──▶ completed
      │ (schedule "now" / local time: a run is started at launch)       ▲  │
      │                                            resume ──────────────┘  ▼ pause
      └─────────────── cancel (from any state but completed) ─────▶ cancelled   paused

A recurring campaign stays running between runs while its RRULE has occurrences left.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from celery import current_app
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Value
from django.utils import timezone

from customers.consent import SendPurpose
from customers.models import ConsentEvent, Customer, CustomerEvent
from engagement.errors import Conflict, NotFound, Rejected, ValidationFailed
from engagement.models import (
    Campaign,
    CampaignRecipient,
    CampaignRun,
    CampaignState,
    Channel,
    Interaction,
    Membership,
    RecipientState,
    Role,
    RunState,
    Segment,
    Workspace,
)
from engagement.models.campaigns import LatePolicy, ScheduleKind
from engagement.segments.services import (
    AudienceCounts,
    segment_audience_counts,
    segment_count,
    segment_queryset,
)
from engagement.services.guards import campaign_settings_for
from engagement.services.messaging import SendRejected, message_send_to_address

from .content import (
    CHANNEL_FIELDS,
    ContentInvalid,
    RenderFailed,
    content_for_variant,
    content_lint,
    content_render,
)
from .schedule import rrule_next, rrule_validate, zone_validate
from .sending import campaign_run_start, campaign_state_publish, run_requeue_lost, variant_for

MAX_VARIANTS = 8
EDITABLE = (CampaignState.DRAFT,)
CONTENT_FIELDS = (
    "name",
    "description",
    "purpose",
    "segment",
    "channel_ids",
    "prefer_customer_channel",
    "content",
    "variants",
    "holdout_percent",
    "schedule_kind",
    "send_at",
    "rrule",
    "schedule_timezone",
    "local_date",
    "local_time",
    "fallback_timezone",
    "late_policy",
    "attribution_hours",
    "goal_event",
    "goal_window_hours",
)


class CampaignInvalid(ValidationFailed):
    code = "campaign_invalid"
    title = "Invalid campaign"


class CampaignStateConflict(Conflict):
    code = "campaign_state"
    title = "Not possible in the campaign's current state"


class ApprovalRequired(Conflict):
    code = "approval_required"
    title = "An admin must approve this campaign first"


class ApprovalRefused(Rejected):
    code = "approval_refused"
    title = "Not allowed to approve this campaign"


# ---------------------------------------------------------------- validation


def _validate(campaign: Campaign) -> None:
    """CampaignInvalid (400, with ``field``) for anything a campaign cannot be saved with."""
    workspace_id = campaign.workspace_id
    campaign.name = (campaign.name or "").strip()
    if not campaign.name or len(campaign.name) > 200:
        raise CampaignInvalid("a campaign needs a name of 1-200 characters", field="name")
    if campaign.purpose not in (SendPurpose.MARKETING, SendPurpose.TRANSACTIONAL):
        raise CampaignInvalid("purpose must be marketing or transactional", field="purpose")
    if (
        campaign.segment_id is None
        or not Segment.objects.filter(pk=campaign.segment_id, workspace_id=workspace_id).exists()
    ):
        raise CampaignInvalid("segment must be one of the workspace's segments", field="segment")
    ids = campaign.channel_ids
    if (
        not isinstance(ids, list)
        or not ids
        or not all(isinstance(i, int) for i in ids)
        or len(set(ids)) != len(ids)
    ):
        raise CampaignInvalid(
            "channel_ids must be a non-empty list of distinct channel ids", field="channel_ids"
        )
    found = set(Channel.objects.filter(workspace_id=workspace_id, pk__in=ids).values_list("pk", flat=True))
    if found != set(ids):
        raise CampaignInvalid(f"unknown channels {sorted(set(ids) - found)}", field="channel_ids")
    if not isinstance(campaign.content, dict) or set(campaign.content) - set(CHANNEL_FIELDS):
        raise CampaignInvalid(
            f"content is keyed by channel kind ({', '.join(CHANNEL_FIELDS)})", field="content"
        )
    variants = campaign.variants or []
    if not isinstance(variants, list) or len(variants) > MAX_VARIANTS:
        raise CampaignInvalid(f"at most {MAX_VARIANTS} variants", field="variants")
    keys = set()
    for i, v in enumerate(variants):
        key = str(v.get("key", "")) if isinstance(v, dict) else ""
        weight = v.get("weight") if isinstance(v, dict) else None
        if not key or len(key) > 16 or key == "holdout" or key in keys:
            raise CampaignInvalid(
                "each variant needs a distinct key of 1-16 characters", field=f"variants[{i}].key"
            )
        if not isinstance(weight, int) or weight < 1:
            raise CampaignInvalid("a variant's weight is a positive integer", field=f"variants[{i}].weight")
        if not isinstance(v.get("content") or {}, dict):
            raise CampaignInvalid(
                "a variant's content is keyed by channel kind", field=f"variants[{i}].content"
            )
        keys.add(key)
    if not 0 <= campaign.holdout_percent <= 50:
        raise CampaignInvalid("holdout_percent is 0-50", field="holdout_percent")
    if campaign.schedule_kind not in ScheduleKind.values:
        raise CampaignInvalid(
            f"schedule_kind is one of {', '.join(ScheduleKind.values)}", field="schedule_kind"
        )
    if campaign.late_policy not in LatePolicy.values:
        raise CampaignInvalid(f"late_policy is one of {', '.join(LatePolicy.values)}", field="late_policy")
    zone_validate(campaign.schedule_timezone or "UTC", field="schedule_timezone")
    zone_validate(campaign.fallback_timezone or "UTC", field="fallback_timezone")
    campaign.goal_event = (campaign.goal_event or "").strip()
    if len(campaign.goal_event) > 200:
        raise CampaignInvalid(
            "goal_event is a custom event name of at most 200 characters", field="goal_event"
        )
    if not 1 <= int(campaign.goal_window_hours or 0) <= 24 * 90:
        raise CampaignInvalid("goal_window_hours is 1-2160", field="goal_window_hours")
    kind = campaign.schedule_kind
    if kind in (ScheduleKind.AT, ScheduleKind.RECURRING) and campaign.send_at is None:
        raise CampaignInvalid("send_at is required for this schedule", field="send_at")
    if kind == ScheduleKind.RECURRING:
        if not campaign.rrule.strip():
            raise CampaignInvalid("rrule is required for a recurring schedule", field="rrule")
        assert campaign.send_at is not None
        rrule_validate(campaign.rrule, start=campaign.send_at, zone=campaign.schedule_timezone)
    if kind == ScheduleKind.LOCAL_TIME and (campaign.local_date is None or campaign.local_time is None):
        raise CampaignInvalid(
            "local_date and local_time are required for a local-time schedule", field="local_time"
        )


def campaign_channel_kinds(*, campaign: Campaign) -> list[str]:
    kinds = Channel.objects.filter(pk__in=campaign.channel_ids).values_list("kind", flat=True)
    return sorted(set(kinds))


def campaign_lint(*, campaign: Campaign) -> dict[str, list[str]]:
    """Every content problem, per variant: ``{"sms.body": [...], "B:email.subject": [...]}``. Unknown
    variables, undefined attributes, syntax errors and missing required fields; empty = launchable."""
    kinds = campaign_channel_kinds(campaign=campaign)
    problems = content_lint(workspace_id=campaign.workspace_id, content=campaign.content, channel_kinds=kinds)
    for v in campaign.variants or []:
        merged = content_for_variant(content=campaign.content, variants=campaign.variants, variant=v["key"])
        for field, found in content_lint(
            workspace_id=campaign.workspace_id, content=merged, channel_kinds=kinds
        ).items():
            if problems.get(field) != found:
                problems[f"{v['key']}:{field}"] = found
    return problems


# ---------------------------------------------------------------- writing


def campaign_create(
    *, workspace: Workspace, actor: AbstractBaseUser | None = None, **fields: Any
) -> Campaign:
    """A new draft campaign. ``fields`` are :data:`CONTENT_FIELDS` (``segment`` a Segment or its id).

    Errors: CampaignInvalid (400) naming the field. Content is linted at launch, not here, so a draft
    can be saved half-written."""
    unknown = set(fields) - set(CONTENT_FIELDS)
    if unknown:
        raise CampaignInvalid(f"unknown fields {sorted(unknown)}")
    segment = fields.pop("segment", None)
    campaign = Campaign(workspace=workspace, created_by=actor, **fields)  # type: ignore[misc]
    campaign.segment_id = segment.pk if isinstance(segment, Segment) else segment
    _validate(campaign)
    campaign.save()
    return campaign


def campaign_update(*, campaign: Campaign, actor: AbstractBaseUser | None = None, **fields: Any) -> Campaign:
    """Change a draft (or, for content only, a paused campaign: unsent rows get the new content;
    rows already sent keep what they got). A change clears an earlier approval."""
    unknown = set(fields) - set(CONTENT_FIELDS)
    if unknown:
        raise CampaignInvalid(f"unknown fields {sorted(unknown)}")
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.state == CampaignState.PAUSED:
            if set(fields) - {"content", "variants", "name", "description"}:
                raise CampaignStateConflict("a paused campaign's content can change, nothing else")
            if "variants" in fields and [v.get("key") for v in fields["variants"]] != [
                v.get("key") for v in campaign.variants
            ]:
                raise CampaignStateConflict("variants cannot be added or removed once sending started")
        elif campaign.state not in EDITABLE:
            raise CampaignStateConflict(f"a {campaign.state} campaign cannot be changed")
        if "segment" in fields:
            segment = fields.pop("segment")
            campaign.segment_id = segment.pk if isinstance(segment, Segment) else segment
        for key, value in fields.items():
            setattr(campaign, key, value)
        _validate(campaign)
        if campaign.state == CampaignState.PAUSED:
            problems = campaign_lint(campaign=campaign)
            if problems:
                raise ContentInvalid(
                    "the content has problems", field="content", extra={"problems": problems}
                )
        campaign.approved_by, campaign.approved_at = None, None
        campaign.save()
    return campaign


def campaign_delete(*, campaign: Campaign) -> None:
    """Delete a draft; a campaign that was launched is kept for its stats (cancel it instead)."""
    if campaign.state != CampaignState.DRAFT:
        raise CampaignStateConflict("only a draft can be deleted; cancel a launched campaign")
    campaign.delete()


def _role(*, workspace_id: int, actor: AbstractBaseUser | None) -> str | None:
    if actor is None:
        return None
    return (
        Membership.objects.filter(workspace_id=workspace_id, user_id=actor.pk)
        .values_list("role", flat=True)
        .first()
    )


def campaign_approval_needed(*, campaign: Campaign) -> tuple[bool, int]:
    """(needed, audience): the workspace's threshold against the segment's live count."""
    threshold = campaign_settings_for(workspace_id=campaign.workspace_id).approval_threshold
    if threshold is None:
        return False, -1
    count = segment_count(segment=campaign.segment)
    return count > threshold, count


def campaign_approve(*, campaign: Campaign, actor: AbstractBaseUser) -> Campaign:
    """An admin approves a draft. The author cannot approve their own campaign (four eyes).

    Errors: ApprovalRefused (422) for a non-admin or the author; CampaignStateConflict (409) unless draft."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.state != CampaignState.DRAFT:
            raise CampaignStateConflict("only a draft is approved")
        if _role(workspace_id=campaign.workspace_id, actor=actor) != Role.ADMIN:
            raise ApprovalRefused("only a workspace admin approves campaigns")
        if campaign.created_by_id is not None and campaign.created_by_id == actor.pk:
            raise ApprovalRefused("the author cannot approve their own campaign")
        campaign.approved_by, campaign.approved_at = actor, timezone.now()  # type: ignore[assignment]
        campaign.save(update_fields=["approved_by", "approved_at", "updated_at"])
    return campaign


def campaign_launch(
    *, campaign: Campaign, actor: AbstractBaseUser | None = None, now: dt.datetime | None = None
) -> Campaign:
    """Launch a draft: lint the content (ContentInvalid 400 with ``extra.problems`` on any unresolved
    variable), check approval (ApprovalRequired 409 when the audience exceeds the workspace's threshold
    and no admin other than the author approved), then schedule it:

    * ``now`` / ``local_time``: the run starts in this transaction — the audience is snapshotted into
      recipient rows (one INSERT … SELECT) and the scheduler sends from the next tick; local-time rows
      are due at the wall-clock time in each customer's zone (fallback zone when unknown; zones already
      past follow ``late_policy``: next day by default, or at once, or skipped);
    * ``at``: scheduled; the tick starts the run at ``send_at``;
    * ``recurring``: scheduled; one run per RRULE occurrence (wall times in ``schedule_timezone``).
    """
    now = now or timezone.now()
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update().select_related("segment", "workspace").get(pk=campaign.pk)
        )
        if campaign.state != CampaignState.DRAFT:
            raise CampaignStateConflict(f"a {campaign.state} campaign cannot be launched")
        _validate(campaign)
        problems = campaign_lint(campaign=campaign)
        if problems:
            raise ContentInvalid(
                "the content has problems: "
                + "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(problems.items())),
                field="content",
                extra={"problems": problems},
            )
        needed, audience = campaign_approval_needed(campaign=campaign)
        if needed and campaign.approved_at is None:
            raise ApprovalRequired(
                f"{audience} recipients is above the workspace's approval threshold; an admin other than "
                "the author must approve it",
                extra={"audience": audience},
            )
        campaign.launched_by, campaign.launched_at = actor, now  # type: ignore[assignment]
        kind = campaign.schedule_kind
        if kind in (ScheduleKind.NOW, ScheduleKind.LOCAL_TIME):
            campaign.state = CampaignState.RUNNING
            campaign.next_run_at = None
            campaign.save()
            campaign_state_publish(campaign=campaign, previous=CampaignState.DRAFT)
            campaign_run_start(campaign=campaign, occurrence=now, now=now)
        else:
            assert campaign.send_at is not None
            first = campaign.send_at
            if kind == ScheduleKind.RECURRING:
                found = rrule_next(
                    rule=campaign.rrule,
                    start=campaign.send_at,
                    zone=campaign.schedule_timezone,
                    after=max(now, campaign.send_at) - dt.timedelta(microseconds=1),
                )
                if found is None:
                    raise CampaignInvalid("the RRULE has no occurrence after now", field="rrule")
                first = found
            campaign.state = CampaignState.SCHEDULED
            campaign.next_run_at = first
            campaign.save()
            campaign_state_publish(campaign=campaign, previous=CampaignState.DRAFT)
    return campaign


def campaign_pause(*, campaign: Campaign) -> Campaign:
    """Pause: no new recipient is claimed (the claim loop re-reads the run's state before each batch)
    and queued messages wait at the outbox (``guards.send_release_check``), so provider calls stop
    within a batch — well under 2 s. Rows being processed at that moment finish."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.state not in (CampaignState.SCHEDULED, CampaignState.RUNNING):
            raise CampaignStateConflict(f"a {campaign.state} campaign cannot be paused")
        previous = campaign.state
        campaign.state = CampaignState.PAUSED
        campaign.paused_reason = ""
        campaign.save(update_fields=["state", "paused_reason", "updated_at"])
        campaign_state_publish(campaign=campaign, previous=previous, reason="manual")
        CampaignRun.objects.filter(campaign=campaign, state=RunState.RUNNING).update(
            state=RunState.PAUSED, lease_until=None
        )
    return campaign


def campaign_resume(*, campaign: Campaign) -> Campaign:
    """Resume a paused campaign: its runs continue with the rows not yet sent (pending, held, claimed by
    a dead worker) and the messages that waited at the outbox are handed back to the send task. Rows
    already sent are terminal and never sent again."""
    now = timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.state != CampaignState.PAUSED:
            raise CampaignStateConflict(f"a {campaign.state} campaign cannot be resumed")
        runs = list(
            CampaignRun.objects.filter(campaign=campaign, state=RunState.PAUSED).values_list("pk", flat=True)
        )
        CampaignRun.objects.filter(pk__in=runs).update(state=RunState.RUNNING, lease_until=None)
        has_runs = CampaignRun.objects.filter(campaign=campaign).exists()
        campaign.state = CampaignState.RUNNING if has_runs else CampaignState.SCHEDULED
        campaign.paused_reason = ""
        campaign.save(update_fields=["state", "paused_reason", "updated_at"])
        campaign_state_publish(campaign=campaign, previous=CampaignState.PAUSED, reason="resumed")
        for run_id in runs:
            run_requeue_lost(run_id=run_id, now=now, older_than=0)
        transaction.on_commit(lambda: current_app.send_task("engagement.tasks.campaigns_tick"))
    return campaign


def campaign_cancel(*, campaign: Campaign) -> Campaign:
    """Cancel for good: no further run starts, unsent rows are skipped ("cancelled") and queued messages
    are never handed to a provider (the outbox's release check blocks them)."""
    now = timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.state in (CampaignState.COMPLETED, CampaignState.CANCELLED):
            raise CampaignStateConflict(f"a {campaign.state} campaign cannot be cancelled")
        previous = campaign.state
        campaign.state = CampaignState.CANCELLED
        campaign.next_run_at = None
        campaign.save(update_fields=["state", "next_run_at", "updated_at"])
        campaign_state_publish(campaign=campaign, previous=previous)
        runs = CampaignRun.objects.filter(campaign=campaign, state__in=[RunState.RUNNING, RunState.PAUSED])
        run_ids = list(runs.values_list("pk", flat=True))
        runs.update(state=RunState.CANCELLED, lease_until=None)
        CampaignRecipient.objects.filter(
            run_id__in=run_ids,
            state__in=[RecipientState.PENDING, RecipientState.HELD, RecipientState.CLAIMED],
        ).update(
            state=RecipientState.SKIPPED,
            skip_reason="cancelled",
            lease_until=None,
            finished_at=now,
            updated_at=now,
        )
        for run_id in run_ids:
            run_requeue_lost(run_id=run_id, now=now, older_than=0)
    return campaign


# ---------------------------------------------------------------- preview and test send


def campaign_preview(*, campaign: Campaign, customer: Customer, variant: str | None = None) -> dict[str, Any]:
    """What ``customer`` would get: ``{"variant", "channels": {kind: {"subject", "body", "html",
    "media_urls"} or {"error"}}}`` for every channel kind of the campaign. ``variant`` forces one;
    otherwise the customer's own (the deterministic hash)."""
    if customer.workspace_id != campaign.workspace_id:
        raise NotFound("no such customer in this workspace")
    chosen = variant or variant_for(campaign=campaign, customer_id=customer.pk)
    # The holdout gets nothing; preview shows it the first variant.
    rendered_for = (campaign.variants or [{"key": "A"}])[0]["key"] if chosen == "holdout" else chosen
    content = content_for_variant(content=campaign.content, variants=campaign.variants, variant=rendered_for)
    rules = campaign_settings_for(workspace_id=campaign.workspace_id)
    out: dict[str, Any] = {}
    for kind in campaign_channel_kinds(campaign=campaign):
        try:
            out[kind] = asdict(
                content_render(
                    content=content,
                    kind=kind,
                    customer=customer,
                    purpose=campaign.purpose,
                    sms_opt_out_hint=rules.sms_opt_out_hint,
                )
            )
        except RenderFailed as exc:
            out[kind] = {"error": str(exc)}
    return {"variant": chosen, "channels": out}


def campaign_test_send(
    *,
    campaign: Campaign,
    addresses: list[str],
    as_customer: Customer | None = None,
    variant: str | None = None,
    actor: AbstractBaseUser | None = None,
) -> list[Interaction]:
    """Send the campaign to ``addresses`` (emails go to its email channel, phone numbers to its SMS, else
    voice, channel) through the real path (``message_send_to_address`` → outbox → provider), rendered as
    ``as_customer`` (default: no profile values, so fallbacks show). Marked ``metadata.test = true`` and
    sent as transactional (the tester has no marketing opt-in); never a recipient row, so never in
    the stats. Errors: CampaignInvalid for an address no channel of the campaign can reach, ContentInvalid
    when the content does not render."""
    if not addresses or len(addresses) > 10:
        raise CampaignInvalid("give 1-10 addresses", field="addresses")
    channels = list(Channel.objects.filter(workspace_id=campaign.workspace_id, pk__in=campaign.channel_ids))
    rules = campaign_settings_for(workspace_id=campaign.workspace_id)
    profile = as_customer or Customer(workspace_id=campaign.workspace_id)
    chosen = variant or (campaign.variants or [{"key": "A"}])[0]["key"]
    content = content_for_variant(content=campaign.content, variants=campaign.variants, variant=chosen)
    sent: list[Interaction] = []
    with transaction.atomic():
        for address in addresses:
            address = address.strip()
            kinds = ("email",) if "@" in address else ("sms", "voice")
            channel = next((c for k in kinds for c in channels if c.kind == k), None)
            if channel is None:
                raise CampaignInvalid(f"no channel of this campaign sends to {address!r}", field="addresses")
            try:
                rendered = content_render(
                    content=content,
                    kind=channel.kind,
                    customer=profile,
                    purpose=campaign.purpose,
                    sms_opt_out_hint=rules.sms_opt_out_hint,
                )
            except RenderFailed as exc:
                raise ContentInvalid(f"{channel.kind}: {exc}", field="content") from exc
            metadata: dict[str, Any] = {
                "test": True,
                "campaign_id": campaign.pk,
                "campaign_name": campaign.name,
                "variant": chosen,
            }
            if channel.kind == "email":
                metadata["email"] = {"subject": f"[Test] {rendered.subject}", "html": rendered.html}
            try:
                interaction, _ = message_send_to_address(
                    workspace=campaign.workspace,
                    channel=channel,
                    to_address=address,
                    body=rendered.body,
                    purpose=SendPurpose.TRANSACTIONAL,
                    media_urls=rendered.media_urls,
                    metadata=metadata,
                    author=actor,
                )
            except SendRejected as exc:
                raise CampaignInvalid(str(exc), field="addresses") from exc
            sent.append(interaction)
    return sent


# ---------------------------------------------------------------- reading: recipients and stats


def campaign_recipients(
    *, campaign: Campaign, run: CampaignRun | None = None, state: str = "", variant: str = ""
) -> QuerySet[CampaignRecipient]:
    qs = CampaignRecipient.objects.filter(campaign=campaign).select_related(
        "customer", "channel", "interaction"
    )
    if run is not None:
        qs = qs.filter(run=run)
    if state:
        qs = qs.filter(state=state)
    if variant:
        qs = qs.filter(variant=variant)
    return qs


STAT_KEYS = (
    "targeted",
    "holdout",
    "pending",
    "held",
    "sending",
    "sent",
    "delivered",
    "failed",
    "skipped",
    "unknown",
    "opened",
    "clicked",
    "replied",
    "unsubscribed",
    "converted",
)


def campaign_stats(*, campaign: Campaign, run: CampaignRun | None = None) -> dict[str, Any]:
    """Counts from the recipient rows (and their interactions), so they reconcile exactly:
    ``targeted = holdout + pending + held + sending + sent + failed + skipped + unknown`` (holdout rows
    are skipped rows with reason "holdout", counted apart; "pending" includes claimed). ``delivered``,
    ``opened`` (SendGrid opens), ``clicked`` are among ``sent``; ``replied`` = an inbound message from the
    recipient on any channel within ``attribution_hours`` after the send; ``unsubscribed`` = an opt-out
    in the consent ledger in that window; ``converted`` = a custom event named ``goal_event`` from the
    recipient within ``goal_window_hours`` after the send (0 without a goal). Returns ``{"total": {...},
    "variants": {key: {...}}, "skipped_by_reason": {reason: n}, "held_by_reason": {...},
    "runs": [{"id", "state", ...}], "paused_reason", "goal_event"}``. Test sends have no recipient row
    and never count."""
    rows = campaign_recipients(campaign=campaign, run=run)
    window = dt.timedelta(hours=campaign.attribution_hours)
    replied = Interaction.objects.filter(
        customer_id=OuterRef("interaction__customer_id"),
        direction="inbound",
        created_at__gt=OuterRef("sent_at"),
        created_at__lte=OuterRef("sent_at") + Value(window),
    )
    unsubscribed = ConsentEvent.objects.filter(
        customer_id=OuterRef("interaction__customer_id"),
        status="opted_out",
        occurred_at__gt=OuterRef("sent_at"),
        occurred_at__lte=OuterRef("sent_at") + Value(window),
    )
    goal_window = dt.timedelta(hours=campaign.goal_window_hours)
    converted = CustomerEvent.objects.filter(
        customer_id=OuterRef("interaction__customer_id"),
        name=campaign.goal_event,
        occurred_at__gt=OuterRef("sent_at"),
        occurred_at__lte=OuterRef("sent_at") + Value(goal_window),
    )
    sent = Q(state=RecipientState.SENT)
    aggregates = {
        "targeted": Count("pk"),
        "holdout": Count("pk", filter=Q(state="skipped", skip_reason="holdout")),
        "pending": Count("pk", filter=Q(state__in=["pending", "claimed"])),
        "held": Count("pk", filter=Q(state="held")),
        "sending": Count("pk", filter=Q(state="sending")),
        "sent": Count("pk", filter=sent),
        "delivered": Count("pk", filter=sent & Q(interaction__status__in=["delivered", "read"])),
        "failed": Count("pk", filter=Q(state="failed")),
        "skipped": Count("pk", filter=Q(state="skipped") & ~Q(skip_reason="holdout")),
        "unknown": Count("pk", filter=Q(state="unknown")),
        "opened": Count("pk", filter=sent & Q(interaction__metadata__engagement__opens__gt=0)),
        "clicked": Count("pk", filter=sent & Q(interaction__metadata__engagement__clicks__gt=0)),
        "replied": Count("pk", filter=sent & Q(Exists(replied))),
        "unsubscribed": Count("pk", filter=sent & Q(Exists(unsubscribed))),
        "converted": Count("pk", filter=sent & Q(Exists(converted))),  # no goal: no event is named ""
    }
    grouped: list[dict[str, Any]] = list(rows.values("variant").annotate(**aggregates))  # type: ignore[arg-type]
    per_variant = {r["variant"]: {k: r[k] for k in STAT_KEYS} for r in grouped}
    total = {k: sum(v[k] for v in per_variant.values()) for k in STAT_KEYS}
    skipped = {
        r["skip_reason"]: r["n"]
        for r in rows.filter(state__in=["skipped", "failed"])
        .exclude(skip_reason="holdout")
        .values("skip_reason")
        .annotate(n=Count("pk"))
        .order_by()
    }
    held = {
        r["hold_reason"]: r["n"]
        for r in rows.filter(state="held").values("hold_reason").annotate(n=Count("pk")).order_by()
    }
    runs = CampaignRun.objects.filter(campaign=campaign).order_by("occurrence")
    if run is not None:
        runs = runs.filter(pk=run.pk)
    by_run: dict[int, dict[str, Any]] = {
        r["run_id"]: dict(r)
        for r in rows.values("run_id").annotate(
            targeted=Count("pk"),
            sent=Count("pk", filter=sent),
            done=Count("pk", filter=Q(finished_at__isnull=False)),
        )
    }
    return {
        "campaign_id": campaign.pk,
        "state": campaign.state,
        "paused_reason": campaign.paused_reason,
        "goal_event": campaign.goal_event,
        "total": total,
        "variants": per_variant,
        "skipped_by_reason": skipped,
        "held_by_reason": held,
        "runs": [
            {
                "id": r.pk,
                "state": r.state,
                "occurrence": r.occurrence,
                "completed_at": r.completed_at,
                "targeted": by_run.get(r.pk, {}).get("targeted", 0),
                "sent": by_run.get(r.pk, {}).get("sent", 0),
                "finished": by_run.get(r.pk, {}).get("done", 0),
            }
            for r in runs
        ],
    }


def campaigns_progress(*, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Progress of several campaigns in ONE grouped query over their recipient rows:
    ``{campaign_id: {"targeted", "finished", "sent"}}`` (``finished`` = terminal rows, holdout included).
    Campaigns without rows are absent. For the console's list."""
    out: dict[int, dict[str, int]] = {}
    rows = (
        CampaignRecipient.objects.filter(campaign_id__in=campaign_ids)
        .values("campaign_id")
        .annotate(
            targeted=Count("pk"),
            finished=Count("pk", filter=Q(state__in=["sent", "failed", "skipped", "unknown"])),
            sent=Count("pk", filter=Q(state=RecipientState.SENT)),
        )
        .order_by()
    )
    for row in rows:
        out[row["campaign_id"]] = {k: row[k] for k in ("targeted", "finished", "sent")}
    return out


def campaign_audience(*, campaign: Campaign, purpose: str | None = None) -> dict[str, Any]:
    """The campaign's segment now: ``{"count", "purpose", "reachable": {kind: n}, "approval_threshold",
    "approval_needed"}`` in one counting query (``segment_audience_counts``); approval is needed when
    the workspace's ``CampaignSettings.approval_threshold`` is set and the count is above it."""
    counts: AudienceCounts = segment_audience_counts(
        workspace=campaign.workspace,
        queryset=segment_queryset(segment=campaign.segment),
        purpose=purpose or campaign.purpose,
    )
    threshold = campaign_settings_for(workspace_id=campaign.workspace_id).approval_threshold
    return {
        "count": counts.count,
        "purpose": counts.purpose,
        "reachable": counts.reachable,
        "approval_threshold": threshold,
        "approval_needed": threshold is not None and counts.count > threshold,
    }


def campaign_preview_customers(*, campaign: Campaign, limit: int = 25) -> list[Customer]:
    """A few members of the campaign's segment to preview as (one query, newest first)."""
    return list(segment_queryset(segment=campaign.segment).only("id", "display_name").order_by("-id")[:limit])


CSV_COLUMNS = (
    "run_id",
    "customer_id",
    "customer_name",
    "state",
    "variant",
    "channel",
    "address",
    "skip_reason",
    "hold_reason",
    "detail",
    "due_at",
    "sent_at",
    "message_status",
    "interaction_id",
)


def campaign_recipients_csv(*, campaign: Campaign, run: CampaignRun | None = None) -> Iterator[str]:
    """The recipient rows as CSV lines (header first), streamed in id order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: list[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(list(CSV_COLUMNS))
    rows = campaign_recipients(campaign=campaign, run=run).order_by("pk")
    for r in rows.iterator(chunk_size=2000):
        yield line(
            [
                r.run_id,
                r.customer_id,
                r.customer.display_name,
                r.state,
                r.variant,
                r.channel.kind if r.channel else "",
                r.interaction.customer_address if r.interaction else "",
                r.skip_reason,
                r.hold_reason,
                r.detail,
                r.due_at.isoformat(),
                r.sent_at.isoformat() if r.sent_at else "",
                r.interaction.status if r.interaction else "",
                r.interaction_id or "",
            ]
        )
