from .attachments import Attachment
from .automation import AutomationRule
from .channels import Channel, ChannelKind
from .conversations import Conversation, Interaction, InteractionStatus
from .tenancy import ApiKey, IdempotencyRecord, Membership, Role, Workspace

__all__ = [
    "ApiKey",
    "Attachment",
    "AutomationRule",
    "Channel",
    "ChannelKind",
    "Conversation",
    "IdempotencyRecord",
    "Interaction",
    "InteractionStatus",
    "Membership",
    "Role",
    "Workspace",
]
