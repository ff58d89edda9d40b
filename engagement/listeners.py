"""The core's listeners of domain events. Which listeners run, and for which events, is listed in one
place: ``config/listeners.py``."""

from __future__ import annotations

from engagement.events import DomainEvent
from engagement.journeys.engine import enrollments_advance_inline
from engagement.journeys.tasks import journeys_advance_task
from engagement.journeys.triggers import journeys_event_handle
from engagement.realtime import push_to_workspace
from engagement.tasks import auto_assign_conversation_task, csat_reply_record_task, fetch_attachment_task


def journeys_listener(event: DomainEvent) -> None:
    """Journeys (automation rules included): goals, exits and waits act here, in the event's
    after-commit handling (the relay), so a reply reaches its waiting enrollment at once; the steps
    that follow (sends…) run in a Celery task (here, for up to ``JOURNEYS_INLINE_ADVANCE`` of them,
    when that is set; off by default: it makes the single relay the bottleneck). The scheduler also
    finds those enrollments due now, so a lost task delays them by a tick, never drops them."""
    due = journeys_event_handle(event=event)
    left = enrollments_advance_inline(enrollment_ids=due) if due else []
    if left:
        journeys_advance_task.delay(left)


def realtime_listener(event: DomainEvent) -> None:
    """The console's live updates (websocket group of the workspace)."""
    push_to_workspace(event)


def attachment_fetch_listener(event: DomainEvent) -> None:
    """An attachment's media is downloaded in a Celery task."""
    fetch_attachment_task.delay(event.data["attachment_id"])


def csat_reply_listener(event: DomainEvent) -> None:
    """A customer's message may be the digit answering a satisfaction survey: checked in a Celery task."""
    if event.interaction_id is not None:
        csat_reply_record_task.delay(event.interaction_id)


def assignment_listener(event: DomainEvent) -> None:
    """A new conversation is assigned in a Celery task (its thread's assignee, or its team's round-robin)."""
    if event.conversation_id is not None:
        auto_assign_conversation_task.delay(event.conversation_id)
