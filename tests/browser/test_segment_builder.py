"""The segment builder in a real browser: a marketer signs in (landing on campaigns), opens segments,
builds a rule with rows (a tag, then NOT), watches the live count and the reach per channel follow
each edit, saves, and the stored rule tree is exactly what the rows said; reopening the segment draws
the same rows."""

from __future__ import annotations

from typing import Any

import pytest

from customers.consent import consent_record
from engagement.models import Role, Segment
from tests import factories

from .conftest import AsgiServer, chromium_browser

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WAIT_MS = 20_000


def test_marketer_builds_a_segment_with_a_live_count(asgi_server: AsgiServer) -> None:
    workspace = factories.workspace_create(name="Shop Inc")
    marketer = factories.member(workspace, Role.MARKETER)
    for n in range(5):
        customer = factories.customer_create(
            workspace, ("phone", f"+1415555{n:04d}"), tags=["vip"] if n < 2 else []
        )
        if n in (0, 2, 3):
            consent_record(
                customer=customer, channel="sms", purpose="marketing", status="opted_in", source="api"
            )

    from playwright.sync_api import expect

    with chromium_browser() as chromium:
        page = chromium.new_context().new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{asgi_server.url}/login/")
        page.fill("input[name=username]", marketer.username)
        page.fill("input[name=password]", "pw-for-tests-123")
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Campaigns")  # a marketer's home
        page.click("nav >> text=Segments")
        page.click("text=New segment")

        count = page.locator("#live-count [data-count]")
        reach = page.locator("#live-count [data-reach]")
        expect(count).to_have_text("5")  # no conditions: everyone
        expect(reach).to_contain_text("sms: 3 reachable")

        page.fill("#segment-name", "Not VIPs")
        page.click("text=+ condition")
        condition = page.locator(".condition").first
        condition.locator("select[aria-label=field]").select_option("tag")
        condition.locator("input[aria-label=tag]").fill("vip")
        expect(count).to_have_text("2")
        expect(reach).to_contain_text("sms: 1 reachable")
        condition.locator(".not input[type=checkbox]").check()
        expect(count).to_have_text("3")
        expect(reach).to_contain_text("sms: 2 reachable")
        page.select_option("#reach-purpose", "transactional")
        expect(reach).to_contain_text("sms: 3 reachable")

        page.click("#segment-form button[type=submit]")
        expect(page.locator("h1")).to_have_text("Not VIPs")
        segment = Segment.objects.get(workspace=workspace, name="Not VIPs")
        assert segment.rules == {
            "type": "and",
            "rules": [{"type": "not", "rule": {"type": "tag", "value": "vip"}}],
        }
        # Reopened: the same rows, and the JSON they write back is unchanged.
        condition = page.locator(".condition").first
        expect(condition.locator("input[aria-label=tag]")).to_have_value("vip")
        expect(condition.locator(".not input[type=checkbox]")).to_be_checked()
        expect(count).to_have_text("3")
        written: Any = page.evaluate("JSON.parse(document.getElementById('rules-json').value)")
        assert written == segment.rules
