"""The journeys' clock: ``timezone.now()`` shifted by an offset tests can move.

End-to-end tests run real workers and beat in other processes, so the offset cannot live in memory:
when ``settings.JOURNEYS_CLOCK_FILE`` names a file, its content (seconds, a float) is added to the real
time. Production leaves the setting empty and the clock is the real one.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.conf import settings
from django.utils import timezone


def clock_offset() -> float:
    """Seconds added to the real time (0.0 unless ``JOURNEYS_CLOCK_FILE`` holds a number)."""
    name = getattr(settings, "JOURNEYS_CLOCK_FILE", "")
    if not name:
        return 0.0
    try:
        return float(Path(name).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0.0


def journey_now() -> dt.datetime:
    """Now, for journey timers (UTC, aware)."""
    offset = clock_offset()
    now = timezone.now()
    return now + dt.timedelta(seconds=offset) if offset else now


def clock_shift(*, seconds: float) -> None:
    """Move the clock ``seconds`` further (tests only: needs ``JOURNEYS_CLOCK_FILE``)."""
    name = getattr(settings, "JOURNEYS_CLOCK_FILE", "")
    if not name:
        raise RuntimeError("JOURNEYS_CLOCK_FILE is not set")
    Path(name).write_text(str(clock_offset() + seconds))
