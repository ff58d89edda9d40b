"""Compile a normalized rule tree (``rules.py``) into one ``Q`` on ``Customer``: one SQL query per segment.

Every condition compiles to a predicate on the customer row or an ``EXISTS`` / correlated subquery on
``OuterRef("pk")``, served by an index:

==============  =====================================================================================
attribute       ``attributes @> {"k": v}`` (GIN ``customer_attributes_gin``) for equals; otherwise
                ``attributes ? 'k'`` AND ``jsonb_typeof`` guard AND a comparison (jsonb for numbers,
                ``COLLATE "C"`` text for ISO dates, ``ILIKE`` for contains)
identity        ``EXISTS`` identity (``identity_customer_idx``)
tag             ``tags @> ["t"]`` (GIN ``customer_tags_gin``)
timezone        ``timezone IN (...)``
consent         ``customers.consent.consent_state_q`` (``consent_lookup_idx``)
reachable       identity ``EXISTS`` AND ``customers.consent.consent_allows_q``
activity        ``EXISTS (… LIMIT 1 OFFSET N-1)`` over interactions (``timeline_idx``)
last_seen       ``EXISTS`` inbound interaction since X (and not, for "before")
event           ``EXISTS (… LIMIT 1 OFFSET N-1)`` over custom events (``customer_event_lookup_idx``)
segment         the other segment's own predicate, inlined
==============  =====================================================================================

Every compiled condition is two-valued (true or false, never SQL NULL), so ``NOT`` means "not a member"
exactly as the plain-Python reading of the tree does; the property test
(``tests/segments/test_segment_properties.py``) checks this against a reference evaluator.

"Today" for date-relative conditions is the customer's local date: each IANA zone whose local date now
differs from the fallback zone's (``settings.TIME_ZONE``) is listed in one ``timezone IN (...)`` branch
per date (at most two besides the fallback), computed with ``zoneinfo`` when the query is built — so the
database's own zone data is never consulted, and a name PostgreSQL does not know cannot fail a query.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, Func, JSONField, OuterRef, Q, QuerySet, TextField, Value
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Collate
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    LessThan,
    LessThanOrEqual,
    Regex,
)

from customers.consent import consent_allows_q, consent_state_q
from customers.models import Customer, CustomerEvent, Identity
from engagement.errors import Conflict
from engagement.models import Interaction, Segment, SegmentKind, SegmentMember, Workspace
from engagement.models.channels import CHANNEL_IDENTITY_KIND
from engagement.models.conversations import Direction, InteractionKind, InteractionStatus

from .rules import known_timezones

# Outbound interactions that never reached the customer do not count as behaviour.
NOT_DELIVERED = (InteractionStatus.BLOCKED, InteractionStatus.FAILED)
# A member row on a tombstone counts for its survivor, along merge chains up to this many hops.
MERGE_HOPS = 3
DATE_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# Constants that stay what they are under NOT (an empty Q() would match everything either way).
TRUE = Q(pk__isnull=False)
FALSE = Q(pk__isnull=True)


class SegmentCycle(Conflict):
    """Segments that refer to each other in a loop (validation refuses them; two concurrent edits could
    still make one)."""

    code = "segment_cycle"


class JsonbTypeof(Func):
    function = "jsonb_typeof"
    output_field = TextField()


def local_dates(now: dt.datetime) -> tuple[dt.date, dict[dt.date, list[str]]]:
    """The fallback zone's date now, and every other local date of the moment with the zones on it."""
    fallback = now.astimezone(zoneinfo.ZoneInfo(settings.TIME_ZONE)).date()
    others: dict[dt.date, list[str]] = defaultdict(list)
    for name in sorted(known_timezones()):
        day = now.astimezone(zoneinfo.ZoneInfo(name)).date()
        if day != fallback:
            others[day].append(name)
    return fallback, dict(others)


