"""Webchat test helpers: channels with allowed origins, a widget driven through the real ASGI app, and a
customer who already has SMS and email history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.cache import cache
from django.utils import timezone

from config.asgi import application
from customers.models import Customer
from customers.services import Identifier, customer_resolve_identifiers
from engagement.models import Channel, Workspace
from engagement.services.timeline import interaction_record_inbound

ORIGIN = "https://shop.example.com"
SECRET = "identity-secret-for-tests-0123456789"


@pytest.fixture(autouse=True)
def _fresh_redis() -> Iterator[None]:
    """Rate-limit counters and presence live in this test run's own Redis database."""
    cache.clear()
    yield
    cache.clear()


def webchat_channel_create(
    workspace: Workspace, *, origins: list[str] | None = None, **config: Any
) -> Channel:
    return Channel.objects.create(
        workspace=workspace,
        kind="webchat",
        provider="webchat",
        name="Website chat",
        address=f"chat-{workspace.pk}",
        config={"allowed_origins": origins or [ORIGIN], "identity_secret": SECRET, **config},
    )


@pytest.fixture
def webchat_channel(workspace: Workspace) -> Channel:
    return webchat_channel_create(workspace)


def known_customer(workspace: Workspace, *, phone: str, email: str, sms_body: str) -> Customer:
    """A customer with a phone and an email identity and one SMS on their timeline."""
    sms = Channel.objects.create(
        workspace=workspace, kind="sms", provider="sandbox", name="SMS", address="+15005550006"
    )
    resolution = customer_resolve_identifiers(
        workspace=workspace,
        identifiers=[Identifier("phone", phone, verified=True), Identifier("email", email, verified=True)],
        display_name="Ada Lovelace",
    )
    interaction, _ = interaction_record_inbound(
        channel=sms,
        sender=Identifier("phone", phone),
        body=sms_body,
        provider_message_id=f"SM{phone[-6:]}",
        occurred_at=timezone.now(),
    )
    assert interaction.customer_id == resolution.customer.pk
    return resolution.customer


class Widget:
    """One browser tab's websocket, through the project's real ASGI application.

    The same calls as ``channels.testing.WebsocketCommunicator``, on asgiref's communicator: importing
    ``channels.testing`` needs daphne (for its live server), which this project does not install.
    """

    def __init__(self, channel: Channel, *, origin: str | None = ORIGIN, client_ip: str = "10.0.0.1") -> None:
        path = f"/ws/webchat/{channel.webhook_token}/"
        headers = [(b"host", b"chat.platform.test")] + ([(b"origin", origin.encode())] if origin else [])
        scope = {
            "type": "websocket",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers,
            "subprotocols": [],
            "client": (client_ip, 40000),
            "server": ("chat.platform.test", 443),
        }
        self.ws = ApplicationCommunicator(application, scope)

    async def connect(self) -> tuple[bool, int | None]:
        await self.ws.send_input({"type": "websocket.connect"})
        response = await self.ws.receive_output(5)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        assert response["type"] == "websocket.accept"
        return True, None

    async def send(self, frame: dict[str, Any]) -> None:
        await self.send_text(json.dumps(frame))

    async def send_text(self, text: str) -> None:
        await self.ws.send_input({"type": "websocket.receive", "text": text})

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        output = await self.ws.receive_output(timeout)
        if output["type"] == "websocket.close":
            return {"type": "closed", "code": output.get("code")}
        return dict(json.loads(output["text"]))

    async def hello(
        self, visitor: str = "", identity: dict[str, str] | None = None, after: int = 0
    ) -> dict[str, Any]:
        await self.send({"type": "hello", "visitor": visitor, "identity": identity, "after": after})
        return await self.receive()

    async def say(self, client_id: str, body: str) -> dict[str, Any]:
        await self.send({"type": "message", "client_id": client_id, "body": body})
        return await self.receive()

    async def close(self) -> None:
        await self.ws.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.ws.wait(5)
