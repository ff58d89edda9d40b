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


# Pushes from sync code (the outbox relay) run on one event loop per process, kept in a thread of its own:
# the channel layer's Redis connections belong to a loop, and ``async_to_sync`` would make (and connect)
# a new one for every push (measured: 20 ms a push on a busy machine, the relay's whole budget).
_PUSH_TIMEOUT_SECONDS = 10.0
_push_loop: tuple[int, asyncio.AbstractEventLoop] | None = None
_push_loop_lock = threading.Lock()


def _push_loop_get() -> asyncio.AbstractEventLoop:
    global _push_loop
    with _push_loop_lock:
        # A forked process (a prefork worker) inherits the object but not the thread that runs it.
        if _push_loop is None or _push_loop[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="realtime-push", daemon=True).start()
            _push_loop = (os.getpid(), loop)
        return _push_loop[1]


def group_send_now(group: str, message: dict[str, Any]) -> None:
    """Send ``message`` to a channel-layer group from sync code, now; raises when the layer (Redis) is
    unreachable or does not answer within 10 s (the outbox relay then retries the event)."""
    layer = get_channel_layer()
    if layer is None:
        return
    future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _push_loop_get())
    try:
        future.result(timeout=_PUSH_TIMEOUT_SECONDS)
    except TimeoutError:
        future.cancel()
        raise


def push_to_workspace(event: DomainEvent) -> None:
    message: dict[str, Any] = {
        "type": "domain.event",
        "event": event.name,
        "conversation_id": event.conversation_id,
        "interaction_id": event.interaction_id,
        "customer_id": event.customer_id,
    }
    # A note's @mentions: the console of each mentioned member shows a notice (ids only, no text).
    if event.data.get("mentioned_user_ids"):
        message["mentioned_user_ids"] = list(event.data["mentioned_user_ids"])
    group_send_now(workspace_group(event.workspace_id), message)


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


# Which members are online, for automatic assignment: one sorted set per workspace of
# "<user id>:<connection>" scored by expiry, written with the webchat presence above on connect and on
# every console heartbeat (25 s), removed on disconnect. A member is online while one of their
# connections has not expired (PRESENCE_TTL_SECONDS after its last heartbeat).


def members_key(workspace_id: int) -> str:
    return f"engagement:console:members:{workspace_id}"


def member_presence_set(*, workspace_id: int, user_id: int, connection: str, present: bool) -> None:
    """A member's console connection opened (or sent its heartbeat), or closed."""
    key, member = members_key(workspace_id), f"{user_id}:{connection}"
    if present:
        presence_add(key=key, member=member)
    else:
        presence_remove(key=key, member=member)


def members_online(*, workspace_id: int) -> set[int]:
    """Ids of the members with a live console connection in the workspace. One Redis call."""
    found = redis_client().zrangebyscore(members_key(workspace_id), time.time(), "+inf")
    online = set()
    for raw in found:
        head = (raw.decode() if isinstance(raw, bytes) else str(raw)).split(":", 1)[0]
        if head.isdigit():
            online.add(int(head))
    return online


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
