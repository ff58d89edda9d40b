"""One test (or a few) per condition type of the rule tree, with the edge cases that matter: local
"today" across time zones and the date line, window boundaries, wrongly typed values, the consent ledger's
channel-wide rows, tombstones and erased customers, segment references and cycles."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from customers.consent import consent_record
from customers.events import EventInvalid, customer_event_record
from customers.merging import customer_merge, customer_unmerge
from customers.models import Customer, CustomerEvent
from customers.privacy import customer_erase
from customers.profile import attribute_define
from engagement.errors import Conflict
from engagement.models import Interaction, Segment, Workspace
from engagement.segments.rules import SegmentRulesInvalid, segment_rules_validate
from engagement.segments.services import (
    SegmentInUse,
    segment_contains,
    segment_count,
    segment_create,
    segment_delete,
    segment_members_among,
    segment_members_upload,
    segment_queryset,
    segment_reachable_counts,
    segment_rules_queryset,
    segment_update,
)
from tests import factories

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 29, 10, 30, tzinfo=dt.UTC)  # Europe's DST starts at 01:00 UTC that day


def members(workspace: Workspace, rules: dict[str, Any], now: dt.datetime = NOW) -> set[int]:
    """The members in both query shapes; they must agree."""
    audience = set(
        segment_rules_queryset(workspace=workspace, rules=rules, now=now).values_list("pk", flat=True)
    )
    per_row = segment_rules_queryset(workspace=workspace, rules=rules, now=now, per_row=True)
    assert set(per_row.values_list("pk", flat=True)) == audience
    return audience


def person(workspace: Workspace, n: int, **fields: Any) -> Customer:
    return factories.customer_create(workspace, ("phone", f"+1415555{n:04d}"), **fields)


def attr(key: str, operator: str, value: Any = None) -> dict[str, Any]:
    return {"type": "attribute", "key": key, "operator": operator, "value": value}


# ---------------------------------------------------------------- attributes


def test_string_number_boolean_attributes(workspace: Workspace) -> None:
    for key, kind in (("plan", "string"), ("score", "number"), ("vip", "boolean")):
        attribute_define(workspace=workspace, key=key, label=key, type=kind)
    a = person(workspace, 1, attributes={"plan": "Enterprise Pro", "score": 10, "vip": True})
    b = person(workspace, 2, attributes={"plan": "basic", "score": 2.5, "vip": False})
    c = person(workspace, 3, attributes={"score": "10"})  # stored before the type changed: never matches
    person(workspace, 4)

    assert members(workspace, attr("plan", "equals", "basic")) == {b.pk}
    assert members(workspace, attr("plan", "contains", "PRO")) == {a.pk}
    assert members(workspace, attr("plan", "contains", "%")) == set()  # LIKE wildcards are literal
    assert members(workspace, attr("plan", "is_set")) == {a.pk, b.pk}
    assert members(workspace, attr("score", "equals", 10.0)) == {a.pk}
    assert members(workspace, attr("score", "greater_than", 2.5)) == {a.pk}
    assert members(workspace, attr("score", "less_than", 10)) == {b.pk}
    assert members(workspace, attr("score", "between", [2.5, 10])) == {a.pk, b.pk}
    assert members(workspace, attr("score", "is_set")) == {a.pk, b.pk, c.pk}
    assert members(workspace, attr("vip", "equals", False)) == {b.pk}
    # NOT of a condition on a missing key: the customer without the attribute is in.
    everyone = members(workspace, {"type": "and", "rules": []})
    assert members(workspace, {"type": "not", "rule": attr("score", "greater_than", 5)}) == everyone - {a.pk}


def test_date_attributes_fixed_and_between(workspace: Workspace) -> None:
    attribute_define(workspace=workspace, key="renews", label="Renews", type="date")
    early = person(workspace, 1, attributes={"renews": "2026-03-01"})
    late = person(workspace, 2, attributes={"renews": "2026-04-15"})
    person(workspace, 3, attributes={"renews": "soon"})
    assert members(workspace, attr("renews", "greater_than", "2026-03-01")) == {late.pk}
    assert members(workspace, attr("renews", "less_than", "2026-04-15")) == {early.pk}
    assert members(workspace, attr("renews", "between", ["2026-03-01", "2026-04-15"])) == {early.pk, late.pk}
    assert members(workspace, attr("renews", "equals", "2026-03-01")) == {early.pk}


def test_in_last_and_next_days_use_the_customers_local_date(workspace: Workspace) -> None:
    """At 2026-03-29 10:30 UTC it is already the 30th in Kiritimati (UTC+14) and still the 28th in
    Pago Pago (UTC-11); "today" is each customer's own."""
    attribute_define(workspace=workspace, key="renews", label="Renews", type="date")
    kiritimati = person(workspace, 1, timezone="Pacific/Kiritimati", attributes={"renews": "2026-03-30"})
    pago = person(workspace, 2, timezone="Pacific/Pago_Pago", attributes={"renews": "2026-03-28"})
    utc = person(workspace, 3, attributes={"renews": "2026-03-29"})  # no zone: the fallback (UTC)
    yesterday = person(workspace, 4, timezone="Europe/Oslo", attributes={"renews": "2026-03-28"})

    assert members(workspace, attr("renews", "in_next_days", 0)) == {kiritimati.pk, pago.pk, utc.pk}
    assert members(workspace, attr("renews", "in_last_days", 0)) == {kiritimati.pk, pago.pk, utc.pk}
    assert members(workspace, attr("renews", "in_last_days", 1)) == {
        kiritimati.pk,
        pago.pk,
        utc.pk,
        yesterday.pk,
    }
    # An hour before UTC midnight: Oslo (still UTC+1, DST starts at 01:00 UTC) is exactly at midnight
    # of the 29th, so the 28th is yesterday there; Pago Pago is at noon on the 28th, Kiritimati on the 29th.
    before_midnight = dt.datetime(2026, 3, 28, 23, 0, tzinfo=dt.UTC)
    assert members(workspace, attr("renews", "in_next_days", 0), now=before_midnight) == {pago.pk}
    assert members(workspace, attr("renews", "in_next_days", 1), now=before_midnight) == {
        pago.pk,
        utc.pk,
        kiritimati.pk,
    }
    assert members(workspace, attr("renews", "in_last_days", 1), now=before_midnight) == {
        pago.pk,
        yesterday.pk,
    }


