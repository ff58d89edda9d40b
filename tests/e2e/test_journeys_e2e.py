"""Done when (issue 12): on real parts — a Celery worker with its embedded beat firing ``journeys-tick``
every second, the outbox relay process, signed Twilio webhooks over HTTP to a live server, the fake
Twilio receiving the SMS through the twilio SDK — a missed call enrolls the caller, the "sorry" SMS goes
out, the simulated hour passes (the journeys' clock is shifted through ``JOURNEYS_CLOCK_FILE``, read by
the worker and beat) and the callback task exists; a caller who replies within the hour takes the other
branch at once. The same for a custom event posted through ``POST /api/v1/events``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings

from config.celery import app as celery_app
from engagement.journeys.clock import clock_shift
from engagement.journeys.services import journey_create, journey_publish
from engagement.models import AgentTask, Enrollment, Interaction, Membership
from engagement.services.tenancy import api_key_create
from tests import factories
from tests.conftest import database_url_for_tests, wait_for
from tests.e2e.processes import celery_worker_start, outbox_relay_start, process_stop
from tests.fakes.twilio_server import NO_ANSWER_NUMBER, post_twilio_webhook

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

ALWAYS_OPEN = {day: ["00:00", "23:59"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
ALICE, BOB, CAROL = "+14155550101", "+14155550102", "+14155550103"


@pytest.fixture
def worker_with_beat(live_server: Any, settings: Any, tmp_path: Path) -> Iterator[Path]:
    """``celery worker -B`` (beat inside the worker, as ``make run`` runs it) and the outbox relay, on
    the test database, with the journeys' clock in a file the test moves."""
    clock = tmp_path / "journeys-clock"
    clock.write_text("0")
    settings.OUTBOX_RELAY_INLINE = False
    settings.JOURNEYS_CLOCK_FILE = str(clock)
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "REDIS_URL": settings.REDIS_URL,
        "PUBLIC_BASE_URL": live_server.url,
        "OUTBOUND_RETRY_BASE_SECONDS": "0.2",
        "DATABASE_POOL_MAX": "6",
        "JOURNEYS_CLOCK_FILE": str(clock),
        "JOURNEYS_TICK_BUDGET_SECONDS": "0.8",
    }
    celery_app.conf.task_always_eager = False
    worker = celery_worker_start(
        env,
        name=f"journeys-e2e-{os.getpid()}",
        log_name="e2e-journeys-worker.log",
        pool="threads",
        concurrency=4,
        beat_schedule=tmp_path / "beat-schedule",
    )
    relay = outbox_relay_start(env, log_name="e2e-journeys-relay.log")
    try:
        yield clock
    finally:
        process_stop(relay)
        process_stop(worker)


def _wait_reply_journey(workspace: Any, sms: Any, trigger: dict[str, Any], body: str) -> Any:
    journey = journey_create(
        workspace=workspace,
        name=f"{trigger['type']} follow-up",
        definition={
            "trigger": trigger,
            "steps": [
                {"key": "sorry", "type": "send", "channel_ids": [sms.pk], "content": {"sms": {"body": body}}},
                {
                    "key": "wait",
                    "type": "wait_for",
                    "for": "reply",
                    "timeout_seconds": 3600,
                    "matched": [{"key": "thanks", "type": "update", "add_tags": ["replied"]}],
                    "timeout": [
                        {"key": "callback", "type": "create_task", "title": "Call this customer back"}
                    ],
                },
            ],
        },
    )
    journey_publish(journey=journey)
    return journey


def _sent_to(fake_twilio: Any, number: str) -> list[str]:
    return [m["Body"] for m in list(fake_twilio.messages) if m.get("To") == number and "sid" in m]


