"""``make run``: the whole platform in one terminal.

Starts the embedded PostgreSQL and Redis when ``DATABASE_URL`` / ``REDIS_URL`` are not set, migrates,
seeds the demo workspace (idempotent), then runs the web tier (tools/front.py), a Celery worker and beat.
Ctrl-C stops every process it started, the embedded services included; their data stays under var/.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import devenv
import front

ROOT = devenv.ROOT
PY = sys.executable


def _wait_until_serving(url: str, procs: list[subprocess.Popen[bytes]], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and all(p.poll() is None for p in procs):
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own local server
                return
        except OSError:
            time.sleep(0.3)


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    services = devenv.ensure_services()
    env = {**os.environ, **services.env}
    env.setdefault("PUBLIC_BASE_URL", f"http://{host}:{port}")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True)
        subprocess.run([PY, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True)
        commands = {
            **front.web_commands(PY, host, port, devenv.VAR),  # one origin: HTTP and websockets
            "worker": [PY, "-m", "celery", "-A", "config", "worker", "-l", "info", "-c", "2"],
            "beat": [
                PY,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "-l",
                "info",
                "-s",
                str(devenv.VAR / "celerybeat-schedule"),
            ],
        }
        for cmd in commands.values():
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env))
        _wait_until_serving(f"http://{host}:{port}/healthz", procs)
        print(
            f"\n  Console:  http://{host}:{port}/\n  API docs: http://{host}:{port}/api/docs/\n"
            "  Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("a process exited; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
        services.stop_started()


if __name__ == "__main__":
    sys.exit(main())
