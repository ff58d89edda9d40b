"""Attributes, tags, time zone; duplicate suggestions; GDPR export and erasure; CSV import."""

from __future__ import annotations

import json

import pytest

from channels_inbound.models import ProviderEvent
from customers.consent import consent_record, consent_state
from customers.duplicates import (
    email_canonical,
    merge_suggestion_accept,
    merge_suggestion_dismiss,
    merge_suggestion_list,
    merge_suggestions_find,
)
from customers.imports import customer_import_create, customer_import_run
from customers.merging import customer_merge
from customers.models import Customer, CustomerErasure, Identity
from customers.privacy import customer_erase, customer_export
from customers.profile import ProfileInvalid, attribute_define, customer_timezone, customer_update
from engagement.models import Conversation, Interaction
from tests import factories
from tests.customers.conftest import inbound

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------- profile


def test_typed_attributes_are_validated_and_coerced(workspace):
    attribute_define(workspace=workspace, key="ltv", label="Lifetime value", type="number")
    attribute_define(workspace=workspace, key="vip", label="VIP", type="boolean")
    attribute_define(workspace=workspace, key="birthday", label="Birthday", type="date")
    attribute_define(workspace=workspace, key="plan", label="Plan", type="string")
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    customer = customer_update(
        workspace=workspace,
        customer=customer,
        attributes={"ltv": "12.50", "vip": "yes", "birthday": "1990-02-03", "plan": "pro"},
    )
    assert customer.attributes == {"ltv": 12.5, "vip": True, "birthday": "1990-02-03", "plan": "pro"}
    for bad in ({"ltv": "lots"}, {"vip": "maybe"}, {"birthday": "3 Feb"}, {"colour": "red"}):
        with pytest.raises(ProfileInvalid):
            customer_update(workspace=workspace, customer=customer, attributes=bad)
    customer = customer_update(workspace=workspace, customer=customer, attributes={"plan": None})
    assert "plan" not in customer.attributes


def test_tags_timezone_and_preferred_channel(workspace):
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    assert customer_timezone(customer=customer) == ("America/Los_Angeles", "phone")
    customer = customer_update(
        workspace=workspace,
        customer=customer,
        tags=["vip", "vip", "beta"],
        timezone="Europe/Oslo",
        preferred_channel="email",
    )
    assert customer.tags == ["vip", "beta"]
    assert customer_timezone(customer=customer) == ("Europe/Oslo", "explicit")
    assert customer.preferred_channel == "email"
    with pytest.raises(ProfileInvalid):
        customer_update(workspace=workspace, customer=customer, timezone="Mars/Olympus")
    with pytest.raises(ProfileInvalid):
        customer_update(workspace=workspace, customer=customer, preferred_channel="fax")
    assert list(Customer.objects.filter(workspace=workspace, tags__contains=["beta"])) == [customer]


# ---------------------------------------------------------------- duplicates


def test_duplicate_finder_ranks_suggestions_and_respects_dismissals(workspace):
    a = factories.customer_create(workspace, ("email", "jane.doe+shop@gmail.com"))
    b = factories.customer_create(workspace, ("email", "janedoe@googlemail.com"))
    c = factories.customer_create(workspace, ("phone", "+14155550100"), name="Bob Smith")
    d = factories.customer_create(workspace, ("phone", "+442075550100"), name="bob smith ")
    e = factories.customer_create(workspace, ("email", "bob@acme.example"), name="Carol King")
    f = factories.customer_create(workspace, ("email", "carol@acme.example"), name="Carol King")
    factories.customer_create(workspace, ("email", "x@gmail.com"), name="Dan")
    factories.customer_create(workspace, ("email", "y@gmail.com"), name="Dan")  # webmail domain: no match
    assert email_canonical("jane.doe+shop@gmail.com") == "janedoe@gmail.com"
    merge_suggestions_find(workspace=workspace)
    ranked = merge_suggestion_list(workspace=workspace)
    assert [(s.customer_a_id, s.customer_b_id, s.reason) for s in ranked] == [
        (a.pk, b.pk, "same_email"),
        (c.pk, d.pk, "same_name_phone"),
        (e.pk, f.pk, "same_name_email_domain"),
    ]
    merge_suggestion_dismiss(workspace=workspace, suggestion=ranked[2])
    record = merge_suggestion_accept(workspace=workspace, suggestion=ranked[0])
    assert (record.survivor_id, record.merged_id, record.source) == (a.pk, b.pk, "suggestion")
    merge_suggestions_find(workspace=workspace)
    assert [s.reason for s in merge_suggestion_list(workspace=workspace)] == ["same_name_phone"]


# ---------------------------------------------------------------- GDPR


