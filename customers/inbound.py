"""What the customer view does with every inbound interaction once the timeline has recorded it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .keywords import KeywordDecision, sms_keyword_decide

if TYPE_CHECKING:
    from engagement.models import Interaction


def customer_inbound_recorded(*, interaction: Interaction) -> KeywordDecision | None:
    """Called by ``interaction_record_inbound`` inside its transaction, after the interaction is stored.

    Decides SMS keywords (STOP/START/HELP... in any of their forms) and records the consent change they
    make; returns the decision, whose ``reply`` the caller sends (None when it is no SMS). Sends
    nothing itself. (The sender's identity was already marked verified by ``customer_resolve_inbound``.)
    """
    if interaction.channel is None:
        return None
    return sms_keyword_decide(interaction=interaction)
