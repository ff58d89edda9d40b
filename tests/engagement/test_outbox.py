"""The transactional outbox: events are rows of the transaction that caused them, relayed after commit,
retried per listener, in order per customer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from engagement import events
from engagement.models import OutboxEvent
from engagement.outbox import outbox_purge_relayed, outbox_relay_pending

pytestmark = pytest.mark.django_db(transaction=True)
RECEIVED = events.MESSAGE_RECEIVED


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int | None]] = []
        self.fail_for: set[int] = set()

    def __call__(self, event: events.DomainEvent) -> None:
        if event.interaction_id in self.fail_for:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        self.seen.append((event.name, event.interaction_id))


@pytest.fixture
def only_listeners(settings: Any) -> Iterator[tuple[Recorder, Recorder]]:
    """Two test listeners in place of the project's; the relay runs when the test calls it."""
    settings.OUTBOX_RELAY_INLINE = False
    saved = list(events._LISTENERS)
    events._LISTENERS.clear()
    first, second = Recorder(), Recorder()
    events.listener_register(name="first", handler=first)
    events.listener_register(name="second", handler=second)
    yield first, second
    events._LISTENERS[:] = saved


def _event(
    interaction_id: int, customer_id: int | None = 1, name: str = events.MESSAGE_RECEIVED
) -> events.DomainEvent:
    return events.DomainEvent(
        name=name, workspace_id=1, interaction_id=interaction_id, customer_id=customer_id
    )


def test_nothing_is_dispatched_that_did_not_commit_and_nothing_committed_is_lost(only_listeners):
    first, _ = only_listeners

    def rolled_back() -> None:
        with transaction.atomic():
            events.publish_on_commit(_event(1))
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        rolled_back()
    with transaction.atomic():
        events.publish_on_commit(_event(2), _event(3))
    assert first.seen == []  # nothing runs at commit: the relay does
    assert list(OutboxEvent.objects.values_list("payload__interaction_id", flat=True).order_by("id")) == [
        2,
        3,
    ]

    report = outbox_relay_pending()
    assert (report.relayed, report.failed) == (2, 0)
    assert first.seen == [(RECEIVED, 2), (RECEIVED, 3)]
    assert not OutboxEvent.objects.filter(relayed_at__isnull=True).exists()
    assert outbox_relay_pending().relayed == 0  # relayed once


def test_a_failed_listener_is_retried_alone_and_holds_back_its_customer_only(only_listeners):
    first, second = only_listeners
    second.fail_for = {1}
    events.publish_on_commit(_event(1, customer_id=7))
    events.publish_on_commit(_event(2, customer_id=7))  # same customer: must wait for event 1
    events.publish_on_commit(_event(3, customer_id=8))  # another customer: not held back

    report = outbox_relay_pending()
    assert (report.relayed, report.failed, report.held) == (1, 1, 1)
    assert first.seen == [(RECEIVED, 1), (RECEIVED, 3)]
    assert second.seen == [(RECEIVED, 3)]
    failed = OutboxEvent.objects.get(payload__interaction_id=1)
    assert failed.listeners_done == ["first"]
    assert failed.attempts == 1
    assert "Connection refused" in failed.last_error
    assert failed.next_attempt_at is not None

    # Redis is back; the retry time has come: only the listener that failed runs again, then event 2.
    second.fail_for = set()
    OutboxEvent.objects.filter(pk=failed.pk).update(next_attempt_at=timezone.now())
    report = outbox_relay_pending()
    assert (report.relayed, report.failed) == (2, 0)
    assert first.seen == [
        (RECEIVED, 1),
        (RECEIVED, 3),
        (RECEIVED, 2),
    ]
    assert second.seen == [
        (RECEIVED, 3),
        (RECEIVED, 1),
        (RECEIVED, 2),
    ]


def test_the_relay_pauses_after_consecutive_failures(only_listeners):
    first, _ = only_listeners
    first.fail_for = {1, 2, 3, 4, 5}
    for n in range(1, 6):
        events.publish_on_commit(_event(n, customer_id=n))
    report = outbox_relay_pending()
    assert report.paused
    assert report.failed == 3  # the broker is down: the other two are not even tried
    assert OutboxEvent.objects.filter(attempts=0).count() == 2


def test_relay_command_once_and_purge(only_listeners):
    first, _ = only_listeners
    events.publish_on_commit(_event(1))
    call_command("outbox_relay", "--once")
    assert first.seen == [(RECEIVED, 1)]
    OutboxEvent.objects.update(relayed_at=timezone.now() - timedelta(hours=30))
    assert outbox_purge_relayed(older_than=timedelta(hours=24)) == 1
    assert not OutboxEvent.objects.exists()


def test_inline_mode_relays_on_commit(settings):
    """The unit tests' mode: the committing process relays its own rows (the project's listeners)."""
    settings.OUTBOX_RELAY_INLINE = True
    with transaction.atomic():
        events.publish_on_commit(
            events.DomainEvent(name=events.CONVERSATION_UPDATED, workspace_id=1, conversation_id=1)
        )
        assert OutboxEvent.objects.get().relayed_at is None
    assert OutboxEvent.objects.get().relayed_at is not None
