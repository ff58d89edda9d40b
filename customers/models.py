"""The single customer view: a Customer and every Identity (phone, email, visitor id, external id)."""

from __future__ import annotations

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
