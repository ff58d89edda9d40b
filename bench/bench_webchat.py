"""Webchat round trips on the real ASGI server, against a bare Channels echo consumer in the same run.

* ``echo``    — ``ws /bench/echo/`` (bench/webchat_asgi.py, mounted only by this benchmark's server): each
  connection sends a frame and waits for it to come back. The baseline: a websocket round trip through
  uvicorn and Channels with no work.
* ``webchat`` — ``ws /ws/webchat/<token>/`` from many concurrent anonymous visitors (Origin checked, hello,
  then messages with client ids). Each message is stored on the timeline (ProviderEvent, customer,
  conversation, Interaction) and acknowledged; an agent's console socket (``/ws/console/``, signed in)
  receives its ``message.received``. Reported: messages per second, and latency from the visitor's send
  to the ack and to the agent's console.

Both scenarios use the same number of connections, each sending its messages one after another, in
interleaved rounds so a change of background load hits both alike.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from bench import harness
from bench.harness import BenchResult, Context

AIM_PCT = 20.0  # webchat messages/s at least 20% of the bare echo consumer's
AIM_P99_MS = 200.0  # visitor → agent console p99 at half the measured maximum
LOAD_FRACTION = 0.5
PACED_SECONDS = 15.0

ORIGIN = "https://bench-shop.example"
APP = "bench.webchat_asgi:application"


def _seed(secret_key: str) -> dict[str, Any]:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import override_settings

    from engagement.models import Channel, Membership, Role, Workspace

    workspace = Workspace.objects.create(name="Bench chat", slug="bench-chat")
    channel = Channel.objects.create(
        workspace=workspace,
        kind="webchat",
        provider="webchat",
        name="Bench chat",
        address="bench-website",
        config={"allowed_origins": [ORIGIN]},
    )
    user = get_user_model().objects.create_user(username="bench-agent", password="bench-pass-123456")
    Membership.objects.create(workspace=workspace, user=user, role=Role.AGENT)
    # The server signs sessions with its own SECRET_KEY: create the agent's session under that key.
    with override_settings(SECRET_KEY=secret_key):
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session["workspace_id"] = workspace.pk
        session.create()
    return {"channel_id": channel.pk, "token": channel.webhook_token, "session": session.session_key}


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    ordered = sorted(values)

    def q(p: float) -> float | None:
        if not ordered:
            return None
        k = (len(ordered) - 1) * p
        lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
        return round((ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)) * 1000.0, 2)

    return {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": q(1.0)}


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class Load:
    """The connections of both scenarios and everything measured on them."""

    def __init__(self, server: harness.Server, token: str, session: str, connections: int) -> None:
        self.server, self.token, self.session, self.connections = server, token, session, connections
        self.ws_base = server.base_url.replace("http://", "ws://")
        self.visitors: list[Any] = []
        self.echoes: list[Any] = []
        self.console: Any = None
        self.agent_seen: dict[int, float] = {}
        self.sent_at: dict[str, float] = {}
        self.acked: dict[str, tuple[int, float]] = {}
        self.errors: list[str] = []
        self.listener: asyncio.Task[None] | None = None

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self.console = await connect(
            f"{self.ws_base}/ws/console/",
            additional_headers={"Cookie": f"sessionid={self.session}", "Origin": self.server.base_url},
            open_timeout=60,
        )
        self.listener = asyncio.create_task(self._listen_console())

        async def visitor() -> Any:
            ws = await connect(
                f"{self.ws_base}/ws/webchat/{self.token}/",
                additional_headers={"Origin": ORIGIN},
                open_timeout=60,
            )
            await ws.send(json.dumps({"type": "hello", "visitor": "", "identity": None, "after": 0}))
            welcome = json.loads(await ws.recv())
            if welcome.get("type") != "welcome":
                raise RuntimeError(f"visitor refused: {welcome}")
            return ws

        async def echo() -> Any:
            return await connect(f"{self.ws_base}/bench/echo/", open_timeout=60)

        self.visitors = list(await asyncio.gather(*(visitor() for _ in range(self.connections))))
        self.echoes = list(await asyncio.gather(*(echo() for _ in range(self.connections))))

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
        for ws in [*self.visitors, *self.echoes, self.console]:
            if ws is not None:
                await ws.close()

    async def _listen_console(self) -> None:
        async for raw in self.console:
            event = json.loads(raw)
            if event.get("event") == "message.received" and event.get("interaction_id"):
                self.agent_seen.setdefault(int(event["interaction_id"]), time.perf_counter())

    async def webchat_round(self, label: str, total: int) -> tuple[list[float], float]:
        """Every visitor sends its share one after another; returns send→ack latencies and elapsed."""
        latencies: list[float] = []

        async def one(index: int, ws: Any, count: int) -> None:
            for n in range(count):
                client_id = f"{label}-{index:03d}-{n:05d}"
                started = time.perf_counter()
                self.sent_at[client_id] = started
                await ws.send(json.dumps({"type": "message", "client_id": client_id, "body": f"Bench {n}"}))
                while True:
                    frame = json.loads(await ws.recv())
                    if frame.get("type") == "ack" and frame.get("client_id") == client_id:
                        break
                    if frame.get("type") == "error":
                        self.errors.append(f"{client_id}: {frame}")
                        break
                now = time.perf_counter()
                if frame.get("type") == "ack":
                    self.acked[client_id] = (int(frame["message"]["id"]), now)
                    latencies.append(now - started)

        started = time.perf_counter()
        shares = _split(total, len(self.visitors))
        await asyncio.gather(
            *(one(i, ws, k) for i, (ws, k) in enumerate(zip(self.visitors, shares, strict=True)))
        )
        return latencies, time.perf_counter() - started

    async def webchat_paced(self, label: str, total: int, rate: float) -> list[float]:
        """Open loop: message k is due at k / ``rate`` seconds, sent by visitor k mod n once that visitor
        has its previous ack; latencies (to the ack, and in ``sent_at`` for the agent) count from when the
        message was due, so a backlog shows up as latency."""
        latencies: list[float] = []
        count = len(self.visitors)
        start = time.perf_counter() + 0.05

        async def one(index: int, ws: Any) -> None:
            for k in range(index, total, count):
                client_id = f"{label}-{index:03d}-{k:05d}"
                due = start + k / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                self.sent_at[client_id] = due
                await ws.send(json.dumps({"type": "message", "client_id": client_id, "body": f"Bench {k}"}))
                while True:
                    frame = json.loads(await ws.recv())
                    if frame.get("type") == "ack" and frame.get("client_id") == client_id:
                        self.acked[client_id] = (int(frame["message"]["id"]), time.perf_counter())
                        latencies.append(time.perf_counter() - due)
                        break
                    if frame.get("type") == "error":
                        self.errors.append(f"{client_id}: {frame}")
                        break

        await asyncio.gather(*(one(i, ws) for i, ws in enumerate(self.visitors)))
        return latencies

    async def echo_round(self, total: int) -> tuple[list[float], float]:
        latencies: list[float] = []

        async def one(ws: Any, count: int) -> None:
            for n in range(count):
                payload = json.dumps({"type": "message", "client_id": f"echo-{n:05d}", "body": f"Bench {n}"})
                started = time.perf_counter()
                await ws.send(payload)
                await ws.recv()
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        shares = _split(total, len(self.echoes))
        await asyncio.gather(*(one(ws, k) for ws, k in zip(self.echoes, shares, strict=True)))
        return latencies, time.perf_counter() - started

    async def agent_latencies(self, client_ids: list[str], wait: float = 10.0) -> tuple[list[float], int]:
        """Send→agent's console latency of each acked message; how many never reached the console."""
        deadline = time.perf_counter() + wait
        ids = [self.acked[c][0] for c in client_ids if c in self.acked]
        while any(i not in self.agent_seen for i in ids) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        out = [
            self.agent_seen[self.acked[c][0]] - self.sent_at[c]
            for c in client_ids
            if c in self.acked and self.acked[c][0] in self.agent_seen
        ]
        return out, sum(1 for i in ids if i not in self.agent_seen)


