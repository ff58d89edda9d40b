"""The two demo journeys, run through the engine."""

from __future__ import annotations

import pytest

from engagement.journeys.scheduler import journeys_tick
from engagement.models import AgentTask, Enrollment, Interaction
from engagement.services.demo import DEMO_JOURNEY_BROCHURE, demo_journeys_seed
from engagement.services.email_feedback import interaction_record_feedback
from tests import factories

from .conftest import after_commit, inbound, later

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(workspace):
    sms = factories.channel_create(workspace, "sms")
    email = factories.channel_create(workspace, "email")
    factories.channel_create(workspace, "voice")
    demo_journeys_seed(workspace=workspace, sms_channel=sms)
    return sms, email


def test_brochure_then_a_nudge_when_the_link_was_not_clicked(workspace, demo):
    sms, email = demo
    customer = factories.customer_create(workspace, ("phone", "+14155550100"), ("email", "ann@example.com"))
    inbound(sms, "+14155550100", "Demo!")
    brochure = Interaction.objects.get(direction="outbound")
    assert (brochure.channel_id, brochure.metadata["email"]["subject"]) == (email.pk, "Your Demo Co brochure")
    assert brochure.customer_id == customer.pk
    after_commit(journeys_tick, now=later(days=2, minutes=1))
    nudge = Interaction.objects.filter(direction="outbound").order_by("-id")[0]
    assert nudge.channel_id == sms.pk
    assert nudge.body.startswith("Did you get a chance")


def test_no_nudge_after_a_click(workspace, demo):
    sms, email = demo
    factories.customer_create(workspace, ("phone", "+14155550100"), ("email", "ann@example.com"))
    inbound(sms, "+14155550100", "DEMO")
    brochure = Interaction.objects.get(direction="outbound")
    after_commit(
        interaction_record_feedback,
        channel=email,
        occurred_at=brochure.created_at,
        interaction_id=brochure.pk,
        engagement="click",
        engagement_details={"url": "https://demo.example/brochure.pdf"},
    )
    after_commit(journeys_tick, now=later(days=2, minutes=1))
    assert Interaction.objects.filter(direction="outbound").count() == 1
    enrollment = Enrollment.objects.get(journey__name=DEMO_JOURNEY_BROCHURE)
    assert enrollment.state == "completed"
    assert enrollment.step_runs.get(step_key="clicked").reason == "yes"
    assert not AgentTask.objects.exists()
