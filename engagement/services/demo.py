"""The demo workspace `make run` seeds. Idempotent: running it again changes nothing."""

from __future__ import annotations

import secrets
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from customers.consent import consent_record
from customers.events import customer_event_record
from customers.models import ConsentEvent, Identity
from customers.resolution import customer_resolve_identifiers
from customers.services import Identifier
from engagement.models import Attachment, AutomationRule, Channel, Interaction, Membership, Role, Workspace
from engagement.models.automation import MatchType, Trigger
from engagement.models.conversations import Direction, InteractionStatus
from engagement.segments.services import segment_create

from .conversations import conversation_find_or_open, conversation_touch
from .email_threading import message_id_generate
from .timeline import interaction_record_inbound

_OLD_DEMO_GREETING = "Hi! Ask us anything - we usually answer within minutes."
DEMO_PASSWORD = "demo-pass-123"  # noqa: S105 - printed for the local demo only
DEMO_USERS = [
    ("admin", Role.ADMIN, "Ada Admin"),
    ("agent", Role.AGENT, "Alex Agent"),
    ("marketer", Role.MARKETER, "Mia Marketer"),
]
DEMO_CUSTOMERS = [
    ("Grace Hopper", "+15005550101", ["Hi, is my order shipped?", "Thanks!"]),
    ("Alan Turing", "+15005550102", ["What are your opening hours?"]),
    ("Katherine Johnson", "+15005550103", ["Can I change my delivery address?"]),
    ("Linus Pauling", "+15005550104", ["HOURS"]),
]

# What Alex Agent answered to each demo customer's first message (the rest get a generic answer).
DEMO_ANSWERS = {
    "Hi, is my order shipped?": "Hi Grace, yes - order 1001 left our warehouse this morning.",
    "What are your opening hours?": "Hi Alan, we're open Monday to Friday, 9:00 to 17:00.",
    "Can I change my delivery address?": "Hi Katherine, yes - send us the new address.",
    "HOURS": "Hi Linus, we're open Monday to Friday, 9:00 to 17:00.",
}


@dataclass(frozen=True)
class DemoSeed:
    workspace: Workspace
    sms_channel: Channel
    logins: list[tuple[str, str, str]]


