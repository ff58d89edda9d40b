"""Console websocket: pushes domain events of the signed-in user's workspace to the browser."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from engagement.realtime import workspace_group
from engagement.services.tenancy import membership_for_user


class InboxConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

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
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def domain_event(self, message: dict[str, Any]) -> None:
        await self.send_json(
            {k: message[k] for k in ("event", "conversation_id", "interaction_id") if k in message}
        )
