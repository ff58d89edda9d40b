"""One resolution service for every channel, the API and imports: find, create, link, merge or suggest."""

from __future__ import annotations

import pytest

from customers.models import Customer, CustomerMerge, Identity, MergeSuggestion, ResolutionPolicy
from customers.services import Identifier, InvalidIdentifier, customer_resolve, customer_resolve_identifiers
from tests import factories
from tests.customers.conftest import inbound

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("kind", "raw", "normalized"),
    [
        ("sms", "+1 (415) 555-0100", "+14155550100"),
        ("voice", "415-555-0100", "+14155550100"),  # no +: read in the workspace's region (US)
        ("email", "Ann.Lee@Bücher.Example", "ann.lee@xn--bcher-kva.example"),
        ("webchat", "  visitor-8f2c  ", "visitor-8f2c"),
    ],
)
def test_inbound_on_every_channel_resolves_one_customer_per_identity(workspace, kind, raw, normalized):
    channel = factories.channel_create(workspace, kind)
    first = inbound(channel, raw, "hello")
    again = inbound(channel, normalized, "again")
    assert first.customer_id == again.customer_id
    identity = Identity.objects.get(customer=first.customer)
    assert identity.value == normalized
    assert (identity.first_channel, identity.last_channel) == (kind, kind)
    assert identity.last_seen_at >= identity.first_seen_at
    # An inbound message on sms/voice/webchat proves the address; email only if the adapter says so.
    assert identity.verified is (kind != "email")


def test_the_same_phone_on_sms_and_voice_is_one_customer(workspace, sms, voice):
    text = inbound(sms, "+14155550100", "hi")
    call = inbound(voice, "+14155550100", "voicemail")
    assert text.customer_id == call.customer_id
    identity = Identity.objects.get(customer=text.customer)
    assert (identity.first_channel, identity.last_channel) == ("sms", "voice")


def test_identities_are_unique_per_workspace_not_globally(workspace):
    other = factories.workspace_create()
    a, _ = customer_resolve(workspace=workspace, identifier=Identifier("email", "a@example.com"))
    b, _ = customer_resolve(workspace=other, identifier=Identifier("email", "a@example.com"))
    assert a.pk != b.pk


def test_unknown_identifiers_create_one_customer_owning_all(workspace):
    res = customer_resolve_identifiers(
        workspace=workspace,
        identifiers=[Identifier("email", "a@example.com"), Identifier("phone", "+14155550100")],
        display_name="Ann",
    )
    assert res.created
    assert res.customer.display_name == "Ann"
    assert sorted(Identity.objects.filter(customer=res.customer).values_list("value", flat=True)) == [
        "+14155550100",
        "a@example.com",
    ]


def test_new_identifiers_are_linked_to_the_known_customer(workspace):
    ann = factories.customer_create(workspace, ("phone", "+14155550100"))
    res = customer_resolve_identifiers(
        workspace=workspace,
        identifiers=[Identifier("phone", "+14155550100"), Identifier("external", "crm-42")],
    )
    assert (res.customer.pk, res.created) == (ann.pk, False)
    assert [i.value for i in res.linked] == ["crm-42"]


def test_invalid_identifiers_raise(workspace):
    too_long = Identifier("email", "a" * 320 + "@example.com")  # longer than the identity column
    for ident in (
        Identifier("phone", "banana"),
        Identifier("email", "no-at"),
        Identifier("fax", "1"),
        too_long,
    ):
        with pytest.raises(InvalidIdentifier):
            customer_resolve_identifiers(workspace=workspace, identifiers=[ident])
    with pytest.raises(InvalidIdentifier):
        customer_resolve_identifiers(workspace=workspace, identifiers=[])


def test_verified_link_between_two_customers_merges_them(workspace, webchat):
    ann = factories.customer_create(workspace, ("email", "ann@example.com"), name="Ann")
    visitor = inbound(webchat, "visitor-1", "hi").customer
    # The visitor signs in with a confirmed email: the widget vouches for it.
    res = customer_resolve_identifiers(
        workspace=workspace,
        identifiers=[
            Identifier("webchat", "visitor-1", verified=True),
            Identifier("email", "ann@example.com", verified=True),
        ],
        channel_kind="webchat",
        event_ref="webchat:login:77",
    )
    assert res.customer.pk == ann.pk  # the oldest survives
    [merge] = res.merges
    assert (merge.survivor_id, merge.merged_id, merge.source) == (ann.pk, visitor.pk, "auto")
    assert (merge.linking_kind, merge.linking_value, merge.event_ref) == (
        "webchat",
        "visitor-1",
        "webchat:login:77",
    )
    visitor.refresh_from_db()
    assert visitor.merged_into_id == ann.pk
    assert set(Identity.objects.filter(customer=ann).values_list("value", flat=True)) == {
        "ann@example.com",
        "visitor-1",
    }


