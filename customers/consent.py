"""The consent ledger: record changes (append-only), derive the current state, and guard every send.

Semantics other code relies on:

* A row covers ``(channel, purpose)``; ``purpose=""`` covers every purpose on the channel (SMS STOP).
* The state for ``(channel, purpose)`` is derived from the newest row of that purpose and the newest
  channel-wide row, newest by when *we recorded* it (the row id, from a database sequence), never by
  the time a client or provider claims (``occurred_at``). A claimed time is kept as evidence only, and
  one further in the future than :data:`CLOCK_SKEW` is refused (:class:`ConsentTimeInvalid`), so an
  opt-in dated 9999-12-31 cannot outrank a later opt-out. A channel-wide opt-out newer than the purpose's own
  row wins. A channel-wide opt-in (START) lifts that block: it counts as an opt-in for transactional
  messages, but for marketing it only restores the purpose's own earlier state, so texting START never
  grants marketing consent by itself. ``None`` means never set.
* The send guard (:func:`consent_check_send`): marketing needs an explicit opt-in; transactional goes
  unless the state for transactional is opted out (a channel-wide opt-out such as STOP counts);
  compliance replies (the STOP/START confirmation, the HELP answer) always go.
* Merges are followed: handed a merged-away customer (a tombstone), every function here reads and
  writes the survivor's ledger (``customers.lookup.customer_follow_merges``), so an opt-out that arrives
  for an old id (an unsubscribe link, a queued message) lands where the customer now lives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models
from django.db.models import Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Concat
from django.db.models.lookups import Exact
from django.utils import timezone

from engagement import events
from engagement.errors import ValidationFailed

from .lookup import customer_follow_merges
from .models import ConsentChannel, ConsentEvent, ConsentPurpose, ConsentSource, ConsentStatus, Customer

# How far ahead of our clock a claimed consent time may be (clients' and providers' clocks drift).
CLOCK_SKEW = timedelta(minutes=5)


class ConsentTimeInvalid(ValidationFailed):
    """A claimed consent time further in the future than the allowed clock skew."""

    code = "consent_time_invalid"


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
    the caller's transaction; never edits or deletes earlier rows. A merged-away ``customer`` records on
    its survivor.

    ``occurred_at`` is the time the source claims (an API client's, a provider's); it is evidence and
    never orders the ledger (the new row outranks every earlier one). Raises
    :class:`ConsentTimeInvalid` (400) when it lies more than :data:`CLOCK_SKEW` in the future.
    """
    consent_check_values(channel=channel, status=status, source=source, purpose=purpose)
    customer = customer_follow_merges(customer=customer)
    now = timezone.now()
    if occurred_at is not None and occurred_at > now + CLOCK_SKEW:
        raise ConsentTimeInvalid(
            f"occurred_at {occurred_at.isoformat()} is in the future; a consent change can be dated at "
            f"most {int(CLOCK_SKEW.total_seconds() // 60)} minutes ahead of the server's clock",
            field="occurred_at",
        )
    recorded = ConsentEvent.objects.create(
        workspace_id=customer.workspace_id,
        customer=customer,
        channel=channel,
        purpose=purpose,
        status=status,
        source=source,
        address=address[:320],
        evidence=evidence or {},
        actor=actor,  # type: ignore[misc]
        occurred_at=occurred_at or now,
    )
    events.publish_on_commit(
        events.DomainEvent(
            name=events.CONSENT_CHANGED,
            workspace_id=customer.workspace_id,
            customer_id=customer.pk,
            data={
                "consent_event_id": recorded.pk,
                "channel": channel,
                "purpose": purpose,
                "status": status,
                "source": source,
            },
        )
    )
    return recorded


def consent_derive(
    *,
    purpose: str,
    own: tuple[int, str] | None,
    wide: tuple[int, str] | None,
) -> str | None:
    """The state from the newest own row and the newest channel-wide row (``(id, status)``; a larger id
    was recorded later)."""
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
    customer = customer_follow_merges(customer=customer)
    # The newest own row and the newest channel-wide row in ONE query (it runs two or three times per
    # automated send: the guard, message_send, the send task).
    newest = {
        row_purpose: (pk, status)
        for row_purpose, pk, status in ConsentEvent.objects.filter(
            workspace_id=customer.workspace_id, customer=customer, channel=channel, purpose__in=[purpose, ""]
        )
        .order_by("purpose", "-id")
        .distinct("purpose")
        .values_list("purpose", "id", "status")
    }
    return consent_derive(purpose=purpose, own=newest.get(purpose), wide=newest.get(""))


