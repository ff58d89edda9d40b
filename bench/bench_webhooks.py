"""Outbound webhook deliveries per second to a local receiver, against the receiver's own rate.

The receiver is a bare ASGI app under uvicorn (``bench/webhook_receiver_asgi.py``) on loopback. In each of
``ctx.rounds`` interleaved rounds:

* ``bare_keepalive`` — the harness's load generator POSTs webhook-sized JSON bodies to the receiver over
  keep-alive connections: the receiver's own rate, the ceiling.
* ``bare_new_connection`` — a plain ``http.client`` POST per request on a new connection (as the delivery
  worker connects: one checked address per delivery, no pooling), from ``WEBHOOKS_CONCURRENCY`` threads.
* ``deliveries`` — ``ctx.requests`` delivery rows recorded by the webhook listener from synthetic
  ``message.received`` events (200 customers), then drained by the delivery worker's run
  (``webhook_deliveries_run``: claim with SKIP LOCKED, resolve and check the target, sign with
  standardwebhooks, POST, record the attempt) in this process, with its default concurrency.

Also reported: how fast the listener records deliveries (``record``, one INSERT per event plus the
Celery kick). Errors: any delivery not delivered, any receiver answer that is not 200.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench import harness
from bench.harness import BenchResult, Context

CUSTOMERS = 200


def _body(n: int) -> bytes:
    data = {"message_id": n, "conversation_id": n, "customer_id": n % CUSTOMERS, "channel_kind": "sms"}
    payload = {"id": f"evt_{uuid.uuid4().hex}", "type": "message.received", "timestamp": "", "data": data}
    return json.dumps(payload, separators=(",", ":")).encode()


def _seed(url: str) -> Any:
    from django.conf import settings

    from engagement.models import Workspace
    from engagement.webhooks.services import webhook_endpoint_create

    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True  # the receiver is on loopback
    workspace = Workspace.objects.create(name="Bench webhooks", slug="bench-webhooks")
    endpoint, _ = webhook_endpoint_create(workspace=workspace, url=url, event_types=["message.received"])
    return workspace, endpoint


def _record(workspace_id: int, count: int, start: int) -> float:
    from engagement import events
    from engagement.webhooks.services import webhook_deliveries_record

    t0 = time.perf_counter()
    for n in range(start, start + count):
        webhook_deliveries_record(
            event=events.DomainEvent(
                name=events.MESSAGE_RECEIVED,
                workspace_id=workspace_id,
                interaction_id=n,
                conversation_id=n,
                customer_id=n % CUSTOMERS,
                data={"channel_kind": "sms"},
            )
        )
    return time.perf_counter() - t0


def _bare_new_connections(server: harness.Server, count: int, concurrency: int) -> tuple[float, int]:
    """``count`` POSTs, each on its own connection, from ``concurrency`` threads; (seconds, non-200s)."""
    bodies = [_body(n) for n in range(count)]

    def post(body: bytes) -> int:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        try:
            conn.request("POST", "/hooks", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        statuses = list(pool.map(post, bodies))
    return time.perf_counter() - t0, sum(1 for s in statuses if s != 200)


def _pct(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def run(ctx: Context) -> BenchResult:
    from django.conf import settings

    from engagement.models import WebhookDelivery
    from engagement.webhooks.delivery import webhook_deliveries_run

    errors: list[str] = []
    background = harness.machine_busy_pct()
    concurrency = settings.WEBHOOKS_CONCURRENCY
    per_round = max(ctx.requests // ctx.rounds, 1)
    with harness.uvicorn_server(
        ctx.server_env, workers=1, name="webhook-receiver", app="bench.webhook_receiver_asgi:app"
    ) as server:
        workspace, endpoint = _seed(f"{server.base_url}/hooks")
        host = f"{server.host}:{server.port}"
        headers = {"Content-Type": "application/json"}

        def bare_requests(count: int) -> list[bytes]:
            return [
                harness.http_request("POST", "/hooks", host, headers=headers, body=_body(n))
                for n in range(count)
            ]

        # Warm-up: the receiver, the ORM, the delivery path.
        harness.run_load("warmup", server, bare_requests(ctx.warmup), concurrency=concurrency)
        _record(workspace.pk, min(ctx.warmup, 50), 10_000_000)
        webhook_deliveries_run(budget_seconds=120)

        keepalive: harness.LoadResult | None = None
        keepalive_cpu = harness.CpuUsage()
        new_conn_s = deliver_s = record_s = 0.0
        delivery_cpu = harness.CpuUsage()
        delivered_before = WebhookDelivery.objects.filter(endpoint=endpoint, state="delivered").count()
        for r in range(ctx.rounds):
            result, cpu = harness.run_load(
                "bare_keepalive", server, bare_requests(per_round), concurrency=concurrency
            )
            keepalive = result if keepalive is None else keepalive + result
            keepalive_cpu += cpu
            if result.errors():
                errors.append(f"bare_keepalive round {r}: {result.errors()} errors {result.error_samples}")

            seconds, bad = _bare_new_connections(server, per_round, concurrency)
            new_conn_s += seconds
            if bad:
                errors.append(f"bare_new_connection round {r}: {bad} answers were not 200")

            record_s += _record(workspace.pk, per_round, r * per_round)
            before = harness.cpu_snapshot(server.proc.pid, server.database)
            t0 = time.perf_counter()
            webhook_deliveries_run(budget_seconds=ctx.max_seconds)
            deliver_s += time.perf_counter() - t0
            delivery_cpu += harness.cpu_delta(before, harness.cpu_snapshot(server.proc.pid, server.database))

        total = per_round * ctx.rounds
        delivered = (
            WebhookDelivery.objects.filter(endpoint=endpoint, state="delivered").count() - delivered_before
        )
        not_delivered = WebhookDelivery.objects.filter(endpoint=endpoint).exclude(state="delivered").count()
        if delivered != total or not_delivered:
            errors.append(f"{delivered} of {total} deliveries delivered; {not_delivered} not delivered")

    assert keepalive is not None
    keepalive_rps = keepalive.rps
    new_conn_rps = total / new_conn_s if new_conn_s else 0.0
    deliveries_rps = total / deliver_s if deliver_s else 0.0
    record_rps = total / record_s if record_s else 0.0
    data = {
        "deliveries_per_round": per_round,
        "rounds": ctx.rounds,
        "concurrency": concurrency,
        "machine_busy_pct_before": background,
        "bare_keepalive": {**harness.summarize(keepalive), "cpu": keepalive_cpu.as_dict(keepalive.completed)},
        "bare_new_connection_rps": round(new_conn_rps, 1),
        "deliveries_per_s": round(deliveries_rps, 1),
        "deliveries_cpu": delivery_cpu.as_dict(total),
        "listener_records_per_s": round(record_rps, 1),
        "deliveries_pct_of_keepalive": round(100 * deliveries_rps / keepalive_rps, 1)
        if keepalive_rps
        else None,
        "deliveries_pct_of_new_connection": round(100 * deliveries_rps / new_conn_rps, 1)
        if new_conn_rps
        else None,
    }
    report = "\n".join(
        [
            "Outbound webhooks: deliveries to a local receiver (bare ASGI app, 1 uvicorn worker)",
            f"  receiver, bare client, keep-alive     {keepalive_rps:9.1f} req/s",
            f"  receiver, bare client, new connection {new_conn_rps:9.1f} req/s",
            f"  webhook deliveries (claim, check, sign, POST, record) {deliveries_rps:9.1f} /s "
            f"= {data['deliveries_pct_of_keepalive']}% of keep-alive, "
            f"{data['deliveries_pct_of_new_connection']}% of new-connection",
            f"  listener recording deliveries          {record_rps:9.1f} events/s",
            f"  {total} deliveries over {ctx.rounds} rounds, concurrency {concurrency}; machine busy before: "
            f"{background}%",
        ]
    )
    return BenchResult(name="webhooks", data=data, report=report, errors=errors)
