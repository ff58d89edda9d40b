"""Helpers for the customer-view tests: inbound messages recorded through the real timeline service."""

from __future__ import annotations

from datetime import datetime
from itertools import count
from typing import Any

import pytest
from django.utils import timezone

from customers.services import Identifier
from engagement.models import Channel, Interaction, Role, Workspace
from engagement.services.timeline import interaction_record_inbound
from tests import factories

_ids = count()
IDENTITY_KIND = {"sms": "phone", "voice": "phone", "email": "email", "webchat": "webchat"}


def inbound(
    channel: Channel, address: str, body: str, *, at: datetime | None = None, name: str = ""
) -> Interaction:
    """A customer message on ``channel`` from ``address``, recorded the way every adapter records it."""
    interaction, created = interaction_record_inbound(
        channel=channel,
        sender=Identifier(IDENTITY_KIND[channel.kind], address),
        body=body,
        provider_message_id=f"TEST{next(_ids):08d}",
        occurred_at=at or timezone.now(),
        sender_name=name,
    )
    assert created
    return interaction


@pytest.fixture
def sms(workspace: Workspace) -> Channel:
    return factories.channel_create(workspace, "sms")


@pytest.fixture
def email_channel(workspace: Workspace) -> Channel:
    return factories.channel_create(workspace, "email")


@pytest.fixture
def webchat(workspace: Workspace) -> Channel:
    return factories.channel_create(workspace, "webchat")


@pytest.fixture
def voice(workspace: Workspace) -> Channel:
    return factories.channel_create(workspace, "voice")


@pytest.fixture
def admin_user(workspace: Workspace) -> Any:
    return factories.member(workspace, Role.ADMIN)