def test_unverified_claim_records_a_suggestion_instead(workspace, webchat):
    ann = factories.customer_create(workspace, ("email", "ann@example.com"))
    visitor = inbound(webchat, "visitor-1", "hi").customer
    # A chat visitor types an email that belongs to another customer: a claim, not proof.
    res = customer_resolve_identifiers(
        workspace=workspace,
        identifiers=[
            Identifier("webchat", "visitor-1", verified=True),
            Identifier("email", "ann@example.com"),
        ],
        event_ref="webchat:form:5",
    )
    assert res.customer.pk == visitor.pk
    assert res.merges == []
    [suggestion] = res.suggestions
    assert {suggestion.customer_a_id, suggestion.customer_b_id} == {ann.pk, visitor.pk}
    assert suggestion.reason == "shared_event"
    assert suggestion.evidence["event_ref"] == "webchat:form:5"
    # Nothing moved: the email still belongs to Ann.
    assert Identity.objects.get(value="ann@example.com").customer_id == ann.pk
    assert not CustomerMerge.objects.exists()


def test_api_upsert_naming_two_customers_follows_the_policy(workspace):
    a = factories.customer_create(workspace, ("email", "a@example.com"))
    b = factories.customer_create(workspace, ("phone", "+14155550100"))
    ResolutionPolicy.objects.create(workspace=workspace, auto_merge_verified=False)
    ids = [Identifier("email", "a@example.com", True), Identifier("phone", "+14155550100", True)]
    res = customer_resolve_identifiers(workspace=workspace, identifiers=ids, source="api")
    assert res.merges == []
    assert len(res.suggestions) == 1
    assert res.suggestions[0].evidence["why_not_merged"] == "automatic merges are off"
    ResolutionPolicy.objects.filter(workspace=workspace).update(auto_merge_verified=True)
    res = customer_resolve_identifiers(workspace=workspace, identifiers=ids, source="api")
    assert [m.merged_id for m in res.merges] == [b.pk]
    assert res.customer.pk == a.pk
    assert MergeSuggestion.objects.get().status == "accepted"


def test_three_customers_in_one_event_merge_into_the_oldest(workspace):
    a = factories.customer_create(workspace, ("email", "a@example.com"))
    b = factories.customer_create(workspace, ("phone", "+14155550100"))
    c = factories.customer_create(workspace, ("external", "crm-1"))
    res = customer_resolve_identifiers(
        workspace=workspace,
        identifiers=[
            Identifier("external", "crm-1", True),
            Identifier("phone", "+14155550100", True),
            Identifier("email", "a@example.com", True),
        ],
    )
    assert res.customer.pk == a.pk
    assert sorted(m.merged_id for m in res.merges) == sorted([b.pk, c.pk])
    assert Customer.objects.filter(workspace=workspace, merged_into__isnull=True).count() == 1


def test_a_dismissed_suggestion_is_not_proposed_again(workspace):
    a = factories.customer_create(workspace, ("email", "a@example.com"))
    factories.customer_create(workspace, ("phone", "+14155550100"))
    ids = [Identifier("email", "a@example.com"), Identifier("phone", "+14155550100")]
    res = customer_resolve_identifiers(workspace=workspace, identifiers=ids)
    MergeSuggestion.objects.filter(pk=res.suggestions[0].pk).update(status="dismissed")
    again = customer_resolve_identifiers(workspace=workspace, identifiers=ids)
    assert again.suggestions == []
    assert again.customer.pk == a.pk
    assert MergeSuggestion.objects.count() == 1


def test_inbound_with_extra_identifiers_goes_through_the_same_service(workspace, webchat):
    from customers.resolution import customer_resolve_inbound

    ann = factories.customer_create(workspace, ("email", "ann@example.com"))
    res = customer_resolve_inbound(
        workspace=workspace,
        channel_kind="webchat",
        sender=Identifier("webchat", "visitor-9"),
        extra_identifiers=[Identifier("email", "ann@example.com", verified=True)],
    )
    assert res.customer.pk == ann.pk  # the visitor id is verified by the channel, the email by the widget
    assert Identity.objects.get(value="visitor-9").customer_id == ann.pk