# ---------------------------------------------------------------- identities, tags, time zone


def test_identities_tags_and_time_zones(workspace: Workspace) -> None:
    a = factories.customer_create(workspace, ("email", "a@example.com"), tags=["vip"], timezone="Europe/Oslo")
    b = person(workspace, 2, tags=["newsletter"])
    verified = factories.customer_create(workspace, ("phone", "+14155550999"))
    verified.identities.update(verified=True)
    assert members(workspace, {"type": "identity", "kind": "email"}) == {a.pk}
    assert members(workspace, {"type": "identity", "kind": "phone"}) == {b.pk, verified.pk}
    assert members(workspace, {"type": "identity", "kind": "phone", "verified": True}) == {verified.pk}
    assert members(workspace, {"type": "tag", "value": "vip"}) == {a.pk}
    assert members(workspace, {"type": "timezone", "operator": "in", "value": ["Europe/Oslo"]}) == {a.pk}
    assert members(workspace, {"type": "timezone", "operator": "is_set"}) == {a.pk}


# ---------------------------------------------------------------- consent and reachability


def test_consent_state_follows_the_ledger(workspace: Workspace) -> None:
    t = [NOW - dt.timedelta(days=d) for d in (5, 4, 3)]

    def ledger(customer: Customer, at: dt.datetime, status: str, purpose: str = "") -> None:
        source = "api" if purpose else "sms_keyword"
        consent_record(
            customer=customer, channel="sms", purpose=purpose, status=status, source=source, occurred_at=at
        )

    opted_in = person(workspace, 1)
    ledger(opted_in, t[0], "opted_in", "marketing")
    stopped = person(workspace, 2)
    ledger(stopped, t[0], "opted_in", "marketing")
    ledger(stopped, t[1], "opted_out")
    restarted = person(workspace, 3)  # STOP then START: the marketing opt-in comes back
    ledger(restarted, t[0], "opted_in", "marketing")
    ledger(restarted, t[1], "opted_out")
    ledger(restarted, t[2], "opted_in")
    start_only = person(workspace, 4)  # START never grants marketing
    ledger(start_only, t[0], "opted_in")
    never = person(workspace, 5)

    def state(purpose: str, value: str) -> set[int]:
        return members(workspace, {"type": "consent", "channel": "sms", "purpose": purpose, "state": value})

    assert state("marketing", "opted_in") == {opted_in.pk, restarted.pk}
    assert state("marketing", "opted_out") == {stopped.pk}
    assert state("marketing", "not_set") == {start_only.pk, never.pk}
    assert state("transactional", "opted_out") == {stopped.pk}
    assert state("transactional", "opted_in") == {restarted.pk, start_only.pk}
    assert state("transactional", "not_set") == {opted_in.pk, never.pk}

    reach = {"type": "reachable", "channel": "sms", "purpose": "marketing"}
    assert members(workspace, reach) == {opted_in.pk, restarted.pk}
    reach_tx = {"type": "reachable", "channel": "sms", "purpose": "transactional"}
    assert members(workspace, reach_tx) == {opted_in.pk, restarted.pk, start_only.pk, never.pk}
    segment = segment_create(workspace=workspace, name="all")
    assert segment_reachable_counts(segment=segment, purpose="marketing") == {
        "sms": 2, "email": 0, "voice": 0, "webchat": 0,  # voice has its own ledger: nobody opted in
    }  # fmt: skip
    assert segment_reachable_counts(segment=segment, purpose="compliance")["sms"] == 5


