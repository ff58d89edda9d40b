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
from django.db.models import Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Concat
from django.db.models.lookups import Exact
from django.utils import timezone

from .models import ConsentChannel, ConsentEvent, ConsentPurpose, ConsentSource, ConsentStatus, Customer


class SendPurpose(models.TextChoices):
    MARKETING = "marketing", "Marketing"
    TRANSACTIONAL = "transactional", "Transactional"
    # Replies the law or the carrier require (opt-out/opt-in confirmations, HELP); never blocked.
    COMPLIANCE = "compliance", "Compliance"


def consent_check_values(*, channel: str, status: str, source: str, purpose: str = "") -> None:
    """ValueError unless every value is one the ledger knows (what :func:`consent_record` checks)."""
    if status not in ConsentStatus.values:
        raise ValueError(f"unknown consent status {status!r}")
    if channel not in ConsentChannel.values:
        raise ValueError(f"unknown consent channel {channel!r}")
    if purpose and purpose not in ConsentPurpose.values:
        raise ValueError(f"unknown consent purpose {purpose!r}")
    if source not in ConsentSource.values:
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


# ---------------------------------------------------------------- the same rules, compiled to SQL
# For querysets of Customer (segments, campaign audiences): the derivation of :func:`consent_derive` and
# the guard of :func:`consent_check_send` as conditions on the customer's primary key, so a whole audience
# is filtered in one query. Two primitives per (channel, purpose): the newest row among the purpose's own
# and the channel-wide rows ("top"), and the newest own row ("own"). Two shapes of the same conditions:
#
# * ``workspace_id=None``: correlated subqueries on ``OuterRef("pk")`` (``consent_lookup_idx``), cheapest
#   for a few customers (a send-time re-check);
# * ``workspace_id=<id>``: uncorrelated ``pk IN (…)`` subqueries over the workspace's ledger, newest rows
#   picked with a window function, each computed once and hashed: cheapest for counting an audience.
#
# Either way every condition is true or false, never SQL NULL (safe under NOT).


def _newest_q(channel: str, purposes: list[str], value: Any, wanted: str) -> Q:
    """Correlated: the customer's newest row among ``purposes`` has ``value`` == ``wanted`` ("" = none)."""
    rows = ConsentEvent.objects.filter(customer_id=OuterRef("pk"), channel=channel, purpose__in=purposes)
    if wanted == "":
        return ~Q(Exists(rows))
    newest = rows.order_by("-occurred_at", "-id").annotate(out=value).values("out")[:1]
    return Q(Exact(Coalesce(Subquery(newest, output_field=models.CharField()), Value("")), wanted))


def _state_per_row_q(channel: str, purpose: str, state: str | None) -> Q:
    IN, OUT = ConsentStatus.OPTED_IN.value, ConsentStatus.OPTED_OUT.value
    tag = Concat("purpose", Value(":"), "status")

    def top_is(wanted: str) -> Q:
        return _newest_q(channel, [purpose, ""], tag, wanted)

    def own_is(wanted: str) -> Q:
        return _newest_q(channel, [purpose], F("status"), wanted)

    wide_in = top_is(f":{IN}")
    if state == IN:
        # transactional: a channel-wide opt-in counts unless the purpose's own row says opted out
        lifted = ~own_is(OUT) if purpose == ConsentPurpose.TRANSACTIONAL else own_is(IN)
        return top_is(f"{purpose}:{IN}") | (wide_in & lifted)
    if state == OUT:
        return top_is(f"{purpose}:{OUT}") | top_is(f":{OUT}") | (wide_in & own_is(OUT))
    if purpose == ConsentPurpose.TRANSACTIONAL:
        return top_is("")
    return top_is("") | (wide_in & own_is(""))


def _state_set_q(channel: str, purpose: str, state: str | None, workspace_id: int) -> Q:
    """Uncorrelated: ``pk IN`` sets over the workspace's ledger. "The newest row is X" is a row X with no
    newer row among the same purposes: an anti-join on the customer, so no sort of the whole ledger."""
    IN, OUT = ConsentStatus.OPTED_IN.value, ConsentStatus.OPTED_OUT.value
    ledger = ConsentEvent.objects.filter(workspace_id=workspace_id, channel=channel)

    def newest_is(purposes: list[str], wanted: str) -> Q:
        rows = ledger.filter(purpose__in=purposes)
        if wanted == "":
            return ~Q(pk__in=rows.values("customer_id"))
        row_purpose, _, status = wanted.rpartition(":")
        newer = rows.filter(customer_id=OuterRef("customer_id")).filter(
            Q(occurred_at__gt=OuterRef("occurred_at"))
            | Q(occurred_at=OuterRef("occurred_at"), id__gt=OuterRef("id"))
        )
        hits = rows.filter(purpose=row_purpose, status=status).filter(~Exists(newer))
        return Q(pk__in=hits.values("customer_id"))

    def top_is(wanted: str) -> Q:
        return newest_is([purpose, ""], wanted)

    def own_is(wanted: str) -> Q:
        return newest_is([purpose], f"{purpose}:{wanted}" if wanted else "")

    wide_in = top_is(f":{IN}")
    if state == IN:
        lifted = ~own_is(OUT) if purpose == ConsentPurpose.TRANSACTIONAL else own_is(IN)
        return top_is(f"{purpose}:{IN}") | (wide_in & lifted)
    if state == OUT:
        return top_is(f"{purpose}:{OUT}") | top_is(f":{OUT}") | (wide_in & own_is(OUT))
    if purpose == ConsentPurpose.TRANSACTIONAL:
        return top_is("")
    return top_is("") | (wide_in & own_is(""))


def consent_state_q(*, channel: str, purpose: str, state: str | None, workspace_id: int | None = None) -> Q:
    """Customers whose derived state for ``(channel, purpose)`` is ``state`` (None: never set).

    "top" is the newest row among the purpose's own and the channel-wide ones; "own" the newest own row.
    Then, as :func:`consent_derive`: the newest row is the purpose's own → its status; a channel-wide
    opt-out → opted out; a channel-wide opt-in → the own row's status, else opted in for transactional
    and never set for marketing. ``workspace_id``: see above.
    """
    if purpose not in ConsentPurpose.values:
        raise ValueError(f"unknown consent purpose {purpose!r}")
    if state not in (ConsentStatus.OPTED_IN, ConsentStatus.OPTED_OUT, None):
        raise ValueError(f"unknown consent state {state!r}")
    if workspace_id is None:
        return _state_per_row_q(channel, purpose, state)
    return _state_set_q(channel, purpose, state, workspace_id)


def consent_allows_q(*, channel_kind: str, purpose: str, workspace_id: int | None = None) -> Q:
    """Customers :func:`consent_check_send` would let a ``purpose`` message through to on
    ``channel_kind`` (the address is not part of it). ``workspace_id``: as for :func:`consent_state_q`."""
    if purpose not in SendPurpose.values:
        raise ValueError(f"unknown send purpose {purpose!r}")
    if purpose == SendPurpose.COMPLIANCE:
        return Q(pk__isnull=False)
    if purpose == SendPurpose.MARKETING:
        return consent_state_q(
            channel=channel_kind,
            purpose=ConsentPurpose.MARKETING,
            state=ConsentStatus.OPTED_IN,
            workspace_id=workspace_id,
        )
    return ~consent_state_q(
        channel=channel_kind,
        purpose=ConsentPurpose.TRANSACTIONAL,
        state=ConsentStatus.OPTED_OUT,
        workspace_id=workspace_id,
    )
