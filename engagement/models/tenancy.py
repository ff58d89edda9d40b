"""Tenancy: a Workspace owns everything; people belong to it with a role; integrators hold API keys."""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class Workspace(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    default_region = models.CharField(
        max_length=2, default="US", help_text="ISO country used to read phone numbers written without +"
    )
    help_text = models.TextField(blank=True, default="")
    # IANA zone the console shows times in for members who chose none (Membership.timezone).
    timezone = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    AGENT = "agent", "Agent"
    MARKETER = "marketer", "Marketer"


class Membership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    # Voice: inbound calls whose caller presses 1 ring the phones of the members on duty (E.164).
    phone = models.CharField(max_length=20, blank=True, default="")
    on_duty = models.BooleanField(default=False)
    # IANA zone the console shows this member times in; "" means the workspace's.
    timezone = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="uniq_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} as {self.role}"


class CustomerReadMarker(models.Model):
    """How far one member has read one customer's thread: the newest inbound interaction they saw.

    The inbox shows a customer as unread for a member while the customer's newest inbound message is
    newer (a higher id) than the marker. Written by ``engagement.services.inbox.customer_thread_mark_read``.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    interaction_id = models.BigIntegerField(default=0)
    read_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "customer"], name="uniq_read_marker"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.customer_id} up to {self.interaction_id}"


class ApiKey(models.Model):
    """An integrator's key. Only a SHA-256 of the secret is kept; the secret is shown once."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # "<area>:read" / "<area>:write" (write implies read), areas in engagement.api.scopes.SCOPE_AREAS.
    scopes = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class IdempotencyRecord(models.Model):
    """The first response to a ``POST`` sent with an ``Idempotency-Key`` header, per workspace (Stripe's
    semantics: the same key and body gets this response again, a different body a 409; 24 hours).
    ``response_status`` is null while the first request is still running."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    response_content_type = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="uniq_idempotency_key_per_workspace")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.method} {self.path})"
