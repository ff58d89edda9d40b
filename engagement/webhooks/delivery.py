"""The delivery worker: claim due deliveries, sign and send them, record the attempt, schedule the next.

Claiming (:func:`webhook_deliveries_claim`) takes due rows with ``FOR UPDATE SKIP LOCKED`` and leases
them by moving ``next_attempt_at`` ``WEBHOOKS_LEASE_SECONDS`` ahead, in a short transaction; the HTTP
requests run outside any transaction, concurrently; a batch's results are recorded in one transaction
(one commit per batch, not per delivery). A worker that dies mid-send leaves the row to be claimed
again when the lease ends.

Order per customer: a delivery is claimable only when no earlier delivery (lower id) of the same
customer to the same endpoint is still pending, so a customer's events reach an endpoint in the order
they were recorded, and event N+1 waits while event N is being retried (events without a customer are
not ordered). A delivery that runs out of attempts no longer holds the others back.

Retries (Standard Webhooks recommends exponential backoff): ``WEBHOOKS_RETRY_SCHEDULE`` gives the delay
after each failed attempt (default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 14 h, 14 h, 14 h: 11 attempts
over about three days), each multiplied by a random factor within ``±WEBHOOKS_RETRY_JITTER``. A 2xx is
a success; anything else (3xx included: redirects are not followed), a timeout or a refused target is a
failure. Delivery is at least once: a worker that dies between the receiver's 2xx and the record sends
again, with the same ``webhook-id``, which receivers use to deduplicate.

Sustained failure disables the endpoint (reason ``failing``): when its attempts have failed without a
success for ``WEBHOOKS_DISABLE_AFTER_SECONDS`` (3 days), or ``WEBHOOKS_DISABLE_AFTER_FAILED_DELIVERIES``
deliveries in a row ran out of attempts. Admins see it in the console.
"""

from __future__ import annotations

import http.client
import logging
import random
import socket
import ssl
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef
from django.db.models.functions import Coalesce
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from engagement.models import DeliveryState, DisabledReason, WebhookAttempt, WebhookDelivery, WebhookEndpoint

from .ssrf import Resolver, WebhookTargetRefused, webhook_target_check

logger = logging.getLogger(__name__)

USER_AGENT = "engagement-webhooks/1.0"
_STORED_RESPONSE_CHARS = 1000


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    url: str
    secret: str
    event_id: str
    body: str


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    duration_ms: int
    error: str = ""
    response_body: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


# ---------------------------------------------------------------- HTTP to a checked address


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to ``address`` (already checked), while ``host`` names the Host header."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to ``address`` with SNI and certificate check for ``host``."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def webhook_request_send(
    *,
    url: str,
    secret: str,
    event_id: str,
    body: str,
    allow_private: bool,
    timeout: float,
    max_response_bytes: int,
    resolve: Resolver | None = None,
) -> SendResult:
    """POST ``body`` to ``url`` signed per Standard Webhooks (``webhook-id`` = ``event_id``,
    ``webhook-timestamp`` = now in Unix seconds, ``webhook-signature`` = ``v1,<base64 HMAC-SHA256>`` by
    the ``standardwebhooks`` library). The host is resolved and checked once (``ssrf.py``) and the
    connection made to that address; no redirect is followed; at most ``max_response_bytes`` of the
    response are read. Never raises: every failure is a :class:`SendResult` with ``error``."""
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        target = webhook_target_check(url=url, allow_private=allow_private, resolve=resolve)
    except WebhookTargetRefused as exc:
        return SendResult(status_code=None, duration_ms=elapsed(), error=f"refused: {exc.message}"[:500])
    now = timezone.now()
    signature = Webhook(secret).sign(msg_id=event_id, timestamp=now, data=body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "Connection": "close",
    }
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    conn = connection_class(target.host, target.port, address=target.address, timeout=timeout)
    try:
        conn.request("POST", target.path, body=body.encode(), headers=headers)
        response = conn.getresponse()
        content = response.read(max_response_bytes)
        status = response.status
        error = ""
        if 300 <= status < 400:
            error = f"redirect to {response.getheader('Location', '?')!r} not followed"[:500]
        elif not 200 <= status < 300:
            error = f"HTTP {status}"
        return SendResult(
            status_code=status,
            duration_ms=elapsed(),
            error=error,
            response_body=content[:_STORED_RESPONSE_CHARS].decode("utf-8", "replace"),
        )
    except (OSError, http.client.HTTPException) as exc:
        return SendResult(status_code=None, duration_ms=elapsed(), error=f"{type(exc).__name__}: {exc}"[:500])
    finally:
        conn.close()


