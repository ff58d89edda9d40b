"""Twilio status callbacks move an outbound message's status forward only; repeats change nothing."""

from __future__ import annotations

import pytest
from django.utils import timezone

from channels_inbound.models import InboundRequest, ProviderEvent
from engagement.models import Interaction
from tests import factories
from tests.conftest import load_payload, post_twilio


def _outbound(channel, sid="SM3eab196XXXXXXXXXXXXXeceaa93", status="sent"):
    customer_ident = "+14155550100"
    from customers.services import Identifier, customer_resolve

    customer, _ = customer_resolve(
        workspace=channel.workspace, identifier=Identifier("phone", customer_ident)
    )
    now = timezone.now()
    return Interaction.objects.create(
        workspace=channel.workspace,
        customer=customer,
        channel=channel,
        direction="outbound",
        body="hi",
        customer_address=customer_ident,
        status=status,
        status_changed_at=now,
        provider_message_id=sid,
        created_at=now,
    )


@pytest.mark.django_db
def test_captured_sent_then_delivered(client, sms_channel):
    interaction = _outbound(sms_channel, status="queued")
    sent, delivered = load_payload("twilio_status_callback_sent_then_delivered.json")
    assert post_twilio(client, sms_channel, "status", sent).status_code == 200
    interaction.refresh_from_db()
    assert interaction.status == "sent"
    assert post_twilio(client, sms_channel, "status", delivered).status_code == 200
    interaction.refresh_from_db()
    assert interaction.status == "delivered"


@pytest.mark.django_db
def test_late_sent_never_overwrites_delivered_and_repeats_change_nothing(client, sms_channel):
    interaction = _outbound(sms_channel)
    sent, delivered = load_payload("twilio_status_callback_sent_then_delivered.json")
    post_twilio(client, sms_channel, "status", delivered)
    for _ in range(5):
        assert post_twilio(client, sms_channel, "status", sent).status_code == 200
        assert post_twilio(client, sms_channel, "status", delivered).status_code == 200
    interaction.refresh_from_db()
    assert interaction.status == "delivered"
    assert ProviderEvent.objects.count() == 2


@pytest.mark.django_db
def test_failed_callback_records_error_code(client, sms_channel):
    interaction = _outbound(sms_channel)
    form = {
        "MessageSid": interaction.provider_message_id,
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "AccountSid": "AC1",
    }
    post_twilio(client, sms_channel, "status", form)
    interaction.refresh_from_db()
    assert (interaction.status, interaction.error_code) == ("undelivered", "30003")
    # A terminal outcome is never replaced by another one arriving later.
    post_twilio(client, sms_channel, "status", {**form, "MessageStatus": "delivered", "ErrorCode": ""})
    interaction.refresh_from_db()
    assert interaction.status == "undelivered"


@pytest.mark.django_db
def test_callback_finds_message_by_our_id_before_the_sid_is_stored(client, sms_channel):
    interaction = _outbound(sms_channel, sid="", status="sending")
    form = {"MessageSid": "SMnew", "MessageStatus": "delivered", "AccountSid": "AC1"}
    post_twilio(client, sms_channel, "status", form, query=f"iid={interaction.pk}")
    interaction.refresh_from_db()
    assert interaction.status == "delivered"
    assert interaction.provider_message_id == "SMnew"


@pytest.mark.django_db
def test_callback_cannot_touch_another_workspaces_message(client, sms_channel, fake_twilio):
    other_channel = factories.twilio_channel(factories.workspace_create(), fake_twilio)
    theirs = _outbound(other_channel, sid="SMtheirs")
    form = {"MessageSid": "SMtheirs", "MessageStatus": "failed", "AccountSid": "AC1"}
    assert post_twilio(client, sms_channel, "status", form, query=f"iid={theirs.pk}").status_code == 200
    theirs.refresh_from_db()
    assert theirs.status == "sent"


@pytest.mark.django_db
def test_status_callback_without_status_is_kept_unprocessed(client, sms_channel):
    resp = post_twilio(client, sms_channel, "status", {"MessageSid": "SM1", "AccountSid": "AC1"})
    assert resp.status_code == 200
    assert "MessageStatus" in InboundRequest.objects.get().last_error
