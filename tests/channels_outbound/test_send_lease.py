"""A send whose worker died: the lease expires and recovery reconciles with the provider (the twilio SDK's
Messages list on the fake Twilio) before anything is resent. And a provider's Retry-After is honoured."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from channels_outbound.base import SendResult
from channels_outbound.services import (
    Outcome,
    _record_result,
    outbound_interaction_send,
    outbound_lease_reclaim,
    outbound_leases_expired,
)
from engagement.models import Interaction, OutboxEvent
from tests.channels_outbound.test_twilio_send import _queue

pytestmark = pytest.mark.django_db


def _as_left_by_a_dead_worker(interaction: Interaction) -> None:
    """What a worker killed after its claim leaves: ``sending``, no provider id, an expired lease."""
    Interaction.objects.filter(pk=interaction.pk).update(
        status="sending",
        provider_message_id="",
        lease_until=timezone.now() - timedelta(seconds=1),
        status_changed_at=timezone.now() - timedelta(seconds=100),
    )


def test_claim_sets_a_lease_and_the_result_clears_it(sms_channel, fake_twilio, settings):
    settings.OUTBOUND_SEND_LEASE_SECONDS = 45
    interaction = _queue(sms_channel)
    outbound_interaction_send(interaction_id=interaction.pk)
    interaction.refresh_from_db()
    assert (interaction.status, interaction.send_attempts, interaction.lease_until) == ("sent", 1, None)
    assert outbound_leases_expired() == []


def test_a_message_the_provider_has_is_recorded_not_resent(sms_channel, fake_twilio):
    interaction = _queue(sms_channel, body="Your code is 4711")
    outbound_interaction_send(interaction_id=interaction.pk)
    sid = fake_twilio.messages[0]["sid"]
    _as_left_by_a_dead_worker(interaction)
    assert outbound_leases_expired() == [interaction.pk]

    assert outbound_lease_reclaim(interaction_id=interaction.pk) == Outcome.SENT
    interaction.refresh_from_db()
    assert (interaction.status, interaction.provider_message_id) == ("sent", sid)
    assert interaction.lease_until is None
    assert interaction.metadata["provider"]["reconciled"] is True
    assert len([m for m in fake_twilio.messages if "sid" in m]) == 1
    assert fake_twilio.list_requests == [
        {"To": "+14155550123", "From": sms_channel.address, "PageSize": "100"}
    ]


def test_a_message_already_recorded_elsewhere_does_not_count(sms_channel, fake_twilio):
    first = _queue(sms_channel, body="same words")
    outbound_interaction_send(interaction_id=first.pk)
    second = _queue(sms_channel, body="same words")
    second.status = "sending"
    second.send_attempts = 1
    second.save()
    _as_left_by_a_dead_worker(second)
    # The only matching message at Twilio is the first interaction's: the second was never sent.
    assert outbound_lease_reclaim(interaction_id=second.pk) == Outcome.RETRY
    second.refresh_from_db()
    assert (second.status, second.error_code, second.lease_until) == ("queued", "lease_expired", None)
    assert OutboxEvent.objects.filter(name="outbound.queued", payload__interaction_id=second.pk).exists()
    assert outbound_interaction_send(interaction_id=second.pk).outcome == Outcome.SENT
    assert len([m for m in fake_twilio.messages if "sid" in m]) == 2


def test_a_live_lease_is_left_alone(sms_channel, fake_twilio):
    interaction = _queue(sms_channel)
    Interaction.objects.filter(pk=interaction.pk).update(
        status="sending", lease_until=timezone.now() + timedelta(seconds=30)
    )
    assert outbound_leases_expired() == []
    assert outbound_lease_reclaim(interaction_id=interaction.pk) is None
    assert fake_twilio.list_requests == []


def test_a_stale_claims_answer_never_overwrites_a_newer_claim(sms_channel, fake_twilio):
    interaction = _queue(sms_channel)
    Interaction.objects.filter(pk=interaction.pk).update(status="sending", send_attempts=2)
    failed = SendResult(accepted=False, status="failed", error_code="network", retryable=True)
    assert _record_result(
        interaction_id=interaction.pk, result=failed, final_attempt=False, claim=1
    ).outcome == (Outcome.SKIPPED)
    interaction.refresh_from_db()
    assert interaction.status == "sending"


def test_retry_after_is_honoured(sms_channel, fake_twilio):
    fake_twilio.fail_rate = 1.0
    fake_twilio.retry_after = "7"
    interaction = _queue(sms_channel)
    before = timezone.now()
    attempt = outbound_interaction_send(interaction_id=interaction.pk)
    assert attempt.outcome == Outcome.RETRY
    assert attempt.result is not None
    assert attempt.result.retry_after == 7.0
    interaction.refresh_from_db()
    assert interaction.status == "queued"
    assert interaction.next_attempt_at >= before + timedelta(seconds=7)


def test_a_read_timeout_is_reconciled_not_retried(sms_channel, fake_twilio, settings):
    """Twilio took the message but the answer came too late: no blind retry (that would send it twice);
    the interaction waits in ``sending`` with an expired lease, and recovery finds it at Twilio."""
    settings.TWILIO_HTTP_TIMEOUT = 0.3
    fake_twilio.response_delay = 1.0
    interaction = _queue(sms_channel)
    attempt = outbound_interaction_send(interaction_id=interaction.pk)
    assert attempt.outcome == Outcome.UNKNOWN
    interaction.refresh_from_db()
    assert interaction.status == "sending"
    assert outbound_leases_expired() == [interaction.pk]
    assert outbound_lease_reclaim(interaction_id=interaction.pk) == Outcome.SENT
    interaction.refresh_from_db()
    assert interaction.status == "sent"
    assert interaction.provider_message_id == fake_twilio.messages[0]["sid"]
    assert len(fake_twilio.messages) == 1


def test_sendgrid_mail_found_by_its_custom_arg_is_recorded_not_resent(email_channel, fake_sendgrid):
    from tests.channels_outbound.test_sendgrid_send import _queue as _queue_mail

    interaction = _queue_mail(email_channel)
    outbound_interaction_send(interaction_id=interaction.pk)
    x_message_id = fake_sendgrid.messages[0]["x_message_id"]
    _as_left_by_a_dead_worker(interaction)
    assert outbound_lease_reclaim(interaction_id=interaction.pk) == Outcome.SENT
    interaction.refresh_from_db()
    assert (interaction.status, interaction.provider_message_id) == ("sent", x_message_id)
    assert fake_sendgrid.activity_queries == [
        f'unique_args[\'iid\']="{interaction.pk}" AND to_email="grace@example.com"'
    ]
    assert len(fake_sendgrid.messages) == 1


def test_sendgrid_mail_not_found_waits_out_the_index_lag_then_is_resent(
    email_channel, fake_sendgrid, settings
):
    from tests.channels_outbound.test_sendgrid_send import _queue as _queue_mail

    settings.OUTBOUND_SEND_LEASE_SECONDS = 60
    interaction = _queue_mail(email_channel)
    Interaction.objects.filter(pk=interaction.pk).update(
        status="sending", send_attempts=1, lease_until=timezone.now() - timedelta(seconds=1)
    )
    Interaction.objects.filter(pk=interaction.pk).update(
        status_changed_at=timezone.now() - timedelta(seconds=61)
    )
    assert outbound_lease_reclaim(interaction_id=interaction.pk) is None  # maybe not indexed yet
    Interaction.objects.filter(pk=interaction.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1),
        status_changed_at=timezone.now() - timedelta(seconds=121),
    )
    assert outbound_lease_reclaim(interaction_id=interaction.pk) == Outcome.RETRY
    assert outbound_interaction_send(interaction_id=interaction.pk).outcome == Outcome.SENT
    assert len(fake_sendgrid.messages) == 1
