"""The consent ledger is ordered by when we recorded a change, never by the time a client claims.

Found by probing: an opt-in dated 9999-12-31 outranked a later explicit opt-out and the next marketing
send was delivered. A claimed time is kept as evidence and refused when it lies in the future beyond the
clock-skew allowance.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import ConsentEvent
from engagement.services.tenancy import api_key_create
from tests import factories
from tests.api.problems import field_messages

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(workspace):
    _, secret = api_key_create(workspace=workspace, name="t")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def _consent(api, customer, status, occurred_at=None, purpose="marketing"):
    body = {"channel": "sms", "purpose": purpose, "status": status}
    if occurred_at is not None:
        body["occurred_at"] = occurred_at
    return api.post(f"/api/v1/customers/{customer.pk}/consent/", body, format="json")


def _send_marketing(api, sms, customer):
    body = {"channel_id": sms.pk, "customer_id": customer.pk, "body": "Sale!", "purpose": "marketing"}
    resp = api.post("/api/v1/messages/", body, format="json")
    assert resp.status_code == 202, resp.content
    return resp.json()


def test_a_far_future_opt_in_is_refused_and_cannot_outrank_a_later_opt_out(api, workspace):
    sms = factories.channel_create(workspace, "sms")
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    resp = _consent(api, customer, "opted_in", "9999-12-31T00:00:00Z")
    assert resp.status_code == 400, resp.content
    assert "future" in str(field_messages(resp)["occurred_at"])
    assert not ConsentEvent.objects.filter(customer=customer).exists()
    assert _send_marketing(api, sms, customer)["status"] == "blocked"


def test_a_claimed_time_never_reorders_the_ledger(api, workspace):
    """An opt-in claimed within the skew allowance, then an opt-out that claims an older time: the
    opt-out was recorded last, so it wins, and the next marketing send is blocked."""
    sms = factories.channel_create(workspace, "sms")
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    soon = (timezone.now() + timedelta(minutes=4)).isoformat()
    assert _consent(api, customer, "opted_in", soon).status_code == 201
    assert _send_marketing(api, sms, customer)["status"] == "queued"
    long_ago = (timezone.now() - timedelta(days=365)).isoformat()
    resp = _consent(api, customer, "opted_out", long_ago)
    assert resp.status_code == 201, resp.content
    assert resp.json()["state"]["sms"]["marketing"] == "opted_out"
    history = resp.json()["history"]
    # Newest recorded first; the claimed times are kept as they were given (evidence).
    assert [row["status"] for row in history] == ["opted_out", "opted_in"]
    assert history[0]["occurred_at"] < history[1]["occurred_at"]
    assert history[0]["recorded_at"] >= history[1]["recorded_at"]
    sent = _send_marketing(api, sms, customer)
    assert (sent["status"], sent["error_code"]) == ("blocked", "consent:opted_out")


def test_a_channel_wide_opt_out_recorded_later_beats_a_back_dated_purpose_opt_in(api, workspace):
    sms = factories.channel_create(workspace, "sms")
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    assert _consent(api, customer, "opted_out", purpose="").status_code == 201
    back = (timezone.now() + timedelta(minutes=3)).isoformat()
    # Claims to be newer than the STOP but is recorded after it: as a purpose row recorded later it
    # re-grants marketing, which is the ledger's rule for a later explicit opt-in, not the claimed time.
    assert _consent(api, customer, "opted_in", back).status_code == 201
    assert _send_marketing(api, sms, customer)["status"] == "queued"
    assert _consent(api, customer, "opted_out", purpose="").status_code == 201
    assert _send_marketing(api, sms, customer)["status"] == "blocked"


def test_a_time_within_the_clock_skew_is_accepted_and_kept(api, workspace):
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    claimed = timezone.now() + timedelta(minutes=2)
    resp = _consent(api, customer, "opted_in", claimed.isoformat())
    assert resp.status_code == 201, resp.content
    row = ConsentEvent.objects.get(customer=customer)
    assert abs((row.occurred_at - claimed).total_seconds()) < 1
    assert row.created_at <= timezone.now()
