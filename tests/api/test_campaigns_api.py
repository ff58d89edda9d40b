"""Campaigns over the REST API: CRUD, lint, preview, test send, launch, pause/resume/cancel, stats,
recipients (cursor-paginated, with reasons), CSV export, approval rules, roles, OpenAPI."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import TestCase
from rest_framework.test import APIClient

from engagement.campaigns.sending import campaigns_tick
from engagement.models import CampaignSettings, Interaction, Role, Workspace
from engagement.services.tenancy import api_key_create
from tests import factories
from tests.campaigns.helpers import audience_create, tag_segment

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(workspace: Workspace) -> APIClient:
    _, secret = api_key_create(workspace=workspace, name="t")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def body(channel_id: int, segment_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Spring",
        "segment": segment_id,
        "channel_ids": [channel_id],
        "content": {"sms": {"body": "Hi {{ first_name | default('there') }}!"}},
        **extra,
    }


def test_campaign_lifecycle_over_the_api(api, workspace, sms_channel, fake_twilio):
    CampaignSettings.objects.create(workspace=workspace, quiet_hours_enabled=False)
    people = audience_create(workspace, 12)
    people[0].consent_events.all().delete()
    segment = tag_segment(workspace)

    bad = api.post("/api/v1/campaigns/", body(sms_channel.pk, segment.pk, channel_ids=[999]), format="json")
    assert bad.status_code == 400
    assert bad.json()["code"] == "campaign_invalid"

    resp = api.post(
        "/api/v1/campaigns/",
        body(sms_channel.pk, segment.pk, content={"sms": {"body": "Hi {{ frist_name }}"}}),
        format="json",
    )
    assert resp.status_code == 201, resp.content
    cid = resp.json()["id"]
    assert resp.json()["state"] == "draft"
    lint = api.get(f"/api/v1/campaigns/{cid}/lint/").json()["problems"]
    assert "unknown variable 'frist_name'" in lint["sms.body"][0]
    refused = api.post(f"/api/v1/campaigns/{cid}/launch/")
    assert refused.status_code == 400
    assert refused.json()["code"] == "content_invalid"

    assert (
        api.patch(f"/api/v1/campaigns/{cid}/", {"content": body(1, 1)["content"]}, format="json").status_code
        == 200
    )
    preview = api.post(
        f"/api/v1/campaigns/{cid}/preview/", {"customer_id": people[1].pk}, format="json"
    ).json()
    assert preview["channels"]["sms"]["body"] == "Hi Pat!\nReply STOP to opt out"

    with TestCase.captureOnCommitCallbacks(execute=True):
        test = api.post(f"/api/v1/campaigns/{cid}/test/", {"addresses": ["+12025559999"]}, format="json")
    assert test.status_code == 201, test.content
    test_msg = Interaction.objects.get(pk=test.json()["interactions"][0]["id"])
    assert test_msg.metadata["test"] is True
    assert test_msg.body == "Hi there!\nReply STOP to opt out"
    assert [m["To"] for m in fake_twilio.messages if "sid" in m] == ["+12025559999"]

    launched = api.post(f"/api/v1/campaigns/{cid}/launch/")
    assert launched.status_code == 200, launched.content
    assert launched.json()["state"] == "running"
    assert api.post(f"/api/v1/campaigns/{cid}/launch/").json()["code"] == "campaign_state"
    assert api.post(f"/api/v1/campaigns/{cid}/pause/").json()["state"] == "paused"
    assert api.post(f"/api/v1/campaigns/{cid}/resume/").json()["state"] == "running"
    for _ in range(4):
        with TestCase.captureOnCommitCallbacks(execute=True):
            campaigns_tick(budget_seconds=5)

    stats = api.get(f"/api/v1/campaigns/{cid}/stats/").json()
    total = stats["total"]
    assert total["targeted"] == 12
    assert total["sent"] == 11  # the test send is not counted
    assert stats["skipped_by_reason"] == {"consent:no_marketing_consent": 1}
    assert (
        sum(
            total[k]
            for k in ("holdout", "pending", "held", "sending", "sent", "failed", "skipped", "unknown")
        )
        == 12
    )
    assert api.get(f"/api/v1/campaigns/{cid}/").json()["state"] == "completed"

    page = api.get(f"/api/v1/campaigns/{cid}/recipients/?page_size=5").json()
    assert len(page["results"]) == 5
    assert page["next"]
    skipped = api.get(f"/api/v1/campaigns/{cid}/recipients/?state=skipped").json()["results"]
    assert [(r["customer_id"], r["skip_reason"]) for r in skipped] == [
        (people[0].pk, "consent:no_marketing_consent")
    ]
    csv_text = b"".join(api.get(f"/api/v1/campaigns/{cid}/recipients/export/").streaming_content).decode()
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("run_id,customer_id")
    assert len(lines) == 13

    assert api.delete(f"/api/v1/campaigns/{cid}/").status_code == 409


def test_approval_rules_and_roles(workspace, sms_channel):
    CampaignSettings.objects.create(workspace=workspace, approval_threshold=5)
    audience_create(workspace, 6)
    segment = tag_segment(workspace)
    marketer, admin, agent = (factories.member(workspace, r) for r in (Role.MARKETER, Role.ADMIN, Role.AGENT))
    as_marketer, as_admin, as_agent = APIClient(), APIClient(), APIClient()
    as_marketer.force_login(marketer)
    as_admin.force_login(admin)
    as_agent.force_login(agent)

    assert (
        as_agent.post("/api/v1/campaigns/", body(sms_channel.pk, segment.pk), format="json").status_code
        == 403
    )
    cid = as_admin.post("/api/v1/campaigns/", body(sms_channel.pk, segment.pk), format="json").json()["id"]
    needs = as_admin.post(f"/api/v1/campaigns/{cid}/launch/")
    assert needs.status_code == 409
    assert needs.json()["code"] == "approval_required"
    own = as_admin.post(f"/api/v1/campaigns/{cid}/approve/")
    assert own.status_code == 422
    assert "author" in own.json()["detail"]
    assert as_marketer.post(f"/api/v1/campaigns/{cid}/approve/").status_code == 422  # not an admin
    other_admin = factories.member(workspace, Role.ADMIN)
    as_other = APIClient()
    as_other.force_login(other_admin)
    assert as_other.post(f"/api/v1/campaigns/{cid}/approve/").status_code == 200
    assert as_agent.post(f"/api/v1/campaigns/{cid}/launch/").status_code == 403
    assert as_marketer.post(f"/api/v1/campaigns/{cid}/launch/").json()["state"] == "running"


def test_openapi_lists_campaign_endpoints(api):
    schema = api.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/campaigns/{id}/launch/", "/campaigns/{id}/recipients/", "/campaigns/{id}/stats/"):
        assert path in text
