"""The mentioned member's console hears of a note live: the websocket push carries the mentioned ids
(never the text); an open console also marks its member online for automatic assignment."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.test import Client

from config.asgi import application
from engagement.models import Role
from engagement.realtime import members_online
from tests import factories
from tests.console.conftest import inbound
from tests.console.test_live import _scope


@pytest.mark.django_db(transaction=True)
def test_a_mention_reaches_the_mentioned_members_console_live(
    agent_client: Client, workspace, sms_channel
) -> None:
    teammate = factories.member(workspace, Role.AGENT)
    teammate_client = Client()
    teammate_client.force_login(teammate)
    item = inbound(sms_channel, "+14155550101", "help")

    async def scenario() -> tuple[dict[str, Any], set[int], set[int]]:
        socket = ApplicationCommunicator(application, _scope(teammate_client))
        await socket.send_input({"type": "websocket.connect"})
        accepted = await socket.receive_output(timeout=5)
        assert accepted["type"] == "websocket.accept", accepted
        online = await sync_to_async(members_online)(workspace_id=workspace.pk)
        try:
            post = sync_to_async(agent_client.post)
            resp = await post(
                f"/customers/{item.customer_id}/thread/notes/", {"body": f"@{teammate.username} yours?"}
            )
            assert resp.status_code == 302
            pushed = json.loads((await socket.receive_output(timeout=5))["text"])
        finally:
            await socket.send_input({"type": "websocket.disconnect", "code": 1000})
            await socket.wait(timeout=5)
        after = await sync_to_async(members_online)(workspace_id=workspace.pk)
        return pushed, online, after

    pushed, online, after = async_to_sync(scenario)()
    assert pushed["event"] == "note.created"
    assert pushed["mentioned_user_ids"] == [teammate.pk]
    assert pushed["customer_id"] == item.customer_id
    assert "yours" not in json.dumps(pushed)
    assert teammate.pk in online
    assert teammate.pk not in after
