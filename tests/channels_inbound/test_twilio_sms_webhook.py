"""Inbound SMS through the real webhook endpoint with captured Twilio payloads. The security cases (bad or
missing signature, replays, another workspace, oversized) are the shared ones in test_twilio_security.py."""

from __future__ import annotations

import pytest
from django.db import connection

from channels_inbound.models import InboundRequest, ProviderEvent
from customers.models import Customer, Identity
from engagement.models import AutomationRule, Conversation, Interaction, OutboxEvent
from tests.conftest import load_payload, post_twilio


def _db_snapshot() -> dict[str, list[tuple]]:
    with connection.cursor() as cur:
        snap = {}
        for table, cols in [
            ("customers_customer", "id, display_name"),
            ("customers_identity", "id, customer_id, kind, value"),
            ("engagement_conversation", "id, customer_id, status, last_message_preview"),
            (
                "engagement_interaction",
                "id, customer_id, conversation_id, direction, body, status, provider_message_id",
            ),
            ("channels_inbound_providerevent", "id, provider_event_id, processed_at IS NOT NULL"),
        ]:
            cur.execute(f"SELECT {cols} FROM {table} ORDER BY id")  # noqa: S608 - fixed names
            snap[table] = cur.fetchall()
        return snap


@pytest.mark.django_db
def test_captured_inbound_sms_lands_on_timeline(client, sms_channel, django_capture_on_commit_callbacks):
    form = load_payload("twilio_inbound_sms.txt")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        resp = post_twilio(client, sms_channel, "inbound", form)
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/xml")
    assert b"<Response" in resp.content
    assert b"<Message" not in resp.content
    identity = Identity.objects.get(workspace=sms_channel.workspace, kind="phone")
    assert identity.value == "+19089061042"
    interaction = Interaction.objects.get()
    assert interaction.customer_id == identity.customer_id
    assert interaction.direction == "inbound"
    assert interaction.body == "Task from conference nast"
    assert interaction.provider_message_id == form["MessageSid"]
    assert interaction.conversation is not None
    assert interaction.conversation.channel_id == sms_channel.pk
    assert ProviderEvent.objects.get().processed_at is not None
    # Nothing ran inside the request: automation and realtime wait in the outbox, written in the same
    # transaction (one INSERT per publish), for the relay after the commit.
    assert list(OutboxEvent.objects.order_by("id").values_list("name", "customer_id", "relayed_at")) == [
        ("customer.created", identity.customer_id, None),
        ("conversation.opened", identity.customer_id, None),
        ("message.received", identity.customer_id, None),
    ]
    # The unit tests' inline relay, one per publish (customer.created is published by resolution, the
    # conversation and message events by the timeline); production's relay is its own process.
    assert len(callbacks) == 2


@pytest.mark.django_db
def test_replaying_an_inbound_webhook_five_times_equals_once(client, sms_channel):
    form = load_payload("twilio_inbound_sms.txt")
    AutomationRule.objects.create(
        workspace=sms_channel.workspace, name="r", match_type="any", template="got it"
    )
    assert post_twilio(client, sms_channel, "inbound", form).status_code == 200
    once = _db_snapshot()
    for _ in range(5):
        assert post_twilio(client, sms_channel, "inbound", form).status_code == 200
    assert _db_snapshot() == once


@pytest.mark.django_db
def test_second_message_from_same_number_joins_customer_and_conversation(client, sms_channel):
    form = load_payload("twilio_inbound_sms.txt")
    post_twilio(client, sms_channel, "inbound", form)
    post_twilio(client, sms_channel, "inbound", {**form, "MessageSid": "SM" + "1" * 32, "Body": "again"})
    assert Customer.objects.count() == 1
    assert Conversation.objects.count() == 1
    assert list(Interaction.objects.order_by("id").values_list("body", flat=True)) == [
        "Task from conference nast",
        "again",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"From": None}, "missing required field(s): From"),
        ({"MessageSid": None}, "missing required field(s): MessageSid"),
        ({"NumMedia": "two"}, "NumMedia must be a whole number"),
        ({"NumMedia": "1"}, "MediaUrl0 is missing"),
        ({"Body": ""}, "needs a Body or media"),
    ],
)
def test_malformed_inbound_is_kept_unprocessed_with_reason(client, sms_channel, change, message):
    form = load_payload("twilio_inbound_sms.txt")
    for key, value in change.items():
        if value is None:
            form.pop(key)
        else:
            form[key] = value
    resp = post_twilio(client, sms_channel, "inbound", form)
    assert resp.status_code == 200
    assert message in InboundRequest.objects.get().last_error
    assert Interaction.objects.count() == 0


@pytest.mark.django_db
def test_unknown_channel_token_is_404(client, sms_channel):
    resp = client.post("/webhooks/twilio/nope/inbound/", data={"MessageSid": "SM1"})
    assert resp.status_code == 404


@pytest.mark.django_db
def test_mms_media_is_recorded(client, sms_channel):
    form = load_payload("twilio_inbound_mms.json")
    assert post_twilio(client, sms_channel, "inbound", form).status_code == 200
    interaction = Interaction.objects.get()
    assert [m["content_type"] for m in interaction.metadata["media"]] == ["image/jpeg", "video/mp4"]


@pytest.mark.django_db
def test_ingestion_query_count_is_bounded(client, sms_channel, django_assert_max_num_queries):
    form = load_payload("twilio_inbound_sms.txt")
    post_twilio(client, sms_channel, "inbound", form)  # warm: customer and conversation exist
    # A returning sender: channel; transaction (a savepoint here, inside the test's); event insert;
    # apply savepoint; identity; conversation (locked); interaction insert carrying its segment count;
    # conversation update; the outbox insert (one for the event, the transactional outbox's cost, which
    # replaces the realtime push and task publish the request used to make). Raise this only with a reason.
    with django_assert_max_num_queries(11):
        post_twilio(client, sms_channel, "inbound", {**form, "MessageSid": "SM" + "2" * 32})
    assert Interaction.objects.get(provider_message_id="SM" + "2" * 32).segments == 1


@pytest.mark.django_db
def test_event_is_stored_even_when_applying_it_fails_and_a_retry_applies_it(sms_channel):
    from django.utils import timezone

    from channels_inbound.services import events_ingest
    from customers.services import Identifier, InvalidIdentifier
    from engagement.inbound import InboundMessage

    broken = InboundMessage(
        provider_event_id="SMfails",
        sender=Identifier("phone", "not a number"),
        body="hi",
        occurred_at=timezone.now(),
    )
    with pytest.raises(InvalidIdentifier):
        events_ingest(channel=sms_channel, events=[broken])
    stored = ProviderEvent.objects.get(provider_event_id="SMfails")
    assert stored.processed_at is None
    assert "InvalidIdentifier" in stored.last_error
    assert Interaction.objects.count() == 0

    fixed = InboundMessage(
        provider_event_id="SMfails",
        sender=Identifier("phone", "+14155550100"),
        body="hi",
        occurred_at=timezone.now(),
    )
    assert events_ingest(channel=sms_channel, events=[fixed]) == 1
    assert events_ingest(channel=sms_channel, events=[fixed]) == 0
    stored.refresh_from_db()
    assert stored.processed_at is not None
    assert stored.attempts == 2
    assert Interaction.objects.get().body == "hi"
