"""Done when: a call that goes to voicemail with a transcript and an MMS land on the same customer's
timeline as their SMS. All on real parts: signed webhooks over HTTP to a live server, the fake Twilio
playing the caller by executing our TwiML (greeting → press 1 → the on-duty agent does not answer →
voicemail with transcript), a real Celery worker downloading the MMS media and the recording with
Basic auth and running the "missed call → SMS" automation through the twilio SDK, delivered."""

from __future__ import annotations

import pytest

from engagement.models import Attachment, AutomationRule, Interaction, Membership
from engagement.services.tenancy import api_key_create
from tests import factories
from tests.conftest import load_payload, wait_for
from tests.fakes.twilio_server import FAKE_JPEG, FAKE_MP3, NO_ANSWER_NUMBER, post_twilio_webhook

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ALWAYS_OPEN = {day: ["00:00", "23:59"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
CUSTOMER = "+19089061042"  # the captured inbound SMS's sender
TRANSCRIPT = "Hi, it's Grace. My order has not arrived, please call me back."


def test_sms_mms_and_voicemail_share_one_timeline(live_server, celery_worker_process, fake_twilio, settings):
    import httpx

    settings.PUBLIC_BASE_URL = live_server.url  # the origin our TwiML's action and callback URLs name
    fake_twilio.send_callbacks = True
    workspace = factories.workspace_create()
    sms = factories.twilio_channel(workspace, fake_twilio)
    voice = factories.twilio_channel(
        workspace,
        fake_twilio,
        kind="voice",
        call_flow={"greeting": "Thanks for calling Acme.", "hours": ALWAYS_OPEN},
    )
    agent = factories.member(workspace)
    Membership.objects.filter(user=agent).update(phone=NO_ANSWER_NUMBER, on_duty=True)
    AutomationRule.objects.create(
        workspace=workspace,
        name="Sorry we missed you",
        trigger="call.missed",
        channel_kind="voice",
        match_type="any",
        reply_channel=sms,
        template="Sorry we missed your call, {{ customer.display_name|default:'there' }} - we'll call back.",
    )
    _, api_key = api_key_create(workspace=workspace, name="e2e")

    def hook(channel, name):
        return f"{live_server.url}/webhooks/twilio/{channel.webhook_token}/{name}/"

    # 1. An SMS, then an MMS with two media files, from the same number.
    text = {**load_payload("twilio_inbound_sms.txt"), "Body": "Where is my order?"}
    assert post_twilio_webhook(hook(sms, "inbound"), text, fake_twilio.auth_token) == 200
    mms = {
        **load_payload("twilio_inbound_mms.json"),
        "From": CUSTOMER,
        "To": sms.address,
        "MessageSid": "MM" + "4" * 32,
    }
    for n in range(2):
        mms[f"MediaUrl{n}"] = fake_twilio.media_url(mms["MessageSid"], n)
    assert post_twilio_webhook(hook(sms, "inbound"), mms, fake_twilio.auth_token) == 200

    # 2. A call: press 1, the agent does not answer, the caller leaves a voicemail.
    call_sid = fake_twilio.inbound_call(
        hook(voice, "voice"),
        caller=CUSTOMER,
        called=voice.address,
        status_callback=hook(voice, "call-status"),
        digits="1",
        transcript=TRANSCRIPT,
    )
    # The fake ran our TwiML: greeting, the menu, a <Dial> of the on-duty agent, then <Record>.
    posted = [url.rsplit("/", 2)[-2] for url, _, status in fake_twilio.callbacks if status == 200]
    for expected in (
        "voice",
        "voice-menu",
        "call-status",
        "voice-dial",
        "recording",
        "transcription",
        "voice-done",
    ):
        assert expected in posted, posted

    call = Interaction.objects.get(kind="call", provider_message_id=call_sid)
    assert (call.direction, call.call_outcome, call.duration_seconds) == (
        "inbound",
        "voicemail",
        fake_twilio.call_duration,
    )
    assert call.body == TRANSCRIPT
    assert call.answered_by is None

    # 3. The worker downloaded the recording and the MMS media through Django storage.
    recording = wait_for(lambda: Attachment.objects.filter(interaction=call).exclude(file="").first())
    assert recording.file.read() == FAKE_MP3
    mms_interaction = Interaction.objects.get(provider_message_id=mms["MessageSid"])
    wait_for(lambda: Attachment.objects.filter(interaction=mms_interaction).exclude(file="").count() == 2)
    photo = Attachment.objects.filter(interaction=mms_interaction).order_by("id").first()
    assert photo is not None
    assert photo.file.read() == FAKE_JPEG
    assert all(authorized for _, authorized in fake_twilio.media_requests)

    # 4. The missed call triggered one SMS, delivered.
    sorry = wait_for(
        lambda: Interaction.objects.filter(direction="outbound", channel=sms, status="delivered").first()
    )
    assert sorry.body == "Sorry we missed your call, there - we'll call back."
    assert [m["To"] for m in fake_twilio.messages if "sid" in m] == [CUSTOMER]

    # 5. One customer, one timeline: the SMS, the MMS, the call and the reply.
    inbound_sms = Interaction.objects.get(provider_message_id=text["MessageSid"])
    assert {inbound_sms.customer_id, mms_interaction.customer_id, call.customer_id, sorry.customer_id} == {
        call.customer_id
    }
    timeline = httpx.get(
        f"{live_server.url}/api/v1/customers/{call.customer_id}/timeline/",
        headers={"Authorization": f"Bearer {api_key}"},
    ).json()["results"]
    assert {i["id"] for i in timeline} == {inbound_sms.pk, mms_interaction.pk, call.pk, sorry.pk}

    # 6. Twilio retrying every webhook of the call changes nothing.
    before = list(Interaction.objects.order_by("id").values_list("id", "status", "call_outcome", "body"))
    for url, params, _ in list(fake_twilio.callbacks):
        if "/webhooks/" in url and voice.webhook_token in url:
            for _ in range(2):
                assert post_twilio_webhook(url, params, fake_twilio.auth_token) == 200
    assert (
        list(Interaction.objects.order_by("id").values_list("id", "status", "call_outcome", "body")) == before
    )
    assert Attachment.objects.filter(interaction=call).count() == 1
