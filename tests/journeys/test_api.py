"""REST API: the track endpoint (batches, idempotency, limits, rows named by index) and journeys,
versions and enrollments on the same services."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import TestCase
from rest_framework.test import APIClient

from customers.models import Customer, CustomerEvent, Identity
from engagement.models import Enrollment, Interaction, Role, Workspace
from engagement.services.tenancy import api_key_create
from tests import factories
from tests.api.problems import problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(workspace: Workspace) -> APIClient:
    _, secret = api_key_create(workspace=workspace, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def post(api: APIClient, path: str, body: object) -> Any:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return api.post(path, body, format="json")


# ---------------------------------------------------------------- track


def test_track_batch_attributes_by_any_identifier_and_creates_unknown_customers(api, workspace):
    known = factories.customer_create(workspace, ("email", "ann@example.com"))
    resp = post(
        api,
        "/api/v1/events/",
        {
            "events": [
                {
                    "name": "order_placed",
                    "event_id": "o-1",
                    "email": "ANN@example.com",
                    "properties": {"total": 30},
                },
                {"name": "trial_started", "event_id": "t-1", "phone": "+1 415 555 0100"},
                {"name": "login", "customer_id": known.pk, "occurred_at": "2026-11-01T10:00:00Z"},
                {"name": "signup", "external_id": "user-42"},
            ]
        },
    )
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["recorded"] == 4
    rows = body["events"]
    assert [r["customer_id"] == known.pk for r in rows] == [True, False, True, False]
    assert [r["customer_created"] for r in rows] == [False, True, False, True]
    assert Identity.objects.get(kind="external", value="user-42").customer_id == rows[3]["customer_id"]
    assert CustomerEvent.objects.get(event_id="o-1").properties == {"total": 30}


def test_track_is_idempotent_by_the_callers_event_id(api, workspace):
    event = {"name": "order_placed", "event_id": "o-1", "email": "ann@example.com"}
    first = post(api, "/api/v1/events/", {"events": [event]}).json()
    again = post(api, "/api/v1/events/", {"events": [event, {**event, "event_id": "o-2"}]}).json()
    assert again["recorded"] == 1
    assert again["events"][0]["id"] == first["events"][0]["id"]
    assert [e["created"] for e in again["events"]] == [False, True]
    assert CustomerEvent.objects.count() == 2


def test_track_refuses_more_than_500_and_names_the_bad_row(api, workspace):
    many = [{"name": "x", "email": f"p{i}@example.com"} for i in range(501)]
    body = problem(post(api, "/api/v1/events/", {"events": many}), 400)
    assert "at most 500" in body["detail"]
    rows = [
        {"name": "ok", "email": "ann@example.com"},
        {"name": "ok", "email": "ann@example.com"},
        {"name": "ok", "email": "not an email"},
    ]
    body = problem(post(api, "/api/v1/events/", {"events": rows}), 400)
    assert body["detail"].startswith("events[2].email:")
    assert body["errors"][0]["field"] == "events.2.email"
    body = problem(post(api, "/api/v1/events/", {"events": [{"name": "no customer"}]}), 400)
    assert body["detail"].startswith("events[0]: name the customer")
    body = problem(post(api, "/api/v1/events/", {"events": [{"name": "x", "customer_id": 999999}]}), 400)
    assert "events[0].customer_id" in body["detail"]
    assert not CustomerEvent.objects.exists()  # a bad row records none of the batch


def test_a_tracked_event_starts_a_journey(api, workspace):
    sms = factories.channel_create(workspace, "sms")
    resp = post(
        api,
        "/api/v1/journeys/",
        {
            "name": "Welcome",
            "reentry": "once_ever",
            "definition": {
                "trigger": {"type": "event", "name": "signed_up"},
                "steps": [
                    {"type": "send", "channel_ids": [sms.pk], "content": {"sms": {"body": "Welcome!"}}}
                ],
            },
        },
    )
    assert resp.status_code == 201, resp.content
    journey_id = resp.json()["id"]
    assert post(api, f"/api/v1/journeys/{journey_id}/publish/", {}).status_code == 201
    resp = post(
        api, "/api/v1/events/", {"events": [{"name": "signed_up", "event_id": "s1", "phone": "+14155550100"}]}
    )
    assert resp.status_code == 200, resp.content
    enrollment = Enrollment.objects.get(journey_id=journey_id)
    assert enrollment.state == "completed"
    assert Interaction.objects.get(direction="outbound").body == "Welcome!"


# ---------------------------------------------------------------- journeys, versions, enrollments


def test_journey_crud_publish_versions_enroll_remove(api, workspace):
    sms = factories.channel_create(workspace, "sms")
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    definition = {
        "trigger": {"type": "manual"},
        "steps": [
            {"key": "wait", "type": "delay", "seconds": 3600},
            {"key": "hi", "type": "send", "channel_ids": [sms.pk], "content": {"sms": {"body": "Hi"}}},
        ],
    }
    journey = post(api, "/api/v1/journeys/", {"name": "Nurture", "definition": definition}).json()
    # An invalid draft is refused at publish, naming the step and the field.
    bad = {**definition, "steps": [{"type": "delay"}]}
    assert (
        api.patch(f"/api/v1/journeys/{journey['id']}/", {"definition": bad}, format="json").status_code == 200
    )
    body = problem(post(api, f"/api/v1/journeys/{journey['id']}/publish/", {}), 400)
    assert body["code"] == "journey_invalid"
    assert body["detail"].startswith("$.steps[0]: give exactly one of")
    api.patch(f"/api/v1/journeys/{journey['id']}/", {"definition": definition}, format="json")
    v1 = post(api, f"/api/v1/journeys/{journey['id']}/publish/", {}).json()
    v2 = post(api, f"/api/v1/journeys/{journey['id']}/publish/", {}).json()
    assert (v1["number"], v2["number"]) == (1, 2)
    versions = api.get(f"/api/v1/journeys/{journey['id']}/versions/").json()
    assert [v["number"] for v in versions["results"]] == [2, 1]
    listed = api.get("/api/v1/journeys/?status=live").json()
    assert [j["live_version"] for j in listed["results"]] == [2]

    resp = post(api, "/api/v1/enrollments/", {"journey_id": journey["id"], "customer_id": customer.pk})
    assert resp.status_code == 201, resp.content
    enrollment = resp.json()
    assert (enrollment["version"], enrollment["state"]) == (2, "active")
    assert Enrollment.objects.get(pk=enrollment["id"]).waiting_for == "delay"
    body = problem(
        post(api, "/api/v1/enrollments/", {"journey_id": journey["id"], "customer_id": customer.pk}), 409
    )
    assert body["code"] == "enrollment_refused"
    rows = api.get(f"/api/v1/enrollments/?journey={journey['id']}&state=active").json()["results"]
    assert [r["current_step"] for r in rows] == ["wait"]
    removed = post(api, f"/api/v1/enrollments/{enrollment['id']}/remove/", {}).json()
    assert (removed["state"], removed["due_at"]) == ("removed", None)
    problem(post(api, f"/api/v1/enrollments/{enrollment['id']}/remove/", {}), 409)
    stats = api.get(f"/api/v1/journeys/{journey['id']}/stats/").json()
    assert stats["enrollments"]["removed"] == 1
    # Unknown query parameters are refused; a journey with enrollments is archived, not deleted.
    problem(api.get("/api/v1/enrollments/?nope=1"), 400)
    problem(api.delete(f"/api/v1/journeys/{journey['id']}/"), 409)
    assert post(api, f"/api/v1/journeys/{journey['id']}/archive/", {}).json()["status"] == "archived"


def test_agents_read_and_remove_but_do_not_edit(workspace):
    agent = factories.member(workspace, Role.AGENT)
    client = APIClient()
    client.force_login(agent)
    assert client.get("/api/v1/journeys/").status_code == 200
    problem(client.post("/api/v1/journeys/", {"name": "x"}, format="json"), 403)
    assert Customer.objects.count() == 0


def test_tracked_events_show_on_the_customers_timeline(api, workspace):
    post(
        api,
        "/api/v1/events/",
        {"events": [{"name": "order_placed", "email": "ann@example.com", "properties": {"total": 30}}]},
    )
    customer = Customer.objects.get()
    agent = factories.member(workspace, Role.AGENT)
    client = APIClient()
    client.force_login(agent)
    for path in (f"/customers/{customer.pk}/", f"/customers/{customer.pk}/thread/"):
        page = client.get(path).content.decode()
        assert "order_placed" in page, path
        assert "total: 30" in page
