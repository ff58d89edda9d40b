"""The whole loop on real parts: a signed inbound SMS over HTTP → customer and timeline → a rule fires in a
real Celery worker → outbound through the twilio SDK to the fake Twilio → signed status callbacks →
``delivered`` on the timeline and in the API."""

from __future__ import annotations

import pytest

from engagement.models import AutomationRule, Interaction
from engagement.services.tenancy import api_key_create
from tests import factories
from tests.conftest import load_payload, wait_for
from tests.fakes.twilio_server import post_twilio_webhook

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_inbound_sms_triggers_reply_that_is_delivered(live_server, celery_worker_process, fake_twilio):
    import httpx

    fake_twilio.send_callbacks = True  # a live server takes them
    workspace = factories.workspace_create()
    channel = factories.twilio_channel(workspace, fake_twilio)
    AutomationRule.objects.create(
        workspace=workspace,
        name="hours",
        channel_kind="sms",
        match_type="contains",
        keywords="hours",
        template="Hi {{ customer.display_name|default:'there' }}, we open at 9.",
    )
    _, api_key = api_key_create(workspace=workspace, name="e2e")
    form = {**load_payload("twilio_inbound_sms.txt"), "Body": "What are your HOURS?"}
    url = f"{live_server.url}/webhooks/twilio/{channel.webhook_token}/inbound/"

    assert post_twilio_webhook(url, form, fake_twilio.auth_token) == 200

    inbound = Interaction.objects.get(direction="inbound")
    outbound = wait_for(lambda: Interaction.objects.filter(direction="outbound", status="delivered").first())
    assert outbound.customer_id == inbound.customer_id
    assert outbound.conversation_id == inbound.conversation_id
    assert outbound.body == "Hi there, we open at 9."
    assert outbound.provider_message_id.startswith("SM")
    sent = [m for m in fake_twilio.messages if "sid" in m]
    assert len(sent) == 1
    assert sent[0]["To"] == "+19089061042"
    assert sent[0]["From"] == channel.address
    assert sent[0]["StatusCallback"].startswith(live_server.url)
    # The fake records each callback once our server has answered it, a moment after the commit.
    wait_for(lambda: len(fake_twilio.callbacks) == 2)
    assert [p["MessageStatus"] for _, p, status in fake_twilio.callbacks if status == 200] == [
        "sent",
        "delivered",
    ]

    headers = {"Authorization": f"Bearer {api_key}"}
    timeline = httpx.get(
        f"{live_server.url}/api/v1/customers/{inbound.customer_id}/timeline/", headers=headers
    ).json()
    assert [(i["direction"], i["status"]) for i in timeline["results"]] == [
        ("outbound", "delivered"),
        ("inbound", "received"),
    ]

    # A replay of the inbound webhook changes nothing and sends nothing more.
    for _ in range(5):
        assert post_twilio_webhook(url, form, fake_twilio.auth_token) == 200
    assert Interaction.objects.count() == 2
    assert len([m for m in fake_twilio.messages if "sid" in m]) == 1


def test_provider_429_is_retried_then_sent(live_server, celery_worker_process, fake_twilio):
    import httpx

    fake_twilio.send_callbacks = True  # a live server takes them
    workspace = factories.workspace_create()
    channel = factories.twilio_channel(workspace, fake_twilio)
    _, api_key = api_key_create(workspace=workspace, name="e2e")
    fake_twilio.fail_next.extend([429, 503])
    resp = httpx.post(
        f"{live_server.url}/api/v1/messages/",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"channel_id": channel.pk, "to": "+14155550123", "body": "Your code is 1234"},
    )
    assert resp.status_code == 202, resp.text
    interaction_id = resp.json()["id"]
    done = wait_for(lambda: Interaction.objects.filter(pk=interaction_id, status="delivered").first())
    assert done.send_attempts == 3
    assert [m.get("rejected") for m in fake_twilio.messages] == [429, 503, None]
