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
# Which parts run: "keyword", "timers" (comma-separated; both by default).
PARTS = set(os.environ.get("JOURNEYS_BENCH_PARTS", "keyword,timers").split(","))
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


def run(ctx: Context) -> BenchResult:
    errors: list[str] = []
    busy = harness.machine_busy_pct()
    keyword = _keyword_to_provider(ctx, errors) if "keyword" in PARTS else None
    timers = _due_at_once(ctx, errors) if "timers" in PARTS else None
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
    lines.append(f"  machine busy before: {busy}%")
    report = "\n".join(lines)
    return BenchResult(
        name="journeys",
        data={"keyword_to_provider": keyword, "due_at_once": timers, "machine_busy_pct_before": busy},
        report=report,
        errors=errors,
    )
