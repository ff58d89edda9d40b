"""Merging two customers into one, explaining it, and undoing it exactly.

Rules a merge follows (stated once, here):

* Everything the merged-away customer owns moves to the survivor: identities, conversations,
  interactions (the timeline) and consent events (the ledger; the derived state is the latest row, so
  the newest change on either side wins).
* Profile: the survivor's values win. A merged-away attribute, time zone, preferred channel or name
  only fills what the survivor lacks; every conflicting attribute is listed in the merge record with
  the value kept and the value dropped. Tags are the union.
* The merged-away row stays as a tombstone (``merged_into``) so its id still answers with a pointer.

Undo puts back exactly what the record says moved, plus anything that arrived since the merge for an
identity that goes back (an inbound message from the merged-away phone lands with that phone's owner).
Merges undo in reverse order along a chain: a survivor that has itself been merged away since must
be split off first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from engagement import events
from engagement.errors import Conflict
from engagement.models import Conversation, Interaction, Workspace
from engagement.models.channels import CHANNEL_IDENTITY_KIND

from .identifiers import Identifier
from .lookup import customer_resolve_current_or_none
from .models import (
    ConsentEvent,
    Customer,
    CustomerEvent,
    CustomerMerge,
    Identity,
    MergeSuggestion,
    SuggestionStatus,
)

CUSTOMER_MERGED = "customer.merged"
CUSTOMER_UNMERGED = "customer.unmerged"
PROFILE_FIELDS = ("display_name", "timezone", "preferred_channel")


class MergeRejected(Conflict, ValueError):
    """The merge or undo cannot happen as asked (same customer, already merged, wrong order...)."""

    code = "merge_rejected"


@dataclass(frozen=True)
class MergePreview:
    """What a merge of ``merged_id`` into ``survivor_id`` would move, computed without writing."""

    survivor_id: int
    merged_id: int
    identities: list[dict[str, Any]]
    conversation_ids: list[int]
    interaction_count: int
    consent_event_count: int
    tags_added: list[str]
    attributes_filled: dict[str, Any]
    attribute_conflicts: dict[str, dict[str, Any]]
    profile_filled: dict[str, str]
    result: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def customer_current(*, workspace: Workspace, customer_id: int) -> Customer | None:
    """The customer ``customer_id`` now lives on: itself, or the survivor its merges point to; None
    when there is no such customer in ``workspace``. The one lookup is
    :func:`customers.lookup.customer_resolve_current` (one query); this is its Optional form."""
    return customer_resolve_current_or_none(workspace_id=workspace.pk, customer_id=customer_id)


def _profile_plan(survivor: Customer, merged: Customer) -> dict[str, Any]:
    filled = {k: v for k, v in merged.attributes.items() if k not in survivor.attributes}
    conflicts = {
        k: {"kept": survivor.attributes[k], "dropped": v}
        for k, v in merged.attributes.items()
        if k in survivor.attributes and survivor.attributes[k] != v
    }
    tags_added = [t for t in merged.tags if t not in survivor.tags]
    profile_filled = {
        name: getattr(merged, name)
        for name in PROFILE_FIELDS
        if not getattr(survivor, name) and getattr(merged, name)
    }
    return {
        "attributes_filled": filled,
        "attribute_conflicts": conflicts,
        "tags_added": tags_added,
        "profile_filled": profile_filled,
    }


def _check_pair(survivor: Customer, merged: Customer, workspace: Workspace) -> None:
    if survivor.pk == merged.pk:
        raise MergeRejected("a customer cannot be merged into itself")
    for c in (survivor, merged):
        if c.workspace_id != workspace.pk:
            raise MergeRejected("both customers must belong to the workspace")
        if c.merged_into_id is not None:
            raise MergeRejected(f"customer {c.pk} was already merged into {c.merged_into_id}")
        if c.erased_at is not None:
            raise MergeRejected(f"customer {c.pk} was erased")


def customer_merge_preview(*, workspace: Workspace, survivor: Customer, merged: Customer) -> MergePreview:
    """What :func:`customer_merge` would move; raises MergeRejected when it would refuse."""
    _check_pair(survivor, merged, workspace)
    plan = _profile_plan(survivor, merged)
    identities: list[dict[str, Any]] = [
        dict(row)
        for row in Identity.objects.filter(workspace=workspace, customer=merged)
        .order_by("kind", "value")
        .values("id", "kind", "value", "verified")
    ]
    conversation_ids = list(
        Conversation.objects.filter(workspace=workspace, customer=merged)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return MergePreview(
        survivor_id=survivor.pk,
        merged_id=merged.pk,
        identities=identities,
        conversation_ids=conversation_ids,
        interaction_count=Interaction.objects.filter(workspace=workspace, customer=merged).count(),
        consent_event_count=ConsentEvent.objects.filter(workspace=workspace, customer=merged).count(),
        result={
            "display_name": survivor.display_name or merged.display_name,
            "tags": [*survivor.tags, *plan["tags_added"]],
            "attributes": {**plan["attributes_filled"], **survivor.attributes},
        },
        **plan,
    )


def _lock_pair(workspace: Workspace, a: int, b: int) -> dict[int, Customer]:
    """Lock both customer rows in primary-key order (so two merges of the same pair cannot deadlock)."""
    rows = Customer.objects.select_for_update().filter(workspace=workspace, pk__in=[a, b]).order_by("pk")
    locked = {c.pk: c for c in rows}
    if len(locked) != 2:
        raise MergeRejected("both customers must exist in the workspace")
    return locked


def _high_water(workspace: Workspace) -> dict[str, int]:
    def top(qs: Any) -> int:
        return int(qs.aggregate(m=Max("id"))["m"] or 0)

    return {
        "interaction": top(Interaction.objects.filter(workspace=workspace)),
        "conversation": top(Conversation.objects.filter(workspace=workspace)),
        "consent_event": top(ConsentEvent.objects.filter(workspace=workspace)),
    }


def customer_merge(
    *,
    workspace: Workspace,
    survivor: Customer,
    merged: Customer,
    source: str,
    linking: Identifier | None = None,
    event_ref: str = "",
    evidence: dict[str, Any] | None = None,
    actor: AbstractBaseUser | None = None,
) -> CustomerMerge:
    """Merge ``merged`` into ``survivor`` in one transaction and return the merge record.

    Precondition: both customers are live (not merged away, not erased) in ``workspace``. Both rows are
    locked for the duration. ``linking`` is the identifier that tied them (None for an agent's manual
    merge); ``event_ref`` names the event ("sms:<channel>:<message id>", "import:<id>:row:<n>"...).
    """
    with transaction.atomic():
        locked = _lock_pair(workspace, survivor.pk, merged.pk)
        s, m = locked[survivor.pk], locked[merged.pk]
        _check_pair(s, m, workspace)
        plan = _profile_plan(s, m)
        high_water = _high_water(workspace)
        identities = list(
            Identity.objects.filter(workspace=workspace, customer=m)
            .order_by("pk")
            .values("id", "kind", "value", "verified")
        )
        conversation_ids = list(
            Conversation.objects.filter(workspace=workspace, customer=m).values_list("pk", flat=True)
        )
        interaction_ids = list(
            Interaction.objects.filter(workspace=workspace, customer=m).values_list("pk", flat=True)
        )
        consent_ids = list(
            ConsentEvent.objects.filter(workspace=workspace, customer=m).values_list("pk", flat=True)
        )
        custom_event_ids = list(
            CustomerEvent.objects.filter(workspace=workspace, customer=m).values_list("pk", flat=True)
        )
        Identity.objects.filter(workspace=workspace, pk__in=[i["id"] for i in identities]).update(customer=s)
        Conversation.objects.filter(workspace=workspace, pk__in=conversation_ids).update(customer=s)
        Interaction.objects.filter(workspace=workspace, pk__in=interaction_ids).update(customer=s)
        ConsentEvent.objects.filter(workspace=workspace, pk__in=consent_ids).update(customer=s)
        CustomerEvent.objects.filter(workspace=workspace, pk__in=custom_event_ids).update(customer=s)

        snapshot = {
            "display_name": m.display_name,
            "attributes": m.attributes,
            "tags": m.tags,
            "timezone": m.timezone,
            "preferred_channel": m.preferred_channel,
        }
        s.attributes = {**plan["attributes_filled"], **s.attributes}
        s.tags = [*s.tags, *plan["tags_added"]]
        for name, value in plan["profile_filled"].items():
            setattr(s, name, value)
        s.save(update_fields=["attributes", "tags", *PROFILE_FIELDS, "updated_at"])
        now = timezone.now()
        m.merged_into = s
        m.merged_at = now
        m.save(update_fields=["merged_into", "merged_at", "updated_at"])

        record = CustomerMerge.objects.create(
            workspace=workspace,
            survivor=s,
            merged=m,
            source=source,
            linking_kind=linking.kind if linking else "",
            linking_value=linking.value if linking else "",
            event_ref=event_ref[:200],
            evidence=evidence or {},
            moved={
                "identities": identities,
                "conversations": sorted(conversation_ids),
                "interactions": sorted(interaction_ids),
                "consent_events": sorted(consent_ids),
                "custom_events": sorted(custom_event_ids),
                **plan,
                "merged_snapshot": snapshot,
            },
            high_water=high_water,
            actor=actor,  # type: ignore[misc]
            created_at=now,
        )
        low, high = sorted([s.pk, m.pk])
        MergeSuggestion.objects.filter(
            workspace=workspace, customer_a_id=low, customer_b_id=high, status=SuggestionStatus.PENDING
        ).update(status=SuggestionStatus.ACCEPTED, decided_at=now, decided_by=actor, merge=record)
        events.publish_on_commit(
            events.DomainEvent(
                name=CUSTOMER_MERGED,
                workspace_id=workspace.pk,
                customer_id=s.pk,
                data={"merge_id": record.pk, "merged_id": m.pk},
            )
        )
    return record


def _address_q(identities: list[tuple[str, str]]) -> Q:
    """Interactions whose customer address is one of ``identities`` on a channel of the matching kind."""
    q = Q(pk__in=[])
    for kind, value in identities:
        channel_kinds = [ck for ck, ik in CHANNEL_IDENTITY_KIND.items() if ik == kind]
        if channel_kinds:
            q |= Q(customer_address=value, channel__kind__in=channel_kinds)
    return q


def _rehome_strays(*, workspace: Workspace, owner: Customer, other: Customer) -> list[int]:
    """Interactions of ``owner`` filed in a conversation of ``other`` move to a conversation of ``owner``
    on the same channel (its newest unresolved one, or a new one). Returns the interactions moved."""
    strays = list(
        Interaction.objects.filter(workspace=workspace, customer=owner, conversation__customer=other)
        .select_related("channel")
        .order_by("created_at", "pk")
    )
    moved: list[int] = []
    for interaction in strays:
        if interaction.channel is None:
            Interaction.objects.filter(pk=interaction.pk).update(conversation=None)
        else:
            conversation, _ = Conversation.objects.find_or_open(
                customer=owner, channel=interaction.channel, at=interaction.created_at
            )
            Interaction.objects.filter(pk=interaction.pk).update(conversation=conversation)
        moved.append(interaction.pk)
    return moved


def customer_unmerge(
    *, workspace: Workspace, merge: CustomerMerge, actor: AbstractBaseUser | None = None
) -> CustomerMerge:
    """Split a merge back: what moved goes back, and what arrived since goes where its identity lives.

    Precondition: the merge is not undone and its survivor has not been merged away since (undo that
    later merge first). Owns its transaction; locks the merge record and both customers.
    """
    with transaction.atomic():
        record = CustomerMerge.objects.select_for_update().filter(workspace=workspace, pk=merge.pk).first()
        if record is None:
            raise MergeRejected("no such merge in this workspace")
        if record.undone_at is not None:
            raise MergeRejected("this merge was already undone")
        locked = _lock_pair(workspace, record.survivor_id, record.merged_id)
        s, m = locked[record.survivor_id], locked[record.merged_id]
        if s.merged_into_id is not None:
            raise MergeRejected(
                f"customer {s.pk} has since been merged into {s.merged_into_id}; undo that merge first"
            )
        if m.merged_into_id != s.pk:
            raise MergeRejected("the merged customer no longer points at the survivor")
        if s.erased_at is not None or m.erased_at is not None:
            raise MergeRejected("an erased customer cannot be split")
        moved, hw = record.moved, record.high_water

        identity_ids = [i["id"] for i in moved.get("identities", [])]
        back = list(
            Identity.objects.filter(workspace=workspace, customer=s, pk__in=identity_ids).values_list(
                "pk", "kind", "value"
            )
        )
        Identity.objects.filter(pk__in=[pk for pk, _, _ in back]).update(customer=m)
        restored = [(kind, value) for _, kind, value in back]

        conv_back = Conversation.objects.filter(
            workspace=workspace, customer=s, pk__in=moved.get("conversations", [])
        ).update(customer=m)
        int_back = Interaction.objects.filter(
            workspace=workspace, customer=s, pk__in=moved.get("interactions", [])
        ).update(customer=m)
        consent_back = ConsentEvent.objects.filter(
            workspace=workspace, customer=s, pk__in=moved.get("consent_events", [])
        ).update(customer=m)
        # Custom events carry no address: the ones that moved go back, later ones stay on the survivor.
        custom_events_back = CustomerEvent.objects.filter(
            workspace=workspace, customer=s, pk__in=moved.get("custom_events", [])
        ).update(customer=m)

        # Arrived since the merge for an identity that goes back.
        late_interactions: list[int] = []
        late_conversations: list[int] = []
        late_consents: list[int] = []
        if restored:
            late_interactions = list(
                Interaction.objects.filter(workspace=workspace, customer=s, pk__gt=hw.get("interaction", 0))
                .filter(_address_q(restored))
                .values_list("pk", flat=True)
            )
            Interaction.objects.filter(pk__in=late_interactions).update(customer=m)
            for conv_id in Conversation.objects.filter(
                workspace=workspace, customer=s, pk__gt=hw.get("conversation", 0)
            ).values_list("pk", flat=True):
                owners = set(
                    Interaction.objects.filter(conversation_id=conv_id).values_list("customer_id", flat=True)
                )
                if owners == {m.pk}:
                    late_conversations.append(conv_id)
            Conversation.objects.filter(pk__in=late_conversations).update(customer=m)
            late_consents = list(
                ConsentEvent.objects.filter(
                    workspace=workspace,
                    customer=s,
                    pk__gt=hw.get("consent_event", 0),
                    address__in=[value for _, value in restored],
                ).values_list("pk", flat=True)
            )
            ConsentEvent.objects.filter(pk__in=late_consents).update(customer=m)
        rehomed = _rehome_strays(workspace=workspace, owner=m, other=s)
        rehomed += _rehome_strays(workspace=workspace, owner=s, other=m)

        # Profile: the merged-away side gets its snapshot back; the survivor loses what the merge
        # filled in, unless it has been changed since.
        snapshot = moved.get("merged_snapshot", {})
        for name in ("display_name", "attributes", "tags", "timezone", "preferred_channel"):
            if name in snapshot:
                setattr(m, name, snapshot[name])
        attributes = dict(s.attributes)
        for key, value in moved.get("attributes_filled", {}).items():
            if attributes.get(key) == value:
                attributes.pop(key)
        s.attributes = attributes
        added = set(moved.get("tags_added", []))
        s.tags = [t for t in s.tags if t not in added]
        for name, value in moved.get("profile_filled", {}).items():
            if getattr(s, name) == value:
                setattr(s, name, "")
        s.save(update_fields=["attributes", "tags", *PROFILE_FIELDS, "updated_at"])
        m.merged_into = None
        m.merged_at = None
        m.save(
            update_fields=["merged_into", "merged_at", "attributes", "tags", *PROFILE_FIELDS, "updated_at"]
        )

        record.undone_at = timezone.now()
        record.undone_by = actor  # type: ignore[assignment]
        record.undo_moved = {
            "identities": [pk for pk, _, _ in back],
            "conversations": conv_back,
            "interactions": int_back,
            "consent_events": consent_back,
            "custom_events": custom_events_back,
            "late_interactions": late_interactions,
            "late_conversations": late_conversations,
            "late_consent_events": late_consents,
            "rehomed_interactions": rehomed,
        }
        record.save(update_fields=["undone_at", "undone_by", "undo_moved"])
        events.publish_on_commit(
            events.DomainEvent(
                name=CUSTOMER_UNMERGED,
                workspace_id=workspace.pk,
                customer_id=s.pk,
                data={"merge_id": record.pk, "merged_id": m.pk},
            )
        )
    return record


def merge_list_for_customer(*, workspace: Workspace, customer: Customer) -> list[CustomerMerge]:
    """Every merge the customer took part in, newest first."""
    return list(
        CustomerMerge.objects.filter(workspace=workspace)
        .filter(Q(survivor=customer) | Q(merged=customer))
        .select_related("actor", "undone_by")
        .order_by("-created_at", "-pk")
    )
