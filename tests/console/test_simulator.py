"""The simulator posts a fake inbound SMS through the real ingest path."""

from __future__ import annotations

import pytest
from django.test import Client

from channels_inbound.models import ProviderEvent
from customers.models import Customer, Identity
from engagement.models import AutomationRule, Conversation, Interaction
from tests import factories

from .conftest import inbound


@pytest.mark.django_db
def test_simulated_sms_creates_customer_conversation_and_interaction(
    agent_client: Client, sms_channel
) -> None:
    page = agent_client.get("/simulator/")
    assert page.status_code == 200
    assert sms_channel.name in page.content.decode()

    resp = agent_client.post(
        "/simulator/",
        {"channel": sms_channel.pk, "from_number": "(415) 555-0177", "sender_name": "Ada", "body": "Hi!"},
    )
    assert resp.status_code == 302
    interaction = Interaction.objects.get()
    conversation = Conversation.objects.get()
    assert resp["Location"] == f"/conversations/{conversation.pk}/"
    assert interaction.conversation_id == conversation.pk
    assert interaction.direction == "inbound"
    assert interaction.body == "Hi!"
    assert interaction.channel_id == sms_channel.pk
    assert interaction.provider_message_id.startswith("SIM")
    customer = Customer.objects.get()
    assert customer.display_name == "Ada"
    assert Identity.objects.get(customer=customer).value == "+14155550177"  # US default region
    event = ProviderEvent.objects.get()
    assert event.provider_event_id == interaction.provider_message_id
    assert event.processed_at is not None

    html = agent_client.get(resp["Location"]).content.decode()
    assert "Hi!" in html


@pytest.mark.django_db
def test_simulated_sms_joins_the_existing_conversation(agent_client: Client, sms_channel) -> None:
    first = inbound(sms_channel, "+14155550177", "earlier")
    resp = agent_client.post(
        "/simulator/", {"channel": sms_channel.pk, "from_number": "+14155550177", "body": "again"}
    )
    assert resp["Location"] == f"/conversations/{first.conversation_id}/"
    assert Customer.objects.count() == 1


@pytest.mark.django_db
def test_simulated_sms_runs_automations(
    agent_client: Client, sms_channel, fake_twilio, django_capture_on_commit_callbacks
) -> None:
    AutomationRule.objects.create(
        workspace=sms_channel.workspace, name="hours", match_type="contains", keywords="hours", template="9-5"
    )
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(
            "/simulator/", {"channel": sms_channel.pk, "from_number": "+14155550177", "body": "your hours?"}
        )
    assert Interaction.objects.filter(direction="outbound", body="9-5").exists()
    assert [m["Body"] for m in fake_twilio.messages if "sid" in m] == ["9-5"]


@pytest.mark.django_db
@pytest.mark.parametrize("number", ["not a phone", "123", ""])
def test_invalid_phone_is_a_form_error(agent_client: Client, sms_channel, number: str) -> None:
    resp = agent_client.post("/simulator/", {"channel": sms_channel.pk, "from_number": number, "body": "x"})
    assert resp.status_code == 200
    assert 'class="errors"' in resp.content.decode()
    assert not Interaction.objects.exists()
    assert not ProviderEvent.objects.exists()


@pytest.mark.django_db
def test_channel_of_another_workspace_is_refused(agent_client: Client, sms_channel, fake_twilio) -> None:
    foreign = factories.twilio_channel(factories.workspace_create(), fake_twilio)
    resp = agent_client.post(
        "/simulator/", {"channel": foreign.pk, "from_number": "+14155550177", "body": "x"}
    )
    assert resp.status_code == 200
    assert foreign.name not in resp.content.decode() or "Select a valid choice" in resp.content.decode()
    assert "Select a valid choice" in resp.content.decode()
    assert not Interaction.objects.exists()


@pytest.mark.django_db
def test_simulator_is_off_when_disabled(agent_client, settings):
    settings.SIMULATOR_ENABLED = False
    assert agent_client.get("/simulator/").status_code == 404
