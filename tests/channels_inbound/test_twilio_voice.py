"""Twilio Voice through the real webhook endpoint: the call flow as TwiML, one call interaction per call
with its outcome, duration, answering agent, recording and transcript, and automations on missed calls
and voicemails replying by SMS."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_inbound.models import InboundRequest, ProviderEvent
from customers.models import Identity
from customers.services import Identifier
from engagement.models import Attachment, AutomationRule, Interaction, Membership
from engagement.services.calls import CallFlowInvalid, call_apply_status, call_flow_parse, call_record_inbound
from tests import factories
from tests.conftest import load_payload, post_twilio
from tests.fakes.twilio_server import FAKE_MP3

ALWAYS_OPEN = {day: ["00:00", "23:59"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
CALLER = "+14155550199"
AGENT_PHONE = "+14155550777"


def _twiml(resp: Any) -> ET.Element:
    assert resp.status_code == 200, resp.content
    assert resp["Content-Type"].startswith("text/xml")
    return ET.fromstring(resp.content)  # noqa: S314 - TwiML from the server under test


def _call_form(call_sid: str = "CA" + "a" * 32, **extra: str) -> dict[str, str]:
    """The captured Voice URL request, with From as a genuine Twilio request has it (= Caller, E.164)."""
    form = dict(load_payload("twilio_inbound_voice_call.json")[0])
    form.update(CallSid=call_sid, From=CALLER, Caller=CALLER)
    form.update(extra)
    return form


@pytest.fixture
def voice_channel(workspace, fake_twilio):
    return factories.twilio_channel(
        workspace, fake_twilio, kind="voice", call_flow={"greeting": "Welcome to Acme.", "hours": ALWAYS_OPEN}
    )


@pytest.fixture
def on_duty_agent(workspace):
    user = factories.member(workspace)
    Membership.objects.filter(workspace=workspace, user=user).update(phone=AGENT_PHONE, on_duty=True)
    return user


@pytest.mark.django_db
def test_open_with_agents_on_duty_greets_and_offers_press_1(client, voice_channel, on_duty_agent):
    root = _twiml(post_twilio(client, voice_channel, "voice", _call_form()))
    assert [el.tag for el in root] == ["Say", "Gather", "Say", "Record"]
    assert root[0].text == "Welcome to Acme."
    gather = root[1]
    assert gather.get("numDigits") == "1"
    assert gather.get("action", "").endswith(f"/webhooks/twilio/{voice_channel.webhook_token}/voice-menu/")
    record = root[3]
    assert record.get("transcribe") == "true"
    assert record.get("action", "").endswith("/voice-done/")
    assert record.get("recordingStatusCallback", "").endswith("/recording/")
    assert record.get("transcribeCallback", "").endswith("/transcription/")
    call = Interaction.objects.get()
    assert (call.kind, call.direction, call.status) == ("call", "inbound", "received")
    assert call.provider_message_id == "CA" + "a" * 32
    assert call.customer_address == CALLER
    assert Identity.objects.get(customer=call.customer).value == CALLER


@pytest.mark.django_db
def test_closed_goes_straight_to_voicemail(client, workspace, fake_twilio, on_duty_agent):
    channel = factories.twilio_channel(
        workspace,
        fake_twilio,
        kind="voice",
        call_flow={"hours": {}, "closed_message": "We're closed.", "transcribe": False},
    )
    root = _twiml(post_twilio(client, channel, "voice", _call_form()))
    assert [el.tag for el in root] == ["Say", "Say", "Say", "Record"]
    assert root[1].text == "We're closed."
    assert root[3].get("transcribe") is None


@pytest.mark.django_db
def test_open_but_nobody_on_duty_offers_no_menu(client, voice_channel):
    root = _twiml(post_twilio(client, voice_channel, "voice", _call_form()))
    assert "Gather" not in [el.tag for el in root]
    assert root[-1].tag == "Record"


@pytest.mark.django_db
def test_pressing_1_dials_the_on_duty_agents(client, voice_channel, on_duty_agent, workspace):
    off_duty = factories.member(workspace)
    Membership.objects.filter(user=off_duty).update(phone="+14155550888", on_duty=False)
    root = _twiml(post_twilio(client, voice_channel, "voice-menu", _call_form(Digits="1")))
    dial = root.find("Dial")
    assert dial is not None
    assert dial.get("action", "").endswith("/voice-dial/")
    numbers = dial.findall("Number")
    assert [n.text for n in numbers] == [AGENT_PHONE]
    assert numbers[0].get("statusCallback", "").endswith("/call-status/?leg=agent")
    # Any other key: voicemail.
    root = _twiml(post_twilio(client, voice_channel, "voice-menu", _call_form(Digits="2")))
    assert root[-1].tag == "Record"


@pytest.mark.django_db
def test_nobody_answering_the_dial_goes_to_voicemail(client, voice_channel, on_duty_agent):
    root = _twiml(post_twilio(client, voice_channel, "voice-dial", _call_form(DialCallStatus="no-answer")))
    assert [el.tag for el in root] == ["Say", "Say", "Record"]
    root = _twiml(
        post_twilio(
            client, voice_channel, "voice-dial", _call_form(DialCallStatus="completed", DialCallSid="CA1")
        )
    )
    assert [el.tag for el in root] == ["Hangup"]


def _recording(call_sid: str, fake: Any, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": fake.account_sid,
        "CallSid": call_sid,
        "RecordingSid": "RE" + "1" * 32,
        "RecordingUrl": f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Recordings/RE" + "1" * 32,
        "RecordingStatus": "completed",
        "RecordingDuration": "17",
        "RecordingChannels": "1",
        "RecordingSource": "RecordVerb",
        **extra,
    }


def _transcription(call_sid: str, text: str = "Hi, it's Grace, please call me back.") -> dict[str, str]:
    return {
        "AccountSid": "AC1",
        "CallSid": call_sid,
        "RecordingSid": "RE" + "1" * 32,
        "TranscriptionSid": "TR" + "1" * 32,
        "TranscriptionStatus": "completed",
        "TranscriptionText": text,
    }


@pytest.mark.django_db
def test_voicemail_call_records_outcome_recording_transcript_and_replies_by_sms(
    client, voice_channel, fake_twilio, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    sms = factories.twilio_channel(voice_channel.workspace, fake_twilio)
    for trigger, template in [
        ("call.missed", "Sorry we missed you!"),
        ("voicemail.received", "Got your message."),
    ]:
        AutomationRule.objects.create(
            workspace=voice_channel.workspace,
            name=trigger,
            trigger=trigger,
            channel_kind="voice",
            match_type="any",
            reply_channel=sms,
            template=template,
        )
    sid = "CA" + "b" * 32
    with django_capture_on_commit_callbacks(execute=True):
        post_twilio(client, voice_channel, "voice", _call_form(sid))
        done = post_twilio(
            client,
            voice_channel,
            "voice-done",
            _call_form(
                sid,
                RecordingUrl=_recording(sid, fake_twilio)["RecordingUrl"],
                RecordingDuration="17",
                Digits="hangup",
            ),
        )
        post_twilio(client, voice_channel, "recording", _recording(sid, fake_twilio))
        post_twilio(client, voice_channel, "transcription", _transcription(sid))
        post_twilio(
            client, voice_channel, "call-status", _call_form(sid, CallStatus="completed", CallDuration="31")
        )
    assert [el.tag for el in _twiml(done)] == ["Say", "Hangup"]
    call = Interaction.objects.get(kind="call")
    assert call.call_outcome == "voicemail"
    assert call.duration_seconds == 31
    assert call.body == "Hi, it's Grace, please call me back."
    assert call.metadata["recording_duration"] == 17
    recording = Attachment.objects.get(interaction=call)
    assert recording.source_url.endswith("/Recordings/RE" + "1" * 32 + ".mp3")
    assert recording.content_type == "audio/mpeg"
    # Downloaded after commit, with the channel's credentials, into storage.
    assert recording.file.read() == FAKE_MP3
    assert recording.size == len(FAKE_MP3)
    assert fake_twilio.media_requests == [(urlsplit(recording.source_url).path, True)]
    assert call.conversation is not None
    assert call.conversation.last_message_preview.startswith("Voicemail (0:17): Hi, it's Grace")
    # Both automations replied once, by SMS, to the caller, on the SMS channel's own conversation.
    replies = Interaction.objects.filter(direction="outbound").order_by("id")
    assert sorted(r.body for r in replies) == ["Got your message.", "Sorry we missed you!"]
    assert {r.channel_id for r in replies} == {sms.pk}
    assert {r.customer_id for r in replies} == {call.customer_id}
    assert sorted(m["Body"] for m in fake_twilio.messages) == ["Got your message.", "Sorry we missed you!"]
    assert {m["To"] for m in fake_twilio.messages} == {CALLER}


@pytest.mark.django_db
def test_agent_answering_records_who_and_fires_no_missed_call(
    client, voice_channel, on_duty_agent, fake_twilio, django_capture_on_commit_callbacks
):
    AutomationRule.objects.create(
        workspace=voice_channel.workspace, name="m", trigger="call.missed", match_type="any", template="sorry"
    )
    sid = "CA" + "c" * 32
    leg = {
        "CallSid": "CA" + "d" * 32,
        "ParentCallSid": sid,
        "From": CALLER,
        "To": AGENT_PHONE,
        "Direction": "outbound-dial",
        "AccountSid": "AC1",
    }
    with django_capture_on_commit_callbacks(execute=True):
        post_twilio(client, voice_channel, "voice", _call_form(sid))
        post_twilio(client, voice_channel, "voice-menu", _call_form(sid, Digits="1"))
        post_twilio(
            client, voice_channel, "call-status", {**leg, "CallStatus": "in-progress"}, query="leg=agent"
        )
        post_twilio(
            client,
            voice_channel,
            "call-status",
            {**leg, "CallStatus": "completed", "CallDuration": "95"},
            query="leg=agent",
        )
        post_twilio(
            client,
            voice_channel,
            "voice-dial",
            _call_form(sid, DialCallStatus="completed", DialCallSid=leg["CallSid"], DialCallDuration="95"),
        )
        post_twilio(
            client, voice_channel, "call-status", _call_form(sid, CallStatus="completed", CallDuration="110")
        )
    call = Interaction.objects.get(kind="call")
    assert call.call_outcome == "answered"
    assert call.answered_by == on_duty_agent
    assert call.duration_seconds == 110
    assert Interaction.objects.filter(direction="outbound").count() == 0
    assert fake_twilio.messages == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("final", "outcome"), [("completed", "missed"), ("busy", "busy"), ("no-answer", "missed")]
)
def test_call_ending_without_agent_or_voicemail(client, voice_channel, final, outcome):
    sid = "CA" + "e" * 32
    post_twilio(client, voice_channel, "voice", _call_form(sid))
    post_twilio(client, voice_channel, "call-status", _call_form(sid, CallStatus="ringing"))
    assert Interaction.objects.get().call_outcome == ""
    post_twilio(client, voice_channel, "call-status", _call_form(sid, CallStatus=final, CallDuration="4"))
    # A late, out-of-order progress report changes nothing.
    post_twilio(client, voice_channel, "call-status", _call_form(sid, CallStatus="in-progress"))
    call = Interaction.objects.get()
    assert (call.call_outcome, call.duration_seconds, call.metadata["call_status"]) == (outcome, 4, final)


@pytest.mark.django_db
def test_status_callback_alone_creates_the_call(client, voice_channel):
    """If the Voice URL request was lost, the number's status callback still puts the call on the timeline."""
    post_twilio(client, voice_channel, "call-status", _call_form("CA" + "f" * 32, CallStatus="completed"))
    call = Interaction.objects.get()
    assert (call.kind, call.call_outcome, call.customer_address) == ("call", "missed", CALLER)


