"""A Channel is one provider connection of a workspace (a Twilio number, a sender domain, a widget)."""

from __future__ import annotations

import secrets

from django.db import models

from engagement.credentials import EncryptedConfigField

from .tenancy import Workspace


class ChannelKind(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"
    VOICE = "voice", "Voice"
    WEBCHAT = "webchat", "Webchat"


def _webhook_token() -> str:
    return secrets.token_urlsafe(24)


class Channel(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="channels")
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    provider = models.CharField(max_length=32, help_text="Adapter name, e.g. twilio or sandbox")
    name = models.CharField(max_length=100)
    address = models.CharField(max_length=255, help_text="Our address on this channel: E.164 number, email")
    # Provider credentials and options (account_sid, auth_token, messaging_service_sid, ...).
    # Secret keys (credentials, webhook secrets) are encrypted at rest: engagement/credentials.py.
    config = EncryptedConfigField(default=dict, blank=True)
    webhook_token = models.CharField(max_length=64, unique=True, default=_webhook_token, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "kind", "address"], name="uniq_channel_address"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}/{self.provider})"


# Which kind of customer identity a channel sends to.
CHANNEL_IDENTITY_KIND: dict[str, str] = {
    ChannelKind.SMS: "phone",
    ChannelKind.VOICE: "phone",
    ChannelKind.EMAIL: "email",
    ChannelKind.WEBCHAT: "webchat",
}
