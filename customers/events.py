"""Custom events: record what a customer did ("order_placed"), once per event id.

The track endpoint (with journeys) resolves the customer and calls :func:`customer_event_record`;
segments filter on the rows (``engagement/segments``: ``event`` conditions).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from engagement import events
from engagement.errors import ValidationFailed

from .identifiers import Identifier, InvalidIdentifier, identifier_normalize
from .merging import customer_current
from .models import Customer, CustomerEvent
from .resolution import customer_resolve_identifiers

if TYPE_CHECKING:
    from engagement.models import Workspace

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


def customer_events_recent(*, customer: Customer, limit: int = 20) -> list[CustomerEvent]:
    """The customer's newest custom events (the timeline shows them beside the interactions), oldest
    first; one query on ``customer_event_timeline_idx``."""
    newest = list(CustomerEvent.objects.filter(customer=customer).order_by("-occurred_at", "-id")[:limit])
    return list(reversed(newest))


MAX_TRACK_BATCH = 500
TRACK_IDENTIFIERS = ("email", "phone", "external_id")


@dataclass(frozen=True)
class TrackedEvent:
    """One row of a track batch, recorded: its place in the batch, the stored event, whether it is new
    (False: the caller's ``event_id`` was seen before), and whether the customer was created for it."""

    index: int
    event: CustomerEvent
    created: bool
    customer_created: bool


def _track_row(raw: Any, index: int, workspace: Workspace) -> dict[str, Any]:
    where, fld = f"events[{index}]", f"events.{index}"
    if not isinstance(raw, dict):
        raise EventInvalid(f"{where}: must be an object", field=fld)
    unknown = sorted(
        set(raw) - {"name", "event_id", "properties", "occurred_at", "customer_id", *TRACK_IDENTIFIERS}
    )
    if unknown:
        raise EventInvalid(f"{where}: unknown field(s) {', '.join(unknown)}", field=f"{fld}.{unknown[0]}")
    name = raw.get("name")
    if not isinstance(name, str) or not EVENT_NAME_RE.fullmatch(name.strip()):
        raise EventInvalid(f"{where}.name: 1-200 letters, digits, spaces or _ . : / -", field=f"{fld}.name")
    event_id = raw.get("event_id")
    if event_id is not None and (not isinstance(event_id, str) or not 0 < len(event_id.strip()) <= 200):
        raise EventInvalid(f"{where}.event_id: a string of 1-200 characters", field=f"{fld}.event_id")
    properties = raw.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise EventInvalid(f"{where}.properties: must be a JSON object", field=f"{fld}.properties")
    occurred_at = raw.get("occurred_at")
    when: dt.datetime | None = None
    if occurred_at is not None:
        when = parse_datetime(occurred_at) if isinstance(occurred_at, str) else None
        if when is None:
            raise EventInvalid(
                f"{where}.occurred_at: an ISO 8601 time with a zone", field=f"{fld}.occurred_at"
            )
        if timezone.is_naive(when):
            raise EventInvalid(f"{where}.occurred_at: needs a time zone", field=f"{fld}.occurred_at")
    identifiers: list[Identifier] = []
    for key in TRACK_IDENTIFIERS:
        value = raw.get(key)
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            raise EventInvalid(f"{where}.{key}: must be a string", field=f"{fld}.{key}")
        kind = "external" if key == "external_id" else key
        try:
            identifiers.append(identifier_normalize(Identifier(kind, value), workspace=workspace))
        except InvalidIdentifier as exc:
            raise EventInvalid(f"{where}.{key}: {exc}", field=f"{fld}.{key}") from exc
    customer_id = raw.get("customer_id")
    if customer_id is not None and (isinstance(customer_id, bool) or not isinstance(customer_id, int)):
        raise EventInvalid(f"{where}.customer_id: must be a whole number", field=f"{fld}.customer_id")
    if customer_id is None and not identifiers:
        raise EventInvalid(
            f"{where}: name the customer by customer_id, email, phone or external_id", field=fld
        )
    return {
        "name": name.strip(),
        "event_id": event_id.strip() if isinstance(event_id, str) else None,
        "properties": properties,
        "occurred_at": when,
        "customer_id": customer_id,
        "identifiers": identifiers,
    }


def customer_events_track(*, workspace: Workspace, batch: Any) -> list[TrackedEvent]:
    """Record a batch of custom events (``POST /api/v1/events``), each attributed to a customer by any
    identifier: ``customer_id``, ``email``, ``phone`` or ``external_id`` (an unknown identifier creates
    the customer, through customer resolution, so several identifiers may link or merge as on any
    event). Idempotent per ``event_id`` (a repeat returns the first row, ``created=False``).

    The whole batch is validated first: EventInvalid (400) whose message and ``field`` start with
    ``events[<index>]``; at most :data:`MAX_TRACK_BATCH` rows. Then all rows are recorded in one
    transaction (each publishes ``customer.event_recorded`` after commit: journeys' triggers, waits
    and goals; segments read the rows)."""
    if not isinstance(batch, list):
        raise EventInvalid("events: must be a list", field="events")
    if not batch:
        raise EventInvalid("events: send at least one event", field="events")
    if len(batch) > MAX_TRACK_BATCH:
        raise EventInvalid(
            f"events: {len(batch)} events; at most {MAX_TRACK_BATCH} per request", field="events"
        )
    rows = [_track_row(raw, i, workspace) for i, raw in enumerate(batch)]
    ids = {row["customer_id"] for row in rows if row["customer_id"] is not None}
    known = {c.pk: c for c in Customer.objects.filter(workspace=workspace, pk__in=ids)}
    for i, row in enumerate(rows):
        if row["customer_id"] is not None and row["customer_id"] not in known:
            raise EventInvalid(
                f"events[{i}].customer_id: no customer {row['customer_id']} in this workspace",
                field=f"events.{i}.customer_id",
            )
    out: list[TrackedEvent] = []
    with transaction.atomic():
        for i, row in enumerate(rows):
            customer_created = False
            if row["customer_id"] is not None:
                customer = known[row["customer_id"]]
            else:
                resolution = customer_resolve_identifiers(workspace=workspace, identifiers=row["identifiers"])
                customer, customer_created = resolution.customer, resolution.created
            try:
                event, created = customer_event_record(
                    customer=customer,
                    name=row["name"],
                    properties=row["properties"],
                    occurred_at=row["occurred_at"],
                    event_id=row["event_id"],
                )
            except EventInvalid as exc:
                raise EventInvalid(
                    f"events[{i}].{exc.field or 'event'}: {exc}", field=f"events.{i}.{exc.field or 'event'}"
                ) from exc
            out.append(TrackedEvent(index=i, event=event, created=created, customer_created=customer_created))
    return out
