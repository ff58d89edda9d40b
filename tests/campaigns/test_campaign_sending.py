"""Launch → snapshot → tick → guards → outbox → fake Twilio, in-process (tasks eager)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.consent import consent_record
from customers.merging import customer_merge
from engagement.campaigns.sending import campaigns_tick, variant_for
from engagement.campaigns.services import (
    campaign_cancel,
    campaign_launch,
    campaign_pause,
    campaign_resume,
    campaign_stats,
)
from engagement.models import CampaignRecipient, CampaignRun, CampaignSettings, Interaction
from tests.campaigns.helpers import audience_create, sms_campaign, tag_segment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_quiet_hours(workspace):
    CampaignSettings.objects.create(workspace=workspace, quiet_hours_enabled=False)


def tick(budget: float = 5) -> None:
    """One scheduler tick; its after-commit sends run (eagerly) as they would after a real commit."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        campaigns_tick(budget_seconds=budget)


def tick_until_done(max_ticks: int = 20) -> None:
    for _ in range(max_ticks):
        tick()
        if not CampaignRecipient.objects.filter(state__in=["pending", "held", "claimed", "sending"]).exists():
            tick()
            return
    raise AssertionError("campaign did not finish")


def test_launch_snapshots_in_one_insert_and_sends_each_once(workspace, sms_channel, fake_twilio):
    audience_create(workspace, 30)
    audience_create(workspace, 5, tag="other", phone_base=12025560000)
    campaign = sms_campaign(workspace, tag_segment(workspace), [sms_channel])
    with CaptureQueriesContext(connection) as queries:
        campaign_launch(campaign=campaign)
    inserts = [q["sql"] for q in queries if "INSERT INTO" in q["sql"] and "campaignrecipient" in q["sql"]]
    assert len(inserts) == 1
    assert "SELECT" in inserts[0]
    run = CampaignRun.objects.get(campaign=campaign)
    assert run.targeted == 30
    tick_until_done()
    run.refresh_from_db()
    assert run.state == "completed"
    assert CampaignRecipient.objects.filter(run=run, state="sent").count() == 30
    sent = [m for m in fake_twilio.messages if "sid" in m]
    assert len(sent) == 30
    assert len({m["To"] for m in sent}) == 30
    assert sent[0]["Body"].startswith("Hi Pat, 20% off today.\nReply STOP to opt out")
    campaign.refresh_from_db()
    assert campaign.state == "completed"
    i = Interaction.objects.filter(direction="outbound").first()
    assert i is not None
    assert i.idempotency_key is not None
    assert i.idempotency_key.startswith(f"campaign:{run.pk}:")
    assert i.metadata["campaign_name"] == "Spring sale"
    stats = campaign_stats(campaign=campaign)
    assert stats["total"]["targeted"] == 30
    assert stats["total"]["sent"] == 30
    # A second round of ticks sends nothing more.
    tick(1)
    assert len([m for m in fake_twilio.messages if "sid" in m]) == 30


def test_guard_reasons_are_recorded(workspace, sms_channel, fake_twilio):
    people = audience_create(workspace, 6)
    no_consent, opted_out, erased, merged_away, left, _ok = people
    consent_record(customer=opted_out, channel="sms", status="opted_out", source="sms_keyword")
    no_consent.consent_events.all().delete()
    campaign = sms_campaign(workspace, tag_segment(workspace), [sms_channel])
    campaign_launch(campaign=campaign)
    erased.erased_at = timezone.now()
    erased.save()
    customer_merge(workspace=workspace, survivor=_ok, merged=merged_away, source="agent")
    left.tags = []
    left.save()
    tick_until_done()
    rows = {r.customer_id: r for r in CampaignRecipient.objects.all()}
    assert rows[no_consent.pk].skip_reason == "consent:no_marketing_consent"
    assert rows[opted_out.pk].skip_reason == "consent:opted_out"
    assert rows[erased.pk].skip_reason.startswith(("suppressed:erased", "no_address", "consent"))
    assert rows[left.pk].skip_reason == "left_segment"
    # The merged-away customer's row sends to the survivor, who gets exactly one message.
    assert {rows[merged_away.pk].state, rows[_ok.pk].state} == {"sent", "skipped"}
    assert len([m for m in fake_twilio.messages if "sid" in m]) == 1
    stats = campaign_stats(campaign=campaign)
    assert sum(stats["skipped_by_reason"].values()) == 5


def test_variants_are_deterministic_and_match_sql(workspace, sms_channel):
    people = audience_create(workspace, 400)
    campaign = sms_campaign(
        workspace, tag_segment(workspace), [sms_channel],
        variants=[{"key": "A", "weight": 1}, {"key": "B", "weight": 3}], holdout_percent=10,
    )  # fmt: skip
    campaign_launch(campaign=campaign)
    rows = dict(CampaignRecipient.objects.values_list("customer_id", "variant"))
    assert rows == {c.pk: variant_for(campaign=campaign, customer_id=c.pk) for c in people}
    counts = {v: list(rows.values()).count(v) for v in ("A", "B", "holdout")}
    assert 20 <= counts["holdout"] <= 65
    assert counts["B"] > counts["A"] * 2
    assert (
        CampaignRecipient.objects.filter(variant="holdout", state="skipped", skip_reason="holdout").count()
        == counts["holdout"]
    )