def consent_summary(*, customer: Customer) -> dict[str, dict[str, str | None]]:
    """The derived state for every channel and purpose: ``{channel: {purpose: status or None}}``."""
    customer = customer_follow_merges(customer=customer)
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    rows = ConsentEvent.objects.filter(workspace_id=customer.workspace_id, customer=customer).values_list(
        "channel", "purpose", "id", "status"
    )
    for channel, purpose, pk, status in rows:
        key = (channel, purpose)
        if key not in latest or pk > latest[key][0]:
            latest[key] = (pk, status)
    return {
        ch: {
            p: consent_derive(purpose=p, own=latest.get((ch, p)), wide=latest.get((ch, "")))
            for p in ConsentPurpose.values
        }
        for ch in ConsentChannel.values
    }


def consent_history(*, customer: Customer) -> list[ConsentEvent]:
    """The customer's ledger, newest recorded first."""
    customer = customer_follow_merges(customer=customer)
    return list(
        ConsentEvent.objects.filter(workspace_id=customer.workspace_id, customer=customer)
        .select_related("actor")
        .order_by("-id")
    )


def consent_channel_state(*, customer: Customer, channel: str) -> dict[str, str | None]:
    """The derived state of every purpose on ``channel`` plus the channel-wide row's own status (key
    ``""``), in one query: ``{"": status or None, "marketing": …, "transactional": …}``. What an SMS
    keyword needs to tell a repeat (a second STOP) from a change."""
    customer = customer_follow_merges(customer=customer)
    latest: dict[str, tuple[int, str]] = {}
    rows = (
        ConsentEvent.objects.filter(workspace_id=customer.workspace_id, customer=customer, channel=channel)
        .order_by("purpose", "-id")
        .distinct("purpose")
        .values_list("purpose", "id", "status")
    )
    for purpose, pk, status in rows:
        latest[purpose] = (pk, status)
    wide = latest.get("")
    state: dict[str, str | None] = {"": wide[1] if wide else None}
    for purpose in ConsentPurpose.values:
        state[purpose] = consent_derive(purpose=purpose, own=latest.get(purpose), wide=wide)
    return state


@dataclass(frozen=True)
class SendDecision:
    allowed: bool
    reason: str = ""  # a short code for the timeline: "opted_out", "no_marketing_consent"
    detail: str = ""


def consent_decide(*, state: str | None, channel_kind: str, purpose: str) -> SendDecision:
    """The send guard's rule for a derived ``state`` of the purpose that matters (marketing for
    marketing, transactional otherwise): the module docstring's semantics, no query."""
    if purpose == SendPurpose.COMPLIANCE:
        return SendDecision(True)
    if purpose == SendPurpose.MARKETING:
        if state == ConsentStatus.OPTED_IN:
            return SendDecision(True)
        if state == ConsentStatus.OPTED_OUT:
            return SendDecision(False, "opted_out", f"the customer opted out of {channel_kind} marketing")
        return SendDecision(
            False, "no_marketing_consent", f"the customer never opted in to {channel_kind} marketing"
        )
    if state == ConsentStatus.OPTED_OUT:
        return SendDecision(False, "opted_out", f"the customer opted out of {channel_kind} messages")
    return SendDecision(True)


def _purpose_state_key(purpose: str) -> str:
    return ConsentPurpose.MARKETING if purpose == SendPurpose.MARKETING else ConsentPurpose.TRANSACTIONAL


def consent_check_send(*, customer: Customer, channel_kind: str, purpose: str) -> SendDecision:
    """May a message of ``purpose`` go to ``customer`` on a ``channel_kind`` channel now?

    Read-only; the caller (``message_send``) records a blocked send on the timeline. A merged-away
    ``customer`` is judged by its survivor's ledger.
    """
    if purpose not in SendPurpose.values:
        raise ValueError(f"unknown send purpose {purpose!r}")
    customer = customer_follow_merges(customer=customer)
    if purpose == SendPurpose.COMPLIANCE:
        return SendDecision(True)
    state = consent_state(customer=customer, channel=channel_kind, purpose=_purpose_state_key(purpose))
    return consent_decide(state=state, channel_kind=channel_kind, purpose=purpose)


