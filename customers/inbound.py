"""What the customer view does with every inbound interaction once the timeline has recorded it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engagement.models.channels import CHANNEL_IDENTITY_KIND

from .keywords import Keyword, sms_keyword_handle
from .models import Identity
from .resolution import SENDER_VERIFIED_CHANNELS

if TYPE_CHECKING:
    from engagement.models import Interaction


def customer_inbound_recorded(*, interaction: Interaction) -> Keyword | None:
    """Called by ``interaction_record_inbound`` inside its transaction, after the interaction is stored.

    Marks the sender's identity verified on channels whose delivery proves the address, and applies SMS
    keywords (STOP/START/HELP...). Returns the keyword handled, or None.
    """
    channel = interaction.channel
    if channel is None:
        return None
    if channel.kind in SENDER_VERIFIED_CHANNELS and interaction.customer_address:
        Identity.objects.filter(
            workspace_id=interaction.workspace_id,
            customer_id=interaction.customer_id,
            kind=CHANNEL_IDENTITY_KIND[channel.kind],
            value=interaction.customer_address,
            verified=False,
        ).update(verified=True)
    return sms_keyword_handle(interaction=interaction)
