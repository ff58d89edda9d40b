"""The outbound webhook event types beyond the inbox: a CSV import's created customers and consent rows
(bulk path and row-by-row path alike, batched into one outbox write per batch), campaign state changes
and journey enrollments, delivered signed to a local receiver."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from customers.imports import customer_import_create, customer_import_run
from customers.models import Customer
from engagement.campaigns.services import campaign_cancel, campaign_launch, campaign_pause, campaign_resume
from engagement.journeys.services import enrollment_remove, journey_enroll
from engagement.models import OutboxEvent
from engagement.webhooks.catalog import EVENT_TYPES
from engagement.webhooks.services import webhook_endpoint_create
from tests import factories
from tests.campaigns.helpers import audience_create, sms_campaign, tag_segment
from tests.journeys.conftest import live_journey

pytestmark = pytest.mark.django_db

CSV = """name,email,phone,consent:email:marketing
Ann,ann@example.com,+14155550100,opted_in
Ann again,ANN@example.com,,
Bob,bob@example.com,,opted_out
Cid,cid@example.com,not-a-phone,
Dee,dee@example.com,,
"""


def subscribe(receiver, workspace, types):
    endpoint, secret = webhook_endpoint_create(workspace=workspace, url=receiver.url, event_types=types)
    receiver.secret = secret
    return endpoint


def run_after_commit(fn, **kwargs):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return fn(**kwargs)


@pytest.mark.parametrize("batch_size", [1, 500])
def test_csv_import_one_customer_created_per_created_row(workspace, receiver, local_targets, batch_size):
    subscribe(receiver, workspace, ["customer.created", "consent.changed"])
    existing = factories.customer_create(workspace, ("email", "dee@example.com"))
    receiver.requests.clear()
    imp = customer_import_create(workspace=workspace, source=CSV, filename="people.csv")
    imp = run_after_commit(customer_import_run, import_id=imp.pk, batch_size=batch_size)
    assert (imp.created_count, imp.updated_count, imp.failed_count) == (2, 2, 1)
    assert all(r.verified for r in receiver.requests)
    payloads = receiver.payloads()
    created = sorted(p["data"]["customer_id"] for p in payloads if p["type"] == "customer.created")
    new_ids = sorted(Customer.objects.exclude(pk=existing.pk).values_list("pk", flat=True))
    assert len(created) == 2  # Ann and Bob; Dee existed; Cid's row failed
    assert created == new_ids
    consents = sorted(
        (p["data"]["customer_id"], p["data"]["status"], p["data"]["source"])
        for p in payloads
        if p["type"] == "consent.changed"
    )
    ann, bob = new_ids
    assert consents == [(ann, "opted_in", "import"), (bob, "opted_out", "import")]
    assert all(p["data"]["consent_event_id"] for p in payloads if p["type"] == "consent.changed")


def test_csv_import_bulk_batch_writes_its_events_in_one_outbox_insert(workspace):
    imp = customer_import_create(workspace=workspace, source=CSV, filename="people.csv")
    with CaptureQueriesContext(connection) as ctx:
        customer_import_run(import_id=imp.pk, batch_size=500)
    outbox = [q for q in ctx.captured_queries if "INSERT INTO" in q["sql"] and "outboxevent" in q["sql"]]
    assert len(outbox) == 1  # the batch's events in one statement
    assert OutboxEvent.objects.filter(name="customer.created").count() == 3  # Ann, Bob, Dee
    assert OutboxEvent.objects.filter(name="consent.changed").count() == 2


def test_campaign_state_changes_are_delivered(workspace, sms_channel, receiver, local_targets):
    subscribe(receiver, workspace, [t for t in EVENT_TYPES if t.startswith("campaign.")])
    audience_create(workspace, 2)
    campaign = sms_campaign(workspace, tag_segment(workspace), [sms_channel])
    run_after_commit(campaign_launch, campaign=campaign)
    run_after_commit(campaign_pause, campaign=campaign)
    run_after_commit(campaign_resume, campaign=campaign)
    run_after_commit(campaign_cancel, campaign=campaign)
    got = [(p["type"], p["data"]["previous_state"], p["data"].get("reason")) for p in receiver.payloads()]
    assert got == [
        ("campaign.running", "draft", None),
        ("campaign.paused", "running", "manual"),
        ("campaign.running", "paused", "resumed"),
        ("campaign.cancelled", "running", None),
    ]
    assert {p["data"]["campaign_id"] for p in receiver.payloads()} == {campaign.pk}
    assert all(r.verified for r in receiver.requests)


def test_journey_enrollment_events_are_delivered(workspace, sms_channel, receiver, local_targets):
    subscribe(receiver, workspace, ["journey.enrolled", "journey.completed", "journey.exited"])
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    waiting = live_journey(
        workspace,
        {"trigger": {"type": "manual"}, "steps": [{"type": "delay", "seconds": 86400}]},
        name="Waits",
    )
    enrollment = run_after_commit(journey_enroll, journey=waiting, customer=customer)
    run_after_commit(enrollment_remove, enrollment=enrollment)
    got = [(p["type"], p["data"]["journey_id"], p["data"].get("reason")) for p in receiver.payloads()]
    assert got == [("journey.enrolled", waiting.pk, None), ("journey.exited", waiting.pk, "removed")]
    assert receiver.payloads()[0]["data"]["enrollment_id"] == enrollment.pk
