"""Signed inbound Twilio SMS webhooks against the bare view, on the real ASGI server.

Scenarios, each after its own warm-up, over the same keep-alive connections and concurrency:

* ``bare_get``  — ``GET /healthz``: the bare Django view, the baseline of the aim.
* ``bare_post`` — ``POST /healthz`` with a webhook-sized form body (and a CSRF cookie + header so the
  middleware lets it through): what a POST costs before any webhook work.
* ``webhook``   — ``POST /webhooks/twilio/<token>/inbound/``, a captured Twilio payload with a distinct
  MessageSid per request, From drawn from a pool of numbers (new and returning customers), signed
  with X-Twilio-Signature over exactly the URL posted to.

Aim (from the issue): the webhook at least 40% of the bare view's rate.
"""

from __future__ import annotations

import random
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench import harness
from bench.harness import BenchResult, Context

AIM_PCT = 40.0
AIM_TEXT = "Aim: at least 40% of the baseline's rate (the fastest bare view of the run)"
AIM_P99_MS = 300.0
LOAD_FRACTION = 0.7  # the latency aim holds at 70% of the measured maximum
PACED_SECONDS = 15.0
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
FROM_POOL = [f"+1908555{n:04d}" for n in range(200)]
PAYLOAD = (
    Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "payloads" / "twilio_inbound_sms.txt"
)
NEVER_MATCHES = "bench-keyword-that-no-message-contains"


def _captured_form() -> dict[str, str]:
    """The captured payload (first line is its '# SOURCE' note), in the order Twilio sent it."""
    body = PAYLOAD.read_text().split("\n", 1)[1]
    return dict(line.split("=", 1) for line in body.splitlines() if "=" in line)


def _seed() -> dict[str, Any]:
    from engagement.models import AutomationRule, Channel, Workspace
    from engagement.models.automation import MatchType, Trigger

    workspace = Workspace.objects.create(name="Bench", slug="bench")
    channel = Channel.objects.create(
        workspace=workspace,
        kind="sms",
        provider="twilio",
        name="Bench SMS",
        address=_captured_form()["To"],
        # Credentials of nobody, and an API base nobody listens on: nothing can reach real Twilio.
        config={
            "account_sid": "AC" + "0" * 32,
            "auth_token": AUTH_TOKEN,
            "api_base_url": "http://127.0.0.1:9",
        },
    )
    AutomationRule.objects.create(
        workspace=workspace,
        name="bench: enabled, never matches",
        enabled=True,
        trigger=Trigger.MESSAGE_RECEIVED,
        match_type=MatchType.KEYWORD,
        keywords=NEVER_MATCHES,
        template="this reply is never sent",
    )
    return {"workspace_id": workspace.pk, "channel_id": channel.pk, "token": channel.webhook_token}


