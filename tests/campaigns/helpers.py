"""Audiences and campaigns for the campaign tests: many customers in a few bulk statements."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from customers.models import ConsentEvent, Customer, Identity
from engagement.campaigns.services import campaign_create
from engagement.models import Campaign, Channel, Segment, Workspace
from engagement.segments.services import segment_create


def audience_create(
    workspace: Workspace,
    n: int,
    *,
    tag: str = "promo",
    phone_base: int = 12025550000,
    email: bool = False,
    opted_in: tuple[str, ...] = ("sms",),
    timezone_name: str = "",
    name: str = "Pat Doe",
) -> list[Customer]:
    """``n`` customers tagged ``tag``, each with a phone (``+<phone_base + i>``), optionally an email,
    and a marketing opt-in on each channel of ``opted_in``."""
    now = timezone.now()
    customers = Customer.objects.bulk_create(
        [
            Customer(workspace=workspace, display_name=f"{name} {i}", tags=[tag], timezone=timezone_name)
            for i in range(n)
        ]
    )
    identities = []
    for i, c in enumerate(customers):
        identities.append(
            Identity(
                workspace=workspace,
                customer=c,
                kind="phone",
                value=f"+{phone_base + i}",
                first_seen_at=now,
                last_seen_at=now,
            )
        )
        if email:
            identities.append(
                Identity(
                    workspace=workspace,
                    customer=c,
                    kind="email",
                    value=f"p{phone_base + i}@example.com",
                    first_seen_at=now,
                    last_seen_at=now,
                )
            )
    Identity.objects.bulk_create(identities, batch_size=2000)
    ConsentEvent.objects.bulk_create(
        [
            ConsentEvent(
                workspace=workspace,
                customer=c,
                channel=ch,
                purpose="marketing",
                status="opted_in",
                source="import",
                occurred_at=now,
            )
            for c in customers
            for ch in opted_in
        ],
        batch_size=2000,
    )
    return customers


def tag_segment(workspace: Workspace, tag: str = "promo") -> Segment:
    return segment_create(
        workspace=workspace,
        name=f"tag {tag}",
        rules={"type": "and", "rules": [{"type": "tag", "value": tag}]},
    )


def sms_campaign(workspace: Workspace, segment: Segment, channels: list[Channel], **fields: Any) -> Campaign:
    options: dict[str, Any] = {
        "name": "Spring sale",
        "purpose": "marketing",
        "content": {
            "sms": {"body": "Hi {{ first_name | default('there') }}, 20% off today."},
            "email": {
                "subject": "Sale, {{ first_name | default('friend') }}",
                "html": "<p>Hi {{ first_name }}</p>",
            },
        },
    }
    options.update(fields)
    return campaign_create(
        workspace=workspace, segment=segment, channel_ids=[c.pk for c in channels], **options
    )
