"""GDPR: export everything held about a customer; erase a customer's personal data, keeping counts.

Erasure removes the person, not the fact that conversations happened: identities are deleted (so the
next message from that address starts a new customer), the profile is emptied, message bodies, subjects,
previews, addresses and metadata are blanked, attachments and stored provider payloads are deleted,
consent and merge evidence and custom event properties are scrubbed. Rows, their statuses and timestamps
stay, so reports still count them. The audit row (CustomerErasure) holds only ids and counts. Customers
merged into the erased one (tombstones holding a snapshot of their profile) are erased with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import apps
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from engagement import events
from engagement.models import Attachment, Conversation, Interaction, Workspace

from .consent import consent_summary
from .models import (
    ConsentEvent,
    Customer,
    CustomerErasure,
    CustomerEvent,
    CustomerMerge,
    Identity,
    MergeSuggestion,
)

EXPORT_FORMAT = "engagement.customer-export/1"


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None and hasattr(value, "isoformat") else value


def customer_export(*, workspace: Workspace, customer: Customer) -> dict[str, Any]:
    """Everything held about ``customer`` as JSON-ready data: profile, identities, consent (state and
    ledger), conversations, the timeline and merge records. Merged-away customers are included."""
    ids = [customer.pk, *_tombstones(workspace, customer)]
    identities = Identity.objects.filter(workspace=workspace, customer_id__in=ids).order_by("kind", "value")
    consents = ConsentEvent.objects.filter(workspace=workspace, customer_id__in=ids).order_by("id")
    conversations = Conversation.objects.filter(workspace=workspace, customer_id__in=ids).select_related(
        "channel"
    )
    interactions = (
        Interaction.objects.filter(workspace=workspace, customer_id__in=ids)
        .select_related("channel")
        .order_by("created_at", "id")
    )
    merges = CustomerMerge.objects.filter(workspace=workspace).filter(
        Q(survivor_id__in=ids) | Q(merged_id__in=ids)
    )
    custom_events = CustomerEvent.objects.filter(workspace=workspace, customer_id__in=ids).order_by(
        "occurred_at", "id"
    )
    return {
        "format": EXPORT_FORMAT,
        "exported_at": timezone.now().isoformat(),
        "workspace": {"id": workspace.pk, "name": workspace.name},
        "customer": {
            "id": customer.pk,
            "display_name": customer.display_name,
            "attributes": customer.attributes,
            "tags": customer.tags,
            "timezone": customer.timezone,
            "preferred_channel": customer.preferred_channel,
            "created_at": _iso(customer.created_at),
            "erased_at": _iso(customer.erased_at),
            "merged_customer_ids": ids[1:],
        },
        "identities": [
            {
                "kind": i.kind,
                "value": i.value,
                "verified": i.verified,
                "first_channel": i.first_channel,
                "first_seen_at": _iso(i.first_seen_at),
                "last_channel": i.last_channel,
                "last_seen_at": _iso(i.last_seen_at),
            }
            for i in identities
        ],
        "consent": {
            "state": consent_summary(customer=customer),
            "history": [
                {
                    "channel": c.channel,
                    "purpose": c.purpose or "*",
                    "status": c.status,
                    "source": c.source,
                    "address": c.address,
                    "evidence": c.evidence,
                    "occurred_at": _iso(c.occurred_at),
                    "recorded_at": _iso(c.created_at),
                }
                for c in consents
            ],
        },
        "conversations": [
            {
                "id": c.pk,
                "channel": c.channel.kind,
                "status": c.status,
                "subject": c.subject,
                "created_at": _iso(c.created_at),
                "last_activity_at": _iso(c.last_activity_at),
            }
            for c in conversations
        ],
        "timeline": [
            {
                "id": i.pk,
                "conversation_id": i.conversation_id,
                "channel": i.channel.kind if i.channel else None,
                "kind": i.kind,
                "direction": i.direction,
                "status": i.status,
                "body": i.body,
                "customer_address": i.customer_address,
                "created_at": _iso(i.created_at),
                "metadata": i.metadata,
            }
            for i in interactions
        ],
        "custom_events": [
            {
                "name": e.name,
                "properties": e.properties,
                "occurred_at": _iso(e.occurred_at),
                "event_id": e.event_id,
            }
            for e in custom_events
        ],
        "merges": [
            {
                "id": m.pk,
                "survivor_id": m.survivor_id,
                "merged_id": m.merged_id,
                "source": m.source,
                "linking": {"kind": m.linking_kind, "value": m.linking_value},
                "event_ref": m.event_ref,
                "created_at": _iso(m.created_at),
                "undone_at": _iso(m.undone_at),
            }
            for m in merges
        ],
    }


def _tombstones(workspace: Workspace, customer: Customer) -> list[int]:
    """Every customer merged (directly or along a chain) into ``customer`` and not split off."""
    found: list[int] = []
    frontier = [customer.pk]
    while frontier:
        frontier = list(
            Customer.objects.filter(workspace=workspace, merged_into_id__in=frontier).values_list(
                "pk", flat=True
            )
        )
        found.extend(frontier)
    return found


def customer_erase(
    *,
    workspace: Workspace,
    customer: Customer,
    actor: AbstractBaseUser | None = None,
    via: str = "api",
    reason: str = "",
) -> CustomerErasure:
    """Erase the customer's personal data (module docstring) and write the audit row.

    Precondition: ``customer`` is live (not merged away; erase the survivor instead). Owns its
    transaction and locks the customer rows. Erasing twice records a second audit row and changes nothing.
    """
    with transaction.atomic():
        locked = Customer.objects.select_for_update().filter(workspace=workspace, pk=customer.pk).first()
        if locked is None:
            raise ValueError("no such customer in this workspace")
        if locked.merged_into_id is not None:
            raise ValueError(f"customer {locked.pk} was merged into {locked.merged_into_id}; erase that one")
        ids = [locked.pk, *_tombstones(workspace, locked)]
        list(Customer.objects.select_for_update().filter(pk__in=ids))
        interactions = Interaction.objects.filter(workspace=workspace, customer_id__in=ids)
        message_refs = list(
            interactions.exclude(provider_message_id="").values_list("channel_id", "provider_message_id")
        )
        attachments = Attachment.objects.filter(workspace=workspace, interaction__customer_id__in=ids)
        for attachment in attachments:
            attachment.file.delete(save=False)
        counts = {
            "customers": len(ids),
            "identities": Identity.objects.filter(workspace=workspace, customer_id__in=ids).delete()[0],
            "interactions": interactions.update(body="", customer_address="", metadata={}, error_message=""),
            "attachments": attachments.delete()[0],
            "conversations": Conversation.objects.filter(workspace=workspace, customer_id__in=ids).update(
                subject="", last_message_preview=""
            ),
            "custom_events": CustomerEvent.objects.filter(workspace=workspace, customer_id__in=ids).update(
                properties={}
            ),
            "consent_events": ConsentEvent.objects.filter(workspace=workspace, customer_id__in=ids).update(
                evidence={}, address=""
            ),
            "merges": CustomerMerge.objects.filter(workspace=workspace)
            .filter(Q(survivor_id__in=ids) | Q(merged_id__in=ids))
            .update(linking_value="", evidence={}, moved={}, undo_moved={}),
            "merge_suggestions": MergeSuggestion.objects.filter(workspace=workspace)
            .filter(Q(customer_a_id__in=ids) | Q(customer_b_id__in=ids))
            .delete()[0],
            "provider_events": _provider_payloads_scrub(workspace, message_refs),
        }
        now = timezone.now()
        Customer.objects.filter(pk__in=ids).update(
            display_name="",
            attributes={},
            tags=[],
            timezone="",
            preferred_channel="",
            erased_at=now,
            updated_at=now,
        )
        erasure = CustomerErasure.objects.create(
            workspace=workspace,
            customer=locked,
            actor=actor,  # type: ignore[misc]
            via=via,
            reason=reason[:200],
            counts=counts,
        )
        events.publish_on_commit(
            events.DomainEvent(
                name=events.CUSTOMER_ERASED,
                workspace_id=workspace.pk,
                customer_id=locked.pk,
                data={"erasure_id": erasure.pk},
            )
        )
        return erasure


def _provider_payloads_scrub(workspace: Workspace, refs: Sequence[tuple[int | None, str]]) -> int:
    """Blank the stored raw webhook payloads of the customer's messages (they hold bodies and numbers)."""
    if not refs:
        return 0
    provider_event = apps.get_model("channels_inbound", "ProviderEvent")
    q = Q(pk__in=[])
    for channel_id, message_id in refs:
        if channel_id is not None:
            q |= Q(channel_id=channel_id, provider_event_id=message_id)
    return int(provider_event.objects.filter(workspace_id=workspace.pk).filter(q).update(payload={}))
