"""SMS in full, outbound, through the real twilio SDK to the fake Twilio: media URLs as MediaUrl, segment
counts stored on the interaction, 21610 recorded in the consent ledger, Messaging Service or number."""

from __future__ import annotations

import pytest

from channels_outbound.services import Outcome, outbound_interaction_send
from customers.models import ConsentEvent
from customers.services import Identifier, customer_resolve
from engagement.models import Channel
from engagement.services.messaging import message_send
from engagement.services.sms import sms_encoding, sms_segment_count
from tests import factories
from tests.fakes.twilio_server import OPTED_OUT_NUMBER


def _queue(channel, to="+14155550123", body="hello"):
    customer, _ = customer_resolve(workspace=channel.workspace, identifier=Identifier("phone", to))
    interaction, _ = message_send(workspace=channel.workspace, channel=channel, customer=customer, body=body)
    return interaction


@pytest.mark.parametrize(
    ("body", "encoding", "segments"),
    [
        ("a" * 160, "gsm7", 1),
        ("a" * 161, "gsm7", 2),
        ("a" * 306, "gsm7", 2),
        ("a" * 307, "gsm7", 3),
        ("€" * 80, "gsm7", 1),  # extension characters take two septets each
        ("€" * 81, "gsm7", 2),
        ("é" * 160, "gsm7", 1),  # in the GSM-7 basic set
        ("ü" * 70 + "ł", "ucs2", 2),
        ("ł" * 70, "ucs2", 1),
        ("ł" * 134, "ucs2", 2),
        ("ł" * 135, "ucs2", 3),
        ("😀" * 35, "ucs2", 1),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, "ucs2", 2),
        ("", "gsm7", 1),
    ],
)
def test_segment_count(body, encoding, segments):
    assert (sms_encoding(body), sms_segment_count(body)) == (encoding, segments)


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "segments"), [("a" * 160, 1), ("a" * 161, 2), ("ł" * 70, 1), ("ł" * 71, 2)])
def test_sent_message_stores_the_providers_segment_count(sms_channel, fake_twilio, body, segments):
    interaction = _queue(sms_channel, body=body)
    outbound_interaction_send(interaction_id=interaction.pk)
    interaction.refresh_from_db()
    assert interaction.segments == segments


@pytest.mark.django_db
def test_sandbox_sends_store_our_segment_count(workspace):
    channel = Channel.objects.create(
        workspace=workspace, kind="sms", provider="sandbox", name="sandbox", address="+14155550042"
    )
    interaction = _queue(channel, body="ł" * 71)
    outbound_interaction_send(interaction_id=interaction.pk)
    interaction.refresh_from_db()
    assert interaction.segments == 2


@pytest.mark.django_db
def test_media_urls_go_out_as_repeated_media_url(sms_channel, fake_twilio):
    urls = ["https://cdn.example.com/receipt.png", "https://cdn.example.com/map.jpg"]
    customer, _ = customer_resolve(
        workspace=sms_channel.workspace, identifier=Identifier("phone", "+14155550123")
    )
    interaction, _ = message_send(
        workspace=sms_channel.workspace,
        channel=sms_channel,
        customer=customer,
        body="Your receipt",
        media_urls=urls,
    )
    assert outbound_interaction_send(interaction_id=interaction.pk).outcome == Outcome.SENT
    assert fake_twilio.messages[0]["MediaUrl"] == urls


@pytest.mark.django_db
def test_21610_on_send_records_the_opt_out_in_consent(sms_channel, fake_twilio):
    interaction = _queue(sms_channel, to=OPTED_OUT_NUMBER)
    attempt = outbound_interaction_send(interaction_id=interaction.pk)
    assert attempt.outcome == Outcome.FAILED
    consent = ConsentEvent.objects.get(customer=interaction.customer)
    assert (consent.channel, consent.status, consent.source) == ("sms", "opted_out", "provider_error")
    assert consent.evidence["error_code"] == "21610"
    assert consent.evidence["interaction_id"] == interaction.pk


@pytest.mark.django_db
def test_other_permanent_errors_do_not_touch_consent(sms_channel, fake_twilio):
    from tests.fakes.twilio_server import INVALID_NUMBER

    interaction = _queue(sms_channel, to=INVALID_NUMBER)
    outbound_interaction_send(interaction_id=interaction.pk)
    assert ConsentEvent.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("service_sid", ["", "MG" + "2" * 32])
def test_sends_through_a_number_or_a_messaging_service(workspace, fake_twilio, service_sid):
    channel = factories.twilio_channel(workspace, fake_twilio, messaging_service_sid=service_sid)
    interaction = _queue(channel)
    assert outbound_interaction_send(interaction_id=interaction.pk).outcome == Outcome.SENT
    sent = fake_twilio.messages[0]
    if service_sid:
        assert (sent["MessagingServiceSid"], "From" in sent) == (service_sid, False)
    else:
        assert (sent["From"], "MessagingServiceSid" in sent) == (channel.address, False)


@pytest.mark.django_db
def test_media_limits(sms_channel, voice_channel_for_limits):
    from engagement.services.messaging import SendRejected

    customer, _ = customer_resolve(
        workspace=sms_channel.workspace, identifier=Identifier("phone", "+14155550123")
    )
    with pytest.raises(SendRejected, match="at most 10"):
        message_send(
            workspace=sms_channel.workspace,
            channel=sms_channel,
            customer=customer,
            body="x",
            media_urls=[f"https://cdn.example.com/{n}.png" for n in range(11)],
        )
    with pytest.raises(SendRejected, match="cannot carry media"):
        message_send(
            workspace=sms_channel.workspace,
            channel=voice_channel_for_limits,
            customer=customer,
            body="x",
            media_urls=["https://cdn.example.com/a.png"],
        )


@pytest.fixture
def voice_channel_for_limits(workspace, fake_twilio):
    return factories.twilio_channel(workspace, fake_twilio, kind="voice")


@pytest.mark.django_db
def test_api_sends_an_mms_and_reports_segments(
    client, sms_channel, fake_twilio, django_capture_on_commit_callbacks
):
    from engagement.services.tenancy import api_key_create

    _, key = api_key_create(workspace=sms_channel.workspace, name="t")
    headers = {"Authorization": f"Bearer {key}"}
    payload = {
        "channel_id": sms_channel.pk,
        "to": "+14155550123",
        "body": "ł" * 71,
        "media_urls": ["https://cdn.example.com/a.png"],
    }
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post("/api/v1/messages/", payload, content_type="application/json", headers=headers)
    assert resp.status_code == 202, resp.content
    assert fake_twilio.messages[0]["MediaUrl"] == ["https://cdn.example.com/a.png"]
    detail = client.get(f"/api/v1/interactions/{resp.json()['id']}/", headers=headers).json()
    assert (detail["segments"], detail["call_outcome"], detail["duration_seconds"]) == (2, "", None)
    too_many = {**payload, "media_urls": [f"https://cdn.example.com/{n}.png" for n in range(11)]}
    assert (
        client.post(
            "/api/v1/messages/", too_many, content_type="application/json", headers=headers
        ).status_code
        == 400
    )