def demo_workspace_seed() -> DemoSeed:
    User = get_user_model()
    with transaction.atomic():
        workspace, _ = Workspace.objects.get_or_create(
            slug="demo",
            defaults={"name": "Demo Workspace", "help_text": "Demo Co: reply STOP to opt out, or call us."},
        )
        logins = []
        for username, role, full_name in DEMO_USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                first, last = full_name.split(" ", 1)
                user = User.objects.create_user(
                    username=username,
                    password=DEMO_PASSWORD,
                    first_name=first,
                    last_name=last,
                    email=f"{username}@demo.example",
                    is_staff=role == Role.ADMIN,
                    is_superuser=role == Role.ADMIN,
                )
            Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": role})
            logins.append((username, DEMO_PASSWORD, role.value))

        live = bool(
            settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN and settings.TWILIO_PHONE_NUMBER
        )
        channel, _ = Channel.objects.get_or_create(
            workspace=workspace,
            kind="sms",
            address=settings.TWILIO_PHONE_NUMBER if live else "+15005550006",
            defaults={
                "name": "Main SMS line",
                "provider": "twilio" if live else "sandbox",
            },
        )
        webchat_origins = sorted({settings.PUBLIC_BASE_URL, "http://127.0.0.1:8000", "http://localhost:8000"})
        webchat, _ = Channel.objects.get_or_create(
            workspace=workspace,
            kind="webchat",
            address="website",
            defaults={
                "name": "Website chat",
                "provider": "webchat",
                "config": {
                    "allowed_origins": webchat_origins,
                    # /webchat/demo/ is served by the platform itself, on whatever host and port.
                    "allow_platform_origin": True,
                    "identity_secret": secrets.token_urlsafe(32),
                    "title": "Chat with Demo Co",
                    # No promise of its own: the widget says when to expect a reply (reply_time_text
                    # when nobody is online), and the two must not disagree.
                    "greeting": "Hi! Ask us anything.",
                    "reply_time_text": "We usually reply within a few hours.",
                },
            },
        )
        if webchat.config.get("allow_platform_origin") is not True:  # seeded by an older version
            webchat.config = {**webchat.config, "allow_platform_origin": True}
            webchat.save(update_fields=["config"])
        if webchat.config.get("greeting") == _OLD_DEMO_GREETING:  # it promised minutes, the notice hours
            webchat.config = {**webchat.config, "greeting": "Hi! Ask us anything."}
            webchat.save(update_fields=["config"])
        AutomationRule.objects.get_or_create(
            workspace=workspace,
            name="Welcome a new chat",
            defaults={
                "trigger": Trigger.CONVERSATION_OPENED,
                "channel_kind": "webchat",
                "match_type": MatchType.ANY,
                "template": "Thanks for writing to {{ workspace.name }}! An agent will answer here.",
            },
        )
        AutomationRule.objects.get_or_create(
            workspace=workspace,
            name="Opening hours",
            defaults={
                "trigger": Trigger.MESSAGE_RECEIVED,
                "channel_kind": "sms",
                "match_type": MatchType.CONTAINS,
                "keywords": "hours,opening",
                "template": "Hi {{ customer.display_name|default:'there' }}! We're open Mon-Fri 9:00-17:00.",
            },
        )
        AutomationRule.objects.get_or_create(
            workspace=workspace,
            name="Welcome a new conversation",
            defaults={
                "trigger": Trigger.CONVERSATION_OPENED,
                "channel_kind": "sms",
                "match_type": MatchType.ANY,
                "enabled": False,
                "template": "Thanks for writing to {{ workspace.name }}: an agent will answer shortly.",
            },
        )

    now = timezone.now()
    agent = User.objects.filter(username="agent").first()
    for i, (name, phone, messages) in enumerate(DEMO_CUSTOMERS):
        for j, body in enumerate(messages):
            at = now - timedelta(hours=len(DEMO_CUSTOMERS) - i, minutes=10 - j)
            # One transaction per message with its answer: automations run after commit, and find the
            # agent's answer there, so the bot never answers after a human (automation.human_has_answered).
            with transaction.atomic():
                _demo_message_seed(
                    workspace=workspace,
                    channel=channel,
                    agent=agent,
                    index=(i, j),
                    name=name,
                    phone=phone,
                    body=body,
                    at=at,
                )
    demo_email_thread_seed(workspace=workspace, at=now)
    demo_voice_channel_seed(workspace=workspace, sms_channel=channel, at=now)
    demo_mms_seed(sms_channel=channel, at=now)
    demo_segment_seed(workspace=workspace, at=now)
    demo_campaigns_seed(workspace=workspace, sms_channel=channel, at=now)
    demo_teamwork_seed(workspace=workspace, channels=[channel, webchat])
    demo_journeys_seed(workspace=workspace, sms_channel=channel)
    return DemoSeed(workspace=workspace, sms_channel=channel, logins=logins)


def _demo_message_seed(
    *,
    workspace: Workspace,
    channel: Channel,
    agent: Any,
    index: tuple[int, int],
    name: str,
    phone: str,
    body: str,
    at: datetime,
) -> None:
    """One SMS of a demo customer; the first of each gets Alex Agent's answer two minutes later."""
    i, j = index
    interaction, created = interaction_record_inbound(
        channel=channel,
        sender=Identifier("phone", phone),
        body=body,
        provider_message_id=f"SMDEMO{i:02d}{j:02d}",
        occurred_at=at,
        sender_name=name,
    )
    if created and j == 0 and interaction.conversation is not None:
        reply_at = at + timedelta(minutes=2)
        answer = DEMO_ANSWERS.get(body, f"Hi {name.split()[0]}, thanks for your message - we're on it.")
        Interaction.objects.create(
            workspace=workspace,
            customer=interaction.customer,
            conversation=interaction.conversation,
            channel=channel,
            direction=Direction.OUTBOUND,
            body=answer,
            author=agent,
            customer_address=phone,
            status=InteractionStatus.DELIVERED,
            status_changed_at=reply_at,
            provider_message_id=f"SBDEMO{i:02d}{j:02d}",
            created_at=reply_at,
        )
        conversation_touch(conversation=interaction.conversation, at=reply_at, preview=answer, reopen=False)


