"""REST API of the team tools: conversations filtered by assignee/team/label/status, assign, status
(resolve, reopen, snooze), labels, notes; teams (read; write for admins and write-scoped keys), labels,
canned responses (CRUD); problem details, Idempotency-Key, unknown parameters refused, scopes, and the
domain events reaching outbound webhooks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from engagement import events
from engagement.models import Conversation, Note, OutboxEvent, Role, Team
from engagement.services import teamwork
from engagement.services.tenancy import api_key_create
from engagement.webhooks.catalog import EVENT_TYPES, webhook_event_build
from tests import factories
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


def test_conversations_are_assigned_labelled_and_filtered(
    api: APIClient, workspace, agent, sms_channel
) -> None:
    a = inbound(sms_channel, "+14155550101", "a")
    b = inbound(sms_channel, "+14155550102", "b")
    team = teamwork.team_save(
        workspace=workspace, data=teamwork.TeamInput(name="Support", member_ids=[agent.pk], channel_ids=[])
    )
    resp = api.post(
        f"/api/v1/conversations/{a.conversation_id}/assign/",
        {"assignee_id": agent.pk, "team_id": team.pk},
        format="json",
    )
    assert resp.status_code == 200, resp.content
    assert (resp.json()["assignee_id"], resp.json()["team_id"]) == (agent.pk, team.pk)
    resp = api.post(
        f"/api/v1/conversations/{a.conversation_id}/labels/", {"add": ["VIP", "refund"]}, format="json"
    )
    assert resp.json()["labels"] == ["refund", "vip"]
    resp = api.post(
        f"/api/v1/conversations/{a.conversation_id}/labels/", {"remove": ["refund"]}, format="json"
    )
    assert resp.json()["labels"] == ["vip"]

    def ids(query: str) -> list[int]:
        resp = api.get("/api/v1/conversations/?" + query)
        assert resp.status_code == 200, resp.content
        return [row["id"] for row in resp.json()["results"]]

    assert ids(f"assignee={agent.pk}") == [a.conversation_id]
    assert ids("unassigned=true") == [b.conversation_id]
    assert ids(f"team={team.pk}") == [a.conversation_id]
    assert ids("label=vip") == [a.conversation_id]
    assert ids("status=open") == [b.conversation_id, a.conversation_id]
    resp = api.get("/api/v1/conversations/?assigned_to=me")
    assert resp.status_code == 400
    assert "assigned_to" in resp.json()["detail"]

    stranger = factories.member(factories.workspace_create(), Role.AGENT)
    resp = api.post(
        f"/api/v1/conversations/{b.conversation_id}/assign/", {"assignee_id": stranger.pk}, format="json"
    )
    assert resp.status_code == 400
    assert resp["Content-Type"].startswith("application/problem+json")
    assert resp.json()["code"] == "assignment_invalid"
    assert resp.json()["errors"][0]["field"] == "assignee_id"


def test_status_resolve_reopen_and_snooze(api: APIClient, sms_channel) -> None:
    a = inbound(sms_channel, "+14155550101", "a")
    url = f"/api/v1/conversations/{a.conversation_id}/status/"
    assert api.post(url, {"status": "resolved"}, format="json").json()["status"] == "resolved"
    assert api.post(url, {"status": "open"}, format="json").json()["status"] == "open"
    until = timezone.now() + timedelta(hours=3)
    body = api.post(url, {"status": "snoozed", "snoozed_until": until.isoformat()}, format="json").json()
    assert body["status"] == "snoozed"
    assert body["snoozed_until"] is not None
    resp = api.post(url, {"status": "snoozed", "snoozed_until": "2001-01-01T00:00:00Z"}, format="json")
    assert resp.status_code == 400
    assert resp.json()["code"] == "snooze_invalid"
    # Lazy wake: the list opens a snooze whose time has passed.
    Conversation.objects.filter(pk=conversation_pk(a)).update(
        snoozed_until=timezone.now() - timedelta(seconds=1)
    )
    assert api.get("/api/v1/conversations/?status=open").json()["results"][0]["id"] == a.conversation_id


def test_notes_are_listed_and_created_with_idempotency(api: APIClient, workspace, agent, sms_channel) -> None:
    a = inbound(sms_channel, "+14155550101", "a")
    url = f"/api/v1/conversations/{a.conversation_id}/notes/"
    headers = {"Idempotency-Key": "note-1"}
    first = api.post(url, {"body": f"@{agent.username} call back"}, format="json", headers=headers)
    assert first.status_code == 201, first.content
    assert first.json()["mentioned_user_ids"] == [agent.pk]
    again = api.post(url, {"body": f"@{agent.username} call back"}, format="json", headers=headers)
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert Note.objects.count() == 1
    listed = api.get(url).json()
    assert [n["body"] for n in listed["results"]] == [f"@{agent.username} call back"]
    assert api.post(url, {"body": ""}, format="json").status_code == 400
    assert api.get(url + "?page_size=1").status_code == 200
    assert api.get(url + "?bogus=1").status_code == 400


def test_teams_read_for_all_write_for_admins_and_write_keys(workspace, agent, sms_channel) -> None:
    reader = _client(workspace, ["conversations:read"])
    writer = _client(workspace, ["conversations:write"])
    resp = writer.post(
        "/api/v1/teams/",
        {
            "name": "Support",
            "member_ids": [agent.pk],
            "channel_ids": [sms_channel.pk],
            "auto_assign": True,
            "capacity": 3,
        },
        format="json",
    )
    assert resp.status_code == 201, resp.content
    team_id = resp.json()["id"]
    assert resp.json()["member_ids"] == [agent.pk]
    assert reader.get("/api/v1/teams/").json()["results"][0]["name"] == "Support"
    assert reader.get(f"/api/v1/teams/?member={agent.pk}").json()["results"][0]["id"] == team_id
    denied = reader.post("/api/v1/teams/", {"name": "Other"}, format="json")
    assert denied.status_code == 403
    assert denied.json()["code"] == "scope_missing"
    resp = writer.patch(f"/api/v1/teams/{team_id}/", {"capacity": 5}, format="json")
    assert resp.json()["capacity"] == 5
    assert resp.json()["member_ids"] == [agent.pk]
    dup = writer.post("/api/v1/teams/", {"name": "Support"}, format="json")
    assert dup.status_code == 409
    # Console members: agents read, admins write.
    agent_api = APIClient()
    agent_api.force_login(agent)
    assert agent_api.get("/api/v1/teams/").status_code == 200
    assert agent_api.post("/api/v1/teams/", {"name": "Mine"}, format="json").status_code == 403
    admin_api = APIClient()
    admin_api.force_login(factories.member(workspace, Role.ADMIN))
    assert admin_api.post("/api/v1/teams/", {"name": "Admins"}, format="json").status_code == 201
    assert writer.delete(f"/api/v1/teams/{team_id}/").status_code == 204
    assert not Team.objects.filter(pk=team_id).exists()
    # Another workspace's key sees none of them.
    assert _client(factories.workspace_create()).get("/api/v1/teams/").json()["results"] == []


def test_canned_responses_crud_and_labels_list(api: APIClient, sms_channel) -> None:
    resp = api.post(
        "/api/v1/canned-responses/",
        {"shortcut": "hi", "title": "Hello", "body": "Hi {{ customer.first_name }}"},
        format="json",
    )
    assert resp.status_code == 201, resp.content
    cid = resp.json()["id"]
    bad = api.post(
        "/api/v1/canned-responses/", {"shortcut": "x", "title": "X", "body": "{{ nope.x }}"}, format="json"
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == "canned_response_invalid"
    dup = api.post(
        "/api/v1/canned-responses/", {"shortcut": "hi", "title": "Again", "body": "x"}, format="json"
    )
    assert dup.status_code == 409
    assert (
        api.patch(f"/api/v1/canned-responses/{cid}/", {"title": "Hey"}, format="json").json()["title"]
        == "Hey"
    )
    assert api.get("/api/v1/canned-responses/?shortcut=h").json()["results"][0]["id"] == cid
    assert api.delete(f"/api/v1/canned-responses/{cid}/").status_code == 204
    a = inbound(sms_channel, "+14155550101", "a")
    api.post(f"/api/v1/conversations/{a.conversation_id}/labels/", {"add": ["billing"]}, format="json")
    assert [x["name"] for x in api.get("/api/v1/labels/").json()["results"]] == ["billing"]


def test_team_events_are_public_webhook_types(api: APIClient, agent, sms_channel) -> None:
    assert {"conversation.assigned", "note.created", "conversation.resolved"} <= set(EVENT_TYPES)
    a = inbound(sms_channel, "+14155550101", "a")
    api.post(f"/api/v1/conversations/{a.conversation_id}/assign/", {"assignee_id": agent.pk}, format="json")
    api.post(f"/api/v1/conversations/{a.conversation_id}/notes/", {"body": "secret text"}, format="json")
    api.post(f"/api/v1/conversations/{a.conversation_id}/status/", {"status": "resolved"}, format="json")
    built = {}
    for row in OutboxEvent.objects.filter(
        name__in=[events.CONVERSATION_ASSIGNED, events.NOTE_CREATED, events.CONVERSATION_UPDATED]
    ):
        webhook = webhook_event_build(events.DomainEvent(**row.payload))
        assert webhook is not None
        built[webhook.type] = webhook
    assert built["conversation.assigned"].data["assignee_id"] == agent.pk
    assert built["note.created"].data["conversation_id"] == a.conversation_id
    assert "secret text" not in built["note.created"].body()  # ids only, never the note's text
    assert built["conversation.resolved"].data["status"] == "resolved"
