"""Property: any sequence of merges, unmerges and new arrivals, fully undone, loses and misplaces nothing.

While merges are in place, every row still belongs to exactly one live customer and the totals never
change; once every merge is undone each customer owns exactly its original identities, conversations,
interactions and consent rows, and everything that arrived meanwhile sits with the owner of the identity
it came from.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.consent import consent_record
from customers.merging import customer_merge, customer_unmerge
from customers.models import ConsentEvent, Customer, CustomerMerge, Identity
from engagement.models import Channel, Conversation, Interaction, Workspace
from tests import factories
from tests.customers.conftest import inbound

pytestmark = pytest.mark.django_db

OPS = st.lists(
    st.tuples(
        st.sampled_from(["merge", "unmerge", "arrive"]), st.integers(0, 10_000), st.integers(0, 10_000)
    ),
    min_size=1,
    max_size=10,
)
SHAPES = st.lists(
    st.tuples(st.integers(0, 2), st.booleans(), st.integers(0, 2)),  # messages, has email, consent rows
    min_size=2,
    max_size=5,
)


def _owned(customer_id: int) -> dict[str, set[Any]]:
    return {
        "identities": set(Identity.objects.filter(customer_id=customer_id).values_list("value", flat=True)),
        "conversations": set(
            Conversation.objects.filter(customer_id=customer_id).values_list("pk", flat=True)
        ),
        "interactions": set(Interaction.objects.filter(customer_id=customer_id).values_list("pk", flat=True)),
        "consents": set(ConsentEvent.objects.filter(customer_id=customer_id).values_list("pk", flat=True)),
    }


def _check_invariants(workspace: Workspace) -> None:
    live = set(
        Customer.objects.filter(workspace=workspace, merged_into__isnull=True).values_list("pk", flat=True)
    )
    for model in (Identity, Conversation, Interaction, ConsentEvent):
        owners = set(model.objects.filter(workspace=workspace).values_list("customer_id", flat=True))
        assert owners <= live, f"{model.__name__} owned by a merged-away customer"
    assert (
        not Interaction.objects.filter(workspace=workspace)
        .exclude(conversation__customer_id=models_f())
        .exists()
    )


def models_f() -> Any:
    from django.db.models import F

    return F("customer_id")


def _scenario(workspace: Workspace, sms: Channel, email: Channel, shapes: list[Any], ops: list[Any]) -> None:
    people: list[tuple[int, list[tuple[Channel, str]]]] = []
    for n, (messages, has_email, consents) in enumerate(shapes):
        phone = f"+1415555{n:04d}"
        addresses = [(sms, phone)] + ([(email, f"p{n}@example.com")] if has_email else [])
        kinds = {sms.pk: "phone", email.pk: "email"}
        customer = factories.customer_create(workspace, *[(kinds[c.pk], a) for c, a in addresses])
        for i in range(messages):
            channel, address = addresses[i % len(addresses)]
            inbound(channel, address, f"m{i}")
        for i in range(consents):
            consent_record(
                customer=customer,
                channel="email",
                purpose="marketing",
                status=("opted_in", "opted_out")[i % 2],
                source="agent",
                address=phone,
            )
        people.append((customer.pk, addresses))
    original = {pk: _owned(pk) for pk, _ in people}
    totals = {
        k: sum(len(o[k]) for o in original.values()) for k in ("identities", "interactions", "consents")
    }

    merges: list[CustomerMerge] = []
    arrivals: dict[int, int] = {}  # interaction id -> the person whose identity it came from
    for op, x, y in ops:
        live = sorted(
            Customer.objects.filter(workspace=workspace, merged_into__isnull=True).values_list(
                "pk", flat=True
            )
        )
        if op == "merge" and len(live) >= 2:
            survivor = live[x % len(live)]
            merged = [pk for pk in live if pk != survivor][y % (len(live) - 1)]
            merges.append(
                customer_merge(
                    workspace=workspace,
                    survivor=Customer.objects.get(pk=survivor),
                    merged=Customer.objects.get(pk=merged),
                    source="agent",
                )
            )
        elif op == "unmerge":
            undoable = [
                m
                for m in merges
                if m.undone_at is None and Customer.objects.get(pk=m.survivor_id).merged_into_id is None
            ]
            if undoable:
                target = undoable[x % len(undoable)]
                customer_unmerge(workspace=workspace, merge=target)
                target.refresh_from_db()
        elif op == "arrive":
            person, addresses = people[x % len(people)]
            channel, address = addresses[y % len(addresses)]
            body = ("hello", "STOP", "START")[y % 3] if channel.kind == "sms" else "hello"
            arrived = inbound(channel, address, body)
            for row in Interaction.objects.filter(workspace=workspace, pk__gte=arrived.pk):
                arrivals[row.pk] = person
        _check_invariants(workspace)
        assert Identity.objects.filter(workspace=workspace).count() == totals["identities"]

    for merge in reversed(merges):  # undo what is left, newest first (always a valid order)
        merge.refresh_from_db()
        if merge.undone_at is None:
            customer_unmerge(workspace=workspace, merge=merge)
    _check_invariants(workspace)
    for pk, _ in people:
        now = _owned(pk)
        mine = {i for i, person in arrivals.items() if person == pk}
        assert now["identities"] == original[pk]["identities"]
        assert now["interactions"] == original[pk]["interactions"] | mine
        assert original[pk]["conversations"] <= now["conversations"]
        late_consents = set(
            ConsentEvent.objects.filter(customer_id=pk, source="sms_keyword").values_list("pk", flat=True)
        )
        assert now["consents"] == original[pk]["consents"] | late_consents
    # Keyword consents landed with the phone that sent them.
    for consent in ConsentEvent.objects.filter(workspace=workspace, source="sms_keyword"):
        owner = Identity.objects.get(workspace=workspace, value=consent.address).customer_id
        assert owner == consent.customer_id


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(shapes=SHAPES, ops=OPS)
def test_merge_and_unmerge_lose_and_misplace_nothing(workspace, shapes, ops):
    with transaction.atomic():
        sms = factories.channel_create(workspace, "sms")
        email = factories.channel_create(workspace, "email")
        _scenario(workspace, sms, email, shapes, ops)
        transaction.set_rollback(True)
