"""Report selectors: one aggregate query each, bucketed by day or ISO week in a time zone.

Every report takes a :class:`ReportFilters`: a date range (inclusive, in ``zone``), an ``interval``
("day" or "week", weeks starting Monday as PostgreSQL's ``date_trunc``), optional channel kinds and
optional ``assignee_ids`` (the conversation's assignee; a team filter, ``team_ids``, maps onto it as
the ids of the teams' members: :func:`report_team_member_ids`). Each returns a :class:`Report`:
column names, rows (JSON-able values: ISO dates,
numbers, seconds as floats) and a chart description Chart.js draws as it is.

* ``volume`` — messages and calls by bucket, channel kind and direction (notes excluded);
  index ``interaction_ws_created_idx`` (workspace, created_at) INCLUDE (channel, direction, kind,
  conversation);
* ``first_response`` — conversations whose first customer message falls in the range: how many, how
  many a person answered, mean / median / 90th percentile seconds to the first human reply (any
  channel, as the SLA counts it); ``conv_ws_created_idx``, then per conversation one index-only probe
  of ``interaction_conv_inbound_idx`` (its first customer message, computed once: the CTE is
  ``MATERIALIZED``, inlined it ran up to four times per row) and one of ``interaction_cust_reply_idx``;
* ``resolution`` — resolutions in the range: count, mean / median / p90 seconds from opening (or
  reopening) to resolving; index ``resolution_ws_time_idx``;
* ``agent_load`` — per member: conversations assigned and not resolved now, replies written and
  conversations resolved in the range; replies from ``interaction_ws_reply_idx`` (index-only);
* ``team_load`` — per team: members, open and unassigned conversations of the team now, replies and
  resolutions of its members in the range (replies: ``interaction_ws_reply_idx``, index-only);
* ``csat`` — answers in the range: count, mean score, share satisfied (4 or 5); index
  ``csat_ws_time_idx``.
"""

from __future__ import annotations

import csv
import functools
import io
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection

from engagement.errors import NotFound, ValidationFailed
from engagement.models import Team, Workspace
from engagement.models.channels import ChannelKind

MAX_DAYS = 731
INTERVALS = ("day", "week")


class ReportInvalid(ValidationFailed):
    code = "report_invalid"


class ReportNotFound(NotFound):
    code = "report_not_found"


@functools.cache
def _known_zones() -> frozenset[str]:
    """IANA zone names (PostgreSQL knows them all; a file name Python would open, like "localtime",
    is not one)."""
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


