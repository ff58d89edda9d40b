"""The outbox relay: committed domain events (``OutboxEvent`` rows) to their listeners.

Delivery is at least once per listener: a row is marked relayed only after every listener that wants it
took it, and the listeners that took it are recorded on the row, so a retry after one failed (the broker
or the channel layer unreachable) runs only the others. The listeners are idempotent where it matters:
the outbound send claims its interaction under a row lock, an automation reply carries the idempotency
key ``automation:<rule>:<interaction>``, and a repeated realtime push only redraws the console.

Order: rows are relayed in ``id`` (commit-independent insertion) order, and a row waiting for a retry
holds back the later rows of its customer, so one customer's events arrive in the order they were
written. ``manage.py outbox_relay`` runs :func:`outbox_relay_pending` whenever PostgreSQL NOTIFYs a commit
(and every few seconds as a safety net).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from engagement import events
from engagement.models.outbox import OutboxEvent

logger = logging.getLogger(__name__)

# After this many rows fail in a row the pass stops: the backend is most likely down, and every further
# attempt would only wait for the same connection error.
FAILURES_BEFORE_PAUSE = 3


@dataclass
class RelayReport:
    relayed: int = 0
    failed: int = 0
    # Rows not tried in this pass: their retry time has not come, or an earlier row of their customer waits.
    held: int = 0
    # The pass stopped early after consecutive failures (more rows may be pending).
    paused: bool = False
    # The pass took as many rows as it may: run another at once.
    full: bool = False


def outbox_retry_delay(attempts: int) -> float:
    """Seconds before a row whose listener failed is tried again: 1, 2, 4 … capped at
    ``OUTBOX_RETRY_MAX_SECONDS``."""
    return float(min(2 ** max(attempts - 1, 0), settings.OUTBOX_RETRY_MAX_SECONDS))


def _relay_row(row: OutboxEvent, *, now: datetime) -> bool:
    """Run the listeners of one row that have not taken it yet; record the outcome. True when done."""
    event = events.DomainEvent(**row.payload)
    done = list(row.listeners_done)
    errors: list[str] = []
    for listener in events.listeners():
        if listener.name in done or not listener.wants(event):
            continue
        try:
            listener.handler(event)
        except Exception as exc:
            logger.warning("outbox %s: listener %s failed for %s: %r", row.pk, listener.name, row.name, exc)
            errors.append(f"{listener.name}: {type(exc).__name__}: {exc}")
        else:
            done.append(listener.name)
    if errors:
        attempts = row.attempts + 1
        OutboxEvent.objects.filter(pk=row.pk).update(
            attempts=attempts,
            listeners_done=done,
            last_error="\n".join(errors)[:2000],
            next_attempt_at=now + timedelta(seconds=outbox_retry_delay(attempts)),
        )
        return False
    OutboxEvent.objects.filter(pk=row.pk).update(
        relayed_at=timezone.now(), listeners_done=done, attempts=row.attempts + 1
    )
    return True


def outbox_relay_pending(*, limit: int = 500) -> RelayReport:
    """Relay pending rows, oldest first, at most ``limit``; see the module docstring for the order.

    Precondition: one relay at a time (``outbox_relay`` holds a PostgreSQL advisory lock while it relays).
    Database errors propagate (the caller reconnects); listener errors are recorded on their row.
    """
    now = timezone.now()
    rows = list(OutboxEvent.objects.filter(relayed_at__isnull=True).order_by("id")[:limit])
    report = RelayReport(full=len(rows) == limit)
    held_customers: set[int] = set()
    failures_in_a_row = 0
    for row in rows:
        if row.customer_id is not None and row.customer_id in held_customers:
            report.held += 1
            continue
        if row.next_attempt_at is not None and row.next_attempt_at > now:
            report.held += 1
            if row.customer_id is not None:
                held_customers.add(row.customer_id)
            continue
        if _relay_row(row, now=now):
            report.relayed += 1
            failures_in_a_row = 0
            continue
        report.failed += 1
        if row.customer_id is not None:
            held_customers.add(row.customer_id)
        failures_in_a_row += 1
        if failures_in_a_row >= FAILURES_BEFORE_PAUSE:
            report.paused = True
            report.full = False
            break
    return report


def outbox_relay_ids(*, ids: Sequence[int]) -> RelayReport:
    """Relay the given pending rows now, in order (the inline mode of unit tests, on commit)."""
    now = timezone.now()
    report = RelayReport()
    for row in OutboxEvent.objects.filter(pk__in=ids, relayed_at__isnull=True).order_by("id"):
        if _relay_row(row, now=now):
            report.relayed += 1
        else:
            report.failed += 1
    return report


def outbox_purge_relayed(*, older_than: timedelta, batch: int = 5000) -> int:
    """Delete relayed rows older than ``older_than`` (at most ``batch``); returns how many."""
    cutoff = timezone.now() - older_than
    ids = list(
        OutboxEvent.objects.filter(relayed_at__lt=cutoff)
        .order_by("relayed_at")
        .values_list("pk", flat=True)[:batch]
    )
    if not ids:
        return 0
    deleted, _ = OutboxEvent.objects.filter(pk__in=ids).delete()
    return deleted


def outbox_backlog() -> tuple[int, float]:
    """How many rows wait, and the age in seconds of the oldest (0 when none): the relay's health."""
    oldest = (
        OutboxEvent.objects.filter(relayed_at__isnull=True)
        .order_by("id")
        .values_list("created_at", flat=True)
    ).first()
    if oldest is None:
        return 0, 0.0
    return (
        OutboxEvent.objects.filter(relayed_at__isnull=True).count(),
        (timezone.now() - oldest).total_seconds(),
    )
