"""Helpers for the console tests: real inbound messages through the timeline service."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from customers.services import Identifier
from engagement.models import Channel, Interaction, Role, Workspace
from engagement.services.timeline import interaction_record_inbound
from tests import factories

_sids = count()


def inbound(
    channel: Channel,
    phone: str,
    body: str,
    *,
    at: datetime | None = None,
    name: str = "",
) -> Interaction:
    """A customer message recorded the way every provider webhook records it."""
    interaction, created = interaction_record_inbound(
        channel=channel,
        sender=Identifier("phone", phone),
        body=body,
        provider_message_id=f"SMTEST{next(_sids):08d}",
        occurred_at=at or timezone.now(),
        sender_name=name,
    )
    assert created
    return interaction


def minutes_ago(n: int) -> datetime:
    return timezone.now() - timedelta(minutes=n)


@pytest.fixture
def admin_user(workspace: Workspace) -> Any:
    return factories.member(workspace, Role.ADMIN)


@pytest.fixture
def admin_client(admin_user: Any) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def conversation_pk(interaction: Interaction) -> int:
    """The conversation an inbound message landed in (always one for recorded messages)."""
    assert interaction.conversation_id is not None
    return interaction.conversation_id
