"""A soak of mixed load on loopback: ``make soak`` (not part of CI; 10 minutes by default).

The platform runs as ``make run`` runs it — nginx in front (one origin), granian for HTTP, uvicorn for
websockets, a Celery worker — on a dedicated database and an empty Redis db (as ``bench/run.py`` picks
them). For ``--minutes`` it sends, at a steady open-loop rate, a mix of:

* signed inbound Twilio SMS webhooks (distinct MessageSids, 200 senders);
* inbound emails (SendGrid Inbound Parse, raw mode, ~200 KB with a PDF);
* webchat visitor messages over websockets (8 visitors), each acknowledged;
* API sends (``POST /api/v1/messages/``) on a sandbox SMS channel, delivered by the worker;
* console reads (the inbox and a conversation page, with an agent's session).

Every response must be the expected status (no transport error, no 5xx). The resident memory (RSS) of
every process of the platform is sampled every 5 s; the mean of the first minute is compared with the
mean of the last minute, per process: flat within 10% passes. A warm-up minute (not counted) comes first.
Prints a report and writes ``bench/results/soak.json``; exits 1 on an error or a process that grew more.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tools"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench import harness  # noqa: E402
from bench.run import BENCH_DB, django_close, server_env  # noqa: E402

SOAK_DB = os.environ.get("SOAK_DATABASE_NAME", f"{BENCH_DB}_soak")
RSS_TOLERANCE = 0.10
SAMPLE_SECONDS = 5.0
# Share of each kind in the mix (per 100 operations).
MIX = {"sms": 35, "webchat": 20, "console": 20, "api_send": 15, "email": 10}


def _rss_kb(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def _label(pid: int) -> str:
    with contextlib.suppress(OSError):
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        text = " ".join(a.decode(errors="replace") for a in args if a)
        for name in ("nginx: master", "nginx: worker", "granian", "uvicorn", "celery"):
            if name in text:
                return name.split(":")[0] + (":" + name.split(": ")[1] if ": " in name else "")
        return text[:40]
    return "?"


class Platform:
    """nginx + granian + uvicorn (tools/front.py, as make run) and a Celery worker, each in its session."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        front = importlib.import_module("front")  # tools/front.py, the web tier of make run
        self.env, self.port = env, port
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        harness.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        var = harness.RESULTS_DIR / "soak-var"
        commands = front.web_commands(harness.PY, "127.0.0.1", str(port), var)
        commands["worker"] = [
            harness.PY,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-l",
            "warning",
            "-c",
            "2",
        ]
        for name, cmd in commands.items():
            log = open(harness.RESULTS_DIR / f"soak-{name}.log", "wb")  # noqa: SIM115 - closed by the child's exit
            self.procs[name] = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead} exited; see bench/results/soak-*.log")
            if harness._get_ok(f"http://127.0.0.1:{self.port}/healthz"):
                return
            time.sleep(0.3)
        raise RuntimeError("the platform did not answer /healthz")

    def pids(self) -> dict[int, str]:
        found = {}
        for name, proc in self.procs.items():
            for pid in [proc.pid, *harness.process_descendants(proc.pid)]:
                found[pid] = f"{name}/{_label(pid)}"
        return found

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)


def _seed(secret_key: str) -> dict[str, Any]:
    from bench import bench_email_inbound, bench_webchat, bench_webhook_sms
    from engagement.models import Channel, Workspace
    from engagement.services.tenancy import api_key_create

    sms = bench_webhook_sms._seed()
    email = bench_email_inbound._seed()
    chat = bench_webchat._seed(secret_key)
    workspace = Workspace.objects.get(pk=sms["workspace_id"])
    sandbox = Channel.objects.create(
        workspace=workspace, kind="sms", provider="sandbox", name="Soak sends", address="+15005550006"
    )
    _, api_key = api_key_create(workspace=workspace, name="soak")
    return {"sms": sms, "email": email, "chat": chat, "sandbox_id": sandbox.pk, "api_key": api_key}


