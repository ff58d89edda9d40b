"""Rate limits per API key (and per signed-in user), and on failed authentication per client address.

Fixed windows in Redis (``settings.REDIS_URL``), one round trip per request: a pipelined ``INCR`` +
``EXPIRE`` on ``ratelimit:<who>:<window start>``. Limits are settings: ``API_RATE_LIMIT_REQUESTS`` per
``API_RATE_LIMIT_WINDOW_SECONDS``; ``API_AUTH_FAILURE_LIMIT`` bad keys per
``API_AUTH_FAILURE_WINDOW_SECONDS`` from one address.

Every answer carries the IETF headers (draft-ietf-httpapi-ratelimit-headers-09, structured fields)::

    RateLimit-Policy: "per-key";q=600;w=60
    RateLimit: "per-key";r=599;t=42

and past the limit the 429 problem ``rate_limited`` carries ``Retry-After`` (seconds, RFC 9110 §10.2.3).
If Redis is unreachable the request is let through (logged): a limiter must not take the API down.
"""

from __future__ import annotations

import logging
import time
from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.http import HttpRequest
from ipware import get_client_ip
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from engagement.models import ApiKey

logger = logging.getLogger(__name__)

POLICY_NAME = "per-key"


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


def window_hit(*, bucket: str, window: int) -> tuple[int, int]:
    """Count one hit in ``bucket``'s current fixed window: ``(hits so far, seconds until it resets)``.
    Raises ``redis.RedisError`` when Redis is unreachable."""
    now = int(time.time())
    start = now - now % window
    key = f"ratelimit:{bucket}:{start}"
    pipe = _redis().pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, window + 1)
    hits, _ = pipe.execute()
    return int(hits), start + window - now


def client_address(request: HttpRequest) -> str:
    ip, _ = get_client_ip(
        request,
        proxy_order="right-most",
        proxy_count=getattr(settings, "TRUSTED_PROXY_COUNT", 0) or None,
        request_header_order=getattr(settings, "AXES_IPWARE_META_PRECEDENCE_ORDER", ["REMOTE_ADDR"]),
    )
    return ip or "unknown"


class RateLimitExceeded(Throttled):
    default_detail = "rate limit exceeded"


def _policy(limit: int, window: int) -> str:
    return f'"{POLICY_NAME}";q={limit};w={window}'


class KeyRateThrottle(BaseThrottle):
    """``REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]``: ``API_RATE_LIMIT_REQUESTS`` per window per API key
    (per user for a signed-in member). Leaves the headers on the Django request for
    ``RateLimitHeadersMiddleware``."""

    def allow_request(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, ApiKey):
            bucket = f"key:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            bucket = f"user:{request.user.pk}"
        else:
            return True
        limit = int(settings.API_RATE_LIMIT_REQUESTS)
        window = int(settings.API_RATE_LIMIT_WINDOW_SECONDS)
        try:
            hits, reset = window_hit(bucket=bucket, window=window)
        except redis.RedisError:
            logger.warning("rate limit not applied: Redis unreachable", exc_info=True)
            return True
        remaining = max(limit - hits, 0)
        request._request.ratelimit_headers = {  # type: ignore[attr-defined]
            "RateLimit-Policy": _policy(limit, window),
            "RateLimit": f'"{POLICY_NAME}";r={remaining};t={reset}',
        }
        if hits > limit:
            raise RateLimitExceeded(wait=max(reset, 1))
        return True

    def wait(self) -> float | None:
        return None


def auth_failure_record(*, request: HttpRequest) -> None:
    """Count a bad API key from this address; raise ``Throttled`` (429) past
    ``API_AUTH_FAILURE_LIMIT`` in the window."""
    limit = int(settings.API_AUTH_FAILURE_LIMIT)
    window = int(settings.API_AUTH_FAILURE_WINDOW_SECONDS)
    try:
        hits, reset = window_hit(bucket=f"authfail:{client_address(request)}", window=window)
    except redis.RedisError:
        logger.warning("auth failure limit not applied: Redis unreachable", exc_info=True)
        return
    if hits > limit:
        request.ratelimit_headers = {  # type: ignore[attr-defined]
            "RateLimit-Policy": f'"auth-failures";q={limit};w={window}',
            "RateLimit": f'"auth-failures";r=0;t={reset}',
        }
        raise RateLimitExceeded(
            detail="too many requests with an invalid API key from this address", wait=max(reset, 1)
        )


class RateLimitHeadersMiddleware:
    """Copies the headers a throttle left on the request onto the response (every status)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        response = self.get_response(request)
        for name, value in (getattr(request, "ratelimit_headers", None) or {}).items():
            response[name] = value
        return response
