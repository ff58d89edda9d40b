"""A send step falls back to the next channel of its list when the provider refuses the message
(a hard failure), never on a soft (retryable) one; through the real SDKs to the fake providers."""

from __future__ import annotations

import pytest

from channels_outbound.services import outbound_interaction_send
from engagement.journeys.engine import journey_send_fallback
from engagement.journeys.services import journey_enroll
from engagement.models import Interaction, JourneyStepRun
from tests import factories
from tests.fakes.sendgrid_server import sendgrid_channel
from tests.fakes.twilio_server import INVALID_NUMBER

from .conftest import after_commit, live_journey

pytestmark = pytest.mark.django_db


def _journey(workspace, channels):
    content = {
        "sms": {"body": "Your code is ready"},
        "email": {"subject": "Your code", "text": "Your code is ready"},
    }
    return live_journey(
        workspace,
        {
            "trigger": {"type": "manual"},
            "steps": [
                {
                    "key": "notify",
                    "type": "send",
                    "channel_ids": [c.pk for c in channels],
                    "content": {c.kind: content[c.kind] for c in channels},
                }
            ],
        },
        purpose="transactional",
    )


def _customer(workspace, phone):
    return factories.customer_create(workspace, ("phone", phone), ("email", "pat@example.com"), name="Pat")


def test_a_hard_failure_falls_back_to_the_next_channel(workspace, sms_channel, fake_twilio, fake_sendgrid):
    email_channel = sendgrid_channel(workspace, fake_sendgrid)
    journey = _journey(workspace, [sms_channel, email_channel])
    customer = _customer(workspace, INVALID_NUMBER)
    after_commit(journey_enroll, journey=journey, customer=customer)
    sms, email = (
        Interaction.objects.get(direction="outbound", channel=channel)
        for channel in (sms_channel, email_channel)
    )
    assert (sms.status, sms.error_code) == ("failed", "21211")
    assert email.status == "sent"
    key = f"journey:{sms.metadata['enrollment_id']}:notify"
    assert (sms.idempotency_key, email.idempotency_key) == (key, f"{key}:1")
    assert (email.metadata["step_key"], email.metadata["attempt"], email.metadata["channel_index"]) == (
        "notify",
        1,
        1,
    )
    assert len(fake_sendgrid.mails()) == 1
    run = JourneyStepRun.objects.get(journey=journey, step_key="notify")
    assert (run.outcome, run.reason, run.interaction_id) == ("sent", "fell_back:21211", email.pk)
    # The failure's event delivered again: the step run moved on, nothing more is sent.
    assert after_commit(journey_send_fallback, interaction_id=sms.pk) is None
    assert Interaction.objects.filter(direction="outbound").count() == 2
    assert len(fake_sendgrid.mails()) == 1


def test_a_soft_failure_is_retried_on_the_same_channel(workspace, sms_channel, fake_twilio, fake_sendgrid):
    email_channel = sendgrid_channel(workspace, fake_sendgrid)
    journey = _journey(workspace, [sms_channel, email_channel])
    customer = _customer(workspace, "+14155550142")
    fake_twilio.fail_next.append(503)
    after_commit(journey_enroll, journey=journey, customer=customer)
    [sms] = Interaction.objects.filter(direction="outbound")
    assert (sms.channel_id, sms.status, sms.send_attempts) == (sms_channel.pk, "queued", 1)
    assert sms.next_attempt_at is not None
    # The retry (the outbound task's backoff) goes through on the same channel.
    after_commit(outbound_interaction_send, interaction_id=sms.pk)
    sms.refresh_from_db()
    assert (sms.status, sms.send_attempts) == ("sent", 2)
    assert Interaction.objects.filter(direction="outbound").count() == 1
    assert fake_sendgrid.mails() == []
    run = JourneyStepRun.objects.get(journey=journey, step_key="notify")
    assert (run.outcome, run.reason, run.interaction_id) == ("sent", "", sms.pk)


def test_the_last_channel_failing_hard_fails_the_step(workspace, sms_channel, fake_twilio):
    journey = _journey(workspace, [sms_channel])
    customer = _customer(workspace, INVALID_NUMBER)
    after_commit(journey_enroll, journey=journey, customer=customer)
    [sms] = Interaction.objects.filter(direction="outbound")
    assert sms.status == "failed"
    run = JourneyStepRun.objects.get(journey=journey, step_key="notify")
    assert (run.outcome, run.reason, run.interaction_id) == ("failed", "21211", sms.pk)
