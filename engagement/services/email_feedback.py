"""What recipients did with a message beyond delivery: opens, clicks, and opt-outs (spam reports,
unsubscribes, hard bounces) that a provider reports. Provider-neutral; SendGrid's Event Webhook feeds it."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from customers.consent import consent_record, consent_state
from customers.lookup import customer_follow_merges
from customers.models import Customer
from engagement import events
from engagement.models import Channel, Interaction
from engagement.models.conversations import Direction

from .timeline import interaction_follow_merges

logger = logging.getLogger(__name__)

MAX_CLICKED_URLS = 50


def _outbound_locked(
    *, channel: Channel, interaction_id: int | None, provider_message_id: str
) -> Interaction | None:
    qs = (
        Interaction.objects.select_for_update(of=("self",))
        .select_related("customer")
        .filter(channel=channel, direction=Direction.OUTBOUND)
    )
    found = qs.filter(pk=interaction_id).first() if interaction_id is not None else None
    if found is None and provider_message_id:
        found = qs.filter(provider_message_id=provider_message_id).first()
    return found


def interaction_record_feedback(
    *,
    channel: Channel,
    occurred_at: datetime,
    provider_message_id: str = "",
    interaction_id: int | None = None,
    engagement: str = "",
    engagement_details: dict[str, Any] | None = None,
    opt_out_source: str = "",
    opt_out_purpose: str = "",
    evidence: dict[str, Any] | None = None,
) -> Interaction | None:
    """Count an open or click on the outbound interaction, and record an opt-out in the consent ledger.

    Precondition: the provider event was deduplicated (ProviderEvent), so each call is a new fact.
    The interaction is looked up within ``channel`` only. Returns it, or None when it is unknown.
    """
    with transaction.atomic():
        interaction = _outbound_locked(
            channel=channel, interaction_id=interaction_id, provider_message_id=provider_message_id
        )
        if interaction is None:
            logger.warning("feedback %s for unknown message %s on channel %s", engagement or opt_out_source,
                           provider_message_id, channel.pk)  # fmt: skip
            return None
        if engagement in ("open", "click"):
            stats: dict[str, Any] = dict(interaction.metadata.get("engagement") or {})
            at = occurred_at.isoformat()
            key = "opens" if engagement == "open" else "clicks"
            stats[key] = int(stats.get(key, 0)) + 1
            stats.setdefault(f"first_{key}_at", at)
            stats[f"last_{key}_at"] = at
            url = (engagement_details or {}).get("url")
            if engagement == "click" and url:
                urls = dict(stats.get("clicked_urls") or {})
                if url in urls or len(urls) < MAX_CLICKED_URLS:
                    urls[url] = int(urls.get(url, 0)) + 1
                stats["clicked_urls"] = urls
            interaction.metadata = {**interaction.metadata, "engagement": stats}
            interaction.save(update_fields=["metadata"])
        # The customer the message went to may have been merged away since: the ledger and the event
        # follow the merge to the survivor.
        customer = interaction_follow_merges(interaction=interaction)
        if opt_out_source:
            consent_record(
                customer=customer,
                channel=channel.kind,
                status="opted_out",
                source=opt_out_source,
                purpose=opt_out_purpose,
                evidence={**(evidence or {}), "interaction_id": interaction.pk},
                # The provider's clock is evidence; a time ahead of ours is not an error of the customer's.
                occurred_at=min(occurred_at, timezone.now()),
            )
        events.publish_on_commit(
            events.DomainEvent(
                name=events.INTERACTION_UPDATED,
                workspace_id=interaction.workspace_id,
                interaction_id=interaction.pk,
                conversation_id=interaction.conversation_id,
                customer_id=customer.pk,
                data={"engagement": engagement, "opt_out": opt_out_source},
            )
        )
    return interaction


def email_unsubscribe_record(
    *, customer: Customer, channel: Channel, interaction_id: int, method: str
) -> bool:
    """Opt the customer out of marketing email (one-click unsubscribe, RFC 8058). Returns False when they
    already were, and then records nothing: mailbox providers repeat the POST.

    Precondition: ``customer`` and ``channel`` belong to the same workspace (the caller checked the
    signed token). Owns its transaction; the customer row is locked so concurrent POSTs record one row.
    A merged-away ``customer`` is opted out on its survivor.
    """
    with transaction.atomic():
        customer = customer_follow_merges(customer=customer)
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        if consent_state(customer=customer, channel="email", purpose="marketing") == "opted_out":
            return False
        consent_record(
            customer=customer,
            channel="email",
            status="opted_out",
            source="unsubscribe_link",
            purpose="marketing",
            evidence={"interaction_id": interaction_id, "channel_id": channel.pk, "method": method},
        )
    return True
