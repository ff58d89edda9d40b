"""Time: recurring occurrences in a named zone, quiet hours in the recipient's zone, wall-clock times.

Everything is stored as UTC instants and computed with ``zoneinfo`` (IANA zones, never fixed offsets).
Wall-clock rules at daylight-saving transitions (the same as PostgreSQL's ``AT TIME ZONE``, which the
launch snapshot uses for local-time schedules):

* a wall time that does not exist (spring forward, 02:30 in New York on the second Sunday of March) is
  read with the offset before the change, i.e. it lands one hour later (03:30 daylight time);
* a wall time that exists twice (fall back, 01:30) is the second of the two, in standard time
  (``fold=1``), as PostgreSQL reads it.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dateutil.rrule import rrulestr

from engagement.errors import ValidationFailed

UTC = dt.UTC


def zone_get(name: str, *, fallback: str = "UTC") -> ZoneInfo:
    """The zone ``name``, or ``fallback`` when the name is empty or unknown."""
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def zone_validate(name: str, *, field: str) -> str:
    if name not in available_timezones():
        raise ValidationFailed(f"unknown time zone {name!r} (an IANA name such as Europe/Oslo)", field=field)
    return name


def wall_to_utc(day: dt.date, at: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The instant the clocks in ``zone`` show ``day`` ``at`` (DST rules in the module docstring)."""
    naive = dt.datetime.combine(day, at.replace(tzinfo=None))
    first = naive.replace(tzinfo=zone)
    second = naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():
        exists = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive
        if exists:  # twice that day: the standard-time one
            return second.astimezone(UTC)
    return first.astimezone(UTC)


def rrule_validate(rule: str, *, start: dt.datetime, zone: str) -> None:
    """ValidationFailed unless ``rule`` is an RRULE dateutil reads with a next occurrence."""
    try:
        rrule_next(rule=rule, start=start, zone=zone, after=start - dt.timedelta(seconds=1))
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(f"invalid RRULE: {exc}", field="rrule") from exc


def rrule_next(*, rule: str, start: dt.datetime, zone: str, after: dt.datetime) -> dt.datetime | None:
    """The first occurrence strictly after ``after`` (UTC) of ``rule`` with DTSTART ``start``, whose
    times are wall-clock times in ``zone`` (so "daily at 09:00 Europe/Oslo" stays 09:00 across DST).
    None when the rule has no more occurrences (COUNT/UNTIL)."""
    tz = zone_get(zone)
    local_start = start.astimezone(tz).replace(tzinfo=None)
    text = rule.strip()
    if not text.upper().startswith(("RRULE:", "DTSTART")):
        text = "RRULE:" + text
    recurrence = rrulestr(text, dtstart=local_start, ignoretz=True)
    # Step through local wall times: rrule works on naive values, so compare after converting each.
    local_after = after.astimezone(tz).replace(tzinfo=None) - dt.timedelta(hours=3)
    candidate = recurrence.after(local_after, inc=False)
    for _ in range(1000):
        if candidate is None:
            return None
        instant = candidate.replace(tzinfo=tz).astimezone(UTC)
        if instant > after:
            return instant
        candidate = recurrence.after(candidate, inc=False)
    return None


def quiet_hours_end(*, now: dt.datetime, zone: ZoneInfo, start: dt.time, end: dt.time) -> dt.datetime | None:
    """If ``now`` falls in the daily quiet window [start, end) of the recipient's ``zone`` (a window
    may cross midnight: 21:00-08:00), the UTC instant the window ends; else None.

    The end is a wall-clock time, so on a DST day the window is an hour shorter or longer in real time.
    """
    if start == end:
        return None
    local = now.astimezone(zone)
    t = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= t < end
        end_day = local.date()
    else:  # crosses midnight
        inside = t >= start or t < end
        end_day = local.date() + dt.timedelta(days=1) if t >= start else local.date()
    if not inside:
        return None
    until = wall_to_utc(end_day, end, zone)
    if until <= now:  # the end time does not exist that day (DST gap): an hour after
        until = now + dt.timedelta(minutes=1)
    return until