@pytest.mark.django_db
def test_withheld_caller_gets_the_call_flow_and_a_timeline_entry(client, voice_channel):
    # Caller is +266696687 (ANONYMOUS on a keypad); From was rewritten by a platform in between.
    form = load_payload("twilio_inbound_voice_call.json")[0]
    root = _twiml(post_twilio(client, voice_channel, "voice", form))
    assert root[-1].tag == "Record"
    call = Interaction.objects.get()
    assert call.customer.display_name == "Unknown caller"
    assert call.customer_address == ""
    assert list(call.customer.identities.values_list("kind", "value")) == [
        ("unknown_caller", form["CallSid"])
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("hook", "form", "query", "message"),
    [
        ("voice", {"From": CALLER}, "", "missing required field(s): CallSid"),
        ("voice", {"CallSid": "CA1"}, "", "missing required field(s): From"),
        ("call-status", {"CallSid": "CA1"}, "", "missing required field(s): CallStatus"),
        (
            "call-status",
            {"CallSid": "CA1", "CallStatus": "completed", "CallDuration": "x"},
            "",
            "CallDuration",
        ),
        ("call-status", {"CallSid": "CA1", "CallStatus": "completed"}, "leg=boss", "leg must be"),
        ("call-status", {"CallSid": "CA1", "CallStatus": "completed"}, "leg=agent", "ParentCallSid"),
        ("recording", {"CallSid": "CA1", "RecordingStatus": "completed"}, "", "RecordingSid"),
        (
            "recording",
            {"CallSid": "CA1", "RecordingSid": "RE1", "RecordingStatus": "completed"},
            "",
            "RecordingUrl",
        ),
        ("transcription", {"CallSid": "CA1", "TranscriptionSid": "TR1"}, "", "TranscriptionStatus"),
        ("voice-dial", {"CallSid": "CA1"}, "", "DialCallStatus"),
    ],
)
def test_malformed_voice_webhooks_are_kept_unprocessed_with_reason(
    client, voice_channel, hook, form, query, message
):
    resp = post_twilio(client, voice_channel, hook, form, query=query)
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/xml")  # Twilio still gets TwiML
    assert message in InboundRequest.objects.get().last_error
    assert ProviderEvent.objects.count() == 0
    assert Interaction.objects.count() == 0