# ---------------------------------------------------------------- behaviour on the timeline


def _interaction(customer: Customer, channel: Any, direction: str, at: dt.datetime, **kw: Any) -> None:
    Interaction.objects.create(
        workspace=customer.workspace,
        customer=customer,
        channel=channel,
        direction=direction,
        status=kw.pop("status", "received" if direction == "inbound" else "delivered"),
        status_changed_at=at,
        created_at=at,
        **kw,
    )


def test_activity_counts_within_the_window(workspace: Workspace) -> None:
    sms = factories.channel_create(workspace, "sms")
    email = factories.channel_create(workspace, "email")
    busy, quiet, blocked = person(workspace, 1), person(workspace, 2), person(workspace, 3)
    for hours in (1, 30, 47):
        _interaction(busy, sms, "inbound", NOW - dt.timedelta(hours=hours))
    _interaction(busy, email, "outbound", NOW - dt.timedelta(hours=2))
    _interaction(quiet, sms, "inbound", NOW - dt.timedelta(hours=49))
    _interaction(quiet, sms, "inbound", NOW - dt.timedelta(hours=1), kind="note")
    for _ in range(3):
        _interaction(blocked, sms, "outbound", NOW - dt.timedelta(hours=1), status="blocked")

    def activity(**kw: Any) -> set[int]:
        rule = {"type": "activity", "direction": "any", "channel": "any", "min_count": 1, "within_days": None}
        return members(workspace, {**rule, **kw})

    assert activity(direction="inbound", channel="sms", min_count=3, within_days=2) == {busy.pk}
    assert activity(direction="inbound", channel="sms", min_count=4, within_days=2) == set()
    assert activity(direction="inbound", channel="sms", min_count=1, within_days=2) == {busy.pk}
    assert activity(direction="inbound", channel="sms") == {busy.pk, quiet.pk}
    assert activity(direction="outbound") == {busy.pk}  # blocked sends do not count
    assert activity(channel="email", min_count=1, within_days=1) == {busy.pk}


def test_last_seen_before_and_after(workspace: Workspace) -> None:
    sms = factories.channel_create(workspace, "sms")
    recent, old, never = person(workspace, 1), person(workspace, 2), person(workspace, 3)
    _interaction(recent, sms, "inbound", NOW - dt.timedelta(days=2))
    _interaction(old, sms, "inbound", NOW - dt.timedelta(days=40))
    _interaction(never, sms, "outbound", NOW - dt.timedelta(days=1))  # we wrote; they never did

    def seen(operator: str, value: Any) -> set[int]:
        return members(workspace, {"type": "last_seen", "operator": operator, "value": value})

    assert seen("in_last_days", 30) == {recent.pk}
    assert seen("more_than_days_ago", 30) == {old.pk}
    assert seen("after", (NOW - dt.timedelta(days=2)).isoformat()) == {recent.pk}  # inclusive
    assert seen("before", (NOW - dt.timedelta(days=2)).isoformat()) == {old.pk}
    assert seen("before", "2030-01-01") == {recent.pk, old.pk}  # a date alone is midnight UTC


# ---------------------------------------------------------------- custom events


