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
        from channels_outbound.tasks import sandbox_report_call, sandbox_report_delivery

        if message.channel.kind == "voice":
            # A call: answered and over a moment later, reported like Twilio's call status callbacks.
            call_sid = "CASB" + secrets.token_hex(15)
            sandbox_report_call.apply_async(
                args=(message.channel.pk, call_sid, message.interaction_id, bool(message.connect_via)),
                countdown=settings.SANDBOX_DELIVERY_DELAY,
            )
            return {"sid": call_sid}
        sid = "SB" + secrets.token_hex(16)
        sandbox_report_delivery.apply_async(
            args=(message.channel.pk, sid, message.interaction_id), countdown=settings.SANDBOX_DELIVERY_DELAY
        )
        return {"sid": sid}

    def parse_result(self, response: Any) -> SendResult:
        return SendResult(accepted=True, provider_message_id=response["sid"], status="sent")
