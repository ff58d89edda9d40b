"""Pushes to a chat visitor from sync code (a reply sent by a worker, the answer to an upload, the agent's
typing indicator) go through the process's one kept push loop (``engagement.realtime.group_send_now``):
they reach the visitor's group without opening a Redis connection per push."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from redis.asyncio.connection import Connection

from channels_inbound.webchat.services import (
    Visitor,
    visitor_group,
    webchat_message_receive,
    webchat_push_now,
)
from engagement.models import Channel
from engagement.realtime import agent_typing_publish_now

pytestmark = pytest.mark.django_db


def test_webchat_pushes_and_the_typing_indicator_reuse_the_kept_connection(
    webchat_channel: Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    visitor = Visitor(channel_id=webchat_channel.pk, visitor_id="v-push")
    # The typing indicator finds the conversation's visitor through their message.
    message, _ = webchat_message_receive(
        channel=webchat_channel, visitor=visitor, client_id="client-push-1", body="hi"
    )
    assert message.conversation_id is not None
    layer = get_channel_layer()
    assert layer is not None
    inbox = async_to_sync(layer.new_channel)()
    group = visitor_group(webchat_channel.pk, visitor.visitor_id)
    async_to_sync(layer.group_add)(group, inbox)
    try:
        webchat_push_now(
            channel_id=webchat_channel.pk, visitor_id=visitor.visitor_id, message={"type": "n", "n": 0}
        )

        opened: list[Any] = []
        connect = Connection._connect

        async def counting_connect(self: Connection) -> None:
            opened.append(self)
            await connect(self)

        monkeypatch.setattr(Connection, "_connect", counting_connect)
        for n in range(1, 6):
            webchat_push_now(
                channel_id=webchat_channel.pk, visitor_id=visitor.visitor_id, message={"type": "n", "n": n}
            )
        assert agent_typing_publish_now(
            workspace_id=webchat_channel.workspace_id,
            conversation_id=message.conversation_id,
            author="Alex Agent",
            typing=True,
        )
        monkeypatch.undo()
        assert opened == []  # six pushes, no new Redis connection

        received = [async_to_sync(layer.receive)(inbox) for _ in range(7)]
    finally:
        async_to_sync(layer.group_discard)(group, inbox)
    assert [m.get("n") for m in received[:6]] == [0, 1, 2, 3, 4, 5]
    assert received[6] == {"type": "webchat.typing", "author": "Alex Agent", "typing": True}
