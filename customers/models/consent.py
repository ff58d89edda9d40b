"""The append-only consent ledger."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .identities import Customer


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
    ``address`` is the customer's address the change came from or concerns (the phone that texted STOP),
    so an undone merge can send the row back to whoever owns that address.

    Order: the row recorded last wins (``id``, from a database sequence; ``created_at`` is when we
    recorded it). ``occurred_at`` is the time the source claims, kept as evidence: it never reorders
    the ledger (see ``customers/consent.py``).
    """

    workspace = models.ForeignKey("engagement.Workspace", on_delete=models.CASCADE, related_name="+")
    # No index of its own: consent_recorded_idx (customer, channel, -id) leads with it.
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="consent_events", db_index=False
    )
    channel = models.CharField(max_length=16, choices=ConsentChannel.choices)
    purpose = models.CharField(max_length=16, choices=ConsentPurpose.choices, blank=True, default="")
    status = models.CharField(max_length=16, choices=ConsentStatus.choices)
    source = models.CharField(max_length=32, choices=ConsentSource.choices)
    address = models.CharField(max_length=320, blank=True, default="")
    evidence = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["customer", "channel", "-id"], name="consent_recorded_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.channel}/{self.purpose or '*'} {self.status}"
