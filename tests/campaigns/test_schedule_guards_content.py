"""Time zones and DST (quiet hours, local-time schedules, RRULEs), the frequency cap under 50 concurrent
sends, the guard pipeline's holds, and the sandboxed templates with their lint."""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, connections, transaction

from config.celery import app as celery_app
from customers.models import Customer
from engagement.campaigns.content import RenderFailed, content_lint, content_render, template_lint
from engagement.campaigns.schedule import quiet_hours_end, rrule_next, wall_to_utc
from engagement.campaigns.sending import campaigns_start_due
from engagement.campaigns.services import campaign_launch
from engagement.models import CampaignRecipient, CampaignRun, CampaignSettings, Interaction
from engagement.services.guards import send_guard_check
from engagement.services.messaging import message_send
from tests import factories
from tests.campaigns.helpers import audience_create, sms_campaign, tag_segment

UTC = dt.UTC
NY, TOKYO, OSLO, KOLKATA = (
    ZoneInfo(z) for z in ("America/New_York", "Asia/Tokyo", "Europe/Oslo", "Asia/Kolkata")
)
Q_START, Q_END = dt.time(21, 0), dt.time(8, 0)


def at(y: int, m: int, d: int, h: int, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=UTC)


# ---------------------------------------------------------------- quiet hours


@pytest.mark.parametrize(
    ("now", "zone", "until"),
    [
        (at(2026, 6, 10, 2), NY, at(2026, 6, 10, 12)),  # 22:00 EDT → 08:00 EDT next morning
        (at(2026, 6, 10, 11), NY, at(2026, 6, 10, 12)),  # 07:00 EDT → 08:00 the same morning
        (at(2026, 6, 10, 16), NY, None),  # noon: not quiet
        (at(2026, 6, 10, 12), NY, None),  # 08:00 sharp: the window has ended
        (at(2026, 6, 10, 1), NY, at(2026, 6, 10, 12)),  # 21:00 sharp: quiet
        (at(2026, 6, 10, 13), TOKYO, at(2026, 6, 10, 23)),  # 22:00 JST → 08:00 JST (UTC+9, no DST)
        (at(2026, 6, 10, 16), KOLKATA, at(2026, 6, 11, 2, 30)),  # 21:30 IST → 08:00 IST (UTC+5:30)
        # Fall back (1 Nov 2026): 21:00 EDT the evening before, the window ends 08:00 EST = 13:00 UTC.
        (at(2026, 11, 1, 2), NY, at(2026, 11, 1, 13)),
        # Spring forward (8 Mar 2026): 22:00 EST, the window ends 08:00 EDT = 12:00 UTC.
        (at(2026, 3, 8, 3), NY, at(2026, 3, 8, 12)),
        # Oslo spring forward (29 Mar 2026): 23:00 CET → 08:00 CEST = 06:00 UTC.
        (at(2026, 3, 28, 22), OSLO, at(2026, 3, 29, 6)),
    ],
)
def test_quiet_hours_end_in_local_time(now, zone, until):
    assert quiet_hours_end(now=now, zone=zone, start=Q_START, end=Q_END) == until


def test_quiet_window_within_one_day():
    lunch_start, lunch_end = dt.time(12, 0), dt.time(13, 0)
    assert quiet_hours_end(now=at(2026, 6, 10, 16, 30), zone=NY, start=lunch_start, end=lunch_end) == at(
        2026, 6, 10, 17
    )
    assert quiet_hours_end(now=at(2026, 6, 10, 15), zone=NY, start=lunch_start, end=lunch_end) is None


@pytest.mark.django_db
def test_wall_clock_times_on_dst_days_match_postgresql():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT '2026-03-08 02:30'::timestamp AT TIME ZONE 'America/New_York',"
            " '2026-11-01 01:30'::timestamp AT TIME ZONE 'America/New_York'"
        )
        gap, fold = cursor.fetchone()
    # 02:30 does not exist on 8 March: it lands at 03:30 EDT; 01:30 happens twice on 1 November: the EST one.
    assert wall_to_utc(dt.date(2026, 3, 8), dt.time(2, 30), NY) == gap == at(2026, 3, 8, 7, 30)
    assert wall_to_utc(dt.date(2026, 11, 1), dt.time(1, 30), NY) == fold == at(2026, 11, 1, 6, 30)


def test_rrule_keeps_wall_clock_time_across_dst():
    start = dt.datetime(2026, 3, 27, 9, 0, tzinfo=OSLO)
    seen: list[dt.datetime] = []
    after = start - dt.timedelta(seconds=1)
    while (
        found := rrule_next(rule="FREQ=DAILY;COUNT=4", start=start, zone="Europe/Oslo", after=after)
    ) is not None:
        seen.append(found)
        after = found
    # 09:00 CET (08:00 UTC) before the change on 29 March, 09:00 CEST (07:00 UTC) after; COUNT=4 ends it.
    assert seen == [at(2026, 3, 27, 8), at(2026, 3, 28, 8), at(2026, 3, 29, 7), at(2026, 3, 30, 7)]


