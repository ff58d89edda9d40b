"""Shared fixtures. Tests talk to real PostgreSQL and Redis; provider calls go through the real SDKs to
local fake provider servers; end-to-end tests run a real Celery worker process."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client

from config.celery import app as celery_app
from engagement.models import Channel, Role, Workspace
from tests import factories
from tests.e2e.processes import celery_worker_start, outbox_relay_start, process_stop
from tests.fakes.sendgrid_server import FakeSendGrid, sendgrid_channel
from tests.fakes.twilio_server import FakeTwilio, twilio_signature

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = Path(__file__).resolve().parent / "fixtures" / "payloads"


def load_payload(name: str) -> Any:
    """Payload files start with one '#' source line (see shared/payloads/README.md)."""
    text = (PAYLOADS / name).read_text()
    body = text.split("\n", 1)[1]
    if name.endswith(".json"):
        return json.loads(body)
    return dict(line.split("=", 1) for line in body.splitlines() if "=" in line)


@pytest.fixture(scope="session", autouse=True)
def _close_db_pools_at_end(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Return pooled connections before pytest-django drops the test database (else: 'in use')."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        for conn in connections.all(initialized_only=True):
            if hasattr(conn, "close_pool"):
                conn.close_pool()
            else:
                conn.close()


@pytest.fixture(autouse=True)
def _celery_eager() -> Iterator[None]:
    """Unit tests run tasks in-process; end-to-end tests use a real worker instead."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def _pacing_state_cleared() -> None:
    """Each test starts with no sender's pacing state in Redis (token buckets, reserved send slots:
    ``pace:*``, engagement/services/guards.py). Senders repeat across tests (the fake SendGrid key, the
    test numbers), and slots another test reserved ahead at a low rate would make this one wait."""
    import redis
    from django.conf import settings as django_settings

    client = redis.Redis.from_url(django_settings.REDIS_URL)
    try:
        keys = list(client.scan_iter(match="pace:*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass  # a test that stops Redis on purpose starts without it
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _outbox_inline(settings: Any) -> None:
    """Unit tests relay outbox rows in-process on commit; end-to-end tests run the relay process."""
    settings.OUTBOX_RELAY_INLINE = True


@pytest.fixture(scope="session")
def fake_twilio_server() -> Iterator[FakeTwilio]:
    server = FakeTwilio(account_sid="AC" + "f" * 32, auth_token="fake-auth-token-0123456789").start()
    yield server
    server.stop()


@pytest.fixture
def fake_twilio(fake_twilio_server: FakeTwilio) -> FakeTwilio:
    fake_twilio_server.reset()
    return fake_twilio_server


@pytest.fixture(scope="session")
def fake_sendgrid_server() -> Iterator[FakeSendGrid]:
    server = FakeSendGrid(api_key="SG.fake-api-key.0123456789").start()
    yield server
    server.stop()


@pytest.fixture
def fake_sendgrid(fake_sendgrid_server: FakeSendGrid) -> FakeSendGrid:
    fake_sendgrid_server.reset()
    return fake_sendgrid_server


@pytest.fixture
def email_channel(workspace: Workspace, fake_sendgrid: FakeSendGrid) -> Channel:
    return sendgrid_channel(workspace, fake_sendgrid)


@pytest.fixture
def workspace(db: None) -> Workspace:
    return factories.workspace_create()


@pytest.fixture
def sms_channel(workspace: Workspace, fake_twilio: FakeTwilio) -> Channel:
    return factories.twilio_channel(workspace, fake_twilio)


@pytest.fixture
def agent(workspace: Workspace) -> Any:
    return factories.member(workspace, Role.AGENT)


@pytest.fixture
def agent_client(agent: Any) -> Client:
    client = Client()
    client.force_login(agent)
    return client


def webhook_path(channel: Channel, hook: str) -> str:
    return f"/webhooks/{channel.provider}/{channel.webhook_token}/{hook}/"


def post_twilio(
    client: Client,
    channel: Channel,
    hook: str,
    params: dict[str, str],
    *,
    query: str = "",
    signature: str | None = None,
    sign_with: str | None = None,
) -> Any:
    """POST ``params`` to the channel's webhook through Django's test client, signed as Twilio would."""
    path = webhook_path(channel, hook) + (f"?{query}" if query else "")
    token = sign_with or channel.config["auth_token"]
    sig = signature if signature is not None else twilio_signature(f"http://testserver{path}", params, token)
    headers = {"X-Twilio-Signature": sig} if sig else {}
    return client.post(
        path, data=urlencode(params), content_type="application/x-www-form-urlencoded", headers=headers
    )


# ---------------------------------------------------------------- end-to-end: a real Celery worker


def database_url_for_tests() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def celery_worker_process(
    live_server: Any, transactional_db: None, settings: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``celery worker`` process on the test database, calling back the live server, and the
    outbox relay process that hands it the live server's committed events."""
    settings.OUTBOX_RELAY_INLINE = False
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "REDIS_URL": settings.REDIS_URL,
        "PUBLIC_BASE_URL": live_server.url,
        "OUTBOUND_RETRY_BASE_SECONDS": "0.2",
        "SANDBOX_DELIVERY_DELAY": "0.2",
        "DATABASE_POOL_MAX": "4",
    }
    celery_app.conf.task_always_eager = False
    proc = celery_worker_start(env, name=f"e2e-{os.getpid()}", log_name="e2e-worker.log")
    relay = outbox_relay_start(env)
    yield proc
    process_stop(relay)
    process_stop(proc)


def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
