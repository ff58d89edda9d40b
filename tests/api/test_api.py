"""REST API v1: API keys, customers, timeline with cursor pagination, sending, and the OpenAPI schema."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from customers.services import Identifier
from engagement.models import Interaction
from engagement.services.tenancy import api_key_create, api_key_revoke
from engagement.services.timeline import interaction_record_inbound


@pytest.fixture
def api(workspace):
    _, secret = api_key_create(workspace=workspace, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def _inbound(channel, phone, body, sid, minutes_ago=0):
    interaction, _ = interaction_record_inbound(
        channel=channel,
        sender=Identifier("phone", phone),
        body=body,
        provider_message_id=sid,
        occurred_at=timezone.now() - timedelta(minutes=minutes_ago),
    )
    return interaction


@pytest.mark.django_db
def test_requests_without_a_key_are_refused():
    resp = APIClient().get("/api/v1/customers/")
    assert resp.status_code in (401, 403)


@pytest.mark.django_db
def test_wrong_and_revoked_keys_are_401(workspace):
    key, secret = api_key_create(workspace=workspace, name="k")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}x")
    assert client.get("/api/v1/customers/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/customers/").status_code == 200
    api_key_revoke(key=key)
    assert client.get("/api/v1/customers/").status_code == 401


@pytest.mark.django_db
def test_api_key_is_stored_hashed(workspace):
    key, secret = api_key_create(workspace=workspace, name="k")
    key.refresh_from_db()
    assert secret not in (key.key_hash, key.prefix)
    assert len(key.key_hash) == 64


@pytest.mark.django_db
def test_list_customers_with_identities_and_filter(api, sms_channel):
    _inbound(sms_channel, "+14155550100", "hi", "SM1")
    _inbound(sms_channel, "+14155550101", "hello", "SM2")
    data = api.get("/api/v1/customers/").json()
    assert {c["identities"][0]["value"] for c in data["results"]} == {"+14155550100", "+14155550101"}
    filtered = api.get("/api/v1/customers/", {"identity": "+14155550101"}).json()
    assert [c["identities"][0]["value"] for c in filtered["results"]] == ["+14155550101"]


@pytest.mark.django_db
def test_timeline_is_cursor_paginated_newest_first(api, sms_channel):
    for i in range(7):
        last = _inbound(sms_channel, "+14155550100", f"m{i}", f"SM{i}", minutes_ago=10 - i)
    url = f"/api/v1/customers/{last.customer_id}/timeline/"
    page = api.get(url, {"page_size": 3}).json()
    bodies = [i["body"] for i in page["results"]]
    while page["next"]:
        page = api.get(page["next"]).json()
        bodies += [i["body"] for i in page["results"]]
    assert bodies == [f"m{i}" for i in reversed(range(7))]


@pytest.mark.django_db
def test_post_message_sends_through_twilio_sdk(
    api, sms_channel, fake_twilio, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        resp = api.post(
            "/api/v1/messages/",
            {"channel_id": sms_channel.pk, "to": "(415) 555-0123", "body": "Your order shipped"},
            format="json",
        )
    assert resp.status_code == 202, resp.content
    interaction = Interaction.objects.get(pk=resp.json()["id"])
    assert interaction.status == "sent"
    assert interaction.customer_address == "+14155550123"
    assert fake_twilio.messages[0]["To"] == "+14155550123"
    assert fake_twilio.messages[0]["Body"] == "Your order shipped"
    assert interaction.provider_message_id == fake_twilio.messages[0]["sid"]
    detail = api.get(f"/api/v1/interactions/{interaction.pk}/").json()
    assert detail["status"] == "sent"


@pytest.mark.django_db
def test_post_message_with_idempotency_key_sends_once(
    api, sms_channel, fake_twilio, django_capture_on_commit_callbacks
):
    body = {"channel_id": sms_channel.pk, "to": "+14155550123", "body": "once", "idempotency_key": "k-1"}
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post("/api/v1/messages/", body, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        second = api.post("/api/v1/messages/", body, format="json")
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["id"] == second.json()["id"]
    assert len(fake_twilio.messages) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"channel_id": None, "to": "+14155550123", "body": "x"}, "channel_id"),
        ({"channel_id": 0, "to": "+14155550123", "body": "x"}, "no such channel"),
        ({"to": "+14155550123", "body": ""}, "body"),
        ({"to": "not a phone", "body": "x"}, "not a phone number"),
        ({"body": "x", "to": None}, "give customer_id or to"),
        ({"to": "+14155550123", "body": "x" * 1601}, "at most 1600"),
    ],
)
def test_post_message_errors_say_what_is_wrong(api, sms_channel, payload, fragment):
    payload = {"channel_id": sms_channel.pk, **payload}
    payload = {k: v for k, v in payload.items() if v is not None}
    resp = api.post("/api/v1/messages/", payload, format="json")
    assert resp.status_code in (400, 404)
    assert fragment in resp.content.decode()


@pytest.mark.django_db
def test_openapi_schema_and_docs(api, client):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/customers/{id}/timeline/" in paths
    assert "/api/v1/messages/" in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


@pytest.mark.django_db
def test_a_rejected_send_to_a_new_address_leaves_no_customer_behind(api, sms_channel):
    from customers.models import Customer

    resp = api.post(
        "/api/v1/messages/",
        {"channel_id": sms_channel.pk, "to": "+14155550199", "body": "x" * 1601},
        format="json",
    )
    assert resp.status_code == 400
    assert "at most 1600" in resp.content.decode()
    assert Customer.objects.count() == 0