class Mix:
    """Builds one request of each kind on demand and sends it over a small pool of keep-alive
    connections; counts statuses and errors per kind."""

    def __init__(self, port: int, seeded: dict[str, Any], rng: random.Random) -> None:
        self.port, self.seeded, self.rng = port, seeded, rng
        self.host = f"127.0.0.1:{port}"
        self.front = harness.Server(proc=None, host="127.0.0.1", port=port, log_path=Path())  # type: ignore[arg-type]
        self.seen_sms: set[str] = set()
        self.seen_email: set[str] = set()
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.errors: list[str] = []
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.pool: asyncio.Queue[harness.Conn] = asyncio.Queue()
        self.visitors: asyncio.Queue[Any] = asyncio.Queue()
        self.n = 0

    async def open(self, connections: int = 8, visitors: int = 8) -> None:
        from websockets.asyncio.client import connect

        from bench.bench_webchat import ORIGIN

        for _ in range(connections):
            self.pool.put_nowait(await harness._connect("127.0.0.1", self.port))
        token = self.seeded["chat"]["token"]
        for _ in range(visitors):
            ws = await connect(
                f"ws://{self.host}/ws/webchat/{token}/",
                additional_headers={"Origin": ORIGIN},
                open_timeout=30,
            )
            await ws.send(json.dumps({"type": "hello", "visitor": "", "identity": None, "after": 0}))
            welcome = json.loads(await ws.recv())
            if welcome.get("type") != "welcome":
                raise RuntimeError(f"visitor refused: {welcome}")
            self.visitors.put_nowait(ws)

    def _request(self, kind: str) -> tuple[bytes, tuple[int, ...]]:
        from bench import bench_email_inbound, bench_webhook_sms

        self.n += 1
        if kind == "sms":
            reqs, _, _ = bench_webhook_sms._webhook_requests(
                self.front, self.seeded["sms"]["token"], 1, self.rng, self.seen_sms
            )
            return reqs[0], (200,)
        if kind == "email":
            reqs, _, _ = bench_email_inbound._email_requests(
                self.front, self.seeded["email"]["token"], 1, self.rng, self.seen_email, f"soak{self.n}"
            )
            return reqs[0], (200,)
        if kind == "api_send":
            body = json.dumps(
                {
                    "channel_id": self.seeded["sandbox_id"],
                    "to": f"+1973555{self.rng.randrange(10000):04d}",
                    "body": f"Your order {self.n} has shipped.",
                    "idempotency_key": f"soak-{self.n}-{self.rng.getrandbits(32):08x}",
                }
            ).encode()
            headers = {
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.seeded['api_key']}",
            }
            return harness.http_request("POST", "/api/v1/messages/", self.host, headers=headers, body=body), (
                201,
                202,
            )
        # console: the inbox, or the newest conversation's page
        cookie = {"Cookie": f"sessionid={self.seeded['chat']['session']}"}
        return harness.http_request("GET", "/", self.host, headers=cookie), (200,)

    async def http(self, kind: str) -> None:
        request, expected = self._request(kind)
        reader, writer = await self.pool.get()
        t0 = time.perf_counter()
        try:
            writer.write(request)
            status, body, closes = await asyncio.wait_for(harness._read_response(reader), 60)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            self.counts[kind]["transport_error"] += 1
            self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            writer.close()
            self.pool.put_nowait(await harness._connect("127.0.0.1", self.port))
            return
        self.latencies[kind].append(time.perf_counter() - t0)
        self.counts[kind][str(status)] += 1
        if status not in expected and len(self.errors) < 20:
            self.errors.append(f"{kind}: HTTP {status}: {body[:200].decode(errors='replace')}")
        if closes:
            writer.close()
            reader, writer = await harness._connect("127.0.0.1", self.port)
        self.pool.put_nowait((reader, writer))

    async def webchat(self) -> None:
        ws = await self.visitors.get()
        self.n += 1
        client_id = f"soak-msg-{self.n:06d}"
        t0 = time.perf_counter()
        try:
            await ws.send(json.dumps({"type": "message", "client_id": client_id, "body": f"Soak {self.n}"}))
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if frame.get("type") == "ack" and frame.get("client_id") == client_id:
                    self.counts["webchat"]["ack"] += 1
                    break
                if frame.get("type") == "error":
                    self.counts["webchat"]["error"] += 1
                    self.errors.append(f"webchat: {frame}")
                    break
            self.latencies["webchat"].append(time.perf_counter() - t0)
        except Exception as exc:  # a closed socket, a timeout: counted, and the run goes on
            self.counts["webchat"]["transport_error"] += 1
            self.errors.append(f"webchat: {type(exc).__name__}: {exc}")
        finally:
            self.visitors.put_nowait(ws)

    def failures(self) -> int:
        ok = {"200", "201", "202", "ack"}
        return sum(n for counts in self.counts.values() for status, n in counts.items() if status not in ok)


