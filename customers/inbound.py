"""What the customer view does with every inbound interaction once the timeline has recorded it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .keywords import Keyword, sms_keyword_handle

if TYPE_CHECKING:
    from engagement.models import Interaction


def customer_inbound_recorded(*, interaction: Interaction) -> Keyword | None:
    """Called by ``interaction_record_inbound`` inside its transaction, after the interaction is stored.

    Applies SMS keywords (STOP/START/HELP...). Returns the keyword handled, or None. (The sender's
    identity was already marked verified by ``customer_resolve_inbound``.)
    """
    if interaction.channel is None:
        return None
    return sms_keyword_handle(interaction=interaction)