def test_custom_events_with_property_filters_and_counts(workspace: Workspace) -> None:
    buyer, small, once = person(workspace, 1), person(workspace, 2), person(workspace, 3)
    for days, amount in ((1, 120), (3, 80)):
        customer_event_record(
            customer=buyer, name="order_placed", properties={"amount": amount, "sku": "A-1"},
            occurred_at=NOW - dt.timedelta(days=days),
        )  # fmt: skip
    customer_event_record(
        customer=small,
        name="order_placed",
        properties={"amount": "120"},
        occurred_at=NOW - dt.timedelta(days=1),
    )  # a string amount is not a number
    customer_event_record(
        customer=once,
        name="order_placed",
        properties={"amount": 500},
        occurred_at=NOW - dt.timedelta(days=10),
    )

    def did(**kw: Any) -> set[int]:
        rule = {"type": "event", "name": "order_placed", "where": [], "min_count": 1, "within_days": None}
        return members(workspace, {**rule, **kw})

    amount_over_50 = [{"property": "amount", "operator": "greater_than", "value": 50}]
    assert did() == {buyer.pk, small.pk, once.pk}
    assert did(where=amount_over_50) == {buyer.pk, once.pk}
    assert did(where=amount_over_50, within_days=7) == {buyer.pk}
    assert did(where=amount_over_50, min_count=2) == {buyer.pk}
    assert did(where=[{"property": "amount", "operator": "equals", "value": "120"}]) == {small.pk}
    assert did(where=[{"property": "sku", "operator": "contains", "value": "a-"}]) == {buyer.pk}
    assert did(name="never") == set()


def test_customer_event_record_is_idempotent_and_follows_merges(workspace: Workspace) -> None:
    a, b = person(workspace, 1), person(workspace, 2)
    first, created = customer_event_record(customer=a, name="trial_started", event_id="evt-1")
    again, created_again = customer_event_record(customer=a, name="trial_started", event_id="evt-1")
    assert created
    assert not created_again
    assert first.pk == again.pk
    with pytest.raises(EventInvalid):
        customer_event_record(customer=a, name="bad\nname")
    with pytest.raises(EventInvalid):
        customer_event_record(customer=a, name="x", occurred_at=dt.datetime(2026, 1, 1))  # naive
    with pytest.raises(EventInvalid):
        customer_event_record(customer=a, name="x", properties={"blob": "x" * 20_000})

    record = customer_merge(workspace=workspace, survivor=b, merged=a, source="agent")
    assert CustomerEvent.objects.get(pk=first.pk).customer_id == b.pk
    a.refresh_from_db()
    moved, _ = customer_event_record(customer=a, name="paid")  # the tombstone's event goes to b
    assert moved.customer_id == b.pk
    customer_unmerge(workspace=workspace, merge=record)
    assert CustomerEvent.objects.get(pk=first.pk).customer_id == a.pk


# ---------------------------------------------------------------- membership, tombstones, erasure


def test_tombstones_and_erased_customers_are_never_members(workspace: Workspace) -> None:
    survivor, merged, erased = (
        person(workspace, 1, tags=["vip"]),
        person(workspace, 2, tags=["vip"]),
        person(workspace, 3, tags=["vip"]),
    )
    customer_merge(workspace=workspace, survivor=survivor, merged=merged, source="agent")
    customer_erase(workspace=workspace, customer=erased)
    segment = segment_create(workspace=workspace, name="everyone")
    assert set(segment_queryset(segment=segment).values_list("pk", flat=True)) == {survivor.pk}
    assert segment_count(segment=segment) == 1
    merged.refresh_from_db()
    assert not segment_contains(segment=segment, customer=merged)
    assert segment_contains(segment=segment, customer=survivor)
    assert segment_members_among(segment=segment, customer_ids=[survivor.pk, merged.pk]) == {survivor.pk}


