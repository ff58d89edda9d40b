"""The single customer view at scale, each against raw PostgreSQL doing the same rows in the same run.

* ``import``  — a 100,000-row CSV (name, email, phone, two typed attributes, tags, two consent columns;
  2% of the rows repeat an earlier person by email or phone, 100 rows are bad) through the product's
  import service, in-process, the way the Celery task runs it (``customer_import_create`` +
  ``customer_import_run``), against ``COPY … FROM STDIN (FORMAT csv)`` of the same bytes into a plain
  table (psycopg 3 ``cursor.copy``). Then a check that the rows became the right customers, identities,
  consent rows and error report.
* ``resolve`` — 1,000,000 customers with a phone and an email each (2,000,000 identities, written by
  SQL straight into the product's tables — fixture data — then ANALYZE), then ``customer_resolve`` of
  existing identities (random phones and emails) against the raw indexed lookup
  ``SELECT customer_id FROM customers_identity WHERE workspace_id=%s AND kind=%s AND value=%s`` on the same
  connection, interleaved in rounds. ``customer_resolve`` is timed twice on the same identities: the first
  contact in a day (it moves ``last_seen_at``: one UPDATE, committed on its own) and a repeat within the
  minute (one SELECT).

Nothing asserts a timing; the ratios are results. A check that does not add up is an error.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench import harness
from bench.harness import BenchResult, Context

IMPORT_ROWS = 100_000
DUPLICATES_BY_EMAIL = 1_000  # an earlier person's email, upper-cased, no phone
DUPLICATES_BY_PHONE = 1_000  # an earlier person's phone in national format, plus a new work email
BAD_ROWS = 100  # 25 each: bad phone, no identifier, bad consent value, non-numeric number attribute
COPY_REPEATS = 3
IMPORT_AIM_PCT = 20.0  # the import's rows/s at least 20% of raw COPY's (from the issue)
RESOLVE_AIM_PCT = 50.0  # customer_resolve's ops/s at least 50% of the raw indexed lookup's

RESOLVE_CUSTOMERS = 1_000_000
RESOLVE_OPS = 5_000
RESOLVE_ROUNDS = 5

CSV_HEADER = "name,email,phone,attr:plan,attr:ltv,tags,consent:email:marketing,consent:sms:all"


# ---------------------------------------------------------------- helpers


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _latency(values: Sequence[float]) -> dict[str, Any]:
    total = sum(values)
    return {
        "ops": len(values),
        "ops_per_s": round(len(values) / total, 1) if total else None,
        "p50_ms": round(_pct(values, 0.50) * 1000, 3),
        "p99_ms": round(_pct(values, 0.99) * 1000, 3),
        "mean_ms": round(total / len(values) * 1000, 3) if values else None,
    }


def _raw_connection() -> Any:
    """The psycopg 3 connection under Django's default connection (autocommit, like Django's)."""
    from django.db import connection

    connection.ensure_connection()
    return connection.connection


def _server_settings(raw: Any) -> dict[str, str]:
    with raw.cursor() as cur:
        found = {}
        for name in ("fsync", "synchronous_commit", "shared_buffers", "server_version"):
            cur.execute(f"SHOW {name}")
            found[name] = str(cur.fetchone()[0])
    return found


# ---------------------------------------------------------------- scenario: CSV import


def _phone(i: int) -> tuple[str, str]:
    """Person ``i``'s phone as E.164 and in US national format (the workspace's region reads it)."""
    number = 2_000_000 + i
    e164 = f"+1415{number:07d}"
    national = f"(415) {number // 10000:03d}-{number % 10000:04d}"
    return e164, national


def _import_csv(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """The CSV text and what importing it must produce."""
    base = IMPORT_ROWS - DUPLICATES_BY_EMAIL - DUPLICATES_BY_PHONE - BAD_ROWS
    rows: list[tuple[str, list[str], int]] = []  # (kind, cells, person)
    for i in range(base):
        ltv = f"{rng.randrange(0, 500_000) / 100:.2f}" if rng.random() < 0.7 else ""
        cells = [
            f"Person {i}",
            f"person{i}@example.com",
            _phone(i)[0],
            rng.choice(("free", "pro", "team")),
            ltv,
            "vip" if rng.random() < 0.05 else "",
            rng.choice(("opted_in", "opted_out", "", "")),
            "opted_in" if rng.random() < 0.3 else "",
        ]
        rows.append(("base", cells, i))
    repeated = rng.sample(range(base), DUPLICATES_BY_EMAIL + DUPLICATES_BY_PHONE)
    for i in repeated[:DUPLICATES_BY_EMAIL]:
        rows.append(("dup_email", ["", f"PERSON{i}@EXAMPLE.COM", "", "", "", "", "", ""], i))
    for i in repeated[DUPLICATES_BY_EMAIL:]:
        cells = [f"Person {i}", f"person{i}.work@example.com", _phone(i)[1], "team", "", "", "", ""]
        rows.append(("dup_phone", cells, i))
    for n in range(BAD_ROWS):
        kind = ("bad_phone", "no_identifier", "bad_consent", "bad_number")[n % 4]
        cells = [f"Bad {n}", f"bad{n}@example.com", "", "free", "", "", "", ""]
        if kind == "bad_phone":
            cells[2] = "not-a-phone"
        elif kind == "no_identifier":
            cells[1] = ""
        elif kind == "bad_consent":
            cells[6] = "maybe"
        else:
            cells[4] = "lots"
        rows.append((kind, cells, -1))
    rng.shuffle(rows)

    lines = [CSV_HEADER]
    bad_rows: list[int] = []
    consents = 0
    for number, (kind, cells, _) in enumerate(rows, start=1):
        lines.append(",".join(cells))
        if kind.startswith("bad") or kind == "no_identifier":
            bad_rows.append(number)
        else:
            consents += sum(1 for c in cells[6:] if c)
    expected = {
        "rows": len(rows),
        "customers": base,
        "identities": 2 * base + DUPLICATES_BY_PHONE,
        "created": base,
        "updated": DUPLICATES_BY_EMAIL + DUPLICATES_BY_PHONE,
        "failed": BAD_ROWS,
        "bad_rows": bad_rows,
        "consent_events": consents,
        "repeated_persons": {
            "email": repeated[:DUPLICATES_BY_EMAIL],
            "phone": repeated[DUPLICATES_BY_EMAIL:],
        },
        "base": base,
    }
    return "\n".join(lines) + "\n", expected


def _import_check(workspace_id: int, imp: Any, expected: dict[str, Any]) -> dict[str, Any]:
    from customers.models import ConsentEvent, Customer, Identity

    owner = dict(Identity.objects.filter(workspace_id=workspace_id).values_list("value", "customer_id"))
    split = 0  # persons whose identifiers ended up on more than one customer
    for i in range(expected["base"]):
        values = [f"person{i}@example.com", _phone(i)[0]]
        owners = {owner.get(v) for v in values}
        if len(owners) != 1 or None in owners:
            split += 1
    work_emails_elsewhere = sum(
        1
        for i in expected["repeated_persons"]["phone"]
        if owner.get(f"person{i}.work@example.com") != owner.get(_phone(i)[0])
    )
    leaked = sum(1 for n in range(BAD_ROWS) if f"bad{n}@example.com" in owner)
    reported = sorted(e["row"] for e in imp.errors)
    check = {
        "status": imp.status,
        "rows_processed": imp.processed_rows,
        "created": imp.created_count,
        "updated": imp.updated_count,
        "failed": imp.failed_count,
        "customers": Customer.objects.filter(workspace_id=workspace_id).count(),
        "identities": len(owner),
        "consent_events": ConsentEvent.objects.filter(workspace_id=workspace_id).count(),
        "persons_split_over_customers": split,
        "work_emails_not_linked": work_emails_elsewhere,
        "bad_rows_left_identities": leaked,
        "bad_rows_reported_exactly": reported == expected["bad_rows"],
        "expected": {k: expected[k] for k in ("customers", "identities", "created", "updated", "failed")}
        | {"consent_events": expected["consent_events"]},
    }
    check["ok"] = (
        imp.status == "done"
        and imp.processed_rows == expected["rows"]
        and imp.created_count == expected["created"]
        and imp.updated_count == expected["updated"]
        and imp.failed_count == expected["failed"]
        and check["customers"] == expected["customers"]
        and check["identities"] == expected["identities"]
        and check["consent_events"] == expected["consent_events"]
        and split == 0
        and work_emails_elsewhere == 0
        and leaked == 0
        and check["bad_rows_reported_exactly"]
    )
    return check


def _copy_baseline(raw: Any, data: bytes) -> tuple[list[float], int]:
    """COPY the same CSV bytes into a plain table (text columns, no index), ``COPY_REPEATS`` times."""
    columns = ", ".join(f"c{n} text" for n in range(len(CSV_HEADER.split(","))))
    times = []
    with raw.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_customers_copy")
        cur.execute(f"CREATE TABLE bench_customers_copy ({columns})")
        for _ in range(COPY_REPEATS):
            cur.execute("TRUNCATE bench_customers_copy")
            t0 = time.perf_counter()
            with cur.copy("COPY bench_customers_copy FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                copy.write(data)
            times.append(time.perf_counter() - t0)
        cur.execute("SELECT count(*) FROM bench_customers_copy")
        copied = int(cur.fetchone()[0])
        cur.execute("DROP TABLE bench_customers_copy")
    return times, copied


def _scenario_import(errors: list[str]) -> tuple[dict[str, Any], list[str]]:
    from customers.imports import customer_import_create, customer_import_run
    from customers.profile import attribute_define
    from engagement.models import Workspace

    rng = random.Random(20261201)
    workspace = Workspace.objects.create(name="Bench import", slug="bench-customers-import")
    attribute_define(workspace=workspace, key="plan", label="Plan", type="string")
    attribute_define(workspace=workspace, key="ltv", label="Lifetime value", type="number")
    csv_text, expected = _import_csv(rng)
    harness.log(f"import: {expected['rows']} rows, {len(csv_text) / 1e6:.1f} MB through the import service")
    t0 = time.perf_counter()
    imp = customer_import_create(workspace=workspace, source=csv_text, filename="bench.csv")
    imp = customer_import_run(import_id=imp.pk)
    product_s = time.perf_counter() - t0
    harness.log(f"import: {product_s:.1f} s; COPY x{COPY_REPEATS}")
    copy_times, copied = _copy_baseline(_raw_connection(), csv_text.encode())
    copy_s = statistics.median(copy_times)
    check = _import_check(workspace.pk, imp, expected)
    if copied != expected["rows"]:
        check["ok"] = False
        check["copied_rows"] = copied
    if not check["ok"]:
        errors.append(f"import check failed: {check}")
    rows = expected["rows"]
    product_rps, copy_rps = rows / product_s, rows / copy_s
    ratio = 100.0 * product_rps / copy_rps
    data = {
        "rows": rows,
        "csv_bytes": len(csv_text),
        "import_s": round(product_s, 2),
        "import_rows_per_s": round(product_rps, 1),
        "copy_s_median": round(copy_s, 3),
        "copy_s_each": [round(t, 3) for t in copy_times],
        "copy_rows_per_s": round(copy_rps, 1),
        "ratio_pct": round(ratio, 2),
        "aim_pct": IMPORT_AIM_PCT,
        "aim_met": ratio >= IMPORT_AIM_PCT,
        "check": check,
    }
    lines = [
        f"  import  {rows} CSV rows ({len(csv_text) / 1e6:.1f} MB:"
        f" {DUPLICATES_BY_EMAIL + DUPLICATES_BY_PHONE} repeat an earlier person, {BAD_ROWS} bad),"
        " product import service in-process vs COPY",
        f"    product  customer_import_run  {product_s:>8.2f} s  {product_rps:>10.0f} rows/s",
        f"    raw      COPY FROM STDIN csv  {copy_s:>8.3f} s  {copy_rps:>10.0f} rows/s"
        f"   (median of {COPY_REPEATS}: {', '.join(f'{t:.3f}' for t in copy_times)} s;"
        " plain table, no index)",
        f"    import rows/s / COPY rows/s = {ratio:.2f}%  (COPY is {copy_rps / product_rps:.0f}x faster);"
        f" aim at least {IMPORT_AIM_PCT:.0f}% -> {'MET' if ratio >= IMPORT_AIM_PCT else 'NOT MET'}",
        f"    check: status {check['status']}, created {check['created']}, updated {check['updated']},"
        f" failed {check['failed']} (bad rows reported exactly: {check['bad_rows_reported_exactly']});"
        f" customers {check['customers']}, identities {check['identities']},"
        f" consent rows {check['consent_events']} (expected {check['expected']});"
        f" persons split over customers {check['persons_split_over_customers']},"
        f" work emails not linked {check['work_emails_not_linked']},"
        f" bad rows that left identities {check['bad_rows_left_identities']}"
        f" -> {'OK' if check['ok'] else 'FAILED'}",
    ]
    return data, lines


# ---------------------------------------------------------------- scenario: resolve among 1,000,000


def _resolve_fixture(raw: Any, workspace_id: int) -> tuple[int, float]:
    """1,000,000 customers with a phone (verified, last seen by SMS) and an email each, last seen a day
    ago; ids reserved from the sequence so identities can name their customer. Returns the first id."""
    n = RESOLVE_CUSTOMERS
    t0 = time.perf_counter()
    with raw.cursor() as cur:
        cur.execute("SELECT pg_get_serial_sequence('customers_customer', 'id')")
        sequence = cur.fetchone()[0]
        cur.execute("SELECT nextval(%s)", [sequence])
        base = int(cur.fetchone()[0])
        cur.execute("SELECT setval(%s, %s)", [sequence, base + n])
        cur.execute(
            "INSERT INTO customers_customer (id, workspace_id, display_name, attributes, tags, timezone,"
            " preferred_channel, created_at, updated_at)"
            " SELECT %s + g, %s, 'Person ' || g, '{}'::jsonb, '[]'::jsonb, '', '',"
            " now() - interval '30 days', now() - interval '30 days'"
            " FROM generate_series(0, %s - 1) AS g",
            [base, workspace_id, n],
        )
        cur.execute(
            "INSERT INTO customers_identity (workspace_id, customer_id, kind, value, verified, first_channel,"
            " first_seen_at, last_channel, last_seen_at)"
            " SELECT %s, %s + g, 'phone', '+1650' || (2000000 + g)::text, true, 'sms',"
            " now() - interval '30 days', 'sms', now() - interval '1 day'"
            " FROM generate_series(0, %s - 1) AS g"
            " UNION ALL"
            " SELECT %s, %s + g, 'email', 'person' || g || '@resolve.example', false, 'email',"
            " now() - interval '30 days', 'email', now() - interval '1 day'"
            " FROM generate_series(0, %s - 1) AS g",
            [workspace_id, base, n, workspace_id, base, n],
        )
        cur.execute("ANALYZE customers_customer")
        cur.execute("ANALYZE customers_identity")
    return base, time.perf_counter() - t0


def _statements(call: Callable[[], Any]) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        call()
    return [" ".join(q["sql"].split()[:3])[:60] for q in captured.captured_queries]


def _scenario_resolve(errors: list[str]) -> tuple[dict[str, Any], list[str]]:
    from customers.models import Customer, Identity
    from customers.services import Identifier, customer_resolve
    from engagement.models import Workspace

    rng = random.Random(20261202)
    workspace = Workspace.objects.create(name="Bench resolve", slug="bench-customers-resolve")
    raw = _raw_connection()
    harness.log(f"resolve: loading {RESOLVE_CUSTOMERS} customers, {2 * RESOLVE_CUSTOMERS} identities")
    base, load_s = _resolve_fixture(raw, workspace.pk)
    harness.log(f"resolve: loaded and analyzed in {load_s:.1f} s; {RESOLVE_OPS} lookups per scenario")

    # Random existing identities, half phones (as an SMS webhook sends them), half emails.
    picks = rng.sample(range(RESOLVE_CUSTOMERS), RESOLVE_OPS)
    targets: list[tuple[Identifier, str, int]] = []  # (identifier, channel kind, expected customer id)
    for n, g in enumerate(picks):
        if n % 2:
            targets.append((Identifier("phone", f"+1650{2_000_000 + g}", True), "sms", base + g))
        else:
            targets.append((Identifier("email", f"person{g}@resolve.example"), "email", base + g))
    # Identities outside the sample: one shows the statements of each path, the rest warm up.
    picked = set(picks)
    outside = [g for g in range(RESOLVE_CUSTOMERS - 1, RESOLVE_CUSTOMERS - 1000, -1) if g not in picked][:201]
    spare = outside[0]
    spare_ident = Identifier("phone", f"+1650{2_000_000 + spare}", True)
    first_sql = _statements(
        lambda: customer_resolve(workspace=workspace, identifier=spare_ident, channel_kind="sms")
    )
    repeat_sql = _statements(
        lambda: customer_resolve(workspace=workspace, identifier=spare_ident, channel_kind="sms")
    )

    sql = "SELECT customer_id FROM customers_identity WHERE workspace_id = %s AND kind = %s AND value = %s"
    ws_id = workspace.pk
    latencies: dict[str, list[float]] = {"raw": [], "product_first": [], "product_repeat": []}
    mismatches = {"raw": 0, "product_first": 0, "product_repeat": 0}
    clock = time.perf_counter
    # Warm-up: the same code paths on identities outside the sample.
    with raw.cursor() as cur:
        for g in outside[1:]:
            cur.execute(sql, [ws_id, "phone", f"+1650{2_000_000 + g}"])
            cur.fetchone()
            customer_resolve(
                workspace=workspace,
                identifier=Identifier("phone", f"+1650{2_000_000 + g}", True),
                channel_kind="sms",
            )
    size = -(-RESOLVE_OPS // RESOLVE_ROUNDS)
    with raw.cursor() as cur:
        for number in range(RESOLVE_ROUNDS):
            chunk = targets[number * size : (number + 1) * size]
            harness.log(f"resolve: round {number + 1}/{RESOLVE_ROUNDS}, {len(chunk)} ops per scenario")
            for ident, _, expected in chunk:
                t0 = clock()
                cur.execute(sql, [ws_id, ident.kind, ident.value])
                row = cur.fetchone()
                latencies["raw"].append(clock() - t0)
                mismatches["raw"] += row is None or row[0] != expected
            for label in ("product_first", "product_repeat"):
                for ident, channel_kind, expected in chunk:
                    t0 = clock()
                    customer, created = customer_resolve(
                        workspace=workspace, identifier=ident, channel_kind=channel_kind
                    )
                    latencies[label].append(clock() - t0)
                    mismatches[label] += created or customer.pk != expected

    customers = Customer.objects.filter(workspace=workspace).count()
    identities = Identity.objects.filter(workspace=workspace).count()
    check = {
        "customers": customers,
        "identities": identities,
        "mismatches": mismatches,
        "ok": customers == RESOLVE_CUSTOMERS
        and identities == 2 * RESOLVE_CUSTOMERS
        and not any(mismatches.values()),
    }
    if not check["ok"]:
        errors.append(f"resolve check failed: {check}")
    stats = {label: _latency(values) for label, values in latencies.items()}
    raw_ops = stats["raw"]["ops_per_s"]
    ratios = {
        label: round(100.0 * stats[label]["ops_per_s"] / raw_ops, 1)
        for label in ("product_first", "product_repeat")
    }
    data = {
        "customers": RESOLVE_CUSTOMERS,
        "identities": 2 * RESOLVE_CUSTOMERS,
        "fixture_load_s": round(load_s, 1),
        "ops_per_scenario": RESOLVE_OPS,
        "rounds": RESOLVE_ROUNDS,
        "scenarios": stats,
        "ratio_pct": ratios,
        "aim_pct": RESOLVE_AIM_PCT,
        "statements": {"first_contact": first_sql, "repeat_within_minute": repeat_sql},
        "check": check,
    }

    def line(label: str, text: str) -> str:
        s = stats[label]
        return (
            f"    {text:<44} p50 {s['p50_ms']:>6.3f} ms  p99 {s['p99_ms']:>6.3f} ms"
            f"  {s['ops_per_s']:>8.0f} ops/s"
        )

    lines = [
        f"  resolve  {RESOLVE_OPS} existing identities (half phones, half emails, random) among"
        f" {RESOLVE_CUSTOMERS} customers / {2 * RESOLVE_CUSTOMERS} identities"
        f" (loaded + ANALYZE in {load_s:.0f} s), {RESOLVE_ROUNDS} interleaved rounds, one connection",
        line("raw", "raw      SELECT customer_id … (indexed)"),
        line("product_first", "product  customer_resolve, seen a day ago"),
        line("product_repeat", "product  customer_resolve, seen < 1 min ago"),
        f"    customer_resolve ops/s / raw lookup ops/s = {ratios['product_first']:.1f}%"
        f" (first contact of the day), {ratios['product_repeat']:.1f}% (repeat within a minute);"
        f" aim at least {RESOLVE_AIM_PCT:.0f}% -> first contact"
        f" {'MET' if ratios['product_first'] >= RESOLVE_AIM_PCT else 'NOT MET'},"
        f" repeat {'MET' if ratios['product_repeat'] >= RESOLVE_AIM_PCT else 'NOT MET'}",
        f"    statements per call: first contact {len(first_sql)} {first_sql};"
        f" repeat {len(repeat_sql)} {repeat_sql} (autocommit: the UPDATE commits on its own)",
        f"    check: every call found the fixture's customer (mismatches {mismatches}),"
        f" customers {customers}, identities {identities} -> {'OK' if check['ok'] else 'FAILED'}",
    ]
    return data, lines


def run(ctx: Context) -> BenchResult:
    from django.test.utils import override_settings

    errors: list[str] = []
    t0 = time.monotonic()
    # DEBUG would keep every SQL statement in memory (and cost time per statement), as in no server.
    with override_settings(DEBUG=False):
        settings = _server_settings(_raw_connection())
        import_data, import_lines = _scenario_import(errors)
        resolve_data, resolve_lines = _scenario_resolve(errors)
    elapsed = time.monotonic() - t0
    data = {
        "postgres": settings,
        "import": import_data,
        "resolve": resolve_data,
        "duration_s": round(elapsed, 1),
    }
    lines = [
        f"customers: in-process (no server), PostgreSQL {settings['server_version']}"
        f" (fsync {settings['fsync']}, synchronous_commit {settings['synchronous_commit']},"
        f" shared_buffers {settings['shared_buffers']}); {elapsed:.0f} s in all",
        *import_lines,
        "",
        *resolve_lines,
    ]
    return BenchResult(name="customers", data=data, report="\n".join(lines), errors=errors)
