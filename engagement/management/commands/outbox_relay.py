"""``manage.py outbox_relay``: the process that relays committed outbox rows to their listeners.

Why a process of its own rather than a beat task: the relay is what hands work *to* the broker, so it
must not depend on the broker to run; it answers a commit within milliseconds (PostgreSQL delivers the
NOTIFY that the outbox's INSERT trigger issues when, and only when, the transaction commits) instead of
a beat interval; and it takes the realtime push off the request path. A poll every
``OUTBOX_RELAY_POLL_SECONDS`` catches up after anything the notifications missed (the relay restarting).

One relay relays at a time: each holds a PostgreSQL session advisory lock on its LISTEN connection while
it works, so a second one (for availability) waits and takes over when the first one's connection goes.
A lost database connection is reconnected; the relay itself never needs a restart.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from datetime import timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections, connection

from engagement.models.outbox import OUTBOX_NOTIFY_CHANNEL
from engagement.outbox import outbox_backlog, outbox_purge_relayed, outbox_relay_pending

logger = logging.getLogger("engagement.outbox")

# pg_advisory_lock key of the relay leader: "outbox" in ASCII.
RELAY_LOCK_KEY = 0x6F7574626F78
PURGE_EVERY_SECONDS = 300.0


def _conninfo() -> str:
    s = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        dbname=s["NAME"],
        user=s.get("USER") or None,
        password=s.get("PASSWORD") or None,
        host=s.get("HOST") or None,
        port=str(s["PORT"]) if s.get("PORT") else None,
        application_name="outbox_relay",
        connect_timeout=5,
    )


class Command(BaseCommand):
    help = "Relay committed domain events from the outbox to their listeners (LISTEN/NOTIFY and a poll)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="relay what is pending, then exit")

    def handle(self, *args: object, **options: Any) -> None:
        if options["once"]:
            while (report := outbox_relay_pending()).full:
                pass
            self.stdout.write(f"relayed {report.relayed}, failed {report.failed}, held {report.held}")
            return
        self._stopping = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        logger.info("outbox relay started")
        listen: psycopg.Connection[Any] | None = None
        backoff = 0.0
        purged_at = 0.0
        while not self._stopping:
            try:
                if listen is None:
                    listen = psycopg.connect(_conninfo(), autocommit=True)
                    listen.execute(f"LISTEN {OUTBOX_NOTIFY_CHANNEL}")
                    self._leader = False
                if not self._leader:
                    row = listen.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LOCK_KEY,)).fetchone()
                    self._leader = bool(row and row[0])
                    if not self._leader:
                        self._sleep(settings.OUTBOX_RELAY_POLL_SECONDS)
                        continue
                    logger.info("outbox relay is the leader")
                report = outbox_relay_pending()
                if time.monotonic() - purged_at > PURGE_EVERY_SECONDS:
                    outbox_purge_relayed(older_than=timedelta(hours=settings.OUTBOX_RETENTION_HOURS))
                    purged_at = time.monotonic()
                    waiting, age = outbox_backlog()
                    if waiting:
                        logger.warning("outbox backlog: %s rows, the oldest %.0f s old", waiting, age)
                close_old_connections()
                if report.failed:
                    # A listener's backend is away: wait before trying again, whatever commits meanwhile.
                    backoff = min(max(backoff * 2, 0.5), settings.OUTBOX_RETRY_MAX_SECONDS)
                    logger.warning("outbox relay: %s rows failed; next try in %.1f s", report.failed, backoff)
                    self._sleep(backoff)
                    continue
                backoff = 0.0
                if report.full:
                    continue
                self._wait_for_commit(listen, settings.OUTBOX_RELAY_POLL_SECONDS)
            except (psycopg.Error, DatabaseError) as exc:
                logger.warning("outbox relay: database unavailable (%s); reconnecting", exc)
                if listen is not None:
                    with contextlib.suppress(psycopg.Error):
                        listen.close()
                listen = None
                try:
                    close_old_connections()
                    connection.close()
                except DatabaseError:
                    pass
                self._sleep(1.0)
        if listen is not None:
            listen.close()
        logger.info("outbox relay stopped")

    def _stop(self, *_: object) -> None:
        self._stopping = True

    def _wait_for_commit(self, listen: psycopg.Connection[Any], seconds: float) -> None:
        """Until a NOTIFY arrives (a commit wrote outbox rows), ``seconds`` pass, or we are stopped."""
        deadline = time.monotonic() + seconds
        while not self._stopping and (left := deadline - time.monotonic()) > 0:
            if any(True for _ in listen.notifies(timeout=min(1.0, left), stop_after=1)):
                return

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, deadline - time.monotonic()))
