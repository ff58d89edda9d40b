"""Service levels, resolutions and satisfaction (issue 13): what the SLA clock, CSAT surveys and reports
read and write. Services: ``engagement/services/sla.py``, ``engagement/services/csat.py``; reports:
``engagement/reports/``."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from .conversations import Conversation, Interaction
from .tenancy import Workspace


class BusinessHours(models.Model):
    """The workspace's opening hours per weekday, in the workspace's zone (``Workspace.timezone``).

    ``weekly`` maps ISO weekday numbers as strings ("1" Monday … "7" Sunday) to lists of
    ``["HH:MM", "HH:MM"]`` intervals; a day that is missing is closed. No row: open all the time."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="business_hours")
    weekly = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"business hours of {self.workspace_id}"


class SlaMetric(models.TextChoices):
    FIRST_RESPONSE = "first_response", "First response"
    NEXT_RESPONSE = "next_response", "Next response"
    RESOLUTION = "resolution", "Resolution"


class SlaPolicy(models.Model):
    """Targets in minutes (null: no target) for a workspace's conversations, optionally only on some
    channel kinds. The first active policy (by ``position``, then id) that covers a conversation's
    channel applies (``engagement.services.sla.sla_policy_for``)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="sla_policies")
    name = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField(default=0)
    first_response_minutes = models.PositiveIntegerField(null=True, blank=True)
    next_response_minutes = models.PositiveIntegerField(null=True, blank=True)
    resolution_minutes = models.PositiveIntegerField(null=True, blank=True)
    business_hours_only = models.BooleanField(default=True)
    # Channel kinds ("sms", "email"…) the policy covers; empty: every channel.
    channel_kinds = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "SLA policies"
        indexes = [models.Index(fields=["workspace", "position", "id"], name="sla_policy_order_idx")]

    def __str__(self) -> str:
        return self.name


class SlaBreach(models.Model):
    """One missed target: a clock (``metric`` started at ``started_at``) that ran past ``due_at``
    unanswered. Unique per clock, so detection is idempotent and ``sla.breached`` is published once."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="sla_breaches")
    policy = models.ForeignKey(SlaPolicy, null=True, on_delete=models.SET_NULL, related_name="breaches")
    metric = models.CharField(max_length=20, choices=SlaMetric.choices)
    started_at = models.DateTimeField()
    due_at = models.DateTimeField()
    breached_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "metric", "started_at"], name="uniq_sla_breach")
        ]
        indexes = [models.Index(fields=["workspace", "breached_at"], name="sla_breach_ws_idx")]

    def __str__(self) -> str:
        return f"{self.metric} breach on {self.conversation_id}"


class ConversationResolution(models.Model):
    """A conversation was resolved (one row per resolve; a reopened conversation resolved again gets
    another). Resolution time for reports, and the anchor of the CSAT survey: at most one survey per
    row (``csat_interaction``; idempotency key ``csat:<id>``)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="resolutions")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey("engagement.Channel", on_delete=models.PROTECT, related_name="+")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField()
    csat_interaction = models.ForeignKey(
        Interaction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    csat_sent_at = models.DateTimeField(null=True, blank=True)
    csat_skipped = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "resolved_at"], name="resolution_ws_time_idx"),
            models.Index(
                fields=["customer", "-csat_sent_at"],
                condition=Q(csat_sent_at__isnull=False),
                name="resolution_csat_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"resolution {self.pk} of {self.conversation_id}"


class CsatSettings(models.Model):
    """Whether the workspace sends a satisfaction survey after each resolution (off by default), its
    question, and how long an SMS/webchat digit counts as the answer."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="csat_settings")
    enabled = models.BooleanField(default=False)
    question = models.CharField(max_length=300, blank=True, default="")
    reply_window_hours = models.PositiveIntegerField(default=72)

    def __str__(self) -> str:
        return f"CSAT settings of {self.workspace_id}"


class CsatSource(models.TextChoices):
    SMS = "sms", "SMS reply"
    EMAIL_LINK = "email_link", "Email link"
    WEBCHAT = "webchat", "Webchat reply"
    PAGE = "page", "Survey page"


class CsatResponse(models.Model):
    """The customer's answer (1-5) to the survey of one resolution; one per resolution, the latest
    answer wins."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    resolution = models.OneToOneField(ConversationResolution, on_delete=models.CASCADE, related_name="csat")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    score = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True, default="")
    source = models.CharField(max_length=16, choices=CsatSource.choices)
    interaction = models.ForeignKey(
        Interaction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    responded_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(score__gte=1, score__lte=5), name="csat_score_1_5"),
        ]
        indexes = [models.Index(fields=["workspace", "responded_at"], name="csat_ws_time_idx")]

    def __str__(self) -> str:
        return f"CSAT {self.score} for {self.resolution_id}"
