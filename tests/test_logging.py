"""The logging configuration (settings.LOGGING): a periodic task beat sends every second writes no INFO line
per run (they scrolled `make run`'s banner away), its warnings and errors still show."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from celery.app import trace
from django.conf import settings

from config.log_filters import CELERY_TASK_LOGGERS, frequent_periodic_tasks

TICK = "engagement.tasks.campaigns_tick"
OTHER = "channels_outbound.tasks.send_interaction"


def _context(name: str) -> dict[str, object]:
    return {"id": "c0ffee", "name": name, "return_value": "{}", "runtime": 0.01, "args": "()", "kwargs": "{}"}


def _log_task_lines(name: str, entry: str) -> None:
    """The lines Celery writes for one run of ``name``, written the way Celery writes them."""
    logging.getLogger("celery.beat").info("Scheduler: Sending due task %s (%s)", entry, name)
    logging.getLogger("celery.worker.strategy").info(
        trace.LOG_RECEIVED, _context(name), extra={"data": _context(name)}
    )
    logging.getLogger("celery.worker.request").info("Discarding revoked task: %s[%s]", name, "c0ffee")
    trace.info(trace.LOG_SUCCESS, _context(name))


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every record that passes the celery loggers' own filters (what reaches the console handler)."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep(logging.DEBUG)
    saved = {name: logging.getLogger(name).level for name in CELERY_TASK_LOGGERS}
    root = logging.getLogger()
    root.addHandler(handler)
    for name in CELERY_TASK_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)  # what `celery worker -l info` sets
    try:
        yield seen
    finally:
        root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def test_the_campaigns_tick_is_a_frequent_periodic_task():
    assert TICK in frequent_periodic_tasks(settings.CELERY_BEAT_SCHEDULE)
    # Hourly housekeeping still says when it ran.
    assert "engagement.tasks.idempotency_records_purge" not in frequent_periodic_tasks(
        settings.CELERY_BEAT_SCHEDULE
    )


def test_a_frequent_tick_writes_no_info_line(records):
    _log_task_lines(TICK, "campaigns-tick")
    assert [r.getMessage() for r in records] == []


def test_other_tasks_still_log_at_info(records):
    _log_task_lines(OTHER, "send")
    messages = [r.getMessage() for r in records]
    assert len(messages) == 4
    assert all(OTHER in m for m in messages)


def test_a_frequent_tick_still_logs_its_failure(records):
    failure = {**_context(TICK), "description": "raised unexpected", "exc": "RuntimeError('boom')"}
    logging.getLogger("celery.app.trace").error(trace.LOG_FAILURE, failure, extra={"data": failure})
    logging.getLogger("celery.worker.request").warning("Task %s[%s] retry: %s", TICK, "c0ffee", "boom")
    assert [r.levelno for r in records] == [logging.ERROR, logging.WARNING]
    assert "raised unexpected: RuntimeError('boom')" in records[0].getMessage()


def test_at_debug_the_tick_lines_come_back(records):
    for name in CELERY_TASK_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)  # `celery worker -l debug`
    _log_task_lines(TICK, "campaigns-tick")
    assert len(records) == 4
