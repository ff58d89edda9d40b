"""Team tools through the console and the services: assignment (manual, on reply, round-robin among
online members within a capacity, a thread's new channel joining its assignee), views and their counts,
filters, sort by waiting time, labels, private notes with @mentions, canned responses, snooze (until a
time, lazily and by beat; until the customer's next message), resolve/reopen and bulk actions."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from engagement import events
from engagement.models import Conversation, Label, Note, OutboxEvent, Role, Team
from engagement.realtime import member_presence_set, members_online
from engagement.services import teamwork
from engagement.tasks import wake_snoozed_task
from tests import factories
from tests.console.conftest import conversation_pk, inbound, minutes_ago

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _rows(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-customer-id="(\d+)"', html)]


def _count(html: str, view: str) -> int:
    found = re.search(rf'data-view-count="{view}">(\d+)<', html)
    assert found, view
    return int(found.group(1))


def _outbox(name: str) -> list[dict[str, Any]]:
    return [row.payload for row in OutboxEvent.objects.filter(name=name).order_by("pk")]


@pytest.fixture
def teammate(workspace) -> Any:
    return factories.member(workspace, Role.AGENT)


# ---------------------------------------------------------------- assignment


def test_manual_assignment_takes_the_whole_thread_and_is_published(
    agent_client: Client, agent, teammate, workspace, sms_channel
) -> None:
    email = factories.channel_create(workspace, "email")
    sms = inbound(sms_channel, "+14155550101", "by text", name="Grace")
    other = Conversation.objects.create(
        workspace=workspace, customer=sms.customer, channel=email, last_activity_at=timezone.now()
    )
    resp = agent_client.post(f"/customers/{sms.customer_id}/thread/assign/", {"assignee": teammate.pk})
    assert resp.status_code == 302
    assert set(Conversation.objects.values_list("assignee_id", flat=True)) == {teammate.pk}
    assigned = _outbox(events.CONVERSATION_ASSIGNED)
    assert {p["conversation_id"] for p in assigned} == {sms.conversation_id, other.pk}
    assert assigned[0]["data"]["assignee_id"] == teammate.pk
    assert assigned[0]["data"]["how"] == "manual"
    # A repeat changes nothing and publishes nothing.
    agent_client.post(f"/customers/{sms.customer_id}/thread/assign/", {"assignee": teammate.pk})
    assert len(_outbox(events.CONVERSATION_ASSIGNED)) == 2
    # "me", and unassigning.
    agent_client.post(f"/customers/{sms.customer_id}/thread/assign/", {"assignee": "me"})
    assert set(Conversation.objects.values_list("assignee_id", flat=True)) == {agent.pk}
    agent_client.post(f"/customers/{sms.customer_id}/thread/assign/", {"assignee": ""})
    assert set(Conversation.objects.values_list("assignee_id", flat=True)) == {None}


def test_assigning_someone_outside_the_workspace_is_refused(agent_client: Client, sms_channel) -> None:
    stranger = factories.member(factories.workspace_create(), Role.AGENT)
    item = inbound(sms_channel, "+14155550101", "hello")
    resp = agent_client.post(
        f"/customers/{item.customer_id}/thread/assign/", {"assignee": stranger.pk}, follow=True
    )
    assert "not a member of this workspace" in resp.content.decode()
    assert Conversation.objects.get().assignee_id is None
    with pytest.raises(teamwork.AssignmentInvalid):
        teamwork.thread_assign(
            workspace=item.workspace, customer_id=item.customer_id, assignee_id=stranger.pk
        )


def test_replying_in_an_unassigned_thread_assigns_it_to_the_agent(
    agent_client: Client, agent, teammate, sms_channel, fake_twilio
) -> None:
    item = inbound(sms_channel, "+14155550101", "anyone there?")
    resp = agent_client.post(
        f"/customers/{item.customer_id}/thread/", {"channel": sms_channel.pk, "body": "Yes!"}
    )
    assert resp.status_code == 302
    assert Conversation.objects.get().assignee_id == agent.pk
    assert _outbox(events.CONVERSATION_ASSIGNED)[-1]["data"]["how"] == "reply"
    # Somebody's thread stays theirs when another agent answers.
    _client(teammate).post(
        f"/customers/{item.customer_id}/thread/", {"channel": sms_channel.pk, "body": "Me too"}
    )
    assert Conversation.objects.get().assignee_id == agent.pk


def test_round_robin_gives_new_conversations_to_online_members_within_capacity(
    workspace, sms_channel, django_capture_on_commit_callbacks
) -> None:
    a, b, offline = (factories.member(workspace, Role.AGENT) for _ in range(3))
    team = teamwork.team_save(
        workspace=workspace,
        data=teamwork.TeamInput(
            name="Support",
            member_ids=[a.pk, b.pk, offline.pk],
            channel_ids=[sms_channel.pk],
            auto_assign=True,
            capacity=1,
        ),
    )
    member_presence_set(workspace_id=workspace.pk, user_id=a.pk, connection="conn-a", present=True)
    member_presence_set(workspace_id=workspace.pk, user_id=b.pk, connection="conn-b", present=True)
    assert {a.pk, b.pk} <= members_online(workspace_id=workspace.pk)
    assert offline.pk not in members_online(workspace_id=workspace.pk)

    assignees = []
    for i in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            item = inbound(sms_channel, f"+1415555020{i}", f"new {i}")
        conversation = Conversation.objects.get(pk=conversation_pk(item))
        assert conversation.team_id == team.pk
        assignees.append(conversation.assignee_id)
    # In turn (by id), each up to one open thread; the third finds everybody full: team only.
    assert assignees == [*sorted([a.pk, b.pk]), None]
    assert _outbox(events.CONVERSATION_ASSIGNED)[0]["data"]["how"] == "auto"

    # a resolves theirs: a is the next one with room.
    first = Conversation.objects.get(assignee=a)
    teamwork.conversations_status_set(workspace=workspace, conversations=[first], status="resolved")
    with django_capture_on_commit_callbacks(execute=True):
        item = inbound(sms_channel, "+14155550209", "one more")
    assert Conversation.objects.get(pk=conversation_pk(item)).assignee_id == a.pk

    # A member who closes the console is no longer online.
    member_presence_set(workspace_id=workspace.pk, user_id=b.pk, connection="conn-b", present=False)
    assert b.pk not in members_online(workspace_id=workspace.pk)


def test_round_robin_pick_is_a_pure_decision() -> None:
    assert teamwork.round_robin_pick(candidates=[3, 1, 2], loads={}, capacity=0, last=None) == 1
    assert teamwork.round_robin_pick(candidates=[3, 1, 2], loads={}, capacity=0, last=1) == 2
    assert teamwork.round_robin_pick(candidates=[3, 1, 2], loads={}, capacity=0, last=3) == 1
    assert teamwork.round_robin_pick(candidates=[1, 2], loads={2: 2}, capacity=2, last=1) == 1
    assert teamwork.round_robin_pick(candidates=[1, 2], loads={1: 2, 2: 2}, capacity=2, last=1) is None
    assert teamwork.round_robin_pick(candidates=[], loads={}, capacity=0, last=None) is None


def test_a_new_channel_of_an_assigned_thread_joins_its_assignee(
    workspace, agent, sms_channel, django_capture_on_commit_callbacks
) -> None:
    from customers.services import Identifier
    from engagement.services.timeline import interaction_record_inbound

    item = inbound(sms_channel, "+14155550101", "by text")
    teamwork.thread_assign(workspace=workspace, customer_id=item.customer_id, assignee_id=agent.pk)
    other_sms = factories.channel_create(workspace, "sms")
    with django_capture_on_commit_callbacks(execute=True):
        second, _ = interaction_record_inbound(
            channel=other_sms,
            sender=Identifier("phone", "+14155550101"),
            body="other line",
            provider_message_id="SMOTHERLINE1",
            occurred_at=timezone.now(),
        )
    assert second.conversation_id != item.conversation_id
    assert Conversation.objects.get(pk=conversation_pk(second)).assignee_id == agent.pk


# ---------------------------------------------------------------- views, filters, counts, sort


def test_views_filters_and_counts(agent_client: Client, agent, teammate, workspace, sms_channel) -> None:
    mine = inbound(sms_channel, "+14155550101", "mine")
    theirs = inbound(sms_channel, "+14155550102", "theirs")
    nobody = inbound(sms_channel, "+14155550103", "nobody's")
    team = teamwork.team_save(
        workspace=workspace, data=teamwork.TeamInput(name="Billing", member_ids=[agent.pk], channel_ids=[])
    )
    teamwork.thread_assign(workspace=workspace, customer_id=mine.customer_id, assignee_id=agent.pk)
    teamwork.thread_assign(
        workspace=workspace, customer_id=theirs.customer_id, assignee_id=teammate.pk, team_id=team.pk
    )
    teamwork.note_create(
        workspace=workspace,
        customer=nobody.customer,
        body="@" + agent.username + " can you look?",
        author_id=teammate.pk,
    )
    html = agent_client.get("/").content.decode()
    assert (_count(html, "mine"), _count(html, "unassigned"), _count(html, "teams")) == (1, 1, 1)
    assert (_count(html, "all"), _count(html, "mentions")) == (3, 1)

    def rows(query: str) -> set[int]:
        return set(_rows(agent_client.get("/?" + query).content.decode()))

    assert rows("view=mine") == {mine.customer_id}
    assert rows("view=unassigned") == {nobody.customer_id}
    assert rows("view=teams") == {theirs.customer_id}
    assert rows("view=mentions") == {nobody.customer_id}
    assert rows("view=all") == {mine.customer_id, theirs.customer_id, nobody.customer_id}
    assert rows(f"assignee={teammate.pk}") == {theirs.customer_id}
    assert rows(f"team={team.pk}") == {theirs.customer_id}
    assert rows(f"channel={sms_channel.pk}") == {mine.customer_id, theirs.customer_id, nobody.customer_id}
    other = factories.channel_create(workspace, "sms")
    assert rows(f"channel={other.pk}") == set()
    teamwork.conversation_labels_change(
        workspace=workspace, conversations=[Conversation.objects.get(pk=conversation_pk(mine))], add=["VIP "]
    )
    label = Label.objects.get(name="vip")
    assert rows(f"label={label.pk}") == {mine.customer_id}
    assert rows("view=bogus&label=x&team=-1") == {mine.customer_id, theirs.customer_id, nobody.customer_id}
    # The counts follow the status tab; resolved threads leave "mine".
    teamwork.thread_status_set(workspace=workspace, customer_id=mine.customer_id, status="resolved")
    html = agent_client.get("/?fragment=1").content.decode()
    assert _count(html, "mine") == 0
    assert _count(agent_client.get("/?status=resolved&fragment=1").content.decode(), "mine") == 1


def test_sort_by_waiting_time_puts_the_longest_wait_first(agent_client: Client, agent, sms_channel) -> None:
    from engagement.models import Interaction

    recent = inbound(sms_channel, "+14155550101", "recent", at=minutes_ago(5))
    long_wait = inbound(sms_channel, "+14155550102", "long wait", at=minutes_ago(90))
    answered = inbound(sms_channel, "+14155550103", "answered", at=minutes_ago(200))
    Interaction.objects.create(
        workspace=answered.workspace,
        customer=answered.customer,
        conversation=answered.conversation,
        channel=sms_channel,
        direction="outbound",
        body="done",
        author=agent,
        status="sent",
        status_changed_at=minutes_ago(1),
        created_at=minutes_ago(1),
    )
    Conversation.objects.filter(pk=conversation_pk(answered)).update(last_activity_at=minutes_ago(1))
    newest = _rows(agent_client.get("/").content.decode())
    assert newest == [answered.customer_id, recent.customer_id, long_wait.customer_id]
    waiting = _rows(agent_client.get("/?sort=waiting").content.decode())
    assert waiting == [long_wait.customer_id, recent.customer_id, answered.customer_id]


# ---------------------------------------------------------------- labels, notes, canned responses


def test_labels_added_and_removed_from_the_thread(agent_client: Client, workspace, sms_channel) -> None:
    item = inbound(sms_channel, "+14155550101", "hello")
    url = f"/customers/{item.customer_id}/thread/labels/"
    agent_client.post(url, {"add": "billing, Urgent"})
    conversation = Conversation.objects.get()
    assert sorted(conversation.labels.values_list("name", flat=True)) == ["billing", "urgent"]
    page = agent_client.get(f"/customers/{item.customer_id}/thread/").content.decode()
    assert 'data-label="billing"' in page
    agent_client.post(url, {"remove": "urgent"})
    assert list(conversation.labels.values_list("name", flat=True)) == ["billing"]
    resp = agent_client.post(url, {"add": "x" * 51}, follow=True)
    assert "1 to 50 characters" in resp.content.decode()


def test_a_note_with_mentions_is_private_and_published(
    agent_client: Client, agent, teammate, workspace, sms_channel, fake_twilio
) -> None:
    item = inbound(sms_channel, "+14155550101", "help me")
    body = f"@{teammate.username} please call her; cc grace@example.com and @nobody"
    resp = agent_client.post(f"/customers/{item.customer_id}/thread/notes/", {"body": body})
    assert resp.status_code == 302
    note = Note.objects.get()
    assert list(note.mentions.all()) == [teammate]
    assert note.conversation_id == item.conversation_id
    assert note.author_id == agent.pk
    published = _outbox(events.NOTE_CREATED)[-1]
    assert published["data"]["mentioned_user_ids"] == [teammate.pk]
    page = agent_client.get(f"/customers/{item.customer_id}/thread/").content.decode()
    assert 'class="item note"' in page
    assert "please call her" in page
    assert page.index("help me") < page.index("please call her")
    assert fake_twilio.messages == []  # nothing goes to the customer
    resp = agent_client.post(f"/customers/{item.customer_id}/thread/notes/", {"body": "  "}, follow=True)
    assert "1 to 5,000 characters" in resp.content.decode()


def test_canned_responses_are_managed_by_admins_and_filled_in_for_the_customer(
    agent_client: Client, agent, workspace, sms_channel
) -> None:
    admin = factories.member(workspace, Role.ADMIN)
    admin_client = _client(admin)
    assert agent_client.get("/settings/canned-responses/").status_code == 403
    resp = admin_client.post(
        "/settings/canned-responses/",
        {
            "shortcut": "/Thanks",
            "title": "Thank you",
            "body": "Thanks {{ customer.first_name }}! — {{ agent.name }}",
        },
    )
    assert resp.status_code == 302
    bad = admin_client.post(
        "/settings/canned-responses/",
        {"shortcut": "oops", "title": "Oops", "body": "Hi {{ customer.nickname }}"},
    )
    assert "template error" in bad.content.decode()
    agent.first_name, agent.last_name = "Alex", "Agent"
    agent.save()
    item = inbound(sms_channel, "+14155550101", "hi", name="Grace Hopper")
    data = json.loads(agent_client.get(f"/customers/{item.customer_id}/thread/canned/").content)
    assert data == {
        "items": [{"shortcut": "thanks", "title": "Thank you", "text": "Thanks Grace! — Alex Agent"}]
    }
    with pytest.raises(teamwork.Conflict):
        teamwork.canned_response_save(workspace=workspace, shortcut="thanks", title="Again", body="x")


# ---------------------------------------------------------------- snooze, resolve, reopen, bulk


def test_snooze_until_a_time_wakes_lazily_and_by_beat(agent_client: Client, workspace, sms_channel) -> None:
    a = inbound(sms_channel, "+14155550101", "later please")
    b = inbound(sms_channel, "+14155550102", "me too")
    resp = agent_client.post(
        f"/customers/{a.customer_id}/thread/status/", {"status": "snoozed", "snooze": "1h"}
    )
    assert resp.status_code == 302
    conversation = Conversation.objects.get(pk=conversation_pk(a))
    assert conversation.status == "snoozed"
    assert conversation.snoozed_until is not None
    assert timedelta(minutes=59) < conversation.snoozed_until - timezone.now() <= timedelta(hours=1)
    assert a.customer_id not in _rows(agent_client.get("/").content.decode())
    assert a.customer_id in _rows(agent_client.get("/?status=snoozed").content.decode())
    # Time passes: the inbox wakes it before listing (no beat needed).
    Conversation.objects.filter(pk=conversation_pk(a)).update(
        snoozed_until=timezone.now() - timedelta(seconds=1)
    )
    assert a.customer_id in _rows(agent_client.get("/").content.decode())
    assert Conversation.objects.get(pk=conversation_pk(a)).status == "open"
    # Beat's task does the same for the whole installation.
    teamwork.thread_status_set(
        workspace=workspace,
        customer_id=b.customer_id,
        status="snoozed",
        snoozed_until=timezone.now() + timedelta(hours=2),
    )
    assert wake_snoozed_task() == 0
    Conversation.objects.filter(pk=conversation_pk(b)).update(
        snoozed_until=timezone.now() - timedelta(seconds=1)
    )
    assert wake_snoozed_task() == 1
    assert Conversation.objects.get(pk=conversation_pk(b)).status == "open"
    with pytest.raises(teamwork.SnoozeInvalid):
        teamwork.thread_status_set(
            workspace=workspace,
            customer_id=b.customer_id,
            status="snoozed",
            snoozed_until=timezone.now() - timedelta(hours=1),
        )


def test_snooze_until_the_customer_replies(agent_client: Client, sms_channel) -> None:
    a = inbound(sms_channel, "+14155550101", "I'll check and write back")
    agent_client.post(f"/customers/{a.customer_id}/thread/status/", {"status": "snoozed", "snooze": "reply"})
    conversation = Conversation.objects.get()
    assert (conversation.status, conversation.snoozed_until) == ("snoozed", None)
    assert wake_snoozed_task() == 0  # no time: only a message wakes it
    again = inbound(sms_channel, "+14155550101", "found it")
    assert again.conversation_id == conversation.pk
    assert Conversation.objects.get().status == "open"


def test_resolve_and_reopen_the_thread(agent_client: Client, workspace, sms_channel) -> None:
    email = factories.channel_create(workspace, "email")
    a = inbound(sms_channel, "+14155550101", "two channels")
    Conversation.objects.create(
        workspace=workspace, customer=a.customer, channel=email, last_activity_at=minutes_ago(1)
    )
    agent_client.post(f"/customers/{a.customer_id}/thread/status/", {"status": "resolved"})
    assert set(Conversation.objects.values_list("status", flat=True)) == {"resolved"}
    resolved = [p for p in _outbox(events.CONVERSATION_UPDATED) if p["data"].get("status") == "resolved"]
    assert len(resolved) == 2
    agent_client.post(f"/customers/{a.customer_id}/thread/status/", {"status": "open"})
    assert sorted(Conversation.objects.values_list("status", flat=True)) == ["open", "resolved"]


def test_bulk_actions_on_selected_rows(agent_client: Client, agent, teammate, workspace, sms_channel) -> None:
    items = [inbound(sms_channel, f"+1415555030{i}", f"row {i}") for i in range(3)]
    ids = [str(i.customer_id) for i in items[:2]]
    agent_client.post("/inbox/bulk/", {"customer": ids, "action": "assign", "assignee": teammate.pk})
    assert Conversation.objects.filter(assignee=teammate).count() == 2
    agent_client.post("/inbox/bulk/", {"customer": ids, "action": "label", "label": "refund"})
    assert Conversation.objects.filter(labels__name="refund").count() == 2
    agent_client.post("/inbox/bulk/", {"customer": ids, "action": "snooze", "snooze": "tomorrow"})
    assert Conversation.objects.filter(status="snoozed").count() == 2
    resp = agent_client.post("/inbox/bulk/", {"customer": ids, "action": "resolve", "next": "/?view=all"})
    assert resp["Location"] == "/?view=all"
    assert Conversation.objects.filter(status="resolved").count() == 2
    assert Conversation.objects.get(pk=conversation_pk(items[2])).status == "open"
    resp = agent_client.post("/inbox/bulk/", {"customer": ids, "action": "explode"}, follow=True)
    assert "unknown action" in resp.content.decode()
    resp = agent_client.post("/inbox/bulk/", {"action": "resolve", "next": "https://evil.example/"})
    assert resp["Location"] == "/"


# ---------------------------------------------------------------- teams settings


def test_admins_manage_teams(agent_client: Client, agent, workspace, sms_channel) -> None:
    admin_client = _client(factories.member(workspace, Role.ADMIN))
    assert agent_client.get("/settings/teams/").status_code == 403
    resp = admin_client.post(
        "/settings/teams/",
        {
            "name": "Support",
            "members": [agent.pk],
            "channels": [sms_channel.pk],
            "auto_assign": "on",
            "capacity": "5",
        },
    )
    assert resp.status_code == 302
    team = Team.objects.get()
    assert (team.auto_assign, team.capacity) == (True, 5)
    assert list(team.members.all()) == [agent]
    assert list(team.channels.all()) == [sms_channel]
    page = admin_client.get("/settings/teams/").content.decode()
    assert f'data-team="{team.pk}"' in page
    stranger = factories.member(factories.workspace_create(), Role.AGENT)
    bad = admin_client.post("/settings/teams/", {"name": "Other", "members": [stranger.pk]})
    assert "not members of this workspace" in bad.content.decode()
    dup = admin_client.post("/settings/teams/", {"name": "Support"})
    assert "exists" in dup.content.decode()
    admin_client.post("/settings/teams/", {"team_id": team.pk, "delete": "1"})
    assert not Team.objects.exists()


def test_thread_page_query_count_does_not_grow_with_notes_and_labels(
    agent_client: Client, agent, teammate, workspace, sms_channel, django_assert_max_num_queries
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    item = inbound(sms_channel, "+14155550101", "first")
    teamwork.note_create(workspace=workspace, customer=item.customer, body="first note", author_id=agent.pk)
    url = f"/customers/{item.customer_id}/thread/"
    agent_client.get(url)
    with CaptureQueriesContext(connection) as one:
        agent_client.get(url)
    for i in range(15):
        inbound(sms_channel, "+14155550101", f"more {i}")
        teamwork.note_create(
            workspace=workspace,
            customer=item.customer,
            body=f"@{teammate.username} note {i}",
            author_id=agent.pk,
        )
    teamwork.conversation_labels_change(
        workspace=workspace, conversations=[Conversation.objects.get()], add=["a", "b", "c"]
    )
    teamwork.thread_assign(workspace=workspace, customer_id=item.customer_id, assignee_id=teammate.pk)
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert agent_client.get(url).status_code == 200


def test_catch_up_sees_notes_and_assignments_made_after_the_render(workspace, agent, sms_channel) -> None:
    from engagement.services.inbox import thread_changed_since, thread_high_water_mark

    item = inbound(sms_channel, "+14155550101", "hello")
    mark = thread_high_water_mark(workspace=workspace)
    assert not thread_changed_since(workspace_id=workspace.pk, mark=mark)
    teamwork.thread_assign(workspace=workspace, customer_id=item.customer_id, assignee_id=agent.pk)
    assert thread_changed_since(workspace_id=workspace.pk, mark=mark)
    mark = thread_high_water_mark(workspace=workspace)
    teamwork.note_create(workspace=workspace, customer=item.customer, body="later", author_id=agent.pk)
    assert thread_changed_since(workspace_id=workspace.pk, mark=mark)


def test_my_teams_view_of_a_member_without_teams_is_empty(agent_client: Client, sms_channel) -> None:
    inbound(sms_channel, "+14155550101", "hello")
    html = agent_client.get("/?view=teams").content.decode()
    assert _rows(html) == []
    assert _count(html, "teams") == 0
    assert _count(html, "all") == 1


def test_a_next_that_is_not_a_path_goes_back_to_the_thread(agent_client, workspace, sms_channel):
    """``next`` is a URL on this site or ignored; never a view name to reverse ("0" was a 500)."""
    from tests.console.conftest import inbound as _inbound

    item = _inbound(sms_channel, "+14155557777", "hello", name="Next Test")
    for bad in ("0", "console:inbox", "https://evil.example/", "//evil.example/x"):
        response = agent_client.post(
            f"/customers/{item.customer_id}/thread/status/", {"status": "pending", "next": bad}
        )
        assert response.status_code == 302, bad
        assert response["Location"] == f"/customers/{item.customer_id}/thread/", bad
