"""The core path through faults, on real processes: Redis stopped, a worker SIGKILLed mid-send (with a fast
and a slow provider), PostgreSQL restarted, a flaky provider that asks for Retry-After, and RabbitMQ as
the broker. Sends are counted where they land, at the fake Twilio (the real twilio SDK talks to it).

Redis and PostgreSQL that a test stops are its own (``tests/e2e/processes.py``); the machine's shared
services are never stopped."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.db import transaction

from customers.services import Identifier, customer_resolve
from engagement.models import AutomationRule, Channel, Interaction, OutboxEvent, Workspace
from engagement.services.messaging import message_send
from engagement.services.tenancy import api_key_create
from tests import factories
from tests.conftest import database_url_for_tests, load_payload, wait_for
from tests.e2e.processes import VAR, PrivateCluster, PrivateRedis, base_env, free_port, platform
from tests.fakes.twilio_server import FakeTwilio, post_twilio_webhook

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REPLY = "We open at 9."


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    redis = PrivateRedis(directory=VAR / f"e2e-redis-{free_port()}").start()
    yield redis
    redis.stop()
    import shutil

    shutil.rmtree(redis.directory, ignore_errors=True)


@pytest.fixture
def no_inline_relay(settings: Any) -> None:
    settings.OUTBOX_RELAY_INLINE = False  # the relay process relays what this process commits


def _accepted(fake: FakeTwilio) -> list[dict[str, Any]]:
    return [m for m in list(fake.messages) if "sid" in m]


def _keyword_workspace(fake: FakeTwilio) -> tuple[Workspace, Channel, str]:
    workspace = factories.workspace_create()
    channel = factories.twilio_channel(workspace, fake)
    AutomationRule.objects.create(
        workspace=workspace,
        name="hours",
        channel_kind="sms",
        match_type="keyword",
        keywords="hours",
        template=REPLY,
    )
    _, api_key = api_key_create(workspace=workspace, name="e2e")
    return workspace, channel, api_key


def _inbound(url: str, fake: FakeTwilio, n: int, body: str = "HOURS") -> int:
    sid = f"SM{n:032d}"
    form = {
        **load_payload("twilio_inbound_sms.txt"),
        "Body": body,
        "From": f"+1908555{n:04d}",
        "MessageSid": sid,
        "SmsSid": sid,
        "SmsMessageSid": sid,
    }
    return post_twilio_webhook(url, form, fake.auth_token)


# ---------------------------------------------------------------- Redis stopped


def test_redis_outage_loses_nothing_and_sends_nothing_twice(fake_twilio, private_redis, no_inline_relay):
    """Redis (broker and channel layer) stops while 20 keyword SMS and a STOP arrive and an API send is
    made: every webhook answers 2xx and is stored, the API answers 202, and once Redis is back all 20
    automation replies, the STOP confirmation and the API message are sent, each exactly once."""
    _, channel, api_key = _keyword_workspace(fake_twilio)
    port = free_port()
    env = base_env(
        DATABASE_URL=database_url_for_tests(),
        REDIS_URL=private_redis.url,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
    )
    with platform(env) as running:
        running.relay()
        running.worker()
        web = running.web(port)
        hook = f"{web}/webhooks/twilio/{channel.webhook_token}/inbound/"
        # Warm: the whole loop works before the outage.
        assert _inbound(hook, fake_twilio, 0) == 200
        wait_for(lambda: len(_accepted(fake_twilio)) == 1, timeout=60)

        private_redis.stop()
        started = time.monotonic()
        statuses = [_inbound(hook, fake_twilio, n) for n in range(1, 21)]
        stop = _inbound(hook, fake_twilio, 21, body="STOP")  # consent recorded, confirmation queued
        api = httpx.post(
            f"{web}/api/v1/messages/",
            headers={"Authorization": f"Bearer {api_key}"},
            json={"channel_id": channel.pk, "to": "+14155550199", "body": "Your code is 1234"},
            timeout=30,
        )
        assert statuses == [200] * 20
        assert stop == 200
        assert api.status_code == 202, api.text
        assert time.monotonic() - started < 30  # nobody waited on Redis
        assert Interaction.objects.filter(direction="inbound").count() == 22
        assert len(_accepted(fake_twilio)) == 1  # nothing could be handed to the worker
        waiting = OutboxEvent.objects.filter(relayed_at__isnull=True)
        assert waiting.filter(name="message.received").count() == 21
        assert waiting.filter(name="outbound.queued").count() == 2  # the STOP confirmation, the API send
        time.sleep(2)  # the relay keeps trying meanwhile
        assert OutboxEvent.objects.filter(relayed_at__isnull=True, attempts__gt=0).exists()

        private_redis.start()
        wait_for(lambda: len(_accepted(fake_twilio)) >= 23, timeout=60)
        time.sleep(3)  # anything sent twice would show now

    sent = _accepted(fake_twilio)
    assert len(sent) == 23
    per_recipient = Counter(m["To"] for m in sent)
    assert per_recipient == Counter([f"+1908555{n:04d}" for n in range(22)] + ["+14155550199"])
    assert {m["Body"] for m in sent if m["To"] != "+19085550021" and m["To"].startswith("+1908555")} == {
        REPLY
    }
    assert "unsubscribed" in next(m["Body"] for m in sent if m["To"] == "+19085550021")
    assert not OutboxEvent.objects.filter(relayed_at__isnull=True).exists()
    assert Interaction.objects.filter(direction="outbound", status="sent").count() == 23


# ---------------------------------------------------------------- a worker SIGKILLed mid-send


@pytest.mark.parametrize("response_delay", [0.0, 0.3], ids=["fast-provider", "slow-provider"])
def test_worker_killed_during_300_sends_delivers_each_exactly_once(
    fake_twilio, private_redis, no_inline_relay, response_delay
):
    """300 queued sends, two workers (6 threads each); one is SIGKILLed when about a third went out, in
    the middle of provider calls; the other and beat's recovery (leases reconciled with Twilio's Messages
    list, lost tasks re-queued) finish the job: 300 messages at Twilio, one per interaction, none left in
    ``sending``."""
    fake_twilio.response_delay = response_delay
    workspace = factories.workspace_create()
    channel = factories.twilio_channel(workspace, fake_twilio)
    env = base_env(
        DATABASE_URL=database_url_for_tests(),
        REDIS_URL=private_redis.url,
        PUBLIC_BASE_URL="http://127.0.0.1:9",  # status callbacks are not part of this test
        TWILIO_HTTP_TIMEOUT="1.5",
        OUTBOUND_SEND_LEASE_SECONDS="4",
        OUTBOUND_RECOVER_INTERVAL_SECONDS="1",
        OUTBOUND_REQUEUE_AFTER_SECONDS="15",
        CELERY_TASK_TIME_LIMIT="8",
        CELERY_VISIBILITY_TIMEOUT="10",
    )
    with platform(env) as running:
        running.relay()
        running.beat()
        running.worker("worker-a", pool="threads", concurrency=6)
        running.worker("worker-b", pool="threads", concurrency=6)
        with transaction.atomic():
            for n in range(300):
                to = f"+1415777{n:04d}"
                customer, _ = customer_resolve(workspace=workspace, identifier=Identifier("phone", to))
                message_send(workspace=workspace, channel=channel, customer=customer, body=f"Message {n}")
        wait_for(lambda: len(_accepted(fake_twilio)) >= 100, timeout=90, interval=0.02)
        running.kill("worker-a")
        at_kill = len(_accepted(fake_twilio))
        stranded = Interaction.objects.filter(status="sending").count()
        assert at_kill < 300
        if response_delay:
            assert stranded > 0, "the kill should catch provider calls in flight"
        wait_for(
            lambda: (
                not Interaction.objects.filter(
                    direction="outbound", status__in=["queued", "sending"]
                ).exists()
            ),
            timeout=120,
        )
        time.sleep(2)  # a duplicate would land now

    sent = _accepted(fake_twilio)
    bodies = Counter(m["Body"] for m in sent)
    assert [body for body, count in bodies.items() if count > 1] == []
    assert len(bodies) == 300
    rows = Interaction.objects.filter(direction="outbound")
    assert rows.filter(status="sent").count() == 300
    assert sorted(rows.values_list("provider_message_id", flat=True)) == sorted(m["sid"] for m in sent)


# ---------------------------------------------------------------- PostgreSQL restarted


def test_postgres_restart_webhooks_answer_5xx_then_recover_without_restart(fake_twilio, no_inline_relay):
    """Our own PostgreSQL cluster is stopped under the running platform: webhooks answer 5xx (Twilio will
    retry them), and once it is back the same processes store the retried webhooks and send the replies."""
    cluster = PrivateCluster(directory=VAR / f"e2e-pg-{free_port()}").init()
    try:
        port = free_port()
        env = base_env(
            DATABASE_URL=cluster.url,
            REDIS_URL=f"redis://127.0.0.1:{_redis_port()}/{_redis_db()}",
            PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
            CELERY_TASK_DEFAULT_QUEUE=f"e2e-pg-{port}",
            DATABASE_POOL_TIMEOUT="1",
        )
        _run(env, ["manage.py", "migrate", "--noinput"])
        token = (
            _run(
                {
                    **env,
                    "FAKE_URL": fake_twilio.url,
                    "FAKE_SID": fake_twilio.account_sid,
                    "FAKE_TOKEN": fake_twilio.auth_token,
                },
                ["manage.py", "shell", "-c", SEED],
            )
            .strip()
            .splitlines()[-1]
        )
        with platform(env) as running:
            running.relay()
            running.worker()
            web = running.web(port)
            hook = f"{web}/webhooks/twilio/{token}/inbound/"
            assert _inbound(hook, fake_twilio, 1) == 200
            wait_for(lambda: len(_accepted(fake_twilio)) == 1, timeout=60)

            cluster.stop()
            started = time.monotonic()
            down = [_inbound(hook, fake_twilio, n) for n in (2, 3)]
            took = time.monotonic() - started
            print(f"two webhooks answered in {took:.1f} s while PostgreSQL was down: {down}")
            assert all(500 <= status < 600 for status in down), down

            cluster.start()
            # Twilio retries a webhook that failed; the same web process answers once PostgreSQL is back.
            deadline = time.monotonic() + 30
            retried: list[int] = []
            while time.monotonic() < deadline:
                retried = [_inbound(hook, fake_twilio, n) for n in (2, 3)]
                if retried == [200, 200]:
                    break
                time.sleep(0.5)
            assert retried == [200, 200]
            assert _inbound(hook, fake_twilio, 4) == 200
            wait_for(lambda: len(_accepted(fake_twilio)) == 4, timeout=60)
            time.sleep(1)
        assert sorted(m["To"] for m in _accepted(fake_twilio)) == [f"+1908555{n:04d}" for n in (1, 2, 3, 4)]
    finally:
        cluster.remove()


SEED = """
import os
from types import SimpleNamespace
from engagement.models import AutomationRule
from tests import factories
env = os.environ
fake = SimpleNamespace(url=env["FAKE_URL"], account_sid=env["FAKE_SID"], auth_token=env["FAKE_TOKEN"])
workspace = factories.workspace_create()
channel = factories.twilio_channel(workspace, fake)
AutomationRule.objects.create(workspace=workspace, name="hours", channel_kind="sms", match_type="keyword",
                              keywords="hours", template="We open at 9.")