async def _drive(mix: Mix, platform: Platform, rate: float, warmup: float, seconds: float) -> dict[str, Any]:
    kinds = [kind for kind, share in MIX.items() for _ in range(share)]
    samples: list[tuple[float, dict[int, tuple[str, int]]]] = []
    start = time.perf_counter()
    end = start + warmup + seconds
    tasks: set[asyncio.Task[None]] = set()

    async def sampler() -> None:
        while time.perf_counter() < end:
            now = time.perf_counter() - start - warmup
            if now >= 0:
                found = {}
                for pid, label in platform.pids().items():
                    rss = _rss_kb(pid)
                    if rss is not None:
                        found[pid] = (label, rss)
                samples.append((now, found))
            await asyncio.sleep(SAMPLE_SECONDS)

    sampling = asyncio.create_task(sampler())
    k = 0
    last_log = start
    while True:
        due = start + k / rate
        if due >= end:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        kind = mix.rng.choice(kinds)
        task = asyncio.create_task(mix.webchat() if kind == "webchat" else mix.http(kind))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        k += 1
        if time.perf_counter() - last_log > 60:
            last_log = time.perf_counter()
            harness.log(f"soak: {int(last_log - start)} s, {k} operations, {mix.failures()} failed")
    await asyncio.gather(*tasks)
    await sampling
    return {"operations": k, "samples": samples}


