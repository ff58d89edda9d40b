"""Journeys in a real browser at phone width (390 px), under the CSP: a marketer opens the seeded demo
journey, edits a step, publishes it as version 2, runs the test run for a customer and sees the path
they would take; an agent sees the customer's journey on the profile (the step it waits at and why)
and removes them from it."""

from __future__ import annotations

from typing import Any

import pytest

from engagement.journeys.services import journey_enroll
from engagement.models import Enrollment, Journey, Role
from engagement.services.demo import DEMO_JOURNEY_MISSED_CALL, demo_journeys_seed
from tests import factories

from .conftest import AsgiServer, chromium_browser

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WAIT_MS = 20_000
PHONE = {"viewport": {"width": 390, "height": 844}}
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def _login(page: Any, server: AsgiServer, user: Any) -> None:
    page.goto(f"{server.url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("button[type=submit]")


def _fits(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide at a 390 px viewport"
    assert page.evaluate("window.__cspViolations") == []


def test_marketer_edits_publishes_and_test_runs_agent_removes(asgi_server: AsgiServer) -> None:
    workspace = factories.workspace_create(name="Demo Co")
    sms = factories.channel_create(workspace, "sms")
    factories.channel_create(workspace, "email")
    factories.channel_create(workspace, "voice")
    demo_journeys_seed(workspace=workspace, sms_channel=sms)
    journey = Journey.objects.get(workspace=workspace, name=DEMO_JOURNEY_MISSED_CALL)
    marketer = factories.member(workspace, Role.MARKETER)
    agent = factories.member(workspace, Role.AGENT)
    caller = factories.customer_create(workspace, ("phone", "+14155550120"), display_name="Cal Waiting")
    factories.customer_create(workspace, ("phone", "+14155550121"), display_name="Bo Tester")
    enrollment = journey_enroll(journey=journey, customer=caller)
    enrollment.refresh_from_db()
    assert enrollment.waiting_for == "reply"  # the SMS went out; it waits an hour for a reply

    from playwright.sync_api import expect

    with chromium_browser() as chromium:
        context = chromium.new_context(**PHONE)
        context.add_init_script(RECORD_VIOLATIONS)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("dialog", lambda dialog: dialog.accept())
        _login(page, asgi_server, marketer)
        page.click("nav.sidenav >> text=Journeys")
        row = page.locator(f"tr[data-journey='{journey.pk}']")
        expect(row).to_contain_text("Live")
        expect(row.locator("[data-active]")).to_have_text("1")
        _fits(page)
        row.locator("a").click()
        expect(page.locator("h1")).to_have_text(DEMO_JOURNEY_MISSED_CALL)
        expect(page.locator("[data-versioning]")).to_contain_text("publishing makes version 2")
        callback = page.locator("#step-callback")
        expect(callback).to_have_class("jstep depth-2")  # the timeout branch, indented under the wait
        expect(page.locator("#step-sorry [data-step-stats]")).to_contain_text("sent 1")
        expect(page.locator("#step-wait_reply [data-step-stats]")).to_contain_text("waiting 1")
        _fits(page)

        step = page.locator("#step-sorry")
        step.locator("summary").click()
        step.locator("input[name=label]").fill("Text: so sorry")
        step.locator("textarea[name='content.sms.body']").fill(
            "So sorry we missed you, {{ first_name | default('there') }}! Reply and we'll call back."
        )
        with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true") as saved:
            step.locator("button[type=submit]", has_text="Save step").click()
        assert saved.value.status == 200  # the steps list swapped in place by htmx
        expect(page.locator("#step-sorry [data-step-title]")).to_have_text("Text: so sorry")
        expect(page.locator("[data-draft-valid]")).to_be_visible()
        journey.refresh_from_db()
        assert journey.live_version is not None
        assert journey.live_version.number == 1  # still live on v1 until published

        page.click("[data-publish]")
        expect(page.locator(".flash")).to_contain_text("Published version 2")
        expect(page.locator("[data-live-version]")).to_have_text("live: v2")

        page.fill("input[name=customer]", "+14155550121")
        page.click("[data-test-run]")
        result = page.locator("#test-run [data-test-result]")  # swapped in by htmx, on the editor
        expect(result).to_contain_text("Bo Tester")
        expect(result.locator("[data-test-step]")).to_have_count(3)
        expect(result.locator("[data-test-step='sorry']")).to_contain_text("So sorry we missed you, Bo!")
        expect(result.locator("[data-test-step='wait_reply']")).to_contain_text("Timed out")
        expect(result.locator("[data-test-step='callback']")).to_contain_text("Call this customer back")
        _fits(page)
        assert page.url == f"{asgi_server.url}/journeys/{journey.pk}/"
        journey.refresh_from_db()
        assert journey.live_version is not None
        assert journey.live_version.number == 2
        assert journey.live_version.definition["steps"][0]["label"] == "Text: so sorry"
        assert Enrollment.objects.filter(journey=journey).count() == 1  # the test run enrolled nobody

        # The agent: the caller's profile says where they wait and why; they take them out.
        agent_context = chromium.new_context(**PHONE)
        agent_context.add_init_script(RECORD_VIOLATIONS)
        agent_page = agent_context.new_page()
        agent_page.set_default_timeout(WAIT_MS)
        agent_page.on("dialog", lambda dialog: dialog.accept())
        _login(agent_page, asgi_server, agent)
        agent_page.goto(f"{asgi_server.url}/customers/{caller.pk}/")
        panel = agent_page.locator("#customer-journeys")
        expect(panel).to_contain_text(DEMO_JOURNEY_MISSED_CALL)
        expect(panel.locator("[data-enrollment-step]")).to_contain_text("waiting for a reply until")
        _fits(agent_page)
        panel.locator("[data-remove-enrollment]").click()
        expect(agent_page.locator(".flash")).to_contain_text("Removed from the journey")
        expect(agent_page.locator("#customer-journeys")).to_contain_text("In no journey now.")
        enrollment.refresh_from_db()
        assert enrollment.state == "removed"
        assert enrollment.due_at is None


def test_tasks_page_shows_a_new_task_live_and_marks_it_done(
    asgi_server: AsgiServer, outbox_relay_for_server: Any
) -> None:
    """A journey's "call this customer back" reaches an agent's open tasks page without a reload (the
    outbox relay pushes ``agent_task.created`` to the console websocket); the agent marks it done."""
    from engagement.journeys.services import agent_task_create
    from engagement.models import AgentTask

    workspace = factories.workspace_create(name="Demo Co")
    agent = factories.member(workspace, Role.AGENT)
    customer = factories.customer_create(workspace, ("phone", "+14155550122"), display_name="Cal Later")

    from playwright.sync_api import expect

    with chromium_browser() as chromium:
        context = chromium.new_context(**PHONE)
        context.add_init_script(RECORD_VIOLATIONS)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        _login(page, asgi_server, agent)
        frames: list[str] = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: frames.append(str(frame))))
        page.goto(f"{asgi_server.url}/tasks/")
        for _ in range(100):  # the socket is in the workspace's group once it was answered "catchup"
            if any("catchup" in f for f in frames):
                break
            page.wait_for_timeout(100)
        assert any("catchup" in f for f in frames), frames
        expect(page.locator("[data-no-tasks]")).to_be_visible()
        task = agent_task_create(workspace=workspace, customer=customer, title="Call this customer back")
        item = page.locator(f"[data-task='{task.pk}']")
        expect(item).to_contain_text("Call this customer back")
        expect(item).to_contain_text("Cal Later")
        _fits(page)
        item.locator("[data-task-done]").click()
        expect(page.locator(".flash")).to_contain_text("Done: Call this customer back")
        expect(page.locator("[data-no-tasks]")).to_be_visible()
        assert AgentTask.objects.get(pk=task.pk).done_at is not None
