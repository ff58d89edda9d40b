"""Property: for random rule trees over thousands of random customers, the one compiled SQL query selects
exactly the customers the plain-Python reference evaluator (``reference.py``) selects — zero mismatches —
and so do the per-customer check, the count and the reachable-per-channel counts.

The customers are generated in bulk once (seeded, so a failure reproduces) with every shape the rules
distinguish: attribute values of the wrong JSON type, dates around "today" in zones on both sides of the
date line, invalid and empty zones, consent ledgers with ties and channel-wide rows, timelines with
blocked/failed/notes and rows on both sides of each window, custom events with mixed property types,
tombstones (merge chains) and erased customers, static lists holding tombstones.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.models import ConsentEvent, Customer, CustomerEvent, Identity
from customers.profile import attribute_define
from engagement.models import Interaction, Segment, SegmentMember, Workspace
from engagement.models.channels import CHANNEL_IDENTITY_KIND
from engagement.segments.rules import segment_rules_validate
from engagement.segments.services import (
    segment_audience_counts,
    segment_contains,
    segment_queryset,
    segment_rules_queryset,
)
from tests import factories
from tests.segments.reference import World

pytestmark = pytest.mark.django_db

CUSTOMERS = 2500
BASE = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
# Moments the rules are evaluated at: around UTC midnight, so local dates differ across zones.
NOWS = [BASE + dt.timedelta(hours=h) for h in (-12.5, -11.9, 0, 9.75, 11.95, 12.2)]
ZONES = [
    "",
    "UTC",
    "Europe/Oslo",
    "America/Los_Angeles",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Asia/Kolkata",
    "America/St_Johns",
    "Etc/GMT+12",
    "Mars/Olympus",
]
REAL_ZONES = [z for z in ZONES if z and z != "Mars/Olympus"]
PLANS = ["pro", "Pro", "basic", "enterprise pro", "", "PRO plan"]
SCORES = [-1, 0, 2.5, 3, 5, 10, 10.0, 100]
TAGS = ["vip", "newsletter", "beta", "churn-risk"]
CHANNELS = ["sms", "email", "voice", "webchat"]
DAYS = [(BASE.date() + dt.timedelta(days=d)).isoformat() for d in range(-6, 7)]
WRONG = [None, "5", True, 7, "not a date", "2026-6-1", "x"]
EVENT_NAMES = ["order_placed", "trial_started"]


def _maybe_wrong(rng: random.Random, right: Any) -> Any:
    return right if rng.random() < 0.8 else rng.choice(WRONG)


def _build(workspace: Workspace, seed: int = 20261130) -> dict[str, int]:
    rng = random.Random(seed)
    for key, kind in (("plan", "string"), ("score", "number"), ("vip", "boolean"), ("renews", "date")):
        attribute_define(workspace=workspace, key=key, label=key, type=kind)
    channels = {kind: factories.channel_create(workspace, kind) for kind in CHANNELS}
    customers = []
    for _ in range(CUSTOMERS):
        attributes: dict[str, Any] = {}
        if rng.random() < 0.6:
            attributes["plan"] = _maybe_wrong(rng, rng.choice(PLANS))
        if rng.random() < 0.6:
            attributes["score"] = _maybe_wrong(rng, rng.choice(SCORES))
        if rng.random() < 0.5:
            attributes["vip"] = _maybe_wrong(rng, rng.random() < 0.5)
        if rng.random() < 0.7:
            attributes["renews"] = _maybe_wrong(rng, rng.choice(DAYS))
        customers.append(
            Customer(
                workspace=workspace,
                attributes=attributes,
                tags=rng.sample(TAGS, rng.randint(0, 3)),
                timezone=rng.choice(ZONES),
            )
        )
    Customer.objects.bulk_create(customers, batch_size=1000)
    for i, c in enumerate(customers):
        if i > 10 and rng.random() < 0.08:
            c.merged_into_id = customers[rng.randrange(i)].pk  # earlier ones: chains, never cycles
        elif rng.random() < 0.03:
            c.erased_at = BASE
    Customer.objects.bulk_update(customers, ["merged_into", "erased_at"], batch_size=1000)

    identities: list[Identity] = []
    consents: list[ConsentEvent] = []
    interactions: list[Interaction] = []
    events: list[CustomerEvent] = []
    moments = [BASE - dt.timedelta(days=d) for d in (0, 1, 1, 2, 5)]
    for i, c in enumerate(customers):
        for kind in ("phone", "email", "webchat", "external"):
            if rng.random() < 0.5:
                identities.append(
                    Identity(
                        workspace=workspace,
                        customer=c,
                        kind=kind,
                        value=f"{kind}-{i}",
                        verified=rng.random() < 0.5,
                        first_seen_at=BASE,
                        last_seen_at=BASE,
                    )
                )
        for _ in range(rng.randint(0, 4)):
            consents.append(
                ConsentEvent(
                    workspace=workspace,
                    customer=c,
                    channel=rng.choice(CHANNELS),
                    purpose=rng.choice(["", "marketing", "transactional"]),
                    status=rng.choice(["opted_in", "opted_out"]),
                    source="api",
                    occurred_at=rng.choice(moments),  # ties: the id decides, as in consent.py
                )
            )
        for _ in range(rng.randint(0, 6)):
            at = BASE + dt.timedelta(minutes=rng.randint(-40 * 24 * 60, 24 * 60))
            kind = rng.choice(["message", "message", "call", "note"])
            direction = rng.choice(["inbound", "outbound"])
            interactions.append(
                Interaction(
                    workspace=workspace,
                    customer=c,
                    channel=None if kind == "note" and rng.random() < 0.5 else channels[rng.choice(CHANNELS)],
                    kind=kind,
                    direction=direction,
                    status=rng.choice(["received", "sent", "delivered", "blocked", "failed", "queued"]),
                    status_changed_at=at,
                    created_at=at,
                )
            )
        for _ in range(rng.randint(0, 4)):
            props: dict[str, Any] = {}
            if rng.random() < 0.7:
                props["amount"] = rng.choice([5, 20, 49.5, 50, 120, "50", None, True])
            if rng.random() < 0.5:
                props["sku"] = rng.choice(["A-1", "a-10", "B-2", 3])
            if rng.random() < 0.3:
                props["gift"] = rng.random() < 0.5
            events.append(
                CustomerEvent(
                    workspace=workspace,
                    customer=c,
                    name=rng.choice(EVENT_NAMES),
                    properties=props,
                    occurred_at=BASE - dt.timedelta(minutes=rng.randint(-600, 40 * 24 * 60)),
                    received_at=BASE,
                    event_id=f"e{len(events)}",
                )
            )
    Identity.objects.bulk_create(identities, batch_size=2000)
    ConsentEvent.objects.bulk_create(consents, batch_size=2000)
    Interaction.objects.bulk_create(interactions, batch_size=2000)
    CustomerEvent.objects.bulk_create(events, batch_size=2000)

    static = Segment.objects.create(workspace=workspace, name="static", kind="static")
    tagged = Segment.objects.create(workspace=workspace, name="tagged", kind="static", static_tag="beta")
    SegmentMember.objects.bulk_create(
        [SegmentMember(segment=static, customer=c) for c in rng.sample(customers, 300)]
        + [SegmentMember(segment=tagged, customer=c) for c in rng.sample(customers, 40)]
    )
    vip = Segment.objects.create(
        workspace=workspace,
        name="vip",
        rules=segment_rules_validate(
            workspace=workspace,
            rules={
                "type": "or",
                "rules": [{"type": "tag", "value": "vip"}, {"type": "identity", "kind": "email"}],
            },
        ),
    )
    nested = Segment.objects.create(
        workspace=workspace,
        name="nested",
        rules=segment_rules_validate(
            workspace=workspace,
            rules={
                "type": "and",
                "rules": [
                    {"type": "segment", "segment_id": static.pk},
                    {"type": "not", "rule": {"type": "segment", "segment_id": vip.pk}},
                ],
            },
        ),
    )
    with connection.cursor() as cursor:  # planner statistics, as autovacuum keeps them in production
        for model in (Customer, Identity, ConsentEvent, Interaction, CustomerEvent, SegmentMember):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    return {"static": static.pk, "tagged": tagged.pk, "vip": vip.pk, "nested": nested.pk}


# ---------------------------------------------------------------- random rule trees


def _window() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"min_count": st.integers(1, 3), "within_days": st.sampled_from([None, 1, 2, 7, 30])}
    )


def _leaves(segment_ids: list[int]) -> st.SearchStrategy[dict[str, Any]]:
    day = st.sampled_from(DAYS)
    attribute = st.one_of(
        st.builds(
            lambda op, v: {"type": "attribute", "key": "plan", "operator": op, "value": v},
            st.sampled_from(["equals", "contains", "is_set"]),
            st.sampled_from(["pro", "Pro", "basic", "PRO", "plan"]),
        ),
        st.builds(
            lambda op, v, w: {
                "type": "attribute",
                "key": "score",
                "operator": op,
                "value": sorted([v, w]) if op == "between" else v,
            },
            st.sampled_from(["equals", "greater_than", "less_than", "between", "is_set"]),
            st.sampled_from(SCORES),
            st.sampled_from(SCORES),
        ),
        st.builds(
            lambda op, v: {"type": "attribute", "key": "vip", "operator": op, "value": v},
            st.sampled_from(["equals", "is_set"]),
            st.booleans(),
        ),
        st.builds(
            lambda op, v, w, n: {
                "type": "attribute",
                "key": "renews",
                "operator": op,
                "value": n
                if op in ("in_last_days", "in_next_days")
                else sorted([v, w])
                if op == "between"
                else v,
            },
            st.sampled_from(
                ["equals", "greater_than", "less_than", "between", "in_last_days", "in_next_days", "is_set"]
            ),
            day,
            day,
            st.integers(0, 4),
        ),
    )
    identity = st.builds(
        lambda k, v: {"type": "identity", "kind": k, "verified": v},
        st.sampled_from(["phone", "email", "webchat", "external"]),
        st.booleans(),
    )
    tag = st.builds(lambda t: {"type": "tag", "value": t}, st.sampled_from([*TAGS, "none"]))
    timezone = st.one_of(
        st.just({"type": "timezone", "operator": "is_set"}),
        st.builds(
            lambda zs: {"type": "timezone", "operator": "in", "value": zs},
            st.lists(
                st.sampled_from([z for z in ZONES if z and z != "Mars/Olympus"]), min_size=1, max_size=3
            ),
        ),
    )
    consent = st.builds(
        lambda c, p, s: {"type": "consent", "channel": c, "purpose": p, "state": s},
        st.sampled_from(CHANNELS),
        st.sampled_from(["marketing", "transactional"]),
        st.sampled_from(["opted_in", "opted_out", "not_set"]),
    )
    reachable = st.builds(
        lambda c, p: {"type": "reachable", "channel": c, "purpose": p},
        st.sampled_from(CHANNELS),
        st.sampled_from(["marketing", "transactional", "compliance"]),
    )
    activity = st.builds(
        lambda d, c, w: {"type": "activity", "direction": d, "channel": c, **w},
        st.sampled_from(["inbound", "outbound", "any"]),
        st.sampled_from([*CHANNELS, "any"]),
        _window(),
    )
    last_seen = st.one_of(
        st.builds(
            lambda op, h, c: {
                "type": "last_seen",
                "operator": op,
                "value": (BASE - dt.timedelta(hours=h)).isoformat(),
                "channel": c,
            },
            st.sampled_from(["before", "after"]),
            st.integers(-12, 24 * 20),
            st.sampled_from([*CHANNELS, "any"]),
        ),
        st.builds(
            lambda op, n, c: {"type": "last_seen", "operator": op, "value": n, "channel": c},
            st.sampled_from(["in_last_days", "more_than_days_ago"]),
            st.integers(0, 30),
            st.sampled_from([*CHANNELS, "any"]),
        ),
    )
    prop = st.one_of(
        st.builds(
            lambda op, v: {"property": "amount", "operator": op, "value": v},
            st.sampled_from(["greater_than", "less_than"]),
            st.sampled_from([5, 20, 49.5, 50, 100]),
        ),
        st.builds(
            lambda v: {"property": "amount", "operator": "equals", "value": v},
            st.sampled_from([50, "50", True, 49.5]),
        ),
        st.builds(
            lambda p, op, v: {"property": p, "operator": op, "value": v},
            st.sampled_from(["sku", "amount", "gift"]),
            st.sampled_from(["contains", "is_set"]),
            st.sampled_from(["a-1", "B", "5"]),
        ),
    )
    event = st.builds(
        lambda n, where, w: {"type": "event", "name": n, "where": where, **w},
        st.sampled_from([*EVENT_NAMES, "never_happens"]),
        st.lists(prop, max_size=2),
        _window(),
    )
    segment = st.builds(lambda s: {"type": "segment", "segment_id": s}, st.sampled_from(segment_ids))
    return st.one_of(
        attribute, identity, tag, timezone, consent, reachable, activity, last_seen, event, segment
    )


def _trees(segment_ids: list[int]) -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        _leaves(segment_ids),
        lambda children: st.one_of(
            st.builds(lambda rs: {"type": "and", "rules": rs}, st.lists(children, max_size=3)),
            st.builds(lambda rs: {"type": "or", "rules": rs}, st.lists(children, max_size=3)),
            st.builds(lambda r: {"type": "not", "rule": r}, children),
        ),
        max_leaves=6,
    )


def _reachable(world: World, ids: set[int], purpose: str, now: dt.datetime) -> dict[str, int]:
    return {
        channel: sum(
            1
            for pk in ids
            if world.e_reachable({"channel": channel, "purpose": purpose}, world.people[pk], now)
        )
        for channel in CHANNEL_IDENTITY_KIND
    }


@pytest.mark.timeout(900)  # 2,500 customers x 150 trees, each in two query shapes, on a shared machine
def test_compiled_query_matches_the_reference_on_random_trees(workspace: Workspace) -> None:
    ids = _build(workspace)
    world = World.load(workspace)
    assert len(world.people) == CUSTOMERS
    checked = {"trees": 0, "non_trivial": 0}

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        tree=_trees(list(ids.values())),
        now=st.sampled_from(NOWS),
        purpose=st.sampled_from(["marketing", "transactional", "compliance"]),
        probe=st.randoms(use_true_random=False),
    )
    def check(tree: dict[str, Any], now: dt.datetime, purpose: str, probe: random.Random) -> None:
        normalized = segment_rules_validate(workspace=workspace, rules=tree)
        expected = world.members_of(normalized, now)
        qs = segment_rules_queryset(workspace=workspace, rules=tree, now=now)
        got = set(qs.values_list("pk", flat=True))
        assert got == expected, (
            f"{len(got ^ expected)} mismatches; SQL only: {sorted(got - expected)[:10]}, "
            f"reference only: {sorted(expected - got)[:10]}"
        )
        # The per-customer shape (correlated subqueries), on a sample of customers in and out.
        sample = probe.sample(sorted(world.people), 40)
        per_row = segment_rules_queryset(workspace=workspace, rules=tree, now=now, per_row=True)
        assert set(per_row.filter(pk__in=sample).values_list("pk", flat=True)) == expected & set(sample)
        counts = segment_audience_counts(workspace=workspace, queryset=qs, purpose=purpose)
        assert counts.count == len(expected)
        assert counts.reachable == _reachable(world, expected, purpose, now)
        checked["trees"] += 1
        checked["non_trivial"] += int(
            0 < len(expected) < len(world.members_of({"type": "and", "rules": []}, now))
        )

    check()
    assert checked["trees"] >= 120
    assert checked["non_trivial"] >= 40, checked  # the trees select something, not all or nothing


def test_saved_segments_and_the_per_customer_check_agree_with_the_reference(workspace: Workspace) -> None:
    ids = _build(workspace, seed=7)
    world = World.load(workspace)
    rng = random.Random(3)
    for now in NOWS[:3]:
        for segment in Segment.objects.filter(workspace=workspace):
            expected = world.segment_members(segment.pk, now)
            got = set(segment_queryset(segment=segment, now=now).values_list("pk", flat=True))
            assert got == expected, segment.name
            assert expected, f"{segment.name} selects nobody: the test data does not exercise it"
        nested = Segment.objects.get(pk=ids["nested"])
        for customer in rng.sample(list(Customer.objects.filter(workspace=workspace)), 60):
            assert segment_contains(segment=nested, customer=customer, now=now) == (
                customer.pk in world.segment_members(nested.pk, now)
            )