print(channel.webhook_token)
"""


def _redis_port() -> int:
    from django.conf import settings

    return int(settings.REDIS_URL.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


def _redis_db() -> str:
    from django.conf import settings

    return settings.REDIS_URL.rsplit("/", 1)[1] or "0"


def _run(env: dict[str, str], args: list[str]) -> str:
    import subprocess
    import sys

    from tests.e2e.processes import ROOT

    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


# ---------------------------------------------------------------- a flaky provider


def test_flaky_provider_every_message_delivered_and_retry_after_honoured(
    fake_twilio, private_redis, no_inline_relay
):
    """The provider answers 20% of message requests 429 or 503 with ``Retry-After: 1``; our own backoff
    is 0.2 s. Every message is sent exactly once, and no retry comes sooner than the provider asked."""
    fake_twilio.fail_rate = 0.2
    fake_twilio.retry_after = "1"
    workspace = factories.workspace_create()
    channel = factories.twilio_channel(workspace, fake_twilio)
    env = base_env(
        DATABASE_URL=database_url_for_tests(),
        REDIS_URL=private_redis.url,
        PUBLIC_BASE_URL="http://127.0.0.1:9",
    )
    with platform(env) as running:
        running.relay()
        running.worker(pool="threads", concurrency=4)
        with transaction.atomic():
            for n in range(40):
                customer, _ = customer_resolve(
                    workspace=workspace, identifier=Identifier("phone", f"+1415666{n:04d}")
                )
                message_send(workspace=workspace, channel=channel, customer=customer, body=f"Flaky {n}")
        wait_for(lambda: len(_accepted(fake_twilio)) >= 40, timeout=90)
        time.sleep(1.5)

    requests = list(fake_twilio.messages)
    rejected = [m for m in requests if "rejected" in m]
    assert rejected, "the provider refused some requests"
    assert Counter(m["Body"] for m in _accepted(fake_twilio)) == Counter(f"Flaky {n}" for n in range(40))
    for refusal in rejected:
        later = [m["at"] for m in requests if m["Body"] == refusal["Body"] and m["at"] > refusal["at"]]
        assert later, f"{refusal['Body']} was never tried again"
        assert min(later) - refusal["at"] >= 0.95, "a retry came before Retry-After"
    assert Interaction.objects.filter(direction="outbound", status="sent").count() == 40


# ---------------------------------------------------------------- RabbitMQ as the broker


def _rabbitmq_reachable() -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", 5672)) == 0


def test_rabbitmq_broker_sends_through_a_worker(fake_twilio, no_inline_relay):
    """``CELERY_BROKER_URL`` names RabbitMQ: the relay publishes there and a worker consumes from there.
    (CI runs RabbitMQ; a machine without it fails this test, it is not skipped.)"""
    assert _rabbitmq_reachable(), "RabbitMQ must listen on 127.0.0.1:5672 (guest/guest)"
    _, channel, api_key = _keyword_workspace(fake_twilio)
    port = free_port()
    env = base_env(
        DATABASE_URL=database_url_for_tests(),
        CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//",
        CELERY_TASK_DEFAULT_QUEUE=f"e2e-rabbit-{port}",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
    )
    fake_twilio.send_callbacks = True
    try:
        with platform(env) as running:
            running.relay()
            running.worker()
            web = running.web(port)
            assert _inbound(f"{web}/webhooks/twilio/{channel.webhook_token}/inbound/", fake_twilio, 7) == 200
            resp = httpx.post(
                f"{web}/api/v1/messages/",
                headers={"Authorization": f"Bearer {api_key}"},
                json={"channel_id": channel.pk, "to": "+14155550123", "body": "Sent through RabbitMQ"},
                timeout=30,
            )
            assert resp.status_code == 202, resp.text
            wait_for(
                lambda: Interaction.objects.filter(direction="outbound", status="delivered").count() == 2,
                timeout=60,
            )
    finally:
        from kombu import Connection, Exchange, Queue

        name = env["CELERY_TASK_DEFAULT_QUEUE"]
        with Connection(env["CELERY_BROKER_URL"]) as conn:  # the test's own queue and exchange
            Queue(name, Exchange(name), routing_key=name)(conn.default_channel).delete()
            Exchange(name)(conn.default_channel).delete()
    assert sorted(m["Body"] for m in _accepted(fake_twilio)) == sorted([REPLY, "Sent through RabbitMQ"])