def test_export_holds_everything_as_json(workspace, sms, email_channel):
    message = inbound(sms, "+14155550100", "my order 42", name="Ann")
    other = inbound(email_channel, "ann@example.com", "also me")
    consent_record(
        customer=message.customer, channel="sms", status="opted_in", purpose="marketing", source="agent"
    )
    customer_merge(workspace=workspace, survivor=message.customer, merged=other.customer, source="agent")
    data = json.loads(json.dumps(customer_export(workspace=workspace, customer=message.customer)))
    assert data["customer"]["display_name"] == "Ann"
    assert {i["value"] for i in data["identities"]} == {"+14155550100", "ann@example.com"}
    assert [t["body"] for t in data["timeline"]] == ["my order 42", "also me"]
    assert data["consent"]["state"]["sms"]["marketing"] == "opted_in"
    assert data["consent"]["history"][0]["source"] == "agent"
    assert data["merges"][0]["merged_id"] == other.customer_id
    assert data["customer"]["merged_customer_ids"] == [other.customer_id]


def test_erase_removes_personal_data_keeps_counts_and_audits(workspace, client, sms_channel):
    from tests.conftest import post_twilio

    params = {
        "MessageSid": "SM" + "b" * 32,
        "AccountSid": sms_channel.config["account_sid"],
        "From": "+14155550100",
        "To": sms_channel.address,
        "Body": "I live at 1 Main St",
        "NumMedia": "0",
    }
    assert post_twilio(client, sms_channel, "inbound", params).status_code == 200
    message = Interaction.objects.get()
    customer = message.customer
    customer_update(workspace=workspace, customer=customer, display_name="Ann", tags=["vip"])
    consent_record(
        customer=customer,
        channel="sms",
        status="opted_out",
        source="agent",
        evidence={"note": "called"},
        address="+14155550100",
    )
    admin = factories.member(workspace, "admin")
    audit = customer_erase(
        workspace=workspace, customer=customer, actor=admin, via="console", reason="request #7"
    )
    customer.refresh_from_db()
    message.refresh_from_db()
    assert (customer.display_name, customer.tags, customer.erased_at is not None) == ("", [], True)
    assert not Identity.objects.filter(customer=customer).exists()
    assert (message.body, message.customer_address, message.status) == ("", "", "received")
    assert Interaction.objects.filter(customer=customer).count() == 1  # counts survive
    assert Conversation.objects.get(customer=customer).last_message_preview == ""
    assert ProviderEvent.objects.get(provider_event_id="SM" + "b" * 32).payload == {}
    # The opt-out stays in force (status kept), its evidence is gone.
    assert consent_state(customer=customer, channel="sms", purpose="transactional") == "opted_out"
    assert customer.consent_events.get().evidence == {}
    assert audit.counts["interactions"] == 1
    assert audit.counts["identities"] == 1
    assert CustomerErasure.objects.get().actor_id == admin.pk
    assert "1 Main St" not in json.dumps(customer_export(workspace=workspace, customer=customer))
    # The next message from that number starts a new customer.
    params["MessageSid"] = "SM" + "c" * 32
    post_twilio(client, sms_channel, "inbound", params)
    assert Interaction.objects.get(provider_message_id=params["MessageSid"]).customer_id != customer.pk


# ---------------------------------------------------------------- CSV import

CSV = """name,email,phone,tags,attr:plan,consent:email:marketing,timezone
Ann,ann@example.com,+14155550100,vip;beta,pro,opted_in,Europe/Oslo
Ann again,ANN@example.com,,newsletter,,,
Bob,bob@example.com,not-a-phone,,,,
Cid,,,,,,
Dee,dee@example.com,,,gold,opted_in,
Eve,eve@example.com,,,,maybe,
"""


@pytest.mark.parametrize("batch_size", [1, 2, 500])
def test_csv_import_deduplicates_reports_bad_rows_and_keeps_the_good(workspace, batch_size):
    """The same outcome whether rows go one by one, in pairs (Ann's two rows in one batch) or all in
    one batch (bulk path for the rows that need no decision)."""
    attribute_define(workspace=workspace, key="plan", label="Plan", type="string")
    existing = factories.customer_create(workspace, ("email", "dee@example.com"))
    imp = customer_import_create(workspace=workspace, source=CSV, filename="people.csv")
    imp = customer_import_run(import_id=imp.pk, batch_size=batch_size)
    assert (imp.status, imp.total_rows, imp.processed_rows) == ("done", 6, 6)
    assert (imp.created_count, imp.updated_count, imp.failed_count) == (1, 2, 3)
    assert [e["row"] for e in imp.errors] == [3, 4, 6]
    assert "not-a-phone" in imp.errors[0]["error"]
    ann = Identity.objects.get(value="ann@example.com").customer
    assert ann.display_name == "Ann"
    assert ann.tags == ["vip", "beta", "newsletter"]
    assert (ann.attributes, ann.timezone) == ({"plan": "pro"}, "Europe/Oslo")
    assert consent_state(customer=ann, channel="email", purpose="marketing") == "opted_in"
    assert Identity.objects.get(value="+14155550100").customer_id == ann.pk
    existing.refresh_from_db()
    assert existing.attributes == {"plan": "gold"}
    # Bob's bad row left nothing behind.
    assert not Identity.objects.filter(value="bob@example.com").exists()
    # Running it again changes nothing.
    assert customer_import_run(import_id=imp.pk).processed_rows == 6


