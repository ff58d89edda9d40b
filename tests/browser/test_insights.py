"""Search and reports in a real browser: an agent types a misspelt name in the header's box and the
dropdown offers the customer; a word of a message finds the message on the results page; the reports
page draws its Chart.js charts under the strict CSP and exports CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from customers.services import Identifier
from engagement.models import Conversation, Role
from engagement.services.conversation_actions import conversation_status_set
from engagement.services.timeline import interaction_record_inbound
from tests import factories

from .conftest import AsgiServer, chromium_browser

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WAIT_MS = 20_000


def _sign_in(page: Any, url: str, user: Any) -> None:
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("button[type=submit]")


def _seed() -> tuple[Any, Any]:
    workspace = factories.workspace_create(name="Shop Inc")
    agent = factories.member(workspace, Role.AGENT)
    channel = factories.channel_create(workspace, "sms")
    for n, (name, body) in enumerate(
        [
            ("Grace Hopper", "The parcel arrived damaged"),
            ("Alan Turing", "Can I change my delivery address?"),
            ("Ada Lovelace", "Thanks for the quick refund"),
        ]
    ):
        interaction, _ = interaction_record_inbound(
            channel=channel,
            sender=Identifier("phone", f"+1415555{n:04d}"),
            body=body,
            provider_message_id=f"SMBROWSER{n}",
            occurred_at=timezone.now() - timedelta(hours=n + 1),
            sender_name=name,
        )
    conversation = Conversation.objects.get(pk=interaction.conversation_id or 0)
    conversation_status_set(workspace=workspace, conversation=conversation, status="resolved")
    return workspace, agent


def test_search_finds_a_customer_by_a_fuzzy_name_and_a_message_by_a_word(asgi_server: AsgiServer) -> None:
    _, agent = _seed()
    from playwright.sync_api import expect

    with chromium_browser() as chromium:
        page = chromium.new_context().new_page()
        page.set_default_timeout(WAIT_MS)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        _sign_in(page, asgi_server.url, agent)
        box = page.locator("#console-search")
        box.fill("grce hoper")
        suggestion = page.locator("#search-dropdown [data-search-customer]")
        expect(suggestion).to_have_count(1)
        expect(suggestion).to_contain_text("Grace Hopper")
        suggestion.locator("a").click()
        expect(page.locator("h1")).to_contain_text("Grace Hopper")

        box = page.locator("#console-search")
        box.fill("delivery")
        box.press("Enter")
        expect(page.locator("h1")).to_have_text("Search")
        hit = page.locator("[data-search-message]")
        expect(hit).to_have_count(1)
        expect(hit.locator("mark")).to_have_text("delivery")
        expect(hit).to_contain_text("Alan Turing")
        assert not [e for e in errors if "Content Security Policy" in e], errors


def test_reports_page_draws_charts_and_exports_csv(asgi_server: AsgiServer) -> None:
    _, agent = _seed()
    from playwright.sync_api import expect

    with chromium_browser() as chromium:
        context = chromium.new_context(accept_downloads=True, viewport={"width": 390, "height": 844})
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        missing: list[str] = []
        page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
        _sign_in(page, asgi_server.url, agent)
        page.goto(f"{asgi_server.url}/reports/?interval=day&channel=sms")
        expect(page.locator("body[data-charts-ready='1']")).to_have_count(1)
        for name in ("volume", "first_response", "resolution", "agent_load", "csat"):
            expect(page.locator(f"#chart-{name}[data-chart-ready='1']")).to_have_count(1)
        # Chart.js drew on the canvas (a blank canvas has no pixels set).
        painted = page.evaluate(
            """() => { const c = document.getElementById('chart-volume');
                       const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                       for (let i = 3; i < d.length; i += 4) { if (d[i] !== 0) return true; }
                       return false; }"""
        )
        assert painted
        # Usable at 390 px: nothing wider than the window.
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390 + 1

        with page.expect_download() as download_info:
            page.click("[data-export='volume']")
        download = download_info.value
        assert download.suggested_filename.startswith("volume-")
        rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
        assert rows[0] == ["period", "channel", "direction", "count"]
        assert sum(int(r[3]) for r in rows[1:] if r[2] == "inbound") == 3
        assert [u for u in missing if not u.endswith("/favicon.ico")] == []
        assert not [e for e in errors if "404" not in e], errors
        context.close()
