"""Identity resolution: the identifiers an event carries → one customer (found, created or linked).

The one path inbound adapters (through the timeline), the API and imports use. Given identifiers:

* none known: a new customer owning all of them;
* all known ones on one customer: that customer; the unknown ones are linked to it;
* known ones on two or more customers: the workspace's policy decides. When every identifier that ties
  the event to another customer is verified (the event vouches for it) and the policy allows automatic
  merges, the customers are merged (the oldest survives) with a merge record naming that identifier and
  the event. Otherwise the customers stay apart, a merge suggestion is recorded for an agent, and the
  event resolves to the customer of its first identifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from engagement import events, rows
from engagement.models import Workspace
from engagement.rows import model_from_row

from .identifiers import Identifier, InvalidIdentifier, identifier_normalize
from .merging import customer_merge
from .models import (
    Customer,
    CustomerMerge,
    Identity,
    MergeSource,
    MergeSuggestion,
    ResolutionPolicy,
    SuggestionStatus,
)

# An inbound message on these channels proves the sender holds the address (the carrier delivered it,
# the widget's visitor id is the session itself). Email senders are verified only if the adapter says so.
SENDER_VERIFIED_CHANNELS = frozenset({"sms", "voice", "webchat"})
SUGGESTION_SCORE_UNVERIFIED_LINK = 0.9
# ``last_seen_at`` is refreshed at most this often: every inbound message resolves its sender, and an
# UPDATE per message (a dead tuple and a WAL record each) buys nothing at a finer grain than this.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


@dataclass
class Resolution:
    customer: Customer
    created: bool = False
    linked: list[Identity] = field(default_factory=list)
    merges: list[CustomerMerge] = field(default_factory=list)
    suggestions: list[MergeSuggestion] = field(default_factory=list)


@dataclass(frozen=True)
class Policy:
    auto_merge_verified: bool = True


def policy_for(*, workspace: Workspace) -> Policy:
    row = ResolutionPolicy.objects.filter(workspace=workspace).first()
    return Policy(auto_merge_verified=row.auto_merge_verified) if row else Policy()


def identifiers_normalize(*, workspace: Workspace, identifiers: list[Identifier]) -> list[Identifier]:
    """Normalize and de-duplicate (a repeat that is verified anywhere counts as verified); order kept."""
    if len(identifiers) == 1:  # every inbound message: no de-duplication to do
        return [identifier_normalize(identifiers[0], workspace=workspace)]
    out: dict[tuple[str, str], Identifier] = {}
    for raw in identifiers:
        ident = identifier_normalize(raw, workspace=workspace)
        key = (ident.kind, ident.value)
        if key in out:
            out[key] = replace(out[key], verified=out[key].verified or ident.verified)
        else:
            out[key] = ident
    if not out:
        raise InvalidIdentifier("at least one identifier is needed")
    return list(out.values())


def suggestion_record(
    *, workspace: Workspace, a: Customer, b: Customer, reason: str, score: float, evidence: dict[str, Any]
) -> MergeSuggestion | None:
    """Record a pending suggestion for the pair unless one exists (a dismissed pair stays dismissed)."""
    low, high = sorted([a.pk, b.pk])
    suggestion, created = MergeSuggestion.objects.get_or_create(
        workspace=workspace,
        customer_a_id=low,
        customer_b_id=high,
        defaults={"reason": reason, "score": score, "evidence": evidence},
    )
    if not created and suggestion.status == SuggestionStatus.PENDING and score > suggestion.score:
        suggestion.score, suggestion.reason, suggestion.evidence = score, reason, evidence
        suggestion.save(update_fields=["score", "reason", "evidence"])
    return suggestion if suggestion.status == SuggestionStatus.PENDING else None


def _lookup(workspace: Workspace, idents: list[Identifier], *, lock: bool) -> dict[tuple[str, str], Identity]:
    q = Q(pk__in=[])
    for ident in idents:
        q |= Q(kind=ident.kind, value=ident.value)
    qs = Identity.objects.filter(workspace=workspace).filter(q).select_related("customer")
    if lock:
        qs = qs.select_for_update(of=("self",))
    return {(i.kind, i.value): i for i in qs}


def customer_resolve_identifiers(
    *,
    workspace: Workspace,
    identifiers: list[Identifier],
    channel_kind: str = "",
    display_name: str = "",
    source: str = MergeSource.AUTO,
    event_ref: str = "",
    actor: AbstractBaseUser | None = None,
) -> Resolution:
    """Resolve the identifiers of one event to a customer; see the module docstring for the rules.

    Raises InvalidIdentifier when any identifier does not normalize. Owns its transaction (a savepoint
    inside the caller's) whenever it creates, links or merges. Concurrent first contacts with the same
    identifier are decided by the unique constraint: the loser retries and finds the winner's customer.

    The common case — every identifier already known and on one customer — takes no savepoint: one
    SELECT, plus one UPDATE only when an identity's stored state would change (verified, last channel,
    or ``last_seen_at`` older than :data:`LAST_SEEN_RESOLUTION`).
    """
    idents = identifiers_normalize(workspace=workspace, identifiers=identifiers)
    # Several identifiers are looked up under a row lock (they may tie customers together), and a lock
    # needs a transaction: outside one, go straight to the savepoint path.
    lock = len(idents) > 1
    known: dict[tuple[str, str], Identity] | None = None
    if len(idents) == 1:
        found, known = _resolve_one(
            workspace=workspace, ident=idents[0], channel_kind=channel_kind, display_name=display_name
        )
        if found is not None:
            return found
    elif connection.in_atomic_block:
        known = _lookup(workspace, idents, lock=lock)
        found = _resolve_known(
            idents=idents, known=known, channel_kind=channel_kind, display_name=display_name
        )
        if found is not None:
            return found
    for attempt in range(3):
        try:
            with transaction.atomic():
                return _resolve(
                    workspace=workspace,
                    idents=idents,
                    # What was read above still holds on the first attempt (locked rows stay locked
                    # until the caller's transaction ends); a retry after a lost race reads again.
                    known=known if attempt == 0 else None,
                    channel_kind=channel_kind,
                    display_name=display_name,
                    source=source,
                    event_ref=event_ref,
                    actor=actor,
                )
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def identity_touch_fields(
    *, identity: Identity, ident: Identifier, channel_kind: str, now: datetime
) -> dict[str, Any]:
    """What an event seeing ``identity`` changes in its row: nothing when the stored values already
    say it (``last_seen_at`` is kept to :data:`LAST_SEEN_RESOLUTION`)."""
    fields: dict[str, Any] = {}
    if ident.verified and not identity.verified:
        fields["verified"] = True
    if channel_kind and identity.last_channel != channel_kind:
        fields["last_channel"] = channel_kind
    if fields or identity.last_seen_at <= now - LAST_SEEN_RESOLUTION:
        fields["last_seen_at"] = now
    return fields


# One prepared statement for every touch (the ORM's update() cost ~0.3 ms of statement building per
# call on the first contact of the day): ``verified`` only ever goes up, ``last_channel`` moves only
# when one is given, ``last_seen_at`` moves whenever anything does.
_TOUCH_SQL = (
    "UPDATE customers_identity SET last_seen_at = %s, verified = verified OR %s,"
    " last_channel = COALESCE(%s, last_channel) WHERE id = %s"
)


def _identity_touch(*, pk: int, fields: dict[str, Any]) -> None:
    """Write what :func:`identity_touch_fields` decided for identity ``pk`` (one UPDATE)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _TOUCH_SQL,
            [fields["last_seen_at"], bool(fields.get("verified")), fields.get("last_channel"), pk],
        )


