"""Console websocket: pushes domain events of the signed-in user's workspace to the browser."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from engagement.realtime import (
    agent_presence_set,
    agent_typing_publish_now,
    member_presence_set,
    workspace_group,
)
from engagement.services.inbox import thread_changed_since
from engagement.services.tenancy import membership_for_user


class InboxConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None
    workspace_id: int = 0
    user_id: int = 0

    async def connect(self) -> None:
        user = self.scope.get("user")
        session = self.scope.get("session") or {}
        membership = await database_sync_to_async(membership_for_user)(
            user=user, workspace_id=session.get("workspace_id")
        )
        if membership is None:
            await self.close(code=4403)
            return
        self.group = workspace_group(membership.workspace_id)
        self.workspace_id = membership.workspace_id
        self.user_id = membership.user_id
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self._present(True)  # before the accept: online as soon as the page is connected
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await self._present(False)

    # Webchat: an open console counts as an agent online (the widget then promises a live answer), and
    # typing in a webchat conversation's reply box shows "<agent> is typing…" to the visitor.
    # The member counts as online for automatic assignment too (engagement/services/teamwork.py).
    async def _present(self, present: bool) -> None:
        await database_sync_to_async(agent_presence_set)(
            workspace_id=self.workspace_id, connection=self.channel_name, present=present
        )
        await database_sync_to_async(member_presence_set)(
            workspace_id=self.workspace_id,
            user_id=self.user_id,
            connection=self.channel_name,
            present=present,
        )

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not self.group or not isinstance(content, dict):
            return
        if content.get("type") == "ping":
            await self._present(True)
        elif content.get("type") == "catchup":
            # The page was rendered before this socket joined the workspace's group: anything that
            # happened in between was pushed to nobody. The page carries a high-water mark; tell it
            # whether it is stale, so it re-fetches once (engagement/services/inbox.py).
            stale = await database_sync_to_async(thread_changed_since)(
                workspace_id=self.workspace_id, mark=content.get("mark")
            )
            await self.send_json({"event": "catchup", "stale": stale})
        elif content.get("type") == "typing" and isinstance(content.get("conversation_id"), int):
            user = self.scope["user"]
            await database_sync_to_async(agent_typing_publish_now)(
                workspace_id=self.workspace_id,
                conversation_id=content["conversation_id"],
                author=user.get_full_name() or user.get_username(),
                typing=bool(content.get("typing")),
            )

    async def domain_event(self, message: dict[str, Any]) -> None:
        await self.send_json(
            {
                k: message[k]
                for k in ("event", "conversation_id", "interaction_id", "customer_id", "mentioned_user_ids")
                if k in message
            }
        )
