"""A run pauses itself when its error rate passes the threshold (the reason shown, cleared on resume);
"converted" counts a goal custom event after the send, within its window; campaign sends take the bulk
lane (their own Celery queue), conversational sends the default one."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.test import Client, TestCase
from django.urls import reverse
from django.utils import timezone

from channels_outbound.listeners import outbound_delivery_listener
from config.celery import app as celery_app
from customers.events import customer_event_record
from engagement import events
from engagement.campaigns.sending import campaigns_tick
from engagement.campaigns.services import campaign_launch, campaign_resume, campaign_stats
from engagement.models import Campaign, CampaignRecipient, CampaignSettings, Role
from engagement.models.outbox import OutboxEvent
from engagement.services.messaging import message_send
from tests import factories
from tests.campaigns.helpers import audience_create, sms_campaign, tag_segment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_quiet_hours(workspace: Any) -> None:
    CampaignSettings.objects.create(workspace=workspace, quiet_hours_enabled=False)


def tick() -> None:
    with TestCase.captureOnCommitCallbacks(execute=True):
        campaigns_tick(budget_seconds=10)


def _calls(fake_twilio: Any) -> int:
    return len([m for m in fake_twilio.messages if "sid" in m or "rejected" in m])


def test_a_run_pauses_itself_on_its_error_rate_with_the_reason_shown(
    workspace, sms_channel, fake_twilio, settings
):
    settings.CAMPAIGN_AUTOPAUSE_WINDOW = 20
    settings.CAMPAIGN_AUTOPAUSE_FAILED_PERCENT = 20
    settings.CAMPAIGN_MAX_QUEUED = 20
    settings.CAMPAIGN_BATCH_SIZE = 10
    audience_create(workspace, 60)  # +12025550000 … +12025550059
    fake_twilio.invalid_prefix = "+1202555000"  # the first ten numbers are refused (21211, permanent)
    campaign = sms_campaign(workspace, tag_segment(workspace), [sms_channel])
    campaign_launch(campaign=campaign)
    tick()  # 20 queued and sent: 10 refused, 10 accepted
    assert _calls(fake_twilio) == 20
    tick()  # the outcomes are synced: 10 of the last 20 attempts failed (50% ≥ 20%) → paused
    campaign.refresh_from_db()
    assert campaign.state == "paused"
    assert campaign.paused_reason.startswith("Paused automatically: 10 of the last 20 sends failed")
    tick()
    assert _calls(fake_twilio) == 20  # nothing more reaches the provider while paused
    assert CampaignRecipient.objects.filter(campaign=campaign, state="failed").count() == 10
    stats = campaign_stats(campaign=campaign)
    assert stats["paused_reason"] == campaign.paused_reason

    marketer = Client()
    marketer.force_login(factories.member(workspace, Role.MARKETER))
    page = marketer.get(reverse("console:campaign", args=[campaign.pk])).content.decode()
    assert "data-paused-reason" in page
    assert "10 of the last 20 sends failed" in page

    fake_twilio.invalid_prefix = ""
    with TestCase.captureOnCommitCallbacks(execute=True):
        campaign_resume(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.paused_reason == ""
    for _ in range(10):
        tick()
        if Campaign.objects.get(pk=campaign.pk).state == "completed":
            break
    assert campaign_stats(campaign=campaign)["total"]["sent"] == 50
    assert _calls(fake_twilio) == 60  # each recipient once


def test_converted_counts_the_goal_event_within_its_window(workspace, sms_channel, fake_twilio):
    people = audience_create(workspace, 4)
    campaign = sms_campaign(
        workspace, tag_segment(workspace), [sms_channel], goal_event="order_placed", goal_window_hours=48
    )
    campaign_launch(campaign=campaign)
    for _ in range(5):
        tick()
    rows = CampaignRecipient.objects.filter(campaign=campaign)
    assert rows.filter(state="sent").count() == 4
    sent = timezone.now() - dt.timedelta(days=3)
    rows.update(sent_at=sent)  # sent three days ago
    sent_at = dict.fromkeys((p.pk for p in people), sent)
    at = {
        people[0]: sent_at[people[0].pk] + dt.timedelta(hours=2),  # converted
        people[1]: sent_at[people[1].pk] - dt.timedelta(hours=1),  # before the send: no
        people[2]: sent_at[people[2].pk] + dt.timedelta(hours=49),  # after the window: no
    }
    for n, (customer, when) in enumerate(at.items()):
        customer_event_record(customer=customer, name="order_placed", occurred_at=when, event_id=f"o{n}")
    customer_event_record(
        customer=people[3], name="page_viewed", occurred_at=timezone.now(), event_id="v1"
    )  # another event: no
    stats = campaign_stats(campaign=campaign)
    assert stats["total"]["converted"] == 1
    assert stats["variants"]["A"]["converted"] == 1
    assert stats["goal_event"] == "order_placed"
    without_goal = sms_campaign(workspace, tag_segment(workspace, tag="none"), [sms_channel], name="No goal")
    assert campaign_stats(campaign=without_goal)["total"]["converted"] == 0


def test_campaign_sends_take_the_bulk_lane_and_replies_the_default_one(workspace, sms_channel, settings):
    audience_create(workspace, 2)
    campaign = sms_campaign(workspace, tag_segment(workspace), [sms_channel])
    campaign_launch(campaign=campaign)
    with TestCase.captureOnCommitCallbacks(execute=False):
        campaigns_tick(budget_seconds=10)
    queued = [e.payload for e in OutboxEvent.objects.filter(name=events.OUTBOUND_QUEUED)]
    assert len(queued) == 2
    assert all(p["data"] == {"lane": "bulk"} for p in queued)
    customer = factories.customer_create(workspace, ("phone", "+14155550199"))
    with TestCase.captureOnCommitCallbacks(execute=False):
        reply, _ = message_send(workspace=workspace, channel=sms_channel, customer=customer, body="Hi!")
    event = OutboxEvent.objects.filter(name=events.OUTBOUND_QUEUED, payload__interaction_id=reply.pk).get()
    assert event.payload["data"] == {}

    # On the broker: the listener puts each on its queue; the tick and email batches are routed to bulk.
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    bulk, default = settings.CELERY_BULK_QUEUE, settings.CELERY_TASK_DEFAULT_QUEUE
    before = broker.llen(bulk), broker.llen(default)
    celery_app.conf.task_always_eager = False
    try:
        outbound_delivery_listener(events.DomainEvent(**queued[0]))
        outbound_delivery_listener(events.DomainEvent(**event.payload))
        assert (broker.llen(bulk), broker.llen(default)) == (before[0] + 1, before[1] + 1)
    finally:
        celery_app.conf.task_always_eager = True
        for name in (bulk, default):
            broker.lpop(name)  # ours were pushed last (LPUSH, on the left); workers take from the right
    router = celery_app.amqp.router
    assert router.route({}, "engagement.tasks.campaigns_tick")["queue"].name == bulk
    assert router.route({}, "channels_outbound.tasks.send_email_batch")["queue"].name == bulk
    assert router.route({}, "channels_outbound.tasks.send_interaction")["queue"].name == default
    # A worker started without -Q consumes both lanes.
    assert {q.name for q in celery_app.conf.task_queues} == {bulk, default}
