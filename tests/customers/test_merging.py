"""Merges that explain themselves, their preview, the merged-id pointer, and undo."""

from __future__ import annotations

import pytest

from customers.consent import consent_record, consent_state
from customers.merging import (
    MergeRejected,
    customer_current,
    customer_merge,
    customer_merge_preview,
    customer_unmerge,
)
from customers.models import ConsentEvent, Customer, Identity
from engagement.models import Conversation, Interaction
from engagement.services.messaging import message_send
from tests import factories
from tests.customers.conftest import inbound

pytestmark = pytest.mark.django_db


def _owned(customer):
    return {
        "identities": set(Identity.objects.filter(customer=customer).values_list("value", flat=True)),
        "conversations": set(Conversation.objects.filter(customer=customer).values_list("pk", flat=True)),
        "interactions": set(Interaction.objects.filter(customer=customer).values_list("pk", flat=True)),
        "consents": set(ConsentEvent.objects.filter(customer=customer).values_list("pk", flat=True)),
    }


@pytest.fixture
def pair(workspace, sms, email_channel):
    """Ann (phone, SMS history, marketing opt-in) and Annie (email, email history, tags, attributes)."""
    ann_msg = inbound(sms, "+14155550100", "hi from my phone", name="Ann")
    ann = ann_msg.customer
    ann.attributes = {"plan": "pro", "city": "Oslo"}
    ann.tags = ["vip"]
    ann.save()
    consent_record(customer=ann, channel="sms", purpose="marketing", status="opted_in", source="agent")
    annie_msg = inbound(email_channel, "ann@example.com", "hi from my email")
    annie = annie_msg.customer
    annie.attributes = {"plan": "free", "lang": "no"}
    annie.tags = ["newsletter", "vip"]
    annie.timezone = "Europe/Oslo"
    annie.save()
    consent_record(
        customer=annie, channel="email", purpose="marketing", status="opted_out", source="unsubscribe_link"
    )
    ann.refresh_from_db()
    annie.refresh_from_db()
    return ann, annie


def test_preview_says_exactly_what_the_merge_moves(workspace, pair):
    ann, annie = pair
    before = _owned(annie)
    preview = customer_merge_preview(workspace=workspace, survivor=ann, merged=annie)
    assert [i["value"] for i in preview.identities] == ["ann@example.com"]
    assert set(preview.conversation_ids) == before["conversations"]
    assert preview.interaction_count == len(before["interactions"])
    assert preview.consent_event_count == 1
    assert preview.tags_added == ["newsletter"]
    assert preview.attributes_filled == {"lang": "no"}
    assert preview.attribute_conflicts == {"plan": {"kept": "pro", "dropped": "free"}}
    assert preview.profile_filled == {"timezone": "Europe/Oslo"}
    assert preview.result["attributes"] == {"plan": "pro", "city": "Oslo", "lang": "no"}
    # A preview writes nothing.
    assert _owned(annie) == before

    merge = customer_merge(workspace=workspace, survivor=ann, merged=annie, source="agent")
    assert [i["value"] for i in merge.moved["identities"]] == ["ann@example.com"]
    assert set(merge.moved["conversations"]) == before["conversations"]
    assert set(merge.moved["interactions"]) == before["interactions"]
    assert set(merge.moved["consent_events"]) == before["consents"]
    assert merge.moved["attribute_conflicts"] == preview.attribute_conflicts


def test_merge_moves_everything_and_applies_the_profile_rule(workspace, pair):
    ann, annie = pair
    a, b = _owned(ann), _owned(annie)
    agent = factories.member(workspace)
    merge = customer_merge(
        workspace=workspace,
        survivor=ann,
        merged=annie,
        source="agent",
        actor=agent,
        evidence={"note": "same person"},
    )
    ann.refresh_from_db()
    annie.refresh_from_db()
    assert _owned(ann) == {k: a[k] | b[k] for k in a}
    assert _owned(annie) == {k: set() for k in a}
    assert ann.attributes == {"plan": "pro", "city": "Oslo", "lang": "no"}  # the survivor's value wins
    assert ann.tags == ["vip", "newsletter"]
    assert ann.timezone == "Europe/Oslo"
    assert (annie.merged_into_id, merge.actor_id, merge.evidence) == (
        ann.pk,
        agent.pk,
        {"note": "same person"},
    )
    assert consent_state(customer=ann, channel="email", purpose="marketing") == "opted_out"
    assert consent_state(customer=ann, channel="sms", purpose="marketing") == "opted_in"


def test_the_merged_away_id_points_at_the_survivor_and_sends_follow_it(workspace, pair, sms):
    ann, annie = pair
    customer_merge(workspace=workspace, survivor=ann, merged=annie, source="agent")
    current = customer_current(workspace=workspace, customer_id=annie.pk)
    assert current is not None
    assert current.pk == ann.pk
    annie.refresh_from_db()
    sent, _ = message_send(workspace=workspace, channel=sms, customer=annie, body="hello")
    assert sent.customer_id == ann.pk


