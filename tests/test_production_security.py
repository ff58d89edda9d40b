"""Production mode: `manage.py check --deploy` is clean; HTTPS redirect, HSTS, secure cookies and a
Content-Security-Policy on every page; the console and the webchat demo page work under the CSP (their
scripts and styles carry the request's nonce)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engagement.models import Channel, Workspace

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION_ENV = {
    "ENGAGEMENT_ENV": "production",
    "SECRET_KEY": "s3cr3t-" + "k" * 50,
    "ALLOWED_HOSTS": "engage.example.com",
    "PUBLIC_BASE_URL": "https://engage.example.com",
    "CREDENTIALS_KEYS": "x5Ql3oH0bLQbvx1d9qZVJc7m2a4QW8zQeY6u1pT0rKs=",
    "DATABASE_URL": os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1/engagement"),
    "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
}


def _nonce(csp: str) -> str:
    found = re.search(r"'nonce-([^']+)'", csp)
    assert found is not None, csp
    return found.group(1)


def _production(args: list[str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECURE_SSL_REDIRECT"}}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **PRODUCTION_ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_in_production():
    result = _production(["manage.py", "check", "--deploy", "--fail-level", "WARNING"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="engage.example.com")
plain = client.get("/login/")
tls = client.get("/login/", secure=True)
health = client.get("/healthz")
print(json.dumps({
    "plain": [plain.status_code, plain.headers.get("Location", "")],
    "health": health.status_code,
    "tls": tls.status_code,
    "headers": dict(tls.headers),
    "cookies": {name: {"secure": bool(c["secure"])} for name, c in tls.cookies.items()},
    "body": tls.content.decode(),
}))
"""


def test_production_redirects_to_https_and_sends_hsts_csp_and_secure_cookies():
    result = _production(["-c", PROBE])
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["plain"] == [301, "https://engage.example.com/login/"]
    assert out["health"] == 200  # the load balancer's plain-HTTP probe is exempt
    assert out["tls"] == 200
    headers = out["headers"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    csp = headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in csp
    nonce = re.search(r"script-src 'self' 'nonce-([^']+)'", csp)
    assert nonce is not None, csp
    assert f'nonce="{nonce.group(1)}"' in out["body"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert out["cookies"]["csrftoken"]["secure"] is True


@pytest.mark.django_db
def test_console_scripts_carry_the_csp_nonce(agent_client):
    resp = agent_client.get("/")
    csp = resp.headers["Content-Security-Policy"]
    nonce = _nonce(csp)
    html = resp.content.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts
    assert all(f'nonce="{nonce}"' in tag for tag in scripts), scripts
    assert "<style" not in html.replace(f'<style nonce="{nonce}"', "")
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers
    assert not re.search(r"\sstyle=", html)  # no inline style attributes
    # Another request, another nonce.
    assert nonce not in agent_client.get("/").headers["Content-Security-Policy"]


@pytest.mark.django_db
def test_webchat_demo_page_inline_style_and_widget_carry_the_nonce(client):
    workspace = Workspace.objects.create(name="Demo", slug="demo")
    Channel.objects.create(workspace=workspace, kind="webchat", provider="webchat", name="Chat", address="c")
    resp = client.get("/webchat/demo/")
    assert resp.status_code == 200
    nonce = _nonce(resp.headers["Content-Security-Policy"])
    html = resp.content.decode()
    assert f'<style nonce="{nonce}">' in html
    assert re.search(rf'<script src="[^"]*widget.js" data-token="[^"]+" nonce="{nonce}"', html)
    # The widget copies its tag's nonce onto the <style> it puts in its shadow root.
    widget = (ROOT / "engagement" / "static" / "webchat" / "widget.js").read_text()
    assert "script.nonce" in widget
    assert 'el("style", cspNonce ? { nonce: cspNonce } : null, CSS)' in widget


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/", "/admin/login/"])
def test_api_docs_and_admin_pages_carry_the_csp_nonce(client, path):
    resp = client.get(path)
    assert resp.status_code == 200
    nonce = _nonce(resp.headers["Content-Security-Policy"])
    html = resp.content.decode()
    for tag in re.findall(r"<(?:script|style)\b[^>]*>", html):
        assert f'nonce="{nonce}"' in tag or ("src=" in tag and "/static/" in tag), tag
