"""Logging filters named in ``settings.LOGGING``."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

# The loggers that write an INFO line per task: beat's "Sending due task", the worker's "received" and
# "Discarding revoked task" (an expired tick), the pool's "succeeded".
CELERY_TASK_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.worker.request", "celery.app.trace")

# A periodic task beat sends more often than this is "frequent".
FREQUENT_BELOW_SECONDS = 60.0


class QuietFrequentTasks(logging.Filter):
    """Drops the INFO lines Celery writes for every run of a frequent periodic task.

    A task beat sends every second (the campaigns tick) would otherwise print three lines a second and
    scroll everything else off the terminal (`make run`'s banner with the URL and the logins). Warnings and
    errors of those tasks (a failure, a retry) pass, as does every line of other tasks; with the logger at
    DEBUG (``celery worker -l debug``) the dropped lines come back.

    ``tasks``: the task names to keep quiet (``engagement.tasks.campaigns_tick``); by default those of
    ``settings.CELERY_BEAT_SCHEDULE`` scheduled more often than every ``FREQUENT_BELOW_SECONDS``.
    """

    def __init__(self, tasks: Iterable[str] | None = None) -> None:
        super().__init__()
        if tasks is None:
            from django.conf import settings

            tasks = frequent_periodic_tasks(settings.CELERY_BEAT_SCHEDULE)
        self.tasks = frozenset(tasks)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or _task_name(record) not in self.tasks:
            return True
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def frequent_periodic_tasks(schedule: Mapping[str, Mapping[str, object]]) -> set[str]:
    """The task names of a beat schedule (Celery's ``beat_schedule`` shape) whose interval, in seconds, is
    under ``FREQUENT_BELOW_SECONDS``; crontab and timedelta schedules count as infrequent."""
    return {
        str(entry["task"])
        for entry in schedule.values()
        if isinstance(entry["schedule"], int | float) and entry["schedule"] < FREQUENT_BELOW_SECONDS
    }


def _task_name(record: logging.LogRecord) -> str | None:
    # The worker and the pool pass their format context as ``extra={"data": {...}}`` (celery/app/trace.py);
    # beat logs ``"Scheduler: Sending due task %s (%s)", entry.name, entry.task`` (celery/beat.py), the
    # request ``"Discarding revoked task: %s[%s]", self.name, self.id`` (celery/worker/request.py).
    data = getattr(record, "data", None)
    if isinstance(data, dict):
        name = data.get("name")
        return name if isinstance(name, str) else None
    if not isinstance(record.args, tuple) or len(record.args) != 2:
        return None
    if record.name == "celery.beat":
        return str(record.args[1])
    if record.name == "celery.worker.request":
        return str(record.args[0])
    return None