def _one_statement() -> str:
    """Look one identifier up with its customer (raw SQL: the ORM's query building cost four times the
    database's work on this path). Built once from the models' columns."""
    selected = f"{rows.columns(Identity, 'i')}, {rows.columns(Customer, 'c')}"
    return (
        f"SELECT {selected} FROM {Identity._meta.db_table} i"  # noqa: S608 - our models' names
        f" JOIN {Customer._meta.db_table} c ON c.id = i.customer_id"
        " WHERE i.workspace_id = %s AND i.kind = %s AND i.value = %s"
    )


_ONE_STATEMENT: list[str] = []


def _resolve_one(
    *, workspace: Workspace, ident: Identifier, channel_kind: str, display_name: str
) -> tuple[Resolution | None, dict[tuple[str, str], Identity]]:
    """The common case of one identifier, no savepoint: a known identity (touched only when something
    changes, one UPDATE) and its customer. Otherwise (unknown, or a nameless customer to name) returns no
    resolution and what is known, for :func:`_resolve` to decide."""
    if not _ONE_STATEMENT:
        _ONE_STATEMENT.append(_one_statement())
    with connection.cursor() as cursor:
        cursor.execute(_ONE_STATEMENT[0], [workspace.pk, ident.kind, ident.value])
        row = cursor.fetchone()
    if row is None:
        return None, {}
    identity = model_from_row(Identity, row[: rows.width(Identity)])
    customer = model_from_row(Customer, row[rows.width(Identity) :])
    Identity.customer.field.set_cached_value(identity, customer)
    known = {(ident.kind, ident.value): identity}
    if display_name and not customer.display_name:
        return None, known
    fields = identity_touch_fields(
        identity=identity, ident=ident, channel_kind=channel_kind, now=timezone.now()
    )
    if fields:
        # One statement, atomic by itself: no savepoint needed around it.
        _identity_touch(pk=identity.pk, fields=fields)
    return Resolution(customer=customer), known


