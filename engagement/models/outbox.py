"""The transactional outbox: every domain event is a row written in the transaction that caused it.

A committed row is relayed to the listeners afterwards (``engagement/outbox.py``); a rolled-back
transaction takes its rows with it, so nothing is dispatched that did not commit and nothing that
committed is lost while Redis (the broker, the channel layer) is away.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

# PostgreSQL NOTIFY channel the insert trigger signals (delivered at commit only); the relay LISTENs.
OUTBOX_NOTIFY_CHANNEL = "engagement_outbox"


class OutboxEvent(models.Model):
    """One domain event waiting for (or done with) its listeners.

    ``payload`` is :meth:`engagement.events.DomainEvent.as_dict`. ``listeners_done`` names the listeners
    that already took it, so a retry after one listener failed runs only the others. Rows of one
    customer are relayed in ``id`` order: a row waiting for a retry holds back that customer's later rows.
    """

    name = models.CharField(max_length=64)
    payload = models.JSONField()
    customer_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    relayed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    listeners_done = models.JSONField(default=list, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["id"], condition=Q(relayed_at__isnull=True), name="outbox_pending_idx"),
            models.Index(
                fields=["relayed_at"], condition=Q(relayed_at__isnull=False), name="outbox_relayed_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"outbox {self.pk} {self.name} ({'relayed' if self.relayed_at else 'pending'})"