@dataclass
class Compiler:
    """``per_row``: shape conditions on related rows as correlated subqueries on ``OuterRef("pk")`` (a
    few customers: :func:`segment_contains`); otherwise as uncorrelated ``pk IN (…)`` sets computed once
    per query where that is cheaper for a whole audience (consent, "at least N times"). Both shapes mean
    the same; the property test checks each against the reference."""

    workspace: Workspace
    now: dt.datetime
    per_row: bool = False
    stack: list[int] = field(default_factory=list)
    _dates: tuple[dt.date, dict[dt.date, list[str]]] | None = None

    # ------------------------------------------------------------ entry points

    def segment(self, segment: Segment) -> Q:
        if segment.pk in self.stack:
            chain = " → ".join(str(s) for s in [*self.stack, segment.pk])
            raise SegmentCycle(f"segments refer to each other in a loop: {chain}")
        self.stack.append(segment.pk)
        try:
            if segment.kind == SegmentKind.STATIC:
                return self.static(segment)
            return self.node(segment.rules or {"type": "and", "rules": []})
        finally:
            self.stack.pop()

    def static(self, segment: Segment) -> Q:
        q = FALSE
        path = "customer_id"
        for _ in range(MERGE_HOPS + 1):
            q |= Q(Exists(SegmentMember.objects.filter(segment_id=segment.pk, **{path: OuterRef("pk")})))
            path = path.removesuffix("_id") + "__merged_into_id"
        if segment.static_tag:
            q |= Q(tags__contains=[segment.static_tag])
        return q

    def node(self, node: dict[str, Any]) -> Q:
        kind = node["type"]
        if kind in ("and", "or"):
            children = [self.node(child) for child in node["rules"]]
            if not children:
                return TRUE if kind == "and" else FALSE
            q = children[0]
            for child in children[1:]:
                q = q & child if kind == "and" else q | child
            return q
        if kind == "not":
            return ~self.node(node["rule"])
        compile_condition: Callable[[dict[str, Any]], Q] = getattr(self, f"c_{kind}")
        return compile_condition(node)

    # ------------------------------------------------------------ helpers

    def local_today_q(self, condition: Callable[[dt.date], Q]) -> Q:
        """``condition(today)`` with today the customer's local date."""
        if self._dates is None:
            self._dates = local_dates(self.now)
        fallback, others = self._dates
        listed = [zone for zones in others.values() for zone in zones]
        q = ~Q(timezone__in=listed) & condition(fallback) if listed else condition(fallback)
        for day, zones in others.items():
            q |= Q(timezone__in=zones) & condition(day)
        return q

    def since(self, days: int | None) -> dt.datetime | None:
        return None if days is None else self.now - dt.timedelta(days=days)

    # ------------------------------------------------------------ conditions on the customer row

    def c_attribute(self, node: dict[str, Any]) -> Q:
        return json_value_q(
            "attributes", node["key"], node["operator"], node["value"], node["value_type"], self
        )

    def c_tag(self, node: dict[str, Any]) -> Q:
        return Q(tags__contains=[node["value"]])

    def c_timezone(self, node: dict[str, Any]) -> Q:
        if node["operator"] == "is_set":
            return ~Q(timezone="")
        return Q(timezone__in=node["value"])

    # ------------------------------------------------------------ related rows

    def c_identity(self, node: dict[str, Any]) -> Q:
        rows = Identity.objects.filter(customer_id=OuterRef("pk"), kind=node["kind"])
        if node["verified"]:
            rows = rows.filter(verified=True)
        return Q(Exists(rows))

    @property
    def scope(self) -> int | None:
        return None if self.per_row else self.workspace.pk

    def c_consent(self, node: dict[str, Any]) -> Q:
        state = None if node["state"] == "not_set" else node["state"]
        return consent_state_q(
            channel=node["channel"], purpose=node["purpose"], state=state, workspace_id=self.scope
        )

    def c_reachable(self, node: dict[str, Any]) -> Q:
        return reachable_q(channel_kind=node["channel"], purpose=node["purpose"], workspace_id=self.scope)

    def at_least(self, rows: QuerySet[Any], n: int) -> Q:
        """At least ``n`` of ``rows`` (not yet tied to the customer) belong to the customer."""
        if n == 1:
            return Q(Exists(rows.filter(customer_id=OuterRef("pk"))))
        if self.per_row:
            return Q(Exists(rows.filter(customer_id=OuterRef("pk")).order_by()[n - 1 : n]))
        counted = (
            rows.order_by()
            .values("customer_id")
            .annotate(n=Count("pk"))
            .filter(n__gte=n)
            .values("customer_id")
        )
        return Q(pk__in=counted)

    def interactions(self, *, direction: str, channel: str) -> QuerySet[Interaction]:
        rows = Interaction.objects.filter(
            workspace_id=self.workspace.pk, kind__in=[InteractionKind.MESSAGE, InteractionKind.CALL]
        ).exclude(status__in=NOT_DELIVERED)
        if direction != "any":
            rows = rows.filter(direction=direction)
        if channel != "any":
            rows = rows.filter(channel__kind=channel)
        return rows

    def c_activity(self, node: dict[str, Any]) -> Q:
        rows = self.interactions(direction=node["direction"], channel=node["channel"])
        since = self.since(node["within_days"])
        if since is not None:
            rows = rows.filter(created_at__gte=since)
        return self.at_least(rows, node["min_count"])

    def c_last_seen(self, node: dict[str, Any]) -> Q:
        seen = self.interactions(direction=Direction.INBOUND, channel=node["channel"])
        operator, value = node["operator"], node["value"]
        if operator in ("before", "after"):
            moment = dt.datetime.fromisoformat(value)
        else:
            moment = self.now - dt.timedelta(days=value)
        since = self.at_least(seen.filter(created_at__gte=moment), 1)
        if operator in ("after", "in_last_days"):
            return since
        return self.at_least(seen, 1) & ~since

    def c_event(self, node: dict[str, Any]) -> Q:
        rows = CustomerEvent.objects.filter(workspace_id=self.workspace.pk, name=node["name"])
        since = self.since(node["within_days"])
        if since is not None:
            rows = rows.filter(occurred_at__gte=since)
        for item in node["where"]:
            rows = rows.filter(
                json_value_q("properties", item["property"], item["operator"], item["value"], None, self)
            )
        return self.at_least(rows, node["min_count"])

    def c_segment(self, node: dict[str, Any]) -> Q:
        other = Segment.objects.filter(workspace=self.workspace, pk=node["segment_id"]).first()
        if other is None:
            return FALSE
        return self.segment(other)


