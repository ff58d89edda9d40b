"""Calls and MMS on the console timeline: ``{% call_details i %}``, ``{% sms_media i %}`` and the
click-to-call button ``{% click_to_call conversation %}``."""

from __future__ import annotations

from typing import Any

from django import template

from engagement.models import Conversation, Interaction, Membership
from engagement.models.conversations import Direction
from engagement.services.calls import call_channel_for, call_duration_label

register = template.Library()

PLAYABLE_AUDIO = frozenset({"audio/mpeg", "audio/wav", "audio/x-wav"})


@register.filter
def call_duration(seconds: int | None) -> str:
    """38 → "0:38", 3725 → "1:02:05"; None → ""."""
    return "" if seconds is None else call_duration_label(seconds)


@register.inclusion_tag("console/_call.html")
def call_details(interaction: Interaction) -> dict[str, Any]:
    """Outcome, duration, who answered, the recording (playable once downloaded) and the transcript."""
    attachments = list(interaction.attachments.all())
    return {
        "i": interaction,
        "outcome": interaction.get_call_outcome_display() if interaction.call_outcome else "",
        "recordings": [a for a in attachments if a.file and a.content_type in PLAYABLE_AUDIO],
        "pending": [a for a in attachments if not a.file],
        "inbound": interaction.direction == Direction.INBOUND,
    }


@register.inclusion_tag("console/_sms_media.html")
def sms_media(interaction: Interaction) -> dict[str, Any]:
    """MMS pictures inline (served by the workspace-only attachment view), other media as links."""
    attachments = list(interaction.attachments.all())
    return {
        "images": [a for a in attachments if a.file and a.content_type.startswith("image/")],
        "files": [a for a in attachments if a.file and not a.content_type.startswith("image/")],
        "pending": [a for a in attachments if not a.file],
        "outbound_urls": interaction.metadata.get("media_urls") or [],
    }


@register.inclusion_tag("console/_click_to_call.html", takes_context=True)
def click_to_call(context: template.Context, conversation: Conversation) -> dict[str, Any]:
    """A "Call" button when the workspace has a voice line; disabled until the agent has a phone."""
    # The console resolved the agent's membership of this workspace already (request.membership).
    membership: Membership | None = getattr(context.get("request"), "membership", None)
    has_phone = bool(
        membership is not None and membership.workspace_id == conversation.workspace_id and membership.phone
    )
    return {
        "conversation": conversation,
        "voice": call_channel_for(workspace_id=conversation.workspace_id),
        "has_phone": has_phone,
        "csrf_token": context.get("csrf_token"),
    }