# ---------------------------------------------------------------- schedules


@pytest.mark.django_db
def test_local_time_schedule_per_recipient_zone_with_fallback_and_late_policy(workspace, sms_channel):
    ny = audience_create(workspace, 1, timezone_name="America/New_York")[0]
    tokyo = audience_create(workspace, 1, timezone_name="Asia/Tokyo", phone_base=12025551000)[0]
    unknown = audience_create(workspace, 1, timezone_name="Mars/Olympus", phone_base=12025552000)[0]
    segment = tag_segment(workspace)
    # Launched 8 March 2026 at 12:00 UTC for 10:00 local on 8 March (New York's spring-forward day).
    now = at(2026, 3, 8, 12)
    campaign = sms_campaign(
        workspace,
        segment,
        [sms_channel],
        schedule_kind="local_time",
        local_date=dt.date(2026, 3, 8),
        local_time=dt.time(10, 0),
        fallback_timezone="Europe/Oslo",
        late_policy="next_day",
    )
    campaign_launch(campaign=campaign, now=now)
    due = dict(CampaignRecipient.objects.values_list("customer_id", "due_at"))
    assert due[ny.pk] == at(2026, 3, 8, 14)  # 10:00 EDT (the clocks went forward at 02:00)
    assert due[tokyo.pk] == at(2026, 3, 9, 1)  # 10:00 JST was 01:00 UTC on the 8th, already past: next day
    assert due[unknown.pk] == at(2026, 3, 9, 9)  # fallback Oslo, 10:00 CET already past: next day

    skipping = sms_campaign(
        workspace,
        segment,
        [sms_channel],
        name="skip late",
        schedule_kind="local_time",
        local_date=dt.date(2026, 3, 8),
        local_time=dt.time(10, 0),
        late_policy="skip",
    )
    campaign_launch(campaign=skipping, now=now)
    rows = {r.customer_id: r for r in CampaignRecipient.objects.filter(campaign=skipping)}
    assert rows[tokyo.pk].state == "skipped"
    assert rows[tokyo.pk].skip_reason == "too_late"
    assert rows[ny.pk].state == "pending"


@pytest.mark.django_db
def test_recurring_one_run_per_occurrence(workspace, sms_channel):
    audience_create(workspace, 3)
    start = at(2026, 6, 1, 7)
    campaign = sms_campaign(
        workspace,
        tag_segment(workspace),
        [sms_channel],
        schedule_kind="recurring",
        send_at=start,
        rrule="FREQ=DAILY;COUNT=2",
        schedule_timezone="Europe/Oslo",
    )
    campaign_launch(campaign=campaign, now=at(2026, 5, 30, 0))
    campaign.refresh_from_db()
    assert (campaign.state, campaign.next_run_at) == ("scheduled", start)
    assert campaigns_start_due(now=at(2026, 5, 31, 0)) == []
    first = campaigns_start_due(now=at(2026, 6, 1, 7, 1))
    assert len(first) == 1
    assert campaigns_start_due(now=at(2026, 6, 1, 7, 2)) == []  # two ticks never start it twice
    campaign.refresh_from_db()
    assert campaign.next_run_at == at(2026, 6, 2, 7)
    assert len(campaigns_start_due(now=at(2026, 6, 2, 8))) == 1
    campaign.refresh_from_db()
    assert campaign.next_run_at is None
    assert CampaignRun.objects.filter(campaign=campaign).count() == 2
    assert CampaignRecipient.objects.filter(campaign=campaign).count() == 6


# ---------------------------------------------------------------- guards


@pytest.mark.django_db
def test_quiet_hours_hold_in_the_recipients_zone(workspace, sms_channel, email_channel):
    customer = audience_create(
        workspace, 1, timezone_name="Asia/Tokyo", email=True, opted_in=("sms", "email")
    )[0]
    rules = CampaignSettings(workspace=workspace)  # defaults: 21:00-08:00 on SMS and voice
    now = at(2026, 6, 10, 14)  # 23:00 in Tokyo
    decision = send_guard_check(
        customer=customer, channels=[sms_channel], purpose="marketing", now=now, rules=rules, pace=False
    )
    assert (decision.action, decision.reason, decision.until) == ("hold", "quiet_hours", at(2026, 6, 10, 23))
    # Email is not a quiet-hours channel by default; transactional messages are never held.
    assert (
        send_guard_check(
            customer=customer, channels=[email_channel], purpose="marketing", now=now, rules=rules, pace=False
        ).action
        == "send"
    )
    assert (
        send_guard_check(
            customer=customer,
            channels=[sms_channel],
            purpose="transactional",
            now=now,
            rules=rules,
            pace=False,
        ).action
        == "send"
    )


