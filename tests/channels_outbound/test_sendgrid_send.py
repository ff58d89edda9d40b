"""Outbound email through the real ``sendgrid`` SDK to the fake SendGrid: payload shape, threading
headers, reply-to, custom args, retryable and permanent errors, and RFC 8058 one-click unsubscribe."""

from __future__ import annotations

import pytest
from sendgrid import SendGridAPIClient

from channels_outbound.services import Outcome, outbound_interaction_send
from customers.consent import consent_state
from customers.models import ConsentEvent
from customers.services import Identifier, customer_resolve
from engagement.models import Conversation, Interaction
from engagement.services.email_threading import reply_address_conversation_id
from engagement.services.messaging import message_send

pytestmark = pytest.mark.django_db


def _queue(channel, to="grace@example.com", body="Your order has shipped.", conversation=None, **metadata):
    customer, _ = customer_resolve(workspace=channel.workspace, identifier=Identifier("email", to))
    interaction, _ = message_send(
        workspace=channel.workspace, channel=channel, customer=customer, body=body, conversation=conversation
    )
    if metadata:
        Interaction.objects.filter(pk=interaction.pk).update(metadata=metadata)
    return interaction


def test_send_posts_a_valid_mail_and_records_x_message_id(email_channel, fake_sendgrid):
    interaction = _queue(email_channel)
    attempt = outbound_interaction_send(interaction_id=interaction.pk)
    interaction.refresh_from_db()
    assert attempt.outcome == Outcome.SENT
    [sent] = fake_sendgrid.messages
    assert interaction.status == "sent"
    assert interaction.provider_message_id == sent["x_message_id"]
    assert sent["from"] == {"email": email_channel.address, "name": "Demo Support"}
    assert sent["personalizations"][0]["to"] == [{"email": "grace@example.com"}]
    assert [c["type"] for c in sent["content"]] == ["text/plain", "text/html"]
    assert sent["content"][0]["value"] == "Your order has shipped."
    assert sent["custom_args"] == {"iid": str(interaction.pk)}
    assert sent["headers"]["Message-ID"] == f"<{interaction.email_message_id}>"
    assert interaction.email_message_id.endswith("@mail.example.com")
    # The conversation's reply address routes the customer's answer back to this conversation.
    assert reply_address_conversation_id(sent["reply_to"]["email"]) == interaction.conversation_id
    assert sent["reply_to"]["email"].endswith("@inbound.example.com")
    assert "List-Unsubscribe" not in sent["headers"]


def test_agent_reply_threads_under_the_customers_mail(email_channel, fake_sendgrid):
    inbound = _queue(email_channel)  # stands in for an earlier mail in the conversation
    Interaction.objects.filter(pk=inbound.pk).update(
        direction="inbound",
        status="received",
        email_message_id="CAEPk3R+4Zr@mail.example.org",
        metadata={"email": {"references": ["root@mail.example.org"]}},
    )
    Conversation.objects.filter(pk=inbound.conversation_id).update(subject="Where is my parcel?")
    reply = _queue(email_channel, body="It left today.", conversation=inbound.conversation)
    outbound_interaction_send(interaction_id=reply.pk)
    [sent] = fake_sendgrid.messages
    assert sent["subject"] == "Re: Where is my parcel?"
    assert sent["headers"]["In-Reply-To"] == "<CAEPk3R+4Zr@mail.example.org>"
    assert sent["headers"]["References"] == "<root@mail.example.org> <CAEPk3R+4Zr@mail.example.org>"
    reply.refresh_from_db()
    assert reply.metadata["email"]["references"] == ["root@mail.example.org", "CAEPk3R+4Zr@mail.example.org"]


@pytest.mark.parametrize("http_status", [429, 500, 503])
def test_throttling_and_server_errors_are_retried_with_the_same_message_id(
    email_channel, fake_sendgrid, http_status
):
    fake_sendgrid.fail_next.append(http_status)
    interaction = _queue(email_channel)
    first = outbound_interaction_send(interaction_id=interaction.pk)
    interaction.refresh_from_db()
    assert first.outcome == Outcome.RETRY
    assert (interaction.status, interaction.error_code) == ("queued", str(http_status))
    message_id = interaction.email_message_id
    second = outbound_interaction_send(interaction_id=interaction.pk)
    interaction.refresh_from_db()
    assert second.outcome == Outcome.SENT
    assert interaction.email_message_id == message_id
    assert fake_sendgrid.messages[0]["headers"]["Message-ID"] == f"<{message_id}>"


def test_invalid_api_key_fails_without_retry(workspace, fake_sendgrid):
    from tests.fakes.sendgrid_server import sendgrid_channel

    channel = sendgrid_channel(workspace, fake_sendgrid, api_key="SG.wrong")
    interaction = _queue(channel)
    attempt = outbound_interaction_send(interaction_id=interaction.pk)
    interaction.refresh_from_db()
    assert attempt.outcome == Outcome.FAILED
    assert interaction.error_code == "401"
    assert "API key" in interaction.error_message


