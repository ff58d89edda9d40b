"""Merges that explain themselves (and can be undone) and merge suggestions for agents."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from .identities import Customer


class MergeSource(models.TextChoices):
    AUTO = "auto", "Automatic (verified identifier)"
    AGENT = "agent", "Agent"
    API = "api", "API"
    IMPORT = "import", "Import"
    SUGGESTION = "suggestion", "Accepted suggestion"


class CustomerMerge(models.Model):
    """One merge of ``merged`` into ``survivor``, with its evidence and exactly what moved.

    ``moved`` lists the ids of every identity, conversation, interaction and consent event that changed
    owner, the profile changes (tags added, attributes filled, conflicts) and a snapshot of the
    merged-away profile; ``high_water`` holds the largest interaction/conversation/consent ids at merge
    time so an undo can tell what arrived afterwards.
    """

    workspace = models.ForeignKey("engagement.Workspace", on_delete=models.CASCADE, related_name="+")
    survivor = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="merges_survived")
    merged = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="merges_absorbed")
    source = models.CharField(max_length=16, choices=MergeSource.choices)
    linking_kind = models.CharField(max_length=16, blank=True, default="")
    linking_value = models.CharField(max_length=320, blank=True, default="")
    event_ref = models.CharField(max_length=200, blank=True, default="")
    evidence = models.JSONField(default=dict, blank=True)
    moved = models.JSONField(default=dict, blank=True)
    high_water = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    undo_moved = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "survivor", "-created_at"], name="merge_survivor_idx"),
            models.Index(fields=["workspace", "merged", "-created_at"], name="merge_merged_idx"),
        ]

    def __str__(self) -> str:
        return f"merge {self.merged_id} → {self.survivor_id}"


class SuggestionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DISMISSED = "dismissed", "Dismissed"


class MergeSuggestion(models.Model):
    """A proposed merge of two customers (``customer_a.pk < customer_b.pk``), ranked by ``score``."""

    workspace = models.ForeignKey("engagement.Workspace", on_delete=models.CASCADE, related_name="+")
    customer_a = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    customer_b = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=64)
    score = models.FloatField()
    evidence = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=SuggestionStatus.choices, default=SuggestionStatus.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    merge = models.ForeignKey(
        CustomerMerge, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "customer_a", "customer_b"], name="uniq_merge_suggestion_pair"
            ),
            models.CheckConstraint(
                condition=Q(customer_a__lt=models.F("customer_b")), name="suggestion_ordered"
            ),
        ]
        indexes = [models.Index(fields=["workspace", "status", "-score"], name="suggestion_rank_idx")]

    def __str__(self) -> str:
        return f"suggest {self.customer_a_id} + {self.customer_b_id} ({self.reason})"