def test_csv_import_bulk_path_links_updates_merges_and_suggests_like_single_upserts(workspace):
    """One batch holding every kind of row: new customers, a returning one gaining a phone, a verified
    row tying two customers together (merged), an unverified one (suggested), a repeat within the batch."""
    from customers.models import ConsentEvent, CustomerMerge, MergeSuggestion

    attribute_define(workspace=workspace, key="ltv", label="Lifetime value", type="number")
    old = factories.customer_create(workspace, ("email", "old@example.com"), name="Old")
    a = factories.customer_create(workspace, ("email", "a@example.com"))
    b = factories.customer_create(workspace, ("phone", "+14155550101"))
    c = factories.customer_create(workspace, ("email", "c@example.com"))
    d = factories.customer_create(workspace, ("phone", "+14155550102"))
    csv_text = (
        "name,email,phone,verified,attr:ltv,consent:sms:all,tags\n"
        "New One,new1@example.com,+14155550200,,10,opted_in,x\n"
        "Renamed,OLD@example.com,(415) 555-0300,,12.5,,y\n"
        "Linked,a@example.com,+14155550101,true,,,\n"
        "Claimed,c@example.com,+14155550102,,,,\n"
        "Twice,twice@example.com,,,1,,\n"
        "Twice again,twice@example.com,+14155550400,,2,opted_out,\n"
        "Bad,bad@example.com,,,lots,,\n"
    )
    imp = customer_import_create(workspace=workspace, source=csv_text)
    imp = customer_import_run(import_id=imp.pk)
    assert (imp.created_count, imp.updated_count, imp.failed_count) == (2, 4, 1)
    assert imp.errors == [{"row": 7, "error": "ltv: 'lots' is not a number"}]
    new1 = Identity.objects.get(value="new1@example.com").customer
    assert (new1.display_name, new1.attributes, new1.tags) == ("New One", {"ltv": 10}, ["x"])
    assert Identity.objects.get(value="+14155550200").customer_id == new1.pk
    assert ConsentEvent.objects.get(customer=new1).evidence == {"import_id": imp.pk, "row": 1}
    old.refresh_from_db()
    assert (old.display_name, old.attributes, old.tags) == ("Old", {"ltv": 12.5}, ["y"])
    assert Identity.objects.get(value="+14155550300").customer_id == old.pk
    assert CustomerMerge.objects.filter(survivor=a, merged=b).exists()
    assert Identity.objects.get(value="+14155550101").customer_id == a.pk
    assert MergeSuggestion.objects.filter(customer_a_id=min(c.pk, d.pk), customer_b_id=max(c.pk, d.pk))
    twice = Identity.objects.get(value="twice@example.com").customer
    assert (twice.display_name, twice.attributes) == ("Twice", {"ltv": 2})
    assert Identity.objects.get(value="+14155550400").customer_id == twice.pk
    assert consent_state(customer=twice, channel="sms", purpose="marketing") == "opted_out"
    assert not Identity.objects.filter(value="bad@example.com").exists()


def test_csv_import_falls_back_to_row_by_row_when_the_bulk_write_loses_a_race(workspace, monkeypatch):
    from django.db import IntegrityError

    from customers import imports

    def lose_the_race(*args, **kwargs):
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr(imports, "_batch_bulk_apply", lose_the_race)
    imp = customer_import_create(workspace=workspace, source="email,phone\na@example.com,\nb@example.com,x\n")
    imp = customer_import_run(import_id=imp.pk)
    assert (imp.created_count, imp.failed_count, [e["row"] for e in imp.errors]) == (1, 1, [2])
    assert Identity.objects.filter(value="a@example.com").exists()


def test_csv_import_set_based_insert_refuses_an_identifier_taken_meanwhile(workspace):
    """The batch's COPY of new identities refuses an identifier another writer created after the batch
    looked it up, and says so, so the batch goes row by row through resolution instead."""
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    from customers import imports

    taken = factories.customer_create(workspace, ("email", "taken@example.com"))
    fresh = factories.customer_create(workspace, ("email", "fresh@example.com"))
    now = timezone.now()
    rows = [
        (workspace.pk, fresh.pk, "email", "new@example.com", False, "", now, "", now),
        (workspace.pk, fresh.pk, "email", "taken@example.com", False, "", now, "", now),
    ]
    with pytest.raises(IntegrityError, match="created meanwhile"), transaction.atomic():
        imports._identities_insert(rows)
    assert Identity.objects.get(value="taken@example.com").customer_id == taken.pk
    assert not Identity.objects.filter(value="new@example.com").exists()
    imports._identities_insert(rows[:1])
    assert Identity.objects.get(value="new@example.com").customer_id == fresh.pk
