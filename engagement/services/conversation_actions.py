"""What an agent does to a conversation from the console: resolve it, reopen it."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from engagement.errors import Rejected
from engagement.models import Conversation, Workspace
from engagement.models.conversations import ConversationStatus

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
    ``engagement.services.csat``); ``actor`` is who resolved it.
    (``engagement.services.teamwork.conversations_status_set`` for several, and snooze times.)"""
    from .teamwork import conversations_status_set

    if conversation.workspace_id != workspace.pk:
        raise ConversationActionRejected("conversation belongs to another workspace")
    if status not in ConversationStatus.values:
        raise ConversationActionRejected(f"unknown status {status!r}")
    changed = conversations_status_set(
        workspace=workspace, conversations=[conversation], status=status, actor=actor
    )
    return bool(changed)
