"""The editor's services (engagement/journeys/drafts.py) and the test run and step stats
(engagement/journeys/insight.py) on real PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from customers.consent import consent_record
from engagement.errors import NotFound, ValidationFailed
from engagement.journeys.definition import DefinitionInvalid
from engagement.journeys.drafts import (
    journey_draft_check,
    journey_draft_rows,
    journey_step_add,
    journey_step_edit,
    journey_step_move,
    journey_step_remove,
    journey_trigger_set,
)
from engagement.journeys.engine import split_branch
from engagement.journeys.insight import journey_step_stats, journey_test_run
from engagement.journeys.services import (
    enrollment_finish,
    journey_create,
    journey_enroll,
    journey_publish,
)
from engagement.models import Interaction, Journey, JourneyStepRun, Workspace
from tests import factories

pytestmark = pytest.mark.django_db


def _journey(workspace: Workspace, steps: list[dict[str, Any]], **fields: Any) -> Journey:
    return journey_create(
        workspace=workspace,
        name=fields.pop("name", "J"),
        definition={"trigger": {"type": "manual"}, "steps": steps},
        **fields,
    )


def test_add_edit_move_remove_keep_keys_and_nesting(workspace: Workspace) -> None:
    sms = factories.channel_create(workspace, "sms")
    journey = _journey(workspace, [])
    wait = journey_step_add(journey=journey, parent="", step_type="wait_for")
    send = journey_step_add(journey=journey, parent=f"{wait}.timeout", step_type="send")
    check = journey_draft_check(journey=journey)
    assert not check.ok
    assert check.step_key == send
    assert "channel_ids" in check.message
    journey_step_edit(
        journey=journey,
        key=send,
        posted={"channel_ids": [str(sms.pk)], "content.sms.body": "Hello {{ first_name }}", "label": "Hi"},
    )
    assert journey_draft_check(journey=journey).ok
    sent = journey.definition["steps"][0]["timeout"][0]
    assert sent["channel_ids"] == [sms.pk]
    assert sent["content"] == {"sms": {"body": "Hello {{ first_name }}"}}
    journey_step_edit(journey=journey, key=send, posted={"content.sms.body": ""})
    assert journey.definition["steps"][0]["timeout"][0]["content"] == {}
    exit_key = journey_step_add(journey=journey, parent="", step_type="exit")
    journey_step_move(journey=journey, key=exit_key, direction="up")
    assert [s["key"] for s in journey.definition["steps"]] == [exit_key, wait]
    rows = journey_draft_rows(definition=journey.definition)
    assert [(r.kind, r.depth, r.key or r.label) for r in rows] == [
        ("step", 0, exit_key),
        ("step", 0, wait),
        ("branch", 1, "It happened"),
        ("add", 2, ""),
        ("branch", 1, "Timed out"),
        ("step", 2, send),
        ("add", 2, ""),
        ("add", 0, ""),
    ]
    journey_step_remove(journey=journey, key=wait)
    assert [s["key"] for s in journey.definition["steps"]] == [exit_key]
    with pytest.raises(NotFound):
        journey_step_remove(journey=journey, key=send)
    with pytest.raises(ValidationFailed):
        journey_step_add(journey=journey, parent="", step_type="teleport")
    delay = journey_step_add(journey=journey, parent="", step_type="delay")
    with pytest.raises(ValidationFailed, match="not a whole number"):
        journey_step_edit(journey=journey, key=delay, posted={"seconds": "soon"})


def test_split_weights_and_trigger(workspace: Workspace) -> None:
    journey = _journey(workspace, [])
    split = journey_step_add(journey=journey, parent="", step_type="random_split")
    journey_step_edit(journey=journey, key=split, posted={"weights": "10, 20, 70"})
    assert [b["weight"] for b in journey.definition["steps"][0]["branches"]] == [10, 20, 70]
    journey_trigger_set(journey=journey, trigger={"type": "event", "name": "signed_up"})
    assert journey.definition["trigger"] == {"type": "event", "name": "signed_up"}
    with pytest.raises(ValidationFailed):
        journey_trigger_set(journey=journey, trigger={"type": "telepathy"})


def test_test_run_follows_the_engines_decisions_and_writes_nothing(workspace: Workspace) -> None:
    sms = factories.channel_create(workspace, "sms")
    customer = factories.customer_create(
        workspace, ("phone", "+14155550130"), display_name="Di Vip", tags=["vip"]
    )
    consent_record(customer=customer, channel="sms", purpose="marketing", status="opted_in", source="api")
    journey = _journey(
        workspace,
        [
            {
                "key": "hello",
                "type": "send",
                "channel_ids": [sms.pk],
                "content": {"sms": {"body": "Hi {{ first_name }}"}},
            },
            {"key": "night", "type": "delay", "until_local_time": "21:00"},
            {
                "key": "vip",
                "type": "condition",
                "if": {"kind": "tag", "tag": "vip"},
                "yes": [
                    {
                        "key": "split",
                        "type": "random_split",
                        "branches": [
                            {"weight": 1, "steps": [{"key": "a", "type": "update", "add_tags": ["a"]}]},
                            {
                                "key": "b",
                                "weight": 1,
                                "steps": [{"key": "b", "type": "update", "add_tags": ["b"]}],
                            },
                        ],
                    }
                ],
                "no": [{"key": "bye", "type": "exit"}],
            },
        ],
        purpose="marketing",
    )
    now = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
    run = journey_test_run(journey=journey, customer=customer, now=now)
    chosen = "ab"[
        split_branch(journey_id=journey.pk, step_key="split", customer_id=customer.pk, weights=[1, 1])
    ]
    assert [s.key for s in run.steps] == ["hello", "night", "vip", "split", chosen]
    # 05:00 in Los Angeles (the number's zone): a marketing SMS waits for quiet hours to end
    assert run.steps[0].outcome == "hold"
    assert "quiet hours" in run.steps[0].detail
    assert "would send by sms" in run.steps[0].detail
    assert run.steps[1].at > now
    assert run.steps[0].preview == "Hi Di\nReply STOP to opt out"
    assert run.steps[1].outcome == "wait"
    assert run.steps[2].at > now  # the delay moved the simulated clock
    assert [s.depth for s in run.steps] == [0, 0, 0, 1, 2]
    assert run.end.startswith("completed")
    assert not Interaction.objects.exists()
    customer.refresh_from_db()
    assert customer.tags == ["vip"]
    # Without marketing consent the send is skipped with the guard's reason, and a non-VIP exits.
    other = factories.customer_create(workspace, ("phone", "+14155550131"))
    run = journey_test_run(journey=journey, customer=other, now=now)
    assert run.steps[0].outcome == "skip"
    assert "consent" in run.steps[0].detail
    assert [s.key for s in run.steps][-1] == "bye"
    assert run.end == "exited at an exit step"
    with pytest.raises(ValidationFailed):
        journey_test_run(journey=journey, customer=other, waits="maybe")
    journey_step_add(journey=journey, parent="", step_type="send")
    with pytest.raises(DefinitionInvalid):
        journey_test_run(journey=journey, customer=other)


def test_step_stats_count_goal_exits_at_their_step(workspace: Workspace) -> None:
    journey = _journey(
        workspace,
        [{"key": "wait", "type": "wait_for", "for": "reply", "timeout_seconds": 60}],
        goal={"type": "reply"},
    )
    journey_publish(journey=journey)
    journey.refresh_from_db()
    one = journey_enroll(
        journey=journey, customer=factories.customer_create(workspace, ("phone", "+14155550140"))
    )
    journey_enroll(journey=journey, customer=factories.customer_create(workspace, ("phone", "+14155550141")))
    enrollment_finish(enrollment=one, state="completed", reason="goal")
    stats = journey_step_stats(journey=journey)
    assert stats["steps"]["wait"]["waiting"] == 1
    assert stats["steps"]["wait"]["exited_goal"] == 1
    assert stats["exited_by_goal"] == 1
    assert journey_step_stats(journey=journey, version_number=1)["version"] == 1
    assert not JourneyStepRun.objects.filter(step_key="wait").exists()
