"""The web tier: one origin from nginx's site template (make run and docker-compose), granian for HTTP
through config.wsgi, and channel-layer sends from sync code on one long-lived loop per process."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

front = importlib.import_module("front")  # tools/front.py: make run's web tier


def test_the_site_template_routes_websockets_to_asgi_and_the_rest_to_wsgi(tmp_path):
    conf = front.nginx_config(
        listen="127.0.0.1:18000",
        http_upstream="127.0.0.1:18001",
        ws_upstream="127.0.0.1:18002",
        prefix=tmp_path / "nginx",
    )
    site = (tmp_path / "nginx" / "site.conf").read_text()
    assert "listen 127.0.0.1:18000;" in site
    assert "server 127.0.0.1:18001;" in site
    assert "server 127.0.0.1:18002;" in site
    assert "location /ws/" in site
    assert "proxy_pass http://engagement_ws;" in site
    assert "$http_upgrade" in site
    assert "${ENGAGEMENT_" not in site
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if Path(nginx).exists():  # the syntax check needs Debian's nginx, which make run installs
        checked = subprocess.run(
            [nginx, "-t", "-p", str(tmp_path / "nginx"), "-c", str(conf)], capture_output=True
        )
        assert checked.returncode == 0, checked.stderr.decode()


def test_web_commands_serve_http_with_granian_and_websockets_with_uvicorn(tmp_path):
    """With nginx (this machine has Debian's): three processes; without it, uvicorn alone."""
    commands = front.web_commands(sys.executable, "127.0.0.1", "18000", tmp_path)
    if front._nginx() is None:
        assert list(commands) == ["web"]
        assert "config.asgi:application" in commands["web"]
        return
    assert commands["web"][1:5] == ["-m", "granian", "--interface", "wsgi"]
    assert commands["web"][-1] == "config.wsgi:application"
    assert commands["websockets"][1:4] == ["-m", "uvicorn", "config.asgi:application"]
    assert commands["front"][0].endswith("nginx")
    assert (tmp_path / "nginx" / "nginx.conf").exists()


@pytest.mark.django_db
def test_the_wsgi_application_serves_the_product():
    from config.wsgi import application

    assert application is not None
    assert Client().get("/healthz").content == b"ok"


def test_group_send_now_reaches_the_group_from_sync_code_on_one_loop():
    from engagement import realtime

    layer = get_channel_layer()
    assert layer is not None
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("test.web-tier", channel)
    try:
        realtime.group_send_now("test.web-tier", {"type": "ping", "n": 1})
        loop = realtime._push_loop_get()
        realtime.group_send_now("test.web-tier", {"type": "ping", "n": 2})
        assert realtime._push_loop_get() is loop  # the same loop (and so the same Redis pool) every time
        received = [async_to_sync(layer.receive)(channel) for _ in range(2)]
    finally:
        async_to_sync(layer.group_discard)("test.web-tier", channel)
    assert [m["n"] for m in received] == [1, 2]
