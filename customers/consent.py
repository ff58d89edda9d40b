"""The consent ledger: record changes (append-only) and derive the current state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from .models import ConsentEvent, ConsentStatus, Customer


def consent_record(
    *,
    customer: Customer,
    channel: str,
    status: str,
    source: str,
    purpose: str = "",
    evidence: dict[str, Any] | None = None,
    actor: AbstractBaseUser | None = None,
    occurred_at: datetime | None = None,
) -> ConsentEvent:
    """Append one consent change. ``purpose=""`` applies to every purpose on ``channel``.

    Runs in the caller's transaction; never edits or deletes earlier rows.
    """
    if status not in ConsentStatus.values:
        raise ValueError(f"unknown consent status {status!r}")
    return ConsentEvent.objects.create(
        workspace_id=customer.workspace_id,
        customer=customer,
        channel=channel,
        purpose=purpose,
        status=status,
        source=source,
        evidence=evidence or {},
        actor=actor,  # type: ignore[misc]
        occurred_at=occurred_at or timezone.now(),
    )


def consent_state(*, customer: Customer, channel: str, purpose: str) -> str | None:
    """The latest status covering (channel, purpose), its own rows or channel-wide ones; None if never set."""
    return (
        ConsentEvent.objects.filter(customer=customer, channel=channel, purpose__in=[purpose, ""])
        .order_by("-occurred_at", "-id")
        .values_list("status", flat=True)
        .first()
    )
