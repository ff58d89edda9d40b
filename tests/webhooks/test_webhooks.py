"""Outbound webhooks in one process: the listener records deliveries from real domain events, the delivery
worker (run inline: Celery is eager in unit tests) signs and sends them to a local receiver that verifies
them with the ``standardwebhooks`` library; retries, order per customer, replay, auto-disable, the API
and the console pages."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from customers.consent import consent_record
from engagement import events
from engagement.models import Interaction, Role, WebhookDelivery, WebhookEndpoint
from engagement.services.tenancy import api_key_create
from engagement.webhooks.delivery import webhook_deliveries_run
from engagement.webhooks.services import (
    webhook_deliveries_record,
    webhook_delivery_replay,
    webhook_endpoint_create,
    webhook_endpoint_update,
)
from tests import factories
from tests.conftest import load_payload, post_twilio

pytestmark = pytest.mark.django_db


def endpoint_for(receiver, workspace, event_types=()):
    endpoint, secret = webhook_endpoint_create(workspace=workspace, url=receiver.url, event_types=event_types)
    receiver.secret = secret
    return endpoint


def event(workspace, name=events.MESSAGE_RECEIVED, customer_id=1, **kwargs):
    return events.DomainEvent(
        name=name,
        workspace_id=workspace.pk,
        interaction_id=kwargs.pop("interaction_id", 10),
        conversation_id=kwargs.pop("conversation_id", 20),
        customer_id=customer_id,
        data=kwargs.pop("data", {"channel_kind": "sms"}),
    )


def test_an_inbound_sms_reaches_the_endpoint_signed(
    client, sms_channel, workspace, receiver, local_targets, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver, workspace, ["message.received", "customer.created"])
    form = load_payload("twilio_inbound_sms.txt")
    with django_capture_on_commit_callbacks(execute=True):
        assert post_twilio(client, sms_channel, "inbound", form).status_code == 200

    interaction = Interaction.objects.get()
    assert [r.verified for r in receiver.requests] == [True, True]
    by_type = {p["type"]: p for p in receiver.payloads()}
    assert set(by_type) == {"customer.created", "message.received"}  # conversation.opened not wanted
    message = by_type["message.received"]
    assert message["data"] == {
        "message_id": interaction.pk,
        "conversation_id": interaction.conversation_id,
        "customer_id": interaction.customer_id,
        "channel_kind": "sms",
    }
    assert form["Body"] not in json.dumps(message)  # ids and types, never the message
    request = next(r for r in receiver.requests if json.loads(r.body)["type"] == "message.received")
    assert request.headers["webhook-id"] == message["id"]
    assert request.headers["webhook-signature"].startswith("v1,")
    delivery = WebhookDelivery.objects.get(endpoint=endpoint, event_type="message.received")
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.event_id == message["id"]
    assert delivery.body == request.body.decode()


def test_an_event_handed_over_twice_is_recorded_and_delivered_once(workspace, receiver, local_targets):
    endpoint_for(receiver, workspace)
    evt = event(workspace)
    webhook_deliveries_record(event=evt)
    webhook_deliveries_record(event=events.DomainEvent(**evt.as_dict()))  # relayed again, same id
    assert WebhookDelivery.objects.count() == 1
    assert len(receiver.requests) == 1


def test_failures_are_retried_then_delivered_and_the_log_keeps_every_attempt(
    workspace, receiver, local_targets
):
    endpoint = endpoint_for(receiver, workspace)
    receiver.answers.extend([500, 503, 500])
    webhook_deliveries_record(event=event(workspace))

    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "delivered"
    assert [a.status_code for a in delivery.attempt_log.all()] == [500, 503, 500, 200]
    assert [r.verified for r in receiver.requests] == [True] * 4
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1  # one message, four attempts
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None
    assert endpoint.enabled


def test_retry_delays_follow_the_schedule_with_jitter(workspace, receiver, local_targets):
    local_targets.WEBHOOKS_RETRY_SCHEDULE = [300.0, 1800.0]
    local_targets.WEBHOOKS_RETRY_JITTER = 0.1
    endpoint_for(receiver, workspace)
    receiver.answers.extend([500])
    before = timezone.now()
    webhook_deliveries_record(event=event(workspace))
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "pending"
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 270 <= wait <= 331
    assert webhook_deliveries_run() == 0  # nothing due yet


def test_a_customers_events_wait_behind_a_failing_one(workspace, receiver, local_targets):
    local_targets.WEBHOOKS_RETRY_SCHEDULE = [3600.0]
    endpoint_for(receiver, workspace)
    receiver.answers.append(500)
    first = event(workspace, customer_id=7, interaction_id=1)
    second = event(workspace, customer_id=7, interaction_id=2)
    other = event(workspace, customer_id=8, interaction_id=3)
    for evt in (first, second, other):
        webhook_deliveries_record(event=evt)

    assert [p["data"]["message_id"] for p in receiver.payloads()] == [1, 3]  # 2 waits behind 1
    WebhookDelivery.objects.filter(event_id=first.event_id).update(next_attempt_at=timezone.now())
    webhook_deliveries_run()
    assert [p["data"]["message_id"] for p in receiver.payloads()] == [1, 3, 1, 2]
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"delivered"}


def test_sustained_failure_disables_the_endpoint_and_admins_are_told(workspace, receiver, local_targets):
    local_targets.WEBHOOKS_DISABLE_AFTER_FAILED_DELIVERIES = 1
    endpoint = endpoint_for(receiver, workspace)
    receiver.answers.extend([500] * 10)
    webhook_deliveries_record(event=event(workspace, customer_id=1))

    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("failed", 4)  # the first and three retries
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert endpoint.disabled_reason == "failing"
    assert "1 deliveries in a row" in endpoint.disabled_detail

    # Nothing more is recorded nor sent for a disabled endpoint.
    webhook_deliveries_record(event=event(workspace, customer_id=2))
    assert WebhookDelivery.objects.count() == 1
    assert len(receiver.requests) == 4

    admin = Client()
    admin.force_login(factories.member(workspace, Role.ADMIN))
    page = admin.get("/").content.decode()
    assert "data-webhook-disabled" in page
    assert endpoint.url in page
    agent = Client()
    agent.force_login(factories.member(workspace, Role.AGENT))
    assert "data-webhook-disabled" not in agent.get("/").content.decode()

    webhook_endpoint_update(endpoint=endpoint, enabled=True)
    endpoint.refresh_from_db()
    assert endpoint.enabled
    assert endpoint.failing_since is None
    assert endpoint.consecutive_failed_deliveries == 0
    assert "data-webhook-disabled" not in admin.get("/").content.decode()


def test_failing_for_the_whole_window_disables_the_endpoint(workspace, receiver, local_targets):
    local_targets.WEBHOOKS_RETRY_SCHEDULE = [0.0] * 20
    local_targets.WEBHOOKS_DISABLE_AFTER_SECONDS = 3600
    endpoint = endpoint_for(receiver, workspace)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(hours=2))
    receiver.answers.append(500)
    webhook_deliveries_record(event=event(workspace))
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert "every attempt failed since" in endpoint.disabled_detail
    assert WebhookDelivery.objects.get().state == "pending"  # kept; sent once the endpoint is enabled


def test_replay_is_a_new_attempt_with_the_same_id(workspace, receiver, local_targets):
    endpoint_for(receiver, workspace)
    webhook_deliveries_record(event=event(workspace))
    delivery = WebhookDelivery.objects.get()
    webhook_delivery_replay(workspace=workspace, delivery_id=delivery.pk)
    webhook_deliveries_run()

    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.replays) == ("delivered", 2, 1)
    assert [a.replay for a in delivery.attempt_log.all()] == [False, True]
    assert next(r.body for r in receiver.requests) == receiver.requests[1].body
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]
    assert all(r.verified for r in receiver.requests)


def test_redirects_are_not_followed(workspace, receiver, local_targets):
    local_targets.WEBHOOKS_RETRY_SCHEDULE = [3600.0]
    endpoint_for(receiver, workspace)
    receiver.answers.append(302)  # Location: the metadata address
    webhook_deliveries_record(event=event(workspace))
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "pending"
    assert "not followed" in delivery.last_error
    assert len(receiver.requests) == 1


def test_the_guard_runs_again_at_delivery(workspace, receiver, local_targets):
    local_targets.WEBHOOKS_RETRY_SCHEDULE = [3600.0]
    endpoint_for(receiver, workspace)
    local_targets.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False  # as in production
    webhook_deliveries_record(event=event(workspace))
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_error.startswith("refused: ")
    assert "loopback" in delivery.last_error
    assert delivery.last_status_code is None
    assert receiver.requests == []


def test_customer_and_consent_events_are_public(
    workspace, receiver, local_targets, django_capture_on_commit_callbacks
):
    endpoint_for(receiver, workspace, ["customer.created", "consent.changed"])
    with django_capture_on_commit_callbacks(execute=True):
        customer = factories.customer_create(workspace, ("phone", "+14155550101"))
    with django_capture_on_commit_callbacks(execute=True):
        consent_record(customer=customer, channel="sms", status="opted_out", source="api")
    types = [p["type"] for p in receiver.payloads()]
    assert types == ["customer.created", "consent.changed"]
    consent = receiver.payloads()[1]["data"]
    assert consent["customer_id"] == customer.pk
    assert consent["status"] == "opted_out"
    assert consent["channel"] == "sms"
    assert "+14155550101" not in json.dumps(receiver.payloads())


# ---------------------------------------------------------------- API


@pytest.fixture
def api(workspace):
    _, secret = api_key_create(workspace=workspace, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_api_endpoint_lifecycle_and_secret_shown_once(api, workspace, receiver, local_targets):
    resp = api.post(
        "/api/v1/webhook-endpoints/",
        {"url": receiver.url, "event_types": ["message.received"], "description": "CRM"},
        format="json",
    )
    assert resp.status_code == 201, resp.content
    created = resp.json()
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) == 32
    endpoint_id = created["id"]
    shown = api.get(f"/api/v1/webhook-endpoints/{endpoint_id}/").json()
    assert "secret" not in shown
    assert shown["event_types"] == ["message.received"]
    assert [e["id"] for e in api.get("/api/v1/webhook-endpoints/").json()["results"]] == [endpoint_id]

    resp = api.patch(f"/api/v1/webhook-endpoints/{endpoint_id}/", {"enabled": False}, format="json")
    assert resp.status_code == 200
    assert resp.json()["disabled_reason"] == "manual"
    resp = api.patch(f"/api/v1/webhook-endpoints/{endpoint_id}/", {"event_types": ["nope"]}, format="json")
    assert resp.status_code == 400
    rotated = api.post(f"/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret/").json()["secret"]
    assert rotated.startswith("whsec_")
    assert rotated != created["secret"]
    assert api.delete(f"/api/v1/webhook-endpoints/{endpoint_id}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()
    types = api.get("/api/v1/webhook-event-types/").json()
    assert {"type": "message.received", "description": types[0]["description"]} in types


def test_api_refuses_private_targets_with_the_guard_on(api, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    for url in ["http://127.0.0.1:9000/hook", "http://169.254.169.254/latest/", "http://[::ffff:10.0.0.1]/"]:
        resp = api.post("/api/v1/webhook-endpoints/", {"url": url}, format="json")
        assert resp.status_code == 400, url
        assert resp.json()["errors"][0]["field"] == "url"
    assert not WebhookEndpoint.objects.exists()


def test_api_delivery_log_and_replay(api, workspace, receiver, local_targets):
    endpoint = endpoint_for(receiver, workspace)
    receiver.answers.append(500)
    webhook_deliveries_record(event=event(workspace))
    log = api.get(f"/api/v1/webhook-endpoints/{endpoint.pk}/deliveries/").json()["results"]
    assert len(log) == 1
    assert log[0]["state"] == "delivered"
    assert log[0]["attempts"] == 2
    detail = api.get(f"/api/v1/webhook-deliveries/{log[0]['id']}/").json()
    assert [a["status_code"] for a in detail["attempt_log"]] == [500, 200]
    assert json.loads(detail["body"])["type"] == "message.received"

    resp = api.post(f"/api/v1/webhook-deliveries/{log[0]['id']}/replay/")
    assert resp.status_code == 202
    webhook_deliveries_run()
    assert len(receiver.requests) == 3

    webhook_endpoint_update(endpoint=endpoint, enabled=False)
    resp = api.post(f"/api/v1/webhook-deliveries/{log[0]['id']}/replay/")
    assert resp.status_code == 409


def test_api_is_scoped_to_the_workspace(api, receiver, local_targets):
    other = factories.workspace_create()
    endpoint = endpoint_for(receiver, other)
    webhook_deliveries_record(event=event(other))
    delivery = WebhookDelivery.objects.get()
    assert api.get(f"/api/v1/webhook-endpoints/{endpoint.pk}/").status_code == 404
    assert api.get(f"/api/v1/webhook-deliveries/{delivery.pk}/").status_code == 404
    assert api.post(f"/api/v1/webhook-deliveries/{delivery.pk}/replay/").status_code == 404
    assert api.get("/api/v1/webhook-endpoints/").json()["results"] == []


# ---------------------------------------------------------------- console


def test_console_admin_manages_endpoints_and_sees_the_log(
    workspace, receiver, local_targets, django_capture_on_commit_callbacks
):
    admin = Client()
    admin.force_login(factories.member(workspace, Role.ADMIN))
    resp = admin.post("/settings/webhooks/", {"url": receiver.url, "event_types": ["message.received"]})
    assert resp.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    page = resp.content.decode()
    assert endpoint.secret in page
    assert resp["Cache-Control"] == "no-store"
    assert endpoint.secret not in admin.get("/settings/webhooks/").content.decode()  # shown once

    receiver.secret = endpoint.secret
    receiver.answers.append(500)
    webhook_deliveries_record(event=event(workspace))
    delivery = WebhookDelivery.objects.get()
    page = admin.get(f"/settings/webhooks/{endpoint.pk}/").content.decode()
    assert delivery.event_id in page
    assert "message.received" in page
    page = admin.get(f"/settings/webhooks/deliveries/{delivery.pk}/").content.decode()
    assert "500" in page
    assert "200" in page
    with django_capture_on_commit_callbacks(execute=True):  # the replay asks for a run after commit
        assert admin.post(f"/settings/webhooks/deliveries/{delivery.pk}/replay/").status_code == 302
    assert len(receiver.requests) == 3

    resp = admin.post(f"/settings/webhooks/{endpoint.pk}/disable/")
    endpoint.refresh_from_db()
    assert resp.status_code == 302
    assert not endpoint.enabled
    assert endpoint.disabled_reason == "manual"
    admin.post(f"/settings/webhooks/{endpoint.pk}/delete/")
    assert not WebhookEndpoint.objects.exists()


def test_console_refuses_private_targets_and_agents(workspace, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    admin = Client()
    admin.force_login(factories.member(workspace, Role.ADMIN))
    resp = admin.post("/settings/webhooks/", {"url": "http://10.0.0.8/hook"})
    assert resp.status_code == 200
    assert "private address" in resp.content.decode()
    assert not WebhookEndpoint.objects.exists()
    agent = Client()
    agent.force_login(factories.member(workspace, Role.AGENT))
    assert agent.get("/settings/webhooks/").status_code == 403


def test_the_webhook_api_is_in_the_openapi_schema(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    for path in [
        "/api/v1/webhook-endpoints/",
        "/api/v1/webhook-endpoints/{id}/",
        "/api/v1/webhook-endpoints/{id}/deliveries/",
        "/api/v1/webhook-endpoints/{id}/rotate-secret/",
        "/api/v1/webhook-deliveries/{id}/",
        "/api/v1/webhook-deliveries/{id}/replay/",
        "/api/v1/webhook-event-types/",
    ]:
        assert path in paths, path
    created = paths["/api/v1/webhook-endpoints/"]["post"]["responses"]["201"]
    ref = created["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "secret" in schema["components"]["schemas"][ref]["properties"]