def _webhook_requests(
    server: harness.Server, token: str, count: int, rng: random.Random, seen: set[str]
) -> tuple[list[bytes], list[str], dict[str, int]]:
    """``count`` signed requests with distinct MessageSids; returns them, their sids and a tally."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(AUTH_TOKEN)
    path = f"/webhooks/twilio/{token}/inbound/"
    url = f"{server.base_url}{path}"  # exactly what is posted to (and PUBLIC_BASE_URL + path)
    host = f"{server.host}:{server.port}"
    template = _captured_form()
    requests, sids = [], []
    tally = {"new_sender": 0, "returning_sender": 0}
    for n in range(count):
        sid = f"SM{rng.getrandbits(128):032x}"
        sender = rng.choice(FROM_POOL)
        tally["returning_sender" if sender in seen else "new_sender"] += 1
        seen.add(sender)
        form = {
            **template,
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsMessageSid": sid,
            "From": sender,
            "Body": f"Bench message {n}: is my order on its way?",
        }
        body = urlencode(form).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": validator.compute_signature(url, form),
        }
        requests.append(harness.http_request("POST", path, host, headers=headers, body=body))
        sids.append(sid)
    return requests, sids, tally


def _bare_requests(server: harness.Server, method: str, count: int) -> list[bytes]:
    host = f"{server.host}:{server.port}"
    if method == "GET":
        return [harness.http_request("GET", "/healthz", host)] * count
    # Same size of form body as a webhook; the CSRF middleware checks the cookie against the header.
    csrf = secrets.token_hex(16)  # 32 characters: an unmasked CSRF secret
    body = urlencode({**_captured_form(), "Body": "Bench message 0: is my order on its way?"}).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"csrftoken={csrf}",
        "X-CSRFToken": csrf,
    }
    return [harness.http_request("POST", "/healthz", host, headers=headers, body=body)] * count


def _database_check(workspace_id: int, channel_id: int, sids: list[str], senders_seen: int) -> dict[str, Any]:
    """One Interaction per distinct MessageSid sent, and nothing else (no outbound, no stray rows).

    Scoped to this benchmark's workspace and channel: other benchmarks share the database."""
    from django.db.models import Count

    from channels_inbound.models import ProviderEvent
    from customers.models import Customer
    from engagement.models import Conversation, Interaction

    inbound = Interaction.objects.filter(channel_id=channel_id, direction="inbound")
    per_sid = dict(
        inbound.filter(provider_message_id__in=sids)
        .values_list("provider_message_id")
        .annotate(n=Count("id"))
        .values_list("provider_message_id", "n")
    )
    distinct = len(set(sids))
    missing = sum(1 for sid in set(sids) if sid not in per_sid)
    duplicated = sum(1 for n in per_sid.values() if n != 1)
    events = ProviderEvent.objects.filter(channel_id=channel_id)
    check = {
        "distinct_message_sids_sent": distinct,
        "interactions_inbound": inbound.count(),
        "sids_with_exactly_one_interaction": sum(1 for n in per_sid.values() if n == 1),
        "sids_missing": missing,
        "sids_duplicated": duplicated,
        "interactions_outbound": Interaction.objects.filter(
            workspace_id=workspace_id, direction="outbound"
        ).count(),
        "provider_events": events.count(),
        "provider_events_unprocessed": events.filter(processed_at__isnull=True).count(),
        "customers": Customer.objects.filter(workspace_id=workspace_id).count(),
        "distinct_senders_sent": senders_seen,
        "conversations": Conversation.objects.filter(workspace_id=workspace_id).count(),
    }
    check["ok"] = (
        missing == 0
        and duplicated == 0
        and check["interactions_inbound"] == distinct
        and check["interactions_outbound"] == 0
        and check["provider_events"] == distinct
        and check["provider_events_unprocessed"] == 0
        and check["customers"] == senders_seen
        and check["conversations"] == senders_seen
    )
    return check


def _statements_per_webhook(token: str, senders: dict[str, str], rng: random.Random) -> dict[str, Any]:
    """The SQL one webhook runs, for a new and a returning sender, through Django's test client in this
    process (not timed). A cheap, stable number that tracks most of the webhook's cost."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from twilio.request_validator import RequestValidator

    path = f"/webhooks/twilio/{token}/inbound/"
    client, validator = Client(), RequestValidator(AUTH_TOKEN)
    found: dict[str, Any] = {"sids": []}
    for label, sender in senders.items():
        sid = f"SM{rng.getrandbits(128):032x}"
        form = {**_captured_form(), "MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "From": sender}
        signature = validator.compute_signature(f"http://testserver{path}", form)
        with CaptureQueriesContext(connection) as captured:
            response = client.post(
                path,
                data=urlencode(form),
                content_type="application/x-www-form-urlencoded",
                headers={"X-Twilio-Signature": signature},
            )
        if response.status_code != 200:
            raise RuntimeError(f"statement count: webhook answered {response.status_code}")
        found["sids"].append(sid)
        found[label] = [" ".join(q["sql"].split()[:4])[:80] for q in captured.captured_queries]
    return found


def _queued_tasks(redis_url: str) -> int:
    """Celery tasks the webhooks queued (automation runs; no worker consumes the bench Redis db)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.llen("celery"))
    finally:
        client.close()


