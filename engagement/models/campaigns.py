"""Campaigns: a message to a segment on one or more channels, scheduled, sent exactly once per person.

The rules (launch, claim, guards, completion) live in ``engagement/campaigns/``; the models only store.

* ``Campaign`` — what to send (content per channel, A/B variants, holdout), to whom (a segment), when
  (now / at a time / recurring RRULE in a zone / a wall-clock time in each recipient's zone).
* ``CampaignRun`` — one occurrence of the schedule; UNIQUE(campaign, occurrence), so two scheduler ticks
  can never start the same occurrence twice.
* ``CampaignRecipient`` — the audience snapshotted at launch, one row per (run, customer) under a unique
  constraint. The row, never a counter, drives progress, resume, stats and completion.
* ``CampaignSettings`` — a workspace's sending rules (quiet hours, frequency caps, approval threshold).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q

from .channels import Channel
from .conversations import Interaction
from .segments import Segment
from .tenancy import Workspace


class CampaignState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class ScheduleKind(models.TextChoices):
    NOW = "now", "Now"
    AT = "at", "At a time"
    RECURRING = "recurring", "Recurring (RRULE in a zone)"
    LOCAL_TIME = "local_time", "At a wall-clock time in each recipient's zone"


class LatePolicy(models.TextChoices):
    """Local-time schedules: what happens to recipients whose wall-clock time has already passed at launch."""

    SEND_NOW = "send_now", "Send at once"
    NEXT_DAY = "next_day", "Send at that time the next day"
    SKIP = "skip", "Skip them"


class Campaign(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    state = models.CharField(max_length=16, choices=CampaignState.choices, default=CampaignState.DRAFT)
    purpose = models.CharField(max_length=16, default="marketing")  # customers.consent.SendPurpose
    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, related_name="campaigns")
    # Ordered Channel ids; the first one a recipient has an address and consent for is used.
    channel_ids = models.JSONField(default=list)
    # Try the customer's preferred channel kind first when it is among the campaign's channels.
    prefer_customer_channel = models.BooleanField(default=True)
    # {"email": {"subject", "html", "text"}, "sms": {"body", "media_urls"}, "voice": {"message"},
    #  "webchat": {"message"}} — Jinja2 templates, rendered sandboxed per recipient.
    content = models.JSONField(default=dict, blank=True)
    # [{"key": "A", "weight": 50, "content": {...overrides of content...}}, ...] (at most 8); [] = one.
    variants = models.JSONField(default=list, blank=True)
    holdout_percent = models.PositiveSmallIntegerField(default=0)

    schedule_kind = models.CharField(max_length=16, choices=ScheduleKind.choices, default=ScheduleKind.NOW)
    send_at = models.DateTimeField(null=True, blank=True)  # AT
    rrule = models.TextField(blank=True, default="")  # RECURRING: RFC 5545 RRULE, DTSTART = send_at
    schedule_timezone = models.CharField(max_length=64, blank=True, default="UTC")
    local_date = models.DateField(null=True, blank=True)  # LOCAL_TIME
    local_time = models.TimeField(null=True, blank=True)  # LOCAL_TIME
    fallback_timezone = models.CharField(max_length=64, blank=True, default="UTC")
    late_policy = models.CharField(max_length=16, choices=LatePolicy.choices, default=LatePolicy.NEXT_DAY)
    # When the scheduler starts the next run (NULL: nothing more to start). Indexed: polled every tick.
    next_run_at = models.DateTimeField(null=True, blank=True)

    # Replies and opt-outs within this many hours of a send count for the campaign.
    attribution_hours = models.PositiveIntegerField(default=72)
    # "Converted": the recipient's custom event of this name (customers.CustomerEvent) within
    # goal_window_hours after the send. Empty: no goal.
    goal_event = models.CharField(max_length=200, blank=True, default="")
    goal_window_hours = models.PositiveIntegerField(default=72)
    # Why it is paused when the system paused it (error rate over the threshold); "" when a person did.
    paused_reason = models.CharField(max_length=300, blank=True, default="")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    launched_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="campaign_ws_idx"),
            models.Index(
                fields=["next_run_at"],
                condition=Q(next_run_at__isnull=False, state__in=["scheduled", "running"]),
                name="campaign_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RunState(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class CampaignRun(models.Model):
    """One occurrence of a campaign's schedule (a one-off campaign has exactly one)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="runs")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    occurrence = models.DateTimeField()
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.RUNNING)
    targeted = models.PositiveIntegerField(default=0)
    # A scheduler tick working this run holds it until then; another tick leaves it alone meanwhile.
    lease_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "occurrence"], name="uniq_campaign_occurrence"),
        ]
        indexes = [
            models.Index(fields=["state", "lease_until"], condition=Q(state="running"), name="run_active_idx")
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of campaign {self.campaign_id} at {self.occurrence:%Y-%m-%d %H:%M}"


class RecipientState(models.TextChoices):
    PENDING = "pending", "Pending"
    HELD = "held", "Held"  # until due_at, for hold_reason (quiet hours, pacing)
    CLAIMED = "claimed", "Claimed"  # by a worker until lease_until
    SENDING = "sending", "Sending"  # the outbound interaction is committed; waiting for its outcome
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"  # skip_reason says why
    UNKNOWN = "unknown", "Unknown"  # the worker died mid-call and the provider never told us


ACTIVE_RECIPIENT_STATES = ("pending", "held", "claimed", "sending")
TERMINAL_RECIPIENT_STATES = ("sent", "failed", "skipped", "unknown")


class CampaignRecipient(models.Model):
    run = models.ForeignKey(CampaignRun, on_delete=models.CASCADE, related_name="recipients")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=16, choices=RecipientState.choices, default=RecipientState.PENDING)
    variant = models.CharField(max_length=16, default="A")  # "holdout" for the control group
    # Not before then: the schedule's time (local-time campaigns: per recipient) or the end of a hold.
    due_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    hold_reason = models.CharField(max_length=64, blank=True, default="")
    skip_reason = models.CharField(max_length=64, blank=True, default="")
    detail = models.CharField(max_length=300, blank=True, default="")
    # Index into the candidate channels tried so far (fallback after a hard failure moves it on).
    attempt = models.PositiveSmallIntegerField(default=0)
    channel = models.ForeignKey(Channel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    interaction = models.ForeignKey(
        Interaction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "customer"], name="uniq_run_customer"),
        ]
        indexes = [
            # The claim query: due rows of a run, oldest first.
            models.Index(
                fields=["run", "due_at", "id"],
                condition=Q(state__in=["pending", "held", "claimed"]),
                name="recipient_due_idx",
            ),
            models.Index(fields=["run", "state"], name="recipient_run_state_idx"),
            models.Index(fields=["campaign", "variant", "state"], name="recipient_stats_idx"),
            # Late provider answers for rows left unknown (also in runs already completed).
            models.Index(fields=["updated_at"], condition=Q(state="unknown"), name="recipient_unknown_idx"),
        ]

    def __str__(self) -> str:
        return f"recipient {self.customer_id} of run {self.run_id} ({self.state})"


class CampaignSettings(models.Model):
    """A workspace's rules for automated sends. Without a row the defaults below apply."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="campaign_settings")
    quiet_hours_enabled = models.BooleanField(default=True)
    quiet_start = models.TimeField(default=dt.time(21, 0))
    quiet_end = models.TimeField(default=dt.time(8, 0))
    quiet_channels = models.JSONField(default=list, blank=True)  # [] = sms and voice
    default_timezone = models.CharField(max_length=64, default="UTC")
    # {"sms": {"count": 2, "days": 7}, ...}: marketing sends per customer per channel kind.
    frequency_caps = models.JSONField(default=dict, blank=True)
    # Campaigns to more recipients than this need an admin's approval (not the author's). NULL: never.
    approval_threshold = models.PositiveIntegerField(null=True, blank=True)
    # Marketing SMS end with "Reply STOP to opt out" (US carriers, CTIA).
    sms_opt_out_hint = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"campaign settings of {self.workspace_id}"
