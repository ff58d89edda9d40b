"""Outbound calls through the real twilio SDK to the fake Twilio Calls API: automated voice messages
(<Say> of a template, e.g. from an automation) and click-to-call (agent's phone first, then the
customer), with their status callbacks through the real webhook endpoint."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.utils import timezone

from channels_outbound.services import Outcome, outbound_interaction_send
from customers.services import Identifier, customer_resolve
from engagement.models import AutomationRule, Interaction, Membership
from engagement.services.automation import automations_run
from engagement.services.calls import CallRejected, call_click_to_call
from engagement.services.timeline import interaction_record_inbound
from tests import factories
from tests.conftest import post_twilio
from tests.fakes.twilio_server import BUSY_NUMBER, INVALID_NUMBER

CUSTOMER = "+14155550123"
AGENT_PHONE = "+14155550777"


@pytest.fixture
def voice_channel(workspace, fake_twilio):
    return factories.twilio_channel(workspace, fake_twilio, kind="voice")


@pytest.fixture
def caller_agent(workspace):
    user = factories.member(workspace)
    Membership.objects.filter(user=user).update(phone=AGENT_PHONE)
    return user


def _customer(workspace, phone=CUSTOMER):
    customer, _ = customer_resolve(workspace=workspace, identifier=Identifier("phone", phone))
    return customer


def _status(call_sid, status, query, **extra):
    return {
        "CallSid": call_sid,
        "CallStatus": status,
        "AccountSid": "AC1",
        "Direction": "outbound-api",
        **extra,
    }


@pytest.mark.django_db
def test_automation_replies_with_a_voice_message(
    sms_channel, voice_channel, fake_twilio, django_capture_on_commit_callbacks
):
    AutomationRule.objects.create(
        workspace=sms_channel.workspace,
        name="call back",
        match_type="keyword",
        keywords="call me",
        reply_channel=voice_channel,
        template="Hello {{ customer.display_name|default:'there' }}, this is Acme calling back.",
    )
    inbound, _ = interaction_record_inbound(
        channel=sms_channel,
        sender=Identifier("phone", CUSTOMER),
        body="call me",
        provider_message_id="SMin",
        occurred_at=timezone.now(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        (out,) = automations_run(
            event_name="message.received", workspace_id=sms_channel.workspace_id, interaction_id=inbound.pk
        )
    out.refresh_from_db()
    assert (out.channel_id, out.kind, out.status) == (voice_channel.pk, "call", "sent")
    (call,) = fake_twilio.calls
    assert (call["To"], call["From"]) == (CUSTOMER, voice_channel.address)
    say = ET.fromstring(call["Twiml"]).find("Say")  # noqa: S314 - TwiML we generated
    assert say is not None
    assert say.text == "Hello there, this is Acme calling back."
    assert call["StatusCallback"].endswith(f"/status/?iid={out.pk}")
    assert call["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert out.provider_message_id == call["sid"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("final", "status", "outcome"),
    [
        ("completed", "delivered", "answered"),
        ("busy", "undelivered", "busy"),
        ("no-answer", "undelivered", "missed"),
    ],
)
def test_voice_message_status_callbacks(client, voice_channel, fake_twilio, final, status, outcome):
    customer = _customer(voice_channel.workspace)
    from engagement.services.messaging import message_send

    out, _ = message_send(
        workspace=voice_channel.workspace,
        channel=voice_channel,
        customer=customer,
        body="Your table is ready",
    )
    outbound_interaction_send(interaction_id=out.pk)
    out.refresh_from_db()
    sid = out.provider_message_id
    query = f"iid={out.pk}"
    for step in ("initiated", "ringing"):
        assert (
            post_twilio(client, voice_channel, "status", _status(sid, step, query), query=query).status_code
            == 200
        )
    post_twilio(client, voice_channel, "status", _status(sid, final, query, CallDuration="14"), query=query)
    post_twilio(client, voice_channel, "status", _status(sid, "ringing", query), query=query)  # late: ignored
    out.refresh_from_db()
    assert (out.status, out.call_outcome, out.duration_seconds) == (status, outcome, 14)


@pytest.mark.django_db
def test_click_to_call_rings_the_agent_then_bridges_the_customer(
    client, voice_channel, caller_agent, fake_twilio
):
    customer = _customer(voice_channel.workspace)
    call = call_click_to_call(channel=voice_channel, customer=customer, agent=caller_agent)
    assert (call.kind, call.direction, call.status, call.author) == (
        "call",
        "outbound",
        "queued",
        caller_agent,
    )
    assert outbound_interaction_send(interaction_id=call.pk).outcome == Outcome.SENT
    (placed,) = fake_twilio.calls
    assert (placed["To"], placed["From"]) == (AGENT_PHONE, voice_channel.address)
    dial = ET.fromstring(placed["Twiml"]).find("Dial")  # noqa: S314 - TwiML we generated
    assert dial is not None
    assert dial.get("callerId") == voice_channel.address
    number = dial.find("Number")
    assert number is not None
    assert number.text == CUSTOMER
    assert number.get("statusCallback", "").endswith(f"/status/?iid={call.pk}&leg=customer")
    call.refresh_from_db()
    parent = call.provider_message_id
    query = f"iid={call.pk}"
    leg = {"ParentCallSid": parent, "Direction": "outbound-dial", "To": CUSTOMER}
    post_twilio(client, voice_channel, "status", _status(parent, "in-progress", query), query=query)
    leg_query = f"{query}&leg=customer"
    post_twilio(
        client,
        voice_channel,
        "status",
        _status("CA" + "2" * 32, "in-progress", leg_query, **leg),
        query=leg_query,
    )
    post_twilio(
        client,
        voice_channel,
        "status",
        _status("CA" + "2" * 32, "completed", leg_query, CallDuration="63", **leg),
        query=leg_query,
    )
    post_twilio(
        client, voice_channel, "status", _status(parent, "completed", query, CallDuration="70"), query=query
    )
    call.refresh_from_db()
    assert (call.status, call.call_outcome, call.duration_seconds) == ("delivered", "answered", 63)
    assert call.answered_by == caller_agent


@pytest.mark.django_db
def test_click_to_call_to_a_busy_customer(client, voice_channel, caller_agent, fake_twilio):
    call = call_click_to_call(
        channel=voice_channel, customer=_customer(voice_channel.workspace, BUSY_NUMBER), agent=caller_agent
    )
    outbound_interaction_send(interaction_id=call.pk)
    call.refresh_from_db()
    query = f"iid={call.pk}"
    leg_query = f"{query}&leg=customer"
    leg = {"ParentCallSid": call.provider_message_id, "To": BUSY_NUMBER}
    post_twilio(
        client, voice_channel, "status", _status("CA" + "3" * 32, "busy", leg_query, **leg), query=leg_query
    )
    post_twilio(
        client,
        voice_channel,
        "status",
        _status(call.provider_message_id, "completed", query, CallDuration="9"),
        query=query,
    )
    call.refresh_from_db()
    assert (call.status, call.call_outcome, call.answered_by) == ("undelivered", "busy", None)


@pytest.mark.django_db
def test_click_to_call_preconditions(voice_channel, sms_channel, workspace, fake_twilio):
    customer = _customer(workspace)
    no_phone = factories.member(workspace)
    with pytest.raises(CallRejected, match="phone number to your membership"):
        call_click_to_call(channel=voice_channel, customer=customer, agent=no_phone)
    stranger = factories.member(factories.workspace_create())
    with pytest.raises(CallRejected, match="member"):
        call_click_to_call(channel=voice_channel, customer=customer, agent=stranger)
    agent = factories.member(workspace)
    Membership.objects.filter(user=agent).update(phone=AGENT_PHONE)
    with pytest.raises(CallRejected, match="voice channel"):
        call_click_to_call(channel=sms_channel, customer=customer, agent=agent)
    assert Interaction.objects.count() == 0


@pytest.mark.django_db
def test_invalid_number_fails_without_retry(voice_channel, caller_agent, fake_twilio):
    from engagement.services.messaging import message_send

    out, _ = message_send(
        workspace=voice_channel.workspace,
        channel=voice_channel,
        customer=_customer(voice_channel.workspace, INVALID_NUMBER),
        body="hello",
    )
    attempt = outbound_interaction_send(interaction_id=out.pk)
    out.refresh_from_db()
    assert attempt.outcome == Outcome.FAILED
    assert (out.status, out.error_code) == ("failed", "21211")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("call_flow", "voice", "language"),
    [
        ({"voice": "Polly.Amy", "language": "en-GB"}, "Polly.Amy", "en-GB"),
        ({"voice": "Polly.Amy", "hours": "always"}, "alice", "en-US"),  # invalid flow: the default's
    ],
)
def test_voice_message_speaks_with_the_call_flows_voice(
    voice_channel, fake_twilio, call_flow, voice, language
):
    from engagement.services.messaging import message_send

    voice_channel.config = {**voice_channel.config, "call_flow": call_flow}
    voice_channel.save(update_fields=["config"])
    out, _ = message_send(
        workspace=voice_channel.workspace,
        channel=voice_channel,
        customer=_customer(voice_channel.workspace),
        body="Your table is ready",
    )
    outbound_interaction_send(interaction_id=out.pk)
    (call,) = fake_twilio.calls
    say = ET.fromstring(call["Twiml"]).find("Say")  # noqa: S314 - TwiML we generated
    assert say is not None
    assert (say.get("voice"), say.get("language")) == (voice, language)