def _line(name: str, s: dict[str, Any], cpu: dict[str, Any]) -> str:
    lat = s["latency_ms"]
    spread = "/".join(map(str, s["connections_per_worker"])) or "?"
    return (
        f"  {name:<24} {s['rps']:>8.1f} req/s   p50 {lat['p50']:>7.2f} ms   p99 {lat['p99']:>7.2f} ms"
        f"   CPU/req server {cpu['server_cpu_ms_per_request']:>5.2f} ms"
        f" + postgres {cpu['postgres_cpu_ms_per_request']:>4.2f} ms"
        f"   ({s['completed']} in {s['elapsed_s']:.1f} s, errors {s['errors']}, connections/worker {spread})"
    )


def _cpu_line(name: str, c: dict[str, Any]) -> str:
    workers = " + ".join(f"{v:.1f}" for v in c["server_cpu_s_by_pid"].values()) or "-"
    return (
        f"  {name:<24} wall {c['wall_s']:>6.1f}   server {c['server_cpu_s']:>6.1f} ({workers})"
        f"   postgres {c['postgres_cpu_s']:>5.1f}   loadgen {c['loadgen_cpu_s']:>4.1f}"
        f"   other {c['other_cpu_s']:>5.1f}   machine busy {c['machine_busy_pct']}%"
    )


