"""Exactly once, proven on real parts: a real Celery worker process (killed with SIGKILL at random
moments and started again), a beat stand-in sending the scheduler tick every half second, the fake
Twilio (counting every Messages API call and posting signed status callbacks to the live server).

Size: the issue asks for 10,000 recipients and 5 kills. On the shared 2-core machine this was written
on (load average ~10-13) one recipient costs ~30 queries end to end (claim, guards, outbox, provider
call, two status callbacks) at ~6 ms each; measured: 400 recipients with 5 SIGKILLs all sent, exactly
one Twilio call each, in 311 s (a 4-thread worker). So the default is ``CAMPAIGN_E2E_RECIPIENTS=400``;
set it to 10000 on a quiet machine for the full size (``CAMPAIGN_E2E_KILLS`` sets the kills).
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings

from config.celery import app as celery_app
from engagement.campaigns.services import campaign_launch, campaign_pause, campaign_resume
from engagement.models import CampaignRecipient, CampaignRun, CampaignSettings
from tests import factories
from tests.campaigns.helpers import audience_create, sms_campaign, tag_segment
from tests.conftest import database_url_for_tests, wait_for
from tests.e2e.processes import celery_worker_start, outbox_relay_start, process_stop

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(900)]

N = int(os.environ.get("CAMPAIGN_E2E_RECIPIENTS", "400"))
KILLS = int(os.environ.get("CAMPAIGN_E2E_KILLS", "5"))


class Worker:
    """A ``celery worker`` process (4 threads: ticks and send tasks run side by side, as with several
    workers in production) we can SIGKILL and start again, on the test database. A SIGKILL takes every
    task in flight with it."""

    def __init__(self, live_url: str, **env: str) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url_for_tests(),
            "REDIS_URL": settings.REDIS_URL,
            "PUBLIC_BASE_URL": live_url,
            "OUTBOUND_RETRY_BASE_SECONDS": "0.2",
            "DATABASE_POOL_MAX": "6",
            "CAMPAIGN_CLAIM_LEASE_SECONDS": "3",
            "CAMPAIGN_REQUEUE_AFTER_SECONDS": "3",
            "CAMPAIGN_AMBIGUOUS_AFTER_SECONDS": "20",
            "CAMPAIGN_TICK_BUDGET_SECONDS": "1",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.proc = celery_worker_start(
            self.env,
            name=f"campaign-e2e-{os.getpid()}-{self.starts}",
            log_name="e2e-campaign-worker.log",
            wait=False,
            pool="threads",
            concurrency=4,
            loglevel="warning",
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            process_stop(self.proc)


class Beat(threading.Thread):
    """Stands in for Celery beat: sends the campaign tick every half second (each expiring after 3 s,
    as the beat entry's ``expires`` does)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            celery_app.send_task("engagement.tasks.campaigns_tick", expires=3)
            self.stopped.wait(0.5)


@pytest.fixture
def worker(live_server: Any, settings: Any) -> Iterator[Worker]:
    celery_app.conf.task_always_eager = False
    settings.OUTBOX_RELAY_INLINE = False  # the relay process hands committed events on, as in production
    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # no task or bucket left by an earlier test
    w = Worker(live_server.url)
    relay = outbox_relay_start(w.env, log_name="e2e-campaign-relay.log")
    w.start()
    beat = Beat()
    beat.start()
    yield w
    beat.stopped.set()
    beat.join(5)
    w.stop()
    process_stop(relay)


def provider_calls(fake: Any) -> collections.Counter[str]:
    return collections.Counter(m["To"] for m in list(fake.messages) if "sid" in m)


def test_sigkilled_worker_sends_every_recipient_once(worker: Worker, fake_twilio: Any) -> None:
    fake_twilio.send_callbacks = True  # the live server reconciles sends a killed worker left "sending"
    workspace = factories.workspace_create()
    CampaignSettings.objects.create(workspace=workspace, quiet_hours_enabled=False)
    channel = factories.twilio_channel(workspace, fake_twilio, rate_per_second=1000)
    audience_create(workspace, N)
    campaign = sms_campaign(workspace, tag_segment(workspace), [channel])
    started = time.monotonic()
    campaign_launch(campaign=campaign)
    run = CampaignRun.objects.get(campaign=campaign)
    assert run.targeted == N

    rng = random.Random()
    for _ in range(KILLS):
        before = sum(provider_calls(fake_twilio).values())
        # Kill somewhere in the next stretch of sending, once the restarted worker is at work again.
        wait_for(lambda b=before: sum(provider_calls(fake_twilio).values()) > b + 10, timeout=180)
        time.sleep(rng.uniform(0.0, 3.0))
        worker.kill()
        worker.start()

    def finished() -> bool:
        run.refresh_from_db()
        return run.state == "completed"

    wait_for(finished, timeout=600, interval=0.5)
    elapsed = time.monotonic() - started

    states = collections.Counter(CampaignRecipient.objects.filter(run=run).values_list("state", flat=True))
    assert set(states) <= {"sent", "unknown"}, states
    calls = provider_calls(fake_twilio)
    # Never twice: at most one Messages API call per recipient, whatever the kills hit.
    assert max(calls.values()) == 1
    # Every sent row was exactly one call; a row is "unknown" only when the worker died between
    # claiming the message and calling Twilio, and then Twilio was never called for it.
    assert sum(calls.values()) == states["sent"]
    assert states["unknown"] <= KILLS * 4  # 4 worker threads: at most 4 sends in flight per kill
    unknown_phones = set(
        CampaignRecipient.objects.filter(run=run, state="unknown").values_list(
            "interaction__customer_address", flat=True
        )
    )
    assert not unknown_phones & set(calls)
    print(f"\n{N} recipients, {KILLS} SIGKILLs: {dict(states)} in {elapsed:.0f} s")


def test_pause_stops_provider_calls_within_2s_and_resume_sends_only_unsent(
    worker: Worker, fake_twilio: Any
) -> None:
    workspace = factories.workspace_create()
    CampaignSettings.objects.create(workspace=workspace, quiet_hours_enabled=False)
    # 20 a second per sender: the campaign takes ~15 s, so the pause lands mid-send.
    channel = factories.twilio_channel(workspace, fake_twilio, rate_per_second=20)
    audience_create(workspace, 300)
    campaign = sms_campaign(workspace, tag_segment(workspace), [channel])
    campaign_launch(campaign=campaign)
    wait_for(lambda: sum(provider_calls(fake_twilio).values()) >= 40, timeout=120)

    campaign_pause(campaign=campaign)
    paused_at = time.monotonic()
    time.sleep(2.0)
    at_2s = sum(provider_calls(fake_twilio).values())
    time.sleep(3.0)
    assert sum(provider_calls(fake_twilio).values()) == at_2s, "provider calls went on after the pause"
    assert at_2s < 300
    assert time.monotonic() - paused_at >= 5

    campaign_resume(campaign=campaign)
    run = CampaignRun.objects.get(campaign=campaign)

    def finished() -> bool:
        run.refresh_from_db()
        return run.state == "completed"

    wait_for(finished, timeout=300, interval=0.5)
    calls = provider_calls(fake_twilio)
    assert len(calls) == 300
    assert max(calls.values()) == 1  # resume sent only the rows not sent before
    assert CampaignRecipient.objects.filter(run=run, state="sent").count() == 300
