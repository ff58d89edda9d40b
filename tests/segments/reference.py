"""A plain-Python reading of the segment rule tree (engagement/segments/rules.py), written from its
documentation and independent of the SQL compiler: the oracle the property test compares against.

It works on in-memory snapshots of the data (``World``) and reuses only the consent ledger's Python rules
(``customers.consent.consent_derive``), which are the definition the SQL compilation must follow.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from customers.consent import consent_derive
from customers.models import ConsentEvent, Customer, CustomerEvent, Identity
from engagement.models import Interaction, Segment, SegmentMember, Workspace
from engagement.models.channels import CHANNEL_IDENTITY_KIND

DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass
class Person:
    id: int
    attributes: dict[str, Any]
    tags: list[str]
    timezone: str
    merged_into: int | None
    erased: bool
    identities: list[tuple[str, bool]] = field(default_factory=list)
    consents: list[tuple[str, str, str, dt.datetime, int]] = field(default_factory=list)
    interactions: list[tuple[str, str, str, str, dt.datetime]] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any], dt.datetime]] = field(default_factory=list)


@dataclass
class World:
    people: dict[int, Person]
    segments: dict[int, tuple[str, dict[str, Any], str]]  # id → (kind, rules, static_tag)
    members: dict[int, list[int]]  # segment id → member customer ids

    @classmethod
    def load(cls, workspace: Workspace) -> World:
        people = {
            c.pk: Person(c.pk, c.attributes, c.tags, c.timezone, c.merged_into_id, c.erased_at is not None)
            for c in Customer.objects.filter(workspace=workspace)
        }
        for cid, kind, verified in Identity.objects.filter(workspace=workspace).values_list(
            "customer_id", "kind", "verified"
        ):
            people[cid].identities.append((kind, verified))
        for cid, *row in ConsentEvent.objects.filter(workspace=workspace).values_list(
            "customer_id", "channel", "purpose", "status", "occurred_at", "id"
        ):
            people[cid].consents.append(tuple(row))  # type: ignore[arg-type]
        for cid, *row in Interaction.objects.filter(workspace=workspace).values_list(
            "customer_id", "kind", "direction", "channel__kind", "status", "created_at"
        ):
            people[cid].interactions.append(tuple(row))  # type: ignore[arg-type]
        for cid, *row in CustomerEvent.objects.filter(workspace=workspace).values_list(
            "customer_id", "name", "properties", "occurred_at"
        ):
            people[cid].events.append(tuple(row))  # type: ignore[arg-type]
        segments = {
            s.pk: (s.kind, s.rules, s.static_tag) for s in Segment.objects.filter(workspace=workspace)
        }
        members: dict[int, list[int]] = defaultdict(list)
        for sid, cid in SegmentMember.objects.filter(segment__workspace=workspace).values_list(
            "segment_id", "customer_id"
        ):
            members[sid].append(cid)
        return cls(people, segments, dict(members))

    # ------------------------------------------------------------------ evaluation

    def members_of(self, rules: dict[str, Any], now: dt.datetime) -> set[int]:
        return {p.id for p in self.people.values() if self.live(p) and self.eval(rules, p, now)}

    def segment_members(self, segment_id: int, now: dt.datetime) -> set[int]:
        return {p.id for p in self.people.values() if self.live(p) and self.in_segment(segment_id, p, now)}

    @staticmethod
    def live(p: Person) -> bool:
        return p.merged_into is None and not p.erased

    def in_segment(self, segment_id: int, p: Person, now: dt.datetime) -> bool:
        if segment_id not in self.segments:
            return False
        kind, rules, tag = self.segments[segment_id]
        if kind == "dynamic":
            return self.eval(rules, p, now)
        if tag and tag in p.tags:
            return True
        for member in self.members.get(segment_id, []):
            current: int | None = member
            for _ in range(4):  # the member itself and three merge hops
                if current == p.id:
                    return True
                current = self.people[current].merged_into if current is not None else None
                if current is None:
                    break
        return False

    def eval(self, node: dict[str, Any], p: Person, now: dt.datetime) -> bool:
        kind = node["type"]
        if kind == "and":
            return all(self.eval(r, p, now) for r in node["rules"])
        if kind == "or":
            return any(self.eval(r, p, now) for r in node["rules"])
        if kind == "not":
            return not self.eval(node["rule"], p, now)
        return bool(getattr(self, f"e_{kind}")(node, p, now))

    def e_attribute(self, node: dict[str, Any], p: Person, now: dt.datetime) -> bool:
        return value_matches(
            p.attributes, node["key"], node["operator"], node["value"], node["value_type"], p, now
        )

    def e_identity(self, node: dict[str, Any], p: Person, now: dt.datetime) -> bool:
        return any(k == node["kind"] and (v or not node["verified"]) for k, v in p.identities)

    def e_tag(self, node: dict[str, Any], p: Person, now: dt.datetime) -> bool:
        return node["value"] in p.tags

    def e_timezone(self, node: dict[str, Any], p: Person, now: dt.datetime) -> bool:
        if node["operator"] == "is_set":
            return p.timezone != ""
        return p.timezone in node["value"]

    def consent_state(self, p: Person, channel: str, purpose: str) -> str | None:
        def newest(wanted: str) -> tuple[int, str] | None:
            # The ledger's order is when a row was recorded (its id), never the claimed occurred_at.
            rows = [(pk, status) for ch, pu, status, _at, pk in p.consents if ch == channel and pu == wanted]
            return max(rows) if rows else None

        return consent_derive(purpose=purpose, own=newest(purpose), wide=newest(""))

    def e_consent(self, node: dict[str, Any], p: Person, now: dt.datetime) -> bool:
        state = self.consent_state(p, node["channel"], node["purpose"])
        return (state or "not_set") == node["state"]

    def e_reachable(self, node: dict[str, Any], p: Person, now: dt.datetime) -> bool:
        channel, purpose = node["channel"], node["purpose"]
        if not any(k == CHANNEL_IDENTITY_KIND[channel] for k, _ in p.identities):
            return False
        if purpose == "compliance":
            return True
        if purpose == "marketing":
            return self.consent_state(p, channel, "marketing") == "opted_in"
        return self.consent_state(p, channel, "transactional") != "opted_out"

    @staticmethod
    def counted(p: Person, direction: str, channel: str) -> list[dt.datetime]:
        return [
            at
            for kind, d, ch, status, at in p.interactions
            if kind in ("message", "call")
            and status not in ("blocked", "failed")
            and (direction == "any" or d == direction)
            and (channel == "any" or ch == channel)
        ]

    def e_activity(self, node: dict[str, Any], p: Person, now: dt.datetime) -> bool:
        times = self.counted(p, node["direction"], node["channel"])
        if node["within_days"] is not None:
            since = now - dt.timedelta(days=node["within_days"])
            times = [t for t in times if t >= since]
        return len(times) >= node["min_count"]

    def e_last_seen(self, node: dict[str, Any], p: Person, now: dt.datetime) -> bool:
        times = self.counted(p, "inbound", node["channel"])
        if not times:
            return False
        last = max(times)
        op, value = node["operator"], node["value"]
        moment = (
            dt.datetime.fromisoformat(value) if op in ("before", "after") else now - dt.timedelta(days=value)
        )
        return last >= moment if op in ("after", "in_last_days") else last < moment

    def e_event(self, node: dict[str, Any], p: Person, now: dt.datetime) -> bool:
        since = None if node["within_days"] is None else now - dt.timedelta(days=node["within_days"])
        hits = 0
        for name, props, at in p.events:
            if name != node["name"] or (since is not None and at < since):
                continue
            if all(
                value_matches(props, w["property"], w["operator"], w["value"], None, p, now)
                for w in node["where"]
            ):
                hits += 1
        return hits >= node["min_count"]

    def e_segment(self, node: dict[str, Any], p: Person, now: dt.datetime) -> bool:
        return self.in_segment(node["segment_id"], p, now)


def local_today(p: Person, now: dt.datetime) -> dt.date:
    try:
        zone = zoneinfo.ZoneInfo(p.timezone) if p.timezone else zoneinfo.ZoneInfo(settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    return now.astimezone(zone).date()


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def value_matches(
    data: dict[str, Any], key: str, op: str, want: Any, value_type: str | None, p: Person, now: dt.datetime
) -> bool:
    if key not in data:
        return False
    v = data[key]
    if op == "is_set":
        return v is not None
    if op == "equals":
        if isinstance(want, bool):
            return isinstance(v, bool) and v == want
        if isinstance(want, str):
            return isinstance(v, str) and v == want
        return is_number(v) and v == want
    if op == "contains":
        return isinstance(v, str) and want.upper() in v.upper()
    if value_type == "date":
        if not (isinstance(v, str) and DATE.fullmatch(v)):
            return False
        if op == "greater_than":
            return v > want
        if op == "less_than":
            return v < want
        if op == "between":
            return want[0] <= v <= want[1]
        today = local_today(p, now)
        if op == "in_last_days":
            return (today - dt.timedelta(days=want)).isoformat() <= v <= today.isoformat()
        if op == "in_next_days":
            return today.isoformat() <= v <= (today + dt.timedelta(days=want)).isoformat()
        raise AssertionError(op)
    if not is_number(v):
        return False
    if op == "greater_than":
        return v > want
    if op == "less_than":
        return v < want
    if op == "between":
        return want[0] <= v <= want[1]
    raise AssertionError(op)