def _resolve_known(
    *,
    idents: list[Identifier],
    known: dict[tuple[str, str], Identity],
    channel_kind: str,
    display_name: str,
) -> Resolution | None:
    """The resolution when every identifier is known and on one customer and nothing but the
    identities' own rows changes; None when creating, linking, merging or naming is needed."""
    if len(known) != len(idents):
        return None
    owners = {identity.customer_id for identity in known.values()}
    if len(owners) != 1:
        return None
    customer = next(iter(known.values())).customer
    if display_name and not customer.display_name:
        return None
    now = timezone.now()
    for ident in idents:
        identity = known[(ident.kind, ident.value)]
        fields = identity_touch_fields(identity=identity, ident=ident, channel_kind=channel_kind, now=now)
        if fields:
            # One statement, atomic by itself: no savepoint needed around it.
            _identity_touch(pk=identity.pk, fields=fields)
    return Resolution(customer=customer)


def _resolve(
    *,
    workspace: Workspace,
    idents: list[Identifier],
    known: dict[tuple[str, str], Identity] | None,
    channel_kind: str,
    display_name: str,
    source: str,
    event_ref: str,
    actor: AbstractBaseUser | None,
) -> Resolution:
    now = timezone.now()
    if known is None:
        known = _lookup(workspace, idents, lock=len(idents) > 1)
    customers: dict[int, Customer] = {}
    for ident in idents:
        identity = known.get((ident.kind, ident.value))
        if identity is not None:
            customers.setdefault(identity.customer_id, identity.customer)

    resolution: Resolution
    if not customers:
        customer = Customer.objects.create(workspace=workspace, display_name=display_name[:200])
        resolution = Resolution(customer=customer, created=True)
        events.publish_on_commit(
            events.DomainEvent(
                name=events.CUSTOMER_CREATED,
                workspace_id=workspace.pk,
                customer_id=customer.pk,
                data={"source": source, "channel_kind": channel_kind},
            )
        )
    else:
        first = next(known[(i.kind, i.value)] for i in idents if (i.kind, i.value) in known)
        primary = first.customer
        resolution = Resolution(customer=primary)
        others = [c for pk, c in customers.items() if pk != primary.pk]
        if others:
            resolution = _reconcile(
                workspace=workspace,
                idents=idents,
                known=known,
                primary=primary,
                others=others,
                source=source,
                event_ref=event_ref,
                actor=actor,
            )
        if display_name and not resolution.customer.display_name:
            resolution.customer.display_name = display_name[:200]
            resolution.customer.save(update_fields=["display_name", "updated_at"])

    owner = resolution.customer
    # Identifiers owned by a customer the event did not merge with stay where they are (after a merge
    # the survivor owns them all).
    kept_apart = (
        set()
        if resolution.merges
        else {key for key, identity in known.items() if identity.customer_id != owner.pk}
    )
    for ident in idents:
        key = (ident.kind, ident.value)
        if key in kept_apart:
            continue
        if key in known:
            fields = identity_touch_fields(
                identity=known[key], ident=ident, channel_kind=channel_kind, now=now
            )
            if fields:
                _identity_touch(pk=known[key].pk, fields=fields)
        else:
            resolution.linked.append(
                Identity.objects.create(
                    workspace=workspace,
                    customer=owner,
                    kind=ident.kind,
                    value=ident.value,
                    verified=ident.verified,
                    first_channel=channel_kind,
                    first_seen_at=now,
                    last_channel=channel_kind,
                    last_seen_at=now,
                )
            )
    return resolution


