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
from .journeys import (
    AgentTask,
    Enrollment,
    EnrollmentState,
    Journey,
    JourneySegmentMember,
    JourneyStatus,
    JourneyStepRun,
    JourneyVersion,
    ReentryPolicy,
    StepOutcome,
)
from .outbox import OutboxEvent
from .segments import Segment, SegmentKind, SegmentMember
from .tenancy import ApiKey, CustomerReadMarker, IdempotencyRecord, Membership, Role, Workspace
from .webhooks import DeliveryState, DisabledReason, WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "AgentTask",
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
    "CustomerReadMarker",
    "DeliveryState",
    "DisabledReason",
    "Enrollment",
    "EnrollmentState",
    "IdempotencyRecord",
    "Interaction",
    "InteractionStatus",
    "Journey",
    "JourneySegmentMember",
    "JourneyStatus",
    "JourneyStepRun",
    "JourneyVersion",
    "Membership",
    "OutboxEvent",
    "RecipientState",
    "ReentryPolicy",
    "Role",
    "RunState",
    "Segment",
    "SegmentKind",
    "SegmentMember",
    "StepOutcome",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Workspace",
]
