"""Custom events: what a customer did in the integrator's product ("order_placed", "trial_started")."""

from __future__ import annotations

from django.db import models

from .identities import Customer


class CustomerEvent(models.Model):
    """One tracked event. ``event_id`` is the sender's idempotency key (generated when none is given),
    unique per workspace, so a retried track call records the event once.

    ``occurred_at`` is when it happened (the sender's clock), ``received_at`` when we stored it; segments
    and journeys window on ``occurred_at``.
    """

    workspace = models.ForeignKey("engagement.Workspace", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events")
    name = models.CharField(max_length=200)
    properties = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    event_id = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "event_id"], name="uniq_customer_event_id"),
        ]
        indexes = [
            # Segment conditions ("did <name> at least N times in the last D days") probe per customer.
            models.Index(
                fields=["workspace", "name", "customer", "occurred_at"], name="customer_event_lookup_idx"
            ),
            models.Index(fields=["customer", "-occurred_at"], name="customer_event_timeline_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.name} @ {self.occurred_at:%Y-%m-%d %H:%M}"
