"""Sending: the one service every outbound path uses (agent reply, automation, API)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.consent import SendPurpose, consent_check_send
from customers.lookup import CustomerNotFound, customer_resolve_current
from customers.models import Customer
from customers.services import (
    Identifier,
    InvalidIdentifier,
    customer_primary_address,
    customer_reply_refusal,
    customer_resolve,
    identifier_normalize,
)
from engagement import events
from engagement.errors import Rejected
from engagement.models import AutomationRule, Channel, Conversation, Interaction, InteractionStatus, Workspace
from engagement.models.channels import CHANNEL_IDENTITY_KIND
from engagement.models.conversations import Direction, InteractionKind

from .conversations import conversation_find_or_open, conversation_touch

MAX_MEDIA_URLS = 10  # Twilio error 21623
MAX_BODY = {"sms": 1600}


AUTOMATED_ANSWER_LIMIT_REASON = "automated_answer_limit"


class SendRejected(Rejected):
    """The message cannot be queued as asked (no address, wrong workspace, empty body...)."""

    code = "send_rejected"
    status = 400


def automated_answers_per_hour(*, channel: Channel) -> int:
    """The channel's cap on automated answers per customer and hour: config
    ``automated_answers_per_hour`` (a whole number >= 0), else settings ``AUTOMATED_ANSWERS_PER_HOUR``."""
    configured = channel.config.get("automated_answers_per_hour")
    if isinstance(configured, int) and not isinstance(configured, bool) and configured >= 0:
        return configured
    return int(settings.AUTOMATED_ANSWERS_PER_HOUR)


def automated_answer_refusal(*, customer: Customer, channel: Channel, at: datetime) -> str:
    """Why one more automated answer to ``customer`` on ``channel`` may not go out, or "".

    Counts the automation-rule answers (not blocked ones) of the hour before ``at``. The caller holds
    the customer's row lock, so two concurrent automations cannot both take the last slot. The cap
    stops reply loops with another side's auto-responder that does not honour ``Auto-Submitted``
    (RFC 3834 section 2: a responder must limit how often it answers one address).
    """
    limit = automated_answers_per_hour(channel=channel)
    sent = (
        Interaction.objects.filter(
            workspace_id=channel.workspace_id,
            customer=customer,
            channel=channel,
            direction=Direction.OUTBOUND,
            automation_rule__isnull=False,
            created_at__gt=at - timedelta(hours=1),
        )
        .exclude(status=InteractionStatus.BLOCKED)
        .count()
    )
    if sent < limit:
        return ""
    return (
        f"automated answer not sent: this customer already got {sent} on {channel.name} in the last hour "
        f"(limit {limit} an hour)"
    )


class RecipientUnreachable(SendRejected, Rejected):
    """The customer is known only by a sender that cannot receive messages on this channel (an
    alphanumeric sender ID, a short code from a long-code number, a withheld caller): refused before
    anything is recorded or sent, with the reason (customers.identifiers.reply_refusal)."""

    code = "recipient_unreachable"
    title = "The recipient cannot receive messages on this channel"


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
    "html"}}``; ``test``: a test send). An automation rule's answer (``automation_rule``) is also held to
    :func:`automated_answer_refusal`'s hourly cap. A send consent or the cap forbids is not dropped: it
    is recorded on the timeline as a ``blocked`` interaction with the reason, and nothing goes to the
    provider.
    """
    if purpose not in SendPurpose.values:
        raise SendRejected(f"unknown purpose {purpose!r}")
    if channel.workspace_id != workspace.pk or customer.workspace_id != workspace.pk:
        raise SendRejected("channel and customer must belong to the workspace")
    # The row is read again, following merges: the caller's copy may predate a merge (a campaign that
    # loaded its audience a while ago, a task racing an agent), and a merged-away customer lives on in
    # the survivor, whose consent and addresses count. One query (customers.lookup).
    asked_for = customer.pk
    try:
        customer = customer_resolve_current(workspace_id=workspace.pk, customer_id=customer.pk)
    except CustomerNotFound as exc:
        raise SendRejected("customer no longer exists") from exc
    if customer.erased_at is not None:
        raise SendRejected("customer was erased")
    if conversation is not None and conversation.customer_id != customer.pk:
        if conversation.customer_id != asked_for:
            raise SendRejected("conversation belongs to another customer")
        # The conversation of the merged-away customer: the merge moved it to the survivor (then it is
        # read again), or it was opened after the merge's snapshot and stays behind (then a
        # conversation of the survivor's is used).
        conversation = Conversation.objects.filter(pk=conversation.pk, customer=customer).first()
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
            if identity_kind != "phone":
                raise SendRejected(str(exc)) from exc
            # Not a phone number: a short code or sender ID the customer wrote from, perhaps.
            other = _non_phone_address(channel=channel, customer=customer, to_address=to_address)
            if other is None:
                raise SendRejected(str(exc)) from exc
            address = other
    else:
        found = customer_primary_address(customer=customer, kind=identity_kind)
        if found is None and identity_kind == "phone":
            found = _non_phone_address(channel=channel, customer=customer, to_address="")
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
        blocked_reason, blocked_code, blocked_detail = "", "", ""
        if not decision.allowed:
            blocked_reason, blocked_code = decision.reason, f"consent:{decision.reason}"
            blocked_detail = decision.detail
        elif automation_rule is not None:
            Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk").first()
            blocked_detail = automated_answer_refusal(customer=customer, channel=channel, at=now)
            if blocked_detail:
                blocked_reason = blocked_code = AUTOMATED_ANSWER_LIMIT_REASON
        stored: dict[str, object] = {**(metadata or {}), "purpose": purpose}
        if media_urls:
            stored["media_urls"] = list(media_urls)
        outcome: dict[str, object]
        if not blocked_reason:
            outcome = {"status": InteractionStatus.QUEUED, "next_attempt_at": now}
        else:
            # Not dropped: on the timeline as "blocked" with the reason; never handed to a provider.
            stored["blocked_reason"] = blocked_reason
            outcome = {
                "status": InteractionStatus.BLOCKED,
                "error_code": blocked_code[:32],
                "error_message": blocked_detail[:500],
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
        published: list[events.DomainEvent] = []
        if not blocked_reason:
            conversation_touch(conversation=conversation, at=now, preview=body, reopen=False)
            published.append(
                events.DomainEvent(
                    name=events.OUTBOUND_QUEUED,
                    workspace_id=workspace.pk,
                    interaction_id=interaction.pk,
                    conversation_id=conversation.pk,
                    customer_id=customer.pk,
                    # Campaign sends take the bulk lane; replies to a customer never wait behind them.
                    data={"lane": events.LANE_BULK} if (metadata or {}).get("campaign_run_id") else {},
                )
            )
        events.publish_on_commit(
            *published,
            events.DomainEvent(
                name=events.INTERACTION_UPDATED,
                workspace_id=workspace.pk,
                interaction_id=interaction.pk,
                conversation_id=conversation.pk,
                customer_id=customer.pk,
                data={
                    "status": interaction.status,
                    **({"blocked_reason": blocked_reason} if blocked_reason else {}),
                },
            ),
        )
    return interaction, True


def _non_phone_address(*, channel: Channel, customer: Customer, to_address: str) -> str | None:
    """A phone channel's address for a customer without a usable phone number: a short code when the
    channel is one too; RecipientUnreachable when their sender cannot receive (with why)."""
    address, reason = customer_reply_refusal(
        workspace_id=channel.workspace_id,
        customer=customer,
        channel_kind=channel.kind,
        channel_address=channel.address,
        to_address=to_address,
    )
    if reason:
        raise RecipientUnreachable(reason, field="to_address" if to_address else "")
    return address or None


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
            if CHANNEL_IDENTITY_KIND[channel.kind] == "phone":
                _, reason = customer_reply_refusal(
                    workspace_id=workspace.pk,
                    customer=None,
                    channel_kind=channel.kind,
                    channel_address=channel.address,
                    to_address=to_address,
                )
                if reason:
                    raise RecipientUnreachable(reason, field="to_address") from exc
            raise SendRejected(str(exc)) from exc
        return message_send(
            workspace=workspace,
            channel=channel,
            customer=customer,
            body=body,
            to_address=to_address,
            **options,
        )
