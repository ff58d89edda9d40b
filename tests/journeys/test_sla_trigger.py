"""A journey can start on an SLA breach (issue 13: "a breach event that journeys can trigger on"): the
``sla.breached`` trigger, optionally for one metric, enrolls the conversation's customer, and a task
step names that conversation."""

from __future__ import annotations

import pytest

from engagement import events
from engagement.errors import ValidationFailed
from engagement.journeys.definition import definition_validate
from engagement.models import AgentTask, Enrollment

from .conftest import after_commit, inbound, live_journey

pytestmark = pytest.mark.django_db


def _breach(message: object, metric: str, breach_id: int) -> None:
    conversation_id = message.conversation_id  # type: ignore[attr-defined]
    customer_id = message.customer_id  # type: ignore[attr-defined]
    event = events.DomainEvent(
        name=events.SLA_BREACHED,
        workspace_id=message.workspace_id,  # type: ignore[attr-defined]
        conversation_id=conversation_id,
        customer_id=customer_id,
        data={"breach_id": breach_id, "metric": metric},
    )
    after_commit(lambda: events.publish_on_commit(event))


def test_sla_breach_trigger_enrolls_the_customer_for_its_metric_only(workspace, sms):
    journey = live_journey(
        workspace,
        {
            "trigger": {"type": "sla.breached", "metric": "first_response"},
            "steps": [{"key": "task", "type": "create_task", "title": "Answer this customer now"}],
        },
    )
    message = inbound(sms, "+14155550100", "Where is my order?")
    _breach(message, "resolution", 1)
    assert not Enrollment.objects.filter(journey=journey).exists()
    _breach(message, "first_response", 2)
    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.customer_id == message.customer_id
    task = AgentTask.objects.get(customer_id=message.customer_id)
    assert task.title == "Answer this customer now"
    assert task.conversation_id == message.conversation_id


def test_sla_breach_trigger_metric_is_validated():
    definition_validate({"trigger": {"type": "sla.breached"}, "steps": [{"type": "exit"}]})
    with pytest.raises(ValidationFailed, match=r"\$\.trigger\.metric"):
        definition_validate(
            {"trigger": {"type": "sla.breached", "metric": "lunch"}, "steps": [{"type": "exit"}]}
        )
