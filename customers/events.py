"""Custom events: record what a customer did ("order_placed"), once per event id.

The track endpoint (with journeys) resolves the customer and calls :func:`customer_event_record`;
segments filter on the rows (``engagement/segments``: ``event`` conditions).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from engagement import events
from engagement.errors import ValidationFailed

from .merging import customer_current
from .models import Customer, CustomerEvent

CUSTOMER_EVENT_RECORDED = "customer.event_recorded"
EVENT_NAME_RE = re.compile(r"[\w][\w .:/-]{0,199}")
MAX_PROPERTIES_BYTES = 16 * 1024
# A sender's clock may run ahead a little; further than this is a bug we should not window on.
MAX_FUTURE = dt.timedelta(hours=24)


class EventInvalid(ValidationFailed):
    code = "event_invalid"
    title = "Invalid custom event"


def customer_event_record(
    *,
    customer: Customer,
    name: str,
    properties: dict[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
    event_id: str | None = None,
) -> tuple[CustomerEvent, bool]:
    """Record one custom event for ``customer``; ``(event, created)``.

    ``event_id`` is the sender's idempotency key: a repeat (same workspace and id) returns the first
    row unchanged with ``created=False``; without one a random id is used (no deduplication).
    ``occurred_at`` defaults to now and must be timezone-aware and at most 24 h ahead. A merged-away
    customer's event is recorded on the survivor; an erased customer's is refused.

    Errors: EventInvalid (400) for a bad name (1-200 letters, digits, space, ``_ . : / -``), properties
    that are not a JSON object of at most 16 KB, or a bad time. Publishes ``customer.event_recorded``
    after commit when created. Runs in the caller's transaction (a savepoint decides the race on the id).
    """
    name = (name or "").strip()
    if not EVENT_NAME_RE.fullmatch(name):
        raise EventInvalid("an event name is 1-200 letters, digits, spaces or _ . : / -", field="name")
    properties = {} if properties is None else properties
    if not isinstance(properties, dict):
        raise EventInvalid("properties must be a JSON object", field="properties")
    try:
        size = len(json.dumps(properties, allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise EventInvalid(f"properties must be plain JSON: {exc}", field="properties") from exc
    if size > MAX_PROPERTIES_BYTES:
        raise EventInvalid(f"properties are {size} bytes; at most {MAX_PROPERTIES_BYTES}", field="properties")
    now = timezone.now()
    if occurred_at is None:
        occurred_at = now
    elif timezone.is_naive(occurred_at):
        raise EventInvalid("occurred_at needs a time zone (e.g. 2026-11-30T08:00:00Z)", field="occurred_at")
    elif occurred_at > now + MAX_FUTURE:
        raise EventInvalid("occurred_at is more than 24 hours in the future", field="occurred_at")
    event_id = (event_id or "").strip() or f"gen:{uuid.uuid4().hex}"
    if len(event_id) > 200:
        raise EventInvalid("event_id is at most 200 characters", field="event_id")

    existing = CustomerEvent.objects.filter(workspace_id=customer.workspace_id, event_id=event_id).first()
    if existing is not None:
        return existing, False
    target = customer
    if customer.merged_into_id is not None:
        target = customer_current(workspace=customer.workspace, customer_id=customer.pk) or customer
    if target.erased_at is not None:
        raise EventInvalid("this customer was erased", field="customer")
    try:
        with transaction.atomic():
            event = CustomerEvent.objects.create(
                workspace_id=customer.workspace_id,
                customer=target,
                name=name,
                properties=properties,
                occurred_at=occurred_at,
                received_at=now,
                event_id=event_id,
            )
    except IntegrityError:
        return CustomerEvent.objects.get(workspace_id=customer.workspace_id, event_id=event_id), False
    events.publish_on_commit(
        events.DomainEvent(
            name=CUSTOMER_EVENT_RECORDED,
            workspace_id=customer.workspace_id,
            customer_id=target.pk,
            data={"event_id": event.pk, "name": name},
        )
    )
    return event, True
