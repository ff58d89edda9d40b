"""`make run`'s launcher on a fresh data directory: embedded PostgreSQL and Redis from the pip wheels,
migrations, the demo seed, web + worker + beat; the console answers; Ctrl-C stops everything; a second
run reuses the data."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ignore_sigint() -> None:
    # As a shell without job control starts a background command: SIGINT ignored on the way in.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start(var_dir: Path, port: int, log: Path) -> subprocess.Popen[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update({"ENGAGEMENT_VAR_DIR": str(var_dir), "PORT": str(port), "SANDBOX_DELIVERY_DELAY": "0.2"})
    return subprocess.Popen(
        [sys.executable, "tools/run.py"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),  # a file, not a pipe: the children's logs must never block on a full pipe
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=_ignore_sigint,  # a shell without job control; Ctrl-C must still stop it
    )


def _wait_ready(proc: subprocess.Popen[str], port: int, log: Path, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"launcher exited early:\n{log.read_text()}")
        # Ready when the launcher says so: it prints the console URL once the web server answers.
        if "Console:" not in log.read_text():
            time.sleep(0.5)
            continue
        # The console: anonymous visitors land on the login form.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            return resp.read().decode()
    raise AssertionError(f"the platform did not come up:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[str], log: Path) -> str:
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    proc.wait(timeout=60)
    return log.read_text()


def _pids_under(var_dir: Path) -> list[str]:
    result = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    return [line for line in result.stdout.splitlines() if str(var_dir) in line and "ps -eo" not in line]


def test_make_run_brings_everything_up_and_ctrl_c_stops_it(tmp_path):
    var_dir = tmp_path / "var"
    port = _free_port()
    log = tmp_path / "run1.log"
    proc = _start(var_dir, port, log)
    try:
        page = _wait_ready(proc, port, log)
        assert "csrfmiddlewaretoken" in page
        time.sleep(3)  # three campaign ticks
    finally:
        out = _stop(proc, log)
    assert proc.returncode == 0, "Ctrl-C is a clean stop, not an error"
    assert "exited; stopping the others" not in out
    # On a fresh database nothing runs before the schema is there: no "relation does not exist".
    assert "Traceback" not in out, out
    assert "does not exist" not in out
    assert "login agent / demo-pass-123" in out
    # The banner stays on screen: the once-a-second campaign tick writes no INFO lines below it.
    after_banner = out.split("Press Ctrl-C to stop everything.", 1)[1]
    assert "campaigns_tick" not in after_banner
    assert "campaigns-tick" not in after_banner
    assert re.search(r"Console:\s+http://127\.0\.0\.1:\d+/", out)
    assert "starting embedded PostgreSQL" in out
    assert (var_dir / "postgres" / "data" / "PG_VERSION").exists()
    time.sleep(1)
    assert _pids_under(var_dir) == [], "Ctrl-C must stop the embedded services too"

    # A second run reuses the data: no new initdb, the seed finds its demo workspace.
    log = tmp_path / "run2.log"
    proc = _start(var_dir, port, log)
    try:
        _wait_ready(proc, port, log)
    finally:
        out = _stop(proc, log)
    assert "initialising embedded PostgreSQL" not in out
    assert "Demo workspace: Demo Workspace" in out
