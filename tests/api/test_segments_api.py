"""REST API for segments: CRUD, validation errors naming the node, counts, members, static uploads,
roles, tenancy, and the OpenAPI schema."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from customers.consent import consent_record
from engagement.models import Role, Segment, Workspace
from engagement.services.tenancy import api_key_create
from tests import factories

pytestmark = pytest.mark.django_db

SMS_OPT_IN = {"type": "consent", "channel": "sms", "purpose": "marketing", "state": "opted_in"}


@pytest.fixture
def api(workspace: Workspace) -> APIClient:
    _, secret = api_key_create(workspace=workspace, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def _people(workspace: Workspace) -> list[Any]:
    people = [
        factories.customer_create(workspace, ("phone", f"+1415555{n:04d}"), tags=["vip"] if n % 2 else [])
        for n in range(5)
    ]
    for p in people[:3]:
        consent_record(customer=p, channel="sms", purpose="marketing", status="opted_in", source="api")
    return people


def test_crud_count_and_members(api: APIClient, workspace: Workspace) -> None:
    people = _people(workspace)
    resp = api.post(
        "/api/v1/segments/",
        {
            "name": "SMS VIPs",
            "rules": {"type": "and", "rules": [SMS_OPT_IN, {"type": "tag", "value": "vip"}]},
        },
        format="json",
    )
    assert resp.status_code == 201, resp.content
    segment_id = resp.json()["id"]
    assert resp.json()["kind"] == "dynamic"

    count = api.get(f"/api/v1/segments/{segment_id}/count/?purpose=marketing").json()
    assert count == {
        "count": 1,
        "purpose": "marketing",
        "reachable": {"sms": 1, "email": 0, "voice": 0, "webchat": 0},
    }

    resp = api.patch(f"/api/v1/segments/{segment_id}/", {"rules": SMS_OPT_IN}, format="json")
    assert resp.status_code == 200
    members = api.get(f"/api/v1/segments/{segment_id}/members/?page_size=2").json()
    assert len(members["results"]) == 2
    rest = api.get(members["next"]).json()
    ids = {m["id"] for m in members["results"] + rest["results"]}
    assert ids == {p.pk for p in people[:3]}
    assert rest["results"][0]["identities"][0]["kind"] == "phone"

    assert api.get("/api/v1/segments/").json()[0]["name"] == "SMS VIPs"
    assert api.delete(f"/api/v1/segments/{segment_id}/").status_code == 204
    assert not Segment.objects.exists()


def test_invalid_rules_answer_400_naming_the_node(api: APIClient) -> None:
    rules = {"type": "and", "rules": [SMS_OPT_IN, {"type": "not", "rule": {"type": "tag", "value": ""}}]}
    resp = api.post("/api/v1/segments/", {"name": "bad", "rules": rules}, format="json")
    assert resp.status_code == 400
    body = resp.json()
    assert resp["Content-Type"] == "application/problem+json"
    assert body["code"] == "segment_rules_invalid"
    assert body["errors"][0]["field"] == "$.rules[1].rule"
    assert body["detail"].startswith("$.rules[1].rule: 'value' must be a tag")
    resp = api.post("/api/v1/segments/preview-count/", {"rules": {"type": "nope"}}, format="json")
    assert resp.status_code == 400
    assert "unknown rule type 'nope'" in resp.json()["detail"]


def test_preview_count_of_an_unsaved_tree(api: APIClient, workspace: Workspace) -> None:
    _people(workspace)
    resp = api.post(
        "/api/v1/segments/preview-count/",
        {"rules": {"type": "tag", "value": "vip"}, "purpose": "transactional"},
        format="json",
    )
    assert resp.status_code == 200
    assert resp.json() == {
        "count": 2, "purpose": "transactional", "reachable": {"sms": 2, "email": 0, "voice": 2, "webchat": 0},
    }  # fmt: skip
    assert not Segment.objects.exists()
    bad = api.post("/api/v1/segments/preview-count/", {"rules": SMS_OPT_IN, "purpose": "spam"}, format="json")
    assert bad.status_code == 400


def test_segments_in_use_and_names_taken_are_409(api: APIClient) -> None:
    base = api.post("/api/v1/segments/", {"name": "Base"}, format="json").json()
    ref = {"type": "segment", "segment_id": base["id"]}
    assert api.post("/api/v1/segments/", {"name": "User", "rules": ref}, format="json").status_code == 201
    resp = api.delete(f"/api/v1/segments/{base['id']}/")
    assert resp.status_code == 409
    assert "used by 'User'" in resp.json()["detail"]
    assert api.post("/api/v1/segments/", {"name": "Base"}, format="json").status_code == 409
    assert api.patch(f"/api/v1/segments/{base['id']}/", {"kind": "static"}, format="json").status_code == 400


def test_static_segment_upload(api: APIClient, workspace: Workspace) -> None:
    known = factories.customer_create(workspace, ("email", "a@example.com"))
    segment = api.post("/api/v1/segments/", {"name": "List", "kind": "static"}, format="json").json()
    resp = api.post(
        f"/api/v1/segments/{segment['id']}/members/upload/",
        {"csv": "email\na@example.com\nb@example.com\n", "create_missing": False},
        format="json",
    )
    assert resp.status_code == 200, resp.content
    assert resp.json()["added"] == 1
    assert resp.json()["not_found"] == 1
    assert api.get(f"/api/v1/segments/{segment['id']}/count/").json()["count"] == 1
    resp = api.post(
        f"/api/v1/segments/{segment['id']}/members/remove/", {"customer_ids": [known.pk]}, format="json"
    )
    assert resp.json() == {"removed": 1}
    dynamic = api.post("/api/v1/segments/", {"name": "Dyn"}, format="json").json()
    resp = api.post(
        f"/api/v1/segments/{dynamic['id']}/members/upload/", {"csv": "email\nx@example.com\n"}, format="json"
    )
    assert resp.status_code == 400


@pytest.mark.parametrize(
    ("role", "allowed"), [(Role.MARKETER, True), (Role.ADMIN, True), (Role.AGENT, False)]
)
def test_only_admins_and_marketers_change_segments(workspace: Workspace, role: str, allowed: bool) -> None:
    client = APIClient()
    client.force_login(factories.member(workspace, role))
    resp = client.post("/api/v1/segments/", {"name": "Mine"}, format="json")
    assert resp.status_code == (201 if allowed else 403)
    # Everyone may read and preview.
    assert client.get("/api/v1/segments/").status_code == 200
    preview = client.post(
        "/api/v1/segments/preview-count/", {"rules": {"type": "and", "rules": []}}, format="json"
    )
    assert preview.status_code == 200


def test_another_workspaces_segments_are_invisible(api: APIClient, workspace: Workspace) -> None:
    other = factories.workspace_create()
    theirs = Segment.objects.create(workspace=other, name="Theirs")
    assert api.get(f"/api/v1/segments/{theirs.pk}/").status_code == 404
    assert api.get(f"/api/v1/segments/{theirs.pk}/count/").status_code == 404
    ref = {"type": "segment", "segment_id": theirs.pk}
    resp = api.post("/api/v1/segments/preview-count/", {"rules": ref}, format="json")
    assert resp.status_code == 400
    assert f"no segment {theirs.pk} in this workspace" in resp.json()["detail"]


def test_schema_lists_the_segment_endpoints(api: APIClient) -> None:
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in (
        "/api/v1/segments/",
        "/api/v1/segments/{id}/",
        "/api/v1/segments/preview-count/",
        "/api/v1/segments/{id}/count/",
        "/api/v1/segments/{id}/members/",
    ):
        assert path in schema["paths"], path
