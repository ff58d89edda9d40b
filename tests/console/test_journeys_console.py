"""The journeys console: list, editor (steps as an indented list, step forms through htmx, validation
messages next to their step, add / move / remove), publish as a new version, pause / archive, the test
run (a dry run), per-step stats; the customer profile's Journeys and Tasks panels; the tasks page; the
read-only AutomationRule admin. Real services on real PostgreSQL; query counts guarded."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from engagement.journeys.scheduler import journeys_tick
from engagement.journeys.services import agent_task_create, journey_enroll
from engagement.models import (
    AgentTask,
    AutomationRule,
    Enrollment,
    Interaction,
    Journey,
    JourneyVersion,
    Role,
    Workspace,
)
from engagement.services.demo import DEMO_JOURNEY_MISSED_CALL, demo_journeys_seed
from tests import factories
from tests.journeys.conftest import after_commit, later

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def marketer_client(workspace: Workspace) -> Client:
    client = Client()
    client.force_login(factories.member(workspace, Role.MARKETER))
    return client


@pytest.fixture
def demo(workspace: Workspace) -> Journey:
    sms = factories.channel_create(workspace, "sms")
    factories.channel_create(workspace, "email")
    factories.channel_create(workspace, "voice")
    demo_journeys_seed(workspace=workspace, sms_channel=sms)
    return Journey.objects.get(workspace=workspace, name=DEMO_JOURNEY_MISSED_CALL)


def _step_li(html: str, key: str) -> str:
    match = re.search(rf'<li class="jstep[^"]*" id="step-{key}".*?</li>', html, re.S)
    assert match, f"no step {key}"
    return match.group(0)


def _enroll(journey: Journey, phone: str) -> Enrollment:
    customer = factories.customer_create(journey.workspace, ("phone", phone))
    return after_commit(journey_enroll, journey=journey, customer=customer)


# ---------------------------------------------------------------- list


def test_list_shows_state_version_and_counts(marketer_client: Client, demo: Journey) -> None:
    _enroll(demo, "+14155550101")
    _enroll(demo, "+14155550102")
    response = marketer_client.get("/journeys/")
    assert response.status_code == 200
    row = re.search(rf'<tr data-journey="{demo.pk}">.*?</tr>', response.content.decode(), re.S)
    assert row
    text = row.group(0)
    assert "Live" in text
    assert "v1" in text
    assert "<td data-enrolled>2</td>" in text
    assert "<td data-active>2</td>" in text


def test_list_query_count_does_not_grow_with_journeys(marketer_client: Client, demo: Journey) -> None:
    with CaptureQueriesContext(connection) as few:
        marketer_client.get("/journeys/")
    for n in range(4):
        Journey.objects.create(workspace=demo.workspace, name=f"extra {n}", definition={})
    with CaptureQueriesContext(connection) as many:
        response = marketer_client.get("/journeys/")
    assert response.content.decode().count("data-journey=") == 6
    assert len(many) == len(few)


def test_agents_cannot_open_journeys(agent_client: Client, demo: Journey) -> None:
    assert agent_client.get("/journeys/").status_code == 403
    assert agent_client.get(f"/journeys/{demo.pk}/").status_code == 403
    assert agent_client.post(f"/journeys/{demo.pk}/publish/").status_code == 403


def test_new_journey_opens_a_draft(marketer_client: Client, workspace: Workspace) -> None:
    response = marketer_client.post("/journeys/", {"name": "Welcome"})
    journey = Journey.objects.get(workspace=workspace, name="Welcome")
    assert response["Location"] == f"/journeys/{journey.pk}/"
    page = marketer_client.get(response["Location"]).content.decode()
    assert "a journey needs at least one step" in page


# ---------------------------------------------------------------- the editor


def test_editor_draws_branches_indented_with_stats(marketer_client: Client, demo: Journey) -> None:
    enrollment = _enroll(demo, "+14155550103")
    after_commit(journeys_tick, now=later(hours=1, minutes=1))  # timed out: the callback task
    enrollment.refresh_from_db()
    assert enrollment.state == "completed"
    html = marketer_client.get(f"/journeys/{demo.pk}/").content.decode()
    assert 'class="jstep depth-0" id="step-sorry"' in html
    assert 'class="jstep depth-0" id="step-wait_reply"' in html
    assert '<li class="jbranch depth-1" data-branch="wait_reply.timeout">↳ Timed out</li>' in html
    assert 'class="jstep depth-2" id="step-callback"' in html
    assert "sent 1" in _step_li(html, "sorry")
    assert "entered 1" in _step_li(html, "callback")
    assert "The draft is valid and ready to publish." in html
    assert "publishing makes version 2" in html


def test_editing_a_step_changes_the_draft_not_the_live_version(
    marketer_client: Client, demo: Journey
) -> None:
    response = marketer_client.post(
        f"/journeys/{demo.pk}/step/sorry/",
        {
            "label": "Text: so sorry",
            "content.sms.body": "So sorry, {{ first_name }}!",
            "channel_ids": "",
            "purpose": "",
        },
        headers=HTMX,
    )
    assert response.status_code == 200
    fragment = response.content.decode()
    assert fragment.startswith('<section id="journey-steps"')
    # channel ids left empty: the validation service's message is shown next to that step
    assert "channel_ids: needs at least one channel" in _step_li(fragment, "sorry")
    demo.refresh_from_db()
    sorry = demo.definition["steps"][0]
    assert sorry["content"] == {"sms": {"body": "So sorry, {{ first_name }}!"}}
    assert demo.live_version is not None
    assert demo.live_version.definition["steps"][0]["label"] == "Text: sorry we missed you"
    sms_id = demo.live_version.definition["steps"][0]["channel_ids"][0]
    response = marketer_client.post(
        f"/journeys/{demo.pk}/step/sorry/",
        {
            "label": "Text: so sorry",
            "content.sms.body": "So sorry!",
            "channel_ids": str(sms_id),
            "purpose": "",
        },
        headers=HTMX,
    )
    assert "data-step-error" not in response.content.decode()
    assert "The draft is valid" in response.content.decode()
    page = marketer_client.get(f"/journeys/{demo.pk}/").content.decode()
    assert "The draft has unpublished changes</strong>: publish" in page


def test_add_move_remove_steps(marketer_client: Client, demo: Journey) -> None:
    url = f"/journeys/{demo.pk}/steps"
    marketer_client.post(f"{url}/add/", {"parent": "wait_reply.matched", "type": "update"}, headers=HTMX)
    demo.refresh_from_db()
    added = demo.definition["steps"][1]["matched"][0]
    assert added["type"] == "update"
    marketer_client.post(f"{url}/add/", {"parent": "", "type": "exit"}, headers=HTMX)
    demo.refresh_from_db()
    exit_key = demo.definition["steps"][-1]["key"]
    marketer_client.post(f"{url}/move/", {"key": exit_key, "direction": "up"}, headers=HTMX)
    demo.refresh_from_db()
    assert [s["key"] for s in demo.definition["steps"]] == ["sorry", exit_key, "wait_reply"]
    response = marketer_client.post(f"{url}/remove/", {"key": exit_key}, headers=HTMX)
    demo.refresh_from_db()
    assert [s["key"] for s in demo.definition["steps"]] == ["sorry", "wait_reply"]
    assert f'id="step-{added["key"]}"' in response.content.decode()
    response = marketer_client.post(f"{url}/add/", {"parent": "nowhere", "type": "exit"}, headers=HTMX)
    assert "no list of steps 'nowhere'" in unescape(response.content.decode())


def test_publish_makes_a_new_version_and_enrollments_keep_theirs(
    marketer_client: Client, demo: Journey
) -> None:
    before = _enroll(demo, "+14155550104")
    sms_id = demo.definition["steps"][0]["channel_ids"][0]
    marketer_client.post(
        f"/journeys/{demo.pk}/step/sorry/",
        {"label": "Text v2", "content.sms.body": "Version two", "channel_ids": str(sms_id), "purpose": ""},
    )
    response = marketer_client.post(f"/journeys/{demo.pk}/publish/", follow=True)
    assert "Published version 2" in response.content.decode()
    demo.refresh_from_db()
    assert demo.live_version is not None
    assert demo.live_version.number == 2
    assert demo.live_version.definition["steps"][0]["label"] == "Text v2"
    before.refresh_from_db()
    assert before.version.number == 1


def test_publishing_an_invalid_draft_is_refused_with_the_message(
    marketer_client: Client, demo: Journey
) -> None:
    marketer_client.post(f"/journeys/{demo.pk}/steps/add/", {"parent": "", "type": "send"})
    response = marketer_client.post(f"/journeys/{demo.pk}/publish/", follow=True)
    html = response.content.decode()
    assert "needs at least one channel" in html
    assert JourneyVersion.objects.filter(journey=demo).count() == 1


def test_pause_resume_archive(marketer_client: Client, demo: Journey) -> None:
    enrollment = _enroll(demo, "+14155550105")
    marketer_client.post(f"/journeys/{demo.pk}/pause/")
    demo.refresh_from_db()
    assert demo.status == "paused"
    marketer_client.post(f"/journeys/{demo.pk}/resume/")
    demo.refresh_from_db()
    assert demo.status == "live"
    marketer_client.post(f"/journeys/{demo.pk}/archive/")
    demo.refresh_from_db()
    enrollment.refresh_from_db()
    assert (demo.status, enrollment.state) == ("archived", "removed")
    html = marketer_client.get(f"/journeys/{demo.pk}/").content.decode()
    assert "Archived: read-only." in html
    assert "Save step" not in html


def test_settings_set_trigger_reentry_and_goal(marketer_client: Client, demo: Journey) -> None:
    response = marketer_client.post(
        f"/journeys/{demo.pk}/settings/",
        {
            "name": demo.name,
            "description": "",
            "trigger_type": "message.received",
            "trigger_channel_kind": "sms",
            "trigger_match": "keyword",
            "trigger_keywords": "callme, ring",
            "reentry": "every_time",
            "purpose": "transactional",
            "goal": '{"type": "reply"}',
            "exit_conditions": "",
        },
        follow=True,
    )
    assert "Journey settings saved" in response.content.decode()
    demo.refresh_from_db()
    assert demo.definition["trigger"] == {
        "type": "message.received",
        "channel_kind": "sms",
        "match": "keyword",
        "keywords": ["callme", "ring"],
    }
    assert (demo.reentry, demo.goal) == ("every_time", {"type": "reply"})
    assert "goal: any reply" in response.content.decode()
    response = marketer_client.post(
        f"/journeys/{demo.pk}/settings/",
        {"name": demo.name, "trigger_type": "event", "goal": '{"type": "nope"}', "reentry": "every_time"},
        follow=True,
    )
    assert "$.goal.type: must be one of" in response.content.decode()


# ---------------------------------------------------------------- the test run


def test_test_run_shows_the_path_and_sends_nothing(marketer_client: Client, demo: Journey) -> None:
    customer = factories.customer_create(demo.workspace, ("phone", "+14155550106"), display_name="Ann Lee")
    url = f"/journeys/{demo.pk}/test/"
    response = marketer_client.get(url, {"customer": "+14155550106", "waits": "timeout"}, headers=HTMX)
    html = response.content.decode()
    assert re.findall(r'data-test-step="([^"]+)"', html) == ["sorry", "wait_reply", "callback"]
    assert "would send by sms" in html
    assert "Hi Ann, sorry we missed your call!" in html
    assert "Timed out" in html
    assert "would create the task “Call this customer back”" in html
    response = marketer_client.get(url, {"customer": str(customer.pk), "waits": "matched"}, headers=HTMX)
    html = response.content.decode()
    assert re.findall(r'data-test-step="([^"]+)"', html) == ["sorry", "wait_reply"]
    assert "completed" in html
    assert not Interaction.objects.filter(direction="outbound").exists()
    assert not Enrollment.objects.exists()
    assert not AgentTask.objects.exists()
    response = marketer_client.get(url, {"customer": "nobody@example.com"})
    assert "No customer matches that." in response.content.decode()


# ---------------------------------------------------------------- the profile and tasks


def test_profile_shows_where_the_customer_waits_and_removes_them(agent_client: Client, demo: Journey) -> None:
    enrollment = _enroll(demo, "+14155550107")
    enrollment.refresh_from_db()
    assert enrollment.waiting_for == "reply"
    html = agent_client.get(f"/customers/{enrollment.customer_id}/").content.decode()
    panel = re.search(r'<section class="card" id="customer-journeys".*?</section>', html, re.S)
    assert panel
    assert DEMO_JOURNEY_MISSED_CALL in panel.group(0)
    assert "At Wait 1 hour for a reply: waiting for a reply until" in panel.group(0)
    response = agent_client.post(f"/enrollments/{enrollment.pk}/remove/", follow=True)
    assert "Removed from the journey" in response.content.decode()
    enrollment.refresh_from_db()
    assert (enrollment.state, enrollment.due_at) == ("removed", None)
    assert "In no journey now." in response.content.decode()
    response = agent_client.post(f"/enrollments/{enrollment.pk}/remove/", follow=True)
    assert "already ended" in response.content.decode()


def test_profile_query_count_does_not_grow_with_enrollments_and_tasks(
    agent_client: Client, demo: Journey
) -> None:
    first = _enroll(demo, "+14155550108")
    customer = first.customer
    agent_task_create(workspace=demo.workspace, customer=customer, title="one")
    with CaptureQueriesContext(connection) as few:
        agent_client.get(f"/customers/{customer.pk}/")
    for n in range(3):
        agent_task_create(workspace=demo.workspace, customer=customer, title=f"more {n}")
        other = factories.customer_create(demo.workspace, ("phone", f"+1415555020{n}"))
        Enrollment.objects.filter(pk=after_commit(journey_enroll, journey=demo, customer=other).pk).update(
            customer=customer, exclusive=False
        )
    with CaptureQueriesContext(connection) as many:
        html = agent_client.get(f"/customers/{customer.pk}/").content.decode()
    assert html.count("data-remove-enrollment") == 4
    assert html.count("data-task=") == 4
    assert len(many) == len(few)


def test_tasks_mine_all_and_done(agent_client: Client, agent: Any, workspace: Workspace) -> None:
    customer = factories.customer_create(workspace, ("phone", "+14155550109"))
    other_member = factories.member(workspace, Role.AGENT)
    mine = agent_task_create(workspace=workspace, customer=customer, title="Call back", assignee_id=agent.pk)
    anyone = agent_task_create(workspace=workspace, customer=customer, title="Anyone")
    theirs = agent_task_create(
        workspace=workspace, customer=customer, title="Theirs", assignee_id=other_member.pk
    )
    html = agent_client.get("/tasks/").content.decode()
    assert set(map(int, re.findall(r'data-task="(\d+)"', html))) == {mine.pk, anyone.pk}
    html = agent_client.get("/tasks/?scope=all").content.decode()
    assert set(map(int, re.findall(r'data-task="(\d+)"', html))) == {mine.pk, anyone.pk, theirs.pk}
    response = agent_client.post(f"/tasks/{mine.pk}/done/", {"next": "/tasks/"})
    assert response["Location"] == "/tasks/"
    mine.refresh_from_db()
    assert mine.done_at is not None
    assert mine.done_by == agent
    fragment = agent_client.get("/tasks/?scope=mine&fragment=1").content.decode()
    assert f'data-task="{mine.pk}"' not in fragment
    assert 'name="next" value="/tasks/?scope=mine"' in agent_client.get("/tasks/?fragment=1").content.decode()
    assert "<html" not in fragment


def test_tasks_query_count(agent_client: Client, workspace: Workspace) -> None:
    customer = factories.customer_create(workspace, ("phone", "+14155550110"))
    agent_task_create(workspace=workspace, customer=customer, title="a")
    with CaptureQueriesContext(connection) as few:
        agent_client.get("/tasks/?scope=all")
    for n in range(5):
        other = factories.customer_create(workspace, ("phone", f"+1415555030{n}"))
        agent_task_create(workspace=workspace, customer=other, title=f"t{n}")
    with CaptureQueriesContext(connection) as many:
        agent_client.get("/tasks/?scope=all")
    assert len(many) == len(few)


def test_automation_rule_admin_is_read_only(workspace: Workspace) -> None:
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-123")
    client = Client()
    client.force_login(staff)
    rule = AutomationRule.objects.create(workspace=workspace, name="Hi", template="Hello")
    listing = client.get("/admin/engagement/automationrule/")
    assert "edited in the console under Journeys" in listing.content.decode()
    assert client.get("/admin/engagement/automationrule/add/").status_code == 403
    response = client.post(f"/admin/engagement/automationrule/{rule.pk}/change/", {"name": "Changed"})
    assert response.status_code == 403
    rule.refresh_from_db()
    assert rule.name == "Hi"


def test_the_thread_shows_the_customers_open_tasks(agent_client: Client, workspace: Workspace) -> None:
    customer = factories.customer_create(workspace, ("phone", "+14155550111"))
    task = agent_task_create(workspace=workspace, customer=customer, title="Call this customer back")
    html = agent_client.get(f"/customers/{customer.pk}/thread/").content.decode()
    assert f'data-task="{task.pk}"' in html
    assert "Call this customer back" in html


def test_unreadable_step_values_are_named_not_500(marketer_client: Client, demo: Journey) -> None:
    """Values jsonb or int() cannot take come back as the step form's error (the fuzz suite's lesson)."""
    url = f"/journeys/{demo.pk}/step/sorry/"
    cases = [
        ({"channel_ids": "²"}, "is not an id"),
        ({"channel_ids": "9" * 30}, "is not an id"),
    ]
    for posted, message in cases:
        response = marketer_client.post(url, posted, headers=HTMX)
        assert response.status_code == 200
        assert message in unescape(response.content.decode())
    split = marketer_client.post(
        f"/journeys/{demo.pk}/steps/add/", {"parent": "", "type": "random_split"}, headers=HTMX
    )
    assert split.status_code == 200
    demo.refresh_from_db()
    split_key = demo.definition["steps"][-1]["key"]
    for posted, message in [({"weights": "1, ²"}, "whole numbers"), ({"label": "x", "weights": "50,50"}, "")]:
        response = marketer_client.post(f"/journeys/{demo.pk}/step/{split_key}/", posted, headers=HTMX)
        assert response.status_code == 200
        assert message in response.content.decode()
    update = marketer_client.post(
        f"/journeys/{demo.pk}/steps/add/", {"parent": "", "type": "update"}, headers=HTMX
    )
    assert update.status_code == 200
    demo.refresh_from_db()
    update_key = demo.definition["steps"][-1]["key"]
    for raw in ['{"a": "x\\u0000y"}', '{"a": NaN}', '{"a": ' + "[" * 40 + "]" * 40 + "}"]:
        response = marketer_client.post(
            f"/journeys/{demo.pk}/step/{update_key}/", {"set_attributes": raw}, headers=HTMX
        )
        assert response.status_code == 200
        assert "data-action-error" in response.content.decode()
    response = marketer_client.post(
        f"/journeys/{demo.pk}/settings/",
        {
            "name": demo.name,
            "trigger_type": "manual",
            "reentry": "once_ever",
            "goal": '{"type": "tag", "tag": "\\u0000"}',
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "NUL" in response.content.decode()


def test_editor_query_count_does_not_grow_with_enrollments(marketer_client: Client, demo: Journey) -> None:
    _enroll(demo, "+14155550150")
    with CaptureQueriesContext(connection) as few:
        marketer_client.get(f"/journeys/{demo.pk}/")
    for n in range(4):
        _enroll(demo, f"+1415555016{n}")
    after_commit(journeys_tick, now=later(hours=1, minutes=1))
    with CaptureQueriesContext(connection) as many:
        html = marketer_client.get(f"/journeys/{demo.pk}/").content.decode()
    assert "entered 5" in _step_li(html, "callback")
    assert len(many) == len(few)