@pytest.mark.django_db
def test_unknown_call_status_is_ignored_with_200(client, voice_channel):
    resp = post_twilio(client, voice_channel, "call-status", _call_form(CallStatus="teleported"))
    assert resp.status_code == 200
    assert ProviderEvent.objects.count() == 0


def test_call_flow_validation_and_business_hours():
    flow = call_flow_parse(
        {"timezone": "America/New_York", "hours": {"mon": ["09:00", "17:00"], "sun": None}}
    )
    # Monday 2026-11-23 14:30 UTC is 09:30 in New York; 13:30 UTC is 08:30.
    assert flow.is_open(datetime(2026, 11, 23, 14, 30, tzinfo=UTC))
    assert not flow.is_open(datetime(2026, 11, 23, 13, 30, tzinfo=UTC))
    assert not flow.is_open(datetime(2026, 11, 22, 15, 0, tzinfo=UTC))  # Sunday
    assert call_flow_parse(None).greeting
    for bad, message in [
        ([], "must be an object"),
        ({"greting": "x"}, "unknown call_flow field"),
        ({"hours": {"funday": ["09:00", "17:00"]}}, "funday"),
        ({"hours": {"mon": ["17:00", "09:00"]}}, "opening must be before closing"),
        ({"hours": {"mon": ["9am", "5pm"]}}, "HH:MM"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"dial_timeout": 999}, "dial_timeout"),
        ({"transcribe": "yes"}, "transcribe"),
    ]:
        with pytest.raises(CallFlowInvalid, match=message):
            call_flow_parse(bad)


