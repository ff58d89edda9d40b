"""Two agents dividing the inbox, in Chromium: Alice assigns Grace's thread to Bob (Bob's inbox counts
move live), writes a note mentioning him (Bob's console shows the mention live), Bob opens it from the
notice, inserts a canned response with "/", answers by SMS although Grace last wrote by email, resolves
with the keyboard; the "?" overlay lists the shortcuts; the inbox and the thread fit 390 px. Then CSAT:
the resolution sends the survey on the conversation's channel (on the thread's timeline), Grace texts
"5" back (an inbound SMS through ``interaction_record_inbound``, the ingestion the SMS webhook uses),
and the score shows on the timeline and in the reports page's CSAT figures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from customers.models import Customer
from customers.services import Identifier
from engagement.models import Conversation, ConversationResolution, CsatResponse, Interaction, Note, Role
from engagement.realtime import members_online
from engagement.services import teamwork
from engagement.services.csat import csat_settings_set
from engagement.services.timeline import interaction_record_inbound
from tests import factories
from tests.conftest import wait_for

from .conftest import AsgiServer, chromium_browser
from .test_console import _fits, _login, _Thread

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WAIT_MS = 20_000


def _seed() -> dict[str, Any]:
    workspace = factories.workspace_create(name="Shop Inc")
    alice = factories.member(workspace, Role.AGENT)
    bob = factories.member(workspace, Role.AGENT)
    bob.first_name, bob.last_name = "Bob", "Builder"
    bob.save()
    sms = factories.channel_create(workspace, "sms", name="Main SMS line")
    email = factories.channel_create(workspace, "email", name="Support email", address="support@shop.example")
    teamwork.team_save(
        workspace=workspace,
        data=teamwork.TeamInput(
            name="Support", member_ids=[alice.pk, bob.pk], channel_ids=[sms.pk, email.pk]
        ),
    )
    teamwork.canned_response_save(
        workspace=workspace,
        shortcut="thanks",
        title="Thanks",
        body="Thanks {{ customer.first_name }}, it ships today.",
    )
    csat_settings_set(workspace=workspace, enabled=True)
    now = timezone.now()
    grace: Customer = factories.customer_create(
        workspace, ("phone", "+14155550101"), ("email", "grace@example.com"), name="Grace Hopper"
    )
    interaction_record_inbound(
        channel=sms,
        sender=Identifier("phone", "+14155550101"),
        body="Texting about order 1001",
        provider_message_id="SMTEAM1",
        occurred_at=now - timedelta(minutes=30),
    )
    interaction_record_inbound(
        channel=email,
        sender=Identifier("email", "grace@example.com"),
        body="Emailing about order 1001 too",
        provider_message_id=f"{email.pk}:team-1@example.com",
        occurred_at=now - timedelta(minutes=10),
        subject="Order 1001",
        thread=_Thread("team-1@example.com", email.address),
    )
    return {"workspace": workspace, "alice": alice, "bob": bob, "sms": sms, "email": email, "grace": grace}


def test_two_agents_divide_the_inbox(asgi_server: AsgiServer, celery_worker_for_server: object) -> None:
    data = _seed()
    with chromium_browser() as chromium:
        _scenario(chromium, asgi_server, data)
        _assert_divided(data)
        _csat(chromium, asgi_server, data)


def _assert_divided(data: dict[str, Any]) -> None:
    grace, bob = data["grace"], data["bob"]
    reply = Interaction.objects.exclude(metadata__has_key="csat").get(direction="outbound", customer=grace)
    assert reply.channel_id == data["sms"].pk  # she last wrote by email; Bob answered by SMS
    assert reply.author_id == bob.pk
    assert reply.body == "Thanks Grace, it ships today."
    assert set(Conversation.objects.filter(customer=grace).values_list("status", flat=True)) == {"resolved"}
    assert set(Conversation.objects.filter(customer=grace).values_list("assignee_id", flat=True)) == {bob.pk}
    assert list(Note.objects.get().mentions.all()) == [bob]


def _scenario(chromium: Any, server: AsgiServer, data: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)  # a loaded machine: live updates can take more than 5 s
    grace, alice, bob = data["grace"], data["alice"], data["bob"]
    a_ctx = chromium.new_context(viewport={"width": 1280, "height": 900})
    b_ctx = chromium.new_context(viewport={"width": 390, "height": 844})
    try:
        b = b_ctx.new_page()
        b.set_default_timeout(WAIT_MS)
        _login(b, server, bob.username)
        expect(b.locator('[data-view-count="mine"]')).to_have_text("0")
        expect(b.locator('[data-view-count="unassigned"]')).to_have_text("1")
        wait_for(lambda: bob.pk in members_online(workspace_id=data["workspace"].pk), 20)
        assert _fits(b)

        a = a_ctx.new_page()
        a.set_default_timeout(WAIT_MS)
        _login(a, server, alice.username)
        row = a.locator(f'tr[data-customer-id="{grace.pk}"]')
        expect(row).to_have_count(1)
        row.locator("a[data-row-link]").click()
        a.wait_for_selector("html[data-shortcuts]", state="attached")  # console.js ran (deferred, before)
        a.select_option("#assign-to", str(bob.pk))  # submits on change
        expect(a.locator(".flash")).to_contain_text("Assignment saved.")
        # Bob's inbox follows live: the thread is his now.
        expect(b.locator('[data-view-count="mine"]')).to_have_text("1")
        expect(b.locator(f'tr[data-customer-id="{grace.pk}"] td.assignee')).to_contain_text("Bob Builder")

        a.fill("form.note-form textarea", f"@{bob.username} she prefers texts, can you answer by SMS?")
        a.click("form.note-form button[type=submit]")
        expect(a.locator(".timeline .item.note")).to_contain_text("she prefers texts")

        toast = b.locator(f'[data-mention-toast="{grace.pk}"]')
        expect(toast).to_be_visible()
        expect(b.locator('[data-view-count="mentions"]')).to_have_text("1")
        toast.locator("a").click()
        expect(b.locator(".timeline .item.note")).to_contain_text("she prefers texts")
        assert _fits(b)

        b.wait_for_selector("html[data-shortcuts]", state="attached")
        b.keyboard.press("?")
        expect(b.locator("#shortcuts-overlay")).to_be_visible()
        expect(b.locator("#shortcuts-overlay")).to_contain_text("Resolve (or reopen) the thread")
        b.keyboard.press("Escape")
        expect(b.locator("#shortcuts-overlay")).to_be_hidden()

        picker = b.locator("select[data-channel-picker]")
        expect(picker).to_have_value(str(data["email"].pk))
        picker.select_option(str(data["sms"].pk))
        b.locator("body").click(position={"x": 5, "y": 5})
        b.keyboard.press("r")
        expect(b.locator("form.reply textarea[name=body]")).to_be_focused()
        b.keyboard.type("/tha")
        menu = b.locator("[data-canned-menu]")
        expect(menu.locator('li[data-shortcut="thanks"]')).to_be_visible()
        b.keyboard.press("Enter")
        expect(b.locator("form.reply textarea[name=body]")).to_have_value("Thanks Grace, it ships today.")
        b.click("form.reply button[type=submit]")
        expect(b.locator(".flash")).to_contain_text("Reply queued.")
        sent = b.locator(".timeline .item.outbound", has_text="Thanks Grace, it ships today.")
        expect(sent.locator(".channel-chip")).to_have_text("SMS")

        b.wait_for_selector("html[data-shortcuts]", state="attached")
        b.keyboard.press("Escape")  # out of any field: the shortcuts are for the page
        b.keyboard.press("e")
        expect(b.locator(".flash")).to_contain_text("Resolved.")
        expect(b.locator('[data-shortcut-action="reopen"]')).to_be_visible()
        assert _fits(b)
        # Alice's open inbox no longer lists the resolved thread.
        a.goto(f"{server.url}/")
        expect(a.locator(f'tr[data-customer-id="{grace.pk}"]')).to_have_count(0)
    finally:
        b_ctx.close()
        a_ctx.close()


def _csat(chromium: Any, server: AsgiServer, data: dict[str, Any]) -> None:
    """The survey went out with the resolution, on the resolved conversation's channel; Grace's "5" by
    SMS is taken as the answer (by the ``message.received`` listener's task in the Celery worker)."""
    from playwright.sync_api import expect

    grace, bob, sms = data["grace"], data["bob"], data["sms"]
    sms_resolution = ConversationResolution.objects.get(channel=sms)
    survey = sms_resolution.csat_interaction
    assert survey is not None
    assert (survey.channel_id, survey.direction) == (sms.pk, "outbound")
    assert "Reply 1-5" in survey.body

    ctx = chromium.new_context(viewport={"width": 390, "height": 844})
    try:
        b = ctx.new_page()
        b.set_default_timeout(WAIT_MS)
        _login(b, server, bob.username)
        b.goto(f"{server.url}/customers/{grace.pk}/thread/")
        item = b.locator(".timeline .item.outbound", has_text="Reply 1-5")
        expect(item.locator(".channel-chip").first).to_have_text("SMS")
        expect(item.locator(".csat-badge").first).to_have_text("CSAT survey")

        interaction_record_inbound(
            channel=sms,
            sender=Identifier("phone", "+14155550101"),
            body="5",
            provider_message_id="SMTEAMCSAT",
            occurred_at=timezone.now(),
        )
        wait_for(lambda: CsatResponse.objects.filter(resolution=sms_resolution).exists(), 30)
        answer = CsatResponse.objects.get(resolution=sms_resolution)
        assert (answer.score, answer.source) == (5, "sms")
        # The digit opened no work: every conversation of Grace's is resolved again.
        wait_for(
            lambda: (
                set(Conversation.objects.filter(customer=grace).values_list("status", flat=True))
                == {"resolved"}
            ),
            20,
        )
        b.reload()
        expect(b.locator('.timeline [data-csat-score="5"]').first).to_have_text("CSAT 5/5")
        expect(
            b.locator(".timeline .item.outbound", has_text="Reply 1-5").locator(".csat-badge")
        ).to_have_text("CSAT 5/5")

        b.goto(f"{server.url}/reports/?interval=day")
        csat = b.locator('[data-report="csat"]')
        expect(csat.locator(".stat", has_text="responses").locator("strong")).to_have_text("1")
        expect(csat.locator(".stat", has_text="satisfied").locator("strong")).to_have_text("100.0 %")
        assert _fits(b)
    finally:
        ctx.close()
