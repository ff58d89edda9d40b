"""Outbound webhooks: the endpoints a workspace registers, one delivery per (endpoint, event), and the
log of every HTTP attempt. The logic is in ``engagement/webhooks/``."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from .tenancy import Workspace


class DisabledReason(models.TextChoices):
    NONE = "", "Enabled"
    MANUAL = "manual", "Disabled by a person"
    FAILING = "failing", "Disabled after sustained failure"


class WebhookEndpoint(models.Model):
    """Where a workspace wants events sent. ``secret`` (``whsec_`` + base64 of 32 random bytes, Standard
    Webhooks) signs every delivery; it must be kept in the clear to sign and is shown once.
    ``event_types`` empty means every public event type."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True, default="")
    secret = models.CharField(max_length=100)
    event_types = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(
        max_length=16, choices=DisabledReason.choices, blank=True, default=DisabledReason.NONE
    )
    disabled_detail = models.CharField(max_length=500, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Sustained failure: the first failed attempt since the last success, and how many deliveries in a row
    # ran out of attempts. Both reset on a success (or when the endpoint is enabled again).
    failing_since = models.DateTimeField(null=True, blank=True)
    consecutive_failed_deliveries = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "enabled"], name="webhook_endpoint_ws_enabled")]

    def __str__(self) -> str:
        return self.url


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event for one endpoint. ``body`` is the exact JSON sent (signed as is, the same on every attempt
    and replay); ``event_id`` is the ``webhook-id`` header. ``next_attempt_at`` is when the delivery
    worker may claim it (also the lease of an attempt in flight); ``customer_id`` orders a customer's
    events per endpoint (``engagement/webhooks/delivery.py``)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=64)
    customer_id = models.BigIntegerField(null=True, blank=True)
    body = models.TextField()
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Attempts since the last replay (or since the start): the retry schedule counts these.
    attempts_in_round = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    replays = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="uniq_webhook_delivery_event")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="webhook_delivery_due", condition=Q(state="pending")
            ),
            models.Index(
                fields=["endpoint", "customer_id", "id"],
                name="webhook_delivery_order",
                condition=Q(state="pending"),
            ),
            models.Index(fields=["endpoint", "-id"], name="webhook_delivery_log"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} → endpoint {self.endpoint_id} ({self.state})"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery: the delivery log."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField()
    error = models.CharField(max_length=500, blank=True, default="")
    response_body = models.TextField(blank=True, default="")  # the first bytes only
    replay = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="uniq_webhook_attempt_number")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}: {self.status_code or self.error}"