@dataclass(frozen=True)
class ReportFilters:
    start: date
    end: date  # inclusive
    interval: str = "day"
    channel_kinds: tuple[str, ...] = ()
    assignee_ids: tuple[int, ...] = ()
    zone: str = "UTC"
    # The teams asked for; ``assignee_ids`` then holds their members (narrowed by any assignee asked for),
    # and an empty ``assignee_ids`` matches nobody instead of everybody.
    team_ids: tuple[int, ...] = ()

    @property
    def all_assignees(self) -> bool:
        return not self.assignee_ids and not self.team_ids

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) in UTC: local midnights of ``start`` and the day after ``end``."""
        tz = zoneinfo.ZoneInfo(self.zone)
        begin = datetime.combine(self.start, time.min, tzinfo=tz).astimezone(UTC)
        finish = datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)
        return begin, finish


def report_filters_build(
    *,
    start: date | None,
    end: date | None,
    interval: str = "day",
    channel_kinds: list[str] | tuple[str, ...] = (),
    assignee_ids: list[int] | tuple[int, ...] = (),
    zone: str = "UTC",
    today: date | None = None,
    team_ids: list[int] | tuple[int, ...] = (),
    workspace: Workspace | None = None,
) -> ReportFilters:
    """Validated filters; defaults: the 30 days up to ``today``. Raises :class:`ReportInvalid` naming
    the field for an end before the start, a range over :data:`MAX_DAYS` days, an unknown interval,
    channel kind, zone or team.

    ``team_ids`` (needs ``workspace``) map onto ``assignee_ids``: the members of those teams, intersected
    with ``assignee_ids`` when both are given (each filter narrows). A team without members matches no
    conversation."""
    today = today or datetime.now(UTC).date()
    end = end or today
    start = start or end - timedelta(days=29)
    if end < start:
        raise ReportInvalid("the end is before the start", field="end")
    if (end - start).days + 1 > MAX_DAYS:
        raise ReportInvalid(f"at most {MAX_DAYS} days", field="start")
    if interval not in INTERVALS:
        raise ReportInvalid("interval is day or week", field="interval")
    unknown = set(channel_kinds) - set(ChannelKind.values)
    if unknown:
        raise ReportInvalid(f"unknown channel kind {sorted(unknown)[0]!r}", field="channel")
    if zone not in _known_zones():
        raise ReportInvalid(f"unknown time zone {zone!r}", field="zone")
    people = set(assignee_ids)
    teams = tuple(sorted(set(team_ids)))
    if teams:
        if workspace is None:
            raise ValueError("a team filter needs the workspace")
        members = report_team_member_ids(workspace=workspace, team_ids=teams)
        people = members & people if people else members
    return ReportFilters(
        start=start,
        end=end,
        interval=interval,
        channel_kinds=tuple(sorted(set(channel_kinds))),
        assignee_ids=tuple(sorted(people)),
        zone=zone,
        team_ids=teams,
    )


def report_team_member_ids(*, workspace: Workspace, team_ids: tuple[int, ...] | list[int]) -> set[int]:
    """User ids of the members of ``team_ids`` (teams of ``workspace``). Raises :class:`ReportInvalid`
    (field ``team``) naming a team id the workspace does not have."""
    wanted = set(team_ids)
    found = set(Team.objects.filter(workspace=workspace, pk__in=wanted).values_list("pk", flat=True))
    missing = sorted(wanted - found)
    if missing:
        raise ReportInvalid(f"no team {missing[0]} in this workspace", field="team")
    return set(Team.members.through.objects.filter(team_id__in=wanted).values_list("user_id", flat=True))


@dataclass
class Report:
    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    chart: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "columns": self.columns,
            "rows": self.rows,
            "summary": self.summary,
        }


def _params(workspace: Workspace, filters: ReportFilters) -> dict[str, Any]:
    begin, finish = filters.bounds()
    return {
        "ws": workspace.pk,
        "start": begin,
        "end": finish,
        "interval": filters.interval,
        "tz": filters.zone,
        "kinds": list(filters.channel_kinds),
        "assignees": list(filters.assignee_ids),
        "all_kinds": not filters.channel_kinds,
        "all_assignees": filters.all_assignees,
        "teams": list(filters.team_ids),
        "all_teams": not filters.team_ids,
    }


def _fetch(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _buckets(filters: ReportFilters) -> list[date]:
    """Every bucket start in the range, so charts show empty days as zero."""
    first = filters.start
    if filters.interval == "week":
        first = first - timedelta(days=first.weekday())
    step = timedelta(days=7 if filters.interval == "week" else 1)
    out = []
    while first <= filters.end:
        out.append(first)
        first += step
    return out


def _num(value: Any, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


# ---------------------------------------------------------------- the reports


_VOLUME_SQL = """
    SELECT date_trunc(%(interval)s, i.created_at AT TIME ZONE %(tz)s)::date AS bucket,
           ch.kind, i.direction, count(*)
      FROM engagement_interaction i
      JOIN engagement_channel ch ON ch.id = i.channel_id
                   AND (%(all_kinds)s OR ch.kind = ANY(%(kinds)s::text[]))
     WHERE i.workspace_id = %(ws)s AND i.created_at >= %(start)s AND i.created_at < %(end)s
       AND i.kind IN ('message', 'call')
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
# With an assignee filter: only interactions of conversations assigned to those members.
_VOLUME_ASSIGNEE_SQL = """
    SELECT date_trunc(%(interval)s, i.created_at AT TIME ZONE %(tz)s)::date AS bucket,
           ch.kind, i.direction, count(*)
      FROM engagement_interaction i
      JOIN engagement_channel ch ON ch.id = i.channel_id
                   AND (%(all_kinds)s OR ch.kind = ANY(%(kinds)s::text[]))
      JOIN engagement_conversation c
        ON c.id = i.conversation_id AND c.assignee_id = ANY(%(assignees)s::bigint[])
     WHERE i.workspace_id = %(ws)s AND i.created_at >= %(start)s AND i.created_at < %(end)s
       AND i.kind IN ('message', 'call')
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""


def report_volume(*, workspace: Workspace, filters: ReportFilters) -> Report:
    sql = _VOLUME_SQL if filters.all_assignees else _VOLUME_ASSIGNEE_SQL
    rows = _fetch(sql, _params(workspace, filters))
    buckets = _buckets(filters)
    series: dict[str, dict[date, int]] = {}
    for bucket, kind, direction, count in rows:
        series.setdefault(f"{kind} {direction}", {})[bucket] = int(count)
    return Report(
        name="volume",
        title="Volume by channel and direction",
        columns=["period", "channel", "direction", "count"],
        rows=[[b.isoformat(), kind, direction, int(n)] for b, kind, direction, n in rows],
        chart={
            "type": "bar",
            "stacked": True,
            "labels": [b.isoformat() for b in buckets],
            "datasets": [
                {"label": name, "data": [values.get(b, 0) for b in buckets]}
                for name, values in sorted(series.items())
            ],
        },
        summary={"total": sum(int(r[3]) for r in rows)},
    )


def _timing_report(
    *, name: str, title: str, sql: str, workspace: Workspace, filters: ReportFilters, count_label: str
) -> Report:
    rows = _fetch(sql, _params(workspace, filters))
    by_bucket = {r[0]: r for r in rows}
    buckets = _buckets(filters)
    out = [[r[0].isoformat(), int(r[1]), int(r[2]), _num(r[3]), _num(r[4]), _num(r[5])] for r in rows]
    total = sum(int(r[2]) for r in rows)
    weighted = sum(float(r[3]) * int(r[2]) for r in rows if r[3] is not None)
    return Report(
        name=name,
        title=title,
        columns=["period", count_label, "measured", "mean_seconds", "median_seconds", "p90_seconds"],
        rows=out,
        chart={
            "type": "line",
            "unit": "minutes",
            "labels": [b.isoformat() for b in buckets],
            "datasets": [
                {
                    "label": f"{label} (minutes)",
                    "data": [
                        None
                        if b not in by_bucket or by_bucket[b][i] is None
                        else round(float(by_bucket[b][i]) / 60, 1)
                        for b in buckets
                    ],
                }
                for label, i in (("median", 4), ("mean", 3), ("90th percentile", 5))
            ],
        },
        summary={"measured": total, "mean_seconds": _num(weighted / total) if total else None},
    )


def report_first_response(*, workspace: Workspace, filters: ReportFilters) -> Report:
    sql = """
        WITH conv AS MATERIALIZED (
            SELECT c.id, c.customer_id,
                   (SELECT min(i.created_at) FROM engagement_interaction i
                     WHERE i.conversation_id = c.id AND i.direction = 'inbound') AS first_in
              FROM engagement_conversation c
              JOIN engagement_channel ch ON ch.id = c.channel_id
                   AND (%(all_kinds)s OR ch.kind = ANY(%(kinds)s::text[]))
             WHERE c.workspace_id = %(ws)s AND c.created_at >= %(start)s - interval '1 day'
               AND c.created_at < %(end)s AND (%(all_assignees)s
                        OR c.assignee_id = ANY(%(assignees)s::bigint[]))
        ), timed AS (
            SELECT conv.first_in, extract(epoch FROM fr.at - conv.first_in) AS secs
              FROM conv
              LEFT JOIN LATERAL (
                  SELECT min(o.created_at) AS at FROM engagement_interaction o
                   WHERE o.customer_id = conv.customer_id AND o.direction = 'outbound'
                     AND o.author_id IS NOT NULL AND o.created_at >= conv.first_in
              ) fr ON true
             WHERE conv.first_in >= %(start)s AND conv.first_in < %(end)s
        )
        SELECT date_trunc(%(interval)s, first_in AT TIME ZONE %(tz)s)::date, count(*), count(secs),
               avg(secs), percentile_cont(0.5) WITHIN GROUP (ORDER BY secs),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY secs)
          FROM timed GROUP BY 1 ORDER BY 1
    """
    return _timing_report(
        name="first_response",
        title="First response time",
        sql=sql,
        workspace=workspace,
        filters=filters,
        count_label="conversations",
    )


def report_resolution(*, workspace: Workspace, filters: ReportFilters) -> Report:
    sql = """
        SELECT date_trunc(%(interval)s, r.resolved_at AT TIME ZONE %(tz)s)::date, count(*), count(*),
               avg(extract(epoch FROM r.resolved_at - r.opened_at)),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.resolved_at - r.opened_at)),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM r.resolved_at - r.opened_at))
          FROM engagement_conversationresolution r
          JOIN engagement_channel ch ON ch.id = r.channel_id
                   AND (%(all_kinds)s OR ch.kind = ANY(%(kinds)s::text[]))
         WHERE r.workspace_id = %(ws)s AND r.resolved_at >= %(start)s AND r.resolved_at < %(end)s
               AND (%(all_assignees)s
                        OR r.assignee_id = ANY(%(assignees)s::bigint[]))
         GROUP BY 1 ORDER BY 1
    """
    return _timing_report(
        name="resolution",
        title="Resolution time",
        sql=sql,
        workspace=workspace,
        filters=filters,
        count_label="resolutions",
    )


def report_agent_load(*, workspace: Workspace, filters: ReportFilters) -> Report:
    params = _params(workspace, filters)
    open_now = dict(
        _fetch(
            """SELECT c.assignee_id, count(*) FROM engagement_conversation c
                  JOIN engagement_channel ch ON ch.id = c.channel_id
                   AND (%(all_kinds)s OR ch.kind = ANY(%(kinds)s::text[]))
                 WHERE c.workspace_id = %(ws)s AND c.status <> 'resolved' AND c.assignee_id IS NOT NULL
                       AND (%(all_assignees)s
                        OR c.assignee_id = ANY(%(assignees)s::bigint[]))
                 GROUP BY 1""",
            params,
        )
    )
    replies = dict(
        _fetch(
            """SELECT i.author_id, count(*) FROM engagement_interaction i
                  JOIN engagement_channel ch ON ch.id = i.channel_id
                   AND (%(all_kinds)s OR ch.kind = ANY(%(kinds)s::text[]))
                 WHERE i.workspace_id = %(ws)s AND i.created_at >= %(start)s AND i.created_at < %(end)s
                   AND i.direction = 'outbound' AND i.author_id IS NOT NULL
                       AND (%(all_assignees)s
                        OR i.author_id = ANY(%(assignees)s::bigint[]))
                 GROUP BY 1""",
            params,
        )
    )
    resolved = dict(
        _fetch(
            """SELECT coalesce(r.resolved_by_id, r.assignee_id), count(*)
                  FROM engagement_conversationresolution r
                  JOIN engagement_channel ch ON ch.id = r.channel_id
                   AND (%(all_kinds)s OR ch.kind = ANY(%(kinds)s::text[]))
                 WHERE r.workspace_id = %(ws)s AND r.resolved_at >= %(start)s AND r.resolved_at < %(end)s
                   AND coalesce(r.resolved_by_id, r.assignee_id) IS NOT NULL
                       AND (%(all_assignees)s
                        OR coalesce(r.resolved_by_id, r.assignee_id) = ANY(%(assignees)s::bigint[]))
                 GROUP BY 1""",
            params,
        )
    )
    ids = sorted(set(open_now) | set(replies) | set(resolved))
    users = {u.pk: u for u in get_user_model().objects.filter(pk__in=ids)}
    names = {
        pk: (users[pk].get_full_name() or users[pk].get_username()) if pk in users else str(pk) for pk in ids
    }
    rows = [
        [pk, names[pk], int(open_now.get(pk, 0)), int(replies.get(pk, 0)), int(resolved.get(pk, 0))]
        for pk in sorted(ids, key=lambda pk: names[pk].lower())
    ]
    return Report(
        name="agent_load",
        title="Agent load",
        columns=["agent_id", "agent", "open_assigned", "replies", "resolved"],
        rows=rows,
        chart={
            "type": "bar",
            "indexAxis": "y",
            "labels": [r[1] for r in rows],
            "datasets": [
                {"label": "open assigned", "data": [r[2] for r in rows]},
                {"label": "replies", "data": [r[3] for r in rows]},
                {"label": "resolved", "data": [r[4] for r in rows]},
            ],
        },
    )


_TEAM_LOAD_SQL = """
    SELECT t.id, t.name,
           (SELECT count(*) FROM engagement_team_members m WHERE m.team_id = t.id),
           (SELECT count(*) FROM engagement_conversation c
              JOIN engagement_channel ch ON ch.id = c.channel_id
                   AND (%(all_kinds)s OR ch.kind = ANY(%(kinds)s::text[]))
             WHERE c.workspace_id = %(ws)s AND c.team_id = t.id AND c.status <> 'resolved'),
           (SELECT count(*) FROM engagement_conversation c
              JOIN engagement_channel ch ON ch.id = c.channel_id
                   AND (%(all_kinds)s OR ch.kind = ANY(%(kinds)s::text[]))
             WHERE c.workspace_id = %(ws)s AND c.team_id = t.id AND c.status <> 'resolved'
               AND c.assignee_id IS NULL),
           (SELECT count(*) FROM engagement_interaction i
              JOIN engagement_channel ch ON ch.id = i.channel_id
                   AND (%(all_kinds)s OR ch.kind = ANY(%(kinds)s::text[]))
             WHERE i.workspace_id = %(ws)s AND i.created_at >= %(start)s AND i.created_at < %(end)s
               AND i.direction = 'outbound'
               AND i.author_id IN (SELECT m.user_id FROM engagement_team_members m WHERE m.team_id = t.id)),
           (SELECT count(*) FROM engagement_conversationresolution r
              JOIN engagement_channel ch ON ch.id = r.channel_id
                   AND (%(all_kinds)s OR ch.kind = ANY(%(kinds)s::text[]))
             WHERE r.workspace_id = %(ws)s AND r.resolved_at >= %(start)s AND r.resolved_at < %(end)s
               AND coalesce(r.resolved_by_id, r.assignee_id)
                   IN (SELECT m.user_id FROM engagement_team_members m WHERE m.team_id = t.id))
      FROM engagement_team t
     WHERE t.workspace_id = %(ws)s AND (%(all_teams)s OR t.id = ANY(%(teams)s::bigint[]))
     ORDER BY lower(t.name), t.id