def reachable_q(*, channel_kind: str, purpose: str, workspace_id: int | None = None) -> Q:
    """Customers with an address of ``channel_kind``'s identity kind that the consent guard lets a
    ``purpose`` message through to (``customers/consent.py``: ``consent_check_send``). ``workspace_id``:
    None for correlated subqueries, else uncorrelated sets (``consent_state_q``)."""
    address = Identity.objects.filter(customer_id=OuterRef("pk"), kind=CHANNEL_IDENTITY_KIND[channel_kind])
    allowed = consent_allows_q(channel_kind=channel_kind, purpose=purpose, workspace_id=workspace_id)
    return Q(Exists(address)) & allowed


def _json(value: Any) -> Value:
    """A jsonb constant (jsonb compares numbers numerically; the typeof guard keeps other types out)."""
    return Value(value, output_field=JSONField())


def _typeof(column: str, key: str, expected: str) -> Q:
    return Q(Exact(JsonbTypeof(KeyTransform(key, column)), Value(expected)))


def json_value_q(
    column: str, key: str, operator: str, value: Any, value_type: str | None, compiler: Compiler
) -> Q:
    """A two-valued condition on ``column -> key`` (a customer attribute or an event property).

    ``value_type`` is the attribute type ("string", "number", "boolean", "date") or None for untyped
    event properties, whose type follows the value compared with. Every branch starts with
    ``column ? key``, so a missing key makes it false rather than NULL.
    """
    has_key = Q(**{f"{column}__has_key": key})
    if operator == "is_set":
        return has_key & ~_typeof(column, key, "null")
    if operator == "equals":
        kind = "boolean" if isinstance(value, bool) else "string" if isinstance(value, str) else "number"
        return has_key & Q(**{f"{column}__contains": {key: value}}) & _typeof(column, key, kind)
    if operator == "contains":
        text = KeyTextTransform(key, column)
        return has_key & _typeof(column, key, "string") & Q(IContains(text, value))
    if value_type == "date":
        iso = Collate(KeyTextTransform(key, column), "C")
        shaped = Q(Regex(KeyTextTransform(key, column), DATE_PATTERN))
        is_date = has_key & _typeof(column, key, "string") & shaped

        def within(low: str | None, high: str | None) -> Q:
            q = is_date
            if low is not None:
                q &= Q(GreaterThanOrEqual(iso, Value(low)))
            if high is not None:
                q &= Q(LessThanOrEqual(iso, Value(high)))
            return q

        if operator == "greater_than":
            return is_date & Q(GreaterThan(iso, Value(value)))
        if operator == "less_than":
            return is_date & Q(LessThan(iso, Value(value)))
        if operator == "between":
            return within(value[0], value[1])
        if operator == "in_last_days":
            return compiler.local_today_q(
                lambda today: within((today - dt.timedelta(days=value)).isoformat(), today.isoformat())
            )
        if operator == "in_next_days":
            return compiler.local_today_q(
                lambda today: within(today.isoformat(), (today + dt.timedelta(days=value)).isoformat())
            )
        raise ValueError(f"unknown date operator {operator!r}")
    number = has_key & _typeof(column, key, "number")
    path = KeyTransform(key, column)
    if operator == "greater_than":
        return number & Q(GreaterThan(path, _json(value)))
    if operator == "less_than":
        return number & Q(LessThan(path, _json(value)))
    if operator == "between":
        return (
            number & Q(GreaterThanOrEqual(path, _json(value[0]))) & Q(LessThanOrEqual(path, _json(value[1])))
        )
    raise ValueError(f"unknown operator {operator!r}")


def live_customers(*, workspace: Workspace) -> QuerySet[Customer]:
    """The workspace's customers that can be members: not merged away, not erased."""
    return Customer.objects.filter(workspace=workspace, merged_into__isnull=True, erased_at__isnull=True)


def segment_q(*, segment: Segment, now: dt.datetime, per_row: bool = False) -> Q:
    return Compiler(workspace=segment.workspace, now=now, per_row=per_row).segment(segment)


def rules_q(*, workspace: Workspace, rules: dict[str, Any], now: dt.datetime, per_row: bool = False) -> Q:
    return Compiler(workspace=workspace, now=now, per_row=per_row).node(rules)
