"""Search at scale: the console's search box against one raw indexed query each, measured interleaved in
the same run on the same connection.

Fixture (SQL straight into the product's tables, then ANALYZE): ``BENCH_SEARCH_INTERACTIONS`` interactions
(default 1,000,000) over ``BENCH_SEARCH_CUSTOMERS`` customers (default 100,000, each with a name from 60
first names x 81 last names and a phone identity). Bodies are 8-19 words: half drawn from 40 common words
(each in roughly 1 message in 8), half from 20,000 rarer tokens (each in roughly 50 messages).

Scenarios (product = ``engagement.services.search``; raw = the same index, nothing else):

* ``message rare word`` — ``interaction_search`` for a token in ~50 messages, vs the raw
  ``… WHERE search_vector @@ to_tsquery(…) ORDER BY id DESC LIMIT 20``;
* ``message common word`` — a word in ~12% of the messages (product ranks the newest 1,000 matches);
* ``message two words`` — a common word and a rare token as a prefix, as typed;
* ``customer fuzzy name`` — ``customer_search`` for a misspelt full name, vs the raw trigram
  ``display_name %> …`` query;
* ``search box`` — ``workspace_search`` for a name: customers and messages, what one keystroke in the
  box costs (raw: the trigram query alone).

Aim (issue 13): an answer in under 200 ms over a million interactions. Nothing asserts a timing.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from bench import harness
from bench.harness import BenchResult, Context

INTERACTIONS = int(os.environ.get("BENCH_SEARCH_INTERACTIONS", "1000000"))
CUSTOMERS = int(os.environ.get("BENCH_SEARCH_CUSTOMERS", "100000"))
ROUNDS = 7
AIM_MS = 200.0
COMMON = [
    "the",
    "order",
    "please",
    "thanks",
    "hello",
    "refund",
    "delivery",
    "parcel",
    "address",
    "payment",
    "card",
    "invoice",
    "account",
    "help",
    "today",
    "tomorrow",
    "late",
    "missing",
    "damaged",
    "return",
    "exchange",
    "size",
    "colour",
    "price",
    "discount",
    "code",
    "shipping",
    "tracking",
    "number",
    "email",
    "phone",
    "change",
    "cancel",
    "subscription",
    "store",
    "open",
    "hours",
    "yes",
    "no",
    "ok",
]
RARE_TOKENS = 20000
FIRST = [
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Grace",
    "Alan",
    "Ada",
    "Katherine",
    "Margaret",
    "Dorothy",
    "Lisa",
    "Nancy",
    "Betty",
    "Sandra",
    "Ashley",
    "Kimberly",
    "Donna",
    "Emily",
    "Carol",
    "Michelle",
    "Amanda",
    "Melissa",
    "Deborah",
    "Stephanie",
    "Rebecca",
    "Laura",
    "Sharon",
    "Cynthia",
    "Kathleen",
    "Amy",
    "Shirley",
    "Angela",
    "Helen",
    "Anna",
    "Brenda",
    "Pamela",
    "Nicole",
    "Samantha",
    "Katie",
    "Emma",
    "Ruth",
    "Christine",
    "Catherine",
    "Debra",
]
LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Gomez",
    "Phillips",
    "Evans",
    "Turner",
    "Diaz",
    "Parker",
    "Cruz",
    "Edwards",
    "Collins",
    "Reyes",
    "Stewart",
    "Morris",
    "Morales",
    "Murphy",
    "Cook",
    "Rogers",
    "Gutierrez",
    "Ortiz",
    "Morgan",
    "Cooper",
    "Peterson",
    "Bailey",
    "Reed",
    "Kelly",
    "Howard",
    "Ramos",
    "Kim",
    "Cox",
    "Ward",
    "Richardson",
    "Hopper",
]

RAW_MESSAGES = (
    "SELECT id FROM engagement_interaction WHERE workspace_id = %(ws)s"
    " AND search_vector @@ to_tsquery('simple', %(tsq)s)"
    " ORDER BY id DESC LIMIT 20"
)
RAW_CUSTOMERS = (
    "SELECT id FROM customers_customer WHERE workspace_id = %(ws)s AND display_name %%> %(q)s LIMIT 10"
)


def _fixture(raw: Any, workspace_id: int, channel_id: int) -> float:
    t0 = time.perf_counter()
    with raw.cursor() as cur:
        cur.execute("SELECT pg_get_serial_sequence('customers_customer', 'id')")
        sequence = cur.fetchone()[0]
        cur.execute("SELECT nextval(%s)", [sequence])
        base = int(cur.fetchone()[0])
        cur.execute("SELECT setval(%s, %s)", [sequence, base + CUSTOMERS])
        cur.execute(
            "INSERT INTO customers_customer (id, workspace_id, display_name, attributes, tags, timezone,"
            " preferred_channel, created_at, updated_at)"
            " SELECT %(base)s + g, %(ws)s, (%(first)s::text[])[1 + g %% %(nf)s] || ' '"
            " || (%(last)s::text[])[1 + (g / %(nf)s) %% %(nl)s], '{}'::jsonb, '[]'::jsonb, '', '',"
            " now() - interval '60 days', now() FROM generate_series(0, %(n)s - 1) AS g",
            {
                "base": base,
                "ws": workspace_id,
                "n": CUSTOMERS,
                "first": FIRST,
                "last": LAST,
                "nf": len(FIRST),
                "nl": len(LAST),
            },
        )
        cur.execute(
            "INSERT INTO customers_identity (workspace_id, customer_id, kind, value, verified, first_channel,"
            " first_seen_at, last_channel, last_seen_at)"
            " SELECT %(ws)s, %(base)s + g, 'phone', '+1650' || (2000000 + g)::text, true, 'sms',"
            " now() - interval '60 days', 'sms', now() - interval '1 day'"
            " FROM generate_series(0, %(n)s - 1) AS g",
            {"base": base, "ws": workspace_id, "n": CUSTOMERS},
        )
        harness.log("search: customers loaded; interactions next")
        # Word k of message g: a common word when the hash is even, else a rare token.
        cur.execute(
            "INSERT INTO engagement_interaction (workspace_id, customer_id, channel_id, kind, direction,"
            " body, customer_address, status, status_changed_at, provider_message_id, email_message_id,"
            " error_code, error_message, send_attempts, metadata, call_outcome, created_at)"
            " SELECT %(ws)s, %(base)s + (g %% %(nc)s), %(ch)s, 'message',"
            " CASE WHEN g %% 3 = 0 THEN 'outbound' ELSE 'inbound' END,"
            " (SELECT string_agg(CASE WHEN h %% 2 = 0 THEN (%(common)s::text[])[1 + (h / 2) %% %(ncommon)s]"
            "                         ELSE 'tok' || ((h / 2) %% %(nrare)s)::text END, ' ')"
            "    FROM (SELECT abs(hashint8(g * 31 + k)) AS h FROM generate_series(1, 8 + g %% 12) AS k) w),"
            " '+1650' || (2000000 + g %% %(nc)s)::text, 'received',"
            " now() - (g || ' seconds')::interval, '', '', '', '', 0, '{}'::jsonb, '',"
            " now() - ((%(n)s - g) || ' seconds')::interval"
            " FROM generate_series(0, %(n)s - 1) AS g",
            {
                "base": base,
                "ws": workspace_id,
                "n": INTERACTIONS,
                "nc": CUSTOMERS,
                "ch": channel_id,
                "common": COMMON,
                "ncommon": len(COMMON),
                "nrare": RARE_TOKENS,
            },
        )
        for table in ("customers_customer", "customers_identity", "engagement_interaction"):
            cur.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - t0


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def run(ctx: Context) -> BenchResult:
    from django.db import connection

    from engagement.models import Channel, Workspace
    from engagement.services.search import customer_search, interaction_search, workspace_search

    errors: list[str] = []
    workspace = Workspace.objects.create(name="Bench search", slug="bench-search")
    channel = Channel.objects.create(
        workspace=workspace, kind="sms", provider="sandbox", name="SMS", address="+16505550000"
    )
    connection.ensure_connection()
    raw = connection.connection
    raw.autocommit = True
    harness.log(f"search: loading {CUSTOMERS:,} customers and {INTERACTIONS:,} interactions")
    load_s = _fixture(raw, workspace.pk, channel.pk)
    harness.log(f"search: loaded and analyzed in {load_s:.1f} s")

    ws = workspace.pk
    scenarios: dict[str, tuple[Any, str, dict[str, Any]]] = {
        "message rare word": (
            lambda: interaction_search(workspace=workspace, query="tok4242"),
            RAW_MESSAGES,
            {"ws": ws, "tsq": "'tok4242'"},
        ),
        "message common word": (
            lambda: interaction_search(workspace=workspace, query="refund"),
            RAW_MESSAGES,
            {"ws": ws, "tsq": "'refund'"},
        ),
        "message two words": (
            lambda: interaction_search(workspace=workspace, query="parcel tok123"),
            RAW_MESSAGES,
            {"ws": ws, "tsq": "'parcel' & 'tok123':*"},
        ),
        "customer fuzzy name": (
            lambda: customer_search(workspace=workspace, query="Grce Hoper"),
            RAW_CUSTOMERS,
            {"ws": ws, "q": "Grce Hoper"},
        ),
        "search box": (
            lambda: workspace_search(workspace=workspace, query="Grace Hopper"),
            RAW_CUSTOMERS,
            {"ws": ws, "q": "Grace Hopper"},
        ),
    }
    data: dict[str, Any] = {
        "interactions": INTERACTIONS,
        "customers": CUSTOMERS,
        "load_seconds": round(load_s, 1),
    }
    lines = [
        f"search — {INTERACTIONS:,} interactions, {CUSTOMERS:,} customers (fixture loaded in {load_s:.1f} s),"
        f" median of {ROUNDS} rounds"
    ]
    clock = time.perf_counter
    for name, (product, sql, params) in scenarios.items():
        times: dict[str, list[float]] = {"raw": [], "product": []}
        hits = 0
        with raw.cursor() as cur:
            if "%%>" in sql:
                cur.execute("SELECT set_config('pg_trgm.word_similarity_threshold', '0.45', false)")
            cur.execute(sql, params)  # warm-up, both
            cur.fetchall()
            product()
            for _ in range(ROUNDS):
                t0 = clock()
                cur.execute(sql, params)
                cur.fetchall()
                times["raw"].append(clock() - t0)
                t0 = clock()
                result = product()
                times["product"].append(clock() - t0)
                hits = (
                    len(result) if isinstance(result, list) else len(result.customers) + len(result.messages)
                )
        if name != "search box" and hits == 0:
            errors.append(f"{name}: found nothing")
        raw_ms, product_ms = _median_ms(times["raw"]), _median_ms(times["product"])
        data[name] = {
            "hits": hits,
            "raw_ms": round(raw_ms, 1),
            "product_ms": round(product_ms, 1),
            "aim_met": product_ms < AIM_MS,
        }
        lines.append(
            f"  {name:20} {hits:3} hits: product {product_ms:7.1f} ms, raw indexed query {raw_ms:7.1f} ms"
            f" (aim < {AIM_MS:.0f} ms: {'met' if product_ms < AIM_MS else 'missed'})"
        )
    return BenchResult(name="search", data=data, report="\n".join(lines), errors=errors)
