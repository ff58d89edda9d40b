"""The sandbox provider: behaves like a real one with no network.

It accepts every message, returns a provider id, and reports delivery a moment later through the same
status path a real provider's callback takes (a normalized status event into the inbound service).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings

from ..base import OutboundMessage, OutboundSender, SendResult
from ..registry import register


@register
class SandboxSender(OutboundSender):
    provider = "sandbox"
    channel_kinds = ("sms", "email", "voice", "webchat")

    def build_payload(self, message: OutboundMessage) -> dict[str, Any]:
        return {"to": message.to, "body": message.body}

    def post_to_provider(self, message: OutboundMessage, payload: dict[str, Any]) -> Any:
        from channels_outbound.tasks import sandbox_report_delivery

        sid = "SB" + secrets.token_hex(16)
        sandbox_report_delivery.apply_async(
            args=(message.channel.pk, sid, message.interaction_id), countdown=settings.SANDBOX_DELIVERY_DELAY
        )
        return {"sid": sid}

    def parse_result(self, response: Any) -> SendResult:
        return SendResult(accepted=True, provider_message_id=response["sid"], status="sent")
