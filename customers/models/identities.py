"""The single customer view: a Customer and every Identity (phone, email, visitor id, external id)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Customer(models.Model):
    workspace = models.ForeignKey("engagement.Workspace", on_delete=models.CASCADE, related_name="customers")
    display_name = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "-created_at"], name="customer_ws_idx")]

    def __str__(self) -> str:
        return self.display_name or f"Customer {self.pk}"


class IdentityKind(models.TextChoices):
    PHONE = "phone", "Phone"
    EMAIL = "email", "Email"
    WEBCHAT = "webchat", "Webchat visitor"
    EXTERNAL = "external", "External id"


class Identity(models.Model):
    """A normalized identifier, unique per workspace, that points at exactly one customer."""

    workspace = models.ForeignKey("engagement.Workspace", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=16, choices=IdentityKind.choices)
    value = models.CharField(max_length=320)
    verified = models.BooleanField(default=False)
    first_channel = models.CharField(max_length=16, blank=True, default="")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind", "value"], name="uniq_identity_per_workspace"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class ConsentChannel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    VOICE = "voice", "Voice"
    WEBCHAT = "webchat", "Webchat"


class ConsentPurpose(models.TextChoices):
    MARKETING = "marketing", "Marketing"
    TRANSACTIONAL = "transactional", "Transactional"


class ConsentStatus(models.TextChoices):
    OPTED_IN = "opted_in", "Opted in"
    OPTED_OUT = "opted_out", "Opted out"


class ConsentSource(models.TextChoices):
    SMS_KEYWORD = "sms_keyword", "SMS keyword"
    UNSUBSCRIBE_LINK = "unsubscribe_link", "Unsubscribe link"
    PROVIDER_UNSUBSCRIBE = "provider_unsubscribe", "Provider unsubscribe"
    SPAM_REPORT = "spam_report", "Spam report"
    HARD_BOUNCE = "hard_bounce", "Hard bounce"
    PROVIDER_ERROR = "provider_error", "Provider error (e.g. Twilio 21610)"
    AGENT = "agent", "Agent"
    API = "api", "API"
    IMPORT = "import", "Import"
    WEBCHAT_FORM = "webchat_form", "Webchat form"


class ConsentEvent(models.Model):
    """Append-only consent ledger. The current state per (customer, channel, purpose) is derived from it.

    ``purpose=""`` means the change covers every purpose on the channel (e.g. STOP opts out of all SMS).
    """

    workspace = models.ForeignKey("engagement.Workspace", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consent_events")
    channel = models.CharField(max_length=16, choices=ConsentChannel.choices)
    purpose = models.CharField(max_length=16, choices=ConsentPurpose.choices, blank=True, default="")
    status = models.CharField(max_length=16, choices=ConsentStatus.choices)
    source = models.CharField(max_length=32, choices=ConsentSource.choices)
    evidence = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["customer", "channel", "-occurred_at"], name="consent_lookup_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.channel}/{self.purpose or '*'} {self.status}"
