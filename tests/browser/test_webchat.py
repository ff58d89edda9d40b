"""The webchat loop in a real browser: a host website embeds the widget, a visitor writes, an agent sees it
live in the console and replies, the visitor sees the reply live and the whole history after a reload;
a verified visitor's chat lands on the timeline of the customer who already has SMS and email history."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from channels_inbound.webchat.services import identity_hash_compute
from engagement.models import Interaction, Role
from tests import factories
from tests.conftest import wait_for
from tests.webchat.conftest import SECRET, known_customer, webchat_channel_create

from .conftest import AsgiServer, HostSite, chromium_browser

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WAIT_MS = 20_000  # generous: CI and a busy 2-core machine are slow, a live update is not


def host_page(server: AsgiServer, token: str, *, settings: dict[str, Any] | None = None) -> str:
    """A customer's page: hostile global CSS and one script tag."""
    prelude = f"<script>window.EngagementChat = {json.dumps(settings)};</script>" if settings else ""
    return (
        "<!doctype html><html><head><title>Shop</title>"
        "<style>* { color: rgb(255, 0, 0) !important; font-size: 40px !important; }</style></head>"
        f"<body><h1>The shop</h1>{prelude}"
        f'<script src="{server.url}/webchat/widget.js" data-token="{token}" async></script></body></html>'
    )


def test_visitor_and_agent_chat_live_and_history_survives_a_reload(
    asgi_server: AsgiServer, celery_worker_for_server: Any, host_site: HostSite
) -> None:

    workspace = factories.workspace_create(name="Shop Inc")
    agent_user = factories.member(workspace, Role.AGENT)
    agent_user.first_name, agent_user.last_name = "Alex", "Agent"
    agent_user.save()
    channel = webchat_channel_create(workspace, origins=[host_site.origin])
    ada = known_customer(workspace, phone="+14155550123", email="ada@example.com", sms_body="SMS from Ada")
    host_site.pages["/shop.html"] = host_page(asgi_server, channel.webhook_token)
    host_site.pages["/account.html"] = host_page(
        asgi_server,
        channel.webhook_token,
        settings={
            "user": {
                "id": "ada-42",
                "email": "ada@example.com",
                "name": "Ada Lovelace",
                "hash": identity_hash_compute(secret=SECRET, user_id="ada-42", email="ada@example.com"),
            }
        },
    )

    with chromium_browser() as chromium:
        _scenario(chromium, asgi_server, host_site, agent_user, channel.webhook_token, ada.pk)


def _scenario(
    chromium: Any, asgi_server: AsgiServer, host_site: HostSite, agent_user: Any, token: str, ada_pk: int
) -> None:
    from playwright.sync_api import expect

    agent_ctx = chromium.new_context()
    visitor_ctx = chromium.new_context()
    try:
        agent = agent_ctx.new_page()
        agent.set_default_timeout(WAIT_MS)
        agent.goto(f"{asgi_server.url}/login/")
        agent.fill("input[name=username]", agent_user.username)
        agent.fill("input[name=password]", "pw-for-tests-123")
        agent.click("button[type=submit]")
        expect(agent.locator("#live-region")).to_be_visible()
        # The inbox's websocket is open once the console counts the agent as present.
        wait_for(lambda: agent.evaluate("1") and _agents_online(asgi_server, host_site, token), 30)

        visitor = visitor_ctx.new_page()
        visitor.set_default_timeout(WAIT_MS)
        visitor.goto(f"{host_site.origin}/shop.html")
        visitor.click("#ec-launcher")
        visitor.fill("#ec-input", "Hello from the shop page")
        visitor.press("#ec-input", "Enter")
        expect(
            visitor.locator(".msg.visitor:not(.pending)", has_text="Hello from the shop page")
        ).to_be_visible()
        # The host page's CSS does not reach into the widget.
        assert visitor.locator("#ec-input").evaluate("e => getComputedStyle(e).fontSize") != "40px"

        # Live in the agent's inbox, without a reload.
        row = agent.locator("tr", has_text="Hello from the shop page")
        expect(row).to_be_visible()
        row.locator("a").first.click()  # the customer's name; the second link is their profile
        expect(agent.locator(".timeline")).to_contain_text("Hello from the shop page")

        agent.fill("textarea[name=body]", "Hi! How can I help?")
        started = time.monotonic()
        agent.click("form.reply button[type=submit]")
        reply = visitor.locator(".msg.agent", has_text="Hi! How can I help?")
        expect(reply).to_be_visible()
        latency = time.monotonic() - started
        expect(reply.locator(".who")).to_have_text("Alex Agent")
        print(f"agent reply reached the visitor in {latency:.2f} s (including the console's form post)")
        assert latency < 5

        # The visitor's next message appears live in the agent's open conversation.
        visitor.fill("#ec-input", "<b>not bold</b> & thanks")
        visitor.press("#ec-input", "Enter")
        expect(agent.locator(".timeline")).to_contain_text("<b>not bold</b> & thanks")

        visitor.reload()
        expect(visitor.locator(".msg.agent", has_text="Hi! How can I help?")).to_be_visible()
        bodies = visitor.locator(".msg .bubble").all_text_contents()
        assert bodies[1:] == ["Hello from the shop page", "Hi! How can I help?", "<b>not bold</b> & thanks"]
        assert visitor.locator(".msg b").count() == 0  # text, never HTML

        # A signed-in customer of the shop (on another device): verified, so the chat joins their SMS and
        # email timeline.
        visitor_ctx.close()
        visitor_ctx = chromium.new_context()
        account = visitor_ctx.new_page()
        account.set_default_timeout(WAIT_MS)
        account.goto(f"{host_site.origin}/account.html")
        account.click("#ec-launcher")
        expect(account.locator(".msg.visitor")).to_have_count(0)  # nothing of the anonymous chat
        account.fill("#ec-input", "Ada here, about my order")
        account.press("#ec-input", "Enter")
        expect(account.locator(".msg.visitor:not(.pending)", has_text="Ada here")).to_be_visible()
        chat = wait_for(lambda: Interaction.objects.filter(body="Ada here, about my order").first(), 30)
        assert chat.customer_id == ada_pk
        agent.goto(f"{asgi_server.url}/conversations/{chat.conversation_id}/")
        expect(agent.locator(".timeline")).to_contain_text("SMS from Ada")
        expect(agent.locator(".timeline")).to_contain_text("Ada here, about my order")
    finally:
        visitor_ctx.close()
        agent_ctx.close()


def _agents_online(server: AsgiServer, site: HostSite, token: str) -> bool:
    import urllib.request

    request = urllib.request.Request(f"{server.url}/webchat/{token}/config/", headers={"Origin": site.origin})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return bool(json.loads(resp.read())["online"])
