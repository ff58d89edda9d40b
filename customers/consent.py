"""The consent ledger: record changes (append-only), derive the current state, and guard every send.

Semantics other code relies on:

* A row covers ``(channel, purpose)``; ``purpose=""`` covers every purpose on the channel (SMS STOP).
* The state for ``(channel, purpose)`` is derived from the newest row of that purpose and the newest
  channel-wide row (by ``occurred_at``, then id). A channel-wide opt-out newer than the purpose's own
  row wins. A channel-wide opt-in (START) lifts that block: it counts as an opt-in for transactional
  messages, but for marketing it only restores the purpose's own earlier state, so texting START never
  grants marketing consent by itself. ``None`` means never set.
* The send guard (:func:`consent_check_send`): marketing needs an explicit opt-in; transactional goes
  unless the state for transactional is opted out (a channel-wide opt-out such as STOP counts);
  compliance replies (the STOP/START confirmation, the HELP answer) always go.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models
from django.utils import timezone

from .models import ConsentChannel, ConsentEvent, ConsentPurpose, ConsentSource, ConsentStatus, Customer


class SendPurpose(models.TextChoices):
    MARKETING = "marketing", "Marketing"
    TRANSACTIONAL = "transactional", "Transactional"
    # Replies the law or the carrier require (opt-out/opt-in confirmations, HELP); never blocked.
    COMPLIANCE = "compliance", "Compliance"


# The choices' values once (``Choices.values`` builds a new list on every access; a CSV import checks
# every consent cell).
_STATUSES = frozenset(ConsentStatus.values)
_CHANNELS = frozenset(ConsentChannel.values)
_PURPOSES = frozenset(ConsentPurpose.values)
_SOURCES = frozenset(ConsentSource.values)


def consent_check_values(*, channel: str, status: str, source: str, purpose: str = "") -> None:
    """ValueError unless every value is one the ledger knows (what :func:`consent_record` checks)."""
    if status not in _STATUSES:
        raise ValueError(f"unknown consent status {status!r}")
    if channel not in _CHANNELS:
        raise ValueError(f"unknown consent channel {channel!r}")
    if purpose and purpose not in _PURPOSES:
        raise ValueError(f"unknown consent purpose {purpose!r}")
    if source not in _SOURCES:
        raise ValueError(f"unknown consent source {source!r}")


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
    address: str = "",
) -> ConsentEvent:
    """Append one consent change. ``purpose=""`` applies to every purpose on ``channel``.

    ``address`` is the customer's address the change came from (the phone that texted STOP). Runs in
    the caller's transaction; never edits or deletes earlier rows.
    """
    consent_check_values(channel=channel, status=status, source=source, purpose=purpose)
    return ConsentEvent.objects.create(
        workspace_id=customer.workspace_id,
        customer=customer,
        channel=channel,
        purpose=purpose,
        status=status,
        source=source,
        address=address[:320],
        evidence=evidence or {},
        actor=actor,  # type: ignore[misc]
        occurred_at=occurred_at or timezone.now(),
    )


def _latest(customer: Customer, channel: str, purpose: str) -> tuple[tuple[datetime, int], str] | None:
    row = (
        ConsentEvent.objects.filter(
            workspace_id=customer.workspace_id, customer=customer, channel=channel, purpose=purpose
        )
        .order_by("-occurred_at", "-id")
        .values_list("occurred_at", "id", "status")
        .first()
    )
    return ((row[0], row[1]), row[2]) if row else None


def consent_derive(
    *,
    purpose: str,
    own: tuple[tuple[datetime, int], str] | None,
    wide: tuple[tuple[datetime, int], str] | None,
) -> str | None:
    """The state from the newest own row and the newest channel-wide row (``((occurred_at, id), status)``)."""
    if wide is None or (own is not None and own[0] > wide[0]):
        return own[1] if own else None
    if wide[1] == ConsentStatus.OPTED_OUT:
        return ConsentStatus.OPTED_OUT
    if own is not None:
        return own[1]
    return ConsentStatus.OPTED_IN if purpose == ConsentPurpose.TRANSACTIONAL else None


def consent_state(*, customer: Customer, channel: str, purpose: str) -> str | None:
    """The current status for (channel, purpose), derived from the ledger (module docstring); None if
    never set."""
    return consent_derive(
        purpose=purpose,
        own=_latest(customer, channel, purpose),
        wide=_latest(customer, channel, ""),
    )


def consent_summary(*, customer: Customer) -> dict[str, dict[str, str | None]]:
    """The derived state for every channel and purpose: ``{channel: {purpose: status or None}}``."""
    latest: dict[tuple[str, str], tuple[tuple[datetime, int], str]] = {}
    rows = ConsentEvent.objects.filter(workspace_id=customer.workspace_id, customer=customer).values_list(
        "channel", "purpose", "occurred_at", "id", "status"
    )
    for channel, purpose, at, pk, status in rows:
        key = (channel, purpose)
        if key not in latest or (at, pk) > latest[key][0]:
            latest[key] = ((at, pk), status)
    return {
        ch: {
            p: consent_derive(purpose=p, own=latest.get((ch, p)), wide=latest.get((ch, "")))
            for p in ConsentPurpose.values
        }
        for ch in ConsentChannel.values
    }


def consent_history(*, customer: Customer) -> list[ConsentEvent]:
    """The customer's ledger, newest first."""
    return list(
        ConsentEvent.objects.filter(workspace_id=customer.workspace_id, customer=customer)
        .select_related("actor")
        .order_by("-occurred_at", "-id")
    )


@dataclass(frozen=True)
class SendDecision:
    allowed: bool
    reason: str = ""  # a short code for the timeline: "opted_out", "no_marketing_consent"
    detail: str = ""


def consent_check_send(*, customer: Customer, channel_kind: str, purpose: str) -> SendDecision:
    """May a message of ``purpose`` go to ``customer`` on a ``channel_kind`` channel now?

    Read-only; the caller (``message_send``) records a blocked send on the timeline.
    """
    if purpose not in SendPurpose.values:
        raise ValueError(f"unknown send purpose {purpose!r}")
    if purpose == SendPurpose.COMPLIANCE:
        return SendDecision(True)
    if purpose == SendPurpose.MARKETING:
        state = consent_state(customer=customer, channel=channel_kind, purpose=ConsentPurpose.MARKETING)
        if state == ConsentStatus.OPTED_IN:
            return SendDecision(True)
        if state == ConsentStatus.OPTED_OUT:
            return SendDecision(False, "opted_out", f"the customer opted out of {channel_kind} marketing")
        return SendDecision(
            False, "no_marketing_consent", f"the customer never opted in to {channel_kind} marketing"
        )
    state = consent_state(customer=customer, channel=channel_kind, purpose=ConsentPurpose.TRANSACTIONAL)
    if state == ConsentStatus.OPTED_OUT:
        return SendDecision(False, "opted_out", f"the customer opted out of {channel_kind} messages")
    return SendDecision(True)
