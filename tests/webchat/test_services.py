"""The webchat message service on its hot path: how many queries a visitor's message costs, and that a
resend after a reconnect is answered from the first message without counting against the limits."""

from __future__ import annotations

from typing import Any

import pytest

from channels_inbound.webchat.services import Visitor, webchat_message_receive
from engagement.models import Channel, Interaction

pytestmark = pytest.mark.django_db


def test_a_visitors_next_message_and_a_resend_stay_cheap(
    webchat_channel: Channel, settings: Any, django_assert_max_num_queries: Any
) -> None:
    visitor = Visitor(channel_id=webchat_channel.pk, visitor_id="v-querycount")
    webchat_message_receive(channel=webchat_channel, visitor=visitor, client_id="client-first", body="hi")
    settings.WEBCHAT_RATE_LIMITS = {**settings.WEBCHAT_RATE_LIMITS, "visitor_messages": (2, 60)}

    # Measured at 12 (dedupe lookup, ingestion, re-read); more means something went per-message.
    with django_assert_max_num_queries(12):
        second, created = webchat_message_receive(
            channel=webchat_channel, visitor=visitor, client_id="client-second", body="still there?"
        )
    assert created

    with django_assert_max_num_queries(1):
        again, created = webchat_message_receive(
            channel=webchat_channel, visitor=visitor, client_id="client-second", body="still there?"
        )
    assert (again.pk, created) == (second.pk, False)  # the limit (2) is reached, yet the resend is answered
    assert Interaction.objects.filter(channel=webchat_channel).count() == 2
