"""``make run``: the whole platform in one terminal.

Starts the embedded PostgreSQL and Redis when ``DATABASE_URL`` / ``REDIS_URL`` are not set, migrates,
seeds the demo workspace (idempotent), then runs the ASGI web server, a Celery worker and Celery beat, their
output prefixed with their name. Once all three are up it prints the console URL and the demo logins, last,
where a person sees them. Ctrl-C stops every process it started, the embedded services included; their
data stays under var/.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

sys.path.insert(0, str(Path(__file__).resolve().parent))

import devenv

ROOT = devenv.ROOT
PY = sys.executable

# Migrations and the demo seed in one Django process: one start-up instead of two (seconds on a cold
# interpreter). System checks run first, as `manage.py migrate` does.
PREPARE = (
    "import django; django.setup()\n"
    "from django.core.management import call_command\n"
    "call_command('migrate', interactive=False, skip_checks=False)\n"
    "call_command('seed_demo')\n"
)

# A line each process prints once it is ready to work (the web server is asked on /healthz instead).
READY_MARKERS = {"worker": " ready.", "beat": "beat: Starting..."}

_out_lock = threading.Lock()


def _say(text: str) -> None:
    with _out_lock:
        print(text, flush=True)


def _step(text: str) -> None:
    _say(f"[run] {text}")


def _forward(name: str, stream: IO[bytes], on_line: Callable[[str], None]) -> None:
    """Copy a child's output line by line with its name in front, so its pipe never fills up."""
    label = f"{name:<6}| "
    for raw in stream:
        line = raw.decode(errors="replace").rstrip("\r\n")
        on_line(line)
        _say(label + line)


def _prepare(env: dict[str, str]) -> list[str]:
    """Migrate and seed; the seed's output is shown as it comes, its login lines are returned."""
    proc = subprocess.Popen([PY, "-c", PREPARE], cwd=ROOT, env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    logins: list[str] = []
    for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip("\r\n")
        if line.lstrip().startswith("login "):
            logins.append(line.strip())
        _say(line)
    if proc.wait() != 0:
        raise subprocess.CalledProcessError(proc.returncode, "migrate + seed_demo")
    return logins


def _web_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own local server
            return True
    except OSError:
        return False


def _banner(base_url: str, logins: list[str], seconds: float) -> str:
    rule = "  " + "=" * 66
    lines = [
        "",
        rule,
        f"  Engagement Platform is running (up in {seconds:.0f} s).",
        "",
        f"  Console:  {base_url}/",
        f"  API docs: {base_url}/api/docs/",
        f"  Admin:    {base_url}/admin/",
        "",
        "  Demo logins:",
        *(f"    {login}" for login in logins),
        "",
        "  Press Ctrl-C to stop everything.",
        rule,
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    started_at = time.monotonic()
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    base_url = f"http://{host}:{port}"
    _step("starting PostgreSQL and Redis")
    services = devenv.ensure_services()
    env = {**os.environ, **services.env, "PYTHONUNBUFFERED": "1"}
    env.setdefault("PUBLIC_BASE_URL", base_url)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    readers: list[threading.Thread] = []
    try:
        _step("applying database migrations and seeding the demo workspace")
        logins = _prepare(env)
        _step("starting the web server, a Celery worker and Celery beat")
        commands = {
            "web": [PY, "-m", "uvicorn", "config.asgi:application", "--host", host, "--port", port],
            # One local worker: nobody to synchronise with at start-up (mingle costs a second).
            "worker": [
                PY,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-l",
                "info",
                "-c",
                "2",
                "--without-mingle",
            ],
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
        ready = {name: threading.Event() for name in READY_MARKERS}
        last_output = [time.monotonic()]

        def watcher(name: str) -> Callable[[str], None]:
            def on_line(line: str) -> None:
                last_output[0] = time.monotonic()
                if name in READY_MARKERS and READY_MARKERS[name] in line:
                    ready[name].set()

            return on_line

        for name, cmd in commands.items():
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            procs[name] = proc
            assert proc.stdout is not None
            reader = threading.Thread(target=_forward, args=(name, proc.stdout, watcher(name)), daemon=True)
            reader.start()
            readers.append(reader)

        def all_alive() -> bool:
            return all(p.poll() is None for p in procs.values())

        deadline = time.monotonic() + 180
        while all_alive() and time.monotonic() < deadline and not _web_answers(f"{base_url}/healthz"):
            time.sleep(0.3)
        for event in ready.values():
            while all_alive() and time.monotonic() < deadline and not event.wait(0.3):
                pass
        # Let the start-up chatter settle so that the banner is what stays on screen.
        settle_until = time.monotonic() + 3
        while time.monotonic() < settle_until and time.monotonic() - last_output[0] < 0.5:
            time.sleep(0.1)
        if all_alive():
            _say(_banner(base_url, logins, time.monotonic() - started_at))
        while all_alive():
            time.sleep(0.5)
        exited = ", ".join(name for name, p in procs.items() if p.poll() is not None)
        print(f"[run] {exited} exited; stopping the others", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as exc:
        print(f"[run] {exc.cmd} failed (exit {exc.returncode})", file=sys.stderr, flush=True)
        return 1
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
        for reader in readers:
            reader.join(timeout=2)
        services.stop_started()


if __name__ == "__main__":
    sys.exit(main())