@dataclass(frozen=True)
class _DemoThread:
    message_id: str
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()


def demo_email_thread_seed(*, workspace: Workspace, at: datetime) -> None:
    """A sandbox email channel and one thread with Grace Hopper, who also writes by SMS: her mail,
    an agent's answer (threaded by Message-ID) and her reply that quotes it. Idempotent."""
    channel, _ = Channel.objects.get_or_create(
        workspace=workspace,
        kind="email",
        address="support@demo.example",
        defaults={
            "name": "Support email",
            "provider": "sandbox",
            "config": {"inbound_domain": "inbound.demo.example"},
        },
    )
    grace = customer_resolve_identifiers(
        workspace=workspace,
        identifiers=[Identifier("phone", DEMO_CUSTOMERS[0][1]), Identifier("email", "grace@example.com")],
        channel_kind="email",
        display_name="Grace Hopper",
    ).customer
    subject = "Invoice for order 1001"
    first_at, reply_at, answer_at = (
        at - timedelta(hours=6),
        at - timedelta(hours=5),
        at - timedelta(minutes=30),
    )
    first, created = interaction_record_inbound(
        channel=channel,
        sender=Identifier("email", "grace@example.com"),
        body="Hello,\n\nthe invoice for order 1001 lists two keyboards, I ordered one.\n\nGrace",
        provider_message_id=f"{channel.pk}:demo-1001@example.com",
        occurred_at=first_at,
        sender_name="Grace Hopper",
        subject=subject,
        thread=_DemoThread(message_id="demo-1001@example.com", recipients=(channel.address,)),
        metadata={"email": {"subject": subject, "from": "Grace Hopper <grace@example.com>"}},
    )
    if not created or first.conversation is None or first.customer_id != grace.pk:
        return
    ours = Interaction.objects.create(
        workspace=workspace,
        customer=grace,
        conversation=first.conversation,
        channel=channel,
        direction=Direction.OUTBOUND,
        author=get_user_model().objects.filter(username="agent").first(),
        body="Hi Grace,\n\nsorry about that - we corrected the invoice; you will only pay for one keyboard.",
        customer_address="grace@example.com",
        status=InteractionStatus.DELIVERED,
        status_changed_at=reply_at,
        provider_message_id="SBDEMOMAIL1",
        created_at=reply_at,
    )
    ours.email_message_id = message_id_generate(channel=channel, interaction_id=ours.pk)
    ours.metadata = {
        "email": {
            "subject": f"Re: {subject}",
            "in_reply_to": first.email_message_id,
            "references": [first.email_message_id],
            "message_id": ours.email_message_id,
        }
    }
    ours.save(update_fields=["email_message_id", "metadata"])
    interaction_record_inbound(
        channel=channel,
        sender=Identifier("email", "grace@example.com"),
        body=(
            "Thank you, that was quick!\n\nGrace\n\nOn Monday, Support <support@demo.example> wrote:\n"
            "> Hi Grace,\n>\n> sorry about that - we corrected the invoice."
        ),
        provider_message_id=f"{channel.pk}:demo-1001-re@example.com",
        occurred_at=answer_at,
        sender_name="Grace Hopper",
        subject=f"Re: {subject}",
        thread=_DemoThread(
            message_id="demo-1001-re@example.com", references=(first.email_message_id, ours.email_message_id)
        ),
        metadata={
            "email": {
                "subject": f"Re: {subject}",
                "from": "Grace Hopper <grace@example.com>",
                "html": '<p>Thank you, that was quick!</p><p>Grace</p><div class="gmail_quote">On Monday, '
                "Support wrote:<blockquote>Hi Grace, we corrected the invoice.</blockquote></div>",
            }
        },
    )


