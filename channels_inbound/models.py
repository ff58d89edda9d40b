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


class InboundStage(models.TextChoices):
    CHANNEL = "channel", "Channel inactive"
    PARSE = "parse", "Normalizing"
    APPLY = "apply", "Applying"


class InboundRequest(models.Model):
    """An authenticated provider request kept as received because it could not be fully applied.

    Whatever passed authentication (signature or Basic auth, channel token, size limit) is provider
    data: when its channel is switched off (``stage="channel"``), or normalizing it (``"parse"``) or
    applying one of its events (``"apply"``) fails for any reason but the database itself, the
    request is stored here with the error and the provider is answered 2xx. An admin applies it again
    after a fix (console page, ``manage.py inbound_reprocess``); events applied meanwhile stay
    deduplicated by ``ProviderEvent``.
    """

    workspace = models.ForeignKey("engagement.Workspace", on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey("engagement.Channel", on_delete=models.CASCADE, related_name="+")
    provider = models.CharField(max_length=32)
    hook = models.CharField(max_length=32)
    # The request as received: Content-Type header (with its boundary), query string, body bytes, and
    # the headers (credentials left out) a parser may read.
    content_type = models.CharField(max_length=255, blank=True, default="")
    query_string = models.TextField(blank=True, default="")
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField()
    # What authentication established and the parser needs again (webchat: the verified visitor).
    context = models.JSONField(default=dict, blank=True)
    # sha256 of provider, hook, query string and body: a second delivery of the same bytes is one row.
    digest = models.CharField(max_length=64)
    stage = models.CharField(max_length=8, choices=InboundStage.choices)
    last_error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=1)
    received_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "digest"], name="uniq_inbound_request"),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "received_at"],
                condition=models.Q(processed_at__isnull=True),
                name="inbound_request_open_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.hook} #{self.pk}"
