"""The journey engine on real PostgreSQL: triggers, steps, waits, exits, re-entry, versions."""

from __future__ import annotations

import pytest

from customers.events import customer_event_record
from engagement.journeys.definition import DefinitionInvalid, definition_index, definition_validate
from engagement.journeys.engine import enrollment_advance, split_branch
from engagement.journeys.scheduler import journeys_tick
from engagement.journeys.services import (
    EnrollmentRefused,
    JourneyStateConflict,
    customer_enrollments,
    enrollment_remove,
    journey_enroll,
    journey_publish,
    journey_stats,
    journey_update,
)
from engagement.models import AgentTask, Enrollment, Interaction, JourneyStepRun
from tests import factories

from .conftest import after_commit, inbound, later, live_journey

pytestmark = pytest.mark.django_db


def keyword_journey(workspace, sms, steps, **fields):
    return live_journey(
        workspace,
        {
            "trigger": {
                "type": "message.received",
                "channel_kind": "sms",
                "match": "keyword",
                "keywords": ["demo"],
            },
            "steps": steps,
        },
        **fields,
    )


def send(sms, body, key=None):
    step = {"type": "send", "channel_ids": [sms.pk], "content": {"sms": {"body": body}}}
    if key:
        step["key"] = key
    return step


# ---------------------------------------------------------------- definition


def test_definition_errors_name_the_step_and_field():
    with pytest.raises(DefinitionInvalid) as exc:
        definition_validate(
            {
                "trigger": {"type": "call.missed"},
                "steps": [
                    {"type": "delay", "seconds": 5},
                    {
                        "type": "wait_for",
                        "for": "reply",
                        "timeout_seconds": 60,
                        "timeout": [{"type": "create_task"}],
                    },
                ],
            }
        )
    assert str(exc.value).startswith("$.steps[1].timeout[0].title: is required")
    with pytest.raises(DefinitionInvalid, match=r"^\$.trigger.type: must be one of"):
        definition_validate({"trigger": {"type": "nope"}, "steps": [{"type": "exit"}]})
    with pytest.raises(DefinitionInvalid, match=r"^\$.steps\[0\].content.sms.body: unknown variable"):
        definition_validate(
            {
                "trigger": {"type": "manual"},
                "steps": [{"type": "send", "channel_ids": [1], "content": {"sms": {"body": "{{ secret }}"}}}],
            }
        )
    with pytest.raises(DefinitionInvalid, match="used by another step"):
        definition_validate(
            {
                "trigger": {"type": "manual"},
                "steps": [{"key": "a", "type": "exit"}, {"key": "a", "type": "exit"}],
            }
        )


def test_branches_join_the_step_after_them():
    clean = definition_validate(
        {
            "trigger": {"type": "message.received", "match": "keyword", "keywords": ["Démo!"]},
            "steps": [
                {
                    "type": "condition",
                    "if": {"kind": "tag", "tag": "vip"},
                    "yes": [{"type": "exit"}],
                    "no": [],
                },
                {"key": "last", "type": "update", "add_tags": ["x"]},
            ],
        }
    )
    assert clean["trigger"]["keywords"] == ["DEMO"]  # the opt-out handling's normalization
    index = definition_index(clean)
    assert index["s1"].next_key == "last"
    assert index["s2"].next_key == "last"  # the branch's exit step would join "last"
    assert index["last"].next_key == ""


def test_publish_checks_ids_belong_to_the_workspace(workspace):
    other = factories.channel_create(factories.workspace_create(), "sms")
    with pytest.raises(DefinitionInvalid, match="unknown channel id"):
        live_journey(workspace, {"trigger": {"type": "manual"}, "steps": [send(other, "Hi")]})


# ---------------------------------------------------------------- triggers and sends


def test_keyword_enrolls_and_sends_once_through_message_send(workspace, sms):
    journey = keyword_journey(
        workspace, sms, [send(sms, "Hi {{ first_name | default('there') }}!", key="hello")]
    )
    message = inbound(sms, "+14155550100", "  Demo. ")
    enrollment = Enrollment.objects.get(journey=journey)
    assert (enrollment.state, enrollment.exit_reason) == ("completed", "finished")
    out = Interaction.objects.get(direction="outbound")
    assert out.idempotency_key == f"journey:{enrollment.pk}:hello"
    assert out.body == "Hi there!"
    assert out.metadata["journey_id"] == journey.pk
    assert out.conversation_id == message.conversation_id
    run = JourneyStepRun.objects.get(enrollment=enrollment)
    assert (run.step_key, run.outcome, run.interaction_id) == ("hello", "sent", out.pk)
    # Advancing again (a retried task) does nothing more.
    enrollment_advance(enrollment_id=enrollment.pk)
    assert Interaction.objects.filter(direction="outbound").count() == 1
    inbound(sms, "+14155550100", "demo please")  # not the keyword alone
    assert Enrollment.objects.filter(journey=journey).count() == 1


