"""GDPR: the audit row every erasure writes, and CSV imports with their progress and error report."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .identities import Customer


class CustomerErasure(models.Model):
    """Audit row of one erasure. Holds no personal data: only ids and anonymous counts."""

    workspace = models.ForeignKey("engagement.Workspace", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="erasures")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    via = models.CharField(max_length=16)  # console, api
    reason = models.CharField(max_length=200, blank=True, default="")
    counts = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"erasure of {self.customer_id}"


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class CustomerImport(models.Model):
    """One CSV import: its source, progress and per-row error report."""

    workspace = models.ForeignKey("engagement.Workspace", on_delete=models.CASCADE, related_name="+")
    filename = models.CharField(max_length=255, blank=True, default="")
    source = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=ImportStatus.choices, default=ImportStatus.PENDING)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    # [{"row": <1-based data row>, "error": "..."}]; capped so a bad file cannot grow it without bound.
    errors = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"import {self.pk} ({self.status})"
