"""``make run``: the whole platform in one terminal.

Starts the embedded PostgreSQL and Redis when ``DATABASE_URL`` / ``REDIS_URL`` are not set, migrates,
seeds the demo workspace (idempotent), and runs the web tier (tools/front.py: one origin for HTTP and
websockets), a Celery worker with beat inside it and the outbox relay,
their output prefixed with their name. Once everything is up it prints the console URL and the demo logins,
last, where a person sees them. Ctrl-C stops every process it started, the embedded services included; their
data stays under var/ (ENGAGEMENT_VAR_DIR).

Where the time goes: Python start-up (every process imports Django and, on a first run, compiles its
bytecode), the migrations, initdb. So the system checks, migrations and the seed share one Django process
(the worker skips its own checks), beat runs inside the worker (one process fewer), and the web server and
the worker start alongside the migrations: at once when the bytecode is there, else as soon as that process
has imported and compiled what they share (so that three processes do not compile the same code at once).
"""

from __future__ import annotations

import importlib.util
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
import front

ROOT = devenv.ROOT
PY = sys.executable

SET_UP = "[run] django is set up"
MIGRATED = "[run] the database is migrated"
# The system checks (as `manage.py migrate` runs them), the migrations and the demo seed in one Django
# process.
PREPARE = (
    "import django; django.setup()\n"
    "from django.core.management import call_command\n"
    "call_command('check', databases=['default'])\n"
    f"print({SET_UP!r}, flush=True)\n"
    "call_command('migrate', interactive=False)\n"
    f"print({MIGRATED!r}, flush=True)\n"
    "call_command('seed_demo')\n"
)

# Lines the worker prints once it consumes tasks and once its beat schedules them.
READY_MARKERS = (" ready.", "beat: Starting...")

_out_lock = threading.Lock()


def _say(text: str) -> None:
    with _out_lock:
        print(text, flush=True)


def _step(text: str) -> None:
    _say(f"[run] {text}")


def _forward(name: str, stream: IO[bytes], on_line: Callable[[str], None]) -> None:
    """Copy a child's output line by line with its name in front, so its pipe never fills up."""
    # Ctrl-C must reach the main thread, which stops everything, not a thread blocked on a pipe.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    label = f"{name:<6}| "
    for raw in stream:
        line = raw.decode(errors="replace").rstrip("\r\n")
        on_line(line)
        _say(label + line)


def _child_env(env: dict[str, str]) -> dict[str, str]:
    """The children's environment: they write their bytecode cache even where PYTHONDONTWRITEBYTECODE is set.

    Without it each process compiles its ~1,300 modules again at every start (seconds of CPU each). The
    cache goes where Python keeps it (.venv, the git-ignored __pycache__ folders), as pip's install-time
    compile would have put it.
    """
    return {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _bytecode_cached() -> bool:
    """Whether an earlier run left Django's bytecode."""
    spec = importlib.util.find_spec("django")
    if spec is None or spec.origin is None:
        return False
    source = Path(spec.origin).parent / "db" / "models" / "__init__.py"
    return Path(importlib.util.cache_from_source(str(source))).exists()


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


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    started_at = time.monotonic()
    signal.signal(signal.SIGTERM, _interrupt)  # stop as on Ctrl-C: the children and the services too
    # Ctrl-C stops everything and exits 0, also where SIGINT came in ignored (started in the background
    # by a shell without job control), when the children would die of it and leave this process behind.
    signal.signal(signal.SIGINT, _interrupt)
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    base_url = f"http://{host}:{port}"
    _step("starting PostgreSQL and Redis")
    services = devenv.ensure_services()
    env = _child_env({**os.environ, **services.env, "PYTHONUNBUFFERED": "1"})
    env.setdefault("PUBLIC_BASE_URL", base_url)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    envs = {"worker": {**env, "CELERY_SKIP_CHECKS": "1"}}
    commands = {
        **front.web_commands(PY, host, port, devenv.VAR),  # one origin: HTTP and websockets
        # Beat inside the worker (-B): one Python start-up fewer. One local worker has nobody to
        # synchronise with at start-up (mingle costs a second).
        "worker": [
            PY,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-B",
            "-s",
            str(devenv.VAR / "celerybeat-schedule"),
            "-l",
            "info",
            "-c",
            "2",
            "--without-mingle",
        ],
        # Relays committed domain events (the transactional outbox) to the worker and the console.
        "relay": [PY, "manage.py", "outbox_relay"],
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    readers: list[threading.Thread] = []
    seen = {marker: threading.Event() for marker in READY_MARKERS}
    last_output = [time.monotonic()]

    def on_worker_line(line: str) -> None:
        last_output[0] = time.monotonic()
        for marker, event in seen.items():
            if marker in line:
                event.set()

    def on_web_line(_: str) -> None:
        last_output[0] = time.monotonic()

    # The web tier may start while the migrations run (it touches the database only per request); the
    # worker (with beat's every-second ticks) and the relay query tables from their first second, so they
    # start once the schema is there (on a fresh database they logged "relation does not exist").
    web_names = [name for name in commands if name not in ("worker", "relay")]

    def start_servers(names: list[str]) -> None:
        names = [name for name in names if name not in procs]
        if not names:
            return
        if "worker" in names:
            _step("starting a Celery worker (with beat) and the outbox relay")
        else:
            _step("starting the web server")
        for name in names:
            cmd = commands[name]
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=envs.get(name, env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            procs[name] = proc
            assert proc.stdout is not None
            on_line = on_worker_line if name == "worker" else on_web_line
            reader = threading.Thread(target=_forward, args=(name, proc.stdout, on_line), daemon=True)
            reader.start()
            readers.append(reader)

    def all_alive() -> bool:
        return all(p.poll() is None for p in procs.values())

    prepare: subprocess.Popen[bytes] | None = None
    try:
        _step("applying database migrations and seeding the demo workspace")
        prepare = subprocess.Popen([PY, "-c", PREPARE], cwd=ROOT, env=env, stdout=subprocess.PIPE)
        assert prepare.stdout is not None
        if _bytecode_cached():
            start_servers(web_names)
        logins: list[str] = []
        for raw in prepare.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n")
            if line == SET_UP:
                start_servers(web_names)
                continue
            if line == MIGRATED:
                start_servers(list(commands))
                continue
            if line.lstrip().startswith("login "):
                logins.append(line.strip())
            _say(line)
        if prepare.wait() != 0:
            print("[run] migrate + seed_demo failed", file=sys.stderr, flush=True)
            return 1
        start_servers(list(commands))

        deadline = time.monotonic() + 180
        while all_alive() and time.monotonic() < deadline and not _web_answers(f"{base_url}/healthz"):
            time.sleep(0.3)
        for event in seen.values():
            while all_alive() and time.monotonic() < deadline and not event.wait(0.3):
                pass
        # Let the start-up chatter settle (the last health check's access log line too), so that the
        # banner is what stays on screen.
        last_output[0] = time.monotonic()
        settle_until = time.monotonic() + 1.5
        while time.monotonic() < settle_until and time.monotonic() - last_output[0] < 0.3:
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
    finally:
        running = [p for p in [prepare, *procs.values()] if p is not None and p.poll() is None]
        for p in running:
            p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in running:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
        for reader in readers:
            reader.join(timeout=2)
        services.stop_started()


if __name__ == "__main__":
    sys.exit(main())
