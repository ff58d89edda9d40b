"""The conversation page: the customer's unified timeline, replies through message_send, resolve/reopen."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from customers.models import Identity
from engagement.models import Conversation, Interaction
from engagement.services.messaging import message_send
from tests import factories

from .conftest import conversation_pk, inbound, minutes_ago


@pytest.mark.django_db
def test_timeline_unifies_every_conversation_of_the_customer(
    agent_client: Client, sms_channel, workspace, fake_twilio
) -> None:
    second_line = factories.twilio_channel(workspace, fake_twilio)
    first = inbound(sms_channel, "+14155550101", "first on the main line", at=minutes_ago(30), name="Grace")
    other = inbound(second_line, "+14155550101", "then on the second line", at=minutes_ago(20))
    last = inbound(sms_channel, "+14155550101", "back on the main line", at=minutes_ago(5))
    stranger = inbound(sms_channel, "+14155550199", "someone else entirely")
    assert first.customer_id == other.customer_id == last.customer_id
    assert first.conversation_id != other.conversation_id

    resp = agent_client.get(f"/conversations/{other.conversation_id}/")
    assert resp.status_code == 200
    html = resp.content.decode()
    bodies = ["first on the main line", "then on the second line", "back on the main line"]
    assert all(b in html for b in bodies)
    assert [html.index(b) for b in bodies] == sorted(html.index(b) for b in bodies)  # oldest first
    assert "someone else entirely" not in html
    assert "+14155550101" in html  # the customer's identity
    assert "Grace" in html
    ids = re.search(r'data-conversation-ids="([\d,]+)"', html)
    assert ids is not None
    assert set(ids.group(1).split(",")) == {str(first.conversation_id), str(other.conversation_id)}
    assert stranger.conversation_id is not None

    fragment = agent_client.get(f"/conversations/{other.conversation_id}/?fragment=1").content.decode()
    assert "<html" not in fragment
    assert all(b in fragment for b in bodies)


@pytest.mark.django_db
def test_timeline_shows_status_and_error_of_outbound_messages(agent_client: Client, sms_channel) -> None:
    item = inbound(sms_channel, "+14155550101", "hello")
    conversation = Conversation.objects.get(pk=conversation_pk(item))
    out, _ = message_send(
        workspace=sms_channel.workspace,
        channel=sms_channel,
        customer=conversation.customer,
        conversation=conversation,
        body="we could not deliver this",
    )
    Interaction.objects.filter(pk=out.pk).update(
        status="failed", error_code="30003", error_message="Unreachable destination handset"
    )
    html = agent_client.get(f"/conversations/{conversation.pk}/").content.decode()
    assert "we could not deliver this" in html
    assert "Failed" in html
    assert "Unreachable destination handset" in html
    assert "Received" in html


@pytest.mark.django_db
def test_reply_is_queued_and_sent_to_twilio(
    agent_client: Client, agent, sms_channel, fake_twilio, django_capture_on_commit_callbacks
) -> None:
    item = inbound(sms_channel, "+14155550101", "is my order shipped?")
    url = f"/conversations/{item.conversation_id}/"
    with django_capture_on_commit_callbacks(execute=True):
        resp = agent_client.post(url, {"body": "  Yes, it left today.  "})
    assert resp.status_code == 302
    assert resp["Location"] == url

    reply = Interaction.objects.get(direction="outbound")
    assert reply.body == "Yes, it left today."
    assert reply.conversation_id == item.conversation_id
    assert reply.customer_id == item.customer_id
    assert reply.author_id == agent.pk
    assert reply.status in {"sent", "delivered"}
    sent = [m for m in fake_twilio.messages if "sid" in m]
    assert len(sent) == 1
    assert sent[0]["To"] == "+14155550101"
    assert sent[0]["From"] == sms_channel.address
    assert sent[0]["Body"] == "Yes, it left today."
    assert reply.provider_message_id == sent[0]["sid"]

    html = agent_client.get(url).content.decode()
    assert "Yes, it left today." in html
    assert "Reply queued." in html
    conversation = Conversation.objects.get(pk=conversation_pk(item))
    assert conversation.last_message_preview == "Yes, it left today."


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["", "   \n  "])
def test_empty_reply_shows_an_error(agent_client: Client, sms_channel, fake_twilio, body: str) -> None:
    item = inbound(sms_channel, "+14155550101", "hello?")
    resp = agent_client.post(f"/conversations/{item.conversation_id}/", {"body": body})
    assert resp.status_code == 200
    assert "Write a message before sending." in resp.content.decode()
    assert not Interaction.objects.filter(direction="outbound").exists()
    assert fake_twilio.messages == []


@pytest.mark.django_db
def test_rejected_send_is_shown_as_a_form_error(agent_client: Client, sms_channel) -> None:
    item = inbound(sms_channel, "+14155550101", "hello?")
    sms_channel.is_active = False
    sms_channel.save()
    resp = agent_client.post(f"/conversations/{item.conversation_id}/", {"body": "hi"})
    assert resp.status_code == 200
    assert "is not active" in resp.content.decode()
    assert "hi</textarea>" in resp.content.decode()  # the draft is kept

    sms_channel.is_active = True
    sms_channel.save()
    Identity.objects.filter(customer_id=item.customer_id).delete()
    resp = agent_client.post(f"/conversations/{item.conversation_id}/", {"body": "hi"})
    # The channel picker knows before sending: the reason it showed is the form error, nothing is stored.
    assert "cannot send on SMS: no phone number on file" in resp.content.decode()
    assert not Interaction.objects.filter(direction="outbound").exists()


@pytest.mark.django_db
def test_resolve_and_reopen(agent_client: Client, sms_channel, django_capture_on_commit_callbacks) -> None:
    item = inbound(sms_channel, "+14155550101", "thanks, all good")
    status_url = f"/conversations/{item.conversation_id}/status/"
    with django_capture_on_commit_callbacks() as callbacks:
        resp = agent_client.post(status_url, {"status": "resolved"})
    assert resp.status_code == 302
    assert len(callbacks) == 1  # the other consoles are told
    assert Conversation.objects.get(pk=conversation_pk(item)).status == "resolved"
    assert 'data-conversation-id="' not in agent_client.get("/").content.decode()
    assert (
        f'data-conversation-id="{item.conversation_id}"'
        in agent_client.get("/?status=resolved").content.decode()
    )
    page = agent_client.get(f"/conversations/{item.conversation_id}/").content.decode()
    assert 'value="open">Reopen' in page

    with django_capture_on_commit_callbacks() as callbacks:
        agent_client.post(status_url, {"status": "resolved"})  # a repeat changes nothing
    assert callbacks == []

    agent_client.post(status_url, {"status": "open"})
    assert Conversation.objects.get(pk=conversation_pk(item)).status == "open"
    agent_client.post(status_url, {"status": "bogus"})
    assert Conversation.objects.get(pk=conversation_pk(item)).status == "open"
    assert agent_client.get(status_url).status_code == 405


@pytest.mark.django_db
def test_conversation_page_query_count_does_not_grow_with_the_timeline(
    agent_client: Client, sms_channel, django_assert_max_num_queries
) -> None:
    from django.core.files.base import ContentFile
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from engagement.models import Attachment

    def add(n: int) -> Interaction:
        item = inbound(sms_channel, "+14155550100", f"photo {n}")
        Interaction.objects.filter(pk=item.pk).update(
            metadata={"media": [{"url": "", "content_type": "image/png"}]}
        )
        Attachment.objects.create(
            workspace=item.workspace,
            interaction=item,
            file=ContentFile(b"png", name=f"p{n}.png"),
            filename=f"p{n}.png",
            content_type="image/png",
            size=3,
        )
        return item

    first = add(0)
    url = f"/conversations/{first.conversation_id}/"
    agent_client.get(url)  # warm the session
    with CaptureQueriesContext(connection) as one:
        assert agent_client.get(url).status_code == 200
    for n in range(1, 15):
        add(n)
    with django_assert_max_num_queries(len(one.captured_queries)):
        page = agent_client.get(url).content.decode()
    assert "p14.png" in page or "/attachments/" in page