"""


def report_team_load(*, workspace: Workspace, filters: ReportFilters) -> Report:
    """Per team (only the filtered teams when ``team_ids`` is set; the assignee filter does not apply:
    rows are teams): members, the team's conversations not resolved now (``open``) and those of them
    nobody is assigned (``unassigned``), replies written and conversations resolved in the range by
    its members. One statement; a member of two teams counts in both."""
    rows = [
        [int(pk), name, int(members), int(open_), int(unassigned), int(replies), int(resolved)]
        for pk, name, members, open_, unassigned, replies, resolved in _fetch(
            _TEAM_LOAD_SQL, _params(workspace, filters)
        )
    ]
    return Report(
        name="team_load",
        title="Load per team",
        columns=["team_id", "team", "members", "open", "unassigned", "replies", "resolved"],
        rows=rows,
        chart={
            "type": "bar",
            "indexAxis": "y",
            "labels": [r[1] for r in rows],
            "datasets": [
                {"label": "open", "data": [r[3] for r in rows]},
                {"label": "unassigned", "data": [r[4] for r in rows]},
                {"label": "replies", "data": [r[5] for r in rows]},
                {"label": "resolved", "data": [r[6] for r in rows]},
            ],
        },
        summary={"open": sum(r[3] for r in rows), "unassigned": sum(r[4] for r in rows)},
    )


def report_csat(*, workspace: Workspace, filters: ReportFilters) -> Report:
    sql = """
        SELECT date_trunc(%(interval)s, a.responded_at AT TIME ZONE %(tz)s)::date, count(*),
               avg(a.score), count(*) FILTER (WHERE a.score >= 4)
          FROM engagement_csatresponse a
          JOIN engagement_conversationresolution r ON r.id = a.resolution_id
          JOIN engagement_channel ch ON ch.id = r.channel_id
                   AND (%(all_kinds)s OR ch.kind = ANY(%(kinds)s::text[]))
         WHERE a.workspace_id = %(ws)s AND a.responded_at >= %(start)s AND a.responded_at < %(end)s
               AND (%(all_assignees)s
                        OR r.assignee_id = ANY(%(assignees)s::bigint[]))
         GROUP BY 1 ORDER BY 1
    """
    rows = _fetch(sql, _params(workspace, filters))
    by_bucket = {r[0]: r for r in rows}
    buckets = _buckets(filters)
    total = sum(int(r[1]) for r in rows)
    satisfied = sum(int(r[3]) for r in rows)
    return Report(
        name="csat",
        title="Customer satisfaction (CSAT)",
        columns=["period", "responses", "mean_score", "satisfied_percent"],
        rows=[[r[0].isoformat(), int(r[1]), _num(r[2], 2), _num(100 * int(r[3]) / int(r[1]))] for r in rows],
        chart={
            "type": "line",
            "labels": [b.isoformat() for b in buckets],
            "datasets": [
                {
                    "label": "satisfied % (4-5)",
                    "data": [
                        _num(100 * int(by_bucket[b][3]) / int(by_bucket[b][1])) if b in by_bucket else None
                        for b in buckets
                    ],
                }
            ],
        },
        summary={"responses": total, "satisfied_percent": _num(100 * satisfied / total) if total else None},
    )


REPORTS: dict[str, Callable[..., Report]] = {
    "volume": report_volume,
    "first_response": report_first_response,
    "resolution": report_resolution,
    "agent_load": report_agent_load,
    "team_load": report_team_load,
    "csat": report_csat,
}


def report_get(*, workspace: Workspace, name: str, filters: ReportFilters) -> Report:
    """The report ``name`` (one of :data:`REPORTS`). Raises :class:`ReportNotFound` for another name."""
    selector = REPORTS.get(name)
    if selector is None:
        raise ReportNotFound(f"no report {name!r}; reports: {', '.join(REPORTS)}")
    return selector(workspace=workspace, filters=filters)


def report_csv(report: Report) -> str:
    """The report's rows as CSV (RFC 4180) with its column names as the header."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(report.columns)
    for row in report.rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()