# ---------------------------------------------------------------- the hot path of every inbound message


def test_resolving_a_known_verified_identity_is_one_select(workspace, django_assert_max_num_queries):
    """Every inbound webhook resolves its sender: a returning, verified sender seen within the minute
    costs one SELECT — no savepoint, no UPDATE of values that would not change."""
    customer, _ = customer_resolve(
        workspace=workspace, identifier=Identifier("phone", "+14155550100", True), channel_kind="sms"
    )
    with django_assert_max_num_queries(1):
        again, created = customer_resolve(
            workspace=workspace, identifier=Identifier("phone", "+1 415 555 0100", True), channel_kind="sms"
        )
    assert (again.pk, created) == (customer.pk, False)


def test_a_known_identity_is_updated_only_when_something_changes(workspace, django_assert_num_queries):
    from datetime import timedelta

    from django.utils import timezone

    customer, _ = customer_resolve(
        workspace=workspace, identifier=Identifier("phone", "+14155550100"), channel_kind="sms"
    )
    identity = Identity.objects.get(customer=customer)
    assert not identity.verified
    # Newly verified: one SELECT + one UPDATE, still no savepoint.
    with django_assert_num_queries(2):
        customer_resolve(
            workspace=workspace, identifier=Identifier("phone", "+14155550100", True), channel_kind="sms"
        )
    identity.refresh_from_db()
    assert identity.verified
    # Another channel: last_channel moves.
    with django_assert_num_queries(2):
        customer_resolve(
            workspace=workspace, identifier=Identifier("phone", "+14155550100", True), channel_kind="voice"
        )
    identity.refresh_from_db()
    assert identity.last_channel == "voice"
    # Last seen more than a minute ago: last_seen_at moves; the channel and verified stay.
    long_ago = timezone.now() - timedelta(minutes=5)
    Identity.objects.filter(pk=identity.pk).update(last_seen_at=long_ago)
    with django_assert_num_queries(2):
        customer_resolve(
            workspace=workspace, identifier=Identifier("phone", "+14155550100"), channel_kind="voice"
        )
    identity.refresh_from_db()
    assert identity.last_seen_at > long_ago
    assert (identity.verified, identity.last_channel) == (True, "voice")


def test_a_known_sender_without_a_name_gets_one(workspace):
    customer, _ = customer_resolve(workspace=workspace, identifier=Identifier("phone", "+14155550100"))
    again, _ = customer_resolve(
        workspace=workspace, identifier=Identifier("phone", "+14155550100"), display_name="Ann"
    )
    assert again.pk == customer.pk
    customer.refresh_from_db()
    assert customer.display_name == "Ann"


def test_a_known_identifier_resolves_to_the_customer_as_the_orm_reads_it(workspace):
    """The one-statement path of a known identifier builds the customer from a raw row: its JSON
    columns come back as a dict and a list (as ``Customer.objects.get`` gives them), not as text."""
    from datetime import timedelta

    from django.utils import timezone

    existing = factories.customer_create(workspace, ("email", "json@example.com"), name="Jay")
    Customer.objects.filter(pk=existing.pk).update(attributes={"plan": "pro"}, tags=["vip"])
    stale = timezone.now() - timedelta(days=1)
    Identity.objects.filter(value="json@example.com").update(last_seen_at=stale)
    customer, created = customer_resolve(
        workspace=workspace, identifier=Identifier("email", "json@example.com", True), channel_kind="email"
    )
    assert (created, customer.pk, customer.attributes, customer.tags) == (
        False,
        existing.pk,
        {"plan": "pro"},
        ["vip"],
    )
    identity = Identity.objects.get(value="json@example.com")
    # The touch moved what the event says and nothing else.
    assert (identity.verified, identity.last_channel) == (True, "email")
    assert identity.last_seen_at > stale
    Identity.objects.filter(pk=identity.pk).update(last_seen_at=stale)
    customer_resolve(workspace=workspace, identifier=Identifier("email", "json@example.com"))
    identity.refresh_from_db()
    assert (identity.verified, identity.last_channel) == (True, "email")  # kept: unverified, no channel
    assert identity.last_seen_at > stale
