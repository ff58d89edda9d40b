"""The agent console in Chromium: one inbox row per customer who wrote on SMS and email, their thread,
a reply on another channel than they used through the picker, a blocked channel's reason shown before
sending; the customers page search → profile → edit a tag, laid out within 1280 px and 390 px; and the
webchat demo page served by the platform itself (same origin) reaching the console live."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from customers.consent import consent_record
from customers.models import ConsentSource, ConsentStatus, Customer
from customers.services import Identifier
from engagement.models import Channel, Interaction, Role, Workspace
from engagement.services.timeline import interaction_record_inbound
from tests import factories
from tests.conftest import wait_for

from .conftest import AsgiServer, chromium_browser

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WAIT_MS = 20_000


class _Thread:
    in_reply_to = ""
    references: tuple[str, ...] = ()

    def __init__(self, message_id: str, to: str) -> None:
        self.message_id = message_id
        self.recipients = (to,)


def _seed() -> dict[str, Any]:
    workspace: Workspace = factories.workspace_create(name="Shop Inc")
    agent = factories.member(workspace, Role.AGENT)
    sms = factories.channel_create(workspace, "sms", name="Main SMS line")
    email = factories.channel_create(workspace, "email", name="Support email", address="support@shop.example")
    now = timezone.now()
    grace: Customer = factories.customer_create(
        workspace, ("phone", "+14155550101"), ("email", "grace@example.com"), name="Grace Hopper"
    )
    interaction_record_inbound(
        channel=sms,
        sender=Identifier("phone", "+14155550101"),
        body="Texting about order 1001",
        provider_message_id="SMBROWSER1",
        occurred_at=now - timedelta(minutes=30),
    )
    interaction_record_inbound(
        channel=email,
        sender=Identifier("email", "grace@example.com"),
        body="Emailing about order 1001 too",
        provider_message_id=f"{email.pk}:browser-1@example.com",
        occurred_at=now - timedelta(minutes=10),
        subject="Order 1001",
        thread=_Thread("browser-1@example.com", email.address),
    )
    alan: Customer = factories.customer_create(
        workspace, ("phone", "+14155550102"), ("email", "alan@example.com"), name="Alan Turing"
    )
    interaction_record_inbound(
        channel=sms,
        sender=Identifier("phone", "+14155550102"),
        body="Where is my parcel?",
        provider_message_id="SMBROWSER2",
        occurred_at=now - timedelta(minutes=20),
    )
    consent_record(
        customer=alan, channel="sms", status=ConsentStatus.OPTED_OUT, source=ConsentSource.SMS_KEYWORD
    )
    return {"agent": agent, "sms": sms, "email": email, "grace": grace, "alan": alan}


TEST_PASSWORD = "pw-for-tests-123"


def _login(page: Any, server: AsgiServer, username: str, password: str = TEST_PASSWORD) -> None:
    page.goto(f"{server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def _fits(page: Any) -> bool:
    wide = page.evaluate(
        """() => Array.from(document.querySelectorAll('body *'))
             .filter(e => !e.closest('.table-scroll, .timeline-scroll'))
             .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
             .slice(0, 5).map(e => e.tagName + '.' + e.className)"""
    )
    assert not wide, wide
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_agent_inbox_thread_reply_on_another_channel_and_customers_page(asgi_server: AsgiServer) -> None:
    data = _seed()
    with chromium_browser() as chromium:
        _scenario(chromium, asgi_server, data)
    sms: Channel = data["sms"]
    reply = Interaction.objects.get(direction="outbound", customer=data["grace"])
    assert reply.channel_id == sms.pk  # she last wrote by email; the agent picked SMS
    assert reply.author_id == data["agent"].pk
    data["grace"].refresh_from_db()
    assert data["grace"].tags == ["vip"]


def _scenario(chromium: Any, server: AsgiServer, data: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        _login(page, server, data["agent"].username)
        grace, alan = data["grace"], data["alan"]
        rows = page.locator(f'tr[data-customer-id="{grace.pk}"]')
        expect(rows).to_have_count(1)  # SMS and email: one row
        expect(rows).to_contain_text("Emailing about order 1001 too")
        expect(rows.locator(".unread-dot")).to_be_visible()
        expect(page.locator("#live-region tbody tr")).to_have_count(2)

        rows.locator("a").first.click()
        timeline = page.locator(".timeline")
        expect(timeline).to_contain_text("Texting about order 1001")
        expect(timeline).to_contain_text("Emailing about order 1001 too")
        picker = page.locator("select[data-channel-picker]")
        expect(picker).to_have_value(str(data["email"].pk))  # the channel she last wrote on
        picker.select_option(str(data["sms"].pk))
        page.fill("textarea[name=body]", "Your order left today")
        expect(page.locator("[data-sms-count]")).to_have_text("1 segment · 21/160 GSM-7")
        page.click("form.reply button[type=submit]")
        expect(page.locator(".flash")).to_contain_text("Reply queued.")
        sent = page.locator(".timeline .item.outbound", has_text="Your order left today")
        expect(sent.locator(".channel-chip")).to_have_text("SMS")

        # Alan texted STOP: SMS is listed but disabled, with the reason, before anything is written.
        page.goto(f"{server.url}/customers/{alan.pk}/thread/")
        sms_option = page.locator(f'select[data-channel-picker] option[value="{data["sms"].pk}"]')
        expect(sms_option).to_be_disabled()
        expect(page.locator(".blocked-reasons")).to_contain_text("the customer opted out of sms messages")
        expect(picker).to_have_value(str(data["email"].pk))

        # Customers page: search as you type (htmx) → profile → edit a tag.
        page.click("nav.sidenav >> text=Customers")
        page.fill("#customer-q", "grace@exa")
        results = page.locator("#customer-results tbody tr")
        expect(results).to_have_count(1)
        results.locator("a").click()
        expect(page.locator("h1")).to_have_text("Grace Hopper")
        assert _fits(page)
        page.click("details.edit summary")
        page.fill("#profile-panel input[name=tags]", "vip")
        page.click("#profile-panel button[type=submit]")
        expect(page.locator("#profile-panel .saved")).to_have_text("Saved.")
        expect(page.locator("#profile-panel [data-tags]")).to_contain_text("vip")
        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        assert _fits(page)
        conversation_id = Interaction.objects.filter(customer=grace).values_list(
            "conversation_id", flat=True
        )[0]
        for path in (f"/conversations/{conversation_id}/", "/", "/customers/"):
            page.goto(f"{server.url}{path}")
            assert _fits(page), path
    finally:
        context.close()


def test_the_webchat_demo_page_works_same_origin(
    asgi_server: AsgiServer, outbox_relay_for_server: object
) -> None:
    """/webchat/demo/ on the platform's own origin (not in allowed_origins: the server's port is
    random): the bubble shows and a visitor's message reaches the console live."""
    from engagement.services.demo import DEMO_PASSWORD, demo_workspace_seed

    seed = demo_workspace_seed()
    with chromium_browser() as chromium:
        from playwright.sync_api import expect

        agent_ctx = chromium.new_context()
        visitor_ctx = chromium.new_context()
        try:
            agent = agent_ctx.new_page()
            agent.set_default_timeout(WAIT_MS)
            _login(agent, asgi_server, "agent", DEMO_PASSWORD)
            expect(agent.locator("#live-region")).to_be_visible()
            visitor = visitor_ctx.new_page()
            visitor.set_default_timeout(WAIT_MS)
            visitor.goto(f"{asgi_server.url}/webchat/demo/")
            expect(visitor.locator("#ec-launcher")).to_be_visible()  # the config request was answered
            visitor.click("#ec-launcher")
            visitor.fill("#ec-input", "Hello from the demo page")
            visitor.press("#ec-input", "Enter")
            expect(
                visitor.locator(".msg.visitor:not(.pending)", has_text="Hello from the demo page")
            ).to_be_visible()
            expect(agent.locator("tr", has_text="Hello from the demo page")).to_be_visible()
        finally:
            visitor_ctx.close()
            agent_ctx.close()
    chat = wait_for(lambda: Interaction.objects.filter(body="Hello from the demo page").first(), 10)
    assert chat.workspace_id == seed.workspace.pk
