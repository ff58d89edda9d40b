"""Who is connected right now: webchat visitors (is a reply delivered live?) and console agents (is
anybody there to answer?). Redis sorted sets of connections scored by when they expire, so a crashed
server's connections age out instead of counting forever."""

from __future__ import annotations

import time
from functools import lru_cache

import redis
from django.conf import settings

# A connection counts as present for this long after its last heartbeat (the widget pings every 25 s).
PRESENCE_TTL_SECONDS = 75


@lru_cache(maxsize=1)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def _redis() -> redis.Redis:
    return _client(settings.REDIS_URL)


def visitor_key(channel_id: int, visitor_id: str) -> str:
    return f"engagement:webchat:online:{channel_id}:{visitor_id}"


def agents_key(workspace_id: int) -> str:
    return f"engagement:webchat:agents:{workspace_id}"


def presence_add(*, key: str, member: str) -> None:
    """Mark ``member`` (a connection) present under ``key``; also the heartbeat."""
    now = time.time()
    pipe = _redis().pipeline()
    pipe.zadd(key, {member: now + PRESENCE_TTL_SECONDS})
    pipe.zremrangebyscore(key, "-inf", now)
    pipe.expire(key, PRESENCE_TTL_SECONDS * 2)
    pipe.execute()


def presence_remove(*, key: str, member: str) -> None:
    _redis().zrem(key, member)


def presence_count(*, key: str) -> int:
    return int(_redis().zcount(key, time.time(), "+inf"))