def test_pause_resume_cancel(workspace, sms_channel, fake_twilio, settings):
    settings.CAMPAIGN_BATCH_SIZE = 5
    audience_create(workspace, 20)
    segment = tag_segment(workspace)
    campaign = sms_campaign(workspace, segment, [sms_channel])
    campaign_launch(campaign=campaign)
    campaign_pause(campaign=campaign)
    tick(2)
    assert fake_twilio.messages == []
    assert CampaignRecipient.objects.filter(state="pending").count() == 20
    campaign_resume(campaign=campaign)
    tick_until_done()
    assert len([m for m in fake_twilio.messages if "sid" in m]) == 20

    other = sms_campaign(workspace, segment, [sms_channel], name="Second")
    campaign_launch(campaign=other)
    campaign_cancel(campaign=other)
    tick(2)
    assert (
        CampaignRecipient.objects.filter(campaign=other, state="skipped", skip_reason="cancelled").count()
        == 20
    )
    assert CampaignRun.objects.get(campaign=other).completed_at is not None
    assert len([m for m in fake_twilio.messages if "sid" in m]) == 20


def test_fallback_to_email_without_sms_consent(workspace, sms_channel, email_channel, fake_sendgrid):
    people = audience_create(workspace, 3, email=True, opted_in=("email",))
    campaign = sms_campaign(workspace, tag_segment(workspace), [sms_channel, email_channel])
    campaign_launch(campaign=campaign)
    tick_until_done()
    assert CampaignRecipient.objects.filter(state="sent", channel=email_channel).count() == 3
    # Campaign email goes out batched: one Mail Send request, a personalization per recipient.
    assert fake_sendgrid.requests == 1
    assert fake_sendgrid.personalizations == 3
    mail = fake_sendgrid.mails()[0]
    assert mail["subject"] == "Sale, Pat"
    assert mail["html"] == "<p>Hi Pat</p>"
    # Marketing mail carries the one-click unsubscribe headers (RFC 8058).
    assert "List-Unsubscribe-Post" in mail["headers"]
    assert {r.customer_id for r in CampaignRecipient.objects.all()} == {p.pk for p in people}


def test_stats_count_opens_clicks_replies_and_unsubscribes(workspace, email_channel, fake_sendgrid):
    from customers.services import Identifier
    from engagement.services.email_feedback import interaction_record_feedback
    from engagement.services.timeline import interaction_record_inbound

    people = audience_create(workspace, 4, email=True, opted_in=("email",))
    campaign = sms_campaign(workspace, tag_segment(workspace), [email_channel])
    campaign_launch(campaign=campaign)
    tick_until_done()
    rows = {r.customer_id: r for r in CampaignRecipient.objects.select_related("interaction")}
    messages = [rows[p.pk].interaction for p in people]
    assert all(m is not None for m in messages)
    first, second, third, _ = (m for m in messages if m is not None)
    now = timezone.now()
    interaction_record_feedback(
        channel=email_channel, occurred_at=now, interaction_id=first.pk, engagement="open"
    )
    interaction_record_feedback(
        channel=email_channel, occurred_at=now, interaction_id=first.pk, engagement="click"
    )
    interaction_record_feedback(
        channel=email_channel, occurred_at=now, interaction_id=second.pk, engagement="open"
    )
    interaction_record_feedback(
        channel=email_channel,
        occurred_at=now,
        interaction_id=third.pk,
        opt_out_source="provider_unsubscribe",
        opt_out_purpose="marketing",
    )
    interaction_record_inbound(
        channel=email_channel,
        sender=Identifier("email", second.customer_address),
        body="Thanks!",
        provider_message_id="reply-1",
        occurred_at=now,
    )
    total = campaign_stats(campaign=campaign)["total"]
    assert (total["sent"], total["opened"], total["clicked"], total["replied"], total["unsubscribed"]) == (
        4,
        2,
        1,
        1,
        1,
    )


def test_provider_timeout_is_reconciled_with_the_provider_never_resent_blindly(
    workspace, sms_channel, fake_twilio, settings
):
    from channels_outbound.services import outbound_lease_reclaim

    settings.TWILIO_HTTP_TIMEOUT = 0.5
    fake_twilio.stall_next.append(2.0)  # Twilio accepts the message but answers after we gave up
    customer = audience_create(workspace, 1)[0]
    campaign = sms_campaign(workspace, tag_segment(workspace), [sms_channel])
    campaign_launch(campaign=campaign)
    tick()
    row = CampaignRecipient.objects.select_related("interaction").get(customer=customer)
    assert row.interaction is not None
    # The outcome is unknown: the send stays "sending" with its lease expired, for recovery to settle.
    assert row.interaction.status == "sending"
    assert len(fake_twilio.messages) == 1
    tick()
    assert len(fake_twilio.messages) == 1  # never retried blindly
    # Beat's recovery asks Twilio (the Messages list) and finds it: sent, with Twilio's sid, once.
    assert row.interaction_id is not None
    outbound_lease_reclaim(interaction_id=row.interaction_id)
    row.interaction.refresh_from_db()
    assert row.interaction.status == "sent"
    assert row.interaction.provider_message_id == fake_twilio.messages[0]["sid"]
    tick_until_done()
    row.refresh_from_db()
    assert row.state == "sent"
    assert CampaignRun.objects.get(campaign=campaign).state == "completed"
    assert len(fake_twilio.messages) == 1
