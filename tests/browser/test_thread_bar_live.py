"""The thread page's assignee/team/labels bar and status head follow live, like its timeline: Alice
changes Grace's thread (assignee, label, resolve) while Bob has it open; Bob's page shows each change
without a reload, with no CSP violation, and a label Bob is typing is not wiped by a refresh."""

from __future__ import annotations

from typing import Any

import pytest

from engagement.models import Role
from engagement.services import teamwork
from tests import factories

from .conftest import AsgiServer, chromium_browser
from .test_console import _login
from .test_team_console import _seed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WAIT_MS = 20_000


def test_thread_bar_updates_live(asgi_server: AsgiServer, outbox_relay_for_server: object) -> None:
    data = _seed()
    carol = factories.member(data["workspace"], Role.AGENT)
    sales = teamwork.team_save(
        workspace=data["workspace"],
        data=teamwork.TeamInput(name="Sales", member_ids=[carol.pk], channel_ids=[]),
    )
    with chromium_browser() as chromium:
        _scenario(chromium, asgi_server, {**data, "sales": sales})


def _scenario(chromium: Any, server: AsgiServer, data: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)

    grace, alice, bob = data["grace"], data["alice"], data["bob"]
    thread = f"{server.url}/customers/{grace.pk}/thread/"
    a_ctx = chromium.new_context(viewport={"width": 1280, "height": 900})
    b_ctx = chromium.new_context(viewport={"width": 390, "height": 844})
    violations: list[str] = []
    try:
        b = b_ctx.new_page()
        b.set_default_timeout(WAIT_MS)
        b.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        _login(b, server, bob.username)
        b.goto(thread)
        expect(b.locator("#assign-to")).to_have_value("")
        expect(b.locator("[data-thread-status]")).to_have_text("Open")
        b.wait_for_function("document.querySelector('[data-live-part]') !== null")

        a = a_ctx.new_page()
        a.set_default_timeout(WAIT_MS)
        _login(a, server, alice.username)
        a.goto(thread)
        a.select_option("#assign-to", str(bob.pk))  # submits on change
        expect(a.locator(".flash")).to_contain_text("Assignment saved.")
        # Bob's page, untouched: the bar follows.
        expect(b.locator("#assign-to")).to_have_value(str(bob.pk))
        expect(b.locator('[data-shortcut-action="assign-me"]')).to_be_disabled()

        a.select_option("#assign-team", str(data["sales"].pk))
        expect(a.locator(".flash")).to_contain_text("Assignment saved.")
        expect(a.locator("#assign-team")).to_have_value(str(data["sales"].pk))
        expect(b.locator("#assign-team")).to_have_value(str(data["sales"].pk))

        # Bob starts typing a label; Alice's label arrives meanwhile: Bob's text is kept, the bar
        # catches up once he leaves the field.
        b.fill("#label-add", "urgent")
        b.focus("#label-add")
        a.fill("#label-add", "VIP")
        a.click("form.labels-form button[type=submit]:not(.remove)")
        expect(a.locator('[data-label="vip"]')).to_have_count(1)
        b.wait_for_timeout(1500)
        expect(b.locator("#label-add")).to_have_value("urgent")
        b.locator("#label-add").blur()  # focus leaves the field
        expect(b.locator('[data-label="vip"]')).to_have_count(1)

        a.click('[data-shortcut-action="resolve"]')
        expect(a.locator("[data-thread-status]")).to_have_text("Resolved")
        expect(b.locator("[data-thread-status]")).to_have_text("Resolved")
        expect(b.locator('[data-shortcut-action="reopen"]')).to_be_visible()
        # The swapped-in controls work: Bob reopens from the refreshed head.
        b.click('[data-shortcut-action="reopen"]')
        expect(b.locator("[data-thread-status]")).to_have_text("Open")
        expect(a.locator("[data-thread-status]")).to_have_text("Open")
        assert violations == []
    finally:
        a_ctx.close()
        b_ctx.close()
