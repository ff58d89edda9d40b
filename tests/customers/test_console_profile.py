"""The console's customer profile: shows the single view, merges with a preview, undoes, records
consent, exports and (admins only) erases."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from customers.consent import consent_record
from customers.models import Customer, CustomerMerge
from customers.resolution import suggestion_record
from engagement.models import Role
from tests import factories
from tests.customers.conftest import inbound

pytestmark = pytest.mark.django_db


def _login(user):
    client = Client()
    client.force_login(user)
    return client


def test_profile_shows_identities_consent_timeline_and_blocked_sends(workspace, agent_client, sms):
    from engagement.services.messaging import message_send

    message = inbound(sms, "+14155550100", "hello there", name="Ann")
    customer = message.customer
    consent_record(customer=customer, channel="sms", status="opted_out", source="agent")
    message_send(workspace=workspace, channel=sms, customer=customer, body="are you there?")
    page = agent_client.get(f"/customers/{customer.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    for text in ("Ann", "+14155550100", "✓", "hello there", "Blocked: the customer opted out", "opted_out"):
        assert text in html


def test_preview_then_merge_then_undo(workspace, agent_client):
    ann = factories.customer_create(workspace, ("email", "ann@example.com"), name="Ann")
    dup = factories.customer_create(workspace, ("phone", "+14155550100"))
    preview = agent_client.get(f"/customers/{ann.pk}/", {"merge": dup.pk}).content.decode()
    assert "+14155550100" in preview
    assert Customer.objects.get(pk=dup.pk).merged_into_id is None
    agent_client.post(f"/customers/{ann.pk}/merge/", {"other_id": dup.pk, "note": "same"})
    assert Customer.objects.get(pk=dup.pk).merged_into_id == ann.pk
    redirect = agent_client.get(f"/customers/{dup.pk}/")
    assert redirect["Location"] == f"/customers/{ann.pk}/"
    merge = CustomerMerge.objects.get()
    assert "Undo" in agent_client.get(f"/customers/{ann.pk}/").content.decode()
    agent_client.post(f"/customer-merges/{merge.pk}/undo/")
    assert Customer.objects.get(pk=dup.pk).merged_into_id is None


def test_suggestion_accept_and_consent_form(workspace, agent_client):
    a = factories.customer_create(workspace, ("email", "a@example.com"))
    b = factories.customer_create(workspace, ("email", "b@example.com"))
    suggestion = suggestion_record(workspace=workspace, a=a, b=b, reason="same_email", score=0.9, evidence={})
    assert suggestion is not None
    assert "same_email" in agent_client.get(f"/customers/{a.pk}/").content.decode()
    agent_client.post(f"/merge-suggestions/{suggestion.pk}/", {"decision": "accept", "back": a.pk})
    assert Customer.objects.get(pk=b.pk).merged_into_id == a.pk
    agent_client.post(
        f"/customers/{a.pk}/consent/", {"channel": "email", "purpose": "marketing", "status": "opted_in"}
    )
    event = a.consent_events.get()
    assert (event.source, event.status) == ("agent", "opted_in")


def test_export_download_and_erase_is_for_admins(workspace, agent_client):
    ann = factories.customer_create(workspace, ("email", "ann@example.com"), name="Ann")
    export = agent_client.get(f"/customers/{ann.pk}/export/")
    assert json.loads(export.content)["identities"][0]["value"] == "ann@example.com"
    assert agent_client.post(f"/customers/{ann.pk}/erase/", {"confirm": "erase"}).status_code == 403
    admin = _login(factories.member(workspace, Role.ADMIN))
    admin.post(f"/customers/{ann.pk}/erase/", {"confirm": "nope"})
    assert Customer.objects.get(pk=ann.pk).erased_at is None
    admin.post(f"/customers/{ann.pk}/erase/", {"confirm": "erase", "reason": "ticket 9"})
    assert Customer.objects.get(pk=ann.pk).erased_at is not None


def test_other_workspaces_customers_are_404(workspace, agent_client):
    theirs = factories.customer_create(factories.workspace_create(), ("email", "x@example.com"))
    mine = factories.customer_create(workspace, ("email", "me@example.com"))
    assert agent_client.get(f"/customers/{theirs.pk}/").status_code == 404
    assert agent_client.get(f"/customers/{theirs.pk}/export/").status_code == 404
    agent_client.post(f"/customers/{mine.pk}/merge/", {"other_id": theirs.pk})
    assert Customer.objects.get(pk=theirs.pk).merged_into_id is None


def test_dismissing_a_suggestion_with_a_garbled_back_link_returns_to_the_pair(workspace, agent_client):
    a = factories.customer_create(workspace, ("email", "c@example.com"))
    b = factories.customer_create(workspace, ("email", "d@example.com"))
    suggestion = suggestion_record(workspace=workspace, a=a, b=b, reason="same_email", score=0.9, evidence={})
    assert suggestion is not None
    resp = agent_client.post(f"/merge-suggestions/{suggestion.pk}/", {"decision": "dismiss", "back": "x"})
    assert (resp.status_code, resp["Location"]) == (302, f"/customers/{suggestion.customer_a_id}/")
    suggestion.refresh_from_db()
    assert suggestion.status == "dismissed"
