"""Triggers evaluated on a schedule rather than on an event: entering or leaving a segment, and a date
attribute (a birthday, a renewal date, N days before or after).

Celery beat runs :func:`journeys_evaluate` every ``JOURNEYS_EVALUATE_SECONDS`` (default 60):

* **segment.entered / segment.left** — the segment's members now (ONE query, ``segment_queryset``) are
  compared with those recorded at the previous evaluation (``JourneySegmentMember``); the difference
  enrolls the customers who entered (or left). The first evaluation after publishing only records the
  members: entering means entering after the journey went live.
* **date** — once per day (the workspace's default zone, ``CampaignSettings.default_timezone``) the
  customers whose attribute holds the date ``today - offset_days`` (``annual``: the same month and day,
  any year) are enrolled, each with the trigger key ``date:<that date>`` so a day enrolls once. A step
  ``delay until local time`` then reaches each customer at their own hour.

Enrollments go through ``enrollment_create`` (re-entry policy, unique indexes) and are due at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import transaction

from customers.models import Customer
from engagement.campaigns.schedule import zone_get
from engagement.models import Journey, JourneySegmentMember, JourneyStatus, Segment
from engagement.segments.services import segment_queryset
from engagement.services.guards import campaign_settings_for

from .clock import journey_now
from .services import enrollment_create
from .tasks import journeys_advance_task

logger = logging.getLogger(__name__)

PERIODIC_TRIGGERS = ("segment.entered", "segment.left", "date")


def journeys_evaluate(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Evaluate every live journey with a periodic trigger; ``{"journeys", "enrolled"}``."""
    now = now or journey_now()
    journeys = Journey.objects.filter(status=JourneyStatus.LIVE, trigger_type__in=PERIODIC_TRIGGERS)
    enrolled = 0
    count = 0
    for journey in journeys.select_related("live_version", "workspace").order_by("id"):
        count += 1
        try:
            ids = journey_evaluate(journey=journey, now=now)
        except Exception:  # one journey's fault never stops the others
            logger.exception("periodic trigger of journey %s failed", journey.pk)
            continue
        enrolled += len(ids)
        if ids:
            journeys_advance_task.delay(ids)
    return {"journeys": count, "enrolled": enrolled}


def journey_evaluate(*, journey: Journey, now: dt.datetime) -> list[int]:
    """Evaluate one journey's periodic trigger now; the ids of the enrollments it made."""
    version = journey.live_version
    if version is None:
        return []
    trigger: dict[str, Any] = version.definition.get("trigger") or {}
    if trigger.get("type") in ("segment.entered", "segment.left"):
        return _segment(journey, trigger, now)
    if trigger.get("type") == "date":
        return _date(journey, trigger, now)
    return []


def _segment(journey: Journey, trigger: dict[str, Any], now: dt.datetime) -> list[int]:
    segment_id = int(trigger.get("segment_id") or 0)
    segment = Segment.objects.filter(pk=segment_id, workspace_id=journey.workspace_id).first()
    if segment is None:
        return []
    with transaction.atomic():
        locked = Journey.objects.select_for_update().get(pk=journey.pk)  # one evaluation at a time
        members = set(segment_queryset(segment=segment, now=now).values_list("pk", flat=True))
        before = set(
            JourneySegmentMember.objects.filter(journey=locked).values_list("customer_id", flat=True)
        )
        entered, left = members - before, before - members
        JourneySegmentMember.objects.bulk_create(
            [JourneySegmentMember(journey=locked, customer_id=c) for c in entered], ignore_conflicts=True
        )
        JourneySegmentMember.objects.filter(journey=locked, customer_id__in=left).delete()
        if not (locked.trigger_state or {}).get("initialized"):
            locked.trigger_state = {**(locked.trigger_state or {}), "initialized": True}
            locked.save(update_fields=["trigger_state"])
            return []
        chosen = entered if trigger["type"] == "segment.entered" else left
        key = f"{trigger['type']}:{now.isoformat()}"
        out: list[int] = []
        for customer in Customer.objects.filter(pk__in=chosen, workspace_id=journey.workspace_id):
            enrollment, _ = enrollment_create(
                journey=locked,
                customer=customer,
                context={"trigger": trigger["type"], "segment_id": segment.pk},
                trigger_key=key,
                now=now,
            )
            if enrollment is not None:
                out.append(enrollment.pk)
        return out


def _date(journey: Journey, trigger: dict[str, Any], now: dt.datetime) -> list[int]:
    rules = campaign_settings_for(workspace_id=journey.workspace_id)
    today = now.astimezone(zone_get(rules.default_timezone)).date()
    if (journey.trigger_state or {}).get("last_date") == today.isoformat():
        return []
    target = today - dt.timedelta(days=int(trigger.get("offset_days") or 0))
    key = str(trigger["attribute"])  # validated: letters, digits, single underscores
    customers = Customer.objects.filter(
        workspace_id=journey.workspace_id, merged_into__isnull=True, erased_at__isnull=True
    )
    if trigger.get("annual"):
        customers = customers.filter(**{f"attributes__{key}__regex": rf"^\d{{4}}-{target:%m-%d}"})
    else:
        customers = customers.filter(**{f"attributes__{key}__startswith": target.isoformat()})
    out: list[int] = []
    with transaction.atomic():
        locked = Journey.objects.select_for_update().get(pk=journey.pk)
        if (locked.trigger_state or {}).get("last_date") == today.isoformat():
            return []
        for customer in customers.iterator():
            enrollment, _ = enrollment_create(
                journey=locked,
                customer=customer,
                context={"trigger": "date", "attribute": key, "date": target.isoformat()},
                trigger_key=f"date:{target.isoformat()}",
                now=now,
            )
            if enrollment is not None:
                out.append(enrollment.pk)
        locked.trigger_state = {**(locked.trigger_state or {}), "last_date": today.isoformat()}
        locked.save(update_fields=["trigger_state"])
    return out
