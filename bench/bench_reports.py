"""Reports at scale: every report of ``engagement.reports`` over 30 days, per day and per week, against
one raw indexed aggregate query over the same rows, measured interleaved in the same run on the same
connection.

Fixture (SQL straight into the product's tables, then VACUUM ANALYZE): ``BENCH_REPORTS_INTERACTIONS``
interactions (default 1,000,000) spread over the last 30 days, in conversations of 10 messages
(inbound and agent replies alternating, 4 minutes apart) on an SMS and an email channel, over
``BENCH_REPORTS_CUSTOMERS`` customers (default 20,000); 12 agents in 3 teams assign round-robin; 80% of
the conversations are resolved (one resolution row each, 1-6 hours after opening) and a quarter of the
resolutions have a CSAT answer (scores 1-5).

Reports (``report_get`` with the console's default filters: the 30 days up to today, UTC, no channel,
team or assignee filter): volume, first response, resolution, agent load, team load, CSAT; each per
day and per week. Baseline: ``count(*)`` of the same interactions grouped by day (an index-only scan
of ``interaction_ws_created_idx``). Median of ``ROUNDS`` rounds, report and baseline alternating.

Aim (issue 13): "indexed aggregate queries that stay fast at a million interactions" — no number is
given; the report prints each report's ms and its ratio to the baseline. Nothing asserts a timing.
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import harness
from bench.harness import BenchResult, Context

INTERACTIONS = int(os.environ.get("BENCH_REPORTS_INTERACTIONS", "1000000"))
CUSTOMERS = int(os.environ.get("BENCH_REPORTS_CUSTOMERS", "20000"))
PER_CONVERSATION = 10
AGENTS = 12
TEAMS = 3
DAYS = 30
ROUNDS = int(os.environ.get("BENCH_REPORTS_ROUNDS", "5"))

BASELINE_SQL = (
    "SELECT date_trunc('day', created_at AT TIME ZONE 'UTC')::date, count(*)"
    " FROM engagement_interaction WHERE workspace_id = %(ws)s"
    " AND created_at >= %(start)s AND created_at < %(end)s GROUP BY 1 ORDER BY 1"
)


def _fixture(
    raw: Any, *, workspace_id: int, channel_ids: list[int], agent_ids: list[int], team_ids: list[int]
) -> float:
    """Load the rows; returns the seconds it took."""
    t0 = time.perf_counter()
    conversations = INTERACTIONS // PER_CONVERSATION
    span = DAYS * 86400 - 3 * 3600  # every conversation starts (and its messages fall) within the 30 days
    params = {
        "ws": workspace_id,
        "nc": CUSTOMERS,
        "nconv": conversations,
        "per": PER_CONVERSATION,
        "channels": channel_ids,
        "agents": agent_ids,
        "teams": team_ids,
        "span": span,
        "days": DAYS,
    }
    with raw.cursor() as cur:
        cur.execute("SELECT pg_get_serial_sequence('customers_customer', 'id')")
        sequence = cur.fetchone()[0]
        cur.execute("SELECT nextval(%s)", [sequence])
        params["cbase"] = base = int(cur.fetchone()[0])
        cur.execute("SELECT setval(%s, %s)", [sequence, base + CUSTOMERS])
        cur.execute(
            "INSERT INTO customers_customer (id, workspace_id, display_name, attributes, tags, timezone,"
            " preferred_channel, created_at, updated_at)"
            " SELECT %(cbase)s + g, %(ws)s, 'Customer ' || g, '{}'::jsonb, '[]'::jsonb, '', '',"
            " now() - interval '60 days', now() FROM generate_series(0, %(nc)s - 1) AS g",
            params,
        )
        cur.execute("SELECT pg_get_serial_sequence('engagement_conversation', 'id')")
        sequence = cur.fetchone()[0]
        cur.execute("SELECT nextval(%s)", [sequence])
        params["vbase"] = base = int(cur.fetchone()[0])
        cur.execute("SELECT setval(%s, %s)", [sequence, base + conversations])
        # Conversation k starts at (k / nconv) of the span after the start of the window (UTC midnight
        # 29 days before today), on channel k % 2, assigned to agent k % AGENTS (team = that agent's).
        cur.execute(
            "CREATE TEMP TABLE bench_conv AS SELECT k, %(vbase)s + k AS id,"
            " %(cbase)s + (k %% %(nc)s) AS customer_id,"
            " (%(channels)s::bigint[])[1 + k %% 2] AS channel_id,"
            " (%(agents)s::int[])[1 + k %% array_length(%(agents)s::int[], 1)] AS assignee_id,"
            " (%(teams)s::bigint[])[1 + (k %% array_length(%(agents)s::int[], 1))"
            "     %% array_length(%(teams)s::bigint[], 1)] AS team_id,"
            " date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
            "   - (%(days)s - 1) * interval '1 day'"
            "   + (k::float8 * %(span)s / %(nconv)s) * interval '1 second' AS started_at,"
            " k %% 5 <> 0 AS resolved"
            " FROM generate_series(0, %(nconv)s - 1) AS k",
            params,
        )
        cur.execute(
            "INSERT INTO engagement_conversation (id, workspace_id, customer_id, channel_id, status, subject,"
            " last_activity_at, last_message_preview, created_at, updated_at, assignee_id, team_id)"
            " SELECT id, %(ws)s, customer_id, channel_id, CASE WHEN resolved THEN 'resolved' ELSE 'open' END,"
            " '', started_at + interval '40 minutes', '', started_at, started_at + interval '40 minutes',"
            " assignee_id, team_id FROM bench_conv",
            params,
        )
        harness.log("reports: customers and conversations loaded; interactions next")
        cur.execute(
            "INSERT INTO engagement_interaction (workspace_id, customer_id, channel_id, conversation_id,"
            " kind, direction, author_id, body, customer_address, status,"
            " status_changed_at, provider_message_id,"
            " email_message_id, error_code, error_message, send_attempts, metadata, call_outcome, created_at)"
            " SELECT %(ws)s, c.customer_id, c.channel_id, c.id, 'message',"
            " CASE WHEN p %% 2 = 0 THEN 'inbound' ELSE 'outbound' END,"
            " CASE WHEN p %% 2 = 1 THEN c.assignee_id END, 'hello', '', CASE WHEN p %% 2 = 0 THEN 'received'"
            " ELSE 'delivered' END, c.started_at + p * interval '4 minutes', '', '', '', '', 0,"
            " '{}'::jsonb, '',"
            " c.started_at + p * interval '4 minutes' + (c.k %% 7) * interval '1 second'"
            " FROM bench_conv c CROSS JOIN generate_series(0, %(per)s - 1) AS p ORDER BY c.k, p",
            params,
        )
        harness.log("reports: interactions loaded; resolutions and CSAT next")
        cur.execute(
            "INSERT INTO engagement_conversationresolution (workspace_id, conversation_id, customer_id,"
            " channel_id, assignee_id, resolved_by_id, opened_at, resolved_at, csat_sent_at, csat_skipped)"
            " SELECT %(ws)s, id, customer_id, channel_id, assignee_id, assignee_id, started_at,"
            " started_at + interval '1 hour' + (k %% 300) * interval '1 minute',"
            " CASE WHEN k %% 10 < 3"
            "   THEN started_at + interval '1 hour' + (k %% 300) * interval '1 minute' END,"
            " '' FROM bench_conv WHERE resolved ORDER BY k",
            params,
        )
        cur.execute(
            "INSERT INTO engagement_csatresponse (workspace_id, resolution_id, conversation_id, customer_id,"
            " score, comment, source, responded_at)"
            " SELECT workspace_id, id, conversation_id, customer_id,"
            " 1 + abs(hashint8(conversation_id)) %% 5, '',"
            " 'sms', csat_sent_at + interval '10 minutes'"
            " FROM engagement_conversationresolution WHERE workspace_id = %(ws)s AND csat_sent_at IS NOT NULL"
            " ORDER BY id",
            params,
        )
        cur.execute("DROP TABLE bench_conv")
        for table in (
            "customers_customer",
            "engagement_conversation",
            "engagement_interaction",
            "engagement_conversationresolution",
            "engagement_csatresponse",
        ):
            cur.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - t0


def _counts(raw: Any, workspace_id: int) -> dict[str, int]:
    out = {}
    with raw.cursor() as cur:
        for name, table in (
            ("interactions", "engagement_interaction"),
            ("conversations", "engagement_conversation"),
            ("resolutions", "engagement_conversationresolution"),
            ("csat", "engagement_csatresponse"),
        ):
            cur.execute(f"SELECT count(*) FROM {table} WHERE workspace_id = %s", [workspace_id])
            out[name] = int(cur.fetchone()[0])
    return out


def run(ctx: Context) -> BenchResult:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from engagement.models import Channel, Membership, Role, Team, Workspace
    from engagement.reports.selectors import REPORTS, report_filters_build, report_get

    errors: list[str] = []
    workspace = Workspace.objects.create(name="Bench reports", slug="bench-reports")
    channels = [
        Channel.objects.create(
            workspace=workspace, kind="sms", provider="sandbox", name="SMS", address="+16505550000"
        ),
        Channel.objects.create(
            workspace=workspace, kind="email", provider="sandbox", name="Email", address="help@bench.example"
        ),
    ]
    user_model = get_user_model()
    agents = []
    for n in range(AGENTS):
        user = user_model.objects.create_user(
            username=f"bench-agent-{n}", first_name="Agent", last_name=str(n)
        )
        Membership.objects.create(workspace=workspace, user=user, role=Role.AGENT)
        agents.append(user)
    teams = [Team.objects.create(workspace=workspace, name=f"Team {t}") for t in range(TEAMS)]
    for n, user in enumerate(agents):
        teams[n % TEAMS].members.add(user)

    connection.ensure_connection()
    raw = connection.connection
    raw.autocommit = True
    harness.log(f"reports: loading {INTERACTIONS:,} interactions over {DAYS} days")
    load_s = _fixture(
        raw,
        workspace_id=workspace.pk,
        channel_ids=[c.pk for c in channels],
        agent_ids=[u.pk for u in agents],
        team_ids=[t.pk for t in teams],
    )
    counts = _counts(raw, workspace.pk)
    harness.log(f"reports: loaded and analyzed in {load_s:.1f} s: {counts}")
    if counts["interactions"] != INTERACTIONS - INTERACTIONS % PER_CONVERSATION:
        errors.append(f"fixture: {counts['interactions']} interactions loaded")

    today = datetime.now(UTC).date()
    start = today - timedelta(days=DAYS - 1)
    filters = {
        interval: report_filters_build(start=start, end=today, interval=interval, today=today)
        for interval in ("day", "week")
    }
    begin, finish = filters["day"].bounds()
    base_params = {"ws": workspace.pk, "start": begin, "end": finish}
    data: dict[str, Any] = {**counts, "load_seconds": round(load_s, 1), "machine_load": os.getloadavg()}
    lines = [
        f"reports — {counts['interactions']:,} interactions, {counts['conversations']:,} conversations,"
        f" {counts['resolutions']:,} resolutions, {counts['csat']:,} CSAT answers over {DAYS} days"
        f" (fixture loaded in {load_s:.1f} s), median of {ROUNDS} rounds;"
        f" load average at start {os.getloadavg()[0]:.1f}"
    ]
    clock = time.perf_counter
    baseline_all: list[float] = []
    with raw.cursor() as cur:
        cur.execute(BASELINE_SQL, base_params)
        baseline_rows = cur.fetchall()
        if sum(int(r[1]) for r in baseline_rows) != counts["interactions"]:
            errors.append("baseline: the 30 days do not hold every interaction")
        for name in REPORTS:
            for interval, flt in filters.items():
                report_get(workspace=workspace, name=name, filters=flt)  # warm-up
                times: dict[str, list[float]] = {"raw": [], "product": []}
                report = None
                for _ in range(ROUNDS):
                    t0 = clock()
                    cur.execute(BASELINE_SQL, base_params)
                    cur.fetchall()
                    times["raw"].append(clock() - t0)
                    t0 = clock()
                    report = report_get(workspace=workspace, name=name, filters=flt)
                    times["product"].append(clock() - t0)
                assert report is not None
                if not report.rows:
                    errors.append(f"{name} per {interval}: no rows")
                raw_ms = statistics.median(times["raw"]) * 1000
                product_ms = statistics.median(times["product"]) * 1000
                baseline_all.extend(times["raw"])
                key = f"{name} per {interval}"
                data[key] = {
                    "rows": len(report.rows),
                    "product_ms": round(product_ms, 1),
                    "baseline_ms": round(raw_ms, 1),
                    "ratio": round(product_ms / raw_ms, 2),
                }
                lines.append(
                    f"  {key:26} {len(report.rows):4} rows: {product_ms:8.1f} ms; baseline {raw_ms:6.1f} ms;"
                    f" {product_ms / raw_ms:5.2f}x the baseline"
                )
    data["baseline_median_ms"] = round(statistics.median(baseline_all) * 1000, 1)
    data["machine_load_end"] = os.getloadavg()
    lines.append(
        f"  baseline (count(*) by day over interaction_ws_created_idx)"
        f" median {data['baseline_median_ms']} ms;"
        f" load average at end {os.getloadavg()[0]:.1f}"
    )
    return BenchResult(name="reports", data=data, report="\n".join(lines), errors=errors)
