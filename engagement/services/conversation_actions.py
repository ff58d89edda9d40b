"""What an agent does to a conversation from the console: resolve it, reopen it."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from engagement import events
from engagement.errors import Rejected
from engagement.models import Conversation, Workspace
from engagement.models.conversations import ConversationStatus

from .csat import conversation_resolution_record

# Pushed to the workspace's consoles so their inboxes refresh. Not an automation trigger.


class ConversationActionRejected(Rejected):
    """The change cannot be made (unknown status, conversation of another workspace)."""

    code = "conversation_action_rejected"
    status = 400


def conversation_status_set(
    *, workspace: Workspace, conversation: Conversation, status: str, actor: AbstractBaseUser | None = None
) -> bool:
    """Set the conversation's status. Returns whether anything changed; a repeat changes nothing.
    Resolving records a ``ConversationResolution`` (and sends the CSAT survey when switched on:
    ``engagement.services.csat``); ``actor`` is who resolved it."""
    if conversation.workspace_id != workspace.pk:
        raise ConversationActionRejected("conversation belongs to another workspace")
    if status not in ConversationStatus.values:
        raise ConversationActionRejected(f"unknown status {status!r}")
    with transaction.atomic():
        changed = (
            Conversation.objects.filter(pk=conversation.pk, workspace=workspace)
            .exclude(status=status)
            .update(status=status)
        )
        conversation.status = status
        if changed and status == ConversationStatus.RESOLVED:
            conversation_resolution_record(workspace=workspace, conversation=conversation, resolved_by=actor)
        if changed:
            events.publish_on_commit(
                events.DomainEvent(
                    name=events.CONVERSATION_UPDATED,
                    workspace_id=workspace.pk,
                    conversation_id=conversation.pk,
                    customer_id=conversation.customer_id,
                    data={"status": status},
                )
            )
    return bool(changed)
