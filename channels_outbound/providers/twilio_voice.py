"""Twilio Programmable Voice through the official ``twilio`` SDK (Calls API, PROTOCOLS.md F).

Two kinds of outbound call, both one queued call interaction on a voice channel:

- an automated voice message: call the customer and ``<Say>`` the interaction's text;
- click-to-call (``connect_via`` = the agent's phone): call the agent first, then ``<Dial>`` the
  customer, whose leg reports its own status (``?leg=customer``) so we know if the customer answered.

Every call reports initiated/ringing/answered/completed to the interaction's status callback URL.
"""

from __future__ import annotations

from typing import Any

from twilio.twiml.voice_response import Dial, VoiceResponse

from engagement.models import Channel
from engagement.services.calls import call_flow_for

from ..base import OutboundMessage, OutboundSender, SendResult
from ..registry import register
from .twilio_sms import twilio_client, twilio_error_result

STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]
CALL_TIMEOUT_SECONDS = 30


def _voice(channel: Channel) -> dict[str, str]:
    flow = call_flow_for(channel=channel)
    return {"voice": flow.voice, "language": flow.language}


@register
class TwilioVoiceSender(OutboundSender):
    provider = "twilio"
    channel_kinds = ("voice",)

    def build_payload(self, message: OutboundMessage) -> dict[str, Any]:
        response = VoiceResponse()
        voice = _voice(message.channel)
        if message.connect_via:
            response.say("Connecting your call.", **voice)
            dial = Dial(
                caller_id=message.channel.address, timeout=CALL_TIMEOUT_SECONDS, answer_on_bridge=True
            )
            separator = "&" if "?" in message.status_callback_url else "?"
            dial.number(
                message.to,
                status_callback=f"{message.status_callback_url}{separator}leg=customer",
                status_callback_event=" ".join(STATUS_EVENTS),
                status_callback_method="POST",
            )
            response.append(dial)
            to = message.connect_via
        else:
            response.say(message.body, **voice)
            to = message.to
        return {
            "to": to,
            "from_": message.channel.address,
            "twiml": str(response),
            "status_callback": message.status_callback_url,
            "status_callback_event": STATUS_EVENTS,
            "status_callback_method": "POST",
            "timeout": CALL_TIMEOUT_SECONDS,
        }

    def post_to_provider(self, message: OutboundMessage, payload: dict[str, Any]) -> Any:
        return twilio_client(message.channel.config).calls.create(**payload)

    def parse_result(self, response: Any) -> SendResult:
        return SendResult(
            accepted=True, provider_message_id=response.sid, status="sent", raw={"status": response.status}
        )

    def classify_error(self, exc: Exception) -> SendResult | None:
        return twilio_error_result(exc, opt_out_codes=set())  # 21610 is a messaging opt-out
