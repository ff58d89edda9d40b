"""Journeys test helpers: channels on the sandbox provider, customers, inbound messages through the real
timeline service (so the outbox relay, inline in unit tests, runs the journeys listener)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import TestCase

from customers.consent import consent_record
from engagement.journeys.services import journey_create, journey_publish
from engagement.models import Channel, Journey, Workspace
from tests import factories
from tests.customers.conftest import inbound as _inbound

__all__ = ["after_commit", "inbound", "later", "live_journey"]


def after_commit(fn: Any, /, **kwargs: Any) -> Any:
    """Call ``fn`` and run what it left for after commit (the outbox relay, inline in unit tests, and
    the eager tasks its listeners start), as the real commit would."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return fn(**kwargs)


def inbound(channel: Channel, address: str, body: str) -> Any:
    return after_commit(_inbound, channel=channel, address=address, body=body)


@pytest.fixture
def sms(workspace: Workspace) -> Channel:
    return factories.channel_create(workspace, "sms")


@pytest.fixture
def email_channel(workspace: Workspace) -> Channel:
    return factories.channel_create(workspace, "email")


def live_journey(workspace: Workspace, definition: dict[str, Any], **fields: Any) -> Journey:
    journey = journey_create(
        workspace=workspace, name=fields.pop("name", "J"), definition=definition, **fields
    )
    journey_publish(journey=journey)
    journey.refresh_from_db()
    return journey


def later(**delta: float) -> dt.datetime:
    from engagement.journeys.clock import journey_now

    return journey_now() + dt.timedelta(**delta)


def opt_in(customer: Any, channel: str = "sms") -> None:
    consent_record(customer=customer, channel=channel, status="opted_in", source="api", purpose="marketing")
