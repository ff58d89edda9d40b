"""Browser tests: a real uvicorn ASGI server and a real Celery worker on the test database, a host
website on another loopback origin, and Debian's Chromium driven through Playwright.

pytest-django's ``live_server`` is WSGI-only (no websockets), so the server is started the way
``celery_worker_process`` starts its worker: a subprocess with the test database's URL.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import database_url_for_tests
from tests.e2e.processes import VAR, celery_worker_start, outbox_relay_start, process_spawn, process_stop

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AsgiServer:
    url: str
    proc: subprocess.Popen[bytes]


def _server_env(url: str) -> dict[str, str]:
    from django.conf import settings

    return {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "REDIS_URL": settings.REDIS_URL,
        "PUBLIC_BASE_URL": url,
        "DEBUG": "1",  # static files (console.js) through whitenoise's finders, as in `make run`
        "DATABASE_POOL_MAX": "4",
        "SANDBOX_DELIVERY_DELAY": "0.2",
        "WEBCHAT_RATE_IP_NEW_VISITORS_PER_HOUR": "1000",
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }


@pytest.fixture
def asgi_server(transactional_db: None) -> Iterator[AsgiServer]:
    """``uvicorn config.asgi:application`` (HTTP and websockets) on the test database."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = process_spawn(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=_server_env(url),
        log_name="e2e-uvicorn.log",
    )
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}; see {VAR / 'e2e-uvicorn.log'}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("uvicorn did not answer /healthz in 60 s")
        time.sleep(0.2)
    yield AsgiServer(url=url, proc=proc)
    process_stop(proc)


@pytest.fixture
def outbox_relay_for_server(asgi_server: AsgiServer) -> Iterator[subprocess.Popen[bytes]]:
    """The outbox relay on the test database: committed events reach the console's websocket live."""
    relay = outbox_relay_start(_server_env(asgi_server.url))
    yield relay
    process_stop(relay)


@pytest.fixture
def celery_worker_for_server(asgi_server: AsgiServer) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker on the test database (agent replies are sent by it)."""
    relay = outbox_relay_start(_server_env(asgi_server.url))
    proc = celery_worker_start(
        _server_env(asgi_server.url), name=f"browser-{os.getpid()}", log_name="e2e-worker.log"
    )
    yield proc
    process_stop(relay)
    process_stop(proc)


@dataclass
class HostSite:
    """A customer's website on its own origin: ``pages[path] = html``."""

    origin: str
    pages: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def host_site() -> Iterator[HostSite]:
    port = free_port()
    site = HostSite(origin=f"http://127.0.0.1:{port}")  # another origin than the platform's port

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            html = site.pages.get(self.path.split("?")[0])
            body = (html or "not found").encode()
            self.send_response(200 if html else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site
    server.shutdown()
    server.server_close()


@contextlib.contextmanager
def chromium_browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright's sync API. Seed the database before entering: while the sync
    API runs, this thread has a running asyncio loop, under which Django refuses ORM calls (so reads in
    the block are allowed explicitly) and in-process realtime pushes cannot run."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (make test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