def test_static_segment_from_csv_and_tag(workspace: Workspace) -> None:
    known = factories.customer_create(workspace, ("email", "known@example.com"))
    other = person(workspace, 7)
    tagged = person(workspace, 8, tags=["launch-list"])
    segment = segment_create(workspace=workspace, name="list", kind="static", static_tag="launch-list")
    csv = "Email,Phone\nKNOWN@example.com,\n,+1 415 555 0007\nnew@example.com,\nnot-an-email,\n"
    result = segment_members_upload(segment=segment, source=csv)
    assert result.as_dict() == {
        "rows": 4,
        "added": 3,
        "already_members": 0,
        "created_customers": 1,
        "not_found": 0,
        "errors": [{"row": 4, "error": "'not-an-email' is not an email address"}],
    }
    new = Customer.objects.get(workspace=workspace, identities__value="new@example.com")
    assert set(segment_queryset(segment=segment).values_list("pk", flat=True)) == {
        known.pk,
        other.pk,
        new.pk,
        tagged.pk,
    }
    again = segment_members_upload(
        segment=segment, source="email\nknown@example.com\nnobody@example.com\n", create_missing=False
    )
    assert (again.added, again.already, again.not_found) == (0, 1, 1)
    # A listed customer merged into another: the survivor is the member.
    survivor = person(workspace, 9)
    customer_merge(workspace=workspace, survivor=survivor, merged=known, source="agent")
    assert survivor.pk in set(segment_queryset(segment=segment).values_list("pk", flat=True))


# ---------------------------------------------------------------- segment references, validation


def test_segment_references_and_cycles(workspace: Workspace) -> None:
    vip, plain = person(workspace, 1, tags=["vip"]), person(workspace, 2)
    vips = segment_create(workspace=workspace, name="VIPs", rules={"type": "tag", "value": "vip"})
    others = segment_create(
        workspace=workspace, name="Not VIPs",
        rules={"type": "not", "rule": {"type": "segment", "segment_id": vips.pk}},
    )  # fmt: skip
    assert set(segment_queryset(segment=others).values_list("pk", flat=True)) == {plain.pk}
    assert segment_contains(segment=vips, customer=vip)
    with pytest.raises(SegmentRulesInvalid) as exc:
        segment_update(
            segment=vips, rules={"type": "and", "rules": [{"type": "segment", "segment_id": others.pk}]}
        )
    assert exc.value.path == "$.rules[0]"
    assert "leads back to this one" in str(exc.value)
    with pytest.raises(SegmentRulesInvalid, match="cannot contain itself"):
        segment_update(segment=vips, rules={"type": "segment", "segment_id": vips.pk})
    with pytest.raises(SegmentInUse):
        segment_delete(segment=vips)
    with pytest.raises(Conflict):
        segment_create(workspace=workspace, name="VIPs")
    segment_delete(segment=others)
    segment_delete(segment=vips)
    assert not Segment.objects.filter(workspace=workspace).exists()


@pytest.mark.parametrize(
    ("rules", "path", "message"),
    [
        ([], "$", "must be an object"),
        ({"type": "xor"}, "$", "unknown rule type 'xor'"),
        ({"type": "and", "rules": [{"type": "tag"}]}, "$.rules[0]", "'value' must be a tag"),
        ({"type": "not"}, "$", "needs 'rule'"),
        ({"type": "or", "rules": [{"type": "not", "rule": attr("nope", "is_set")}]}, "$.rules[0].rule",
         "unknown attribute 'nope'"),
        (attr("score", "contains", "1"), "$", "'operator' must be one of equals, greater_than"),
        (attr("score", "between", [5, 1]), "$", "low ≤ high"),
        (attr("renews", "equals", "2026-02-30"), "$", "not a calendar date"),
        (attr("renews", "in_last_days", -1), "$", "between 0 and"),
        ({"type": "timezone", "operator": "in", "value": ["Mars/Olympus"]}, "$", "unknown time zone"),
        ({"type": "consent", "channel": "fax", "purpose": "marketing"}, "$", "'channel'"),
        ({"type": "activity", "direction": "in", "channel": "sms"}, "$", "'direction'"),
        ({"type": "event", "name": "x", "where": [{"property": "a", "operator": "greater_than"}]},
         "$.where[0]", "must be a number"),
        ({"type": "segment", "segment_id": 999999}, "$", "no segment 999999"),
        ({"type": "last_seen", "operator": "before", "value": "yesterday"}, "$", "ISO date"),
    ],
)  # fmt: skip
def test_validation_names_the_bad_node(workspace: Workspace, rules: Any, path: str, message: str) -> None:
    attribute_define(workspace=workspace, key="score", label="Score", type="number")
    attribute_define(workspace=workspace, key="renews", label="Renews", type="date")
    with pytest.raises(SegmentRulesInvalid) as exc:
        segment_rules_validate(workspace=workspace, rules=rules)
    assert exc.value.path == path
    assert message in str(exc.value)
    assert str(exc.value).startswith(f"{path}: ")
