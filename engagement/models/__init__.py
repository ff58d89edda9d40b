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
from .insights import (
    BusinessHours,
    ConversationResolution,
    CsatResponse,
    CsatSource,
    SlaBreach,
    SlaMetric,
    SlaPolicy,
)
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
from .teamwork import CannedResponse, Label, Note, Team
from .tenancy import ApiKey, CustomerReadMarker, IdempotencyRecord, Membership, Role, Workspace
from .webhooks import DeliveryState, DisabledReason, WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "AgentTask",
    "ApiKey",
    "Attachment",
    "AutomationRule",
    "BusinessHours",
    "Campaign",
    "CampaignRecipient",
    "CampaignRun",
    "CampaignSettings",
    "CampaignState",
    "CannedResponse",
    "Channel",
    "ChannelKind",
    "Conversation",
    "ConversationResolution",
    "CsatResponse",
    "CsatSource",
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
    "Label",
    "Membership",
    "Note",
    "OutboxEvent",
    "RecipientState",
    "ReentryPolicy",
    "Role",
    "RunState",
    "Segment",
    "SegmentKind",
    "SegmentMember",
    "SlaBreach",
    "SlaMetric",
    "SlaPolicy",
    "StepOutcome",
    "Team",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Workspace",
]