@pytest.mark.django_db
def test_invalid_stored_call_flow_still_answers_with_the_default(client, workspace, fake_twilio):
    channel = factories.twilio_channel(workspace, fake_twilio, kind="voice", call_flow={"hours": "always"})
    root = _twiml(post_twilio(client, channel, "voice", _call_form()))
    assert root[-1].tag == "Record"


@pytest.mark.django_db
def test_with_two_agents_ringing_the_one_who_answered_is_recorded_whatever_the_order(
    client, voice_channel, on_duty_agent, workspace
):
    other = factories.member(workspace)
    Membership.objects.filter(user=other).update(phone="+14155550888", on_duty=True)
    sid = "CA" + "7" * 32
    post_twilio(client, voice_channel, "voice", _call_form(sid))
    root = _twiml(post_twilio(client, voice_channel, "voice-menu", _call_form(sid, Digits="1")))
    assert [n.text for n in root.iter("Number")] == [AGENT_PHONE, "+14155550888"]

    def leg(leg_sid, to, status, **extra):
        form = {"CallSid": leg_sid, "ParentCallSid": sid, "To": to, "CallStatus": status, **extra}
        return post_twilio(client, voice_channel, "call-status", form, query="leg=agent")

    # The other phone stops ringing (canceled when someone answered) before the answer is reported.
    leg("CA" + "8" * 32, "+14155550888", "completed", CallDuration="0")
    leg("CA" + "9" * 32, AGENT_PHONE, "in-progress")
    post_twilio(
        client, voice_channel, "call-status", _call_form(sid, CallStatus="completed", CallDuration="80")
    )
    call = Interaction.objects.get()
    assert (call.call_outcome, call.answered_by) == ("answered", on_duty_agent)


@pytest.mark.django_db
def test_voice_webhook_query_count_is_bounded(
    client, voice_channel, on_duty_agent, django_assert_max_num_queries
):
    post_twilio(client, voice_channel, "voice", _call_form("CA" + "1" * 32))  # warm: the customer exists
    # Each +1 since the transactional outbox: one insert carries the request's events.
    with django_assert_max_num_queries(17):
        post_twilio(client, voice_channel, "voice", _call_form("CA" + "2" * 32))
    with django_assert_max_num_queries(12):
        post_twilio(
            client,
            voice_channel,
            "call-status",
            _call_form("CA" + "2" * 32, CallStatus="completed", CallDuration="5"),
        )


@pytest.mark.django_db
def test_status_of_a_known_call_does_not_look_it_up_twice(client, voice_channel):
    """The number's status callbacks (several per call) lock the known call once; the create path runs
    only for a call first seen in a status callback."""
    sid = "CA" + "e" * 32
    call_record_inbound(
        channel=voice_channel, caller=Identifier("phone", CALLER), call_id=sid, occurred_at=timezone.now()
    )
    with CaptureQueriesContext(connection) as queries:
        call_apply_status(
            channel=voice_channel,
            call_id=sid,
            status="in-progress",
            occurred_at=timezone.now(),
            caller=Identifier("phone", CALLER),
        )
    lookups = [q["sql"] for q in queries.captured_queries if 'FROM "engagement_interaction"' in q["sql"]]
    assert len(lookups) == 1, lookups
