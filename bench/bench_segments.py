"""Segment counts at scale, each against a hand-written raw ``COUNT(*)`` with the same predicate, measured
interleaved in the same run on the same connection.

1,000,000 customers (``BENCH_SEGMENT_CUSTOMERS`` to change it) are written by SQL straight into the
product's tables (fixture data, then ANALYZE): a phone each, attributes ``plan`` (free/pro/team) and
``ltv`` (a number), a ``vip`` tag on 5%, an SMS marketing opt-in on 30% (a later channel-wide STOP on a
tenth of those), 1% merged away and 1% erased.

* ``profile`` — plan is "pro" AND ltv > 1000 AND tagged vip: ``segment_count`` (the rule tree compiled
  and run) against ``SELECT count(*) … WHERE attributes @> … AND (attributes->'ltv') > … AND tags @> …``.
* ``consent`` — SMS marketing opted in as the ledger derives it (the newest of the purpose's own and the
  channel-wide rows), AND plan is not "free": against a raw query using ``DISTINCT ON``.

Aim (from the issue): the product at least 50% of the raw query's speed, and under 2 s. Nothing asserts
a timing; the ratios are results. Counts that differ from the raw query's are an error.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from bench import harness
from bench.harness import BenchResult, Context

CUSTOMERS = int(os.environ.get("BENCH_SEGMENT_CUSTOMERS", "1000000"))
ROUNDS = 5

PROFILE_RULES = {
    "type": "and",
    "rules": [
        {"type": "attribute", "key": "plan", "operator": "equals", "value": "pro"},
        {"type": "attribute", "key": "ltv", "operator": "greater_than", "value": 1000},
        {"type": "tag", "value": "vip"},
    ],
}
PROFILE_RAW = (
    "SELECT count(*) FROM customers_customer WHERE workspace_id = %(ws)s AND merged_into_id IS NULL"
    " AND erased_at IS NULL AND attributes @> '{\"plan\": \"pro\"}' AND (attributes -> 'ltv') > '1000'::jsonb"
    " AND tags @> '[\"vip\"]'"
)
CONSENT_RULES = {
    "type": "and",
    "rules": [
        {"type": "consent", "channel": "sms", "purpose": "marketing", "state": "opted_in"},
        {"type": "not", "rule": {"type": "attribute", "key": "plan", "operator": "equals", "value": "free"}},
    ],
}
# On this fixture (no channel-wide opt-ins) "opted in" is: the newest of the own and channel-wide rows
# is the purpose's own opt-in.
CONSENT_RAW = (
    "SELECT count(*) FROM customers_customer c WHERE c.workspace_id = %(ws)s AND c.merged_into_id IS NULL"
    ' AND c.erased_at IS NULL AND NOT (c.attributes @> \'{"plan": "free"}\')'
    " AND c.id IN (SELECT customer_id FROM (SELECT DISTINCT ON (customer_id) customer_id, purpose, status"
    " FROM customers_consentevent WHERE workspace_id = %(ws)s AND channel = 'sms'"
    " AND purpose IN ('marketing', '') ORDER BY customer_id, occurred_at DESC, id DESC) newest"
    " WHERE purpose = 'marketing' AND status = 'opted_in')"
)


def _fixture(raw: Any, workspace_id: int) -> float:
    n = CUSTOMERS
    t0 = time.perf_counter()
    with raw.cursor() as cur:
        cur.execute("SELECT pg_get_serial_sequence('customers_customer', 'id')")
        sequence = cur.fetchone()[0]
        cur.execute("SELECT nextval(%s)", [sequence])
        base = int(cur.fetchone()[0])
        cur.execute("SELECT setval(%s, %s)", [sequence, base + n])
        cur.execute(
            "INSERT INTO customers_customer (id, workspace_id, display_name, attributes, tags, timezone,"
            " preferred_channel, created_at, updated_at, merged_into_id, erased_at)"
            " SELECT %(base)s + g, %(ws)s, 'Person ' || g,"
            " jsonb_build_object('plan', (ARRAY['free', 'pro', 'team'])[1 + g %% 3],"
            " 'ltv', (g::bigint * 7919) %% 5000),"
            " CASE WHEN g %% 20 = 0 THEN '[\"vip\"]'::jsonb ELSE '[]'::jsonb END, '', '',"
            " now() - interval '30 days', now() - interval '30 days',"
            " CASE WHEN g %% 100 = 1 THEN %(base)s ELSE NULL END,"
            " CASE WHEN g %% 100 = 2 THEN now() ELSE NULL END"
            " FROM generate_series(0, %(n)s - 1) AS g",
            {"base": base, "ws": workspace_id, "n": n},
        )
        cur.execute(
            "INSERT INTO customers_identity (workspace_id, customer_id, kind, value, verified, first_channel,"
            " first_seen_at, last_channel, last_seen_at)"
            " SELECT %(ws)s, %(base)s + g, 'phone', '+1650' || (2000000 + g)::text, true, 'sms',"
            " now() - interval '30 days', 'sms', now() - interval '1 day'"
            " FROM generate_series(0, %(n)s - 1) AS g",
            {"base": base, "ws": workspace_id, "n": n},
        )
        cur.execute(
            "INSERT INTO customers_consentevent (workspace_id, customer_id, channel, purpose, status, source,"
            " address, evidence, occurred_at, created_at)"
            " SELECT %(ws)s, %(base)s + g, 'sms', 'marketing', 'opted_in', 'import', '', '{}'::jsonb,"
            " now() - interval '20 days', now() FROM generate_series(0, %(n)s - 1) AS g WHERE g %% 10 < 3"
            " UNION ALL"
            " SELECT %(ws)s, %(base)s + g, 'sms', '', 'opted_out', 'sms_keyword', '', '{}'::jsonb,"
            " now() - interval '5 days', now() FROM generate_series(0, %(n)s - 1) AS g WHERE g %% 100 = 3",
            {"base": base, "ws": workspace_id, "n": n},
        )
        for table in ("customers_customer", "customers_identity", "customers_consentevent"):
            cur.execute(f"ANALYZE {table}")
    return time.perf_counter() - t0


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def run(ctx: Context) -> BenchResult:
    from django.db import connection

    from customers.profile import attribute_define
    from engagement.models import Workspace
    from engagement.segments.services import segment_count, segment_create

    errors: list[str] = []
    workspace = Workspace.objects.create(name="Bench segments", slug="bench-segments")
    attribute_define(workspace=workspace, key="plan", label="Plan", type="string")
    attribute_define(workspace=workspace, key="ltv", label="Lifetime value", type="number")
    connection.ensure_connection()
    raw = connection.connection
    harness.log(f"segments: loading {CUSTOMERS} customers")
    load_s = _fixture(raw, workspace.pk)
    harness.log(f"segments: loaded and analyzed in {load_s:.1f} s")

    scenarios = {
        "profile": (segment_create(workspace=workspace, name="Pro VIPs", rules=PROFILE_RULES), PROFILE_RAW),
        "consent": (
            segment_create(workspace=workspace, name="SMS opt-ins", rules=CONSENT_RULES),
            CONSENT_RAW,
        ),
    }
    data: dict[str, Any] = {"customers": CUSTOMERS, "load_seconds": round(load_s, 1)}
    lines = [f"segments — {CUSTOMERS:,} customers (fixture loaded in {load_s:.1f} s), {ROUNDS} rounds"]
    clock = time.perf_counter
    for name, (segment, sql) in scenarios.items():
        times: dict[str, list[float]] = {"raw": [], "product": []}
        counts: dict[str, set[int]] = {"raw": set(), "product": set()}
        with raw.cursor() as cur:
            cur.execute(sql, {"ws": workspace.pk})  # warm-up, both
            segment_count(segment=segment)
            for _ in range(ROUNDS):
                t0 = clock()
                cur.execute(sql, {"ws": workspace.pk})
                counts["raw"].add(int(cur.fetchone()[0]))
                times["raw"].append(clock() - t0)
                t0 = clock()
                counts["product"].add(segment_count(segment=segment))
                times["product"].append(clock() - t0)
        raw_ms, product_ms = _median_ms(times["raw"]), _median_ms(times["product"])
        ratio = raw_ms / product_ms if product_ms else float("nan")
        same = counts["raw"] == counts["product"] and len(counts["raw"]) == 1
        if not same:
            errors.append(f"{name}: counts differ: raw {counts['raw']} vs product {counts['product']}")
        data[name] = {
            "count": sorted(counts["product"]),
            "raw_ms": round(raw_ms, 1),
            "product_ms": round(product_ms, 1),
            "speed_vs_raw": round(ratio, 3),
            "aim_met": ratio >= 0.5 and product_ms < 2000,
        }
        lines.append(
            f"  {name:8} count {sorted(counts['product'])}: product {product_ms:8.1f} ms, raw COUNT(*) "
            f"{raw_ms:8.1f} ms → {ratio:.0%} of raw speed (aim ≥ 50% and < 2 s: "
            f"{'met' if data[name]['aim_met'] else 'missed'})"
        )
    return BenchResult(name="segments", data=data, report="\n".join(lines), errors=errors)