def consent_check_send_every_channel(*, customer: Customer, purpose: str) -> dict[str, SendDecision]:
    """:func:`consent_check_send` for every channel kind at once (one query): what the console's channel
    picker shows before an agent writes, ``{channel kind: decision}``. The send path still checks."""
    if purpose not in SendPurpose.values:
        raise ValueError(f"unknown send purpose {purpose!r}")
    summary = consent_summary(customer=customer)
    key = _purpose_state_key(purpose)
    return {
        kind: consent_decide(state=states.get(key), channel_kind=kind, purpose=purpose)
        for kind, states in summary.items()
    }


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
    newest = rows.order_by("-id").annotate(out=value).values("out")[:1]
    return Q(Exact(Coalesce(Subquery(newest, output_field=models.CharField()), Value("")), wanted))


def _state_per_row_q(channel: str, purpose: str, state: str | None) -> Q:
    tag = Concat("purpose", Value(":"), "status")

    def top_is(wanted: str) -> Q:
        return _newest_q(channel, [purpose, ""], tag, wanted)

    def own_is(wanted: str) -> Q:
        return _newest_q(channel, [purpose], F("status"), wanted)

    return _derived_state_q(purpose, state, top_is=top_is, own_is=own_is)


def _state_set_q(channel: str, purpose: str, state: str | None, workspace_id: int) -> Q:
    """Uncorrelated: ``pk IN`` sets over the workspace's ledger. "The newest row is X" is a row X with no
    newer row among the same purposes: an anti-join on the customer, so no sort of the whole ledger."""
    ledger = ConsentEvent.objects.filter(workspace_id=workspace_id, channel=channel)

    def newest_is(purposes: list[str], wanted: str) -> Q:
        rows = ledger.filter(purpose__in=purposes)
        if wanted == "":
            return ~Q(pk__in=rows.values("customer_id"))
        row_purpose, _, status = wanted.rpartition(":")
        # Newer = recorded later (a larger id): the ledger's order, never the claimed occurred_at.
        newer = rows.filter(customer_id=OuterRef("customer_id"), id__gt=OuterRef("id"))
        hits = rows.filter(purpose=row_purpose, status=status).filter(~Exists(newer))
        return Q(pk__in=hits.values("customer_id"))

    def top_is(wanted: str) -> Q:
        return newest_is([purpose, ""], wanted)

    def own_is(wanted: str) -> Q:
        return newest_is([purpose], f"{purpose}:{wanted}" if wanted else "")

    return _derived_state_q(purpose, state, top_is=top_is, own_is=own_is)


def _derived_state_q(
    purpose: str, state: str | None, *, top_is: Callable[[str], Q], own_is: Callable[[str], Q]
) -> Q:
    """:func:`consent_derive` as a condition, over two conditions a query strategy supplies:
    ``top_is("<purpose>:<status>")``, the newest row among the purpose's own and the channel-wide ones
    is that (``":<status>"`` a channel-wide row, ``""`` no row); ``own_is(status)``, the newest own row
    has that status (``""`` no own row)."""
    IN, OUT = ConsentStatus.OPTED_IN.value, ConsentStatus.OPTED_OUT.value
    if state == IN and purpose != ConsentPurpose.TRANSACTIONAL:
        # Opted in ⇔ the newest own row is an opt-in and no newer channel-wide opt-out (the top row is
        # then that own row or a newer channel-wide opt-in, whose "own row's status" is that opt-in):
        # one anti-join over the opt-ins and a small one over channel-wide opt-outs, where the form
        # "top is the own opt-in, or a wide opt-in over an own opt-in" took two large ones
        # (bench_segments' consent count).
        return own_is(IN) & ~top_is(f":{OUT}")
    wide_in = top_is(f":{IN}")
    if state == IN:
        # transactional: a channel-wide opt-in counts unless the purpose's own row says opted out
        return top_is(f"{purpose}:{IN}") | (wide_in & ~own_is(OUT))
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
