"""Outbound webhooks end to end: a signed inbound SMS through the real Twilio webhook endpoint of a live
server, the webhook listener records the deliveries in PostgreSQL, and a real Celery worker with its
embedded beat (retries are beat-driven: the next attempt time lives in PostgreSQL, not in Celery) signs and
sends them to a local receiver that verifies each with the ``standardwebhooks`` library."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from config.celery import app as celery_app
from engagement.models import Interaction, WebhookDelivery, WebhookEndpoint
from engagement.services.tenancy import api_key_create
from engagement.webhooks.services import webhook_endpoint_create
from tests import factories
from tests.conftest import database_url_for_tests, load_payload, wait_for
from tests.e2e.processes import VAR, celery_worker_start, process_stop
from tests.fakes.twilio_server import post_twilio_webhook
from tests.fakes.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def webhook_worker(live_server: Any, transactional_db: None) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``celery worker -B`` (embedded beat) on the test database, with a short retry schedule."""
    from django.conf import settings

    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "REDIS_URL": settings.REDIS_URL,
        "PUBLIC_BASE_URL": live_server.url,
        "DATABASE_POOL_MAX": "4",
        "WEBHOOKS_ALLOW_PRIVATE_TARGETS": "1",  # the receiver is on loopback
        "WEBHOOKS_RETRY_SCHEDULE": "0.5,0.5,0.5",  # four attempts in all
        "WEBHOOKS_RETRY_JITTER": "0",
        "WEBHOOKS_POLL_SECONDS": "0.5",
        "WEBHOOKS_DISABLE_AFTER_FAILED_DELIVERIES": "1",
    }
    schedule = VAR / f"e2e-webhooks-beat-{os.getpid()}"
    celery_app.conf.task_always_eager = False
    proc = celery_worker_start(
        env, name=f"e2e-webhooks-{os.getpid()}", log_name="e2e-webhooks-worker.log", beat_schedule=schedule
    )
    yield proc
    process_stop(proc)
    for path in schedule.parent.glob(schedule.name + "*"):
        path.unlink(missing_ok=True)


def test_inbound_sms_is_delivered_signed_after_three_failures_replayed_and_a_dead_endpoint_disabled(
    live_server, webhook_worker, fake_twilio, settings
):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True  # registering the loopback receivers (development)
    workspace = factories.workspace_create()
    channel = factories.twilio_channel(workspace, fake_twilio)
    good, dead = WebhookReceiver().start(), WebhookReceiver().start()
    try:
        endpoint, good.secret = webhook_endpoint_create(
            workspace=workspace, url=good.url, event_types=["message.received"]
        )
        dead_endpoint, dead.secret = webhook_endpoint_create(
            workspace=workspace, url=dead.url, event_types=["message.received"]
        )
        good.answers.extend([500, 500, 500])
        dead.answers.extend([500] * 20)

        form = load_payload("twilio_inbound_sms.txt")
        url = f"{live_server.url}/webhooks/twilio/{channel.webhook_token}/inbound/"
        assert post_twilio_webhook(url, form, fake_twilio.auth_token) == 200
        interaction = Interaction.objects.get(direction="inbound")

        # Three 500s, then the event on the fourth attempt, each verified with the library.
        wait_for(lambda: len(good.requests) == 4, timeout=60)
        assert [r.status for r in good.requests] == [500, 500, 500, 200]
        assert all(r.verified for r in good.requests)
        assert len({r.headers["webhook-id"] for r in good.requests}) == 1
        payload = good.requests[-1].payload
        assert payload["type"] == "message.received"
        assert payload["data"]["message_id"] == interaction.pk
        assert payload["data"]["customer_id"] == interaction.customer_id
        delivery = wait_for(
            lambda: WebhookDelivery.objects.filter(endpoint=endpoint, state="delivered").first(), timeout=30
        )
        assert delivery.attempts == 4
        assert [a.status_code for a in delivery.attempt_log.all()] == [500, 500, 500, 200]

        # The endpoint that never answers 2xx runs out of attempts and is switched off.
        wait_for(
            lambda: WebhookEndpoint.objects.filter(pk=dead_endpoint.pk, enabled=False).exists(), timeout=60
        )
        dead_endpoint.refresh_from_db()
        assert dead_endpoint.disabled_reason == "failing"
        assert len(dead.requests) == 4
        assert WebhookDelivery.objects.get(endpoint=dead_endpoint).state == "failed"

        # A replay through the API is one more signed attempt with the same webhook-id.
        _, api_key = api_key_create(workspace=workspace, name="e2e")
        headers = {"Authorization": f"Bearer {api_key}"}
        resp = httpx.post(
            f"{live_server.url}/api/v1/webhook-deliveries/{delivery.pk}/replay/", headers=headers
        )
        assert resp.status_code == 202, resp.text
        wait_for(lambda: len(good.requests) == 5, timeout=30)
        assert good.requests[4].verified
        assert good.requests[4].headers["webhook-id"] == delivery.event_id
        assert good.requests[4].body == good.requests[3].body
        wait_for(
            lambda: WebhookDelivery.objects.filter(pk=delivery.pk, attempts=5, state="delivered").exists()
        )

        # With the guard on (production), an endpoint on a private address is refused.
        settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
        for private in [good.url, "http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data/"]:
            resp = httpx.post(
                f"{live_server.url}/api/v1/webhook-endpoints/", headers=headers, json={"url": private}
            )
            assert resp.status_code == 400, private
        assert WebhookEndpoint.objects.count() == 2
    finally:
        good.stop()
        dead.stop()
