"""The Content-Security-Policy in a real browser: the console (sign-in, inbox with its live websocket)
and the webchat demo page (its inline style, the widget's shadow-root style) work under the policy
with no violation reported."""

from __future__ import annotations

from typing import Any

import pytest

from engagement.models import Role
from tests import factories
from tests.webchat.conftest import webchat_channel_create

from .conftest import AsgiServer, chromium_browser

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WAIT_MS = 20_000
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def test_console_and_webchat_demo_work_under_the_csp(asgi_server: AsgiServer) -> None:
    workspace = factories.workspace_create(name="Demo", slug="demo")
    agent_user = factories.member(workspace, Role.AGENT)
    webchat_channel_create(workspace, origins=[asgi_server.url])

    with chromium_browser() as chromium:
        _scenario(chromium, asgi_server, agent_user)


def _scenario(chromium: Any, server: AsgiServer, agent_user: Any) -> None:
    from playwright.sync_api import expect

    context = chromium.new_context()
    context.add_init_script(RECORD_VIOLATIONS)
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)

        response = page.goto(f"{server.url}/webchat/demo/")
        assert response is not None
        assert "nonce-" in response.headers["content-security-policy"]
        # The demo page's own inline style applies.
        assert page.locator("body").evaluate("e => getComputedStyle(e).maxWidth") != "none"
        # The widget's shadow-root style applies (it carries the nonce it copied from its tag).
        launcher = page.locator("#ec-launcher")
        expect(launcher).to_be_visible()
        assert launcher.evaluate("e => getComputedStyle(e).position") == "fixed"
        launcher.click()
        expect(page.locator("#ec-input")).to_be_visible()
        assert page.evaluate("window.__cspViolations") == []

        page.goto(f"{server.url}/login/")
        page.fill("input[name=username]", agent_user.username)
        page.fill("input[name=password]", "pw-for-tests-123")
        page.click("button[type=submit]")
        expect(page.locator("#live-region")).to_be_visible()
        page.wait_for_timeout(500)  # console.js has run and opened its websocket
        assert page.evaluate("window.__cspViolations") == []
    finally:
        context.close()