# ---------------------------------------------------------------- claim, record


def webhook_deliveries_claim(*, limit: int, now: datetime | None = None) -> list[Claimed]:
    """Claim up to ``limit`` due deliveries (oldest due first) of enabled endpoints, keeping each
    customer's order per endpoint (module docstring), and lease them for ``WEBHOOKS_LEASE_SECONDS``."""
    now = now or timezone.now()
    earlier_pending = WebhookDelivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        customer_id=OuterRef("customer_id"),
        state=DeliveryState.PENDING,
        id__lt=OuterRef("id"),
    )
    with transaction.atomic():
        rows = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=DeliveryState.PENDING, next_attempt_at__lte=now, endpoint__enabled=True)
            .exclude(Exists(earlier_pending))
            .order_by("next_attempt_at", "id")
            .values_list("id", "endpoint__url", "endpoint__secret", "event_id", "body")[:limit]
        )
        if rows:
            WebhookDelivery.objects.filter(pk__in=[r[0] for r in rows]).update(
                next_attempt_at=now + timedelta(seconds=settings.WEBHOOKS_LEASE_SECONDS)
            )
    return [Claimed(delivery_id=r[0], url=r[1], secret=r[2], event_id=r[3], body=r[4]) for r in rows]


def webhook_retry_delay(
    *, attempt: int, schedule: list[float] | None = None, jitter: float | None = None
) -> float | None:
    """Seconds to wait after failed attempt number ``attempt`` (1-based) of a round, or None when the
    schedule is spent. Pure but for the random jitter."""
    schedule = list(settings.WEBHOOKS_RETRY_SCHEDULE) if schedule is None else schedule
    jitter = settings.WEBHOOKS_RETRY_JITTER if jitter is None else jitter
    if attempt > len(schedule):
        return None
    return schedule[attempt - 1] * random.uniform(1 - jitter, 1 + jitter)  # noqa: S311 - not security


# Columns an attempt changes, with their SQL types (for the VALUES list of one UPDATE).
_DELIVERY_COLUMNS = {
    "attempts": "integer",
    "attempts_in_round": "integer",
    "last_attempt_at": "timestamptz",
    "last_status_code": "integer",
    "last_duration_ms": "integer",
    "last_error": "varchar",
    "state": "varchar",
    "delivered_at": "timestamptz",
    "next_attempt_at": "timestamptz",
}