def test_payload_sendgrid_rejects_is_a_permanent_failure_with_its_reason(email_channel, fake_sendgrid):
    interaction = _queue(email_channel, to="someone@localhost")  # no dot in the domain: SendGrid says 400
    attempt = outbound_interaction_send(interaction_id=interaction.pk)
    interaction.refresh_from_db()
    assert attempt.outcome == Outcome.FAILED
    assert interaction.error_code == "400"
    assert "personalizations.0.to.0.email: Does not contain a valid address." in interaction.error_message


def test_network_failure_is_retried(workspace, fake_sendgrid):
    from tests.fakes.sendgrid_server import sendgrid_channel

    channel = sendgrid_channel(workspace, fake_sendgrid, api_base_url="http://127.0.0.1:9")
    attempt = outbound_interaction_send(interaction_id=_queue(channel).pk)
    assert attempt.outcome == Outcome.RETRY
    assert attempt.result is not None
    assert attempt.result.error_code == "network"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"headers": {"Reply-To": "x@example.com"}}, "headers"),
        ({"personalizations": []}, "personalizations"),
        ({"subject": ""}, "subject"),
        ({"custom_args": {"big": "x" * 10_001}}, "custom_args"),
        (
            {"content": [{"type": "text/html", "value": "<p>hi</p>"}, {"type": "text/plain", "value": "hi"}]},
            "content",
        ),
    ],
)
def test_fake_sendgrid_validates_like_sendgrid(fake_sendgrid, change, field):
    from python_http_client.exceptions import BadRequestsError

    payload = {
        "from": {"email": "support@mail.example.com"},
        "subject": "hello",
        "personalizations": [{"to": [{"email": "a@example.com"}]}],
        "content": [{"type": "text/plain", "value": "hi"}],
        **change,
    }
    client = SendGridAPIClient(fake_sendgrid.api_key, host=fake_sendgrid.url)
    with pytest.raises(BadRequestsError) as caught:
        client.send(payload)
    errors = caught.value.to_dict["errors"]
    assert any(e["field"] == field for e in errors), errors


# ---------------------------------------------------------------- one-click unsubscribe (RFC 8058)


def _marketing_sent(email_channel, fake_sendgrid) -> tuple[Interaction, str]:
    from customers.consent import consent_record

    interaction = _queue(email_channel, body="Our spring sale starts today!", purpose="marketing")
    consent_record(
        customer=interaction.customer, channel="email", purpose="marketing", status="opted_in", source="api"
    )
    outbound_interaction_send(interaction_id=interaction.pk)
    headers = fake_sendgrid.messages[0]["headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = headers["List-Unsubscribe"].strip("<>")
    assert url.startswith("http")
    return interaction, url.split("://", 1)[1].split("/", 1)[1]


def test_marketing_mail_one_click_unsubscribe_records_the_opt_out(client, email_channel, fake_sendgrid):
    interaction, path = _marketing_sent(email_channel, fake_sendgrid)
    resp = client.post(
        "/" + path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert resp.status_code == 200
    consent = ConsentEvent.objects.get(status="opted_out")
    assert (consent.customer_id, consent.channel, consent.status) == (
        interaction.customer_id,
        "email",
        "opted_out",
    )
    assert (consent.source, consent.purpose) == ("unsubscribe_link", "marketing")
    assert consent.evidence == {
        "interaction_id": interaction.pk,
        "channel_id": email_channel.pk,
        "method": "one-click",
    }
    assert consent_state(customer=interaction.customer, channel="email", purpose="marketing") == "opted_out"
    # Mailbox providers may repeat the POST: one ledger row.
    for _ in range(5):
        assert (
            client.post(
                "/" + path,
                data="List-Unsubscribe=One-Click",
                content_type="application/x-www-form-urlencoded",
            ).status_code
            == 200
        )
    assert ConsentEvent.objects.filter(status="opted_out").count() == 1


def test_get_on_the_unsubscribe_link_changes_nothing(client, email_channel, fake_sendgrid):
    _, path = _marketing_sent(email_channel, fake_sendgrid)
    resp = client.get("/" + path)
    assert resp.status_code == 200
    assert b'name="List-Unsubscribe" value="One-Click"' in resp.content
    assert ConsentEvent.objects.filter(status="opted_out").count() == 0


def test_forged_unsubscribe_token_is_404(client, email_channel, fake_sendgrid):
    _, path = _marketing_sent(email_channel, fake_sendgrid)
    token = path.rstrip("/").rsplit("/", 1)[1]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    resp = client.post(
        f"/unsubscribe/{forged}/",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert resp.status_code == 404
    assert ConsentEvent.objects.filter(status="opted_out").count() == 0
