"""A marketer's campaign in Chromium, on real parts (uvicorn, a Celery worker, the outbox relay, a beat
stand-in sending the scheduler tick): sign in (landing on campaigns), build a segment and see its count,
write an SMS + email campaign with personalization (the SMS segment count and encoding follow the
typing), preview it as a customer, send a test, schedule it at a wall-clock time in each customer's own
zone, launch it and watch the stats move — with no Content-Security-Policy violation on the way and
the page usable at 390 px."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from config.celery import app as celery_app
from customers.consent import consent_record
from engagement.models import Campaign, CampaignRecipient, CampaignSettings, Interaction, Role
from tests import factories

from .conftest import AsgiServer, chromium_browser
from .test_csp import RECORD_VIOLATIONS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

WAIT_MS = 30_000


@pytest.fixture
def beat() -> Iterator[None]:
    """Stands in for Celery beat: the campaign tick every half second (expiring as beat's entry does)."""
    stopped = threading.Event()

    def run() -> None:
        while not stopped.is_set():
            celery_app.send_task("engagement.tasks.campaigns_tick", expires=3)
            stopped.wait(0.5)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stopped.set()
    thread.join(5)


def _seed() -> dict[str, Any]:
    workspace = factories.workspace_create(name="Shop Inc")
    CampaignSettings.objects.create(workspace=workspace, quiet_hours_enabled=False)
    marketer = factories.member(workspace, Role.MARKETER)
    sms = factories.channel_create(workspace, "sms", name="Promo line")
    email = factories.channel_create(workspace, "email", name="Newsletter", address="news@shop.example")
    people = [
        ("Ada Lovelace", "+14155550101", "ada@example.com", "", ["vip"]),
        ("Grace Hopper", "+14155550102", "grace@example.com", "Europe/Oslo", ["vip"]),
        ("Alan Turing", "+14155550103", "alan@example.com", "America/Los_Angeles", ["vip"]),
        ("Edsger Dijkstra", "+14155550104", "edsger@example.com", "", []),
    ]
    customers = {}
    for name, phone, address, zone, tags in people:
        customer = factories.customer_create(
            workspace, ("phone", phone), ("email", address), name=name, tags=tags, timezone=zone
        )
        for channel in ("sms", "email"):
            consent_record(
                customer=customer, channel=channel, purpose="marketing", status="opted_in", source="api"
            )
        customers[name] = customer
    return {"workspace": workspace, "marketer": marketer, "customers": customers, "sms": sms, "email": email}


def test_marketer_builds_a_segment_writes_previews_tests_schedules_launches_and_watches_stats(
    asgi_server: AsgiServer, celery_worker_for_server: Any, beat: None
) -> None:
    seed = _seed()
    ada = seed["customers"]["Ada Lovelace"]
    # Ten minutes ago on the fallback zone's (UTC) clock: already past for Ada (no zone: the fallback) and
    # Grace (Oslo is ahead), so "send at once" sends to them now; Alan's Los Angeles clock reaches that
    # wall time hours from now, so his row waits for it.
    wall = timezone.now() - dt.timedelta(minutes=10)
    from playwright.sync_api import expect

    with chromium_browser() as chromium:
        context = chromium.new_context()
        context.add_init_script(RECORD_VIOLATIONS)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("dialog", lambda dialog: dialog.accept())  # "Launch … to 3 customers?"

        page.goto(f"{asgi_server.url}/login/")
        page.fill("input[name=username]", seed["marketer"].username)
        page.fill("input[name=password]", "pw-for-tests-123")
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Campaigns")  # the marketer's home

        # A segment: everyone tagged vip; the live count follows the rule.
        page.click("nav >> text=Segments")
        page.click("text=New segment")
        count = page.locator("#live-count [data-count]")
        expect(count).to_have_text("4")
        page.fill("#segment-name", "VIPs")
        page.click("text=+ condition")
        condition = page.locator(".condition").first
        condition.locator("select[aria-label=field]").select_option("tag")
        condition.locator("input[aria-label=tag]").fill("vip")
        expect(count).to_have_text("3")
        expect(page.locator("#live-count [data-reach]")).to_contain_text("sms: 3 reachable")
        page.click("#segment-form button[type=submit]")
        expect(page.locator("h1")).to_have_text("VIPs")

        # The campaign: SMS first, email as the fallback, personalized.
        page.click("nav >> text=Campaigns")
        page.click("text=New campaign")
        page.fill("#campaign-name", "VIP spring sale")
        page.select_option("#campaign-segment", label="VIPs")
        expect(page.locator("[data-audience-count]")).to_have_text("3")
        expect(page.locator("[data-reach-kind=email]")).to_have_text("email: 3 reachable")
        page.select_option("#campaign-channel-0", value=str(seed["sms"].pk))
        page.select_option("#campaign-channel-1", value=str(seed["email"].pk))
        sms = page.locator("#content-sms_body")
        counter = page.locator("[data-sms-counter-of=content-sms_body]")
        sms.fill("Hi {{ first_name | default('there') }}, VIP sale: 20% off today")
        expect(counter).to_contain_text("1 segment")
        expect(counter).to_contain_text("GSM-7")
        sms.press_sequentially(" ☀")
        expect(counter).to_contain_text("UCS-2")
        page.fill("#content-email_subject", "{{ first_name | default('Friend') }}, your VIP sale")
        page.fill("#content-email_html", "<p>Hello {{ first_name | default('there') }}, 20% off today.</p>")
        # At a wall-clock time in each customer's zone.
        page.check("input[name=schedule_kind][value=local_time]")
        expect(page.locator("#campaign-local-time")).to_be_visible()
        expect(page.locator("#campaign-send-at")).to_be_hidden()
        page.fill("#campaign-local-date", wall.date().isoformat())
        page.fill("#campaign-local-time", wall.strftime("%H:%M"))
        page.fill("#campaign-fallback-zone", "UTC")
        page.select_option("#campaign-late-policy", "send_now")
        page.click("#campaign-form button[type=submit]")
        expect(page.locator("h1")).to_have_text("VIP spring sale")
        expect(page.locator("[data-lint-summary]")).to_have_count(0)  # nothing unresolved

        # Preview as a customer of the segment.
        page.select_option("#preview-customer", label="Ada Lovelace")
        page.click("#preview-form button[type=submit]")
        preview = page.locator("#campaign-preview-result")
        expect(preview.locator("[data-preview-kind=sms] [data-preview-body]")).to_contain_text(
            "Hi Ada, VIP sale: 20% off today ☀"
        )
        expect(preview.locator("[data-preview-subject]")).to_have_text("Ada, your VIP sale")

        # A test send through the real path.
        page.fill("#test-addresses", "+14155550999")
        page.select_option("#test-as", label="Ada Lovelace")
        page.click("#test-form button[type=submit]")
        expect(page.locator(".flash")).to_contain_text("Test sent to +14155550999.")
        test_message = Interaction.objects.get(metadata__test=True)
        assert test_message.body.startswith("Hi Ada, VIP sale")

        # Launch, then watch the stats move (htmx polls the progress; Chart.js redraws).
        page.click("[data-action=launch]")
        expect(page.locator(".flash")).to_contain_text("Launched.")
        expect(page.locator("[data-campaign-state]")).to_have_text("Running")
        expect(page.locator("[data-stat=targeted]")).to_have_text("3")
        expect(page.locator("[data-stat=sent]")).to_have_text("2")
        expect(page.locator("[data-stat=delivered]")).to_have_text("2")
        expect(page.locator("[data-stat=pending]")).to_have_text("1")  # Alan: his local time is later
        expect(page.locator("#chart-states")).to_have_attribute("data-chart-total", "2")
        assert page.evaluate("window.__cspViolations") == []

        campaign = Campaign.objects.get(name="VIP spring sale")
        rows = {r.customer_id: r for r in CampaignRecipient.objects.filter(campaign=campaign)}
        assert rows[ada.pk].state == "sent"
        alan = rows[seed["customers"]["Alan Turing"].pk]
        assert alan.state == "pending"
        assert alan.due_at > timezone.now() + dt.timedelta(hours=6)
        sent = Interaction.objects.filter(metadata__campaign_id=campaign.pk).exclude(
            metadata__contains={"test": True}
        )
        assert sent.count() == 2

        # Recipients with their state, and the page at phone width.
        page.set_viewport_size({"width": 390, "height": 800})
        page.click("text=Recipients with their state and reasons")
        expect(page.locator("tr[data-state=sent]")).to_have_count(2)
        expect(page.locator("tr[data-state=pending]")).to_have_count(1)
        page.go_back()
        expect(page.locator("[data-stat=sent]")).to_have_text("2")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.evaluate("window.__cspViolations") == []
        context.close()