def _chunks(items: list[bytes], rounds: int) -> list[tuple[int, list[bytes]]]:
    size = -(-len(items) // rounds)
    return [(start, items[start : start + size]) for start in range(0, len(items), size)]


def pct(a: float, b: float) -> float:
    return round(100.0 * a / b, 1) if b else 0.0


def baseline_of(scenarios: dict[str, Any], cpu: dict[str, Any]) -> dict[str, Any]:
    """The fastest ``bare:<kind>`` scenario of the run: the baseline every ratio is taken against."""
    bare = {name: s for name, s in scenarios.items() if name.startswith("bare:")}
    name = max(bare, key=lambda n: bare[n]["rps"])
    return {
        "scenario": name,
        "kind": name.removeprefix("bare:"),
        "rps": bare[name]["rps"],
        "round_rps": bare[name]["round_rps"],
        "server_cpu_ms_per_request": cpu[name]["server_cpu_ms_per_request"],
        "candidates_rps": {n.removeprefix("bare:"): s["rps"] for n, s in bare.items()},
        "candidates_server_cpu_ms_per_request": {
            n.removeprefix("bare:"): cpu[n]["server_cpu_ms_per_request"] for n in bare
        },
    }


def run(ctx: Context) -> BenchResult:
    seeded = _seed()
    rng = random.Random(20261122)  # the same senders and sids every run
    errors: list[str] = []
    background = harness.machine_busy_pct()
    queued_before = _queued_tasks(ctx.redis_url)
    with (
        harness.app_server(
            ctx.server_env, kind=harness.PRODUCT_HTTP_KIND, workers=ctx.workers, name="product-webhook-sms"
        ) as server,
        harness.baseline_servers(ctx.server_env, workers=ctx.workers, product=server) as baselines,
    ):
        seen: set[str] = set()
        warm_reqs, warm_sids, _ = _webhook_requests(server, seeded["token"], ctx.warmup, rng, seen)
        reqs, sids, tally = _webhook_requests(server, seeded["token"], ctx.requests, rng, seen)
        plan: dict[str, tuple[harness.Server, list[bytes], list[bytes]]] = {
            f"bare:{kind}": (
                other,
                _bare_requests(other, "GET", ctx.warmup),
                _bare_requests(other, "GET", ctx.requests),
            )
            for kind, other in baselines.items()
        }
        plan["bare_post"] = (
            server,
            _bare_requests(server, "POST", ctx.warmup),
            _bare_requests(server, "POST", ctx.requests),
        )
        plan["webhook"] = (server, warm_reqs, reqs)
        results: dict[str, harness.LoadResult] = {}
        usage: dict[str, harness.CpuUsage] = {}
        webhook_ok: list[str] = []

        def measure(
            name: str, target: harness.Server, label: str, requests: list[bytes], rate: float | None = None
        ) -> tuple[harness.LoadResult, harness.CpuUsage]:
            result, used = harness.run_load(
                name,
                target,
                requests,
                concurrency=ctx.concurrency,
                max_seconds=ctx.max_seconds,
                rate=rate,
            )
            if result.errors():
                errors.append(f"{name} {label}: {result.errors()} errors, e.g. {result.error_samples[:2]}")
            return result, used

        for name, (target, warm, _) in plan.items():
            harness.log(f"{name}: warm-up, {len(warm)} requests")
            warm_result, _ = measure(name, target, "warm-up", warm)
            if name == "webhook":
                webhook_ok += [warm_sids[i] for i in warm_result.ok_indices]
        # Rounds interleave the scenarios, so a change of background load hits them all alike.
        for number in range(ctx.rounds):
            for name, (target, _, measured) in plan.items():
                start, chunk = _chunks(measured, ctx.rounds)[number]
                harness.log(
                    f"round {number + 1}/{ctx.rounds}: {name}, {len(chunk)} requests x{ctx.concurrency}"
                )
                result, used = measure(name, target, f"round {number + 1}", chunk)
                if name == "webhook":
                    webhook_ok += [sids[start + i] for i in result.ok_indices]
                results[name] = results[name] + result if name in results else result
                usage[name] = usage[name] + used if name in usage else used

        # Latency at 70% of the measured maximum, open loop (requests due at a fixed rate).
        max_rps = results["webhook"].rps
        paced_rate = round(LOAD_FRACTION * max_rps, 1)
        paced_count = max(50, min(ctx.requests, int(paced_rate * PACED_SECONDS)))
        paced_reqs, paced_sids, _ = _webhook_requests(server, seeded["token"], paced_count, rng, seen)
        harness.log(f"webhook at {LOAD_FRACTION:.0%} load: {paced_count} requests at {paced_rate} req/s")
        paced, paced_used = measure(
            "webhook_paced", server, "70% load", paced_reqs, rate=paced_rate if paced_rate > 0 else None
        )
        webhook_ok += [paced_sids[i] for i in paced.ok_indices]
        results["webhook@70%"] = paced
        usage["webhook@70%"] = paced_used
        server_log = server.log_tail(15)

    statements = _statements_per_webhook(
        seeded["token"], {"new_sender": "+19085559999", "returning_sender": FROM_POOL[0]}, rng
    )
    seen.add("+19085559999")
    scenarios = {name: harness.summarize(r) for name, r in results.items()}
    cpu = {name: usage[name].as_dict(results[name].completed) for name in results}
    all_sids = warm_sids + sids + paced_sids + statements["sids"]
    check = _database_check(seeded["workspace_id"], seeded["channel_id"], all_sids, len(seen))
    check["webhooks_answered_200"] = len(webhook_ok) + len(statements["sids"])
    check["automation_tasks_queued"] = _queued_tasks(ctx.redis_url) - queued_before
    if not check["ok"]:
        errors.append(f"database check failed: {check}")

    baseline = baseline_of(scenarios, cpu)
    bare_rps, hook_rps = baseline["rps"], scenarios["webhook"]["rps"]
    ratio = pct(hook_rps, bare_rps)
    ratio_post = pct(hook_rps, scenarios["bare_post"]["rps"])
    round_ratios = [
        pct(h, b) for h, b in zip(scenarios["webhook"]["round_rps"], baseline["round_rps"], strict=True)
    ]

    # The same comparison by server CPU per request, which other load on the machine disturbs far less.
    def cpu_ms(name: str) -> float:
        return float(cpu[name]["server_cpu_ms_per_request"])

    def total_ms(name: str) -> float:
        return cpu_ms(name) + float(cpu[name]["postgres_cpu_ms_per_request"])

    cpu_ratio = pct(cpu_ms(baseline["scenario"]), cpu_ms("webhook"))
    total_cpu_ratio = pct(total_ms(baseline["scenario"]), total_ms("webhook"))
    p99_paced = scenarios["webhook@70%"]["latency_ms"]["p99"]
    met = ratio >= AIM_PCT
    latency_met = p99_paced < AIM_P99_MS and scenarios["webhook@70%"]["errors"] == 0
    data = {
        "config": {
            "requests_per_scenario": ctx.requests,
            "warmup_per_scenario": ctx.warmup,
            "rounds": ctx.rounds,
            "concurrency": ctx.concurrency,
            "workers": ctx.workers,
            "product_http_server": harness.PRODUCT_HTTP_KIND,
            "database_pool_max": ctx.server_env.get("DATABASE_POOL_MAX"),
            "debug": ctx.server_env.get("DEBUG"),
            "from_pool": len(FROM_POOL),
            "webhook_senders": tally,
            "machine_busy_pct_before_start": background,
        },
        "baseline": baseline,
        "scenarios": scenarios,
        "cpu": cpu,
        "ratio_pct": ratio,
        "ratio_vs_bare_post_pct": ratio_post,
        "ratio_per_round_pct": round_ratios,
        "server_cpu_ratio_pct": cpu_ratio,
        "server_and_postgres_cpu_ratio_pct": total_cpu_ratio,
        "paced": {"rate_rps": paced_rate, "requests": paced_count, "p99_ms": p99_paced},
        "aim": AIM_TEXT,
        "aim_pct": AIM_PCT,
        "aim_met": met,
        "aim_p99_ms": AIM_P99_MS,
        "aim_p99_met": latency_met,
        "database_check": check,
        "statements_per_webhook": {k: v for k, v in statements.items() if k != "sids"},
    }
    candidates = ", ".join(f"{k} {v:.0f}" for k, v in baseline["candidates_rps"].items())
    lines = [
        f"webhook_sms: {ctx.requests} requests per scenario in {ctx.rounds} interleaved rounds after "
        f"{ctx.warmup} warm-up, {ctx.concurrency} keep-alive connections, {ctx.workers} workers per server; "
        f"product HTTP on {harness.PRODUCT_HTTP_KIND}",
        f"  machine busy before start: {background}%  (other load on this machine skews requests/s)",
        *(_line(name, s, cpu[name]) for name, s in scenarios.items()),
        f"  baseline: the fastest bare view of this run = {baseline['kind']} {bare_rps:.1f} req/s"
        f" (candidates, req/s: {candidates})",
        f"  webhook senders: {tally['new_sender']} new, {tally['returning_sender']} returning "
        f"(pool of {len(FROM_POOL)})",
        f"  SQL statements per webhook, BEGIN/SAVEPOINT/COMMIT included: {len(statements['new_sender'])} "
        f"for a new sender, {len(statements['returning_sender'])} for a returning one",
        "",
        f"  webhook_rps / baseline_rps = {hook_rps:.1f} / {bare_rps:.1f} = {ratio:.1f}%"
        f"   (per round: {', '.join(f'{r:.1f}%' for r in round_ratios)}; vs bare POST: {ratio_post:.1f}%)",
        f"  {AIM_TEXT} -> {'MET' if met else 'NOT MET'}",
        f"  at {LOAD_FRACTION:.0%} of the webhook's maximum ({paced_rate} req/s, open loop, {paced_count} "
        f"requests): p99 {p99_paced:.1f} ms; aim p99 < {AIM_P99_MS:.0f} ms -> "
        f"{'MET' if latency_met else 'NOT MET'}",
        f"  the same by CPU per request (baseline / webhook), which other load disturbs less: server "
        f"{cpu_ratio:.1f}%, server + postgres {total_cpu_ratio:.1f}%",
        "",
        "  CPU seconds while measuring (server: its workers; postgres: backends of the bench database):",
        *(_cpu_line(name, c) for name, c in cpu.items()),
        "",
        f"  database check: {check['distinct_message_sids_sent']} distinct MessageSids sent, "
        f"{check['webhooks_answered_200']} answered 200, {check['interactions_inbound']} inbound "
        f"Interactions, {check['sids_with_exactly_one_interaction']} with exactly one, "
        f"{check['sids_missing']} missing, {check['sids_duplicated']} duplicated, "
        f"{check['interactions_outbound']} outbound -> {'OK' if check['ok'] else 'FAILED'}",
        f"  customers {check['customers']} (distinct senders {check['distinct_senders_sent']}), "
        f"conversations {check['conversations']}, automation tasks queued {check['automation_tasks_queued']}",
    ]
    if errors and server_log:
        lines += ["", "  server log (tail):", *("    " + line for line in server_log.splitlines())]
    return BenchResult(name="webhook_sms", data=data, report="\n".join(lines), errors=errors)
