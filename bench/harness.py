"""Shared benchmark plumbing: a dedicated database, the real ASGI server, a loopback load generator.

Nothing here imports Django: ``bench/run.py`` calls ``django.setup()`` once the bench database exists,
and the benchmark modules use the ORM for seeding and sanity checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
PY = sys.executable


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- the bench database and Redis


def url_with_path(url: str, path: str) -> str:
    """``url`` with its path (database name, Redis db number) replaced by ``path``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + path.lstrip("/"), parts.query, parts.fragment))


def database_recreate(server_url: str, name: str) -> str:
    """Drop and create database ``name`` on the server of ``server_url``; return its URL."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url_with_path(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url_with_path(server_url, name)


def database_drop(server_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url_with_path(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def redis_pick_empty_db(redis_url: str, candidates: Sequence[int] = range(15, 9, -1)) -> str:
    """A Redis URL on the same server whose logical database is empty, so queued tasks and keys of the
    benchmark never reach the worker of a dev server or of the tests (they use database 0)."""
    import redis

    for db in candidates:
        url = url_with_path(redis_url, str(db))
        client = redis.Redis.from_url(url)
        try:
            if client.dbsize() == 0:
                return url
        finally:
            client.close()
    raise RuntimeError(f"no empty Redis database among {list(candidates)} on {redis_url}")


def redis_flush(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


# ---------------------------------------------------------------- the ASGI server


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path
    database: str = ""  # its PostgreSQL database, whose backends' CPU is measured with it
    kind: str = "uvicorn-asgi"  # which of SERVER_KINDS

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _get_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


# How each server under test is started. ``{app}`` is the application it serves; every server gets the
# same number of worker processes. Each is run the way its documentation recommends for production.
SERVER_KINDS: dict[str, dict[str, Any]] = {
    "uvicorn-asgi": {
        "app": "config.asgi:application",
        "cmd": [
            "-m",
            "uvicorn",
            "{app}",
            "--host",
            "{host}",
            "--port",
            "{port}",
            "--workers",
            "{workers}",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
    },
    "granian-asgi": {
        "app": "config.asgi:application",
        "cmd": [
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            "{host}",
            "--port",
            "{port}",
            "--workers",
            "{workers}",
            "--loop",
            "uvloop",
            "--no-access-log",
            "--log-level",
            "warning",
            "{app}",
        ],
    },
    "granian-wsgi": {
        "app": "config.wsgi:application",
        "cmd": [
            "-m",
            "granian",
            "--interface",
            "wsgi",
            "--host",
            "{host}",
            "--port",
            "{port}",
            "--workers",
            "{workers}",
            "--blocking-threads",
            "{threads}",
            "--no-ws",
            "--no-access-log",
            "--log-level",
            "warning",
            "{app}",
        ],
    },
    "gunicorn-sync": {
        "app": "config.wsgi:application",
        "cmd": [
            "-m",
            "gunicorn",
            "--bind",
            "{host}:{port}",
            "--workers",
            "{workers}",
            "--log-level",
            "warning",
            "{app}",
        ],
    },
    "gunicorn-gthread": {
        "app": "config.wsgi:application",
        "cmd": [
            "-m",
            "gunicorn",
            "--bind",
            "{host}:{port}",
            "--workers",
            "{workers}",
            "--worker-class",
            "gthread",
            "--threads",
            "{threads}",
            "--log-level",
            "warning",
            "{app}",
        ],
    },
}


@contextlib.contextmanager
def app_server(
    env: dict[str, str],
    *,
    kind: str = "uvicorn-asgi",
    workers: int = 2,
    threads: int = 4,
    name: str = "server",
    app: str | None = None,
    startup_timeout: float = 90.0,
) -> Iterator[Server]:
    """Run one of ``SERVER_KINDS`` on a free loopback port serving ``app`` (the kind's product application
    by default); wait for ``/healthz`` and for every worker; stop its whole process group on exit.
    Its output goes to ``bench/results/<name>.log``."""
    spec = SERVER_KINDS[kind]
    host, port = "127.0.0.1", free_port()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    log_path = RESULTS_DIR / f"{name}.log"
    server_env = {**env, "PUBLIC_BASE_URL": f"http://{host}:{port}"}
    values = {
        "app": app or spec["app"],
        "host": host,
        "port": str(port),
        "workers": str(workers),
        "threads": str(threads),
    }
    cmd = [PY, *(part.format(**values) for part in spec["cmd"])]
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=server_env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        database = urlsplit(env.get("DATABASE_URL", "")).path.lstrip("/")
        server = Server(proc=proc, host=host, port=port, log_path=log_path, database=database, kind=kind)
        try:
            deadline = time.monotonic() + startup_timeout
            while not _get_ok(f"{server.base_url}/healthz"):
                if proc.poll() is not None:
                    raise RuntimeError(f"{kind} exited with {proc.returncode}:\n{server.log_tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} did not answer /healthz in {startup_timeout} s")
                time.sleep(0.2)
            # Every worker must be up before timing starts, not only the first one to answer.
            deadline = time.monotonic() + startup_timeout
            while workers > 1 and len(server_workers(server)) < workers and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)
            yield server
        finally:
            _stop(proc)


@contextlib.contextmanager
def outbox_relay(env: dict[str, str], *, name: str = "relay") -> Iterator[subprocess.Popen[bytes]]:
    """``manage.py outbox_relay``, the production relay of after-commit side effects (realtime pushes,
    Celery tasks), as ``make run`` runs it. Its output goes to ``bench/results/<name>.log``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    with open(RESULTS_DIR / f"{name}.log", "wb") as log_file:
        proc = subprocess.Popen(
            [PY, "manage.py", "outbox_relay"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            _stop(proc)


# The server that serves the product's HTTP (console, API, webhooks), as tools/run.py and
# docker-compose.yml run it; websockets go to the ASGI application under uvicorn on the same origin.
PRODUCT_HTTP_KIND = "granian-wsgi"
# The candidates for serving a bare Django view; the fastest in a run is that run's baseline.
BASELINE_KINDS = ("granian-wsgi", "gunicorn-gthread", "gunicorn-sync", "granian-asgi", "uvicorn-asgi")


@contextlib.contextmanager
def baseline_servers(
    env: dict[str, str], *, workers: int = 2, product: Server | None = None, name: str = "baseline"
) -> Iterator[dict[str, Server]]:
    """Every kind of ``BASELINE_KINDS`` serving the product's application (its ``GET /healthz`` is the bare
    view), all at once so their rounds can interleave. ``product``, when given, stands for its own kind."""
    with contextlib.ExitStack() as stack:
        servers = {}
        for kind in BASELINE_KINDS:
            if product is not None and product.kind == kind:
                servers[kind] = product
            else:
                servers[kind] = stack.enter_context(
                    app_server(env, kind=kind, workers=workers, name=f"{name}-{kind}")
                )
        yield servers


def uvicorn_server(
    env: dict[str, str], *, workers: int = 2, name: str = "server", app: str = "config.asgi:application"
) -> contextlib.AbstractContextManager[Server]:
    """The ASGI application under uvicorn (websockets, and the ASGI baseline)."""
    return app_server(env, kind="uvicorn-asgi", workers=workers, name=name, app=app)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: the supervisor and its workers
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


# ---------------------------------------------------------------- CPU accounting (Linux /proc)


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces; fields after the closing parenthesis start with field 3 (state).
    return [raw[raw.index("(") + 1 : raw.rindex(")")], *raw[raw.rindex(")") + 2 :].split()]


def process_descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields:
                parents[int(entry.name)] = int(fields[2])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent]
        found += children
        frontier += children
    return found


def _cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    if not fields:
        return 0.0
    return (int(fields[12]) + int(fields[13])) / _CLK_TCK  # utime, stime


def _postgres_backends(database: str) -> list[int]:
    """PostgreSQL backends serving ``database`` (their process title names it)."""
    pids = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and fields[0] == "postgres":
                with contextlib.suppress(OSError):
                    title = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").split()
                    if database.encode() in title:
                        pids.append(int(entry.name))
    return pids


def _system_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0, 0
    values = [int(v) for v in first[:8]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class CpuSnapshot:
    at: float
    server: dict[int, float]
    postgres: dict[int, float]  # backends of the bench database
    loadgen: float
    system: tuple[int, int]


def cpu_snapshot(server_pid: int | None, database: str = "") -> CpuSnapshot:
    server = {}
    if server_pid is not None:
        for pid in [server_pid, *process_descendants(server_pid)]:
            server[pid] = _cpu_seconds(pid)
    return CpuSnapshot(
        at=time.monotonic(),
        server=server,
        postgres={pid: _cpu_seconds(pid) for pid in _postgres_backends(database)} if database else {},
        loadgen=time.process_time(),
        system=_system_jiffies(),
    )


@dataclass
class CpuUsage:
    """CPU seconds used over a stretch of wall time; adds up over rounds."""

    wall: float = 0.0
    server_by_pid: Counter[int] = field(default_factory=Counter)
    postgres: float = 0.0
    loadgen: float = 0.0
    busy_jiffies: int = 0
    total_jiffies: int = 0

    def __add__(self, other: CpuUsage) -> CpuUsage:
        return CpuUsage(
            wall=self.wall + other.wall,
            server_by_pid=self.server_by_pid + other.server_by_pid,
            postgres=self.postgres + other.postgres,
            loadgen=self.loadgen + other.loadgen,
            busy_jiffies=self.busy_jiffies + other.busy_jiffies,
            total_jiffies=self.total_jiffies + other.total_jiffies,
        )

    def as_dict(self, requests: int = 0) -> dict[str, Any]:
        cpus = os.cpu_count() or 1
        server = sum(self.server_by_pid.values())
        busy_pct = 100.0 * self.busy_jiffies / self.total_jiffies if self.total_jiffies else None
        # Whatever else kept the machine busy meanwhile (other processes, other sessions' databases).
        other = busy_pct / 100.0 * cpus * self.wall - server - self.loadgen if busy_pct is not None else None
        data: dict[str, Any] = {
            "wall_s": round(self.wall, 2),
            "server_cpu_s": round(server, 2),
            "server_cpu_s_by_pid": {
                str(pid): round(v, 2) for pid, v in self.server_by_pid.items() if v >= 0.01
            },
            "postgres_cpu_s": round(self.postgres, 2),
            "loadgen_cpu_s": round(self.loadgen, 2),
            "other_cpu_s": round(max(other - self.postgres, 0.0), 2) if other is not None else None,
            "machine_busy_pct": round(busy_pct, 1) if busy_pct is not None else None,
            "cpus": cpus,
        }
        if requests:
            data["server_cpu_ms_per_request"] = round(1000.0 * server / requests, 3)
            data["postgres_cpu_ms_per_request"] = round(1000.0 * self.postgres / requests, 3)
        return data


def cpu_delta(before: CpuSnapshot, after: CpuSnapshot) -> CpuUsage:
    return CpuUsage(
        wall=max(after.at - before.at, 0.0),
        server_by_pid=Counter({pid: after.server[pid] - before.server.get(pid, 0.0) for pid in after.server}),
        postgres=sum(cpu - before.postgres.get(pid, 0.0) for pid, cpu in after.postgres.items()),
        loadgen=after.loadgen - before.loadgen,
        busy_jiffies=after.system[0] - before.system[0],
        total_jiffies=after.system[1] - before.system[1],
    )


def machine_busy_pct(seconds: float = 1.0) -> float | None:
    """How busy the whole machine is right now (before the benchmark adds load)."""
    before = _system_jiffies()
    time.sleep(seconds)
    after = _system_jiffies()
    total = after[1] - before[1]
    return round(100.0 * (after[0] - before[0]) / total, 1) if total else None


# ---------------------------------------------------------------- the load generator


def http_request(
    method: str, path: str, host: str, *, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    """Serialize one HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "User-Agent: engagement-bench"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Read one response; return (status, body, server_closes)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length: int | None = None
    chunked = closes = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            closes = value == b"close"
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the blank line
                    pass
                break
            parts.append((await reader.readexactly(size + 2))[:-2])
        return status, b"".join(parts), closes
    if length is not None:
        return status, await reader.readexactly(length), closes
    return status, await reader.read(), True


@dataclass
class LoadResult:
    scenario: str
    concurrency: int
    latencies: list[float]  # seconds, of the requests that got a response
    statuses: Counter[int]
    transport_errors: int
    not_sent: int
    elapsed: float
    error_samples: list[str] = field(default_factory=list)
    ok_indices: list[int] = field(default_factory=list)  # which requests answered with the expected status
    connections_per_worker: list[int] = field(default_factory=list)

    round_rps: list[float] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return len(self.latencies)

    def __add__(self, other: LoadResult) -> LoadResult:
        """Two rounds of one scenario as one result (``ok_indices`` of ``other`` are taken as given)."""
        return LoadResult(
            scenario=self.scenario,
            concurrency=self.concurrency,
            latencies=self.latencies + other.latencies,
            statuses=self.statuses + other.statuses,
            transport_errors=self.transport_errors + other.transport_errors,
            not_sent=self.not_sent + other.not_sent,
            elapsed=self.elapsed + other.elapsed,
            error_samples=(self.error_samples + other.error_samples)[:5],
            ok_indices=self.ok_indices + other.ok_indices,
            connections_per_worker=max(
                (self.connections_per_worker, other.connections_per_worker),
                key=lambda spread: (bool(spread), max(spread) - min(spread) if spread else 0),
            ),  # the least even round, if any
            round_rps=(self.round_rps or [self.rps]) + (other.round_rps or [other.rps]),
        )

    @property
    def rps(self) -> float:
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0

    def errors(self, expected_status: int = 200) -> int:
        wrong = sum(n for status, n in self.statuses.items() if status != expected_status)
        return wrong + self.transport_errors + self.not_sent


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def summarize(result: LoadResult, expected_status: int = 200) -> dict[str, Any]:
    lat = sorted(result.latencies)
    ms = 1000.0
    return {
        "requests": result.completed + result.transport_errors + result.not_sent,
        "completed": result.completed,
        "concurrency": result.concurrency,
        "elapsed_s": round(result.elapsed, 3),
        "rps": round(result.rps, 1),
        "round_rps": [round(r, 1) for r in result.round_rps or [result.rps]],
        "latency_ms": {
            "p50": round(_percentile(lat, 0.50) * ms, 2),
            "p90": round(_percentile(lat, 0.90) * ms, 2),
            "p99": round(_percentile(lat, 0.99) * ms, 2),
            "max": round(lat[-1] * ms, 2) if lat else None,
            "mean": round(sum(lat) / len(lat) * ms, 2) if lat else None,
        },
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "errors": result.errors(expected_status),
        "transport_errors": result.transport_errors,
        "not_sent": result.not_sent,
        "connections_per_worker": result.connections_per_worker,
        "error_samples": result.error_samples,
    }


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _socket_inodes_by_pid(pids: Sequence[int]) -> dict[int, int]:
    """socket inode -> pid, for the sockets the processes ``pids`` hold open."""
    owner = {}
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        owner[int(target[8:-1])] = pid
    return owner


def _server_side_inodes(server_port: int) -> dict[int, int]:
    """client port -> inode of the server's end, for established loopback connections to ``server_port``."""
    found = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            cols = line.split()
            local, remote, state, inode = cols[1], cols[2], cols[3], int(cols[9])
            if state == "01" and int(local.split(":")[1], 16) == server_port and inode:
                found[int(remote.split(":")[1], 16)] = inode
    return found


def server_workers(server: Server) -> list[int]:
    """The server's child processes that accept connections (hold its listening socket)."""
    listening = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and int(cols[1].split(":")[1], 16) == server.port:
                listening.add(int(cols[9]))
    return [
        pid for pid in process_descendants(server.proc.pid) if listening & set(_socket_inodes_by_pid([pid]))
    ]


def connection_owners(
    server_port: int, worker_pids: Sequence[int], conns: Sequence[Conn]
) -> list[int | None]:
    """Which server process accepted each of our connections (None while not accepted yet)."""
    inodes = _server_side_inodes(server_port)
    owner = _socket_inodes_by_pid(worker_pids)
    result: list[int | None] = []
    for _, writer in conns:
        sockname = writer.get_extra_info("sockname")
        inode = inodes.get(sockname[1]) if sockname else None
        result.append(owner.get(inode) if inode else None)
    return result


async def _connect(host: str, port: int) -> Conn:
    reader, writer = await asyncio.open_connection(host, port)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def open_balanced(
    host: str, port: int, count: int, worker_pids: Sequence[int], max_reconnects: int = 200
) -> tuple[list[Conn], list[int]]:
    """Open ``count`` keep-alive connections spread evenly (within one) over the server's workers.

    Which worker accepts a connection is a race between their event loops, and a loop accepts every
    pending connection at once, so a burst of connects often lands on one worker and leaves a CPU idle.
    Connections are opened one at a time, and those on the busiest worker are reopened until even.
    Returns the connections and how many each worker holds (empty when /proc cannot tell).
    """
    conns = []
    for _ in range(count):
        conns.append(await _connect(host, port))
        await asyncio.sleep(0.005)
    if len(worker_pids) < 2:
        return conns, [count] if worker_pids else []
    for _ in range(max_reconnects):
        owners: list[int | None] = []
        for _ in range(100):  # until every connection is accepted
            owners = connection_owners(port, worker_pids, conns)
            if all(o is not None for o in owners):
                break
            await asyncio.sleep(0.01)
        if any(o is None for o in owners):
            return conns, []
        per_worker = Counter(dict.fromkeys(worker_pids, 0))
        per_worker.update(o for o in owners if o is not None)
        (busiest, most), *_, (_, least) = per_worker.most_common()
        if most - least <= 1:
            return conns, sorted(per_worker.values(), reverse=True)
        victim = owners.index(busiest)
        conns[victim][1].close()
        conns[victim] = await _connect(host, port)
        await asyncio.sleep(0.005)
    return conns, []


async def _load(
    scenario: str,
    host: str,
    port: int,
    requests: Sequence[bytes],
    concurrency: int,
    max_seconds: float,
    request_timeout: float,
    expected_status: int,
    worker_pids: Sequence[int],
    rate: float | None = None,
) -> LoadResult:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    ok_indices: list[int] = []
    samples: list[str] = []
    transport_errors = 0
    cursor = iter(range(len(requests)))
    sent = 0

    async def client(conn: Conn | None, deadline: float) -> None:
        nonlocal transport_errors, sent
        for i in cursor:
            if time.perf_counter() > deadline:
                break
            sent += 1
            t0 = time.perf_counter()
            if rate:
                # Open loop: request i is due at t_start + i / rate; its latency counts from then, so a
                # request that waits for a free connection is charged its wait (no coordinated omission).
                due = t_start + i / rate
                if due > t0:
                    await asyncio.sleep(due - t0)
                t0 = due
            try:
                if conn is None:
                    conn = await _connect(host, port)
                reader, writer = conn
                writer.write(requests[i])
                status, body, closes = await asyncio.wait_for(_read_response(reader), request_timeout)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
                transport_errors += 1
                if len(samples) < 5:
                    samples.append(f"request {i}: {type(exc).__name__}: {exc}")
                if conn is not None:
                    conn[1].close()
                conn = None
                continue
            latencies.append(time.perf_counter() - t0)
            statuses[status] += 1
            if status == expected_status:
                ok_indices.append(i)
            elif len(samples) < 5:
                samples.append(f"request {i}: HTTP {status}: {body[:300].decode(errors='replace')}")
            if closes:
                writer.close()
                conn = None
        if conn is not None:
            conn[1].close()

    conns, spread = await open_balanced(host, port, concurrency, worker_pids)
    t_start = time.perf_counter()
    await asyncio.gather(*(client(conn, t_start + max_seconds) for conn in conns))
    elapsed = time.perf_counter() - t_start
    return LoadResult(
        scenario=scenario,
        concurrency=concurrency,
        latencies=latencies,
        statuses=statuses,
        transport_errors=transport_errors,
        not_sent=len(requests) - sent,
        elapsed=elapsed,
        error_samples=samples,
        ok_indices=sorted(ok_indices),
        connections_per_worker=spread,
    )


def run_load(
    scenario: str,
    server: Server,
    requests: Sequence[bytes],
    *,
    concurrency: int = 16,
    max_seconds: float = 120.0,
    request_timeout: float = 30.0,
    expected_status: int = 200,
    rate: float | None = None,
) -> tuple[LoadResult, CpuUsage]:
    """Send the pre-built ``requests`` over ``concurrency`` keep-alive connections, each request once.

    The connections are opened (and spread evenly over the server's workers) before the clock starts.
    Stops by itself after the last request or after ``max_seconds`` (what is left is counted ``not_sent``).
    With ``rate`` (requests/s) the load is open-loop: request i is sent at ``i / rate`` seconds (or as soon
    as a connection is free) and its latency counts from when it was due, as wrk2 measures.
    Returns the raw result and the CPU used meanwhile by the server, PostgreSQL and this process.
    """
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        loop_factory = None
    workers = server_workers(server)
    before = cpu_snapshot(server.proc.pid, server.database)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(
            _load(
                scenario,
                server.host,
                server.port,
                requests,
                concurrency,
                max_seconds,
                request_timeout,
                expected_status,
                workers,
                rate,
            )
        )
    return result, cpu_delta(before, cpu_snapshot(server.proc.pid, server.database))


# ---------------------------------------------------------------- context handed to benchmarks


@dataclass
class Context:
    """What ``run.py`` hands to each ``bench_*.run(ctx)``."""

    database_url: str
    redis_url: str
    server_env: dict[str, str]  # environment for server subprocesses (bench database, bench Redis db)
    requests: int = 2000
    warmup: int = 200
    concurrency: int = 16
    workers: int = 2
    rounds: int = 4  # each scenario's requests are measured in this many rounds, interleaved
    max_seconds: float = 120.0


@dataclass
class BenchResult:
    name: str
    data: dict[str, Any]
    report: str
    errors: list[str] = field(default_factory=list)  # anything non-empty makes `make bench` fail
