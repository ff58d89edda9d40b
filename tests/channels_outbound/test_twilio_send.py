"""Outbound sends through the real twilio SDK to the fake Twilio server: success, permanent and retryable
errors, exactly-once claiming, and automations that never send twice."""

from __future__ import annotations

import pytest

from channels_outbound.services import Outcome, outbound_interaction_send, outbound_stuck_requeue
from customers.services import Identifier, customer_resolve
from engagement.models import AutomationRule, Interaction
from engagement.services.automation import automations_run
from engagement.services.messaging import SendRejected, message_send
from tests.fakes.twilio_server import INVALID_NUMBER, OPTED_OUT_NUMBER


def _queue(channel, to="+14155550123", body="hello"):
    customer, _ = customer_resolve(workspace=channel.workspace, identifier=Identifier("phone", to))
    interaction, _ = message_send(workspace=channel.workspace, channel=channel, customer=customer, body=body)
    return interaction


@pytest.mark.django_db
def test_send_stores_sid_and_marks_sent(sms_channel, fake_twilio):
    interaction = _queue(sms_channel)
    attempt = outbound_interaction_send(interaction_id=interaction.pk)
    interaction.refresh_from_db()
    assert attempt.outcome == Outcome.SENT
    assert interaction.status == "sent"
    assert interaction.provider_message_id == fake_twilio.messages[0]["sid"]
    assert fake_twilio.messages[0]["StatusCallback"].endswith(f"/status/?iid={interaction.pk}")


@pytest.mark.django_db
def test_messaging_service_sid_is_used_when_configured(workspace, fake_twilio):
    from tests import factories

    channel = factories.twilio_channel(workspace, fake_twilio, messaging_service_sid="MG" + "1" * 32)
    interaction = _queue(channel)
    outbound_interaction_send(interaction_id=interaction.pk)
    assert fake_twilio.messages[0]["MessagingServiceSid"] == "MG" + "1" * 32
    assert "From" not in fake_twilio.messages[0]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("to", "code", "reason"), [(INVALID_NUMBER, "21211", "invalid"), (OPTED_OUT_NUMBER, "21610", "opted out")]
)
def test_permanent_errors_fail_without_retry(sms_channel, fake_twilio, to, code, reason):
    interaction = _queue(sms_channel, to=to)
    attempt = outbound_interaction_send(interaction_id=interaction.pk)
    interaction.refresh_from_db()
    assert attempt.outcome == Outcome.FAILED
    assert (interaction.status, interaction.error_code) == ("failed", code)
    assert reason in interaction.error_message
    assert len(fake_twilio.messages) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("http_status", [429, 500])
def test_throttling_and_server_errors_are_retried(sms_channel, fake_twilio, http_status):
    fake_twilio.fail_next.append(http_status)
    interaction = _queue(sms_channel)
    first = outbound_interaction_send(interaction_id=interaction.pk)
    interaction.refresh_from_db()
    assert first.outcome == Outcome.RETRY
    assert interaction.status == "queued"
    assert interaction.next_attempt_at is not None
    second = outbound_interaction_send(interaction_id=interaction.pk)
    interaction.refresh_from_db()
    assert second.outcome == Outcome.SENT
    assert interaction.send_attempts == 2


@pytest.mark.django_db
def test_last_retryable_failure_is_final(sms_channel, fake_twilio):
    fake_twilio.fail_next.append(503)
    interaction = _queue(sms_channel)
    attempt = outbound_interaction_send(interaction_id=interaction.pk, final_attempt=True)
    interaction.refresh_from_db()
    assert attempt.outcome == Outcome.FAILED
    assert interaction.status == "failed"


@pytest.mark.django_db
def test_network_failure_is_retryable(workspace, fake_twilio):
    from tests import factories

    channel = factories.twilio_channel(workspace, fake_twilio, api_base_url="http://127.0.0.1:9")
    interaction = _queue(channel)
    attempt = outbound_interaction_send(interaction_id=interaction.pk)
    assert attempt.outcome == Outcome.RETRY
    assert attempt.result is not None
    assert attempt.result.error_code == "network"