@pytest.mark.django_db
def test_pacing_holds_when_the_senders_bucket_is_empty(workspace, fake_twilio):
    channel = factories.twilio_channel(workspace, fake_twilio, rate_per_second=2)
    customer = audience_create(workspace, 1)[0]
    rules = CampaignSettings(workspace=workspace, quiet_hours_enabled=False)
    actions = [
        send_guard_check(customer=customer, channels=[channel], purpose="marketing", rules=rules).action
        for _ in range(4)
    ]
    assert actions[:2] == ["send", "send"]
    assert actions[2:] == ["hold", "hold"]


@pytest.mark.django_db(transaction=True)
def test_frequency_cap_holds_under_50_concurrent_sends():
    workspace = factories.workspace_create()
    channel = factories.channel_create(workspace, "sms")
    customer = audience_create(workspace, 1)[0]
    CampaignSettings.objects.create(
        workspace=workspace, quiet_hours_enabled=False, frequency_caps={"sms": {"count": 2, "days": 7}}
    )
    celery_app.conf.task_always_eager = False  # the queued sends stay in the broker; no provider here
    barrier = threading.Barrier(50)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        try:
            barrier.wait(30)
            with transaction.atomic():
                fresh = Customer.objects.get(pk=customer.pk)
                decision = send_guard_check(
                    customer=fresh, channels=[channel], purpose="marketing", pace=False
                )
                if decision.action == "send":
                    message_send(
                        workspace=workspace,
                        channel=channel,
                        customer=fresh,
                        body=f"offer {i}",
                        purpose="marketing",
                        idempotency_key=f"cap-test:{i}",
                    )
                outcomes.append(decision.action if decision.action == "send" else decision.reason)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(outcomes) == 50
    assert outcomes.count("send") == 2
    assert outcomes.count("frequency_cap") == 48
    assert Interaction.objects.filter(customer=customer, status="queued").count() == 2


# ---------------------------------------------------------------- content


@pytest.mark.django_db
def test_template_lint_and_sandbox():
    known = {"plan"}
    assert template_lint("Hi {{ first_name | default('there') }}", known_attributes=known) == []
    assert template_lint("{{ attributes.plan }} {{ attributes['plan'] }}", known_attributes=known) == []
    assert template_lint("Hi {{ frist_name }}", known_attributes=known) == [
        "unknown variable 'frist_name' (use one of attributes, display_name, first_name, last_name)"
    ]
    assert template_lint("{{ attributes.tier }}", known_attributes=known) == [
        "unknown attribute 'tier' (not defined for this workspace)"
    ]
    assert template_lint("{% if %}", known_attributes=known)[0].startswith("syntax error on line 1")
    problems = content_lint(
        workspace_id=0,
        content={"sms": {"body": ""}, "email": {"subject": "x"}},
        channel_kinds=["sms", "email"],
    )
    assert problems == {"sms.body": ["required"], "email.text": ["an email needs an HTML or a text part"]}


def test_render_is_sandboxed_and_strict():
    grace = Customer(display_name="Grace Hopper", attributes={"plan": "gold"})
    nobody = Customer(display_name="")
    content = {
        "sms": {"body": "Hi {{ first_name | default('there') }}, {{ attributes.plan | default('free') }}"},
        "email": {"subject": "For {{ last_name | default('you') }}", "html": "<b>{{ first_name }}</b>"},
    }
    assert (
        content_render(
            content=content, kind="sms", customer=grace, purpose="transactional", sms_opt_out_hint=True
        ).body
        == "Hi Grace, gold"
    )
    assert content_render(
        content=content, kind="sms", customer=nobody, purpose="marketing", sms_opt_out_hint=True
    ).body == ("Hi there, free\nReply STOP to opt out")
    evil = Customer(display_name="<script>x</script>")
    assert content_render(
        content=content, kind="email", customer=evil, purpose="marketing", sms_opt_out_hint=False
    ).html == ("<b>&lt;script&gt;x&lt;/script&gt;</b>")
    with pytest.raises(RenderFailed):  # no first name and no default
        content_render(
            content=content, kind="email", customer=nobody, purpose="marketing", sms_opt_out_hint=False
        )
    escape = {"sms": {"body": "{{ attributes.__class__.__mro__[1].__subclasses__() }}"}}
    with pytest.raises(RenderFailed):
        content_render(
            content=escape, kind="sms", customer=grace, purpose="marketing", sms_opt_out_hint=False
        )
