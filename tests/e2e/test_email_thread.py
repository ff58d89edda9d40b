"""An email thread end to end: the customer writes, an agent replies through the sendgrid SDK, and the
customer answers from another mail client that keeps only ``References`` (no In-Reply-To, not to our
reply address). All of it lands on one conversation on the customer's timeline.

The first test runs tasks eagerly through the real endpoints; the second runs a real Celery worker and
a live server, with the fake SendGrid posting signed delivery events back."""

from __future__ import annotations

import json
from email.message import EmailMessage
from typing import Any

import pytest

from engagement.models import Conversation, Interaction
from engagement.services.email_threading import reply_address_conversation_id
from engagement.services.messaging import message_send
from engagement.services.tenancy import api_key_create
from tests import factories
from tests.conftest import wait_for, webhook_path
from tests.fakes.sendgrid_server import (
    INBOUND_PASSWORD,
    INBOUND_USER,
    basic_auth,
    multipart_body,
    sendgrid_channel,
)

CUSTOMER = "Grace Hopper <grace@customer.example>"


def mail(*, to: str, subject: str, text: str, message_id: str, **headers: str) -> dict[str, str | bytes]:
    msg = EmailMessage()
    msg["From"] = CUSTOMER
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(text)
    return {
        "email": msg.as_bytes(),
        "from": CUSTOMER,
        "to": to,
        "subject": subject,
        "envelope": json.dumps({"to": [to], "from": "grace@customer.example"}),
        "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8"}),
    }


def post_mail(client: Any, channel: Any, fields: dict[str, str | bytes]) -> int:
    body, content_type = multipart_body(fields)
    resp = client.post(
        webhook_path(channel, "inbound"),
        data=body,
        content_type=content_type,
        headers={"Authorization": basic_auth(INBOUND_USER, INBOUND_PASSWORD)},
    )
    return int(resp.status_code)


@pytest.mark.django_db
def test_inbound_reply_and_references_only_answer_share_one_conversation(
    client, email_channel, fake_sendgrid, agent, django_capture_on_commit_callbacks
):
    first = mail(
        to=email_channel.address,
        subject="Broken invoice",
        text="Hi, my invoice shows the wrong amount.",
        message_id="<first.1@customer.example>",
    )
    assert post_mail(client, email_channel, first) == 200
    inbound = Interaction.objects.get()
    conversation = inbound.conversation
    assert conversation is not None

    with django_capture_on_commit_callbacks(execute=True):  # the send task runs after commit
        reply, _ = message_send(
            workspace=email_channel.workspace,
            channel=email_channel,
            customer=inbound.customer,
            conversation=conversation,
            body="Sorry about that - a corrected invoice is attached to your account.",
            author=agent,
        )
    reply.refresh_from_db()
    assert reply.status == "sent"
    [sent] = fake_sendgrid.messages
    assert sent["subject"] == "Re: Broken invoice"
    assert sent["headers"]["In-Reply-To"] == "<first.1@customer.example>"
    assert sent["headers"]["References"] == "<first.1@customer.example>"
    assert reply_address_conversation_id(sent["reply_to"]["email"]) == conversation.pk

    # Another client: answers our address (not the reply+ one) and keeps only References.
    answer = mail(
        to=email_channel.address,
        subject="Re: Broken invoice",
        text="Thanks, that fixed it.\n\nOn Monday Support wrote:\n> Sorry about that",
        message_id="<answer.2@other-client.example>",
        References=f"<first.1@customer.example> {sent['headers']['Message-ID']}",
    )
    assert post_mail(client, email_channel, answer) == 200
    # A mail that names no thread starts a new conversation.
    unrelated = mail(
        to=email_channel.address,
        subject="New question",
        text="Do you ship to Norway?",
        message_id="<new.3@customer.example>",
    )
    assert post_mail(client, email_channel, unrelated) == 200

    thread = list(
        Interaction.objects.filter(conversation=conversation)
        .order_by("created_at", "id")
        .values_list("direction", "body")
    )
    assert [d for d, _ in thread] == ["inbound", "outbound", "inbound"]
    assert thread[2][1].startswith("Thanks, that fixed it.")
    assert Conversation.objects.filter(customer=inbound.customer).count() == 2
    conversation.refresh_from_db()
    assert conversation.last_message_preview == "Thanks, that fixed it.\n"

    # The customer's timeline through the API: all four interactions, one customer.
    _, api_key = api_key_create(workspace=email_channel.workspace, name="t")
    timeline = client.get(
        f"/api/v1/customers/{inbound.customer_id}/timeline/", headers={"Authorization": f"Bearer {api_key}"}
    ).json()
    assert [(i["direction"], i["conversation_id"]) for i in timeline["results"]][1:] == [
        ("inbound", conversation.pk),
        ("outbound", conversation.pk),
        ("inbound", conversation.pk),
    ]