def _deliveries_save(deliveries: Sequence[WebhookDelivery]) -> None:
    """Write the attempt columns of ``deliveries`` in one ``UPDATE … FROM (VALUES …)``: one statement
    per batch (``bulk_update``'s CASE expressions cost more Python time than the send itself)."""
    if not deliveries:
        return
    qn = connection.ops.quote_name
    names = list(_DELIVERY_COLUMNS)
    row = "(" + ", ".join(["%s::bigint", *(f"%s::{t}" for t in _DELIVERY_COLUMNS.values())]) + ")"
    sql = (
        f"UPDATE {qn(WebhookDelivery._meta.db_table)} AS d SET "  # noqa: S608 - names and types only
        + ", ".join(f"{qn(n)} = v.{qn(n)}" for n in names)
        + " FROM (VALUES "
        + ", ".join([row] * len(deliveries))
        + ") AS v (id, "
        + ", ".join(qn(n) for n in names)
        + ") WHERE d.id = v.id"
    )
    params = [value for d in deliveries for value in [d.pk, *(getattr(d, n) for n in names)]]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def webhook_attempts_record(
    *, results: Sequence[tuple[int, SendResult]], now: datetime | None = None
) -> list[WebhookDelivery]:
    """Record a batch of attempt results (delivery id, result) in one transaction and decide what follows
    for each: delivered, another attempt later, or failed; then each endpoint's failure bookkeeping (a
    success in the batch ends its failing streak; otherwise failures start or extend it and may disable
    it). A delivery no longer pending (deleted, or recorded by a worker whose lease had run out) is
    skipped. Returns the deliveries recorded."""
    now = now or timezone.now()
    by_id = dict(results)
    with transaction.atomic():
        deliveries = list(
            WebhookDelivery.objects.select_for_update()
            .filter(pk__in=list(by_id), state=DeliveryState.PENDING)
            .order_by("id")
        )
        attempts: list[WebhookAttempt] = []
        succeeded: set[int] = set()
        failed: set[int] = set()
        exhausted: Counter[int] = Counter()
        for delivery in deliveries:
            result = by_id[delivery.pk]
            delivery.attempts += 1
            delivery.attempts_in_round += 1
            attempts.append(
                WebhookAttempt(
                    delivery=delivery,
                    number=delivery.attempts,
                    attempted_at=now,
                    status_code=result.status_code,
                    duration_ms=result.duration_ms,
                    error=result.error,
                    response_body=result.response_body,
                    replay=delivery.replays > 0 and delivery.attempts_in_round == 1,
                )
            )
            delivery.last_attempt_at = now
            delivery.last_status_code = result.status_code
            delivery.last_duration_ms = result.duration_ms
            delivery.last_error = result.error
            if result.ok:
                delivery.state = DeliveryState.DELIVERED
                delivery.delivered_at = now
                succeeded.add(delivery.endpoint_id)
                continue
            failed.add(delivery.endpoint_id)
            delay = webhook_retry_delay(attempt=delivery.attempts_in_round)
            if delay is None:
                delivery.state = DeliveryState.FAILED
                exhausted[delivery.endpoint_id] += 1
            else:
                delivery.next_attempt_at = now + timedelta(seconds=delay)
        WebhookAttempt.objects.bulk_create(attempts)
        _deliveries_save(deliveries)
        if succeeded:
            # No row is written, nor locked, for an endpoint without a failing streak.
            WebhookEndpoint.objects.filter(pk__in=succeeded).exclude(
                failing_since=None, consecutive_failed_deliveries=0
            ).update(failing_since=None, consecutive_failed_deliveries=0)
        for endpoint_id in sorted(failed - succeeded):
            WebhookEndpoint.objects.filter(pk=endpoint_id).update(
                failing_since=Coalesce(F("failing_since"), now),
                consecutive_failed_deliveries=F("consecutive_failed_deliveries") + exhausted[endpoint_id],
            )
            _disable_if_failing(endpoint_id=endpoint_id, now=now)
    return deliveries


def _disable_if_failing(*, endpoint_id: int, now: datetime) -> None:
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).first()
    if endpoint is None or endpoint.failing_since is None:
        return
    since = endpoint.failing_since
    too_long = now - since >= timedelta(seconds=settings.WEBHOOKS_DISABLE_AFTER_SECONDS)
    too_many = endpoint.consecutive_failed_deliveries >= settings.WEBHOOKS_DISABLE_AFTER_FAILED_DELIVERIES
    if not (too_long or too_many):
        return
    detail = (
        f"every attempt failed since {since:%Y-%m-%d %H:%M} UTC"
        if too_long
        else f"{endpoint.consecutive_failed_deliveries} deliveries in a row failed every attempt"
    )
    switched = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).update(
        enabled=False, disabled_reason=DisabledReason.FAILING, disabled_detail=detail, disabled_at=now
    )
    if switched:
        logger.warning("webhook endpoint %s disabled: %s", endpoint_id, detail)


# ---------------------------------------------------------------- a run


def webhook_deliveries_run(
    *,
    budget_seconds: float = 50.0,
    batch: int | None = None,
    concurrency: int | None = None,
    resolve: Resolver | None = None,
) -> int:
    """Claim and send due deliveries until none is due or ``budget_seconds`` have passed; return how
    many attempts were made. HTTP requests of a batch run on ``concurrency`` threads (no database work
    in them); each batch's results are recorded in one transaction on this thread."""
    batch = batch or settings.WEBHOOKS_BATCH_SIZE
    concurrency = concurrency or settings.WEBHOOKS_CONCURRENCY
    deadline = time.monotonic() + budget_seconds
    attempts = 0

    def send(claimed: Claimed) -> SendResult:
        return webhook_request_send(
            url=claimed.url,
            secret=claimed.secret,
            event_id=claimed.event_id,
            body=claimed.body,
            allow_private=settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS,
            timeout=settings.WEBHOOKS_TIMEOUT_SECONDS,
            max_response_bytes=settings.WEBHOOKS_RESPONSE_MAX_BYTES,
            resolve=resolve,
        )

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="webhook") as pool:
        while time.monotonic() < deadline:
            claimed = webhook_deliveries_claim(limit=batch)
            if not claimed:
                break
            sent = list(pool.map(send, claimed))
            webhook_attempts_record(results=[(c.delivery_id, r) for c, r in zip(claimed, sent, strict=True)])
            attempts += len(sent)
    return attempts
