"""The consent ledger's derived state and the send-time guard on every outbound path."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from customers.consent import consent_check_send, consent_record, consent_state, consent_summary
from engagement.models import AutomationRule, Interaction, InteractionStatus
from engagement.services.automation import automations_run
from engagement.services.messaging import message_send
from tests import factories
from tests.customers.conftest import inbound

pytestmark = pytest.mark.django_db


def _record(customer, channel, status, purpose="", minutes_ago=0, source="agent"):
    return consent_record(
        customer=customer,
        channel=channel,
        status=status,
        source=source,
        purpose=purpose,
        occurred_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def test_state_is_never_set_until_recorded(workspace):
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    assert consent_state(customer=customer, channel="sms", purpose="marketing") is None
    assert consent_state(customer=customer, channel="sms", purpose="transactional") is None


def test_latest_row_wins_and_channel_wide_opt_out_covers_every_purpose(workspace):
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    _record(customer, "sms", "opted_in", "marketing", minutes_ago=10)
    assert consent_state(customer=customer, channel="sms", purpose="marketing") == "opted_in"
    _record(customer, "sms", "opted_out", "", minutes_ago=5)
    assert consent_state(customer=customer, channel="sms", purpose="marketing") == "opted_out"
    assert consent_state(customer=customer, channel="sms", purpose="transactional") == "opted_out"
    # Another channel is untouched.
    assert consent_state(customer=customer, channel="email", purpose="marketing") is None


def test_channel_wide_opt_in_lifts_the_block_but_never_grants_marketing(workspace):
    never = factories.customer_create(workspace, ("phone", "+14155550100"))
    _record(never, "sms", "opted_out", minutes_ago=5)
    _record(never, "sms", "opted_in", minutes_ago=1)  # START
    assert consent_state(customer=never, channel="sms", purpose="transactional") == "opted_in"
    assert consent_state(customer=never, channel="sms", purpose="marketing") is None

    had = factories.customer_create(workspace, ("phone", "+14155550101"))
    _record(had, "sms", "opted_in", "marketing", minutes_ago=10)
    _record(had, "sms", "opted_out", minutes_ago=5)
    _record(had, "sms", "opted_in", minutes_ago=1)
    assert consent_state(customer=had, channel="sms", purpose="marketing") == "opted_in"


def test_a_later_purpose_row_beats_an_earlier_channel_wide_one(workspace):
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    _record(customer, "sms", "opted_out", minutes_ago=10)
    _record(customer, "sms", "opted_in", "marketing", minutes_ago=1)
    assert consent_state(customer=customer, channel="sms", purpose="marketing") == "opted_in"
    assert consent_state(customer=customer, channel="sms", purpose="transactional") == "opted_out"


def test_summary_matches_state_for_every_channel_and_purpose(workspace):
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    _record(customer, "sms", "opted_in", "marketing", minutes_ago=10)
    _record(customer, "sms", "opted_out", minutes_ago=5)
    _record(customer, "email", "opted_in", "marketing", minutes_ago=3)
    _record(customer, "email", "opted_out", "transactional", minutes_ago=2)
    summary = consent_summary(customer=customer)
    for channel in ("sms", "email", "voice", "webchat"):
        for purpose in ("marketing", "transactional"):
            assert summary[channel][purpose] == consent_state(
                customer=customer, channel=channel, purpose=purpose
            ), (channel, purpose)


def test_ledger_rejects_unknown_values(workspace):
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    cases: list[dict[str, str]] = [
        {"status": "maybe"},
        {"channel": "fax"},
        {"purpose": "spam"},
        {"source": "rumour"},
    ]
    for case in cases:
        base = {"channel": "sms", "status": "opted_in", "source": "agent", "purpose": ""} | case
        with pytest.raises(ValueError, match="unknown consent"):
            consent_record(
                customer=customer,
                channel=base["channel"],
                status=base["status"],
                source=base["source"],
                purpose=base["purpose"],
            )


# ---------------------------------------------------------------- the guard


def test_guard_decisions(workspace):
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    check = consent_check_send
    assert check(customer=customer, channel_kind="sms", purpose="transactional").allowed
    decision = check(customer=customer, channel_kind="sms", purpose="marketing")
    assert (decision.allowed, decision.reason) == (False, "no_marketing_consent")
    _record(customer, "sms", "opted_in", "marketing", minutes_ago=3)
    assert check(customer=customer, channel_kind="sms", purpose="marketing").allowed
    _record(customer, "sms", "opted_out", "marketing", minutes_ago=2)  # unsubscribe from marketing only
    assert check(customer=customer, channel_kind="sms", purpose="marketing").reason == "opted_out"
    assert check(customer=customer, channel_kind="sms", purpose="transactional").allowed
    _record(customer, "sms", "opted_out", minutes_ago=1)  # STOP
    assert check(customer=customer, channel_kind="sms", purpose="transactional").reason == "opted_out"
    assert check(customer=customer, channel_kind="sms", purpose="compliance").allowed
    assert check(customer=customer, channel_kind="email", purpose="transactional").allowed


def test_marketing_send_without_consent_is_recorded_blocked_and_never_queued(workspace, sms):
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    interaction, created = message_send(
        workspace=workspace, channel=sms, customer=customer, body="Sale!", purpose="marketing"
    )
    assert created
    assert interaction.status == InteractionStatus.BLOCKED
    assert interaction.error_code == "consent:no_marketing_consent"
    assert interaction.metadata == {"purpose": "marketing", "blocked_reason": "no_marketing_consent"}
    assert interaction.next_attempt_at is None
    assert interaction.customer_address == "+14155550100"


def test_marketing_send_with_consent_is_queued(workspace, sms):
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    _record(customer, "sms", "opted_in", "marketing")
    interaction, _ = message_send(
        workspace=workspace, channel=sms, customer=customer, body="Sale!", purpose="marketing"
    )
    assert interaction.status == InteractionStatus.QUEUED
    assert interaction.metadata["purpose"] == "marketing"


def test_agent_reply_to_opted_out_customer_is_blocked_not_sent(
    workspace, sms, django_capture_on_commit_callbacks
):
    first = inbound(sms, "+14155550100", "hello")
    _record(first.customer, "sms", "opted_out")
    agent = factories.member(workspace)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        reply, _ = message_send(
            workspace=workspace,
            channel=sms,
            customer=first.customer,
            conversation=first.conversation,
            body="Hi there",
            author=agent,
        )
    reply.refresh_from_db()
    assert reply.status == InteractionStatus.BLOCKED  # the send task never claimed it
    assert reply.error_message == "the customer opted out of sms messages"
    assert reply.conversation_id == first.conversation_id
    assert len(callbacks) == 1  # only the realtime event, no send task


def test_transactional_reply_to_a_customer_who_wrote_in_goes(workspace, sms):
    first = inbound(sms, "+14155550100", "where is my order?")
    reply, _ = message_send(workspace=workspace, channel=sms, customer=first.customer, body="On its way")
    assert reply.status == InteractionStatus.QUEUED
    assert reply.metadata == {"purpose": "transactional"}


def test_marketing_unsubscribe_does_not_block_transactional_email(workspace, email_channel):
    first = inbound(email_channel, "ann@example.com", "question")
    _record(first.customer, "email", "opted_out", "marketing", source="unsubscribe_link")
    reply, _ = message_send(
        workspace=workspace, channel=email_channel, customer=first.customer, body="Answer"
    )
    assert reply.status == InteractionStatus.QUEUED
    blocked, _ = message_send(
        workspace=workspace, channel=email_channel, customer=first.customer, body="News", purpose="marketing"
    )
    assert blocked.status == InteractionStatus.BLOCKED


def test_automation_reply_to_opted_out_customer_is_blocked_once(workspace, sms):
    rule = AutomationRule.objects.create(
        workspace=workspace, name="any", match_type="any", template="Thanks for writing"
    )
    message = inbound(sms, "+14155550100", "hours?")
    _record(message.customer, "sms", "opted_out")
    for _ in range(2):  # a task retry must not add a second row
        automations_run(event_name="message.received", workspace_id=workspace.pk, interaction_id=message.pk)
    outbound = Interaction.objects.filter(automation_rule=rule)
    assert [(i.status, i.error_code) for i in outbound] == [("blocked", "consent:opted_out")]


def test_blocked_send_with_idempotency_key_repeats_as_the_same_row(workspace, sms):
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    first, created = message_send(
        workspace=workspace,
        channel=sms,
        customer=customer,
        body="x",
        purpose="marketing",
        idempotency_key="k1",
    )
    again, created_again = message_send(
        workspace=workspace,
        channel=sms,
        customer=customer,
        body="x",
        purpose="marketing",
        idempotency_key="k1",
    )
    assert (created, created_again, again.pk) == (True, False, first.pk)


def test_unknown_purpose_is_rejected(workspace, sms):
    from engagement.services.messaging import SendRejected

    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    with pytest.raises(SendRejected):
        message_send(workspace=workspace, channel=sms, customer=customer, body="x", purpose="gossip")


def test_api_send_honours_the_guard(workspace, sms):
    from rest_framework.test import APIClient

    from engagement.services.tenancy import api_key_create

    _, secret = api_key_create(workspace=workspace, name="t")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    body = {"channel_id": sms.pk, "to": "+14155550100", "body": "Sale", "purpose": "marketing"}
    resp = api.post("/api/v1/messages/", body, format="json")
    assert resp.status_code == 202
    assert resp.json()["status"] == "blocked"
    assert resp.json()["error_code"] == "consent:no_marketing_consent"
    resp = api.post("/api/v1/messages/", {**body, "purpose": "transactional"}, format="json")
    assert resp.json()["status"] == "queued"
