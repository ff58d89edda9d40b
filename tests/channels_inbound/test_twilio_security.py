"""The shared webhook security cases (tests/channels_inbound/security.py) for every Twilio hook."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from django.utils import timezone

from customers.services import Identifier, customer_resolve
from engagement.models import Channel, Interaction
from tests import factories
from tests.channels_inbound.security import WebhookRequest, WebhookSecurityCases
from tests.conftest import load_payload
from tests.fakes.twilio_server import FakeTwilio, twilio_signature

CALLER = "+14155550199"
CALL_SID = "CA" + "5" * 32


class TwilioSecurity(WebhookSecurityCases):
    signature_header = "X-Twilio-Signature"
    kind = "sms"
    query = ""

    @pytest.fixture
    def security_channel(self, workspace, fake_twilio: FakeTwilio) -> Channel:
        return factories.twilio_channel(workspace, fake_twilio, kind=self.kind)

    def payload(self, channel: Channel) -> dict[str, str]:
        raise NotImplementedError

    def request(self, channel: Channel) -> WebhookRequest:
        return WebhookRequest(
            body=urlencode(self.payload(channel)).encode(),
            content_type="application/x-www-form-urlencoded",
            query=self.query,
        )

    def sign(self, channel: Channel, url: str, request: WebhookRequest) -> dict[str, str]:
        params = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
        return {"X-Twilio-Signature": twilio_signature(url, params, channel.config["auth_token"])}

    def other_channel(self, channel: Channel) -> Channel:
        return Channel.objects.create(
            workspace=factories.workspace_create(),
            kind=channel.kind,
            provider="twilio",
            name="theirs",
            address="+14155559999",
            config={**channel.config, "auth_token": "another-workspaces-token"},
        )


def _call(channel: Channel, sid: str = CALL_SID, direction: str = "inbound") -> Interaction:
    customer, _ = customer_resolve(workspace=channel.workspace, identifier=Identifier("phone", CALLER))
    now = timezone.now()
    return Interaction.objects.create(
        workspace=channel.workspace,
        customer=customer,
        channel=channel,
        kind="call",
        direction=direction,
        customer_address=CALLER,
        status="received",
        status_changed_at=now,
        provider_message_id=sid,
        created_at=now,
    )


class TestSmsInbound(TwilioSecurity):
    hook = "inbound"

    def payload(self, channel):
        return load_payload("twilio_inbound_sms.txt")


class TestMmsInbound(TwilioSecurity):
    hook = "inbound"

    def payload(self, channel):
        return load_payload("twilio_inbound_mms.json")


class TestSmsStatus(TwilioSecurity):
    hook = "status"

    def prepare(self, channel):
        interaction = _call(channel, sid="SM3eab196XXXXXXXXXXXXXeceaa93", direction="outbound")
        Interaction.objects.filter(pk=interaction.pk).update(kind="message", status="sent")

    def payload(self, channel):
        return load_payload("twilio_status_callback_sent_then_delivered.json")[1]


class TestVoice(TwilioSecurity):
    hook = "voice"
    kind = "voice"

    def payload(self, channel):
        return {**load_payload("twilio_inbound_voice_call.json")[0], "CallSid": CALL_SID, "From": CALLER}


class TestCallStatus(TwilioSecurity):
    hook = "call-status"
    kind = "voice"

    def prepare(self, channel):
        _call(channel)

    def payload(self, channel):
        return {
            "CallSid": CALL_SID,
            "CallStatus": "completed",
            "CallDuration": "12",
            "From": CALLER,
            "AccountSid": "AC1",
        }


class TestAgentLegStatus(TwilioSecurity):
    hook = "call-status"
    kind = "voice"
    query = "leg=agent"

    def prepare(self, channel):
        _call(channel)

    def payload(self, channel):
        return {
            "CallSid": "CA" + "6" * 32,
            "ParentCallSid": CALL_SID,
            "CallStatus": "in-progress",
            "To": "+14155550777",
        }


class TestRecording(TwilioSecurity):
    hook = "recording"
    kind = "voice"

    def prepare(self, channel):
        _call(channel)

    def payload(self, channel):
        return {
            "CallSid": CALL_SID,
            "RecordingSid": "RE" + "7" * 32,
            "RecordingUrl": f"{channel.config['api_base_url']}/2010-04-01/Accounts/AC1/Recordings/RE7",
            "RecordingStatus": "completed",
            "RecordingDuration": "9",
        }


class TestTranscription(TwilioSecurity):
    hook = "transcription"
    kind = "voice"

    def prepare(self, channel):
        _call(channel)

    def payload(self, channel):
        return {
            "CallSid": CALL_SID,
            "TranscriptionSid": "TR" + "8" * 32,
            "TranscriptionStatus": "completed",
            "TranscriptionText": "call me back",
        }


class TestVoicemailLeft(TwilioSecurity):
    hook = "voice-done"
    kind = "voice"

    def prepare(self, channel):
        _call(channel)

    def payload(self, channel):
        return {"CallSid": CALL_SID, "RecordingUrl": "https://api.twilio.com/x/RE9", "RecordingDuration": "9"}


class TestVoiceMenu(TwilioSecurity):
    hook = "voice-menu"
    kind = "voice"
    writes_on_success = False  # answers with TwiML only

    def payload(self, channel):
        return {"CallSid": CALL_SID, "Digits": "1", "From": CALLER}
