"""REST API of SLA policies and breaches, business hours, CSAT settings and answers, and agent tasks:
the console's resources on the console's services, with problem details, unknown parameters refused,
cursor pagination, scopes, admin-only writes for members, Idempotency-Key and workspace isolation."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from engagement.journeys.services import agent_task_create
from engagement.models import AgentTask, Conversation, ConversationResolution, Role, SlaBreach, SlaPolicy
from engagement.services.conversation_actions import conversation_status_set
from engagement.services.csat import csat_response_record
from engagement.services.tenancy import api_key_create
from tests import factories
from tests.api.problems import field_messages, problem
from tests.console.conftest import conversation_pk, inbound

pytestmark = pytest.mark.django_db


def _client(workspace: Any, scopes: list[str] | None = None) -> APIClient:
    _, secret = api_key_create(workspace=workspace, name="t", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def api(workspace: Any) -> APIClient:
    return _client(workspace)


def _member(workspace: Any, role: str) -> APIClient:
    client = APIClient()
    client.force_login(factories.member(workspace, role))
    return client


def test_sla_policies_crud_filters_and_validation(api: APIClient, workspace) -> None:
    created = api.post(
        "/api/v1/sla-policies/",
        {"name": "SMS fast", "first_response_minutes": 15, "channel_kinds": ["sms"], "position": 1},
        format="json",
        HTTP_IDEMPOTENCY_KEY="sla-1",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["name"], body["first_response_minutes"], body["business_hours_only"]) == (
        "SMS fast",
        15,
        True,
    )
    again = api.post(
        "/api/v1/sla-policies/",
        {"name": "SMS fast", "first_response_minutes": 15, "channel_kinds": ["sms"], "position": 1},
        format="json",
        HTTP_IDEMPOTENCY_KEY="sla-1",
    )
    assert again.json()["id"] == body["id"]
    assert SlaPolicy.objects.count() == 1
    pk = body["id"]
    patched = api.patch(f"/api/v1/sla-policies/{pk}/", {"is_active": False, "resolution_minutes": 600})
    assert patched.status_code == 200, patched.content
    assert (patched.json()["is_active"], patched.json()["first_response_minutes"]) == (False, 15)
    api.post("/api/v1/sla-policies/", {"name": "All", "resolution_minutes": 60}, format="json")
    names = [p["name"] for p in api.get("/api/v1/sla-policies/").json()["results"]]
    assert names == ["All", "SMS fast"]  # by position
    assert [
        p["name"] for p in api.get("/api/v1/sla-policies/", {"is_active": "false"}).json()["results"]
    ] == ["SMS fast"]
    # The service's rule: at least one target.
    no_target = problem(api.post("/api/v1/sla-policies/", {"name": "x"}, format="json"), 400)
    assert no_target["code"] == "sla_settings_invalid"
    assert "first_response_minutes" in field_messages(
        api.post("/api/v1/sla-policies/", {"name": "x"}, format="json")
    )
    problem(api.post("/api/v1/sla-policies/", {"name": "x", "channel_kinds": ["fax"]}, format="json"), 400)
    problem(api.get("/api/v1/sla-policies/", {"bogus": "1"}), 400)
    assert api.delete(f"/api/v1/sla-policies/{pk}/").status_code == 204
    problem(api.get(f"/api/v1/sla-policies/{pk}/"), 404)


def test_member_writes_are_for_admins_and_keys_are_scoped(workspace) -> None:
    agent = _member(workspace, Role.AGENT)
    assert agent.get("/api/v1/sla-policies/").status_code == 200
    problem(agent.post("/api/v1/sla-policies/", {"name": "x", "resolution_minutes": 5}, format="json"), 403)
    problem(agent.put("/api/v1/csat-settings/", {"enabled": True}, format="json"), 403)
    problem(agent.put("/api/v1/business-hours/", {"weekly": {}}, format="json"), 403)
    admin = _member(workspace, Role.ADMIN)
    assert admin.put("/api/v1/csat-settings/", {"enabled": True}, format="json").status_code == 200

    reader = _client(workspace, ["conversations:read"])
    assert reader.get("/api/v1/csat-settings/").status_code == 200
    problem(reader.put("/api/v1/csat-settings/", {"enabled": False}, format="json"), 403)
    other = _client(workspace, ["customers:read"])
    for path in ("sla-policies", "sla-breaches", "csat-responses", "agent-tasks", "business-hours"):
        problem(other.get(f"/api/v1/{path}/"), 403)


def test_business_hours_and_csat_settings(api: APIClient, workspace) -> None:
    assert api.get("/api/v1/business-hours/").json() == {"weekly": {}, "zone": "UTC", "updated_at": None}
    put = api.put(
        "/api/v1/business-hours/",
        {"weekly": {"1": [["09:00", "17:00"]], "6": [["10:00", "24:00"]]}},
        format="json",
    )
    assert put.status_code == 200, put.content
    assert put.json()["weekly"] == {"1": [["09:00", "17:00"]], "6": [["10:00", "24:00"]]}
    assert api.get("/api/v1/business-hours/").json()["weekly"]["1"] == [["09:00", "17:00"]]
    bad_day = problem(
        api.put("/api/v1/business-hours/", {"weekly": {"8": [["09:00", "17:00"]]}}, format="json"), 400
    )
    assert "weekday" in bad_day["detail"]
    backwards = api.put("/api/v1/business-hours/", {"weekly": {"2": [["17:00", "09:00"]]}}, format="json")
    assert "ends before it starts" in problem(backwards, 400)["detail"]
    problem(api.put("/api/v1/business-hours/", {"weekly": {"2": [["9"]]}}, format="json"), 400)

    csat = api.get("/api/v1/csat-settings/").json()
    assert (csat["enabled"], csat["reply_window_hours"]) == (False, 72)
    assert csat["default_question"]
    saved = api.put(
        "/api/v1/csat-settings/",
        {"enabled": True, "question": "Happy?", "reply_window_hours": 24},
        format="json",
    ).json()
    assert (saved["enabled"], saved["question"], saved["reply_window_hours"]) == (True, "Happy?", 24)
    problem(api.put("/api/v1/csat-settings/", {"enabled": True, "reply_window_hours": 0}, format="json"), 400)
    problem(api.put("/api/v1/csat-settings/", {}, format="json"), 400)


def test_csat_responses_and_sla_breaches(api: APIClient, workspace, sms_channel, agent) -> None:
    message = inbound(sms_channel, "+14155550101", "help")
    conversation = Conversation.objects.get(pk=conversation_pk(message))
    conversation_status_set(workspace=workspace, conversation=conversation, status="resolved", actor=agent)
    csat_response_record(resolution=ConversationResolution.objects.get(), score=4, source="page")
    rows = api.get("/api/v1/csat-responses/").json()["results"]
    assert [(r["conversation_id"], r["score"], r["source"]) for r in rows] == [(conversation.pk, 4, "page")]
    assert api.get("/api/v1/csat-responses/", {"score": 5}).json()["results"] == []
    problem(api.get("/api/v1/csat-responses/", {"source": "fax"}), 400)

    now = timezone.now()
    SlaBreach.objects.create(
        workspace=workspace,
        conversation=conversation,
        metric="first_response",
        started_at=now,
        due_at=now,
        breached_at=now,
    )
    breaches = api.get("/api/v1/sla-breaches/", {"conversation": conversation.pk}).json()["results"]
    assert [b["metric"] for b in breaches] == ["first_response"]
    assert api.get("/api/v1/sla-breaches/", {"metric": "resolution"}).json()["results"] == []


def test_agent_tasks_list_and_complete(api: APIClient, workspace, agent) -> None:
    customer = factories.customer_create(workspace, ("phone", "+14155550101"))
    mine = agent_task_create(workspace=workspace, customer=customer, title="Call back", assignee_id=agent.pk)
    loose = agent_task_create(workspace=workspace, customer=customer, title="Send the invoice")
    listed = api.get("/api/v1/agent-tasks/", {"done": "false"}).json()["results"]
    assert [t["title"] for t in listed] == ["Send the invoice", "Call back"]
    assert [t["id"] for t in api.get("/api/v1/agent-tasks/", {"assignee": agent.pk}).json()["results"]] == [
        mine.pk
    ]
    assert [t["id"] for t in api.get("/api/v1/agent-tasks/", {"unassigned": "true"}).json()["results"]] == [
        loose.pk
    ]
    done = api.post(f"/api/v1/agent-tasks/{mine.pk}/complete/", HTTP_IDEMPOTENCY_KEY="done-1")
    assert done.status_code == 200, done.content
    assert (done.json()["done"], done.json()["done_by_id"]) == (True, None)  # an API key: no person
    first_time = AgentTask.objects.get(pk=mine.pk).done_at
    member = APIClient()
    member.force_login(agent)
    again = member.post(f"/api/v1/agent-tasks/{mine.pk}/complete/")
    assert again.json()["done_at"] == done.json()["done_at"]  # idempotent: the first time stays
    assert AgentTask.objects.get(pk=mine.pk).done_at == first_time
    assert [t["id"] for t in api.get("/api/v1/agent-tasks/", {"done": "false"}).json()["results"]] == [
        loose.pk
    ]
    assert [t["id"] for t in api.get("/api/v1/agent-tasks/", {"done": "true"}).json()["results"]] == [mine.pk]
    member.post(f"/api/v1/agent-tasks/{loose.pk}/complete/")
    assert AgentTask.objects.get(pk=loose.pk).done_by_id == agent.pk

    theirs = agent_task_create(
        workspace=(other := factories.workspace_create()),
        customer=factories.customer_create(other, ("phone", "+14155550102")),
        title="Not yours",
    )
    problem(api.post(f"/api/v1/agent-tasks/{theirs.pk}/complete/"), 404)
    assert AgentTask.objects.get(pk=theirs.pk).done_at is None


def test_options_describes_the_settings_documents(api: APIClient) -> None:
    for path in ("/api/v1/business-hours/", "/api/v1/csat-settings/", "/api/v1/sla-policies/"):
        resp = api.options(path)
        assert resp.status_code == 200, (path, resp.content)
