"""The scheduler fires a claimed batch set-based: timers that need only the definition and the clock are
written with a few statements whatever the batch's size; sends and other effects go through the engine."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import Customer
from engagement.journeys.engine import split_branch
from engagement.journeys.scheduler import journeys_tick
from engagement.journeys.services import journey_pause, journey_publish, journey_resume, journey_update
from engagement.models import Enrollment, Interaction, Journey, JourneyStepRun, OutboxEvent

from .conftest import after_commit, live_journey

pytestmark = pytest.mark.django_db


def _enroll(journey: Journey, n: int, *, step: str, waiting_for: str, due: dt.datetime) -> list[Enrollment]:
    now = timezone.now()
    customers = Customer.objects.bulk_create([Customer(workspace=journey.workspace) for _ in range(n)])
    return Enrollment.objects.bulk_create(
        [
            Enrollment(
                workspace=journey.workspace,
                journey=journey,
                version=journey.live_version,
                customer=c,
                exclusive=False,
                current_step=step,
                waiting_for=waiting_for,
                due_at=due,
                entered_at=now,
                updated_at=now,
            )
            for c in customers
        ]
    )


@pytest.mark.parametrize("n", [5, 120])
def test_delays_fire_with_the_same_statements_for_any_batch(workspace, n):
    journey = live_journey(
        workspace,
        {
            "trigger": {"type": "manual"},
            "steps": [
                {"key": "d1", "type": "delay", "seconds": 60},
                {"key": "d2", "type": "delay", "seconds": 120},
            ],
        },
        reentry="every_time",
    )
    start = timezone.now()
    _enroll(journey, n, step="d1", waiting_for="delay", due=start)
    at = start + dt.timedelta(seconds=1)
    with CaptureQueriesContext(connection) as queries:
        result = after_commit(journeys_tick, now=at)
    assert (result["fired"], result["advanced"]) == (n, 0)
    # claim, journeys, versions, step runs, enrollments, savepoint bookkeeping: not one per row
    assert len(queries.captured_queries) <= 10, [q["sql"][:80] for q in queries.captured_queries]
    rows = Enrollment.objects.filter(journey=journey)
    assert set(rows.values_list("current_step", "waiting_for", "due_at", "lease_until")) == {
        ("d2", "delay", at + dt.timedelta(seconds=120), None)
    }
    assert JourneyStepRun.objects.filter(journey=journey, step_key="d1", outcome="done").count() == n
    # Not due yet: nothing fires; then the last delay ends the journey.
    assert after_commit(journeys_tick, now=at + dt.timedelta(seconds=119))["fired"] == 0
    end = at + dt.timedelta(seconds=121)
    assert after_commit(journeys_tick, now=end)["fired"] == n
    assert set(rows.values_list("state", "exit_reason", "current_step", "due_at", "finished_at")) == {
        ("completed", "finished", "", None, end)
    }
    assert OutboxEvent.objects.filter(name="journey.enrollment_changed").count() == n


def test_wait_timeout_split_and_exit_in_one_batch(workspace):
    journey = live_journey(
        workspace,
        {
            "trigger": {"type": "manual"},
            "steps": [
                {
                    "key": "wait",
                    "type": "wait_for",
                    "for": "event",
                    "event_name": "paid",
                    "timeout_seconds": 600,
                    "timeout": [
                        {
                            "key": "split",
                            "type": "random_split",
                            "branches": [
                                {"weight": 1, "steps": [{"key": "bye", "type": "exit"}]},
                                {"weight": 1, "steps": [{"key": "again", "type": "wait_for", "for": "reply",
                                                         "timeout_seconds": 60}]},
                            ],
                        }
                    ],
                },
                {"key": "never", "type": "delay", "seconds": 5},
            ],
        },
        reentry="every_time",
    )  # fmt: skip
    start = timezone.now()
    enrollments = _enroll(journey, 40, step="wait", waiting_for="event", due=start)
    after_commit(journeys_tick, now=start)
    for enrollment in enrollments:
        enrollment.refresh_from_db()
        chosen = split_branch(
            journey_id=journey.pk, step_key="split", customer_id=enrollment.customer_id, weights=[1, 1]
        )
        runs = dict(JourneyStepRun.objects.filter(enrollment=enrollment).values_list("step_key", "outcome"))
        assert runs["wait"] == "timed_out"
        assert (
            JourneyStepRun.objects.get(enrollment=enrollment, step_key="split").reason == f"branch:{chosen}"
        )
        if chosen == 0:
            assert (enrollment.state, enrollment.exit_reason, enrollment.current_step) == (
                "exited",
                "exit_step",
                "bye",
            )
            assert runs["bye"] == "done"
        else:
            assert (enrollment.state, enrollment.current_step, enrollment.waiting_for) == (
                "active",
                "again",
                "reply",
            )
            assert enrollment.due_at == start + dt.timedelta(seconds=60)
            assert "waiting for a reply" in enrollment.wait_detail
    assert {e.state for e in enrollments} == {"exited", "active"}


def test_paused_journey_waits_and_sends_go_through_the_engine_on_their_version(workspace, sms):
    definition: dict[str, Any] = {
        "trigger": {"type": "manual"},
        "steps": [
            {"key": "wait", "type": "delay", "seconds": 60},
            {"key": "msg", "type": "send", "channel_ids": [sms.pk], "content": {"sms": {"body": "v1"}}},
        ],
    }
    journey = live_journey(workspace, definition, reentry="every_time")
    start = timezone.now()
    enrollments = _enroll(journey, 3, step="wait", waiting_for="delay", due=start)
    for i, enrollment in enumerate(enrollments):
        enrollment.customer.identities.create(
            workspace=workspace,
            kind="phone",
            value=f"+1202555{i:04d}",
            first_seen_at=start,
            last_seen_at=start,
        )
    # A new version changes the message: enrollments in flight keep v1.
    definition["steps"][1]["content"] = {"sms": {"body": "v2"}}
    journey_update(journey=journey, definition=definition)
    journey_publish(journey=journey)
    journey_pause(journey=journey)
    result = after_commit(journeys_tick, now=start)
    assert (result["fired"], result["advanced"]) == (3, 3)
    assert set(Enrollment.objects.filter(journey=journey).values_list("current_step", "waiting_for")) == {
        ("wait", "delay")
    }
    assert not JourneyStepRun.objects.filter(journey=journey).exists()
    journey_resume(journey=journey)
    result = after_commit(journeys_tick, now=start + dt.timedelta(minutes=2))
    assert (result["fired"], result["advanced"]) == (3, 3)
    assert set(Interaction.objects.filter(direction="outbound").values_list("body", flat=True)) == {"v1"}
    assert JourneyStepRun.objects.filter(journey=journey, step_key="msg", outcome="sent").count() == 3
    assert set(Enrollment.objects.filter(journey=journey).values_list("state", "lease_until")) == {
        ("completed", None)
    }


def test_inline_advance_runs_the_first_ones_and_leaves_the_rest(workspace, settings):
    from engagement.journeys.engine import enrollments_advance_inline

    settings.JOURNEYS_INLINE_ADVANCE = 2
    journey = live_journey(
        workspace,
        {"trigger": {"type": "manual"}, "steps": [{"key": "d", "type": "delay", "seconds": 60}]},
        reentry="every_time",
    )
    enrollments = _enroll(journey, 3, step="d", waiting_for="", due=timezone.now())
    ids = [e.pk for e in enrollments]
    assert after_commit(enrollments_advance_inline, enrollment_ids=ids) == ids[2:]
    waiting = dict(Enrollment.objects.filter(journey=journey).values_list("pk", "waiting_for"))
    assert waiting == {ids[0]: "delay", ids[1]: "delay", ids[2]: ""}


def test_a_tick_follows_the_next_due_time_within_its_window(workspace):
    """Between two beats the tick sleeps until the next timer's due time and fires it then, not at the
    next beat; a timer due after the follow window is left for a later tick; 0 turns the follow off."""
    journey = live_journey(
        workspace,
        {"trigger": {"type": "manual"}, "steps": [{"key": "d", "type": "delay", "seconds": 60}]},
        reentry="every_time",
    )
    start = timezone.now()
    first = _enroll(journey, 1, step="d", waiting_for="delay", due=start + dt.timedelta(seconds=0.3))
    second = _enroll(journey, 1, step="d", waiting_for="delay", due=start + dt.timedelta(seconds=0.6))
    beyond = _enroll(journey, 1, step="d", waiting_for="delay", due=start + dt.timedelta(seconds=30))
    assert after_commit(journeys_tick, follow_seconds=0)["fired"] == 0

    result = after_commit(journeys_tick, follow_seconds=1.0, budget_seconds=2)

    assert (result["fired"], result["followed"]) == (2, 2)
    late = []
    for enrollment, due_in in ((first[0], 0.3), (second[0], 0.6)):
        enrollment.refresh_from_db()
        assert (enrollment.state, enrollment.current_step) == ("completed", "")
        assert enrollment.finished_at is not None
        late.append((enrollment.finished_at - start).total_seconds() - due_in)
    assert all(0 <= x < 0.25 for x in late), late  # fired when due, not at the next beat
    assert Enrollment.objects.get(pk=beyond[0].pk).state == "active"