def demo_voice_channel_seed(*, workspace: Workspace, sms_channel: Channel, at: datetime) -> Channel:
    """A voice line (Twilio when configured, else the sandbox), the agent on duty, a "missed call → SMS"
    rule (off), and a call from Grace Hopper that went to voicemail, on her timeline beside her SMS."""
    from .calls import demo_voice_seed

    live = bool(settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN and settings.TWILIO_PHONE_NUMBER)
    voice, _ = Channel.objects.get_or_create(
        workspace=workspace,
        kind="voice",
        address=settings.TWILIO_PHONE_NUMBER if live else "+15005550006",
        defaults={
            "name": "Main phone line",
            "provider": "twilio" if live else "sandbox",
            "config": {
                "call_flow": {
                    "greeting": f"Thanks for calling {workspace.name}.",
                    "timezone": "UTC",
                    "hours": {day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
                }
            },
        },
    )
    Membership.objects.filter(workspace=workspace, user__username="agent", phone="").update(
        phone="+15005550199", on_duty=True
    )
    AutomationRule.objects.get_or_create(
        workspace=workspace,
        name="Sorry we missed your call",
        defaults={
            "trigger": Trigger.CALL_MISSED,
            "channel_kind": "voice",
            "match_type": MatchType.ANY,
            "reply_channel": sms_channel,
            "enabled": False,
            "template": "Sorry we missed your call - we'll ring you back shortly. {{ workspace.name }}",
        },
    )
    _, grace_phone, _ = DEMO_CUSTOMERS[0]
    demo_voice_seed(channel=voice, caller=grace_phone, at=at - timedelta(minutes=30))
    return voice


def _demo_png(width: int = 160, height: int = 100) -> bytes:
    """A small striped PNG made here, so the demo MMS needs no network."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((40, 110 + (x // 20) * 15 % 140, 200)) for x in range(width))
        for _ in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def demo_mms_seed(*, sms_channel: Channel, at: datetime) -> None:
    """Grace Hopper sends a photo by MMS: on her timeline with her SMS, email thread and voicemail."""
    interaction, created = interaction_record_inbound(
        channel=sms_channel,
        sender=Identifier("phone", "+15005550101"),
        body="Here is a photo of the keyboard that arrived.",
        provider_message_id="MMDEMO0001",
        occurred_at=at - timedelta(minutes=20),
        sender_name="Grace Hopper",
        # The shape a real inbound MMS records; the picture itself is stored below, not fetched.
        metadata={"media": [{"url": "", "content_type": "image/png"}], "num_segments": "1"},
    )
    if not created:
        return
    content = _demo_png()
    Attachment.objects.create(
        workspace_id=interaction.workspace_id,
        interaction=interaction,
        file=ContentFile(content, name="keyboard.png"),
        filename="keyboard.png",
        content_type="image/png",
        size=len(content),
    )


DEMO_SEGMENT = "Customers with an SMS opt-in who wrote in the last 30 days"
# Who opted in to marketing SMS (on the demo's web form), by phone.
DEMO_SMS_OPT_INS = ("+15005550101", "+15005550102")


def demo_segment_seed(*, workspace: Workspace, at: datetime) -> None:
    """Marketing SMS opt-ins for two demo customers, a custom event, and the demo's segment (once)."""
    for phone in DEMO_SMS_OPT_INS:
        identity = Identity.objects.filter(workspace=workspace, kind="phone", value=phone).first()
        if (
            identity is None
            or ConsentEvent.objects.filter(customer=identity.customer, purpose="marketing").exists()
        ):
            continue
        consent_record(
            customer=identity.customer,
            channel="sms",
            purpose="marketing",
            status="opted_in",
            source="webchat_form",
            address=phone,
            evidence={"form": "demo newsletter signup"},
            occurred_at=at - timedelta(days=3),
        )
    grace = Identity.objects.filter(workspace=workspace, kind="phone", value=DEMO_SMS_OPT_INS[0]).first()
    if grace is not None:
        customer_event_record(
            customer=grace.customer,
            name="order_placed",
            properties={"amount": 120, "currency": "USD", "sku": "KB-01"},
            occurred_at=at - timedelta(days=2),
            event_id="demo-order-1",
        )
    if not workspace.segments.filter(name=DEMO_SEGMENT).exists():
        segment_create(
            workspace=workspace,
            name=DEMO_SEGMENT,
            description="The audience of an SMS campaign: marketing consent on SMS and recent inbound SMS.",
            rules={
                "type": "and",
                "rules": [
                    {"type": "consent", "channel": "sms", "purpose": "marketing", "state": "opted_in"},
                    {
                        "type": "activity",
                        "direction": "inbound",
                        "channel": "sms",
                        "min_count": 1,
                        "within_days": 30,
                    },
                ],
            },
        )


DEMO_CAMPAIGN_DONE = "Spring sale (demo)"
DEMO_CAMPAIGN_SCHEDULED = "Weekly tips (demo)"


@transaction.atomic  # all or nothing: a half-seeded campaign would be skipped as done next time
def demo_campaigns_seed(*, workspace: Workspace, sms_channel: Channel, at: datetime) -> None:
    """A finished SMS campaign to the demo segment (launched two days ago: its audience snapshotted by the
    real launch, each message delivered, one customer replied) and a weekly one scheduled for Monday
    10:00 New York time. Once."""
    from engagement.campaigns.sending import run_complete_if_done
    from engagement.campaigns.services import campaign_create, campaign_launch
    from engagement.models import Campaign, CampaignRecipient, CampaignSettings

    if Campaign.objects.filter(workspace=workspace, name=DEMO_CAMPAIGN_DONE).exists():
        return
    CampaignSettings.objects.get_or_create(workspace=workspace)
    segment = workspace.segments.get(name=DEMO_SEGMENT)
    content = {
        "sms": {"body": "Hi {{ first_name | default('there') }}, 20% off this weekend with code SPRING."}
    }
    done = campaign_create(
        workspace=workspace,
        name=DEMO_CAMPAIGN_DONE,
        segment=segment,
        channel_ids=[sms_channel.pk],
        content=content,
    )
    sent_at = at - timedelta(days=2)
    campaign_launch(campaign=done, now=sent_at)
    rows = CampaignRecipient.objects.filter(campaign=done).select_related("customer")
    for n, row in enumerate(rows):
        phone = (
            Identity.objects.filter(customer=row.customer, kind="phone")
            .values_list("value", flat=True)
            .first()
        )
        first = (row.customer.display_name.split() or ["there"])[0]
        conversation, _ = conversation_find_or_open(customer=row.customer, channel=sms_channel, at=sent_at)
        message = Interaction.objects.create(
            workspace=workspace,
            customer=row.customer,
            conversation=conversation,
            channel=sms_channel,
            direction=Direction.OUTBOUND,
            body=f"Hi {first}, 20% off this weekend with code SPRING.\nReply STOP to opt out",
            customer_address=phone or "",
            status=InteractionStatus.DELIVERED,
            status_changed_at=sent_at,
            provider_message_id=f"SBDEMOCAMP{n:02d}",
            idempotency_key=f"campaign:{row.run_id}:{row.customer_id}",
            metadata={
                "purpose": "marketing",
                "campaign_id": done.pk,
                "campaign_name": done.name,
                "campaign_run_id": row.run_id,
                "campaign_recipient_id": row.pk,
                "variant": row.variant,
            },
            created_at=sent_at,
        )
        row.state, row.channel, row.interaction = "sent", sms_channel, message
        row.sent_at = row.finished_at = row.updated_at = sent_at
        row.save()
        if n == 0:
            interaction_record_inbound(
                channel=sms_channel,
                sender=Identifier("phone", phone or ""),
                body="Does SPRING work in the shop too?",
                provider_message_id=f"SMDEMOCAMPREPLY{n:02d}",
                occurred_at=sent_at + timedelta(hours=1),
            )
    run_complete_if_done(run_id=rows[0].run_id if rows else 0, now=sent_at + timedelta(minutes=5))
    monday = (at + timedelta(days=(7 - at.weekday()) % 7 or 7)).date()
    campaign_launch(
        campaign=campaign_create(
            workspace=workspace,
            name=DEMO_CAMPAIGN_SCHEDULED,
            segment=segment,
            channel_ids=[sms_channel.pk],
            content={
                "sms": {
                    "body": "Tip of the week for {{ first_name | default('you') }}: reply HOURS any time."
                }
            },
            schedule_kind="recurring",
            send_at=datetime(monday.year, monday.month, monday.day, 15, 0, tzinfo=UTC),
            rrule="FREQ=WEEKLY;BYDAY=MO;BYHOUR=10;BYMINUTE=0",
            schedule_timezone="America/New_York",
        ),
        now=at,
    )


DEMO_TEAM = "Support"
DEMO_CANNED = [
    ("hours", "Opening hours", "Hi {{ customer.first_name }}, we're open Monday to Friday, 9:00 to 17:00."),
    (
        "thanks",
        "Thanks and sign-off",
        "Thanks for your patience, {{ customer.first_name }}! — {{ agent.first_name }}, {{ workspace.name }}",
    ),
]


@transaction.atomic
def demo_teamwork_seed(*, workspace: Workspace, channels: list[Channel]) -> None:
    """The team tools in use: a Support team (Ada and Alex, round-robin on SMS and chat, up to 5 threads
    each), labels on Grace's and Katherine's threads, Grace's thread assigned to Alex with Ada's note
    mentioning him, and two canned responses. Once."""
    from .teamwork import (
        TeamInput,
        canned_response_save,
        conversation_labels_change,
        note_create,
        team_save,
        thread_assign,
        thread_conversations,
    )

    if workspace.teams.filter(name=DEMO_TEAM).exists():
        return
    User = get_user_model()
    ada, alex = User.objects.filter(username="admin").first(), User.objects.filter(username="agent").first()
    if ada is None or alex is None:
        return
    team = team_save(
        workspace=workspace,
        data=TeamInput(
            name=DEMO_TEAM,
            member_ids=[ada.pk, alex.pk],
            channel_ids=[c.pk for c in channels],
            auto_assign=True,
            capacity=5,
        ),
    )
    for shortcut, title, body in DEMO_CANNED:
        if not workspace.canned_responses.filter(shortcut=shortcut).exists():
            canned_response_save(workspace=workspace, shortcut=shortcut, title=title, body=body)
    grace = Identity.objects.filter(workspace=workspace, kind="phone", value="+15005550101").first()
    katherine = Identity.objects.filter(workspace=workspace, kind="phone", value="+15005550103").first()
    if grace is not None:
        thread_assign(
            workspace=workspace, customer_id=grace.customer_id, assignee_id=alex.pk, team_id=team.pk
        )
        conversation_labels_change(
            workspace=workspace,
            conversations=thread_conversations(workspace=workspace, customer_id=grace.customer_id),
            add=["order", "vip"],
        )
        note_create(
            workspace=workspace,
            customer=grace.customer,
            body="@agent Grace is one of our oldest customers: check that order 1001 left the warehouse "
            "before you answer her email.",
            author_id=ada.pk,
        )
    if katherine is not None:
        conversation_labels_change(
            workspace=workspace,
            conversations=thread_conversations(workspace=workspace, customer_id=katherine.customer_id),
            add=["delivery"],
        )


DEMO_JOURNEY_MISSED_CALL = "Missed call: text, then a callback task"
DEMO_JOURNEY_BROCHURE = "Keyword DEMO: brochure, then a nudge"


def demo_journeys_seed(*, workspace: Workspace, sms_channel: Channel) -> None:
    """Two live journeys (once each, by name):

    - a missed call on the voice line → SMS "sorry we missed you" → wait 1 hour for a reply → no reply:
      a "call this customer back" task for an agent (a reply ends it);
    - keyword DEMO by SMS → the brochure by email (SMS with the link when there is no address) → 2 days
      → not clicked: an SMS nudge."""
    from engagement.journeys.services import journey_create, journey_publish
    from engagement.models import Journey

    email = Channel.objects.filter(workspace=workspace, kind="email").first()
    voice = Channel.objects.filter(workspace=workspace, kind="voice").first()
    if (
        voice is not None
        and not Journey.objects.filter(workspace=workspace, name=DEMO_JOURNEY_MISSED_CALL).exists()
    ):
        journey = journey_create(
            workspace=workspace,
            name=DEMO_JOURNEY_MISSED_CALL,
            description="Nobody answered the phone: say sorry by SMS, and if they do not write back within "
            "the hour, ask an agent to call them.",
            reentry="once_at_a_time",
            definition={
                "trigger": {"type": "call.missed", "channel_kind": "voice"},
                "steps": [
                    {
                        "key": "sorry",
                        "label": "Text: sorry we missed you",
                        "type": "send",
                        # An answer to the call: skipped when a person is already handling the thread.
                        "answer": True,
                        "channel_ids": [sms_channel.pk],
                        "content": {
                            "sms": {
                                "body": "Hi {{ first_name | default('there') }}, sorry we missed your call! "
                                "Reply here and we'll get right back to you."
                            }
                        },
                    },
                    {
                        "key": "wait_reply",
                        "label": "Wait 1 hour for a reply",
                        "type": "wait_for",
                        "for": "reply",
                        "timeout_seconds": 3600,
                        "matched": [],
                        "timeout": [
                            {
                                "key": "callback",
                                "type": "create_task",
                                "title": "Call this customer back",
                                "detail": "They called, we missed it, and they did not answer our SMS.",
                                "due_in_seconds": 4 * 3600,
                            }
                        ],
                    },
                ],
            },
        )
        journey_publish(journey=journey)
    if not Journey.objects.filter(workspace=workspace, name=DEMO_JOURNEY_BROCHURE).exists():
        channels = [email.pk, sms_channel.pk] if email is not None else [sms_channel.pk]
        journey = journey_create(
            workspace=workspace,
            name=DEMO_JOURNEY_BROCHURE,
            description="Someone texts DEMO: send the brochure, and nudge them by SMS if they have not "
            "opened its link two days later.",
            reentry="once_ever",
            definition={
                "trigger": {
                    "type": "message.received",
                    "channel_kind": "sms",
                    "match": "keyword",
                    "keywords": ["DEMO"],
                },
                "steps": [
                    {
                        "key": "brochure",
                        "label": "Email the brochure",
                        "type": "send",
                        "channel_ids": channels,
                        "content": {
                            "email": {
                                "subject": "Your Demo Co brochure",
                                "html": "<p>Hi {{ first_name | default('there') }},</p><p>Here is "
                                '<a href="https://demo.example/brochure.pdf">our brochure</a>.</p>',
                            },
                            "sms": {"body": "Here is our brochure: https://demo.example/brochure.pdf"},
                        },
                    },
                    {"key": "two_days", "type": "delay", "seconds": 2 * 86400},
                    {
                        "key": "clicked",
                        "label": "Opened the brochure link?",
                        "type": "condition",
                        "if": {"kind": "message_engaged", "step": "brochure", "engagement": "click"},
                        "yes": [],
                        "no": [
                            {
                                "key": "nudge",
                                "type": "send",
                                "channel_ids": [sms_channel.pk],
                                "content": {
                                    "sms": {
                                        "body": "Did you get a chance to look at our brochure? "
                                        "Reply with any question."
                                    }
                                },
                            }
                        ],
                    },
                ],
            },
        )
        journey_publish(journey=journey)
