"""Issue 9, kind 7: every lookup of a customer by id follows merges.

A customer id reaches us from outside the request's own lookup in many ways: a signed unsubscribe link,
a provider callback carrying our interaction id, an API or console URL, a Celery task argument, a queued
message, a customer row read before a merge, a stored merge suggestion. Each goes through the one
merge-following lookup (``customers.lookup``), so what it does lands on the customer who lives on, never
on the merged-away tombstone. One test per entry point, named ``test_merge_following_<entry point>``.

Where a test puts an interaction on a tombstone directly, it stands for a row written concurrently with
the merge (after the merge listed what to move), which the merge therefore left behind.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from channels_inbound.webchat.services import Visitor, webchat_message_receive
from channels_outbound.services import Outcome, outbound_interaction_send
from customers.consent import consent_check_send, consent_record, consent_state
from customers.duplicates import merge_suggestion_accept
from customers.imports import customer_import_create
from customers.lookup import CustomerNotFound, customer_resolve_current
from customers.merging import customer_merge
from customers.models import ConsentEvent, Customer, CustomerMerge, MergeSuggestion
from customers.resolution import suggestion_record
from customers.services import Identifier, customer_resolve
from customers.tasks import run_import_task as run_import
from engagement.models import AutomationRule, Interaction, Membership
from engagement.services.calls import call_click_to_call
from engagement.services.email_threading import unsubscribe_url
from engagement.services.messaging import message_send
from engagement.services.tenancy import api_key_create
from engagement.tasks import run_automations_task as run_automations
from tests import factories
from tests.conftest import load_payload, post_twilio, webhook_path
from tests.customers.conftest import inbound
from tests.fakes.sendgrid_server import sendgrid_channel, signed_event_headers
from tests.fakes.twilio_server import OPTED_OUT_NUMBER

pytestmark = pytest.mark.django_db


@pytest.fixture
def mail(workspace, fake_sendgrid):
    """An email channel that sends through the real SendGrid SDK to the fake SendGrid."""
    return sendgrid_channel(workspace, fake_sendgrid)


def _merge(workspace, survivor: Customer, merged: Customer) -> tuple[Customer, Customer]:
    customer_merge(workspace=workspace, survivor=survivor, merged=merged, source="agent")
    return Customer.objects.get(pk=survivor.pk), Customer.objects.get(pk=merged.pk)


def _pair(workspace) -> tuple[Customer, Customer]:
    """A (phone, older) and B (email); B is merged into A. Returns (A, B) as they are now."""
    a, _ = customer_resolve(workspace=workspace, identifier=Identifier("phone", "+14155550100"))
    b, _ = customer_resolve(workspace=workspace, identifier=Identifier("email", "grace@example.com"))
    return _merge(workspace, a, b)


def _left_on(
    customer: Customer, channel, *, status="sent", direction="outbound", **fields: Any
) -> Interaction:
    """An interaction written for ``customer`` concurrently with its merge, so the merge left it there."""
    now = timezone.now()
    address = "+14155550100" if channel.kind in ("sms", "voice") else "grace@example.com"
    return Interaction.objects.create(
        workspace_id=customer.workspace_id,
        customer=customer,
        channel=channel,
        direction=direction,
        body=fields.pop("body", "hello"),
        customer_address=fields.pop("customer_address", address),
        status=status,
        status_changed_at=now,
        created_at=now,
        **fields,
    )


def _stop(workspace, channel, customer: Customer) -> None:
    consent_record(customer=customer, channel=channel.kind, status="opted_out", source="sms_keyword")


def _api(workspace) -> APIClient:
    _, secret = api_key_create(workspace=workspace, name="t")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


# ---------------------------------------------------------------- the lookup itself


def test_merge_following_lookup_follows_a_chain_in_one_query(workspace, django_assert_num_queries):
    a = factories.customer_create(workspace, name="A")
    b = factories.customer_create(workspace, name="B")
    c = factories.customer_create(workspace, name="C")
    _merge(workspace, b, c)
    _merge(workspace, a, b)  # C -> B -> A
    with django_assert_num_queries(1):
        assert customer_resolve_current(workspace_id=workspace.pk, customer_id=c.pk).pk == a.pk
    assert customer_resolve_current(workspace_id=workspace.pk, customer_id=a.pk).pk == a.pk
    other = factories.workspace_create(name="Other")
    with pytest.raises(CustomerNotFound):
        customer_resolve_current(workspace_id=other.pk, customer_id=c.pk)
    with pytest.raises(CustomerNotFound):
        customer_resolve_current(workspace_id=workspace.pk, customer_id=10**9)


# ---------------------------------------------------------------- signed links


def test_merge_following_unsubscribe_link(client, workspace, mail, fake_sendgrid):
    """The issue's case: marketing mail to B, B merged into A, B's one-click link POSTed."""
    b, _ = customer_resolve(workspace=workspace, identifier=Identifier("email", "grace@example.com"))
    consent_record(customer=b, channel="email", purpose="marketing", status="opted_in", source="api")
    sale, _ = message_send(
        workspace=workspace, channel=mail, customer=b, body="Spring sale!", purpose="marketing"
    )
    assert outbound_interaction_send(interaction_id=sale.pk).outcome == Outcome.SENT
    link = fake_sendgrid.messages[0]["headers"]["List-Unsubscribe"].strip("<>")
    a, _ = customer_resolve(workspace=workspace, identifier=Identifier("phone", "+14155550100"))
    a, b = _merge(workspace, a, b)
    assert consent_state(customer=a, channel="email", purpose="marketing") == "opted_in"  # B's opt-in moved

    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    resp = client.post(
        path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert resp.status_code == 200
    assert consent_state(customer=a, channel="email", purpose="marketing") == "opted_out"
    assert not ConsentEvent.objects.filter(customer=b).exists()
    following, _ = message_send(
        workspace=workspace, channel=mail, customer=a, body="Summer sale!", purpose="marketing"
    )
    assert following.status == "blocked"
    # Repeats record nothing more.
    client.post(path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert ConsentEvent.objects.filter(customer=a, status="opted_out").count() == 1


def test_merge_following_unsubscribe_link_stays_within_the_channels_workspace(client, workspace, mail):
    other = factories.workspace_create(name="Other")
    stranger = factories.customer_create(other, ("email", "x@example.com"))
    url = unsubscribe_url(customer_id=stranger.pk, channel_id=mail.pk, interaction_id=1)
    resp = client.post("/" + url.split("://", 1)[1].split("/", 1)[1], data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 404
    assert not ConsentEvent.objects.exists()


# ---------------------------------------------------------------- provider callbacks carrying our ids


def test_merge_following_sendgrid_event_webhook(client, workspace, mail, fake_sendgrid):
    a, b = _pair(workspace)
    sent = _left_on(b, mail, provider_message_id="MSGID0001")
    event = {
        "event": "unsubscribe",
        "sg_event_id": "ev-1",
        "sg_message_id": "MSGID0001.filter.0",
        "timestamp": 1700000000,
        "iid": str(sent.pk),  # our custom arg, echoed back
    }
    body = (json.dumps([event]) + "\r\n").encode()
    resp = client.post(
        webhook_path(mail, "events"),
        data=body,
        content_type="application/json",
        headers=signed_event_headers(fake_sendgrid.private_key, body),
    )
    assert resp.status_code == 200, resp.content
    assert consent_state(customer=a, channel="email", purpose="marketing") == "opted_out"
    assert not ConsentEvent.objects.filter(customer=b).exists()
    sent.refresh_from_db()
    assert sent.customer_id == a.pk  # the message joins the survivor's timeline


def test_merge_following_twilio_status_callback(client, workspace, sms_channel):
    a, b = _pair(workspace)
    sent = _left_on(b, sms_channel, status="queued", provider_message_id="SM3eab196XXXXXXXXXXXXXeceaa93")
    first, _ = load_payload("twilio_status_callback_sent_then_delivered.json")
    assert post_twilio(client, sms_channel, "status", first, query=f"iid={sent.pk}").status_code == 200
    sent.refresh_from_db()
    assert (sent.status, sent.customer_id) == ("sent", a.pk)


def test_merge_following_twilio_voice_status_callback(client, workspace, fake_twilio):
    voice = factories.twilio_channel(workspace, fake_twilio, kind="voice")
    a, b = _pair(workspace)
    sid = "CA" + "e" * 32
    call = _left_on(b, voice, status="queued", kind="call", provider_message_id=sid)
    form = dict(load_payload("twilio_inbound_voice_call.json")[0])
    form.update(CallSid=sid, CallStatus="completed", CallDuration="31", Direction="outbound-api")
    assert post_twilio(client, voice, "call-status", form, query=f"iid={call.pk}").status_code == 200
    call.refresh_from_db()
    assert (call.customer_id, call.duration_seconds) == (a.pk, 31)


# ---------------------------------------------------------------- queued messages and the send task


def test_merge_following_send_task_rechecks_consent_against_the_survivor(workspace, sms_channel, fake_twilio):
    a, b = _pair(workspace)
    _stop(workspace, sms_channel, a)
    queued = _left_on(b, sms_channel, status="queued", metadata={"purpose": "transactional"})
    attempt = outbound_interaction_send(interaction_id=queued.pk)
    queued.refresh_from_db()
    assert attempt.outcome == Outcome.BLOCKED
    assert (queued.status, queued.error_code, queued.customer_id) == ("blocked", "consent:opted_out", a.pk)
    assert fake_twilio.messages == []


def test_merge_following_message_send_with_a_row_read_before_the_merge(workspace, sms):
    a, _ = customer_resolve(workspace=workspace, identifier=Identifier("phone", "+14155550100"))
    b, _ = customer_resolve(workspace=workspace, identifier=Identifier("phone", "+14155550199"))
    stale_b = Customer.objects.get(pk=b.pk)  # e.g. a campaign's audience, loaded a while ago
    a, b = _merge(workspace, a, b)
    _stop(workspace, sms, a)
    out, _ = message_send(workspace=workspace, channel=sms, customer=stale_b, body="Your order shipped")
    assert (out.customer_id, out.status) == (a.pk, "blocked")
    assert out.conversation is not None
    assert out.conversation.customer_id == a.pk


# ---------------------------------------------------------------- Celery task arguments


def test_merge_following_automation_task(workspace, sms):
    AutomationRule.objects.create(workspace=workspace, name="all", match_type="any", template="Thanks!")
    first = inbound(sms, "+14155550100", "hello")
    a = first.customer
    b, _ = customer_resolve(workspace=workspace, identifier=Identifier("email", "grace@example.com"))
    a, b = _merge(workspace, a, b)
    _stop(workspace, sms, a)
    message = _left_on(
        b,
        sms,
        status="received",
        direction="inbound",
        conversation=first.conversation,
        provider_message_id="SMx1",
    )
    run_automations({"name": "message.received", "workspace_id": workspace.pk, "interaction_id": message.pk})
    [reply] = Interaction.objects.filter(direction="outbound")
    assert (reply.customer_id, reply.status) == (a.pk, "blocked")


def test_merge_following_import_task(workspace):
    a, b = _pair(workspace)
    imp = customer_import_create(
        workspace=workspace, source="email,consent:email:marketing\ngrace@example.com,opted_out\n"
    )
    run_import(imp.pk)
    assert consent_state(customer=a, channel="email", purpose="marketing") == "opted_out"
    assert not ConsentEvent.objects.filter(customer=b).exists()


def test_merge_following_send_task_provider_opt_out(workspace, sms_channel, fake_twilio):
    """Twilio refuses with 21610 (the number had texted STOP to Twilio): the opt-out is the survivor's."""
    a, b = _pair(workspace)
    queued = _left_on(
        b,
        sms_channel,
        status="queued",
        customer_address=OPTED_OUT_NUMBER,
        metadata={"purpose": "transactional"},
    )
    assert outbound_interaction_send(interaction_id=queued.pk).outcome == Outcome.FAILED
    consent = ConsentEvent.objects.get()
    assert (consent.customer_id, consent.source) == (a.pk, "provider_error")
    assert consent_state(customer=a, channel="sms", purpose="transactional") == "opted_out"


