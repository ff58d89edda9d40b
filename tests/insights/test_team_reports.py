"""Reports filtered by team (a team maps onto its members' ids) and the load-per-team report, through the
selectors, the console page, its CSV export and the API."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from engagement.models import Channel, Conversation, Role, Team, Workspace
from engagement.reports.selectors import ReportInvalid, report_filters_build, report_get
from engagement.services.messaging import message_send
from engagement.services.teamwork import TeamInput, conversation_assign, team_save
from engagement.services.tenancy import api_key_create
from tests import factories

from .conftest import conversation_pk, inbound, minutes_ago


@pytest.fixture
def teams(workspace: Workspace, sms_channel: Channel, agent: Any) -> dict[str, Any]:
    """Billing (the agent) has Grace's conversation, answered; Sales (another agent) has Alan's, and
    Linus's conversation is Sales' but nobody's; Empty has no members."""
    other = factories.member(workspace, Role.AGENT)

    def make_team(name: str, ids: list[int]) -> Team:
        return team_save(workspace=workspace, data=TeamInput(name=name, member_ids=ids, channel_ids=[]))

    billing, sales = make_team("Billing", [agent.pk]), make_team("Sales", [other.pk])
    empty = make_team("Empty", [])
    grace = inbound(sms_channel, "+14155550101", "invoice?", at=minutes_ago(30), name="Grace")
    alan = inbound(sms_channel, "+14155550102", "buy", at=minutes_ago(20), name="Alan")
    linus = inbound(sms_channel, "+14155550103", "price?", at=minutes_ago(10), name="Linus")
    for msg, team, person in ((grace, billing, agent), (alan, sales, other), (linus, sales, None)):
        conversation = Conversation.objects.get(pk=conversation_pk(msg))
        conversation_assign(
            workspace=workspace,
            conversations=[conversation],
            assignee_id=person.pk if person else None,
            team_id=team.pk,
        )
    message_send(
        workspace=workspace, channel=sms_channel, customer=grace.customer, body="on it", author=agent
    )
    return {"billing": billing, "sales": sales, "empty": empty, "agent": agent, "other": other}


def _filters(workspace: Workspace, **kwargs: Any) -> Any:
    today = timezone.localdate()
    return report_filters_build(start=today - timedelta(days=1), end=today, workspace=workspace, **kwargs)


@pytest.mark.django_db
def test_team_filter_maps_onto_members(workspace: Workspace, teams: dict[str, Any]) -> None:
    billing = _filters(workspace, team_ids=[teams["billing"].pk])
    assert billing.assignee_ids == (teams["agent"].pk,)
    volume = report_get(workspace=workspace, name="volume", filters=billing)
    assert sorted((r[2], r[3]) for r in volume.rows) == [("inbound", 1), ("outbound", 1)]  # Grace's thread
    load = report_get(workspace=workspace, name="agent_load", filters=billing)
    assert [r[0] for r in load.rows] == [teams["agent"].pk]

    sales = _filters(workspace, team_ids=[teams["sales"].pk])
    volume = report_get(workspace=workspace, name="volume", filters=sales)
    assert sum(r[3] for r in volume.rows) == 1  # Alan's, assigned to Sales' member; Linus's is nobody's

    # A team without members matches nobody (not everybody); both filters narrow.
    empty = _filters(workspace, team_ids=[teams["empty"].pk])
    assert empty.assignee_ids == ()
    assert report_get(workspace=workspace, name="volume", filters=empty).rows == []
    assert report_get(workspace=workspace, name="agent_load", filters=empty).rows == []
    both = _filters(workspace, team_ids=[teams["billing"].pk], assignee_ids=[teams["other"].pk])
    assert report_get(workspace=workspace, name="first_response", filters=both).rows == []


@pytest.mark.django_db
def test_unknown_or_foreign_team_is_refused(workspace: Workspace, teams: dict[str, Any]) -> None:
    foreign = Team.objects.create(workspace=factories.workspace_create(), name="Elsewhere")
    with pytest.raises(ReportInvalid) as err:
        _filters(workspace, team_ids=[foreign.pk])
    assert err.value.field == "team"


@pytest.mark.django_db
def test_team_load(workspace: Workspace, teams: dict[str, Any]) -> None:
    report = report_get(workspace=workspace, name="team_load", filters=_filters(workspace))
    assert report.columns == ["team_id", "team", "members", "open", "unassigned", "replies", "resolved"]
    assert report.rows == [
        [teams["billing"].pk, "Billing", 1, 1, 0, 1, 0],
        [teams["empty"].pk, "Empty", 0, 0, 0, 0, 0],
        [teams["sales"].pk, "Sales", 1, 2, 1, 0, 0],
    ]
    assert report.summary == {"open": 3, "unassigned": 1}
    only_sales = _filters(workspace, team_ids=[teams["sales"].pk])
    assert [r[1] for r in report_get(workspace=workspace, name="team_load", filters=only_sales).rows] == [
        "Sales"
    ]
    email = _filters(workspace, channel_kinds=["email"])
    assert [r[3] for r in report_get(workspace=workspace, name="team_load", filters=email).rows] == [0, 0, 0]


@pytest.mark.django_db
def test_console_team_filter_and_csv(agent_client: Client, teams: dict[str, Any]) -> None:
    page = agent_client.get("/reports/", {"team": teams["sales"].pk})
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="chart-team_load"' in html
    assert f'<option value="{teams["sales"].pk}" selected>Sales</option>' in html
    export = agent_client.get("/reports/team_load.csv", {"team": teams["billing"].pk})
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert rows == [
        ["team_id", "team", "members", "open", "unassigned", "replies", "resolved"],
        [str(teams["billing"].pk), "Billing", "1", "1", "0", "1", "0"],
    ]
    bad = agent_client.get("/reports/", {"team": 10**12})
    assert f"no team {10**12}" in bad.content.decode()


@pytest.mark.django_db
def test_api_team_filter(workspace: Workspace, teams: dict[str, Any]) -> None:
    _, secret = api_key_create(workspace=workspace, name="r", scopes=["reports:read"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    start = (timezone.localdate() - timedelta(days=1)).isoformat()
    body = api.get("/api/v1/reports/team_load/", {"start": start, "team": teams["sales"].pk}).json()
    assert [r[1] for r in body["rows"]] == ["Sales"]
    volume = api.get("/api/v1/reports/volume/", {"start": start, "team": teams["billing"].pk}).json()
    assert sum(r[3] for r in volume["rows"]) == 2
    refused = api.get("/api/v1/reports/volume/", {"team": 10**12})
    assert refused.status_code == 400
    assert refused["Content-Type"].startswith("application/problem+json")
    assert "team" in refused.content.decode()
    assert api.get("/api/v1/reports/volume/", {"team": "x"}).status_code == 400
