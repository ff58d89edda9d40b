"""Realtime: pushes to the console over the Redis channel layer (after commit only), who is connected
(console agents, chat visitors) and the agent's typing indicator (published immediately)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import redis
from channels.layers import get_channel_layer
from django.conf import settings

from engagement.models import ChannelKind, Interaction
from engagement.models.conversations import Direction

if TYPE_CHECKING:
    from engagement.events import DomainEvent

logger = logging.getLogger(__name__)


def workspace_group(workspace_id: int) -> str:
    return f"workspace.{workspace_id}"


# ---------------------------------------------------------------- sends from sync code
# ``async_to_sync(layer.group_send)`` outside an event loop (a WSGI worker, a Celery task) runs each call
# on a new event loop, and channels_redis keeps its connection pool per loop: every push paid for a new
# Redis connection and its teardown (about 5 ms of CPU, a third of an inbound SMS webhook). Sync code
# sends through one long-lived loop per process instead, on a daemon thread, so the pool is reused.

_SEND_TIMEOUT_SECONDS = 10.0
_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0


def _send_loop() -> asyncio.AbstractEventLoop:
    """This process's channel-layer loop (started on first use; started anew in a forked child)."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="channel-layer-send", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


def group_send_now(group: str, message: dict[str, Any]) -> None:
    """Send ``message`` to channel-layer ``group`` from sync code, immediately; waits until Redis has it.

    Raises what ``group_send`` raises (e.g. ``redis.ConnectionError``), or ``TimeoutError`` after
    10 s. Call it after commit (``publish_on_commit``) for anything that depends on a transaction."""
    layer = get_channel_layer()
    if layer is None:
        return
    future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _send_loop())
    future.result(timeout=_SEND_TIMEOUT_SECONDS)


def push_to_workspace(event: DomainEvent) -> None:
    group_send_now(
        workspace_group(event.workspace_id),
        {
            "type": "domain.event",
            "event": event.name,
            "conversation_id": event.conversation_id,
            "interaction_id": event.interaction_id,
        },
    )


# ---------------------------------------------------------------- presence
# Who is connected right now: webchat visitors (is a reply delivered live?) and console agents (is
# anybody there to answer?). Redis sorted sets of connections scored by when they expire, so a crashed
# server's connections age out instead of counting forever. The core owns these (the console consumer
# marks agents present); the webchat adapter imports them from here.

# A connection counts as present for this long after its last heartbeat (the widget pings every 25 s).
PRESENCE_TTL_SECONDS = 75


@lru_cache(maxsize=1)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def redis_client() -> redis.Redis:
    """The process's Redis connection (pooled) on ``REDIS_URL``, for presence and counters."""
    return _client(settings.REDIS_URL)


def visitor_key(channel_id: int, visitor_id: str) -> str:
    return f"engagement:webchat:online:{channel_id}:{visitor_id}"


def agents_key(workspace_id: int) -> str:
    return f"engagement:webchat:agents:{workspace_id}"


def presence_add(*, key: str, member: str) -> None:
    """Mark ``member`` (a connection) present under ``key``; also the heartbeat."""
    now = time.time()
    pipe = redis_client().pipeline()
    pipe.zadd(key, {member: now + PRESENCE_TTL_SECONDS})
    pipe.zremrangebyscore(key, "-inf", now)
    pipe.expire(key, PRESENCE_TTL_SECONDS * 2)
    pipe.execute()


def presence_remove(*, key: str, member: str) -> None:
    redis_client().zrem(key, member)


def presence_count(*, key: str) -> int:
    return int(redis_client().zcount(key, time.time(), "+inf"))


def agent_presence_set(*, workspace_id: int, connection: str, present: bool) -> None:
    """An agent's console connection opened (or sent its heartbeat), or closed."""
    key = agents_key(workspace_id)
    if present:
        presence_add(key=key, member=connection)
    else:
        presence_remove(key=key, member=connection)


def agents_online_count(*, workspace_id: int) -> int:
    return presence_count(key=agents_key(workspace_id))


# ---------------------------------------------------------------- the agent's typing indicator


def webchat_visitor_group(channel_id: int, visitor_id: str) -> str:
    """The channel-layer group every open chat widget of one visitor listens on."""
    return f"webchat.{channel_id}.{visitor_id}"


def agent_typing_publish_now(*, workspace_id: int, conversation_id: int, author: str, typing: bool) -> bool:
    """Show the visitor of a webchat conversation of ``workspace_id`` that ``author`` is (no longer)
    typing. Publishes immediately; anything but a webchat conversation of that workspace is ignored."""
    row = (
        Interaction.objects.filter(
            workspace_id=workspace_id,
            conversation_id=conversation_id,
            channel__kind=ChannelKind.WEBCHAT,
            direction=Direction.INBOUND,
        )
        .order_by("-pk")
        .values_list("channel_id", "customer_address")
        .first()
    )
    if row is None or row[0] is None:
        return False
    group_send_now(
        webchat_visitor_group(row[0], row[1]),
        {"type": "webchat.typing", "author": author[:100], "typing": typing},
    )
    return True
