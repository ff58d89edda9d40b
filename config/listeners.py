"""Every listener of domain events, in one visible list (Chatwoot keeps its dispatcher's listeners in one
file). Registered at start-up by :class:`config.apps.WiringConfig`; the dispatcher is
``engagement/events.py``, which names none of them."""

from __future__ import annotations

from channels_inbound.services import events_ingest
from channels_outbound.listeners import outbound_delivery_listener
from customers.listeners import import_run_listener
from engagement import events
from engagement.inbound import inbound_ingestor_register
from engagement.journeys.triggers import JOURNEY_EVENT_NAMES
from engagement.listeners import (
    assignment_listener,
    attachment_fetch_listener,
    csat_reply_listener,
    journeys_listener,
    realtime_listener,
)
from engagement.webhooks.catalog import DOMAIN_EVENTS as WEBHOOK_DOMAIN_EVENTS
from engagement.webhooks.services import webhooks_listener

LISTENERS: tuple[events.Listener, ...] = (
    # Journeys (automation rules are one-step journeys): goals, exits and waits at once, triggers enroll;
    # the steps run in a Celery task (engagement/journeys/).
    events.Listener(name="journeys", handler=journeys_listener, names=JOURNEY_EVENT_NAMES),
    # Assignment of a new conversation: its customer's thread's assignee, or its team's round-robin.
    events.Listener(
        name="assignment", handler=assignment_listener, names=frozenset({events.CONVERSATION_OPENED})
    ),
    # The console's live updates: every event but those that only hand work to a task and those about
    # customer records.
    events.Listener(
        name="realtime",
        handler=realtime_listener,
        excluded=events.TASK_EVENTS
        | frozenset({events.CUSTOMER_CREATED, events.CUSTOMER_ERASED, events.CONSENT_CHANGED}),
    ),
    # The outbound port: a queued interaction goes to channels_outbound's send task.
    events.Listener(
        name="outbound delivery",
        handler=outbound_delivery_listener,
        names=frozenset({events.OUTBOUND_QUEUED}),
    ),
    # Media of an inbound MMS or a call recording is downloaded in a task.
    events.Listener(
        name="media fetch", handler=attachment_fetch_listener, names=frozenset({events.ATTACHMENT_STORED})
    ),
    # A customer CSV import runs in a task.
    events.Listener(
        name="customer import", handler=import_run_listener, names=frozenset({events.IMPORT_QUEUED})
    ),
    # CSAT: a customer's "1"-"5" after a survey is its answer (engagement/services/csat.py).
    events.Listener(
        name="csat replies", handler=csat_reply_listener, names=frozenset({events.MESSAGE_RECEIVED})
    ),
    # Outbound webhooks: records one delivery row per interested endpoint (engagement/webhooks/).
    events.Listener(name="outbound webhooks", handler=webhooks_listener, names=WEBHOOK_DOMAIN_EVENTS),
)


def listeners_register() -> None:
    for listener in LISTENERS:
        events.listener_register(
            name=listener.name, handler=listener.handler, names=listener.names, excluded=listener.excluded
        )
    # Ports the core owns and an adapter implements (the core never names the adapter).
    inbound_ingestor_register(events_ingest)
