from .attachments import Attachment
from .automation import AutomationRule
from .campaigns import (
    Campaign,
    CampaignRecipient,
    CampaignRun,
    CampaignSettings,
    CampaignState,
    RecipientState,
    RunState,
)
from .channels import Channel, ChannelKind
from .conversations import Conversation, Interaction, InteractionStatus
from .segments import Segment, SegmentKind, SegmentMember
from .tenancy import ApiKey, Membership, Role, Workspace

__all__ = [
    "ApiKey",
    "Attachment",
    "AutomationRule",
    "Campaign",
    "CampaignRecipient",
    "CampaignRun",
    "CampaignSettings",
    "CampaignState",
    "Channel",
    "ChannelKind",
    "Conversation",
    "Interaction",
    "InteractionStatus",
    "Membership",
    "RecipientState",
    "Role",
    "RunState",
    "Segment",
    "SegmentKind",
    "SegmentMember",
    "Workspace",
]
