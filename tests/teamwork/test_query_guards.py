"""Query-count guards with the team tools in use: the inbox in every view and sort, the thread, and the
customers page cost the same number of queries for one row as for many assigned, labelled, noted ones."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from engagement.models import Conversation, Role
from engagement.services import teamwork
from tests import factories
from tests.console.conftest import inbound

pytestmark = pytest.mark.django_db

PAGES = [
    "/",
    "/?view=mine",
    "/?view=unassigned",
    "/?view=teams&sort=waiting",
    "/?view=mentions&status=all",
    "/?fragment=1&view=all&sort=waiting",
    "/customers/",
]


def _busy(workspace: Any, channel: Any, agent: Any, teammate: Any, n: int, start: int) -> None:
    team = teamwork.team_save(
        workspace=workspace,
        data=teamwork.TeamInput(name=f"Team {start}", member_ids=[agent.pk, teammate.pk], channel_ids=[]),
    )
    for i in range(start, start + n):
        item = inbound(channel, f"+1415557{i:04d}", f"message {i}", name=f"Customer {i}")
        if i % 5 == 4:
            continue  # unassigned and unlabelled: the "unassigned" view has rows too
        teamwork.thread_assign(
            workspace=workspace,
            customer_id=item.customer_id,
            assignee_id=agent.pk if i % 2 else teammate.pk,
            team_id=team.pk,
        )
        teamwork.conversation_labels_change(
            workspace=workspace,
            conversations=list(Conversation.objects.filter(customer_id=item.customer_id)),
            add=[f"label-{i % 3}"],
        )
        teamwork.note_create(
            workspace=workspace, customer=item.customer, body=f"@{agent.username} look", author_id=teammate.pk
        )


def test_pages_do_not_grow_with_rows(
    agent_client: Client, agent, workspace, sms_channel, django_assert_max_num_queries
) -> None:
    teammate = factories.member(workspace, Role.AGENT)
    _busy(workspace, sms_channel, agent, teammate, 5, 0)  # a row in every view
    baselines = {}
    for path in PAGES:
        agent_client.get(path)
        with CaptureQueriesContext(connection) as one:
            assert agent_client.get(path).status_code == 200
        baselines[path] = len(one.captured_queries)
    _busy(workspace, sms_channel, agent, teammate, 30, 100)
    for path in PAGES:
        with django_assert_max_num_queries(baselines[path], info=path):
            html = agent_client.get(path).content.decode()
        assert "Customer 1" in html, path  # rows were rendered, so the guard measured them
