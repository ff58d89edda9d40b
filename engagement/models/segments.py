"""Segments: a named audience of a workspace's customers, a rule tree (dynamic) or a fixed list (static).

The rule tree's grammar, validation and compilation to SQL live in ``engagement/segments/``; the models
only store it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .tenancy import Workspace


class SegmentKind(models.TextChoices):
    DYNAMIC = "dynamic", "Dynamic (rules)"
    STATIC = "static", "Static list"


class Segment(models.Model):
    """A dynamic segment's members are the live customers its ``rules`` match, evaluated when asked.

    A static segment's members are its ``SegmentMember`` rows (an uploaded CSV of identifiers, resolved
    through customer resolution) plus, when ``static_tag`` is set, every customer carrying that tag.
    Merged-away and erased customers are never members (a member row on a tombstone counts for its
    survivor).
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=16, choices=SegmentKind.choices, default=SegmentKind.DYNAMIC)
    # The validated, normalized rule tree (engagement/segments/rules.py); {} for a static segment.
    rules = models.JSONField(default=dict, blank=True)
    static_tag = models.CharField(max_length=64, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="uniq_segment_name")]
        indexes = [models.Index(fields=["workspace", "-updated_at"], name="segment_ws_idx")]

    def __str__(self) -> str:
        return self.name


class SegmentMember(models.Model):
    """One customer on a static segment's list."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="members")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "customer"], name="uniq_segment_member"),
        ]
        indexes = [models.Index(fields=["customer", "segment"], name="segment_member_customer_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.segment_id}"
