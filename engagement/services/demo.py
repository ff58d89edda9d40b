"""The demo workspace `make run` seeds. Idempotent: running it again changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from customers.services import Identifier
from engagement.models import AutomationRule, Channel, Interaction, Membership, Role, Workspace
from engagement.models.automation import MatchType, Trigger
from engagement.models.conversations import Direction, InteractionStatus

from .conversations import conversation_touch
from .timeline import interaction_record_inbound

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
    for i, (name, phone, messages) in enumerate(DEMO_CUSTOMERS):
        for j, body in enumerate(messages):
            at = now - timedelta(hours=len(DEMO_CUSTOMERS) - i, minutes=10 - j)
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
                Interaction.objects.create(
                    workspace=workspace,
                    customer=interaction.customer,
                    conversation=interaction.conversation,
                    channel=channel,
                    direction=Direction.OUTBOUND,
                    body=f"Hi {name.split()[0]}, thanks for your message - we're on it.",
                    customer_address=phone,
                    status=InteractionStatus.DELIVERED,
                    status_changed_at=reply_at,
                    provider_message_id=f"SBDEMO{i:02d}{j:02d}",
                    created_at=reply_at,
                )
                conversation_touch(
                    conversation=interaction.conversation, at=reply_at, preview="(reply)", reopen=False
                )
    return DemoSeed(workspace=workspace, sms_channel=channel, logins=logins)
