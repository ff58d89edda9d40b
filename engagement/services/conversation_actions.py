"""What an agent does to a conversation from the console: resolve it, reopen it."""

from __future__ import annotations

from engagement.errors import Rejected
from engagement.models import Conversation, Workspace
from engagement.models.conversations import ConversationStatus

# Pushed to the workspace's consoles so their inboxes refresh. Not an automation trigger.


class ConversationActionRejected(Rejected):
    """The change cannot be made (unknown status, conversation of another workspace)."""

    code = "conversation_action_rejected"
    status = 400


def conversation_status_set(*, workspace: Workspace, conversation: Conversation, status: str) -> bool:
    """Set the conversation's status. Returns whether anything changed; a repeat changes nothing.
    (``engagement.services.teamwork.conversations_status_set`` for several, and snooze times.)"""
    from .teamwork import conversations_status_set

    if conversation.workspace_id != workspace.pk:
        raise ConversationActionRejected("conversation belongs to another workspace")
    if status not in ConversationStatus.values:
        raise ConversationActionRejected(f"unknown status {status!r}")
    return bool(conversations_status_set(workspace=workspace, conversations=[conversation], status=status))
