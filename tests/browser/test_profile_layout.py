"""The customer profile in Chromium: the consent table stays inside its panel at 1280 px and 390 px (it
overflowed the 340 px side panel at 1280 px), the disabled Call button says why in visible text, and the
console has a favicon."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from customers.consent import consent_record
from customers.models import ConsentPurpose, ConsentSource, ConsentStatus
from customers.services import Identifier
from engagement.models import Role
from engagement.services.timeline import interaction_record_inbound
from tests import factories

from .conftest import AsgiServer, chromium_browser
from .test_console import WAIT_MS, _login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Every cell of the consent table and the table itself, against the panel's content box (inside its
# border and padding), in CSS pixels; and whether the table's scroll wrapper hides any of it.
CONSENT_GEOMETRY = """() => {
  const table = document.querySelector('table.consent');
  const panel = table.closest('section.card');
  const r = panel.getBoundingClientRect(), cs = getComputedStyle(panel);
  const px = (v) => parseFloat(v) || 0;
  const box = {
    left: r.left + px(cs.borderLeftWidth) + px(cs.paddingLeft),
    right: r.right - px(cs.borderRightWidth) - px(cs.paddingRight),
  };
  const outside = [table, ...table.querySelectorAll('th, td')]
    .map((e) => [e.tagName + ' ' + e.textContent.trim(), e.getBoundingClientRect()])
    .filter(([, b]) => b.left < box.left - 0.5 || b.right > box.right + 0.5)
    .map(([name, b]) => `${name}: ${b.left.toFixed(1)}..${b.right.toFixed(1)}`);
  const wrapper = table.parentElement;
  return {box, outside, hidden: wrapper.scrollWidth - wrapper.clientWidth};
}"""


def _seed() -> dict[str, Any]:
    workspace = factories.workspace_create(name="Layout Inc")
    agent = factories.member(workspace, Role.AGENT)  # no phone on the membership
    sms = factories.channel_create(workspace, "sms", name="Main SMS line")
    factories.channel_create(workspace, "voice", name="Voice line")
    customer = factories.customer_create(
        workspace, ("phone", "+14155550188"), ("email", "lin@example.com"), name="Lin Layout"
    )
    interaction_record_inbound(
        channel=sms,
        sender=Identifier("phone", "+14155550188"),
        body="Hello",
        provider_message_id="SMLAYOUT1",
        occurred_at=timezone.now(),
    )
    consent_record(
        customer=customer, channel="sms", status=ConsentStatus.OPTED_OUT, source=ConsentSource.SMS_KEYWORD
    )
    consent_record(
        customer=customer,
        channel="email",
        purpose=ConsentPurpose.TRANSACTIONAL,
        status=ConsentStatus.OPTED_IN,
        source=ConsentSource.AGENT,
    )
    return {"agent": agent, "customer": customer}


def test_the_consent_table_stays_within_its_panel(asgi_server: AsgiServer) -> None:
    from playwright.sync_api import expect

    data = _seed()
    with chromium_browser() as chromium:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        try:
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            _login(page, asgi_server, data["agent"].username)
            expect(page.locator("nav.sidenav")).to_be_visible()
            for width in (1280, 390):
                page.set_viewport_size({"width": width, "height": 900})
                page.goto(f"{asgi_server.url}/customers/{data['customer'].pk}/")
                table = page.locator("table.consent")
                expect(table).to_contain_text("Transactional")
                expect(table.locator("tr", has_text="SMS")).to_contain_text("Opted out")
                geometry = page.evaluate(CONSENT_GEOMETRY)
                assert geometry["outside"] == [], (width, geometry)
                assert geometry["hidden"] <= 0, (width, geometry)  # nothing to scroll to either
                table_box = table.bounding_box()
                panel_box = page.locator("section.card", has=table).bounding_box()
                assert table_box is not None
                assert panel_box is not None
                assert panel_box["x"] <= table_box["x"]
                assert table_box["x"] + table_box["width"] <= geometry["box"]["right"] + 0.5, width
                assert table_box["x"] + table_box["width"] <= panel_box["x"] + panel_box["width"]
        finally:
            context.close()


def test_the_disabled_call_button_says_why_and_the_console_has_a_favicon(asgi_server: AsgiServer) -> None:
    from playwright.sync_api import expect

    data = _seed()
    with chromium_browser() as chromium:
        context = chromium.new_context(viewport={"width": 390, "height": 844})
        try:
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            _login(page, asgi_server, data["agent"].username)
            expect(page.locator("nav.sidenav")).to_be_visible()
            page.goto(f"{asgi_server.url}/customers/{data['customer'].pk}/thread/")
            call = page.locator("form.click-to-call button")
            expect(call).to_be_disabled()
            reason = page.locator("#call-disabled-reason")
            expect(reason).to_be_visible()
            expect(reason).to_have_text(
                "Calls ring your phone first: an admin adds your number to your membership."
            )
            expect(call).to_have_attribute("aria-describedby", "call-disabled-reason")
            box = reason.bounding_box()
            assert box is not None
            assert box["x"] + box["width"] <= 390
            href = page.locator("link[rel=icon]").get_attribute("href")
            assert href is not None
            response = page.request.get(f"{asgi_server.url}{href}")
            assert response.status == 200
            assert response.headers["content-type"].startswith("image/svg+xml")
        finally:
            context.close()