def _reconcile(
    *,
    workspace: Workspace,
    idents: list[Identifier],
    known: dict[tuple[str, str], Identity],
    primary: Customer,
    others: list[Customer],
    source: str,
    event_ref: str,
    actor: AbstractBaseUser | None,
) -> Resolution:
    policy = policy_for(workspace=workspace)
    involved = [primary, *others]
    links: dict[int, list[Identifier]] = {c.pk: [] for c in involved}
    for ident in idents:
        identity = known.get((ident.kind, ident.value))
        if identity is not None:
            links[identity.customer_id].append(ident)
    # The event links customers when everything tying it to each of them is verified.
    all_verified = all(i.verified for c in involved for i in links[c.pk])
    if policy.auto_merge_verified and all_verified:
        survivor = min(involved, key=lambda c: (c.created_at, c.pk))
        resolution = Resolution(customer=survivor)
        for other in involved:
            if other.pk == survivor.pk:
                continue
            linking = links[other.pk][0]
            resolution.merges.append(
                customer_merge(
                    workspace=workspace,
                    survivor=survivor,
                    merged=other,
                    source=source,
                    linking=linking,
                    event_ref=event_ref,
                    evidence={
                        "identifiers": [
                            {"kind": i.kind, "value": i.value, "verified": i.verified} for i in idents
                        ],
                        "rule": "every linking identifier verified",
                    },
                    actor=actor,
                )
            )
        survivor.refresh_from_db()
        return resolution
    resolution = Resolution(customer=primary)
    for other in others:
        suggestion = suggestion_record(
            workspace=workspace,
            a=primary,
            b=other,
            reason="shared_event",
            score=SUGGESTION_SCORE_UNVERIFIED_LINK,
            evidence={
                "event_ref": event_ref,
                "source": source,
                "identifiers": {
                    str(c.pk): [
                        {"kind": i.kind, "value": i.value, "verified": i.verified} for i in links[c.pk]
                    ]
                    for c in (primary, other)
                },
                "why_not_merged": (
                    "automatic merges are off"
                    if not policy.auto_merge_verified
                    else "an identifier is unverified"
                ),
            },
        )
        if suggestion is not None:
            resolution.suggestions.append(suggestion)
    return resolution


def customer_resolve_inbound(
    *,
    workspace: Workspace,
    channel_kind: str,
    sender: Identifier,
    extra_identifiers: list[Identifier] | None = None,
    display_name: str = "",
    event_ref: str = "",
) -> Resolution:
    """Resolution for an inbound message: the sender first (verified on channels that prove it), then
    any identifiers the adapter found in the event (an email a chat visitor typed, a CRM id)."""
    verified = sender.verified or channel_kind in SENDER_VERIFIED_CHANNELS
    return customer_resolve_identifiers(
        workspace=workspace,
        identifiers=[replace(sender, verified=verified), *(extra_identifiers or [])],
        channel_kind=channel_kind,
        display_name=display_name,
        source=MergeSource.AUTO,
        event_ref=event_ref,
    )
