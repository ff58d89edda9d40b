"""Realtime pushes to the console over the Redis channel layer (after commit only)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

if TYPE_CHECKING:
    from engagement.events import DomainEvent

logger = logging.getLogger(__name__)


def workspace_group(workspace_id: int) -> str:
    return f"workspace.{workspace_id}"


def push_to_workspace(event: DomainEvent) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(
        workspace_group(event.workspace_id),
        {
            "type": "domain.event",
            "event": event.name,
            "conversation_id": event.conversation_id,
            "interaction_id": event.interaction_id,
        },
    )