def test_missed_call_and_custom_event_journeys_on_real_parts(live_server, worker_with_beat, fake_twilio):
    settings.PUBLIC_BASE_URL = live_server.url
    fake_twilio.send_callbacks = True
    workspace = factories.workspace_create()
    sms = factories.twilio_channel(workspace, fake_twilio)
    voice = factories.twilio_channel(
        workspace,
        fake_twilio,
        kind="voice",
        call_flow={"greeting": "Thanks for calling.", "hours": ALWAYS_OPEN},
    )
    agent = factories.member(workspace)
    Membership.objects.filter(user=agent).update(phone=NO_ANSWER_NUMBER, on_duty=True)
    missed = _wait_reply_journey(
        workspace, sms, {"type": "call.missed", "channel_kind": "voice"}, "Sorry we missed your call!"
    )
    abandoned = _wait_reply_journey(
        workspace, sms, {"type": "event", "name": "cart_abandoned"}, "You left something in your cart."
    )
    _, api_key = api_key_create(workspace=workspace, name="e2e")

    def hook(channel: Any, name: str) -> str:
        return f"{live_server.url}/webhooks/twilio/{channel.webhook_token}/{name}/"

    # 1. Alice and Bob call; nobody answers; each gets the SMS from the journey through the fake Twilio.
    for caller in (ALICE, BOB):
        fake_twilio.inbound_call(
            hook(voice, "voice"), caller=caller, called=voice.address,
            status_callback=hook(voice, "call-status"), digits="1", transcript="Please call me back.",
        )  # fmt: skip
    for caller in (ALICE, BOB):
        wait_for(lambda c=caller: _sent_to(fake_twilio, c) == ["Sorry we missed your call!"], timeout=60)
    alice = Enrollment.objects.get(journey=missed, customer__identities__value=ALICE)
    wait_for(lambda: Enrollment.objects.filter(pk=alice.pk, waiting_for="reply").exists())

    # 2. Bob replies within the hour (a signed inbound SMS): his enrollment takes the other branch at once.
    reply = {
        "MessageSid": "SM" + "7" * 32,
        "AccountSid": fake_twilio.account_sid,
        "From": BOB,
        "To": sms.address,
        "Body": "Yes please, call me",
        "NumMedia": "0",
    }
    started = time.monotonic()
    assert post_twilio_webhook(hook(sms, "inbound"), reply, fake_twilio.auth_token) == 200
    bob = wait_for(
        lambda: Enrollment.objects.filter(
            journey=missed, customer__identities__value=BOB, state="completed"
        ).first(),
        timeout=30,
    )
    reacted = time.monotonic() - started
    assert bob.step_runs.get(step_key="wait").outcome == "matched"
    assert "replied" in bob.customer.tags

    # 3. A custom event through the API enrolls Carol (a customer created from her phone number).
    resp = httpx.post(
        f"{live_server.url}/api/v1/events/",
        json={"events": [{"name": "cart_abandoned", "event_id": "cart-1", "phone": CAROL}]},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    wait_for(lambda: _sent_to(fake_twilio, CAROL) == ["You left something in your cart."], timeout=60)
    carol = Enrollment.objects.get(journey=abandoned)
    wait_for(lambda: Enrollment.objects.filter(pk=carol.pk, waiting_for="reply").exists())
    assert not AgentTask.objects.exists()

    # 4. The hour passes (the journeys' clock, as the worker and beat read it): the callback tasks appear.
    clock_shift(seconds=3601)
    tasks = wait_for(lambda: AgentTask.objects.count() == 2 and list(AgentTask.objects.all()), timeout=30)
    assert {t.customer_id for t in tasks} == {alice.customer_id, carol.customer_id}
    assert {t.title for t in tasks} == {"Call this customer back"}
    for enrollment in (alice, carol):
        enrollment.refresh_from_db()
        assert enrollment.state == "completed"
        assert enrollment.step_runs.get(step_key="wait").outcome == "timed_out"
    # Exactly one SMS per enrollment reached Twilio; Bob got no task.
    assert [len(_sent_to(fake_twilio, n)) for n in (ALICE, BOB, CAROL)] == [1, 1, 1]
    assert not AgentTask.objects.filter(customer_id=bob.customer_id).exists()
    assert Interaction.objects.filter(direction="outbound", metadata__has_key="journey_id").count() == 3
    assert reacted < 10, f"the reply reached its enrollment {reacted:.1f} s after the webhook"