# ---------------------------------------------------------------- the consent ledger handed a tombstone


def test_merge_following_consent_record_with_a_tombstone(workspace):
    a, b = _pair(workspace)
    event = consent_record(customer=b, channel="email", purpose="marketing", status="opted_in", source="api")
    assert event.customer_id == a.pk
    assert consent_state(customer=a, channel="email", purpose="marketing") == "opted_in"
    assert consent_state(customer=b, channel="email", purpose="marketing") == "opted_in"


def test_merge_following_consent_check_send_with_a_tombstone(workspace):
    a, b = _pair(workspace)
    consent_record(customer=a, channel="sms", status="opted_out", source="sms_keyword")
    assert not consent_check_send(customer=b, channel_kind="sms", purpose="transactional").allowed
    consent_record(customer=a, channel="email", purpose="marketing", status="opted_in", source="api")
    assert consent_check_send(customer=b, channel_kind="email", purpose="marketing").allowed


# ---------------------------------------------------------------- API paths


def test_merge_following_api_message_create(workspace, sms):
    a, b = _pair(workspace)
    _stop(workspace, sms, a)
    resp = _api(workspace).post(
        "/api/v1/messages/", {"channel_id": sms.pk, "customer_id": b.pk, "body": "Hi"}, format="json"
    )
    assert resp.status_code == 202, resp.content
    assert (resp.json()["customer_id"], resp.json()["status"]) == (a.pk, "blocked")