def test_marketing_send_without_consent_is_skipped_with_the_guard_reason(workspace, sms):
    journey = keyword_journey(workspace, sms, [send(sms, "Offer", key="offer")], purpose="marketing")
    inbound(sms, "+14155550100", "DEMO")
    run = JourneyStepRun.objects.get(journey=journey)
    assert (run.outcome, run.reason) == ("skipped", "consent:no_marketing_consent")
    assert not Interaction.objects.filter(direction="outbound").exists()
    assert journey_stats(journey=journey)["steps"]["offer"]["skipped"] == {"consent:no_marketing_consent": 1}


# ---------------------------------------------------------------- waits


def missed_call_like(workspace, sms):
    return keyword_journey(
        workspace,
        sms,
        [
            send(sms, "Sorry we missed you", key="sorry"),
            {
                "key": "wait",
                "type": "wait_for",
                "for": "reply",
                "timeout_seconds": 3600,
                "matched": [{"key": "replied", "type": "update", "add_tags": ["replied"]}],
                "timeout": [{"key": "task", "type": "create_task", "title": "Call this customer back"}],
            },
        ],
    )


def test_wait_for_reply_times_out_into_a_callback_task(workspace, sms):
    journey = missed_call_like(workspace, sms)
    inbound(sms, "+14155550100", "demo")
    enrollment = Enrollment.objects.get(journey=journey)
    assert (enrollment.current_step, enrollment.waiting_for) == ("wait", "reply")
    [row] = customer_enrollments(customer=enrollment.customer)
    assert row["step_type"] == "wait_for"
    assert "waiting for a reply" in row["wait_detail"]
    assert after_commit(journeys_tick, now=later(minutes=59))["fired"] == 0
    assert after_commit(journeys_tick, now=later(minutes=61))["fired"] == 1
    enrollment.refresh_from_db()
    assert enrollment.state == "completed"
    task = AgentTask.objects.get()
    assert (task.title, task.customer_id, task.enrollment_id) == (
        "Call this customer back",
        enrollment.customer_id,
        enrollment.pk,
    )
    assert task.conversation_id is not None
    assert JourneyStepRun.objects.get(enrollment=enrollment, step_key="wait").outcome == "timed_out"


def test_a_reply_takes_the_other_branch_at_once(workspace, sms):
    journey = missed_call_like(workspace, sms)
    inbound(sms, "+14155550100", "demo")
    inbound(sms, "+14155550100", "yes please call")
    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.state == "completed"
    enrollment.customer.refresh_from_db()
    assert "replied" in enrollment.customer.tags
    assert JourneyStepRun.objects.get(enrollment=enrollment, step_key="wait").outcome == "matched"
    assert after_commit(journeys_tick, now=later(hours=2))["fired"] == 0
    assert not AgentTask.objects.exists()


def test_wait_for_a_custom_event(workspace, sms):
    journey = keyword_journey(
        workspace,
        sms,
        [
            {
                "type": "wait_for",
                "for": "event",
                "event_name": "order_placed",
                "timeout_seconds": 600,
                "matched": [send(sms, "Thanks for the order", key="thanks")],
            }
        ],
    )
    message = inbound(sms, "+14155550100", "demo")
    after_commit(customer_event_record, customer=message.customer, name="something_else")
    assert Enrollment.objects.get(journey=journey).waiting_for == "event"
    after_commit(customer_event_record, customer=message.customer, name="order_placed", event_id="o-1")
    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.state == "completed"
    assert Interaction.objects.get(direction="outbound").body == "Thanks for the order"


# ---------------------------------------------------------------- goals and exits


def test_goal_cancels_pending_steps_at_once(workspace, sms):
    journey = keyword_journey(
        workspace,
        sms,
        [{"type": "delay", "seconds": 86400}, send(sms, "Still thinking?", key="nudge")],
        goal={"type": "event", "name": "purchased"},
    )
    message = inbound(sms, "+14155550100", "demo")
    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.waiting_for == "delay"
    assert enrollment.due_at is not None
    after_commit(customer_event_record, customer=message.customer, name="purchased")
    enrollment.refresh_from_db()
    assert (enrollment.state, enrollment.exit_reason, enrollment.due_at) == ("completed", "goal", None)
    assert after_commit(journeys_tick, now=later(days=2))["fired"] == 0
    assert not Interaction.objects.filter(direction="outbound").exists()
    assert journey_stats(journey=journey)["exited_by_goal"] == 1


def test_exit_condition_on_reply_cancels_the_series(workspace, sms):
    journey = keyword_journey(
        workspace,
        sms,
        [send(sms, "One", key="one"), {"type": "delay", "seconds": 60}, send(sms, "Two", key="two")],
        exit_conditions=[{"type": "reply"}],
    )
    inbound(sms, "+14155550100", "demo")
    inbound(sms, "+14155550100", "stop sending me these?")
    enrollment = Enrollment.objects.get(journey=journey)
    assert (enrollment.state, enrollment.exit_reason) == ("exited", "exit_condition")
    after_commit(journeys_tick, now=later(minutes=5))
    assert list(Interaction.objects.filter(direction="outbound").values_list("body", flat=True)) == ["One"]


