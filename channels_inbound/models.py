"""Every provider event, stored first, deduplicated by its provider id under a unique constraint."""

from __future__ import annotations

from django.db import models


class ProviderEvent(models.Model):
    workspace = models.ForeignKey("engagement.Workspace", on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey("engagement.Channel", on_delete=models.CASCADE, related_name="+")
    provider = models.CharField(max_length=32)
    event_type = models.CharField(max_length=32)
    # Provider-unique id: MessageSid for messages, "MessageSid:status" for status callbacks.
    provider_event_id = models.CharField(max_length=200)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "provider_event_id"], name="uniq_provider_event"),
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=models.Q(processed_at__isnull=True),
                name="event_unprocessed_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.provider_event_id}"
