"""The inbox: the workspace's conversations, newest activity first, filtered by status, paginated."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from engagement.models import Conversation
from tests import factories

from .conftest import conversation_pk, inbound, minutes_ago


def _conversation_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'data-conversation-id="(\d+)"', html)]


@pytest.mark.django_db
def test_inbox_lists_open_conversations_newest_first(agent_client: Client, sms_channel) -> None:
    old = inbound(sms_channel, "+14155550101", "oldest", at=minutes_ago(30), name="Grace Hopper")
    new = inbound(sms_channel, "+14155550102", "newest", at=minutes_ago(1))
    mid = inbound(sms_channel, "+14155550103", "middle", at=minutes_ago(10), name="Alan Turing")

    resp = agent_client.get("/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert _conversation_ids(html) == [new.conversation_id, mid.conversation_id, old.conversation_id]
    assert "Grace Hopper" in html
    assert "+14155550102" in html  # no name: the phone stands in
    assert "SMS" in html
    assert "newest" in html
    assert "10\xa0minutes ago" in html  # timesince keeps number and unit together
    assert old.conversation_id is not None


@pytest.mark.django_db
def test_inbox_filters_by_status(agent_client: Client, sms_channel) -> None:
    open_ = inbound(sms_channel, "+14155550101", "still open")
    pending = inbound(sms_channel, "+14155550102", "waiting")
    resolved = inbound(sms_channel, "+14155550103", "done")
    Conversation.objects.filter(pk=conversation_pk(pending)).update(status="pending")
    Conversation.objects.filter(pk=conversation_pk(resolved)).update(status="resolved")

    def ids(query: str) -> set[int]:
        return set(_conversation_ids(agent_client.get("/" + query).content.decode()))

    assert ids("") == {open_.conversation_id}
    assert ids("?status=open") == {open_.conversation_id}
    assert ids("?status=pending") == {pending.conversation_id}
    assert ids("?status=resolved") == {resolved.conversation_id}
    assert ids("?status=all") == {open_.conversation_id, pending.conversation_id, resolved.conversation_id}
    assert ids("?status=bogus") == {open_.conversation_id}


@pytest.mark.django_db
def test_inbox_paginates_by_50(agent_client: Client, sms_channel) -> None:
    for i in range(52):
        inbound(sms_channel, f"+1415555{i:04d}", f"message {i}", at=minutes_ago(100 - i))
    first = _conversation_ids(agent_client.get("/").content.decode())
    second = _conversation_ids(agent_client.get("/?status=open&page=2").content.decode())
    assert len(first) == 50
    assert len(second) == 2
    assert not set(first) & set(second)


@pytest.mark.django_db
def test_inbox_query_count_does_not_grow_with_conversations(
    agent_client: Client, sms_channel, workspace, fake_twilio, django_assert_max_num_queries
) -> None:
    inbound(sms_channel, "+14155550100", "first", name="One")
    agent_client.get("/")  # warm the session
    with CaptureQueriesContext(connection) as one_row:
        assert agent_client.get("/").status_code == 200
    baseline = len(one_row.captured_queries)
    # session, user, two for memberships, count, page, seven for the rows (labels too), SLA policies,
    # and the team tools: snoozes due, the member's teams, the counts per view (one), the filters' four lists
    assert baseline <= 21

    # Many more conversations, on several channels, with and without names.
    other_channel = factories.twilio_channel(workspace, fake_twilio)
    for i in range(40):
        channel = sms_channel if i % 2 else other_channel
        inbound(channel, f"+1415556{i:04d}", f"hello {i}", name="" if i % 3 else f"Customer {i}")
    with django_assert_max_num_queries(baseline):
        resp = agent_client.get("/")
    assert len(_conversation_ids(resp.content.decode())) == 41
    with django_assert_max_num_queries(baseline):
        agent_client.get("/?fragment=1")


@pytest.mark.django_db
def test_fragment_renders_only_the_list(agent_client: Client, sms_channel) -> None:
    item = inbound(sms_channel, "+14155550101", "hi there")
    resp = agent_client.get("/?fragment=1")
    html = resp.content.decode()
    assert resp.status_code == 200
    assert "<html" not in html
    assert '<nav class="sidenav"' not in html
    assert _conversation_ids(html) == [item.conversation_id]
    full = agent_client.get("/?status=pending").content.decode()
    assert 'data-fragment-url="/?status=pending&amp;fragment=1"' in full
    assert 'data-live="inbox"' in full


@pytest.mark.django_db
def test_customer_text_is_escaped(agent_client: Client, sms_channel) -> None:
    item = inbound(sms_channel, "+14155550101", "<script>alert(1)</script>", name="<b>Eve</b>")
    inbox = agent_client.get("/").content.decode()
    page = agent_client.get(f"/conversations/{item.conversation_id}/").content.decode()
    for html in (inbox, page):
        assert "<script>alert(1)</script>" not in html
        assert "<b>Eve</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;Eve&lt;/b&gt;" in inbox
