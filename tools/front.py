"""The web tier of ``make run``: one origin (``HOST:PORT``) for console, API, webhooks and websockets.

nginx (Debian's package) listens on ``PORT`` and routes ``/ws/`` to uvicorn (``config.asgi``, websockets
only) and everything else to granian (``config.wsgi``), each on a free loopback port, with the same site
template as ``docker-compose.yml`` (``deploy/nginx-site.conf.template``). Without nginx (and no way to
install it), uvicorn serves HTTP and websockets alone on ``PORT``: the same origin, at the slower rate of
Django's ASGI handler.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx-site.conf.template"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _nginx() -> str | None:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        print("[run] installing Debian's nginx (the one-origin front of make run)", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, stdout=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "nginx"], env=env, check=False, stdout=subprocess.DEVNULL
        )
        found = shutil.which("nginx") or (
            "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
        )
    return found


def nginx_config(*, listen: str, http_upstream: str, ws_upstream: str, prefix: Path) -> Path:
    """Write a complete nginx.conf under ``prefix`` (pid, logs, temp dirs there) around the site template."""
    prefix.mkdir(parents=True, exist_ok=True)
    site = Template(TEMPLATE.read_text()).safe_substitute(
        ENGAGEMENT_LISTEN=listen, ENGAGEMENT_HTTP_UPSTREAM=http_upstream, ENGAGEMENT_WS_UPSTREAM=ws_upstream
    )
    (prefix / "site.conf").write_text(site)
    temp = {name: prefix / "tmp" / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        "daemon off;\n"
        "worker_processes 1;\n"
        f"pid {prefix / 'nginx.pid'};\n"
        "error_log stderr warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "    access_log off;\n"
        f"    client_body_temp_path {temp['client_body']};\n"
        f"    proxy_temp_path {temp['proxy']};\n"
        f"    fastcgi_temp_path {temp['fastcgi']};\n"
        f"    uwsgi_temp_path {temp['uwsgi']};\n"
        f"    scgi_temp_path {temp['scgi']};\n"
        f"    include {prefix / 'site.conf'};\n"
        "}\n"
    )
    return conf


def web_commands(python: str, host: str, port: str, var_dir: Path) -> dict[str, list[str]]:
    """The processes that serve ``host:port``: nginx + granian (HTTP) + uvicorn (websockets), or uvicorn
    alone when nginx is unavailable."""
    nginx = _nginx()
    if nginx is None:
        print("[run] nginx not found: uvicorn serves HTTP and websockets alone (slower)", flush=True)
        return {"web": [python, "-m", "uvicorn", "config.asgi:application", "--host", host, "--port", port]}
    http_port, ws_port = _free_port(host), _free_port(host)
    prefix = var_dir / "nginx"
    conf = nginx_config(
        listen=f"{host}:{port}",
        http_upstream=f"{host}:{http_port}",
        ws_upstream=f"{host}:{ws_port}",
        prefix=prefix,
    )
    return {
        "web": [
            python,
            "-m",
            "granian",
            "--interface",
            "wsgi",
            "--host",
            host,
            "--port",
            str(http_port),
            "--workers",
            "1",
            "--blocking-threads",
            "4",
            "--no-ws",
            # A worker that does not stop within 5 s is killed, so granian exits well before make run
            # gives up waiting for it (15 s) and no orphaned worker is left behind.
            "--workers-kill-timeout",
            "5",
            "config.wsgi:application",
        ],
        "websockets": [
            python,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            host,
            "--port",
            str(ws_port),
        ],
        "front": [nginx, "-p", str(prefix), "-c", str(conf)],
    }
