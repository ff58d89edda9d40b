"""The contract console.js relies on: after a change commits, the signed-in member's websocket receives
``{event, conversation_id, interaction_id}`` for their workspace, and the fragment it then re-fetches
shows the change."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.test import Client

from config.asgi import application


def _scope(client: Client) -> dict[str, Any]:
    session = client.cookies.get("sessionid")
    cookie = f"sessionid={session.value}".encode() if session else b""
    return {
        "type": "websocket",
        "path": "/ws/console/",
        "raw_path": b"/ws/console/",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"cookie", cookie)],
        "subprotocols": [],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


@pytest.mark.django_db(transaction=True)
def test_socket_pushes_workspace_events_that_refresh_the_fragments(agent_client: Client, sms_channel) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        socket = ApplicationCommunicator(application, _scope(agent_client))
        await socket.send_input({"type": "websocket.connect"})
        accepted = await socket.receive_output(timeout=5)
        assert accepted["type"] == "websocket.accept", accepted
        try:
            post = sync_to_async(agent_client.post)
            resp = await post(
                "/simulator/", {"channel": sms_channel.pk, "from_number": "+14155550177", "body": "live!"}
            )
            assert resp.status_code == 302
            first = json.loads((await socket.receive_output(timeout=5))["text"])
            second = json.loads((await socket.receive_output(timeout=5))["text"])
        finally:
            await socket.send_input({"type": "websocket.disconnect", "code": 1000})
            await socket.wait(timeout=5)
        return first, second

    first, second = async_to_sync(scenario)()
    assert {first["event"], second["event"]} == {"conversation.opened", "message.received"}
    conversation_id = first["conversation_id"]
    assert second["conversation_id"] == conversation_id
    assert isinstance(first["interaction_id"], int)

    assert "live!" in agent_client.get("/?fragment=1").content.decode()
    assert "live!" in agent_client.get(f"/conversations/{conversation_id}/?fragment=1").content.decode()


@pytest.mark.django_db(transaction=True)
def test_socket_refuses_visitors_without_a_workspace(client: Client) -> None:
    async def scenario() -> dict[str, Any]:
        socket = ApplicationCommunicator(application, _scope(client))
        await socket.send_input({"type": "websocket.connect"})
        return await socket.receive_output(timeout=5)

    assert async_to_sync(scenario)()["type"] == "websocket.close"
