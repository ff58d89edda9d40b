"""SendGrid's signed Event Webhook through the real endpoint: the published ECDSA test vector, the
recorded batch mapped onto status, engagement and consent, replays, bad signatures and bad payloads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from channels_inbound.models import InboundRequest, ProviderEvent
from customers.consent import consent_state
from customers.models import ConsentEvent
from customers.services import Identifier, customer_resolve
from engagement.models import Interaction
from tests.conftest import load_payload, webhook_path
from tests.fakes.sendgrid_server import signed_event_headers

pytestmark = pytest.mark.django_db

BATCH_IDS = {
    "wrfRRvF7Q0GgwUo2CvDmEA": "processed, delivered, open",
    "filter0093p1las1": "dropped (invalid)",
    "14c5d75ce93": "dropped (bounced address)",
    "Lli-03HcQ5-JLybO9fXsJg": "bounce",
    "u9Gvi3mzT6iC2poAb58_qQ": "deferred",
    "_fjPjuJfRW-IPs5SuvYotg": "click",
}


def post_events(client, channel, body: bytes, headers: dict[str, str]):
    return client.post(
        webhook_path(channel, "events"), data=body, content_type="application/json", headers=headers
    )


def post_signed(client, channel, fake, events) -> Any:
    body = (json.dumps(events) + "\r\n").encode()
    return post_events(client, channel, body, signed_event_headers(fake.private_key, body))


def outbound(channel, provider_message_id: str, address: str = "recipient@example.com") -> Interaction:
    customer, _ = customer_resolve(workspace=channel.workspace, identifier=Identifier("email", address))
    now = timezone.now()
    return Interaction.objects.create(
        workspace=channel.workspace,
        customer=customer,
        channel=channel,
        direction="outbound",
        body="hello",
        customer_address=address,
        status="sent",
        status_changed_at=now,
        provider_message_id=provider_message_id,
        created_at=now,
    )


def _snapshot():
    with connection.cursor() as cur:
        snap = {}
        for table, cols in [
            ("engagement_interaction", "id, status, error_code, metadata::text"),
            ("channels_inbound_providerevent", "id, provider_event_id, processed_at IS NOT NULL"),
            ("customers_consentevent", "id, customer_id, status, source, purpose"),
        ]:
            cur.execute(f"SELECT {cols} FROM {table} ORDER BY id")  # noqa: S608 - fixed names
            snap[table] = cur.fetchall()
        return snap


# ---------------------------------------------------------------- signature


def test_published_test_vector_verifies(client, email_channel):
    vector = load_payload("sendgrid_signed_event_webhook_test_vector.json")
    email_channel.config["event_webhook_public_key"] = vector["public_key_b64"]
    email_channel.save()
    resp = post_events(
        client,
        email_channel,
        vector["raw_body_exact"].encode(),
        {
            "X-Twilio-Email-Event-Webhook-Signature": vector["header_X-Twilio-Email-Event-Webhook-Signature"],
            "X-Twilio-Email-Event-Webhook-Timestamp": vector["header_X-Twilio-Email-Event-Webhook-Timestamp"],
        },
    )
    assert resp.status_code == 200, resp.content
    event = ProviderEvent.objects.get()
    assert event.provider_event_id == "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA"
    assert event.processed_at is not None  # an unknown message: stored, nothing to change


@pytest.mark.parametrize(
    "tamper",
    ["wrong_key", "strip_crlf", "other_timestamp", "no_signature", "garbage_signature", "no_key"],
)
def test_bad_signature_is_403_and_stores_nothing(client, email_channel, tamper):
    vector = load_payload("sendgrid_signed_event_webhook_test_vector.json")
    email_channel.config["event_webhook_public_key"] = vector["public_key_b64"]
    body = vector["raw_body_exact"].encode()
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": vector["header_X-Twilio-Email-Event-Webhook-Signature"],
        "X-Twilio-Email-Event-Webhook-Timestamp": vector["header_X-Twilio-Email-Event-Webhook-Timestamp"],
    }
    if tamper == "wrong_key":
        email_channel.config["event_webhook_public_key"] = vector["wrong_key_for_negative_test"]
    elif tamper == "strip_crlf":
        body = body.rstrip(b"\r\n")
    elif tamper == "other_timestamp":
        headers["X-Twilio-Email-Event-Webhook-Timestamp"] = "1600112503"
    elif tamper == "no_signature":
        headers.pop("X-Twilio-Email-Event-Webhook-Signature")
    elif tamper == "garbage_signature":
        headers["X-Twilio-Email-Event-Webhook-Signature"] = "not base64!"
    elif tamper == "no_key":
        email_channel.config.pop("event_webhook_public_key")
    email_channel.save()
    assert post_events(client, email_channel, body, headers).status_code == 403
    assert ProviderEvent.objects.count() == 0


def test_event_signed_for_another_channel_is_403(client, email_channel, fake_sendgrid):
    from tests.fakes.sendgrid_server import keypair

    other_key, _ = keypair()
    body = b'[{"event":"delivered","sg_event_id":"x1","timestamp":1600000000}]'
    assert post_events(client, email_channel, body, signed_event_headers(other_key, body)).status_code == 403


# ---------------------------------------------------------------- mapping


def test_recorded_batch_maps_onto_status_engagement_and_consent(client, email_channel, fake_sendgrid):
    sent = {
        prefix: outbound(email_channel, prefix, f"r{n}@example.com") for n, prefix in enumerate(BATCH_IDS)
    }
    batch = load_payload("sendgrid_event_webhook_batch.json")
    resp = post_signed(client, email_channel, fake_sendgrid, batch)
    assert resp.status_code == 200, resp.content
    assert ProviderEvent.objects.count() == len(batch)
    for i in sent.values():
        i.refresh_from_db()
    main = sent["wrfRRvF7Q0GgwUo2CvDmEA"]
    assert main.status == "read"  # processed → sent, delivered, then the open
    assert main.metadata["engagement"]["opens"] == 1
    assert (sent["filter0093p1las1"].status, sent["filter0093p1las1"].error_message) == ("failed", "Invalid")
    assert sent["14c5d75ce93"].status == "failed"
    bounce = sent["Lli-03HcQ5-JLybO9fXsJg"]
    assert (bounce.status, bounce.error_code) == ("undelivered", "5.1.1")
    assert "does not exist" in bounce.error_message
    assert sent["u9Gvi3mzT6iC2poAb58_qQ"].status == "sent"  # deferred: still trying
    click = sent["_fjPjuJfRW-IPs5SuvYotg"]
    assert click.status == "read"
    assert click.metadata["engagement"]["clicks"] == 1
    assert click.metadata["engagement"]["clicked_urls"] == {"http://www.example.com": 1}
    # The hard bounce is the batch's only opt-out: the address is gone, for every purpose.
    consent = ConsentEvent.objects.get()
    assert (consent.customer_id, consent.channel, consent.status) == (
        bounce.customer_id,
        "email",
        "opted_out",
    )
    assert (consent.source, consent.purpose) == ("hard_bounce", "")
    assert consent.evidence["sg_event_id"] == "lC0Rc-FuQmKbnxCWxX1jRQ"


def test_replaying_a_batch_five_times_equals_once(client, email_channel, fake_sendgrid):
    for prefix in BATCH_IDS:
        outbound(email_channel, prefix, f"{prefix.lower()}@example.com")
    batch = load_payload("sendgrid_event_webhook_batch.json")
    extra = [
        {
            "event": "spamreport",
            "sg_event_id": "spam-1",
            "sg_message_id": "wrfRRvF7Q0GgwUo2CvDmEA.x",
            "timestamp": 1461095300,
        },
        {
            "event": "click",
            "sg_event_id": "click-2",
            "sg_message_id": "wrfRRvF7Q0GgwUo2CvDmEA.x",
            "timestamp": 1461095301,
            "url": "https://a.example",
        },
    ]
    assert post_signed(client, email_channel, fake_sendgrid, batch + extra).status_code == 200
    once = _snapshot()
    for _ in range(5):
        assert post_signed(client, email_channel, fake_sendgrid, batch + extra).status_code == 200
    assert _snapshot() == once


@pytest.mark.parametrize(
    ("event", "source", "purpose"),
    [
        ({"event": "spamreport"}, "spam_report", ""),
        ({"event": "unsubscribe"}, "provider_unsubscribe", "marketing"),
        ({"event": "group_unsubscribe", "asm_group_id": 42}, "provider_unsubscribe", "marketing"),
        (
            {"event": "bounce", "type": "bounce", "status": "5.1.1", "reason": "no such user"},
            "hard_bounce",
            "",
        ),
    ],
)
def test_opt_out_events_go_to_the_consent_ledger(
    client, email_channel, fake_sendgrid, event, source, purpose
):
    interaction = outbound(email_channel, "MSGID0001")
    payload = {"sg_event_id": "ev-1", "sg_message_id": "MSGID0001.filter.0", "timestamp": 1700000000, **event}
    assert post_signed(client, email_channel, fake_sendgrid, [payload]).status_code == 200
    consent = ConsentEvent.objects.get()
    assert (consent.customer_id, consent.status, consent.source, consent.purpose) == (
        interaction.customer_id,
        "opted_out",
        source,
        purpose,
    )
    assert consent_state(customer=interaction.customer, channel="email", purpose="marketing") == "opted_out"


def test_blocked_bounce_is_undelivered_but_no_opt_out(client, email_channel, fake_sendgrid):
    interaction = outbound(email_channel, "MSGID0002")
    payload = {
        "event": "bounce",
        "type": "blocked",
        "sg_event_id": "ev-2",
        "sg_message_id": "MSGID0002.f.0",
        "timestamp": 1700000000,
        "reason": "IP blocklisted",
    }
    assert post_signed(client, email_channel, fake_sendgrid, [payload]).status_code == 200
    interaction.refresh_from_db()
    assert interaction.status == "undelivered"
    assert ConsentEvent.objects.count() == 0


def test_our_custom_arg_finds_the_interaction_within_the_channel_only(client, email_channel, fake_sendgrid):
    from tests import factories
    from tests.fakes.sendgrid_server import sendgrid_channel

    ours = outbound(email_channel, "")
    other_channel = sendgrid_channel(factories.workspace_create(), fake_sendgrid)
    theirs = outbound(other_channel, "")
    events = [
        {
            "event": "delivered",
            "sg_event_id": "d-1",
            "sg_message_id": "AAA.x.0",
            "timestamp": 1700000000,
            "iid": str(ours.pk),
        },
        {
            "event": "delivered",
            "sg_event_id": "d-2",
            "sg_message_id": "BBB.x.0",
            "timestamp": 1700000000,
            "iid": str(theirs.pk),
        },
    ]
    assert post_signed(client, email_channel, fake_sendgrid, events).status_code == 200
    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert ours.status == "delivered"
    assert ours.provider_message_id == "AAA"
    assert theirs.status == "sent"


def test_unknown_event_types_are_acknowledged_and_ignored(client, email_channel, fake_sendgrid):
    payload = [{"event": "account_status_change", "sg_event_id": "u-1", "timestamp": 1700000000}]
    assert post_signed(client, email_channel, fake_sendgrid, payload).status_code == 200
    assert ProviderEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "body is not valid JSON"),
        (b'{"event": "delivered"}', "expected a JSON array"),
        (b'["delivered"]', "event 0 is not a JSON object"),
        (
            b'[{"event": "delivered", "timestamp": 1700000000}]',
            "event 0: missing required field(s): sg_event_id",
        ),
        (
            b'[{"event": "open", "sg_event_id": "a", "timestamp": "yesterday"}]',
            "timestamp must be unix seconds",
        ),
    ],
)
def test_malformed_events_are_kept_unprocessed_with_reason(
    client, email_channel, fake_sendgrid, body, message
):
    # Signed, so authentic: SendGrid gets a 2xx (it would drop a 4xx batch) and the batch is kept as sent.
    resp = post_events(client, email_channel, body, signed_event_headers(fake_sendgrid.private_key, body))
    assert resp.status_code == 200
    kept = InboundRequest.objects.get()
    assert message in kept.last_error
    assert bytes(kept.body) == body
    assert ProviderEvent.objects.count() == 0


def test_oversized_event_batch_is_413(client, email_channel, fake_sendgrid, settings):
    settings.EMAIL_EVENTS_MAX_BYTES = 1024
    events = [{"event": "open", "sg_event_id": f"o-{n}", "timestamp": 1700000000} for n in range(50)]
    assert post_signed(client, email_channel, fake_sendgrid, events).status_code == 413
    assert ProviderEvent.objects.count() == 0
