"""The single customer view: a Customer and every Identity (phone, email, visitor id, external id)."""

from __future__ import annotations

from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q


class PreferredChannel(models.TextChoices):
    NONE = "", "No preference"
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"
    VOICE = "voice", "Voice"
    WEBCHAT = "webchat", "Webchat"


class Customer(models.Model):
    """A person. After a merge the merged-away row stays as a tombstone pointing at the survivor
    (``merged_into``) so its id still answers and the merge can be undone; it owns nothing meanwhile."""

    # No index of its own: customer_ws_idx (workspace, -created_at) serves every lookup by workspace,
    # and each index is one more write per imported or first-contact customer.
    workspace = models.ForeignKey(
        "engagement.Workspace", on_delete=models.CASCADE, related_name="customers", db_index=False
    )
    display_name = models.CharField(max_length=200, blank=True, default="")
    # Values of the workspace's AttributeDefinitions, keyed by definition key, stored in JSON form
    # (dates as ISO strings). Written only through customers.profile.customer_attributes_set.
    attributes = models.JSONField(default=dict, blank=True)
    # A list of tag strings (JSON so ``tags__contains=[tag]`` filters without contrib.postgres).
    tags = models.JSONField(default=list, blank=True)
    # IANA zone; empty means "infer from the phone number" (customers.profile.customer_timezone).
    timezone = models.CharField(max_length=64, blank=True, default="")
    preferred_channel = models.CharField(
        max_length=16, choices=PreferredChannel.choices, blank=True, default=""
    )
    # Indexed by the partial customer_merged_idx only (an equality or IN on it implies NOT NULL, so
    # PostgreSQL uses it): almost every row is NULL here.
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="merged_customers",
        db_index=False,
    )
    merged_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="customer_ws_idx"),
            models.Index(
                fields=["merged_into"], condition=Q(merged_into__isnull=False), name="customer_merged_idx"
            ),
            # Segments filter on tags and attribute values with @> (engagement/segments/compiler.py).
            GinIndex(fields=["tags"], opclasses=["jsonb_path_ops"], name="customer_tags_gin"),
            GinIndex(fields=["attributes"], opclasses=["jsonb_path_ops"], name="customer_attributes_gin"),
            # The search box: names by substring and trigram word similarity (engagement/services/search.py).
            GinIndex(fields=["display_name"], opclasses=["gin_trgm_ops"], name="customer_name_trgm"),
        ]

    def __str__(self) -> str:
        return self.display_name or f"Customer {self.pk}"


class IdentityKind(models.TextChoices):
    PHONE = "phone", "Phone"
    EMAIL = "email", "Email"
    WEBCHAT = "webchat", "Webchat visitor"
    EXTERNAL = "external", "External id"
    # Senders carriers deliver that are not E.164 numbers (customers/identifiers.py). Each kind is its
    # own namespace: short code 68849 and phone +68849… are never the same identity.
    SHORT_CODE = "short_code", "SMS short code"
    SENDER_ID = "sender_id", "Alphanumeric sender ID"
    SIP = "sip", "SIP address"
    VOICE_CLIENT = "voice_client", "Voice SDK client"
    # A call whose number was withheld: one identity (the call id) per call, so callers never merge.
    UNKNOWN_CALLER = "unknown_caller", "Withheld caller"


class Identity(models.Model):
    """A normalized identifier, unique per workspace, that points at exactly one customer."""

    # Neither foreign key has an index of its own: the unique constraint (workspace, kind, value) and
    # identity_customer_idx (customer, kind) lead with them.
    workspace = models.ForeignKey(
        "engagement.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="identities", db_index=False
    )
    kind = models.CharField(max_length=16, choices=IdentityKind.choices)
    value = models.CharField(max_length=320)
    verified = models.BooleanField(default=False)
    first_channel = models.CharField(max_length=16, blank=True, default="")
    first_seen_at = models.DateTimeField()
    last_channel = models.CharField(max_length=16, blank=True, default="")
    last_seen_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind", "value"], name="uniq_identity_per_workspace"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "kind"], name="identity_customer_idx"),
            # The search box: any identity by substring and trigram word similarity.
            GinIndex(fields=["value"], opclasses=["gin_trgm_ops"], name="identity_value_trgm"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"
