"""SMS opt-out/opt-in/help keywords (shared/PROTOCOLS.md section E).

Only a message that is exactly one keyword counts (trimmed, case-insensitive): "STOP" opts out, "STOP
PLEASE" does not. The message itself stays on the timeline like any other. Each keyword message gets
exactly one reply (idempotency key ``keyword:<interaction id>``) unless the channel's provider answers
keywords itself (``Channel.config["provider_handles_keywords"]``, e.g. a Twilio long code with the
default opt-out handling), in which case we record the consent change and stay silent.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING

from .consent import SendPurpose, consent_record
from .models import ConsentChannel, ConsentSource, ConsentStatus

if TYPE_CHECKING:
    from engagement.models import Interaction

logger = logging.getLogger(__name__)


class Keyword(enum.StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(
        ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"], Keyword.OPT_OUT
    ),
    **dict.fromkeys(["START", "UNSTOP", "YES"], Keyword.OPT_IN),
    **dict.fromkeys(["HELP", "INFO"], Keyword.HELP),
}

OPT_OUT_REPLY = "{name}: you are unsubscribed and will receive no more messages. Reply START to resubscribe."
OPT_IN_REPLY = "{name}: you are subscribed again. Reply STOP to unsubscribe, HELP for help."
HELP_REPLY_DEFAULT = "{name}: reply STOP to unsubscribe."


def keyword_classify(body: str) -> Keyword | None:
    """The keyword ``body`` consists of, or None."""
    return KEYWORDS.get(body.strip().upper())


def sms_keyword_handle(*, interaction: Interaction) -> Keyword | None:
    """Apply an inbound SMS that is a keyword: record the consent change and queue the one reply.

    Runs inside ``interaction_record_inbound``'s transaction, after the interaction is stored; the reply
    is queued there too and sent after commit. Returns the keyword handled, or None.
    """
    from engagement.services.messaging import SendRejected, message_send

    channel = interaction.channel
    if channel is None or channel.kind != "sms" or interaction.direction != "inbound":
        return None
    keyword = keyword_classify(interaction.body)
    if keyword is None:
        return None
    workspace = channel.workspace
    evidence = {
        "interaction_id": interaction.pk,
        "channel_id": channel.pk,
        "provider_message_id": interaction.provider_message_id,
        "body": interaction.body.strip(),
    }
    if keyword == Keyword.HELP:
        reply = workspace.help_text.strip() or HELP_REPLY_DEFAULT.format(name=workspace.name)
    else:
        opted_out = keyword == Keyword.OPT_OUT
        consent_record(
            customer=interaction.customer,
            channel=ConsentChannel.SMS,
            status=ConsentStatus.OPTED_OUT if opted_out else ConsentStatus.OPTED_IN,
            source=ConsentSource.SMS_KEYWORD,
            evidence=evidence,
            occurred_at=interaction.created_at,
            address=interaction.customer_address,
        )
        reply = (OPT_OUT_REPLY if opted_out else OPT_IN_REPLY).format(name=workspace.name)
    if channel.config.get("provider_handles_keywords"):
        return keyword
    try:
        message_send(
            workspace=workspace,
            channel=channel,
            customer=interaction.customer,
            conversation=interaction.conversation,
            body=reply,
            to_address=interaction.customer_address or None,
            idempotency_key=f"keyword:{interaction.pk}",
            purpose=SendPurpose.COMPLIANCE,
        )
    except SendRejected:
        logger.warning("could not reply to keyword message %s", interaction.pk, exc_info=True)
    return keyword
