"""Every query is scoped to the workspace: a user or API key of one workspace reaches nothing of another."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from customers.services import Identifier
from engagement.models import Role
from engagement.services.tenancy import api_key_create
from engagement.services.timeline import interaction_record_inbound
from tests import factories


@pytest.fixture
def two_workspaces(fake_twilio):
    a, b = factories.workspace_create(), factories.workspace_create()
    data = {}
    for ws in (a, b):
        channel = factories.twilio_channel(ws, fake_twilio)
        interaction, _ = interaction_record_inbound(
            channel=channel,
            sender=Identifier("phone", "+14155550100"),  # the same person writes to both organisations
            body=f"hello {ws.slug}",
            provider_message_id=f"SM-{ws.slug}",
            occurred_at=timezone.now(),
        )
        _, secret = api_key_create(workspace=ws, name="k")
        data[ws.slug] = {"ws": ws, "channel": channel, "interaction": interaction, "key": secret}
    return data[a.slug], data[b.slug]


def _client(secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.mark.django_db
def test_api_key_of_one_workspace_reaches_nothing_of_another(two_workspaces):
    a, b = two_workspaces
    api = _client(a["key"])
    customers = api.get("/api/v1/customers/").json()["results"]
    assert [c["id"] for c in customers] == [a["interaction"].customer_id]
    b_customer = b["interaction"].customer_id
    assert api.get(f"/api/v1/customers/{b_customer}/").status_code == 404
    assert api.get(f"/api/v1/customers/{b_customer}/timeline/").status_code == 404
    assert api.get(f"/api/v1/interactions/{b['interaction'].pk}/").status_code == 404
    assert api.get("/api/v1/customers/", {"identity": "+14155550100"}).json()["results"][0]["id"] == (
        a["interaction"].customer_id
    )
    send_on_b = api.post(
        "/api/v1/messages/", {"channel_id": b["channel"].pk, "to": "+14155550100", "body": "x"}, format="json"
    )
    assert send_on_b.status_code == 404
    send_to_b_customer = api.post(
        "/api/v1/messages/",
        {"channel_id": a["channel"].pk, "customer_id": b_customer, "body": "x"},
        format="json",
    )
    assert send_to_b_customer.status_code == 404


@pytest.mark.django_db
def test_signed_in_user_of_one_workspace_reaches_nothing_of_another(client, two_workspaces):
    a, b = two_workspaces
    user = factories.member(a["ws"], Role.AGENT)
    client.force_login(user)
    customers = client.get("/api/v1/customers/").json()["results"]
    assert [c["id"] for c in customers] == [a["interaction"].customer_id]
    assert client.get(f"/api/v1/customers/{b['interaction'].customer_id}/timeline/").status_code == 404
    assert client.get(f"/api/v1/interactions/{b['interaction'].pk}/").status_code == 404
    # Asking for the other workspace in the session does not switch into it.
    session = client.session
    session["workspace_id"] = b["ws"].pk
    session.save()
    assert client.get("/api/v1/customers/").status_code == 403


@pytest.mark.django_db
def test_same_phone_is_a_different_customer_per_workspace(two_workspaces):
    a, b = two_workspaces
    assert a["interaction"].customer_id != b["interaction"].customer_id
