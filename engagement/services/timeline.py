"""The unified timeline: recording inbound interactions and moving delivery status forward."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.consent import SendPurpose
from customers.inbound import customer_inbound_recorded
from customers.keywords import keyword_match
from customers.lookup import customer_follow_merges
from customers.models import Customer
from customers.resolution import customer_resolve_inbound
from customers.services import Identifier, identifier_normalize
from engagement import events
from engagement.models import Channel, Interaction, InteractionStatus
from engagement.models.conversations import Direction, InteractionKind

from .conversations import conversation_find_or_open, conversation_touch
from .email_threading import (
    AttachmentLike,
    ThreadHintsLike,
    email_conversation_find_or_open,
    email_text_split,
    interaction_attachments_store,
)
from .messaging import SendRejected, message_send

logger = logging.getLogger(__name__)

S = InteractionStatus
# Status only moves up this ladder. Terminal outcomes share the top rank so a late one never overwrites
# another; "read" may still follow "delivered".
STATUS_RANK: dict[str, int] = {
    S.QUEUED: 0,
    S.SENDING: 1,
    S.SENT: 2,
    S.DELIVERED: 3,
    S.UNDELIVERED: 3,
    S.FAILED: 3,
    S.BLOCKED: 3,
    S.READ: 4,
    S.RECEIVED: 0,
}


def status_is_forward(current: str, new: str) -> bool:
    if current == new:
        return False
    if current in (S.FAILED, S.UNDELIVERED, S.BLOCKED) and new == S.READ:
        return False
    return STATUS_RANK.get(new, -1) > STATUS_RANK.get(current, -1)


def interaction_record_inbound(
    *,
    channel: Channel,
    sender: Identifier,
    body: str,
    provider_message_id: str,
    occurred_at: datetime,
    sender_name: str = "",
    metadata: dict[str, Any] | None = None,
    subject: str = "",
    thread: ThreadHintsLike | None = None,
    attachments: Sequence[AttachmentLike] = (),
    is_auto_reply: bool = False,
    known_new: bool = False,
    segments: int | None = None,
) -> tuple[Interaction, bool]:
    """Resolve the sender to a customer, find or open their conversation and append the message.

    Idempotent on ``(channel, provider_message_id)``: a repeat returns the first interaction and
    ``created=False`` and publishes nothing. Owns its transaction; events go out after commit.
    With ``thread`` (email) the conversation follows the mail's reply address and references instead.
    Auto-replies and bounces are recorded but publish no ``message.received``, so no automation runs.
    ``known_new``: the caller has just claimed this provider id under its own unique constraint (event
    ingestion does), so the repeat check and its savepoints are skipped; a clash then raises.
    On SMS, a keyword (STOP/START/HELP in any form, ``customers/keywords.py``) records its consent
    change and gets its one reply, queued here with the idempotency key ``keyword:<interaction id>``; an
    opt-out word inside a sentence is flagged in ``metadata["possible_revocation"]`` for an agent.
    """
    # Nested in the caller's transaction there is no savepoint of our own: a failure rolls back the
    # caller's, which owns the retry.
    with transaction.atomic(savepoint=False):
        if not known_new:
            existing = Interaction.objects.filter(
                channel=channel, provider_message_id=provider_message_id
            ).first()
            if existing is not None:
                return existing, False
        sender = identifier_normalize(sender, workspace=channel.workspace)
        preview = body
        if thread is not None:
            customer, conversation, opened = email_conversation_find_or_open(
                channel=channel,
                sender=sender,
                sender_name=sender_name,
                thread=thread,
                subject=subject,
                is_auto_reply=is_auto_reply,
                at=occurred_at,
            )
            preview = email_text_split(body)[0] or subject
        else:
            # The sender is verified on channels whose delivery proves the address (SMS, voice,
            # webchat); the identity row is written only when that or its last-seen time changes.
            customer = customer_resolve_inbound(
                workspace=channel.workspace,
                channel_kind=channel.kind,
                sender=sender,
                display_name=sender_name,
            ).customer
            conversation, opened = conversation_find_or_open(
                customer=customer, channel=channel, at=occurred_at
            )
        metadata = dict(metadata or {})
        if channel.kind == "sms":
            match = keyword_match(body)
            if match.possible_revocation:
                # Not an opt-out, but an agent should look (FCC 24-24: revocation by any reasonable
                # means); flagged in the INSERT itself, so it costs no statement.
                metadata["possible_revocation"] = {"term": match.term}
        new = Interaction(
            workspace_id=channel.workspace_id,
            customer=customer,
            conversation=conversation,
            channel=channel,
            kind=InteractionKind.MESSAGE,
            direction=Direction.INBOUND,
            body=body,
            customer_address=sender.value,
            status=S.RECEIVED,
            status_changed_at=occurred_at,
            provider_message_id=provider_message_id,
            email_message_id=thread.message_id if thread is not None else "",
            metadata=metadata,
            segments=segments,
            created_at=occurred_at,
        )
        if known_new:
            new.save(force_insert=True)
        else:
            try:
                with transaction.atomic():
                    new.save(force_insert=True)
            except IntegrityError:
                return Interaction.objects.get(
                    channel=channel, provider_message_id=provider_message_id
                ), False
        interaction = new
        if attachments:
            interaction_attachments_store(interaction=interaction, attachments=attachments)
        conversation_touch(conversation=conversation, at=occurred_at, preview=preview, reopen=True)
        decision = customer_inbound_recorded(interaction=interaction)  # SMS STOP/START/HELP
        if decision is not None and decision.reply:
            _keyword_reply_send(interaction=interaction, reply=decision.reply)
        names = [events.CONVERSATION_OPENED, events.MESSAGE_RECEIVED] if opened else [events.MESSAGE_RECEIVED]
        if is_auto_reply:
            names = [events.INTERACTION_UPDATED]
        events.publish_on_commit(
            *(
                events.DomainEvent(
                    name=name,
                    workspace_id=channel.workspace_id,
                    interaction_id=interaction.pk,
                    conversation_id=conversation.pk,
                    customer_id=customer.pk,
                    data={"channel_kind": channel.kind},
                )
                for name in names
            )
        )
    return interaction, True


def interaction_follow_merges(*, interaction: Interaction) -> Customer:
    """The live customer of ``interaction``; an interaction still on a merged-away customer moves to
    the survivor first.

    A merge moves every interaction it sees, but one written concurrently with it (a queued send, a
    message whose customer was read before the merge committed) can be left on the tombstone, where
    no timeline shows it and no consent applies. Precondition: ``interaction.customer`` was read in the
    caller's transaction (``select_related``); no query unless it was merged away.
    """
    customer = interaction.customer
    if customer.merged_into_id is None:
        return customer
    survivor = customer_follow_merges(customer=customer)
    Interaction.objects.filter(pk=interaction.pk).update(customer=survivor)
    interaction.customer = survivor
    return survivor


def _keyword_reply_send(*, interaction: Interaction, reply: str) -> None:
    """Queue the one reply a keyword gets (purpose "compliance": consent never blocks it). The key
    ``keyword:<interaction id>`` makes a repeat of the same inbound message send nothing more."""
    channel = interaction.channel
    assert channel is not None, "keywords are decided for channel messages only"
    try:
        message_send(
            workspace=channel.workspace,
            channel=channel,
            customer=interaction.customer,
            conversation=interaction.conversation,
            body=reply,
            to_address=interaction.customer_address or None,
            idempotency_key=f"keyword:{interaction.pk}",
            purpose=SendPurpose.COMPLIANCE,
        )
    except SendRejected:
        logger.warning("could not reply to keyword message %s", interaction.pk, exc_info=True)


def interaction_apply_status(
    *,
    channel: Channel,
    status: str,
    provider_message_id: str = "",
    interaction_id: int | None = None,
    error_code: str = "",
    error_message: str = "",
    occurred_at: datetime | None = None,
) -> Interaction | None:
    """Move an outbound interaction's status forward; never backwards, repeats change nothing.

    The interaction is found by our id when the provider echoes it, else by the provider's message id,
    always within ``channel`` (so one workspace's callback cannot touch another's messages).
    Returns the interaction, or None when it is unknown.
    """
    with transaction.atomic():
        qs = (
            Interaction.objects.select_for_update(of=("self",))
            .select_related("customer")
            .filter(channel=channel, direction=Direction.OUTBOUND)
        )
        interaction = None
        if interaction_id is not None:
            interaction = qs.filter(pk=interaction_id).first()
        if interaction is None and provider_message_id:
            interaction = qs.filter(provider_message_id=provider_message_id).first()
        if interaction is None:
            logger.warning(
                "status %s for unknown message %s on channel %s", status, provider_message_id, channel.pk
            )
            return None
        # The callback carries our interaction id; its customer may have been merged away since.
        interaction_follow_merges(interaction=interaction)
        if not status_is_forward(interaction.status, status):
            return interaction
        interaction.status = status
        interaction.status_changed_at = occurred_at or timezone.now()
        update = ["status", "status_changed_at"]
        if provider_message_id and not interaction.provider_message_id:
            interaction.provider_message_id = provider_message_id
            update.append("provider_message_id")
        if error_code or error_message:
            interaction.error_code, interaction.error_message = error_code[:32], error_message[:500]
            update += ["error_code", "error_message"]
        interaction.save(update_fields=update)
        events.publish_on_commit(
            events.DomainEvent(
                name=events.INTERACTION_UPDATED,
                workspace_id=interaction.workspace_id,
                interaction_id=interaction.pk,
                conversation_id=interaction.conversation_id,
                customer_id=interaction.customer_id,
                data={"status": status},
            )
        )
    return interaction