def test_refusals(workspace, pair):
    ann, annie = pair
    with pytest.raises(MergeRejected):
        customer_merge(workspace=workspace, survivor=ann, merged=ann, source="agent")
    stranger = factories.customer_create(factories.workspace_create(), ("phone", "+14155550199"))
    with pytest.raises(MergeRejected):
        customer_merge(workspace=workspace, survivor=ann, merged=stranger, source="agent")
    merge = customer_merge(workspace=workspace, survivor=ann, merged=annie, source="agent")
    with pytest.raises(MergeRejected):
        customer_merge(workspace=workspace, survivor=ann, merged=annie, source="agent")
    customer_unmerge(workspace=workspace, merge=merge)
    with pytest.raises(MergeRejected):
        customer_unmerge(workspace=workspace, merge=merge)


def test_undo_splits_back_exactly(workspace, pair):
    ann, annie = pair
    a, b = _owned(ann), _owned(annie)
    a_profile = (ann.attributes, ann.tags, ann.timezone, ann.display_name)
    b_profile = (annie.attributes, annie.tags, annie.timezone, annie.display_name)
    merge = customer_merge(workspace=workspace, survivor=ann, merged=annie, source="agent")
    undone = customer_unmerge(workspace=workspace, merge=merge)
    ann.refresh_from_db()
    annie.refresh_from_db()
    assert (_owned(ann), _owned(annie)) == (a, b)
    assert (ann.attributes, ann.tags, ann.timezone, ann.display_name) == a_profile
    assert (annie.attributes, annie.tags, annie.timezone, annie.display_name) == b_profile
    assert annie.merged_into_id is None
    assert undone.undone_at is not None


def test_what_arrives_after_the_merge_goes_where_its_identity_lives(workspace, pair, sms, email_channel):
    ann, annie = pair
    a, b = _owned(ann), _owned(annie)
    merge = customer_merge(workspace=workspace, survivor=ann, merged=annie, source="agent")
    from_email = inbound(email_channel, "ann@example.com", "written while merged")
    from_phone = inbound(sms, "+14155550100", "STOP")  # consent + confirmation while merged
    assert from_email.customer_id == from_phone.customer_id == ann.pk
    customer_unmerge(workspace=workspace, merge=merge)
    from_email.refresh_from_db()
    from_phone.refresh_from_db()
    assert from_email.customer_id == annie.pk
    assert Conversation.objects.get(interactions=from_email).customer_id == annie.pk
    assert from_phone.customer_id == ann.pk
    assert consent_state(customer=ann, channel="sms", purpose="transactional") == "opted_out"
    assert consent_state(customer=annie, channel="sms", purpose="transactional") is None
    assert _owned(annie)["interactions"] == b["interactions"] | {from_email.pk}
    assert a["interactions"] < _owned(ann)["interactions"]
    # No interaction sits in a conversation of the other customer.
    assert not Interaction.objects.filter(customer=ann, conversation__customer=annie).exists()
    assert not Interaction.objects.filter(customer=annie, conversation__customer=ann).exists()


def test_a_reply_from_the_merged_identity_into_an_old_conversation_is_rehomed(workspace, sms):
    a = inbound(sms, "+14155550100", "first").customer
    b = inbound(sms, "+14155550101", "second").customer
    merge = customer_merge(workspace=workspace, survivor=a, merged=b, source="agent")
    late = inbound(sms, "+14155550101", "while merged")  # lands in one open SMS conversation of a
    customer_unmerge(workspace=workspace, merge=merge)
    late.refresh_from_db()
    assert late.customer_id == b.pk
    assert Conversation.objects.get(interactions=late).customer_id == b.pk


def test_chained_merges_undo_in_reverse_order(workspace):
    x = factories.customer_create(workspace, ("phone", "+14155550100"))
    y = factories.customer_create(workspace, ("phone", "+14155550101"))
    z = factories.customer_create(workspace, ("phone", "+14155550102"))
    first = customer_merge(workspace=workspace, survivor=y, merged=x, source="agent")
    y.refresh_from_db()
    second = customer_merge(workspace=workspace, survivor=z, merged=y, source="agent")
    current = customer_current(workspace=workspace, customer_id=x.pk)
    assert current is not None
    assert current.pk == z.pk
    with pytest.raises(MergeRejected, match="undo that merge first"):
        customer_unmerge(workspace=workspace, merge=first)
    customer_unmerge(workspace=workspace, merge=second)
    customer_unmerge(workspace=workspace, merge=first)
    for customer, phone in ((x, "+14155550100"), (y, "+14155550101"), (z, "+14155550102")):
        assert list(Identity.objects.filter(customer=customer).values_list("value", flat=True)) == [phone]
    assert Customer.objects.filter(workspace=workspace, merged_into__isnull=False).count() == 0
