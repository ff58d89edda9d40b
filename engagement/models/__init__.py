from .attachments import Attachment
from .automation import AutomationRule
from .channels import Channel, ChannelKind
from .conversations import Conversation, Interaction, InteractionStatus
from .tenancy import ApiKey, Membership, Role, Workspace
from .webhooks import DeliveryState, DisabledReason, WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "Attachment",
    "AutomationRule",
    "Channel",
    "ChannelKind",
    "Conversation",
    "DeliveryState",
    "DisabledReason",
    "Interaction",
    "InteractionStatus",
    "Membership",
    "Role",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Workspace",
]