def test_agent_removes_a_customer(workspace, sms):
    journey = keyword_journey(workspace, sms, [{"type": "delay", "seconds": 60}, send(sms, "Later")])
    inbound(sms, "+14155550100", "demo")
    enrollment = Enrollment.objects.get(journey=journey)
    enrollment_remove(enrollment=enrollment)
    assert (enrollment.state, enrollment.due_at) == ("removed", None)
    with pytest.raises(JourneyStateConflict):  # already ended
        enrollment_remove(enrollment=enrollment)
    after_commit(journeys_tick, now=later(minutes=5))
    assert not Interaction.objects.filter(direction="outbound").exists()


# ---------------------------------------------------------------- re-entry


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("once_ever", 1), ("once_at_a_time", 2), ("every_time", 3)],
)
def test_reentry_policies(workspace, sms, policy, expected):
    journey = keyword_journey(workspace, sms, [{"type": "delay", "seconds": 60}], reentry=policy)
    inbound(sms, "+14155550100", "demo")
    inbound(sms, "+14155550100", "demo")  # while the first is active
    after_commit(journeys_tick, now=later(minutes=2))  # the first (and a second every_time one) finish
    inbound(sms, "+14155550100", "demo")  # after it finished
    assert Enrollment.objects.filter(journey=journey).count() == expected


def test_manual_enroll_is_refused_with_the_reason(workspace, sms):
    journey = live_journey(
        workspace, {"trigger": {"type": "manual"}, "steps": [{"type": "delay", "seconds": 60}]}
    )
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    journey_enroll(journey=journey, customer=customer)
    with pytest.raises(EnrollmentRefused) as exc:
        journey_enroll(journey=journey, customer=customer)
    assert exc.value.status == 409
    assert "once at a time" in str(exc.value)


# ---------------------------------------------------------------- versions


def test_enrollments_in_flight_finish_on_their_version(workspace, sms):
    journey = keyword_journey(
        workspace, sms, [{"key": "d", "type": "delay", "seconds": 60}, send(sms, "Version one", key="msg")]
    )
    inbound(sms, "+14155550100", "demo")
    definition = dict(journey.definition)
    definition["steps"] = [definition["steps"][0], send(sms, "Version two", key="msg")]
    journey_update(journey=journey, definition=definition)
    v2 = journey_publish(journey=journey)
    assert v2.number == 2
    inbound(sms, "+14155550111", "demo")
    after_commit(journeys_tick, now=later(minutes=2))
    bodies = dict(Interaction.objects.filter(direction="outbound").values_list("customer_address", "body"))
    assert bodies == {"+14155550100": "Version one", "+14155550111": "Version two"}
    assert sorted(Enrollment.objects.values_list("version__number", flat=True)) == [1, 2]


# ---------------------------------------------------------------- split, condition, delays


def test_random_split_is_deterministic_and_follows_weights():
    picks = [split_branch(journey_id=7, step_key="s", customer_id=c, weights=[80, 20]) for c in range(2000)]
    assert picks == [
        split_branch(journey_id=7, step_key="s", customer_id=c, weights=[80, 20]) for c in range(2000)
    ]
    assert 0.75 < picks.count(0) / 2000 < 0.85


def test_delay_until_local_time_in_the_customers_zone(workspace, sms):
    journey = keyword_journey(workspace, sms, [{"type": "delay", "until_local_time": "09:00"}])
    message = inbound(sms, "+14155550100", "demo")
    customer = message.customer
    customer.timezone = "Asia/Tokyo"
    customer.save()
    Enrollment.objects.filter(journey=journey).delete()
    journey_enroll(journey=journey, customer=customer)
    enrollment_advance(enrollment_id=Enrollment.objects.get(journey=journey).pk)
    enrollment = Enrollment.objects.get(journey=journey)
    from zoneinfo import ZoneInfo

    assert enrollment.due_at is not None
    local = enrollment.due_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert (local.hour, local.minute) == (9, 0)


def test_a_test_run_shows_the_path_without_changing_anything(workspace, sms):
    journey = missed_call_like(workspace, sms)
    customer = factories.customer_create(workspace, ("phone", "+14155550100"), tags=["vip"])
    from engagement.journeys.engine import journey_simulate

    path = journey_simulate(journey=journey, customer=customer)
    assert [(p["key"], p["decision"]) for p in path] == [
        ("sorry", "send on sms to +14155550100"),
        ("wait", "wait for reply: assumed 3600 s pass without it"),
        ("task", "create the task 'Call this customer back'"),
    ]
    matched = journey_simulate(journey=journey, customer=customer, waits="matched")
    assert [p["key"] for p in matched] == ["sorry", "wait", "replied"]
    assert not Enrollment.objects.exists()
    assert not Interaction.objects.filter(direction="outbound").exists()