@pytest.mark.django_db
def test_a_sent_interaction_is_never_sent_again(sms_channel, fake_twilio):
    interaction = _queue(sms_channel)
    outbound_interaction_send(interaction_id=interaction.pk)
    again = outbound_interaction_send(interaction_id=interaction.pk)
    assert again.outcome == Outcome.SKIPPED
    assert len(fake_twilio.messages) == 1


@pytest.mark.django_db
def test_after_commit_task_sends(sms_channel, fake_twilio, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        interaction = _queue(sms_channel)
    interaction.refresh_from_db()
    assert interaction.status == "sent"
    assert len(fake_twilio.messages) == 1


@pytest.mark.django_db
def test_stuck_queued_messages_are_found(sms_channel):
    from datetime import timedelta

    from django.utils import timezone

    interaction = _queue(sms_channel)
    Interaction.objects.filter(pk=interaction.pk).update(
        next_attempt_at=timezone.now() - timedelta(minutes=5)
    )
    assert outbound_stuck_requeue() == [interaction.pk]


@pytest.mark.django_db
def test_send_rejects_empty_body_and_foreign_customer(sms_channel, fake_twilio):
    from tests import factories

    customer, _ = customer_resolve(
        workspace=sms_channel.workspace, identifier=Identifier("phone", "+14155550123")
    )
    with pytest.raises(SendRejected, match="empty"):
        message_send(workspace=sms_channel.workspace, channel=sms_channel, customer=customer, body="  ")
    other = factories.workspace_create()
    stranger, _ = customer_resolve(workspace=other, identifier=Identifier("phone", "+14155550123"))
    with pytest.raises(SendRejected, match="workspace"):
        message_send(workspace=sms_channel.workspace, channel=sms_channel, customer=stranger, body="x")


@pytest.mark.django_db
def test_automation_sends_once_however_often_it_runs(
    sms_channel, fake_twilio, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    from engagement.services.timeline import interaction_record_inbound

    AutomationRule.objects.create(
        workspace=sms_channel.workspace,
        name="kw",
        match_type="keyword",
        keywords="hours, open",
        template="9-5",
    )
    AutomationRule.objects.create(
        workspace=sms_channel.workspace, name="other", match_type="keyword", keywords="price", template="$$"
    )
    inbound, _ = interaction_record_inbound(
        channel=sms_channel,
        sender=Identifier("phone", "+14155550123"),
        body="  Hours ",
        provider_message_id="SMin",
        occurred_at=timezone.now(),
    )
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            automations_run(
                event_name="message.received",
                workspace_id=sms_channel.workspace_id,
                interaction_id=inbound.pk,
            )
    outbound = Interaction.objects.filter(direction="outbound")
    assert [i.body for i in outbound] == ["9-5"]
    assert len(fake_twilio.messages) == 1


@pytest.mark.django_db
def test_rules_of_another_workspace_do_not_fire(sms_channel, fake_twilio):
    from django.utils import timezone

    from engagement.services.timeline import interaction_record_inbound
    from tests import factories

    AutomationRule.objects.create(
        workspace=factories.workspace_create(), name="x", match_type="any", template="no"
    )
    inbound, _ = interaction_record_inbound(
        channel=sms_channel,
        sender=Identifier("phone", "+14155550123"),
        body="hi",
        provider_message_id="SMin",
        occurred_at=timezone.now(),
    )
    assert (
        automations_run(
            event_name="message.received", workspace_id=sms_channel.workspace_id, interaction_id=inbound.pk
        )
        == []
    )


@pytest.mark.django_db
def test_stop_that_arrives_while_a_message_waits_blocks_it_at_send_time(sms_channel, fake_twilio):
    from customers.consent import consent_record

    interaction = _queue(sms_channel)
    consent_record(customer=interaction.customer, channel="sms", status="opted_out", source="sms_keyword")
    attempt = outbound_interaction_send(interaction_id=interaction.pk)
    interaction.refresh_from_db()
    assert attempt.outcome == Outcome.BLOCKED
    assert interaction.status == "blocked"
    assert interaction.error_code == "consent:opted_out"
    assert fake_twilio.messages == []