def test_merge_following_api_customer_paths(workspace):
    a, b = _pair(workspace)
    api = _api(workspace)
    resp = api.get(f"/api/v1/customers/{b.pk}/timeline/?page_size=5")
    assert resp.status_code == 301
    assert resp["Location"] == f"/api/v1/customers/{a.pk}/timeline/?page_size=5"
    resp = api.post(
        f"/api/v1/customers/{b.pk}/consent/", {"channel": "sms", "status": "opted_out"}, format="json"
    )
    assert (resp.status_code, resp.json()["merged_into"]) == (410, a.pk)
    assert not ConsentEvent.objects.exists()


def test_merge_following_api_merge_other_id(workspace):
    a, b = _pair(workspace)
    c = factories.customer_create(workspace, ("email", "c@example.com"))
    resp = _api(workspace).post(f"/api/v1/customers/{c.pk}/merge/", {"other_id": b.pk}, format="json")
    assert resp.status_code == 201, resp.content
    assert (resp.json()["survivor_id"], resp.json()["merged_id"]) == (c.pk, a.pk)


# ---------------------------------------------------------------- console URLs


def test_merge_following_console_profile(workspace, agent_client: Client):
    a, b = _pair(workspace)
    resp = agent_client.get(f"/customers/{b.pk}/")
    assert (resp.status_code, resp["Location"]) == (302, f"/customers/{a.pk}/")


