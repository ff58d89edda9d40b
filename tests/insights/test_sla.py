"""SLA: business-hours deadlines, the clocks of a conversation, badges, breach detection, settings."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from engagement.models import Channel, OutboxEvent, SlaBreach, Workspace
from engagement.services.messaging import message_send
from engagement.services.sla import (
    SlaSettingsInvalid,
    business_deadline,
    business_hours_parse,
    business_hours_set,
    sla_breaches_detect,
    sla_clocks_for_conversations,
    sla_policy_save,
)
from engagement.webhooks.catalog import EVENT_TYPES, webhook_event_build

from .conftest import conversation_pk, inbound, minutes_ago

NY = zoneinfo.ZoneInfo("America/New_York")
WEEKDAYS_9_TO_5 = business_hours_parse({str(d): [["09:00", "17:00"]] for d in range(1, 6)})


def test_deadline_skips_nights_and_weekends() -> None:
    friday_1630 = datetime(2026, 3, 6, 16, 30, tzinfo=NY)
    due = business_deadline(start=friday_1630, minutes=60, weekly=WEEKDAYS_9_TO_5, zone=NY)
    assert due.astimezone(NY) == datetime(2026, 3, 9, 9, 30, tzinfo=NY)  # Monday
    # Saturday night: counts from Monday's opening.
    due = business_deadline(
        start=datetime(2026, 3, 7, 22, 0, tzinfo=NY), minutes=30, weekly=WEEKDAYS_9_TO_5, zone=NY
    )
    assert due.astimezone(NY) == datetime(2026, 3, 9, 9, 30, tzinfo=NY)
    # Across the DST change (8 March 2026): opening hours stay 09:00 local.
    assert due.astimezone(UTC) == datetime(2026, 3, 9, 13, 30, tzinfo=UTC)
    # Without hours: wall clock.
    start = datetime(2026, 3, 7, 22, 0, tzinfo=UTC)
    assert business_deadline(start=start, minutes=30, weekly={}, zone=NY) == start + timedelta(minutes=30)


def test_business_hours_refuse_nonsense() -> None:
    with pytest.raises(SlaSettingsInvalid):
        business_hours_parse({"8": [["09:00", "17:00"]]})
    with pytest.raises(SlaSettingsInvalid):
        business_hours_parse({"1": [["17:00", "09:00"]]})
    with pytest.raises(SlaSettingsInvalid):
        business_hours_parse({"1": [["9am", "5pm"]]})
    assert business_hours_parse({"7": [["00:00", "24:00"]]})[7][0][0].hour == 0


@pytest.mark.django_db
def test_first_response_clock_runs_until_an_agent_answers(
    workspace: Workspace, sms_channel: Channel, agent: Any
) -> None:
    sla_policy_save(
        workspace=workspace,
        name="Standard",
        first_response_minutes=30,
        next_response_minutes=60,
        resolution_minutes=None,
        business_hours_only=False,
    )
    message = inbound(sms_channel, "+14155550101", "help", at=minutes_ago(10), name="Grace")
    cid = conversation_pk(message)
    clocks = sla_clocks_for_conversations(workspace=workspace, conversation_ids=[cid])[cid]
    assert [(c.metric, c.met_at) for c in clocks] == [("first_response", None)]
    assert clocks[0].due_at == message.created_at + timedelta(minutes=30)
    assert clocks[0].state(timezone.now()) == "running"

    message_send(
        workspace=workspace, channel=sms_channel, customer=message.customer, body="on it", author=agent
    )
    clocks = sla_clocks_for_conversations(workspace=workspace, conversation_ids=[cid])[cid]
    assert clocks[0].metric == "first_response"
    assert clocks[0].state(timezone.now()) == "met"

    later = inbound(sms_channel, "+14155550101", "still broken")
    clocks = sla_clocks_for_conversations(workspace=workspace, conversation_ids=[cid])[cid]
    assert [c.metric for c in clocks] == ["first_response", "next_response"]
    assert clocks[1].started_at == later.created_at


@pytest.mark.django_db
def test_policy_covers_only_its_channels(workspace: Workspace, sms_channel: Channel) -> None:
    sla_policy_save(
        workspace=workspace,
        name="Email",
        first_response_minutes=5,
        next_response_minutes=None,
        resolution_minutes=None,
        channel_kinds=["email"],
    )
    message = inbound(sms_channel, "+14155550101", "help")
    assert (
        sla_clocks_for_conversations(workspace=workspace, conversation_ids=[conversation_pk(message)]) == {}
    )
    with pytest.raises(SlaSettingsInvalid):
        sla_policy_save(
            workspace=workspace,
            name="x",
            first_response_minutes=None,
            next_response_minutes=None,
            resolution_minutes=None,
        )
    with pytest.raises(SlaSettingsInvalid):
        sla_policy_save(
            workspace=workspace,
            name="x",
            first_response_minutes=5,
            next_response_minutes=None,
            resolution_minutes=None,
            channel_kinds=["fax"],
        )


@pytest.mark.django_db
def test_breach_detected_once_with_one_event(workspace: Workspace, sms_channel: Channel) -> None:
    sla_policy_save(
        workspace=workspace,
        name="Fast",
        first_response_minutes=30,
        next_response_minutes=None,
        resolution_minutes=120,
        business_hours_only=False,
    )
    late = inbound(sms_channel, "+14155550101", "anyone?", at=minutes_ago(45), name="Grace")
    inbound(sms_channel, "+14155550102", "hello", at=minutes_ago(5), name="Alan")

    assert sla_breaches_detect() == 1
    breach = SlaBreach.objects.get()
    assert (breach.conversation_id, breach.metric) == (late.conversation_id, "first_response")
    assert breach.due_at == late.created_at + timedelta(minutes=30)
    events = OutboxEvent.objects.filter(name="sla.breached")
    assert events.count() == 1
    assert sla_breaches_detect() == 0  # idempotent
    assert sla_breaches_detect(now=timezone.now() + timedelta(minutes=200)) == 3  # 1 first + 2 resolution
    assert OutboxEvent.objects.filter(name="sla.breached").count() == 4

    from engagement.events import DomainEvent

    payload = events.first().payload  # type: ignore[union-attr]
    built = webhook_event_build(DomainEvent(**payload))
    assert built is not None
    assert built.type == "sla.breached"
    assert built.data["metric"] == "first_response"
    assert "sla.breached" in EVENT_TYPES


@pytest.mark.django_db
def test_inbox_and_thread_show_time_left(
    agent_client: Client, workspace: Workspace, sms_channel: Channel
) -> None:
    business_hours_set(workspace=workspace, weekly={})
    sla_policy_save(
        workspace=workspace,
        name="Std",
        first_response_minutes=60,
        next_response_minutes=None,
        resolution_minutes=None,
        business_hours_only=False,
    )
    fresh = inbound(sms_channel, "+14155550101", "hi", at=minutes_ago(5), name="Grace")
    overdue = inbound(sms_channel, "+14155550102", "hello?", at=minutes_ago(90), name="Alan")
    html = agent_client.get("/").content.decode()
    assert 'data-sla="first_response" data-sla-state="running"' in html
    assert 'data-sla="first_response" data-sla-state="breached"' in html
    assert "left" in html
    assert "overdue" in html
    thread = agent_client.get(f"/conversations/{conversation_pk(fresh)}/").content.decode()
    assert 'data-sla="first_response"' in thread
    assert overdue.pk


@pytest.mark.django_db
def test_sla_settings_page_for_admins(
    admin_client: Client, agent_client: Client, workspace: Workspace
) -> None:
    assert agent_client.get("/settings/sla/").status_code == 403
    assert admin_client.get("/settings/sla/").status_code == 200
    resp = admin_client.post(
        "/settings/sla/",
        {
            "form": "policy",
            "name": "Gold",
            "first_response_minutes": "15",
            "business_hours_only": "1",
            "channel_kinds": ["sms"],
        },
    )
    assert resp.status_code == 302
    page = admin_client.get("/settings/sla/").content.decode()
    assert "Gold" in page
    assert "15 min" in page
    resp = admin_client.post("/settings/sla/", {"form": "hours", "open_1": "09:00", "close_1": "17:00"})
    assert resp.status_code == 302
    assert workspace.business_hours.weekly == {"1": [["09:00", "17:00"]]}
    bad = admin_client.post(
        "/settings/sla/", {"form": "hours", "open_2": "17:00", "close_2": "09:00"}, follow=True
    )
    assert "ends before it starts" in bad.content.decode()
