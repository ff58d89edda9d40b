"""Reports: volume, first response, resolution, agent load and CSAT per day/week, filtered by channel
and assignee; the console page with its charts' data, CSV export and the API."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from engagement.models import Channel, Conversation, ConversationResolution, Interaction, Workspace
from engagement.reports.selectors import (
    ReportInvalid,
    ReportNotFound,
    report_filters_build,
    report_get,
)
from engagement.services.conversation_actions import conversation_status_set
from engagement.services.csat import csat_response_record
from engagement.services.messaging import message_send
from engagement.services.tenancy import api_key_create

from .conftest import conversation_pk, inbound, minutes_ago


@pytest.fixture
def activity(workspace: Workspace, sms_channel: Channel, agent: Any) -> dict[str, Any]:
    """Two customers: Grace answered after 10 minutes and resolved (CSAT 5), Alan unanswered."""
    grace_msg = inbound(sms_channel, "+14155550101", "where is my order", at=minutes_ago(30), name="Grace")
    alan_msg = inbound(sms_channel, "+14155550102", "hello", at=minutes_ago(20), name="Alan")
    reply, _ = message_send(
        workspace=workspace, channel=sms_channel, customer=grace_msg.customer, body="on it", author=agent
    )
    Interaction.objects.filter(pk=reply.pk).update(created_at=grace_msg.created_at + timedelta(minutes=10))
    grace_conv = Conversation.objects.get(pk=conversation_pk(grace_msg))
    Conversation.objects.filter(pk=grace_conv.pk).update(assignee=agent, created_at=grace_msg.created_at)
    grace_conv.refresh_from_db()
    conversation_status_set(workspace=workspace, conversation=grace_conv, status="resolved", actor=agent)
    resolution = ConversationResolution.objects.get()
    csat_response_record(resolution=resolution, score=5, source="page")
    return {"grace": grace_msg, "alan": alan_msg, "agent": agent, "resolution": resolution}


def _filters(**kwargs: Any) -> Any:
    today = timezone.localdate()
    return report_filters_build(start=today - timedelta(days=1), end=today, **kwargs)


@pytest.mark.django_db
def test_volume_first_response_resolution_agent_load_csat(
    workspace: Workspace, activity: dict[str, Any]
) -> None:
    today = timezone.now().date().isoformat()
    volume = report_get(workspace=workspace, name="volume", filters=_filters())
    assert sorted((r[1], r[2], r[3]) for r in volume.rows) == [("sms", "inbound", 2), ("sms", "outbound", 1)]
    assert volume.summary == {"total": 3}
    assert len(volume.chart["labels"]) == 2
    assert {d["label"] for d in volume.chart["datasets"]} == {"sms inbound", "sms outbound"}

    first = report_get(workspace=workspace, name="first_response", filters=_filters())
    opened_on = activity["grace"].created_at.date().isoformat()  # 30 minutes ago: yesterday just after 0:00
    assert first.rows[-1][0] in (opened_on, today)
    assert sum(r[1] for r in first.rows) == 2
    assert [r[2:] for r in first.rows if r[2]] == [[1, 600.0, 600.0, 600.0]]

    resolution = report_get(workspace=workspace, name="resolution", filters=_filters())
    assert resolution.rows[0][:3] == [today, 1, 1]
    assert 1790 < resolution.rows[0][3] < 1900  # opened 30 minutes before it was resolved

    load = report_get(workspace=workspace, name="agent_load", filters=_filters())
    agent = activity["agent"]
    assert load.rows == [[agent.pk, agent.get_username(), 0, 1, 1]]

    csat = report_get(workspace=workspace, name="csat", filters=_filters())
    assert csat.rows == [[today, 1, 5.0, 100.0]]
    assert csat.summary == {"responses": 1, "satisfied_percent": 100.0}


@pytest.mark.django_db
def test_filters_by_channel_and_assignee_and_week(workspace: Workspace, activity: dict[str, Any]) -> None:
    email_only = _filters(channel_kinds=["email"])
    assert report_get(workspace=workspace, name="volume", filters=email_only).rows == []
    assert report_get(workspace=workspace, name="csat", filters=email_only).rows == []
    mine = _filters(assignee_ids=[activity["agent"].pk])
    volume = report_get(workspace=workspace, name="volume", filters=mine)
    assert sum(r[3] for r in volume.rows) == 2  # Grace's conversation only
    nobody = _filters(assignee_ids=[10**9])
    assert report_get(workspace=workspace, name="first_response", filters=nobody).rows == []
    weekly = _filters(interval="week")
    rows = report_get(workspace=workspace, name="volume", filters=weekly).rows
    monday = timezone.now().date() - timedelta(days=timezone.now().date().weekday())
    assert {r[0] for r in rows} == {monday.isoformat()}


def test_filters_are_validated() -> None:
    today = timezone.now().date()
    with pytest.raises(ReportInvalid):
        report_filters_build(start=today, end=today - timedelta(days=1))
    with pytest.raises(ReportInvalid):
        report_filters_build(start=today - timedelta(days=900), end=today)
    with pytest.raises(ReportInvalid):
        report_filters_build(start=None, end=None, interval="month")
    with pytest.raises(ReportInvalid):
        report_filters_build(start=None, end=None, channel_kinds=["fax"])
    with pytest.raises(ReportInvalid):
        report_filters_build(start=None, end=None, zone="Mars/Base")


@pytest.mark.django_db
def test_unknown_report(workspace: Workspace) -> None:
    with pytest.raises(ReportNotFound):
        report_get(workspace=workspace, name="nope", filters=_filters())


@pytest.mark.django_db
def test_reports_page_and_csv(agent_client: Client, workspace: Workspace, activity: dict[str, Any]) -> None:
    page = agent_client.get("/reports/")
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("volume", "first_response", "resolution", "agent_load", "csat"):
        assert f'id="chart-{name}"' in html
    assert 'id="report-charts"' in html
    assert "vendor/chart.umd.js" in html

    export = agent_client.get("/reports/volume.csv", {"interval": "day", "channel": "sms"})
    assert export.status_code == 200
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert rows[0] == ["period", "channel", "direction", "count"]
    assert sorted(r[3] for r in rows[1:]) == ["1", "2"]
    assert agent_client.get("/reports/nope.csv").status_code == 404
    bad = agent_client.get("/reports/", {"start": "2026-02-01", "end": "2026-01-01"})
    assert "the end is before the start" in bad.content.decode()


@pytest.mark.django_db
def test_reports_api(workspace: Workspace, activity: dict[str, Any]) -> None:
    _, secret = api_key_create(workspace=workspace, name="r", scopes=["reports:read"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    today = timezone.now().date()
    body = api.get("/api/v1/reports/csat/", {"start": (today - timedelta(days=1)).isoformat()}).json()
    assert body["name"] == "csat"
    assert body["columns"] == ["period", "responses", "mean_score", "satisfied_percent"]
    assert body["rows"] == [[today.isoformat(), 1, 5.0, 100.0]]
    volume = api.get("/api/v1/reports/volume/", {"channel": ["sms", "email"], "interval": "week"}).json()
    assert volume["interval"] == "week"
    assert api.get("/api/v1/reports/nope/").status_code == 404
    assert api.get("/api/v1/reports/volume/", {"interval": "month"}).status_code == 400
    assert api.get("/api/v1/reports/volume/", {"bogus": "1"}).status_code == 400
    _, other_secret = api_key_create(workspace=workspace, name="x", scopes=["customers:read"])
    no_scope = APIClient()
    no_scope.credentials(HTTP_AUTHORIZATION=f"Bearer {other_secret}")
    assert no_scope.get("/api/v1/reports/volume/").status_code == 403