def test_merge_following_console_consent_form(workspace, agent_client: Client):
    """A profile page opened before the merge posts the agent's opt-out for the merged-away id."""
    a, b = _pair(workspace)
    resp = agent_client.post(
        f"/customers/{b.pk}/consent/", {"channel": "sms", "purpose": "", "status": "opted_out"}
    )
    assert (resp.status_code, resp["Location"]) == (302, f"/customers/{a.pk}/")
    assert consent_state(customer=a, channel="sms", purpose="transactional") == "opted_out"
    assert not ConsentEvent.objects.filter(customer=b).exists()


def test_merge_following_console_merge_form(workspace, agent_client: Client):
    a, b = _pair(workspace)
    c = factories.customer_create(workspace, ("email", "c@example.com"))
    resp = agent_client.post(f"/customers/{c.pk}/merge/", {"other_id": str(b.pk)})
    assert resp.status_code == 302
    assert CustomerMerge.objects.filter(survivor=c, merged=a).exists()


def test_merge_following_click_to_call(workspace, agent, fake_twilio):
    voice = factories.twilio_channel(workspace, fake_twilio, kind="voice")
    Membership.objects.filter(user=agent).update(phone="+14155550777")
    a, b = _pair(workspace)
    call = call_click_to_call(channel=voice, customer=b, agent=agent)
    assert (call.customer_id, call.customer_address) == (a.pk, "+14155550100")


# ---------------------------------------------------------------- stored ids: merge suggestions


def test_merge_following_merge_suggestion_accept(workspace):
    a = factories.customer_create(workspace, ("email", "a@example.com"), name="Sam")
    b = factories.customer_create(workspace, ("email", "b@example.com"), name="Sam")
    c = factories.customer_create(workspace, ("email", "c@example.com"), name="Sam")
    suggestion = suggestion_record(workspace=workspace, a=a, b=b, reason="same_name", score=0.5, evidence={})
    assert suggestion is not None
    _merge(workspace, c, b)  # B merged elsewhere since
    record = merge_suggestion_accept(workspace=workspace, suggestion=suggestion)
    assert {record.survivor_id, record.merged_id} == {a.pk, c.pk}
    suggestion.refresh_from_db()
    assert (suggestion.status, suggestion.merge_id) == ("accepted", record.pk)
    assert MergeSuggestion.objects.filter(status="pending").count() == 0


# ---------------------------------------------------------------- webchat verified identities


def test_merge_following_webchat_verified_identity(workspace):
    chat = factories.channel_create(workspace, "webchat")
    ada = Visitor(
        channel_id=chat.pk, visitor_id="u-ada", verified=True, user_id="ada-1", email="ada@example.com"
    )
    first, _ = webchat_message_receive(channel=chat, visitor=ada, client_id="client-0001", body="hi")
    phone_owner, _ = customer_resolve(workspace=workspace, identifier=Identifier("phone", "+14155550100"))
    _merge(workspace, phone_owner, first.customer)
    second, _ = webchat_message_receive(channel=chat, visitor=ada, client_id="client-0002", body="again")
    assert second.customer_id == phone_owner.pk
