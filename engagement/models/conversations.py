"""Conversations agents work, and the Interactions that make up every customer's timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, models
from django.db.models import Q
from django.utils import timezone

from .. import rows
from .channels import Channel
from .tenancy import Workspace


class ConversationStatus(models.TextChoices):
    OPEN = "open", "Open"
    PENDING = "pending", "Pending"
    # Out of the open views until ``snoozed_until`` (None: until the customer's next message).
    SNOOZED = "snoozed", "Snoozed"
    RESOLVED = "resolved", "Resolved"


_FIND_OPEN: list[str] = []


class ConversationQuerySet(models.QuerySet["Conversation"]):
    def find_or_open(self, *, customer: Any, channel: Any, at: datetime) -> tuple[Conversation, bool]:
        """The customer's newest unresolved conversation on ``channel`` (row locked, so concurrent
        messages for the same customer serialise on it), or a new open one. Used by the timeline and by
        merges (``customers`` re-homes interactions with it without importing the services layer)."""
        # Hand-written (engagement/rows.py): the queryset's statement building cost ~1 ms of CPU on
        # every inbound message; this is the statement it built.
        if not _FIND_OPEN:
            _FIND_OPEN.append(
                f"SELECT {rows.columns(Conversation, 'c')} FROM {Conversation._meta.db_table} c"  # noqa: S608 - our model's names
                " WHERE c.customer_id = %s AND c.channel_id = %s AND NOT (c.status = %s)"
                " ORDER BY c.last_activity_at DESC LIMIT 1 FOR UPDATE"
            )
        with connection.cursor() as cursor:
            cursor.execute(_FIND_OPEN[0], [customer.pk, channel.pk, ConversationStatus.RESOLVED])
            row = cursor.fetchone()
        if row is not None:
            return rows.model_from_row(Conversation, row), False
        created: Conversation = self.create(
            workspace_id=customer.workspace_id, customer=customer, channel=channel, last_activity_at=at
        )
        return created, True


class Conversation(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="conversations")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="conversations")
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="conversations")
    status = models.CharField(
        max_length=16, choices=ConversationStatus.choices, default=ConversationStatus.OPEN
    )
    subject = models.CharField(max_length=300, blank=True, default="")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    team = models.ForeignKey(
        "engagement.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    labels = models.ManyToManyField("engagement.Label", blank=True, related_name="conversations")
    snoozed_until = models.DateTimeField(null=True, blank=True)
    # When a person changed it (assignee, team, labels, status): the console's catch-up compares it.
    updated_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField()
    last_message_preview = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-last_activity_at"], name="conv_inbox_idx"),
            models.Index(fields=["customer", "channel", "status"], name="conv_customer_idx"),
            # Reports: conversations opened in a date range (engagement/reports/).
            models.Index(fields=["workspace", "created_at"], name="conv_ws_created_idx"),
            models.Index(fields=["workspace", "assignee", "status"], name="conv_assignee_idx"),
            models.Index(fields=["workspace", "updated_at"], name="conv_updated_idx"),
            models.Index(fields=["snoozed_until"], condition=Q(status="snoozed"), name="conv_snoozed_idx"),
        ]

    def __str__(self) -> str:
        return f"Conversation {self.pk}"


class InteractionKind(models.TextChoices):
    MESSAGE = "message", "Message"
    CALL = "call", "Call"
    NOTE = "note", "Note"


class CallOutcome(models.TextChoices):
    ANSWERED = "answered", "Answered"
    MISSED = "missed", "Missed"
    BUSY = "busy", "Busy"
    VOICEMAIL = "voicemail", "Voicemail"
    FAILED = "failed", "Failed"


class Direction(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    OUTBOUND = "outbound", "Outbound"


class InteractionStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    UNDELIVERED = "undelivered", "Undelivered"
    FAILED = "failed", "Failed"
    BLOCKED = "blocked", "Blocked"


class Interaction(models.Model):
    """One entry on a customer's timeline: a message, call or note, in or out, on any channel."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="interactions")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="interactions")
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="interactions"
    )
    channel = models.ForeignKey(Channel, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=InteractionKind.choices, default=InteractionKind.MESSAGE)
    direction = models.CharField(max_length=16, choices=Direction.choices)
    body = models.TextField(blank=True, default="")
    # The customer-side address used (their phone, their email) at the time of the interaction.
    customer_address = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=16, choices=InteractionStatus.choices)
    status_changed_at = models.DateTimeField()
    provider_message_id = models.CharField(max_length=100, blank=True, default="")
    # Email only: the RFC 5322 Message-ID (ours when outbound, the sender's when inbound), for threading.
    email_message_id = models.CharField(max_length=255, blank=True, default="")
    error_code = models.CharField(max_length=32, blank=True, default="")
    error_message = models.CharField(max_length=500, blank=True, default="")
    # Set by automated and API sends so a retry never creates a second message.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 - NULL means "no key" under the partial unique constraint
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    automation_rule = models.ForeignKey(
        "engagement.AutomationRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    send_attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # While ``sending``: until when the claiming worker owns the provider call. A worker that died
    # mid-send lets it expire; recovery then reconciles with the provider before anything is resent.
    lease_until = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # SMS/MMS: segments the text takes (GSM-7 160/153 a segment, UCS-2 70/67), as the provider counted.
    segments = models.PositiveSmallIntegerField(null=True, blank=True)
    # Calls: how it ended ("" while in progress), how long it lasted and which member answered it.
    call_outcome = models.CharField(max_length=16, choices=CallOutcome.choices, blank=True, default="")
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    # Not a model field: the table also has ``search_vector`` (tsvector, GENERATED ALWAYS AS
    # to_tsvector('simple', COALESCE(body, '')) STORED) with the GIN index ``interaction_search_gin``,
    # created by migration 0012 and read only by engagement/services/search.py's SQL. Kept out of the
    # model so that reading interactions never carries it.

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="uniq_interaction_provider_id",
            ),
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="uniq_interaction_idempotency",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "-created_at", "-id"], name="timeline_idx"),
            models.Index(fields=["conversation", "created_at"], name="conversation_thread_idx"),
            models.Index(
                fields=["workspace", "email_message_id"],
                condition=~Q(email_message_id=""),
                name="interaction_email_msgid_idx",
            ),
            models.Index(
                fields=["status", "next_attempt_at"],
                condition=Q(status__in=["queued", "sending"]),
                name="outbound_pending_idx",
            ),
            # Reports: volume by day/week, channel and direction as an index-only scan (engagement/reports/).
            models.Index(
                fields=["workspace", "created_at"],
                include=["channel", "direction", "kind", "conversation"],
                name="interaction_ws_created_idx",
            ),
            # Reports (bench/bench_reports.py): first response's first customer message per conversation,
            # and the first agent reply after it per customer, as index-only probes; agent and team load's
            # replies in a date range as an index-only scan.
            models.Index(
                fields=["conversation", "created_at"],
                condition=Q(direction="inbound"),
                name="interaction_conv_inbound_idx",
            ),
            models.Index(
                fields=["customer", "created_at"],
                condition=Q(direction="outbound", author__isnull=False),
                name="interaction_cust_reply_idx",
            ),
            models.Index(
                fields=["workspace", "created_at"],
                include=["author", "channel"],
                condition=Q(direction="outbound", author__isnull=False),
                name="interaction_ws_reply_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.kind} {self.pk} ({self.status})"
