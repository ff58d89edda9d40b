"""Webchat: "sending" is a push through the Redis channel layer to the visitor's open widgets.

Delivered live when the visitor has a widget open (reported ``delivered`` through the inbound status
path at once); otherwise the message stays ``sent`` and the widget shows it, and reports it delivered,
from its history on the visitor's next visit.
"""

from __future__ import annotations

from typing import Any

from channels_inbound.webchat.services import (
    visitor_is_online,
    webchat_delivery_report,
    webchat_message_payload,
    webchat_push_now,
)
from engagement.models import Interaction

from ..base import OutboundMessage, OutboundSender, SendResult
from ..registry import register


@register
class WebchatSender(OutboundSender):
    provider = "webchat"
    channel_kinds = ("webchat",)

    def build_payload(self, message: OutboundMessage) -> dict[str, Any]:
        interaction = (
            Interaction.objects.select_related("author", "channel", "workspace")
            .prefetch_related("attachments")
            .get(pk=message.interaction_id, channel=message.channel)
        )
        return {"type": "webchat.message", "message": webchat_message_payload(interaction=interaction)}

    def post_to_provider(self, message: OutboundMessage, payload: dict[str, Any]) -> Any:
        channel = message.channel
        online = visitor_is_online(channel_id=channel.pk, visitor_id=message.to)
        webchat_push_now(channel_id=channel.pk, visitor_id=message.to, message=payload)
        if online:
            webchat_delivery_report(channel=channel, interaction_ids=[message.interaction_id])
        return {"id": f"wc-out-{message.interaction_id}", "live": online}

    def parse_result(self, response: Any) -> SendResult:
        return SendResult(
            accepted=True,
            provider_message_id=response["id"],
            status="delivered" if response["live"] else "sent",
            raw={"live": response["live"]},
        )