@pytest.mark.django_db
def test_reply_to_address_wins_even_without_references(
    client, email_channel, fake_sendgrid, agent, django_capture_on_commit_callbacks
):
    assert (
        post_mail(
            client,
            email_channel,
            mail(
                to=email_channel.address, subject="Hello", text="First", message_id="<a.1@customer.example>"
            ),
        )
        == 200
    )
    inbound = Interaction.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        message_send(
            workspace=email_channel.workspace,
            channel=email_channel,
            customer=inbound.customer,
            conversation=inbound.conversation,
            body="Answer",
            author=agent,
        )
    reply_to = fake_sendgrid.messages[0]["reply_to"]["email"]
    answer = mail(to=reply_to, subject="Re: Hello", text="Thanks", message_id="<a.2@customer.example>")
    assert post_mail(client, email_channel, answer) == 200
    assert Conversation.objects.count() == 1
    # A forged token on a real conversation id opens a new conversation instead.
    forged = reply_to.split("-", 1)[0] + "-" + "0" * 20 + "@" + reply_to.split("@")[1]
    assert (
        post_mail(client, email_channel, mail(to=forged, subject="x", text="y", message_id="<a.3@c.example>"))
        == 200
    )
    assert Conversation.objects.count() == 2


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_email_thread_through_a_real_worker_with_signed_delivery_events(
    live_server, celery_worker_process, fake_sendgrid
):
    import httpx

    workspace = factories.workspace_create()
    channel = sendgrid_channel(workspace, fake_sendgrid)
    fake_sendgrid.event_webhook_url = f"{live_server.url}{webhook_path(channel, 'events')}"
    _, api_key = api_key_create(workspace=workspace, name="e2e")
    auth = {"Authorization": basic_auth(INBOUND_USER, INBOUND_PASSWORD)}
    inbound_url = f"{live_server.url}{webhook_path(channel, 'inbound')}"

    def post(fields: dict[str, str | bytes]) -> int:
        body, content_type = multipart_body(fields)
        return httpx.post(
            inbound_url, content=body, headers={**auth, "Content-Type": content_type}
        ).status_code

    first = mail(
        to=channel.address, subject="Order 42", text="Where is order 42?", message_id="<o42@customer.example>"
    )
    assert post(first) == 200
    inbound = Interaction.objects.get()
    headers = {"Authorization": f"Bearer {api_key}"}
    resp = httpx.post(
        f"{live_server.url}/api/v1/messages/",
        headers=headers,
        json={"channel_id": channel.pk, "customer_id": inbound.customer_id, "body": "It ships tomorrow."},
    )
    assert resp.status_code == 202, resp.text
    outbound = wait_for(lambda: Interaction.objects.filter(direction="outbound", status="delivered").first())
    assert outbound.conversation_id == inbound.conversation_id
    sent = fake_sendgrid.messages[0]
    assert sent["custom_args"] == {"iid": str(outbound.pk)}
    wait_for(lambda: len(fake_sendgrid.events_posted) == 2)  # the fake records after our 200
    assert [status for _, status in fake_sendgrid.events_posted] == [200, 200]

    answer = mail(
        to=channel.address,
        subject="Re: Order 42",
        text="Great, thanks!",
        message_id="<o42.reply@webmail.example>",
        References=sent["headers"]["Message-ID"],
    )
    for _ in range(3):  # SendGrid may post twice; a replay changes nothing
        assert post(answer) == 200
    assert Interaction.objects.filter(conversation=inbound.conversation).count() == 3
    assert Conversation.objects.count() == 1


@pytest.mark.django_db
def test_demo_seed_shows_grace_hoppers_email_thread_beside_her_sms():
    from engagement.services.demo import demo_workspace_seed

    seed = demo_workspace_seed()
    demo_workspace_seed()  # idempotent
    email_channel = seed.workspace.channels.get(kind="email")
    assert email_channel.provider == "sandbox"
    [conversation] = Conversation.objects.filter(channel=email_channel)
    assert [i.direction for i in conversation.interactions.order_by("created_at")] == [
        "inbound",
        "outbound",
        "inbound",
    ]
    sms = Conversation.objects.get(channel=seed.sms_channel, customer=conversation.customer)
    assert conversation.customer.display_name == "Grace Hopper"
    assert sms.customer_id == conversation.customer_id
