"""Sending: the one service every outbound path uses (agent reply, automation, API)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.consent import SendPurpose, consent_check_send
from customers.merging import customer_current
from customers.models import Customer
from customers.services import (
    Identifier,
    InvalidIdentifier,
    customer_primary_address,
    customer_resolve,
    identifier_normalize,
)
from engagement import events
from engagement.models import AutomationRule, Channel, Conversation, Interaction, InteractionStatus, Workspace
from engagement.models.channels import CHANNEL_IDENTITY_KIND
from engagement.models.conversations import Direction, InteractionKind

from .conversations import conversation_find_or_open, conversation_touch

MAX_MEDIA_URLS = 10  # Twilio error 21623
MAX_BODY = {"sms": 1600}


class SendRejected(ValueError):
    """The message cannot be queued as asked (no address, wrong workspace, empty body...)."""


def message_send(
    *,
    workspace: Workspace,
    channel: Channel,
    customer: Customer,
    body: str,
    to_address: str | None = None,
    conversation: Conversation | None = None,
    author: AbstractBaseUser | None = None,
    automation_rule: AutomationRule | None = None,
    idempotency_key: str | None = None,
    purpose: str = SendPurpose.TRANSACTIONAL,
    media_urls: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> tuple[Interaction, bool]:
    """Queue an outbound message on ``channel`` to ``customer`` and send it after commit.

    On SMS, ``media_urls`` (public URLs, at most 10) make it an MMS. On a voice channel the message
    is a call that speaks ``body`` (an interaction of kind "call").

    Returns ``(interaction, created)``. With ``idempotency_key`` a repeat returns the first interaction
    and sends nothing more. The provider call happens in a Celery task once the transaction commits.

    Every outbound path comes through here, so this is where consent is enforced
    (``customers.consent.consent_check_send``): ``purpose`` is "transactional" (agent replies,
    automations, API unless stated), "marketing" (campaigns; needs an opt-in) or "compliance" (keyword
    confirmations, never blocked). ``metadata`` is stored on the interaction beside ``purpose``
    (campaigns: ``campaign_id``, ``campaign_name``, ``campaign_run_id``; email: ``{"email": {"subject",
    "html"}}``; ``test``: a test send). A send consent forbids is not dropped: it is recorded on the timeline
    as a ``blocked`` interaction with the reason, and nothing goes to the provider.
    """
    if purpose not in SendPurpose.values:
        raise SendRejected(f"unknown purpose {purpose!r}")
    if channel.workspace_id != workspace.pk or customer.workspace_id != workspace.pk:
        raise SendRejected("channel and customer must belong to the workspace")
    if customer.merged_into_id is not None:
        # A merged-away customer lives on in the survivor: send there.
        survivor = customer_current(workspace=workspace, customer_id=customer.pk)
        if survivor is None:
            raise SendRejected("customer no longer exists")
        customer = survivor
    if customer.erased_at is not None:
        raise SendRejected("customer was erased")
    if conversation is not None and conversation.customer_id != customer.pk:
        raise SendRejected("conversation belongs to another customer")
    if not channel.is_active:
        raise SendRejected(f"channel {channel.name!r} is not active")
    body = body.strip()
    if not body:
        raise SendRejected("body must not be empty")
    limit = MAX_BODY.get(channel.kind)
    if limit and len(body) > limit:
        raise SendRejected(f"body is {len(body)} characters; {channel.kind} allows at most {limit}")
    if media_urls and channel.kind != "sms":
        raise SendRejected(f"{channel.kind} messages cannot carry media")
    if len(media_urls) > MAX_MEDIA_URLS:
        raise SendRejected(f"at most {MAX_MEDIA_URLS} media files per message")
    kind = InteractionKind.CALL if channel.kind == "voice" else InteractionKind.MESSAGE
    identity_kind = CHANNEL_IDENTITY_KIND[channel.kind]
    if to_address:
        try:
            address = identifier_normalize(Identifier(identity_kind, to_address), workspace=workspace).value
        except InvalidIdentifier as exc:
            raise SendRejected(str(exc)) from exc
    else:
        found = customer_primary_address(customer=customer, kind=identity_kind)
        if found is None:
            raise SendRejected(f"customer has no {identity_kind} to send {channel.kind} to")
        address = found

    with transaction.atomic():
        if idempotency_key:
            existing = Interaction.objects.filter(
                workspace=workspace, idempotency_key=idempotency_key
            ).first()
            if existing is not None:
                return existing, False
        now = timezone.now()
        if conversation is None:
            conversation, _ = conversation_find_or_open(customer=customer, channel=channel, at=now)
        decision = consent_check_send(customer=customer, channel_kind=channel.kind, purpose=purpose)
        stored: dict[str, object] = {**(metadata or {}), "purpose": purpose}
        if media_urls:
            stored["media_urls"] = list(media_urls)
        outcome: dict[str, object]
        if decision.allowed:
            outcome = {"status": InteractionStatus.QUEUED, "next_attempt_at": now}
        else:
            # Not dropped: on the timeline as "blocked" with the reason; never handed to a provider.
            stored["blocked_reason"] = decision.reason
            outcome = {
                "status": InteractionStatus.BLOCKED,
                "error_code": f"consent:{decision.reason}"[:32],
                "error_message": decision.detail[:500],
            }
        try:
            with transaction.atomic():
                interaction = Interaction.objects.create(
                    workspace=workspace,
                    customer=customer,
                    conversation=conversation,
                    channel=channel,
                    kind=kind,
                    direction=Direction.OUTBOUND,
                    body=body,
                    customer_address=address,
                    status_changed_at=now,
                    idempotency_key=idempotency_key,
                    author=author,  # type: ignore[misc]
                    automation_rule=automation_rule,
                    metadata=stored,
                    created_at=now,
                    **outcome,
                )
        except IntegrityError:
            if not idempotency_key:
                raise
            return Interaction.objects.get(workspace=workspace, idempotency_key=idempotency_key), False
        if decision.allowed:
            conversation_touch(conversation=conversation, at=now, preview=body, reopen=False)
            interaction_pk = interaction.pk

            def _enqueue() -> None:
                from channels_outbound.tasks import send_interaction

                send_interaction.delay(interaction_pk)

            transaction.on_commit(_enqueue)
        events.publish_on_commit(
            events.DomainEvent(
                name=events.INTERACTION_UPDATED,
                workspace_id=workspace.pk,
                interaction_id=interaction.pk,
                conversation_id=conversation.pk,
                customer_id=customer.pk,
                data={
                    "status": interaction.status,
                    **({"blocked_reason": decision.reason} if not decision.allowed else {}),
                },
            )
        )
    return interaction, True


def message_send_to_address(
    *, workspace: Workspace, channel: Channel, to_address: str, body: str, **options: Any
) -> tuple[Interaction, bool]:
    """Send to an address rather than a customer: whoever owns it gets the message, a new customer if
    nobody does. One transaction, so a send that is rejected leaves no new customer behind.
    ``options`` are :func:`message_send`'s."""
    with transaction.atomic():
        try:
            customer, _ = customer_resolve(
                workspace=workspace,
                identifier=Identifier(CHANNEL_IDENTITY_KIND[channel.kind], to_address),
                channel_kind=channel.kind,
            )
        except InvalidIdentifier as exc:
            raise SendRejected(str(exc)) from exc
        return message_send(
            workspace=workspace,
            channel=channel,
            customer=customer,
            body=body,
            to_address=to_address,
            **options,
        )