def _database_check(channel_id: int, acked: int) -> dict[str, Any]:
    from django.db.models import Count

    from channels_inbound.models import ProviderEvent
    from engagement.models import Interaction

    inbound = Interaction.objects.filter(channel_id=channel_id, direction="inbound")
    duplicated = inbound.values("provider_message_id").annotate(n=Count("id")).filter(n__gt=1).count()
    check = {
        "messages_acked": acked,
        "interactions_inbound": inbound.count(),
        "duplicated": duplicated,
        "provider_events": ProviderEvent.objects.filter(channel_id=channel_id).count(),
        "provider_events_unprocessed": ProviderEvent.objects.filter(
            channel_id=channel_id, processed_at__isnull=True
        ).count(),
    }
    check["ok"] = (
        check["interactions_inbound"] == acked
        and duplicated == 0
        and check["provider_events"] == acked
        and check["provider_events_unprocessed"] == 0
    )
    return check


def run(ctx: Context) -> BenchResult:
    env = {
        **ctx.server_env,
        "WEBCHAT_RATE_VISITOR_MESSAGES_PER_MINUTE": "1000000",
        "WEBCHAT_RATE_IP_MESSAGES_PER_MINUTE": "1000000",
        "WEBCHAT_RATE_IP_NEW_VISITORS_PER_HOUR": "1000000",
    }
    seeded = _seed(env["SECRET_KEY"])
    connections = max(ctx.concurrency * 2, 32)
    errors: list[str] = []
    background = harness.machine_busy_pct()
    measured = {"echo": [], "webchat": [], "agent": [], "paced_ack": [], "paced_agent": []}  # type: dict[str, list[float]]
    paced: dict[str, Any] = {"rate": 0.0, "count": 0}
    elapsed = {"echo": 0.0, "webchat": 0.0}
    usage: dict[str, harness.CpuUsage] = {}
    missing_at_agent = 0
    # The agent console hears of a visitor's message through the outbox relay, as in production.
    with (
        harness.outbox_relay(env, name="relay-webchat"),
        harness.uvicorn_server(env, workers=ctx.workers, name="uvicorn-webchat", app=APP) as server,
    ):

        async def main() -> None:
            nonlocal missing_at_agent
            load = Load(server, seeded["token"], seeded["session"], connections)
            await load.open()
            try:
                harness.log(
                    f"webchat: warm-up, {ctx.warmup} messages per scenario over {connections} sockets"
                )
                await load.echo_round(ctx.warmup)
                await load.webchat_round("warm", ctx.warmup)
                for number, share in enumerate(_split(ctx.requests, ctx.rounds)):
                    harness.log(f"round {number + 1}/{ctx.rounds}: echo and webchat, {share} messages each")
                    before = harness.cpu_snapshot(server.proc.pid, server.database)
                    lat, took = await load.echo_round(share)
                    after = harness.cpu_snapshot(server.proc.pid, server.database)
                    measured["echo"] += lat
                    elapsed["echo"] += took
                    used = harness.cpu_delta(before, after)
                    usage["echo"] = usage["echo"] + used if "echo" in usage else used
                    label = f"r{number}"
                    before = after
                    lat, took = await load.webchat_round(label, share)
                    after = harness.cpu_snapshot(server.proc.pid, server.database)
                    measured["webchat"] += lat
                    elapsed["webchat"] += took
                    used = harness.cpu_delta(before, after)
                    usage["webchat"] = usage["webchat"] + used if "webchat" in usage else used
                    sent = [c for c in load.sent_at if c.startswith(f"{label}-")]
                    agent, missing = await load.agent_latencies(sent)
                    measured["agent"] += agent
                    missing_at_agent += missing
                # Latency at half the measured maximum, open loop.
                max_rate = len(measured["webchat"]) / elapsed["webchat"] if elapsed["webchat"] else 0.0
                paced["rate"] = round(LOAD_FRACTION * max_rate, 1)
                paced["count"] = max(50, min(ctx.requests, int(paced["rate"] * PACED_SECONDS)))
                harness.log(
                    f"webchat at {LOAD_FRACTION:.0%} load: {paced['count']} at {paced['rate']} msgs/s"
                )
                measured["paced_ack"] = await load.webchat_paced(
                    "paced", paced["count"], paced["rate"] or 1.0
                )
                sent = [c for c in load.sent_at if c.startswith("paced-")]
                agent, missing = await load.agent_latencies(sent)
                measured["paced_agent"] = agent
                missing_at_agent += missing
                errors.extend(load.errors[:5])
            finally:
                await load.close()

        asyncio.run(main())
        server_log = server.log_tail(15)

    acked_total = ctx.warmup + len(measured["webchat"]) + len(measured["paced_ack"])
    check = _database_check(seeded["channel_id"], acked_total)
    check["missing_at_agent"] = missing_at_agent
    if not check["ok"] or missing_at_agent or len(measured["webchat"]) != ctx.requests:
        errors.append(
            f"database/agent check failed: {check}, acked {len(measured['webchat'])}/{ctx.requests}"
        )

    def rate(kind: str) -> float:
        return round(len(measured[kind]) / elapsed[kind], 1) if elapsed[kind] else 0.0

    echo_rate, chat_rate = rate("echo"), rate("webchat")
    ratio = round(100.0 * chat_rate / echo_rate, 1) if echo_rate else 0.0
    paced_agent = _percentiles(measured["paced_agent"])
    p99_agent = paced_agent["p99"]
    latency_met = (
        p99_agent is not None and p99_agent < AIM_P99_MS and len(measured["paced_ack"]) == paced["count"]
    )
    rate_met = ratio >= AIM_PCT
    scenarios: dict[str, dict[str, Any]] = {
        "echo": {
            "messages": len(measured["echo"]),
            "msgs_per_s": echo_rate,
            "round_trip_ms": _percentiles(measured["echo"]),
        },
        "webchat": {
            "messages": len(measured["webchat"]),
            "msgs_per_s": chat_rate,
            "visitor_to_ack_ms": _percentiles(measured["webchat"]),
            "visitor_to_agent_ms": _percentiles(measured["agent"]),
        },
        "webchat_at_half_load": {
            "rate_msgs_per_s": paced["rate"],
            "messages": paced["count"],
            "acked": len(measured["paced_ack"]),
            "visitor_to_ack_ms": _percentiles(measured["paced_ack"]),
            "visitor_to_agent_ms": paced_agent,
        },
    }
    cpu = {name: usage[name].as_dict(len(measured[name])) for name in usage}
    data = {
        "config": {
            "messages_per_scenario": ctx.requests,
            "warmup_per_scenario": ctx.warmup,
            "rounds": ctx.rounds,
            "connections": connections,
            "uvicorn_workers": ctx.workers,
            "machine_busy_pct_before_start": background,
        },
        "scenarios": scenarios,
        "cpu": cpu,
        "webchat_vs_echo_rate_pct": ratio,
        "aim_pct": AIM_PCT,
        "aim_met": rate_met,
        "aim_p99_ms": AIM_P99_MS,
        "aim_p99_met": latency_met,
        "database_check": check,
    }
    e_ms: Any = scenarios["echo"]["round_trip_ms"]
    ack_ms: Any = scenarios["webchat"]["visitor_to_ack_ms"]
    agent_ms: Any = scenarios["webchat"]["visitor_to_agent_ms"]
    lines = [
        f"webchat: {ctx.requests} messages per scenario in {ctx.rounds} interleaved rounds after "
        f"{ctx.warmup} warm-up, {connections} concurrent websockets, uvicorn --workers {ctx.workers}",
        f"  machine busy before start: {background}%",
        f"  echo     {echo_rate:>8.1f} msgs/s   round trip p50 {e_ms['p50']} ms   p99 {e_ms['p99']} ms",
        f"  webchat  {chat_rate:>8.1f} msgs/s   visitor→ack p50 {ack_ms['p50']} ms   p99 {ack_ms['p99']} ms",
        f"           visitor→agent console p50 {agent_ms['p50']} ms   p99 {agent_ms['p99']} ms",
        f"  webchat / echo rate = {ratio:.1f}%; aim at least {AIM_PCT:.0f}%"
        f" -> {'MET' if rate_met else 'NOT MET'}",
        f"  at {LOAD_FRACTION:.0%} of the measured maximum ({paced['rate']} msgs/s, open loop,"
        f" {paced['count']} messages): visitor→agent console p50 {paced_agent['p50']} ms"
        f"   p99 {p99_agent} ms;"
        f" aim p99 < {AIM_P99_MS:.0f} ms -> {'MET' if latency_met else 'NOT MET'}",
        *(
            f"  {name:<8} server CPU {c.get('server_cpu_ms_per_request', 0):.2f} ms/msg"
            f"   postgres {c.get('postgres_cpu_ms_per_request', 0):.2f} ms/msg"
            f"   machine busy {c['machine_busy_pct']}%"
            for name, c in cpu.items()
        ),
        f"  database check: {check['interactions_inbound']} inbound interactions for {acked_total} acked "
        f"messages, {check['duplicated']} duplicated, {missing_at_agent} never reached the agent -> "
        f"{'OK' if check['ok'] and not missing_at_agent else 'FAILED'}",
    ]
    if errors and server_log:
        lines += ["", "  uvicorn log (tail):", *("    " + line for line in server_log.splitlines())]
    return BenchResult(name="webchat", data=data, report="\n".join(lines), errors=errors)
