"""Per-workspace customer settings: typed attribute definitions and the identity-resolution policy."""

from __future__ import annotations

from django.db import models


class AttributeType(models.TextChoices):
    STRING = "string", "Text"
    NUMBER = "number", "Number"
    BOOLEAN = "boolean", "Yes/no"
    DATE = "date", "Date"


class AttributeDefinition(models.Model):
    workspace = models.ForeignKey("engagement.Workspace", on_delete=models.CASCADE, related_name="+")
    key = models.SlugField(max_length=64)
    label = models.CharField(max_length=100)
    type = models.CharField(max_length=16, choices=AttributeType.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "key"], name="uniq_attribute_key")]

    def __str__(self) -> str:
        return f"{self.key} ({self.type})"


class ResolutionPolicy(models.Model):
    """How a workspace resolves one event whose identifiers point at two customers.

    Without a row the defaults apply (``customers.resolution.policy_for``).
    """

    workspace = models.OneToOneField(
        "engagement.Workspace", on_delete=models.CASCADE, related_name="customer_policy"
    )
    # Merge automatically when every linking identifier is verified; otherwise suggest.
    auto_merge_verified = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"policy for {self.workspace_id}"
