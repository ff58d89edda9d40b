"""Periodic triggers: entering / leaving a segment, a date attribute."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from engagement.journeys.periodic import journeys_evaluate
from engagement.models import Enrollment
from engagement.segments.services import segment_create
from tests import factories

from .conftest import after_commit, live_journey

pytestmark = pytest.mark.django_db


def _tagged(workspace, phone, *tags):
    return factories.customer_create(workspace, ("phone", phone), tags=list(tags))


def test_entering_and_leaving_a_segment(workspace):
    segment = segment_create(workspace=workspace, name="VIP", rules={"type": "tag", "value": "vip"})
    steps = [{"type": "update", "add_tags": ["seen"]}]
    entered = live_journey(
        workspace,
        {"trigger": {"type": "segment.entered", "segment_id": segment.pk}, "steps": steps},
        name="in",
    )
    left = live_journey(
        workspace, {"trigger": {"type": "segment.left", "segment_id": segment.pk}, "steps": steps}, name="out"
    )
    ann = _tagged(workspace, "+14155550100", "vip")
    assert after_commit(journeys_evaluate)["enrolled"] == 0  # the first evaluation records who is in
    bob = _tagged(workspace, "+14155550101", "vip")
    ann.tags = []
    ann.save()
    assert after_commit(journeys_evaluate)["enrolled"] == 2
    assert list(Enrollment.objects.filter(journey=entered).values_list("customer_id", flat=True)) == [bob.pk]
    assert list(Enrollment.objects.filter(journey=left).values_list("customer_id", flat=True)) == [ann.pk]
    assert after_commit(journeys_evaluate)["enrolled"] == 0  # nothing changed since


def test_date_attribute_n_days_before_once_a_day(workspace):
    today = timezone.now().date()
    renew = today + dt.timedelta(days=3)
    journey = live_journey(
        workspace,
        {
            "trigger": {"type": "date", "attribute": "renewal_date", "offset_days": -3},
            "steps": [{"type": "delay", "seconds": 60}],
        },
    )
    due = factories.customer_create(
        workspace, ("phone", "+14155550100"), attributes={"renewal_date": renew.isoformat()}
    )
    factories.customer_create(
        workspace, ("phone", "+14155550101"), attributes={"renewal_date": today.isoformat()}
    )
    birthday = live_journey(
        workspace,
        {"trigger": {"type": "date", "attribute": "birthday", "annual": True}, "steps": [{"type": "exit"}]},
        name="birthday",
    )
    born = factories.customer_create(
        workspace, ("phone", "+14155550102"), attributes={"birthday": f"1990-{today:%m-%d}"}
    )
    assert after_commit(journeys_evaluate)["enrolled"] == 2
    assert list(Enrollment.objects.filter(journey=journey).values_list("customer_id", flat=True)) == [due.pk]
    assert list(Enrollment.objects.filter(journey=birthday).values_list("customer_id", flat=True)) == [
        born.pk
    ]
    assert after_commit(journeys_evaluate)["enrolled"] == 0  # once a day
