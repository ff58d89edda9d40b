"""Journeys: how fast a keyword becomes the first journey message, and how late due timers fire.

* ``keyword_to_provider`` — a live journey "keyword JOIN by SMS → send an SMS". ``JOURNEYS_BENCH_MESSAGES``
  signed inbound Twilio webhooks (distinct senders, paced at ``JOURNEYS_BENCH_RATE`` per second) go to the
  real ASGI server; the outbox relay process hands ``message.received`` to the journeys listener, which
  enrolls the sender; a real Celery worker runs the send step (guard pipeline, ``message_send``) and its
  send task calls the fake Twilio through the twilio SDK. Measured per message: from the webhook POST to
  the fake Twilio receiving the Messages API call (both clocks in this process). Aim (issue 12): p95
  under 2 s.
* ``due_at_once`` — ``JOURNEYS_BENCH_ENROLLMENTS`` (default 100,000) enrollments waiting in a delay that
  ends at the same instant, then ``JOURNEYS_BENCH_SCHEDULERS`` scheduler processes (each looping
  ``journeys_tick``: claim ``FOR UPDATE SKIP LOCKED`` in batches, advance each row in its transaction)
  fire them. Reported: how late the last one fired (its ``finished_at`` minus the due time), against
  the time ONE indexed query takes to read the same rows (``SELECT id … WHERE state='active' AND
  due_at <= …`` on ``enrollment_due_idx``). Aim (issue 12): the last one less than 1 s late.
* ``steady`` (not in the default parts) — issue 12's rule as written: ``JOURNEYS_BENCH_STEADY_WAITING``
  (100,000) enrollments waiting in a delay, ``JOURNEYS_BENCH_STEADY_DUE`` (2,000) of them due at a steady
  rate over ``JOURNEYS_BENCH_STEADY_WINDOW`` (20) seconds, the rest a day or more away; a real Celery
  worker with its embedded beat runs the ``journeys-tick`` task every second, once per value of
  ``JOURNEYS_BENCH_STEADY_FOLLOW`` (the worker's ``JOURNEYS_TICK_FOLLOW_SECONDS``; "0,1": one pass per
  beat, then following the next due time). Reported per run: each fired timer's lateness (p50, p99,
  max; ``finished_at`` minus its due time, and when another connection first saw it committed), against
  the time ONE indexed query takes to read the window's due rows. Aim (issue 12): under 1 s late.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import harness
from bench.harness import BenchResult, Context

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = int(os.environ.get("JOURNEYS_BENCH_MESSAGES", "200"))
RATE = float(os.environ.get("JOURNEYS_BENCH_RATE", "10"))
ENROLLMENTS = int(os.environ.get("JOURNEYS_BENCH_ENROLLMENTS", "100000"))
SCHEDULERS = int(os.environ.get("JOURNEYS_BENCH_SCHEDULERS", "2"))
# Which parts run: "keyword", "timers", "steady" (comma-separated; "keyword,timers" by default).
PARTS = set(os.environ.get("JOURNEYS_BENCH_PARTS", "keyword,timers").split(","))
# steady: STEADY_DUE of STEADY_WAITING waiting enrollments fall due at a steady rate over STEADY_WINDOW
# seconds; one run per value of STEADY_FOLLOW (JOURNEYS_TICK_FOLLOW_SECONDS of the worker; 0 = off).
STEADY_WAITING = int(os.environ.get("JOURNEYS_BENCH_STEADY_WAITING", "100000"))
STEADY_DUE = int(os.environ.get("JOURNEYS_BENCH_STEADY_DUE", "2000"))
STEADY_WINDOW = float(os.environ.get("JOURNEYS_BENCH_STEADY_WINDOW", "20"))
STEADY_FOLLOW = [float(v) for v in os.environ.get("JOURNEYS_BENCH_STEADY_FOLLOW", "0,1").split(",") if v]
AIM_P95_S = 2.0
AIM_LATE_S = 1.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _worker(env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    log = open(harness.RESULTS_DIR / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps its descriptor
    try:
        return subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "threads", "-c", "4",
                "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat",
                "-n", f"{name}-{os.getpid()}@%h",
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    finally:
        log.close()


def _relay(env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open(harness.RESULTS_DIR / "journeys-relay.log", "ab")  # noqa: SIM115 - the child keeps it
    try:
        return subprocess.Popen(
            [sys.executable, "manage.py", "outbox_relay"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    finally:
        log.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _keyword_to_provider(ctx: Context, errors: list[str]) -> dict[str, Any]:
    from engagement.journeys.services import journey_create, journey_publish
    from engagement.models import Channel, Workspace
    from tests.fakes.twilio_server import FakeTwilio, twilio_signature

    fake = FakeTwilio(account_sid="AC" + "b" * 32, auth_token="bench-fake-token-0123456789").start()
    workspace = Workspace.objects.create(name="Bench journeys", slug="bench-journeys")
    sms = Channel.objects.create(
        workspace=workspace,
        kind="sms",
        provider="twilio",
        name="Bench journeys SMS",
        address="+14155550999",
        config={
            "account_sid": fake.account_sid,
            "auth_token": fake.auth_token,
            "api_base_url": fake.url,
            "rate_per_second": 1000,
        },
    )
    journey = journey_create(
        workspace=workspace,
        name="Keyword JOIN",
        reentry="every_time",
        definition={
            "trigger": {
                "type": "message.received",
                "channel_kind": "sms",
                "match": "keyword",
                "keywords": ["JOIN"],
            },
            "steps": [
                {
                    "key": "welcome",
                    "type": "send",
                    "channel_ids": [sms.pk],
                    "content": {"sms": {"body": "Welcome!"}},
                }
            ],
        },
    )
    journey_publish(journey=journey)
    from django.conf import settings

    # The channel's credentials were encrypted here: the server, relay and worker must decrypt them.
    env = {
        **ctx.server_env,
        "DATABASE_POOL_MAX": "6",
        "CREDENTIALS_KEYS": ",".join(settings.CREDENTIALS_KEYS),
    }
    server_cm = harness.uvicorn_server(env, workers=1, name="journeys-web")
    server = server_cm.__enter__()
    relay = _relay({**env, "PUBLIC_BASE_URL": server.base_url})
    worker = _worker({**env, "PUBLIC_BASE_URL": server.base_url}, "journeys-worker")
    sent_at: dict[str, float] = {}
    try:
        import urllib.request
        from urllib.parse import urlencode

        url = f"{server.base_url}/webhooks/twilio/{sms.webhook_token}/inbound/"
        time.sleep(5)  # the worker and relay start
        numbers = [f"+1908666{n:04d}" for n in range(MESSAGES + 20)]

        def post(n: int, number: str) -> None:
            form = {
                "MessageSid": f"SM{n:032d}",
                "AccountSid": fake.account_sid,
                "From": number,
                "To": sms.address,
                "Body": "join",
                "NumMedia": "0",
            }
            req = urllib.request.Request(url, data=urlencode(form).encode(), method="POST")
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
            req.add_header("X-Twilio-Signature", twilio_signature(url, form, fake.auth_token))
            sent_at[number] = time.monotonic()
            with urllib.request.urlopen(req, timeout=10) as resp:
                if resp.status != 200:
                    errors.append(f"webhook answered {resp.status}")

        for n in range(20):  # warm-up: not measured
            post(n, numbers[MESSAGES + n])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len([m for m in fake.messages if "sid" in m]) < 20:
            time.sleep(0.1)
        sent_at.clear()
        start = time.monotonic()
        for n in range(MESSAGES):
            target = start + n / RATE
            pause = target - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            post(1000 + n, numbers[n])
        deadline = time.monotonic() + 120
        measured = set(numbers[:MESSAGES])
        while time.monotonic() < deadline:
            arrived = {m["To"] for m in list(fake.messages) if "sid" in m and m.get("To") in measured}
            if len(arrived) == MESSAGES:
                break
            time.sleep(0.2)
        latencies = []
        first: dict[str, float] = {}
        for m in list(fake.messages):
            if "sid" in m and m.get("To") in measured and m["To"] not in first:
                first[m["To"]] = m["at"]
        for number, at in first.items():
            latencies.append(at - sent_at[number])
        if len(first) != MESSAGES:
            errors.append(
                f"{MESSAGES - len(first)} of {MESSAGES} journey messages never reached the fake Twilio"
            )
        dupes = len([m for m in fake.messages if "sid" in m and m.get("To") in measured]) - len(first)
        if dupes:
            errors.append(f"{dupes} duplicate journey messages")
    finally:
        _stop(worker)
        _stop(relay)
        server_cm.__exit__(None, None, None)
        fake.stop()
    stages = _stages(journey.pk, {n: sent_at[n] for n in first}, first)
    p50, p95 = _pct(latencies, 0.5), _pct(latencies, 0.95)
    if p95 > AIM_P95_S:
        errors.append(f"keyword → provider p95 {p95:.3f} s is above the {AIM_P95_S} s aim")
    return {
        "messages": MESSAGES,
        "rate_per_s": RATE,
        "p50_s": round(p50, 3),
        "p95_s": round(p95, 3),
        "max_s": round(max(latencies, default=0.0), 3),
        "stages_p50_p95_s": stages,
    }


def _stages(journey_id: int, posted: dict[str, float], arrived: dict[str, float]) -> dict[str, list[float]]:
    """Where the time goes, per message (p50 and p95 of each hop, seconds), from the rows' timestamps
    (same machine, one clock): the webhook POST → the inbound interaction written (web) → the enrollment
    (the relay's journeys listener) → the outbound interaction queued (the send step) → the fake Twilio
    receiving it (relay → send task → provider)."""
    from engagement.models import Enrollment, Interaction

    shift = time.time() - time.monotonic()  # monotonic → wall clock
    enrolled: dict[int, Any] = {}
    for customer_id, entered_at in Enrollment.objects.filter(journey_id=journey_id).values_list(
        "customer_id", "entered_at"
    ):
        enrolled[customer_id] = entered_at
    hops: dict[str, list[float]] = {"webhook": [], "relay_enroll": [], "send_step": [], "to_provider": []}
    rows = Interaction.objects.filter(customer_address__in=list(posted)).values(
        "customer_address", "direction", "created_at", "customer_id"
    )
    inbound: dict[str, Any] = {}
    outbound: dict[str, Any] = {}
    for r in rows:
        (inbound if r["direction"] == "inbound" else outbound).setdefault(r["customer_address"], r)
    for number, t_post in posted.items():
        i, o = inbound.get(number), outbound.get(number)
        entered = enrolled.get(i["customer_id"]) if i else None
        if not (i and o and entered):
            continue
        t_in, t_enr = i["created_at"].timestamp(), entered.timestamp()
        t_out, t_prov = o["created_at"].timestamp(), arrived[number] + shift
        hops["webhook"].append(t_in - (t_post + shift))
        hops["relay_enroll"].append(t_enr - t_in)
        hops["send_step"].append(t_out - t_enr)
        hops["to_provider"].append(t_prov - t_out)
    return {k: [round(_pct(v, 0.5), 3), round(_pct(v, 0.95), 3)] for k, v in hops.items()}


def _due_at_once(ctx: Context, errors: list[str]) -> dict[str, Any]:
    from django.db import connection
    from django.utils import timezone

    from customers.models import Customer
    from engagement.journeys.services import journey_create, journey_publish
    from engagement.models import Enrollment, Workspace

    workspace = Workspace.objects.create(name="Bench timers", slug="bench-timers")
    journey = journey_create(
        workspace=workspace,
        name="Wait a day",
        reentry="every_time",
        definition={
            "trigger": {"type": "manual"},
            "steps": [{"key": "wait", "type": "delay", "seconds": 86400}],
        },
    )
    version = journey_publish(journey=journey)
    t0 = time.perf_counter()
    customers = Customer.objects.bulk_create(
        [Customer(workspace=workspace) for _ in range(ENROLLMENTS)], batch_size=5000
    )
    now = timezone.now()
    far = now + dt.timedelta(days=1)
    Enrollment.objects.bulk_create(
        [
            Enrollment(
                workspace=workspace, journey=journey, version=version, customer=c, exclusive=False,
                current_step="wait", waiting_for="delay", due_at=far, entered_at=now, updated_at=now,
            )
            for c in customers
        ],
        batch_size=5000,
    )  # fmt: skip
    seeded_s = time.perf_counter() - t0
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE engagement_enrollment")
    # The same rows, one indexed query (the floor any scheduler is compared with).
    table = Enrollment._meta.db_table
    with connection.cursor() as cursor:
        t1 = time.perf_counter()
        cursor.execute(
            f"SELECT id FROM {table} WHERE state = 'active' AND due_at <= %s",
            [far],
        )
        rows = len(cursor.fetchall())
        query_s = time.perf_counter() - t1
        cursor.execute(
            f"EXPLAIN SELECT id FROM {table} WHERE state = 'active' AND due_at <= %s",
            [far],
        )
        plan = " / ".join(r[0].strip() for r in cursor.fetchall()[:2])
    # Everything becomes due a few seconds from now, at the same instant.
    due = timezone.now() + dt.timedelta(seconds=3)
    Enrollment.objects.filter(journey=journey).update(due_at=due)
    env = {**ctx.server_env, "DATABASE_POOL_MAX": "2", "JOURNEYS_TICK_BUDGET_SECONDS": "3600"}
    code = (
        "import django, os\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')\n"
        "django.setup()\n"
        "import time\n"
        "from engagement.journeys.scheduler import journeys_tick\n"
        f"deadline = time.time() + {ctx.max_seconds * 10}\n"
        "while time.time() < deadline:\n"
        "    if journeys_tick(budget_seconds=30)['fired'] == 0 and time.time() > "
        f"{due.timestamp() + 1}:\n"
        "        break\n"
        "    time.sleep(0.02)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, start_new_session=True)
        for _ in range(SCHEDULERS)
    ]
    # When the last row is seen done by another connection (committed), polled every 50 ms on the
    # partial index of active rows: an upper bound of the lateness that includes every commit.
    table_active = f"SELECT count(*) FROM {table} WHERE state = 'active' AND journey_id = %s"
    seen_done_at: float | None = None
    while any(p.poll() is None for p in procs):
        with connection.cursor() as cursor:
            cursor.execute(table_active, [journey.pk])
            if cursor.fetchone()[0] == 0 and seen_done_at is None:
                seen_done_at = time.time()
        time.sleep(0.05)
    for proc in procs:
        proc.wait()
    done = Enrollment.objects.filter(journey=journey, state="completed")
    fired = done.count()
    last = done.order_by("-finished_at").values_list("finished_at", flat=True).first()
    late_s = (last - due).total_seconds() if last else float("inf")
    if fired != ENROLLMENTS:
        errors.append(f"{ENROLLMENTS - fired} of {ENROLLMENTS} due enrollments did not fire")
    if late_s > AIM_LATE_S:
        errors.append(
            f"the last of {ENROLLMENTS} due enrollments fired {late_s:.1f} s late (aim {AIM_LATE_S} s)"
        )
    with connection.cursor() as cursor:  # the ORM's cascade would name 100,000 ids in one statement
        cursor.execute("DELETE FROM engagement_journeysteprun WHERE journey_id = %s", [journey.pk])
        cursor.execute(f"DELETE FROM {table} WHERE journey_id = %s", [journey.pk])
    return {
        "enrollments": ENROLLMENTS,
        "schedulers": SCHEDULERS,
        "seed_s": round(seeded_s, 1),
        "indexed_query_s": round(query_s, 3),
        "indexed_query_rows": rows,
        "indexed_query_plan": plan,
        "fired": fired,
        "last_late_s": round(late_s, 3),
        "fired_per_s": round(fired / late_s, 1) if late_s and late_s != float("inf") else None,
        "all_committed_late_s": round(seen_done_at - due.timestamp(), 3) if seen_done_at else None,
    }


def _worker_with_beat(env: dict[str, str], name: str, schedule: Path) -> subprocess.Popen[bytes]:
    """``celery worker -B`` (beat inside the worker, as ``make run`` runs it): beat sends
    ``journeys-tick`` every ``JOURNEYS_TICK_SECONDS`` and the worker runs the real task."""
    harness.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    log = open(harness.RESULTS_DIR / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps its descriptor
    try:
        return subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker", "-B", "-s", str(schedule),
                "-P", "threads", "-c", "4", "-l", "warning", "--without-gossip", "--without-mingle",
                "--without-heartbeat", "-n", f"{name}-{os.getpid()}@%h",
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    finally:
        log.close()


def _steady(ctx: Context, errors: list[str]) -> dict[str, Any]:
    """Issue 12's rule as written: with ``STEADY_WAITING`` enrollments waiting, ``STEADY_DUE`` of them
    fall due at a steady rate over ``STEADY_WINDOW`` seconds (the rest a day or more away), a real
    worker with its embedded beat fires them through the ``journeys-tick`` task, and each fired timer's
    lateness is measured twice: its ``finished_at`` (the tick's clock when it claimed the batch) minus
    its due time, and when another connection first saw it done (polled every 50 ms, so it includes
    the commit; an upper bound). One run per ``STEADY_FOLLOW`` value (the worker's
    ``JOURNEYS_TICK_FOLLOW_SECONDS``; 0: one pass per beat). Seeded with SQL (``generate_series``)."""
    import tempfile

    from django.db import connection
    from django.utils import timezone

    from engagement.journeys.services import journey_create, journey_publish
    from engagement.models import Enrollment, JourneyStepRun, Workspace

    workspace = Workspace.objects.create(name="Bench steady timers", slug="bench-steady-timers")
    journey = journey_create(
        workspace=workspace,
        name="Wait a day (steady)",
        reentry="every_time",
        definition={
            "trigger": {"type": "manual"},
            "steps": [{"key": "wait", "type": "delay", "seconds": 86400}],
        },
    )
    version = journey_publish(journey=journey)
    table, runs_table = Enrollment._meta.db_table, JourneyStepRun._meta.db_table
    total = STEADY_WAITING + STEADY_DUE * (len(STEADY_FOLLOW) - 1)  # every run starts with STEADY_WAITING
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers_customer (workspace_id, display_name, attributes, tags, timezone, "
            "preferred_channel, created_at, updated_at) "
            "SELECT %s, '', '{}', '[]', '', '', now(), now() FROM generate_series(1, %s)",
            [workspace.pk, total],
        )
        # Far away: one every second from a day on (the delay's end of enrollments entered over a day).
        cursor.execute(
            f"""
            INSERT INTO {table} (workspace_id, journey_id, version_id, customer_id, state, exclusive,
                                 trigger_key, context, current_step, waiting_for, wait_detail, due_at,
                                 lease_until, exit_reason, entered_at, finished_at, updated_at)
            SELECT %s, %s, %s, c.id, 'active', false, '', '{{}}', 'wait', 'delay', '',
                   now() + interval '1 day' + (row_number() OVER (ORDER BY c.id)) * interval '1 second',
                   NULL, '', now(), NULL, now()
            FROM customers_customer c WHERE c.workspace_id = %s
            """,
            [workspace.pk, journey.pk, version.pk, workspace.pk],
        )
        cursor.execute(f"ANALYZE {table}")
    seeded_s = time.perf_counter() - t0
    schedule_dir = Path(tempfile.mkdtemp(prefix="bench-steady-"))
    results: list[dict[str, Any]] = []
    for follow in STEADY_FOLLOW:
        env = {
            **ctx.server_env,
            "DATABASE_POOL_MAX": "6",
            "JOURNEYS_TICK_FOLLOW_SECONDS": str(follow),
        }
        worker = _worker_with_beat(env, "journeys-steady-worker", schedule_dir / f"beat-{follow}")
        try:
            time.sleep(10)  # the worker and its beat start; their ticks find nothing due yet
            start = timezone.now() + dt.timedelta(seconds=2)
            step_s = STEADY_WINDOW / STEADY_DUE
            with connection.cursor() as cursor:
                # The next STEADY_DUE waiting rows fall due one every step_s seconds from start.
                cursor.execute(
                    f"""
                    WITH pick AS (
                        SELECT id, row_number() OVER (ORDER BY due_at) - 1 AS n FROM {table}
                        WHERE journey_id = %s AND state = 'active' ORDER BY due_at LIMIT %s
                    )
                    UPDATE {table} e SET due_at = %s + pick.n * make_interval(secs => %s)
                    FROM pick WHERE e.id = pick.id
                    RETURNING e.id, e.due_at
                    """,
                    [journey.pk, STEADY_DUE, start, step_s],
                )
                due = dict(cursor.fetchall())
                cursor.execute(
                    f"SELECT count(*) FROM {table} WHERE journey_id = %s AND state = 'active'", [journey.pk]
                )
                waiting = cursor.fetchone()[0]
                # The floor: ONE indexed query reading every row due in the window.
                window_end = start + dt.timedelta(seconds=STEADY_WINDOW)
                query = f"SELECT id, due_at FROM {table} WHERE state = 'active' AND due_at <= %s"
                t1 = time.perf_counter()
                cursor.execute(query, [window_end])
                query_rows = len(cursor.fetchall())
                query_s = time.perf_counter() - t1
                cursor.execute("EXPLAIN " + query, [window_end])
                plan = " / ".join(r[0].strip() for r in cursor.fetchall()[:2])
            busy = harness.machine_busy_pct(0.5)
            load = os.getloadavg()[0]
            seen: dict[int, float] = {}
            poll = (
                f"SELECT id FROM {table} WHERE journey_id = %s AND state <> 'active' "
                "AND finished_at >= %s AND NOT (id = ANY(%s))"
            )
            stop_at = window_end.timestamp() + 15
            while len(seen) < len(due) and time.time() < stop_at:
                with connection.cursor() as cursor:
                    cursor.execute(poll, [journey.pk, start - dt.timedelta(seconds=1), list(seen)])
                    at = time.time()
                    for (pk,) in cursor.fetchall():
                        seen[pk] = at
                time.sleep(0.05)
            time.sleep(2)  # anything fired that should not have (a far-away row) shows up now
        finally:
            _stop(worker)
        finished = dict(
            Enrollment.objects.filter(journey=journey, state="completed", finished_at__gte=start).values_list(
                "id", "finished_at"
            )
        )
        late = sorted((finished[pk] - due[pk]).total_seconds() for pk in due if pk in finished)
        late_seen = sorted(seen[pk] - due[pk].timestamp() for pk in due if pk in seen)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*), count(DISTINCT enrollment_id) FROM {runs_table} "
                "WHERE journey_id = %s AND enrollment_id = ANY(%s)",
                [journey.pk, list(due)],
            )
            step_runs, distinct_runs = cursor.fetchone()
        early = [pk for pk in due if pk in finished and finished[pk] < due[pk]]
        strays = len(set(finished) - set(due))
        label = f"follow {follow:g} s" if follow else "one pass per beat"
        if len(late) != len(due):
            errors.append(f"steady ({label}): {len(due) - len(late)} of {len(due)} due timers did not fire")
        if early or strays or step_runs != len(due) or distinct_runs != len(due):
            errors.append(
                f"steady ({label}): {len(early)} fired early, {strays} not due fired, "
                f"{step_runs} step runs for {len(due)} timers"
            )
        p99 = _pct(late, 0.99)
        if late and late[-1] > AIM_LATE_S:
            errors.append(
                f"steady ({label}): the latest timer fired {late[-1]:.3f} s late (aim {AIM_LATE_S} s)"
            )
        results.append(
            {
                "follow_seconds": follow,
                "waiting": waiting,
                "due": len(due),
                "window_s": STEADY_WINDOW,
                "fired": len(late),
                "step_runs": step_runs,
                "late_p50_s": round(_pct(late, 0.5), 3),
                "late_p99_s": round(p99, 3),
                "late_max_s": round(late[-1], 3) if late else None,
                "seen_p50_s": round(_pct(late_seen, 0.5), 3),
                "seen_p99_s": round(_pct(late_seen, 0.99), 3),
                "seen_max_s": round(late_seen[-1], 3) if late_seen else None,
                "indexed_query_s": round(query_s, 4),
                "indexed_query_rows": query_rows,
                "indexed_query_plan": plan,
                "machine_busy_pct": busy,
                "load_1m": round(load, 2),
            }
        )
    with connection.cursor() as cursor:  # the ORM's cascade would name every id in one statement
        cursor.execute(f"DELETE FROM {runs_table} WHERE journey_id = %s", [journey.pk])
        cursor.execute(f"DELETE FROM {table} WHERE journey_id = %s", [journey.pk])
        cursor.execute("DELETE FROM customers_customer WHERE workspace_id = %s", [workspace.pk])
    return {"seed_s": round(seeded_s, 1), "runs": results}


def run(ctx: Context) -> BenchResult:
    errors: list[str] = []
    busy = harness.machine_busy_pct()
    keyword = _keyword_to_provider(ctx, errors) if "keyword" in PARTS else None
    timers = _due_at_once(ctx, errors) if "timers" in PARTS else None
    steady = _steady(ctx, errors) if "steady" in PARTS else None
    lines = ["Journeys"]
    if keyword:
        lines.append(
            f"  keyword → first journey message at the fake Twilio ({keyword['messages']} messages at "
            f"{keyword['rate_per_s']}/s): p50 {keyword['p50_s']:.3f} s, p95 {keyword['p95_s']:.3f} s, "
            f"max {keyword['max_s']:.3f} s (aim p95 < {AIM_P95_S} s)"
        )
        lines.append(
            "  hops p50/p95 s: "
            + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in keyword["stages_p50_p95_s"].items())
        )
    if timers:
        lines += [
            f"  {timers['enrollments']} enrollments due at once, {timers['schedulers']} schedulers: the last "
            f"fired {timers['last_late_s']} s late ({timers['fired_per_s']}/s); one indexed query reading "
            f"the same rows: {timers['indexed_query_s']} s (aim: last < {AIM_LATE_S} s late); all seen "
            f"committed {timers['all_committed_late_s']} s after the due time",
            f"  plan: {timers['indexed_query_plan']}",
        ]
    for r in steady["runs"] if steady else []:
        mode = (
            f"tick follows the next due time for {r['follow_seconds']:g} s"
            if r["follow_seconds"]
            else ("one pass per beat")
        )
        beat = os.environ.get("JOURNEYS_TICK_SECONDS", "1")
        lines += [
            f"  steady, {mode}: {r['due']} of {r['waiting']} waiting enrollments due over "
            f"{r['window_s']:g} s (beat every {beat} s, real task): fired {r['fired']}; late p50 "
            f"{r['late_p50_s']} s, p99 {r['late_p99_s']} s, max {r['late_max_s']} s (aim < {AIM_LATE_S} s); "
            f"seen committed p50 {r['seen_p50_s']} s, p99 {r['seen_p99_s']} s, max {r['seen_max_s']} s; "
            f"one indexed query reading the {r['indexed_query_rows']} due rows: {r['indexed_query_s']} s; "
            f"machine {r['machine_busy_pct']}% busy, load {r['load_1m']}",
        ]
    lines.append(f"  machine busy before: {busy}%")
    report = "\n".join(lines)
    return BenchResult(
        name="journeys",
        data={
            "keyword_to_provider": keyword,
            "due_at_once": timers,
            "steady": steady,
            "machine_busy_pct_before": busy,
        },
        report=report,
        errors=errors,
    )
