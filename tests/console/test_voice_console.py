"""Calls and MMS in the console: outcome, duration, who answered, a playable recording and the
transcript; MMS pictures inline; the click-to-call button places a call through the voice sender."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from customers.services import Identifier
from engagement.models import Attachment, Interaction, Membership
from engagement.services.calls import (
    call_apply_status,
    call_attach_recording,
    call_attach_transcript,
    call_record_inbound,
)
from tests import factories

CALLER = "+14155550199"


@pytest.fixture
def voice_channel(workspace, fake_twilio):
    return factories.twilio_channel(workspace, fake_twilio, kind="voice")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _voicemail_call(channel):
    now = timezone.now()
    call, _ = call_record_inbound(
        channel=channel, caller=Identifier("phone", CALLER), call_id="CA1", occurred_at=now
    )
    call_attach_recording(
        channel=channel,
        call_id="CA1",
        recording_id="RE1",
        recording_url="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1.mp3",
        recording_status="completed",
        duration_seconds=17,
    )
    call_apply_status(
        channel=channel, call_id="CA1", status="completed", occurred_at=now, duration_seconds=38
    )
    call_attach_transcript(
        channel=channel,
        call_id="CA1",
        transcription_id="TR1",
        transcription_status="completed",
        text="Call me back",
    )
    call.refresh_from_db()
    return call


@pytest.mark.django_db
def test_call_on_the_timeline_shows_outcome_duration_recording_and_transcript(agent_client, voice_channel):
    call = _voicemail_call(voice_channel)
    page = agent_client.get(f"/conversations/{call.conversation_id}/").content.decode()
    assert "Voicemail" in page
    assert "0:38" in page
    assert "Call me back" in page
    assert "Recording is being fetched" in page  # not downloaded yet: no player
    recording = Attachment.objects.get(interaction=call)
    recording.file.save("RE1.mp3", ContentFile(b"ID3fake"), save=True)
    page = agent_client.get(f"/conversations/{call.conversation_id}/").content.decode()
    assert f'<audio controls preload="none" src="/attachments/{recording.pk}/">' in page
    audio = agent_client.get(f"/attachments/{recording.pk}/")
    assert (audio.status_code, audio["Content-Type"]) == (200, "audio/mpeg")


@pytest.mark.django_db
def test_mms_pictures_render_inline(agent_client, sms_channel):
    from tests.console.conftest import inbound

    message = inbound(sms_channel, CALLER, "See photo")
    Interaction.objects.filter(pk=message.pk).update(
        metadata={"media": [{"url": "https://api.twilio.com/x/ME0", "content_type": "image/jpeg"}]}
    )
    photo = Attachment(
        workspace=sms_channel.workspace, interaction=message, filename="ME0.jpg", content_type="image/jpeg"
    )
    photo.file.save("ME0.jpg", ContentFile(b"\xff\xd8fake"), save=True)
    page = agent_client.get(f"/conversations/{message.conversation_id}/").content.decode()
    assert f'<img class="mms" src="/attachments/{photo.pk}/"' in page


@pytest.mark.django_db
def test_click_to_call_button_places_a_call(
    agent_client, agent, sms_channel, voice_channel, fake_twilio, django_capture_on_commit_callbacks
):
    from tests.console.conftest import inbound

    message = inbound(sms_channel, CALLER, "Please call me")
    page = agent_client.get(f"/conversations/{message.conversation_id}/").content.decode()
    form = page.split('class="click-to-call"')[1].split("</form>")[0]
    assert "disabled" in form
    # Why it is disabled is on the page, not only in a tooltip.
    reason = "Calls ring your phone first: an admin adds your number to your membership."
    assert f'<span id="call-disabled-reason" class="disabled-reason">{reason}</span>' in form
    assert 'aria-describedby="call-disabled-reason"' in form
    Membership.objects.filter(user=agent).update(phone="+14155550777")
    page = agent_client.get(f"/conversations/{message.conversation_id}/").content.decode()
    form = page.split('class="click-to-call"')[1].split("</form>")[0]
    assert "disabled" not in form
    with django_capture_on_commit_callbacks(execute=True):
        resp = agent_client.post(f"/conversations/{message.conversation_id}/call/", follow=True)
    assert "Calling your phone" in resp.content.decode()
    call = Interaction.objects.get(kind="call")
    assert (call.direction, call.channel_id, call.author, call.customer_id) == (
        "outbound",
        voice_channel.pk,
        agent,
        message.customer_id,
    )
    assert [c["To"] for c in fake_twilio.calls] == ["+14155550777"]


@pytest.mark.django_db
def test_click_to_call_is_scoped_to_the_workspace(agent_client, fake_twilio):
    other = factories.workspace_create()
    other_sms = factories.twilio_channel(other, fake_twilio)
    from tests.console.conftest import inbound

    theirs = inbound(other_sms, CALLER, "hi")
    resp = agent_client.post(f"/conversations/{theirs.conversation_id}/call/")
    assert resp.status_code == 404
    assert Interaction.objects.filter(kind="call").count() == 0


@pytest.mark.parametrize(
    ("seconds", "label", "shown"),
    [(None, "0:00", ""), (0, "0:00", "0:00"), (38, "0:38", "0:38"), (3725, "1:02:05", "1:02:05")],
)
def test_one_duration_format_for_previews_and_the_timeline(seconds, label, shown):
    from engagement.services.calls import call_duration_label
    from engagement.templatetags.call_display import call_duration

    assert (call_duration_label(seconds), call_duration(seconds)) == (label, shown)
