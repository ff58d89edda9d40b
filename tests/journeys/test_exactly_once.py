"""Exactly once per (enrollment, step) with two schedulers running at once on separate connections."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from customers.models import Customer, Identity
from engagement.journeys.engine import enrollment_advance
from engagement.journeys.scheduler import enrollments_claim, journeys_tick
from engagement.models import Enrollment, Interaction, JourneyStepRun
from tests import factories

from .conftest import later, live_journey

pytestmark = pytest.mark.django_db(transaction=True)

N = 60


def _setup():
    from django.utils import timezone

    workspace = factories.workspace_create()
    sms = factories.channel_create(workspace, "sms", config={"rate_per_second": 100000})
    journey = live_journey(
        workspace,
        {
            "trigger": {"type": "manual"},
            "steps": [
                {"key": "wait", "type": "delay", "seconds": 60},
                {
                    "key": "msg",
                    "type": "send",
                    "channel_ids": [sms.pk],
                    "content": {"sms": {"body": "Hello"}},
                },
            ],
        },
        reentry="every_time",
    )
    now = timezone.now()
    customers = Customer.objects.bulk_create([Customer(workspace=workspace) for _ in range(N)])
    Identity.objects.bulk_create(
        [
            Identity(
                workspace=workspace,
                customer=c,
                kind="phone",
                value=f"+1202555{i:04d}",
                first_seen_at=now,
                last_seen_at=now,
            )
            for i, c in enumerate(customers)
        ]
    )
    Enrollment.objects.bulk_create(
        [
            Enrollment(
                workspace=workspace,
                journey=journey,
                version=journey.live_version,
                customer=c,
                exclusive=False,
                current_step="wait",
                waiting_for="delay",
                due_at=now,
                entered_at=now,
                updated_at=now,
            )
            for c in customers
        ]
    )
    return journey


def test_two_schedulers_send_each_step_once():
    journey = _setup()
    at = later(minutes=1)
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def scheduler() -> None:
        try:
            barrier.wait()
            while journeys_tick(now=at, budget_seconds=30)["fired"]:
                pass
            # A stale worker whose lease expired tries every row again: nothing is due any more.
            for enrollment_id in Enrollment.objects.filter(journey=journey).values_list("pk", flat=True):
                enrollment_advance(enrollment_id=enrollment_id, now=at)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert Interaction.objects.filter(direction="outbound", metadata__journey_id=journey.pk).count() == N
    assert JourneyStepRun.objects.filter(journey=journey, step_key="msg", outcome="sent").count() == N
    assert JourneyStepRun.objects.filter(journey=journey, step_key="wait").count() == N
    assert set(Enrollment.objects.filter(journey=journey).values_list("state", flat=True)) == {"completed"}


def test_a_claim_is_leased_and_skipped_by_a_second_scheduler():
    journey = _setup()
    at = later(minutes=1)
    first = enrollments_claim(now=at, limit=N, lease_seconds=60)
    assert len(first) == N
    assert enrollments_claim(now=at, limit=N, lease_seconds=60) == []
    # After the lease the rows are claimable again (a worker died holding them).
    assert len(enrollments_claim(now=later(minutes=3), limit=N, lease_seconds=60)) == N
    assert Enrollment.objects.filter(journey=journey).count() == N
