"""`make run` without internet: the demo seed has a voice line on the sandbox, and Grace Hopper's timeline
shows her SMS and a call that went to voicemail, with a playable recording and its transcript. The
sandbox places outbound calls too and reports them answered."""

from __future__ import annotations

import pytest

from channels_outbound.services import outbound_interaction_send
from engagement.models import Attachment, Channel, Interaction
from engagement.services.calls import DEMO_VOICEMAIL, call_click_to_call
from engagement.services.demo import demo_workspace_seed
from engagement.services.messaging import message_send


@pytest.fixture
def seeded(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.TWILIO_ACCOUNT_SID = settings.TWILIO_AUTH_TOKEN = settings.TWILIO_PHONE_NUMBER = ""
    seed = demo_workspace_seed()
    demo_workspace_seed()  # idempotent
    return seed


def test_demo_timeline_has_sms_and_a_voicemail_call(seeded):
    voice = Channel.objects.get(workspace=seeded.workspace, kind="voice")
    assert voice.provider == "sandbox"
    call = Interaction.objects.get(channel=voice)
    assert (call.kind, call.direction, call.call_outcome, call.duration_seconds) == (
        "call",
        "inbound",
        "voicemail",
        38,
    )
    assert call.body == DEMO_VOICEMAIL
    kinds = list(Interaction.objects.filter(customer=call.customer).values_list("kind", "channel__kind"))
    assert ("message", "sms") in kinds
    assert ("call", "voice") in kinds
    recording = Attachment.objects.get(interaction=call)
    assert recording.content_type == "audio/wav"
    assert recording.file.read(4) == b"RIFF"
    assert call.customer.display_name == "Grace Hopper"


def test_sandbox_places_calls_and_reports_them(seeded, django_capture_on_commit_callbacks, django_user_model):
    voice = Channel.objects.get(workspace=seeded.workspace, kind="voice")
    grace = Interaction.objects.get(channel=voice).customer
    agent = django_user_model.objects.get(username="agent")
    with django_capture_on_commit_callbacks(execute=True):
        call = call_click_to_call(channel=voice, customer=grace, agent=agent)
    with django_capture_on_commit_callbacks(execute=True):
        spoken, _ = message_send(
            workspace=seeded.workspace, channel=voice, customer=grace, body="Your order shipped."
        )
    for interaction in (call, spoken):
        outbound_interaction_send(interaction_id=interaction.pk)  # a no-op if the task already sent it
        interaction.refresh_from_db()
        assert (interaction.kind, interaction.status, interaction.call_outcome) == (
            "call",
            "delivered",
            "answered",
        )
        assert interaction.duration_seconds == 30
    assert call.answered_by == agent
