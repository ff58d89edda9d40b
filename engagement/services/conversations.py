"""Conversations: the unit of work agents handle."""

from __future__ import annotations

from datetime import datetime

from customers.models import Customer
from engagement.models import Channel, Conversation
from engagement.models.conversations import ConversationStatus


def conversation_find_or_open(
    *, customer: Customer, channel: Channel, at: datetime
) -> tuple[Conversation, bool]:
    """The customer's newest unresolved conversation on ``channel``, or a new open one.

    Locks the conversation row so concurrent messages for the same customer serialise on it.
    """
    return Conversation.objects.find_or_open(customer=customer, channel=channel, at=at)


def conversation_open(
    *, customer: Customer, channel: Channel, at: datetime, subject: str = ""
) -> Conversation:
    """A new open conversation, whatever else the customer has open (email threads are separate)."""
    return Conversation.objects.create(
        workspace_id=customer.workspace_id,
        customer=customer,
        channel=channel,
        subject=subject[:300],
        last_activity_at=at,
    )


def conversation_touch(*, conversation: Conversation, at: datetime, preview: str, reopen: bool) -> None:
    """Move the conversation to the top of the inbox; an inbound message reopens it."""
    fields = {"last_message_preview": preview[:200]}
    if at >= conversation.last_activity_at:
        fields["last_activity_at"] = at  # type: ignore[assignment]
    if reopen and conversation.status != ConversationStatus.OPEN:
        # A pending or snoozed conversation wakes up on the customer's message (snooze "until reply").
        fields["status"] = ConversationStatus.OPEN
        fields["snoozed_until"] = None  # type: ignore[assignment]
    Conversation.objects.filter(pk=conversation.pk).update(**fields)
    for name, value in fields.items():
        setattr(conversation, name, value)
