"""Campaign email goes to SendGrid in batches of up to 1,000 personalizations per Mail Send request,
through the real ``sendgrid`` SDK to the fake (which counts requests and personalizations), exactly
once per recipient: each personalization carries our interaction id in ``custom_args`` and its own
rendered text, subject and headers; a 429 sends nobody twice; a paused run's mail waits."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest
from django.test import TestCase
from django.utils.html import escape
from sendgrid.helpers.mail import (
    Content,
    CustomArg,
    Email,
    Header,
    Mail,
    Personalization,
    ReplyTo,
    Substitution,
    To,
)

from channels_outbound.providers.sendgrid import SUBSTITUTION_HTML, SUBSTITUTION_TEXT
from channels_outbound.tasks import send_email_batch
from engagement.campaigns.sending import campaigns_tick
from engagement.campaigns.services import campaign_launch, campaign_pause, campaign_resume, campaign_stats
from engagement.models import CampaignRecipient, CampaignRun, CampaignSettings, Channel, Interaction
from tests.campaigns.helpers import audience_create, sms_campaign, tag_segment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _rules(workspace: Any, settings: Any) -> None:
    CampaignSettings.objects.create(workspace=workspace, quiet_hours_enabled=False)
    settings.OUTBOUND_EMAIL_BATCH_WAIT_SECONDS = 0.2


@pytest.fixture
def fast_email(email_channel: Channel) -> Channel:
    email_channel.config = {**email_channel.config, "rate_per_second": 100_000}  # no pacing holds here
    email_channel.save()
    return email_channel


def tick() -> None:
    with TestCase.captureOnCommitCallbacks(execute=True):
        campaigns_tick(budget_seconds=30)


def run_to_completion(max_ticks: int = 10) -> None:
    for _ in range(max_ticks):
        tick()
        if not CampaignRecipient.objects.filter(state__in=["pending", "held", "claimed", "sending"]).exists():
            return
    raise AssertionError("campaign did not finish")


def _campaign(workspace: Any, channel: Channel) -> Any:
    return sms_campaign(
        workspace,
        tag_segment(workspace),
        [channel],
        content={
            "email": {
                "subject": "Spring sale, {{ first_name | default('friend') }}",
                "html": "<p>Hi {{ first_name }}, 20% off.</p>",
                "text": "Hi {{ first_name }}, 20% off.",
            }
        },
    )


def test_1200_recipients_in_two_requests_each_once(workspace, fast_email, fake_sendgrid, settings):
    settings.CAMPAIGN_EMAIL_MAX_QUEUED = 5000
    people = audience_create(workspace, 1200, email=True, opted_in=("email",), name="Pat")
    campaign = _campaign(workspace, fast_email)
    campaign_launch(campaign=campaign)
    # The scheduler queues every message (their send tasks held back), then one flush sends them. Rows
    # that found no pacing token this tick are held until their token's time (a fraction of a second at
    # the sender's rate) and queued by a later tick: tick until none is pending or held.
    for _ in range(50):
        with TestCase.captureOnCommitCallbacks(execute=False):
            campaigns_tick(budget_seconds=30)
        if not CampaignRecipient.objects.filter(campaign=campaign, state__in=["pending", "held"]).exists():
            break
        time.sleep(0.2)
    assert send_email_batch(fast_email.pk) == 1200
    run_to_completion()

    assert fake_sendgrid.requests == 2
    assert [len(m["personalizations"]) for m in fake_sendgrid.messages] == [1000, 200]
    assert fake_sendgrid.personalizations == 1200
    mails = fake_sendgrid.mails()
    iids = [m["custom_args"]["iid"] for m in mails]
    assert len(set(iids)) == 1200  # one personalization per recipient, each with its own interaction id
    sent = {str(i.pk): i for i in Interaction.objects.filter(metadata__campaign_id=campaign.pk)}
    assert set(iids) == set(sent)
    by_address = {p.identities.get(kind="email").value: p for p in people[:3]}
    for mail in mails:
        interaction = sent[mail["custom_args"]["iid"]]
        assert mail["to"] == interaction.customer_address
        assert interaction.status == "sent"
        assert interaction.provider_message_id == f"{mail['x_message_id']}.{interaction.pk}"
        assert mail["headers"]["Message-ID"] == f"<{interaction.email_message_id}>"
        assert mail["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert mail["headers"]["Auto-Submitted"] == "auto-generated"
        if mail["to"] in by_address:
            assert mail["subject"] == "Spring sale, Pat"
            assert mail["text"] == "Hi Pat, 20% off."
            assert mail["html"] == "<p>Hi Pat, 20% off.</p>"
    assert len({m["headers"]["List-Unsubscribe"] for m in mails}) == 1200
    assert CampaignRun.objects.get(campaign=campaign).state == "completed"
    assert campaign_stats(campaign=campaign)["total"]["sent"] == 1200


def test_a_429_is_retried_without_sending_anyone_twice(workspace, fast_email, fake_sendgrid, settings):
    settings.OUTBOUND_RETRY_BASE_SECONDS = 0.1
    settings.CAMPAIGN_REQUEUE_AFTER_SECONDS = 0
    audience_create(workspace, 30, email=True, opted_in=("email",))
    campaign = _campaign(workspace, fast_email)
    fake_sendgrid.fail_next.append(429)
    campaign_launch(campaign=campaign)
    run_to_completion()
    assert [status for status, _ in fake_sendgrid.rejected] == [429]  # the whole batch refused once
    assert fake_sendgrid.requests == 1
    assert fake_sendgrid.personalizations == 30
    assert len({m["custom_args"]["iid"] for m in fake_sendgrid.mails()}) == 30
    assert campaign_stats(campaign=campaign)["total"]["sent"] == 30


def test_a_paused_run_mail_waits_at_the_batch_and_resume_sends_it_once(workspace, fast_email, fake_sendgrid):
    audience_create(workspace, 40, email=True, opted_in=("email",))
    campaign = _campaign(workspace, fast_email)
    campaign_launch(campaign=campaign)
    # Queue the messages without their send tasks running, then pause before any batch goes out.
    with TestCase.captureOnCommitCallbacks(execute=False):
        campaigns_tick(budget_seconds=30)
    assert Interaction.objects.filter(metadata__campaign_id=campaign.pk, status="queued").count() == 40
    campaign_pause(campaign=campaign)
    from channels_outbound.services import outbound_email_batch_send

    report = outbound_email_batch_send(channel=fast_email)
    assert (report.claimed, report.held, fake_sendgrid.requests) == (0, 40, 0)
    with TestCase.captureOnCommitCallbacks(execute=True):
        campaign_resume(campaign=campaign)
    run_to_completion()
    assert fake_sendgrid.requests == 1
    assert fake_sendgrid.personalizations == 40


def test_the_batch_payload_is_the_json_the_sdk_helpers_build():
    """The Mail Send body is written as plain dicts for speed; it must be exactly what the SDK's helpers
    (Mail, Personalization, Header, CustomArg, Substitution…) produce, for every shape of message."""
    from channels_outbound.base import OutboundMessage
    from channels_outbound.providers.sendgrid import SendGridSender

    for config in ({"api_key": "k", "from_name": "Newsy"}, {"api_key": "k"}):
        channel = Channel(pk=1, kind="email", provider="sendgrid", name="News", address="news@x.example")
        channel.config = config
        messages = [
            OutboundMessage(
                interaction_id=i,
                channel=channel,
                to=f"p{i}@bench.example",
                body=f"Hi {i}\nline & <b>" if i % 4 else "",
                status_callback_url="",
                subject=f"Sale {i}" if i % 2 else "",
                headers={"Message-ID": f"<m{i}@x>", "List-Unsubscribe": "<https://u>"} if i % 3 else {},
                reply_to="reply@in.x.example" if config.get("from_name") else "",
                html="" if i % 2 else "<p>x</p>",
            )
            for i in range(9)
        ]
        sender = SendGridSender()
        assert sender.build_batch_payload(messages) == _batch_payload_sdk(messages)


def _batch_payload_sdk(messages: Sequence[Any]) -> dict[str, Any]:
    """``SendGridSender.build_batch_payload`` built with the SDK's helpers (the reference it must equal)."""
    channel = messages[0].channel
    mail = Mail()
    mail.from_email = Email(channel.address, channel.config.get("from_name") or channel.name)
    for message in reversed(messages):  # the SDK adds each personalization at the front
        personalization = Personalization()
        personalization.add_to(To(message.to))
        personalization.subject = message.subject or channel.name
        for name, value in message.headers.items():
            personalization.add_header(Header(name, value))
        personalization.add_custom_arg(CustomArg("iid", str(message.interaction_id)))
        html = message.html or "<p>" + escape(message.body).replace("\n", "<br>\n") + "</p>"
        personalization.add_substitution(Substitution(SUBSTITUTION_TEXT, message.body or " "))
        personalization.add_substitution(Substitution(SUBSTITUTION_HTML, html))
        mail.add_personalization(personalization)
    mail.add_content(Content("text/plain", SUBSTITUTION_TEXT))
    mail.add_content(Content("text/html", SUBSTITUTION_HTML))
    if messages[0].reply_to:
        mail.reply_to = ReplyTo(messages[0].reply_to)
    payload: dict[str, Any] = mail.get()
    return payload