def _rss_report(
    samples: list[tuple[float, dict[int, tuple[str, int]]]], seconds: float
) -> list[dict[str, Any]]:
    first = [s for t, s in samples if t < 60.0]
    last = [s for t, s in samples if t >= seconds - 60.0]
    rows = []
    pids = {pid: label for _, found in samples for pid, (label, _) in found.items()}
    for pid, label in sorted(pids.items(), key=lambda item: item[1]):
        a = [found[pid][1] for found in first if pid in found]
        b = [found[pid][1] for found in last if pid in found]
        if not a or not b:
            rows.append(
                {"pid": pid, "process": label, "first_min_mb": None, "last_min_mb": None, "ok": False}
            )
            continue
        mean_a, mean_b = sum(a) / len(a) / 1024, sum(b) / len(b) / 1024
        change = (mean_b - mean_a) / mean_a
        rows.append(
            {
                "pid": pid,
                "process": label,
                "first_min_mb": round(mean_a, 1),
                "last_min_mb": round(mean_b, 1),
                "change_pct": round(100 * change, 1),
                "ok": abs(change) <= RSS_TOLERANCE,
            }
        )
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds of load before measuring")
    parser.add_argument("--rate", type=float, default=15.0, help="operations per second, all kinds")
    args = parser.parse_args(argv)
    source_db, source_redis = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not source_db or not source_redis:
        print("DATABASE_URL and REDIS_URL must be set; run `make soak`", file=sys.stderr)
        return 2
    seconds = args.minutes * 60.0
    database_url = harness.database_recreate(source_db, SOAK_DB)
    redis_url = harness.redis_pick_empty_db(source_redis)
    platform: Platform | None = None
    try:
        port = harness.free_port()
        env = {
            **server_env(database_url, redis_url),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "SANDBOX_DELIVERY_DELAY": "0.5",
            "WEBCHAT_RATE_VISITOR_MESSAGES_PER_MINUTE": "1000000",
            "WEBCHAT_RATE_IP_MESSAGES_PER_MINUTE": "1000000",
            "WEBCHAT_RATE_IP_NEW_VISITORS_PER_HOUR": "1000000",
        }
        harness.log(f"soak: migrating {SOAK_DB}")
        harness.manage(env, "migrate", "--noinput")
        os.environ.update(
            {k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "CREDENTIALS_KEYS")}
        )
        os.environ["DATABASE_POOL_MAX"] = "2"
        import django

        django.setup()
        seeded = _seed(env["SECRET_KEY"])
        platform = Platform(env, port)
        platform.wait_ready()
        harness.log(f"soak: {args.warmup:.0f} s warm-up, then {args.minutes} min at {args.rate} operations/s")

        async def run() -> tuple[Mix, dict[str, Any]]:
            mix = Mix(port, seeded, random.Random(20261130))
            await mix.open()
            assert platform is not None
            driven = await _drive(mix, platform, args.rate, args.warmup, seconds)
            while not mix.visitors.empty():
                await (mix.visitors.get_nowait()).close()
            return mix, driven

        mix, driven = asyncio.run(run())
        exited = [name for name, proc in platform.procs.items() if proc.poll() is not None]
    finally:
        if platform is not None:
            platform.stop()
        with contextlib.suppress(Exception):
            django_close()
        harness.database_drop(source_db, SOAK_DB)
        harness.redis_flush(redis_url)

    rss = _rss_report(driven["samples"], seconds)
    failures = mix.failures()
    latency = {
        kind: {
            "count": len(values),
            "p50_ms": round(harness._percentile(sorted(values), 0.5) * 1000, 1),
            "p99_ms": round(harness._percentile(sorted(values), 0.99) * 1000, 1),
        }
        for kind, values in mix.latencies.items()
    }
    ok = failures == 0 and not exited and all(row["ok"] for row in rss)
    payload = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "minutes": args.minutes,
        "warmup_s": args.warmup,
        "rate_ops_per_s": args.rate,
        "operations": driven["operations"],
        "counts": {kind: dict(c) for kind, c in mix.counts.items()},
        "latency": latency,
        "failures": failures,
        "error_samples": mix.errors[:20],
        "exited_processes": exited,
        "rss": rss,
        "ok": ok,
    }
    (harness.RESULTS_DIR / "soak.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        f"soak: {args.minutes} min of mixed load at {args.rate} operations/s after {args.warmup:.0f} s"
        f" warm-up ({driven['operations']} operations in all),"
        " one origin on loopback (nginx + granian + uvicorn)"
        " and a Celery worker",
        *(
            f"  {kind:<9} {dict(mix.counts[kind])}   p50 {latency[kind]['p50_ms']} ms"
            f"   p99 {latency[kind]['p99_ms']} ms"
            for kind in sorted(mix.counts)
        ),
        f"  failures (wrong status, transport errors, error frames): {failures};"
        f" processes that exited: {exited}",
        "  RSS per process, mean of the first minute -> mean of the last minute (flat within 10%):",
        *(
            f"    {row['process']:<32} pid {row['pid']:<7} {row['first_min_mb']} MB"
            f" -> {row['last_min_mb']} MB"
            f"  ({row.get('change_pct')}%)  {'ok' if row['ok'] else 'GREW'}"
            for row in rss
        ),
        f"  -> {'OK' if ok else 'FAILED'}",
    ]
    if mix.errors:
        lines += ["  error samples:", *(f"    {e}" for e in mix.errors[:10])]
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
