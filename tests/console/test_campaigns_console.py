"""Console for marketers: campaigns. The list with state and progress, the editor (every field round-trips
through the form), audience counts, lint problems shown, preview as a customer, test send, launch,
approval rules, pause/resume/cancel, live progress, recipients with reasons, CSV export, the roles, the
marketer's home, query counts that do not grow with the data, and the demo's campaigns on these pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client, TestCase
from django.urls import reverse

from engagement.campaigns.sending import campaigns_tick
from engagement.models import (
    Campaign,
    CampaignRecipient,
    CampaignSettings,
    Channel,
    Interaction,
    Role,
    Workspace,
)
from engagement.services.demo import DEMO_CAMPAIGN_DONE, DEMO_CAMPAIGN_SCHEDULED, demo_workspace_seed
from tests import factories
from tests.campaigns.helpers import audience_create, sms_campaign, tag_segment

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def _no_quiet_hours(workspace: Workspace) -> None:
    CampaignSettings.objects.create(workspace=workspace, quiet_hours_enabled=False)


@pytest.fixture
def marketer(workspace: Workspace) -> Any:
    return factories.member(workspace, Role.MARKETER)


@pytest.fixture
def sms(workspace: Workspace) -> Channel:
    return factories.channel_create(workspace, "sms", name="Promo line")


@pytest.fixture
def email(workspace: Workspace) -> Channel:
    return factories.channel_create(workspace, "email", name="News", address="news@shop.example")


def form(segment_id: int, channels: list[Channel], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Spring sale",
        "description": "20% off",
        "purpose": "marketing",
        "segment": str(segment_id),
        "prefer_customer_channel": "on",
        "sms_body": "Hi {{ first_name | default('there') }}, 20% off today.",
        "email_subject": "Sale for {{ first_name | default('you') }}",
        "email_html": "<p>Hi {{ first_name | default('there') }}</p>",
        "email_text": "",
        "voice_message": "",
        "webchat_message": "",
        "sms_media_urls": "",
        "holdout_percent": "0",
        "schedule_kind": "now",
        "send_at": "",
        "rrule": "",
        "schedule_timezone": "UTC",
        "local_date": "",
        "local_time": "",
        "fallback_timezone": "UTC",
        "late_policy": "next_day",
        "attribution_hours": "72",
        "goal_event": "",
        "goal_window_hours": "72",
        "variant_0_key": "",
        "variant_0_weight": "",
        "variant_1_key": "",
        "variant_1_weight": "",
    }
    for slot, channel in enumerate(channels):
        data[f"channel_{slot}"] = str(channel.pk)
    data.update(extra)
    return data


def tick() -> None:
    with TestCase.captureOnCommitCallbacks(execute=True):
        campaigns_tick(budget_seconds=5)


def test_marketers_land_on_campaigns_agents_read_but_never_write(workspace, marketer, sms):
    assert _client(marketer).get(reverse("console:home"))["Location"] == reverse("console:campaigns")
    agent = _client(factories.member(workspace, Role.AGENT))
    listing = agent.get(reverse("console:campaigns"))
    assert listing.status_code == 200
    assert 'href="/campaigns/"' in listing.content.decode()  # the nav link
    assert "New campaign" not in listing.content.decode()
    assert agent.get(reverse("console:campaign_new")).status_code == 403
    segment = tag_segment(workspace)
    campaign = sms_campaign(workspace, segment, [sms])
    assert agent.get(reverse("console:campaign", args=[campaign.pk])).status_code == 200
    assert (
        agent.post(reverse("console:campaign", args=[campaign.pk]), form(segment.pk, [sms])).status_code
        == 403
    )
    launch = reverse("console:campaign_action", args=[campaign.pk, "launch"])
    assert agent.post(launch).status_code == 403
    campaign.refresh_from_db()
    assert campaign.state == "draft"


def test_editor_round_trips_every_field(workspace, marketer, sms, email):
    audience_create(workspace, 3, email=True, opted_in=("sms", "email"))
    segment = tag_segment(workspace)
    client = _client(marketer)
    page = client.get(reverse("console:campaign_new") + f"?segment={segment.pk}").content.decode()
    assert "data-sms-input" in page
    assert "console/campaigns.js" in page
    data = form(
        segment.pk,
        [sms, email],
        schedule_kind="local_time",
        local_date="2030-03-10",
        local_time="10:30",
        fallback_timezone="America/New_York",
        late_policy="send_now",
        holdout_percent="10",
        variant_0_key="A",
        variant_0_weight="70",
        variant_1_key="B",
        variant_1_weight="30",
        variant_1_sms_body="Hey {{ first_name | default('you') }}: 30% off!",
        sms_media_urls="https://cdn.example/a.png\n",
    )
    resp = client.post(reverse("console:campaign_new"), data)
    assert resp.status_code == 302, resp.content.decode()[:2000]
    campaign = Campaign.objects.get(workspace=workspace)
    assert resp["Location"] == reverse("console:campaign", args=[campaign.pk])
    assert campaign.channel_ids == [sms.pk, email.pk]
    assert campaign.content == {
        "sms": {"body": data["sms_body"], "media_urls": ["https://cdn.example/a.png"]},
        "email": {"subject": data["email_subject"], "html": data["email_html"]},
    }
    assert campaign.variants == [
        {"key": "A", "weight": 70, "content": {}},
        {"key": "B", "weight": 30, "content": {"sms": {"body": data["variant_1_sms_body"]}}},
    ]
    assert (campaign.holdout_percent, campaign.schedule_kind, campaign.late_policy) == (
        10,
        "local_time",
        "send_now",
    )
    assert (campaign.local_date, campaign.local_time) == (dt.date(2030, 3, 10), dt.time(10, 30))
    assert campaign.fallback_timezone == "America/New_York"
    assert campaign.created_by_id == marketer.pk

    # A send time is read in the schedule's zone.
    resp = client.post(
        resp["Location"],
        {**data, "schedule_kind": "at", "send_at": "2030-07-01T09:00", "schedule_timezone": "Europe/Oslo"},
    )
    assert resp.status_code == 302
    campaign.refresh_from_db()
    assert campaign.send_at == dt.datetime(2030, 7, 1, 7, 0, tzinfo=dt.UTC)
    page = client.get(resp["Location"]).content.decode()
    assert 'value="2030-07-01T09:00"' in page
    assert "Europe/Oslo" in page
    assert "data-audience-count" in page
    assert ">3<" in page

    refused = client.post(resp["Location"], {**data, "holdout_percent": "90"})
    assert refused.status_code == 400
    assert "holdout_percent is 0-50" in refused.content.decode()
    assert 'value="90"' in refused.content.decode()  # what was typed is kept


def test_audience_fragment_counts_the_segment_and_reach(workspace, marketer):
    audience_create(workspace, 4, opted_in=("sms",))
    audience_create(workspace, 2, phone_base=12025560000, opted_in=())
    segment = tag_segment(workspace)
    html = (
        _client(marketer)
        .get(reverse("console:campaign_audience"), {"segment": str(segment.pk), "purpose": "marketing"})
        .content.decode()
    )
    assert "<strong data-audience-count>6</strong>" in html
    assert "sms: 4 reachable" in html
    html = (
        _client(marketer)
        .get(reverse("console:campaign_audience"), {"segment": str(segment.pk), "purpose": "transactional"})
        .content.decode()
    )
    assert "sms: 6 reachable" in html


def test_lint_problems_are_shown_and_block_launch(workspace, marketer, sms):
    audience_create(workspace, 2)
    campaign = sms_campaign(
        workspace, tag_segment(workspace), [sms], content={"sms": {"body": "Hi {{ frist_name }}"}}
    )
    client = _client(marketer)
    page = client.get(reverse("console:campaign", args=[campaign.pk])).content.decode()
    assert 'data-lint="sms.body"' in page
    assert "unknown variable &#x27;frist_name&#x27;" in page
    resp = client.post(reverse("console:campaign_action", args=[campaign.pk, "launch"]), follow=True)
    assert "The content has problems: sms.body: unknown variable" in resp.content.decode()
    campaign.refresh_from_db()
    assert campaign.state == "draft"


def test_preview_as_a_customer_and_a_test_send(workspace, marketer, sms, email):
    people = audience_create(workspace, 2, email=True, name="Ada Lovelace")
    campaign = sms_campaign(workspace, tag_segment(workspace), [sms, email])
    client = _client(marketer)
    html = client.post(
        reverse("console:campaign_preview", args=[campaign.pk]), {"customer_id": people[0].pk}
    ).content.decode()
    assert "Hi Ada, 20% off today.\nReply STOP to opt out" in html
    assert "Sale, Ada" in html
    other = client.post(
        reverse("console:campaign_preview", args=[campaign.pk]), {"customer_id_other": "999999"}
    ).content.decode()
    assert "Choose a customer of this workspace." in other

    with TestCase.captureOnCommitCallbacks(execute=True):
        resp = client.post(
            reverse("console:campaign_test", args=[campaign.pk]),
            {"addresses": "+12025559999, me@shop.example", "as_customer_id": str(people[1].pk)},
            follow=True,
        )
    assert "Test sent to +12025559999, me@shop.example." in resp.content.decode()
    tests = Interaction.objects.filter(metadata__test=True).order_by("pk")
    assert [t.customer_address for t in tests] == ["+12025559999", "me@shop.example"]
    assert tests[0].body.startswith("Hi Ada, 20% off today.")
    assert tests[1].metadata["email"]["subject"] == "[Test] Sale, Ada"
    assert not CampaignRecipient.objects.exists()  # never in the stats


def test_launch_progress_pause_resume_cancel_recipients_and_export(workspace, marketer, sms):
    people = audience_create(workspace, 5)
    people[0].consent_events.all().delete()
    campaign = sms_campaign(workspace, tag_segment(workspace), [sms])
    client = _client(marketer)
    url = reverse("console:campaign", args=[campaign.pk])
    resp = client.post(reverse("console:campaign_action", args=[campaign.pk, "launch"]), follow=True)
    assert "Launched." in resp.content.decode()
    campaign.refresh_from_db()
    assert campaign.state == "running"
    progress = client.get(reverse("console:campaign_progress", args=[campaign.pk])).content.decode()
    assert 'hx-trigger="every 2s"' in progress  # polled while it runs
    assert '<dd data-stat="targeted">5</dd>' in progress

    client.post(reverse("console:campaign_action", args=[campaign.pk, "pause"]))
    campaign.refresh_from_db()
    assert campaign.state == "paused"
    page = client.get(url).content.decode()
    assert 'data-action="resume"' in page
    assert 'data-action="pause"' not in page
    client.post(reverse("console:campaign_action", args=[campaign.pk, "resume"]))
    tick()
    tick()
    campaign.refresh_from_db()
    assert campaign.state == "completed"
    progress = client.get(reverse("console:campaign_progress", args=[campaign.pk])).content.decode()
    assert "hx-trigger" not in progress  # finished: no more polling
    # A page drawn while it ran reloads itself on its next poll (its header and buttons said "running").
    poll = client.get(
        reverse("console:campaign_progress", args=[campaign.pk]), {"state": "running"}, HTTP_HX_REQUEST="true"
    )
    assert poll.status_code == 204
    assert poll["HX-Refresh"] == "true"
    same = client.get(
        reverse("console:campaign_progress", args=[campaign.pk]),
        {"state": "completed"},
        HTTP_HX_REQUEST="true",
    )
    assert same.status_code == 200
    assert '<dd data-stat="sent">4</dd>' in progress
    assert 'data-skip-reason="consent:' in progress

    recipients = client.get(reverse("console:campaign_recipients", args=[campaign.pk]), {"state": "skipped"})
    html = recipients.content.decode()
    assert html.count("data-recipient=") == 1
    assert "<code data-skip-reason>consent:" in html
    export = client.get(reverse("console:campaign_export", args=[campaign.pk]))
    lines = b"".join(export.streaming_content).decode().splitlines()  # type: ignore[attr-defined]
    assert lines[0].startswith("run_id,customer_id")
    assert len(lines) == 6

    done = client.post(reverse("console:campaign_action", args=[campaign.pk, "cancel"]), follow=True)
    assert "a completed campaign cannot be cancelled" in done.content.decode()


def test_approval_where_required_never_by_the_author(workspace, sms):
    CampaignSettings.objects.filter(workspace=workspace).update(approval_threshold=2)
    audience_create(workspace, 3)
    author = factories.member(workspace, Role.ADMIN)
    campaign = sms_campaign(workspace, tag_segment(workspace), [sms])
    Campaign.objects.filter(pk=campaign.pk).update(created_by=author)
    client = _client(author)
    page = client.get(reverse("console:campaign", args=[campaign.pk])).content.decode()
    assert "data-needs-approval" in page
    assert ">Approve</button>" not in page  # not for the author
    resp = client.post(reverse("console:campaign_action", args=[campaign.pk, "launch"]), follow=True)
    assert "must approve it" in resp.content.decode()
    resp = client.post(reverse("console:campaign_action", args=[campaign.pk, "approve"]), follow=True)
    assert "the author cannot approve their own campaign" in resp.content.decode()

    other = _client(factories.member(workspace, Role.ADMIN))
    assert ">Approve</button>" in other.get(reverse("console:campaign", args=[campaign.pk])).content.decode()
    other.post(reverse("console:campaign_action", args=[campaign.pk, "approve"]))
    resp = client.post(reverse("console:campaign_action", args=[campaign.pk, "launch"]), follow=True)
    assert "Launched." in resp.content.decode()
    assert "data-approved" in resp.content.decode()


def _campaigns(workspace: Workspace, sms: Channel, n: int) -> None:
    segment = tag_segment(workspace, tag=f"t{n}")
    for i in range(n):
        campaign = sms_campaign(workspace, segment, [sms], name=f"c{n}-{i}")
        if i % 2:
            from engagement.campaigns.services import campaign_launch

            campaign_launch(campaign=campaign)


def test_pages_take_a_fixed_number_of_queries(workspace, marketer, sms, django_assert_max_num_queries):
    audience_create(workspace, 3, tag="t2")
    audience_create(workspace, 20, tag="t6", phone_base=12025560000)
    client = _client(marketer)
    _campaigns(workspace, sms, 2)
    client.get(reverse("console:campaigns"))  # warm (session, content types)
    with django_assert_max_num_queries(9) as few:
        client.get(reverse("console:campaigns"))
    _campaigns(workspace, sms, 6)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("console:campaigns"))

    small = Campaign.objects.filter(name="c2-1").get()
    big = Campaign.objects.filter(name="c6-1").get()
    tick()
    counts = []
    for campaign in (small, big):
        for name in ("console:campaign", "console:campaign_progress", "console:campaign_recipients"):
            with django_assert_max_num_queries(40) as captured:
                assert client.get(reverse(name, args=[campaign.pk])).status_code == 200
            counts.append(len(captured.captured_queries))
    assert counts[:3] == counts[3:], counts  # 3 recipients or 20: the same queries


def test_demo_campaigns_look_right(client: Client) -> None:
    seed = demo_workspace_seed()
    done = Campaign.objects.get(workspace=seed.workspace, name=DEMO_CAMPAIGN_DONE)
    scheduled = Campaign.objects.get(workspace=seed.workspace, name=DEMO_CAMPAIGN_SCHEDULED)
    marketer = factories.member(seed.workspace, Role.MARKETER)
    client.force_login(marketer)
    listing = client.get(reverse("console:campaigns")).content.decode()
    assert DEMO_CAMPAIGN_DONE in listing
    assert DEMO_CAMPAIGN_SCHEDULED in listing
    assert "2 sent · 2/2 done" in listing
    assert "FREQ=WEEKLY;BYDAY=MO;BYHOUR=10;BYMINUTE=0" in listing
    assert "America/New_York" in listing
    page = client.get(reverse("console:campaign", args=[done.pk])).content.decode()
    assert '<dd data-stat="delivered">2</dd>' in page
    assert '<dd data-stat="replied">0</dd>' not in page
    assert 'id="chart-states"' in page
    assert "vendor/chart.umd.js" in page
    page = client.get(reverse("console:campaign", args=[scheduled.pk])).content.decode()
    assert "Scheduled: the audience is taken when the first run starts" in page
    assert 'data-action="pause"' in page
