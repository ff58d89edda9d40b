"""The segment rule tree: its grammar, and the validation that turns client JSON into a normalized tree.

A tree is JSON. Every node has a ``type``:

Groups
    ``{"type": "and", "rules": [...]}`` (every rule; an empty ``and`` matches every customer),
    ``{"type": "or", "rules": [...]}`` (any rule; an empty ``or`` matches nobody),
    ``{"type": "not", "rule": {...}}``.

Conditions
    ``attribute``   ``{"key", "operator", "value"}`` on a defined attribute (``customers/profile.py``),
                    operators by the attribute's type: string ``equals`` · ``contains`` (case-insensitive)
                    · ``is_set``; number ``equals`` · ``greater_than`` · ``less_than`` · ``between``
                    (``[low, high]``, inclusive) · ``is_set``; boolean ``equals`` · ``is_set``; date
                    (``YYYY-MM-DD``) ``equals`` · ``greater_than`` (after) · ``less_than`` (before) ·
                    ``between`` · ``in_last_days`` / ``in_next_days`` (``N``: from today - N to today, or
                    today to today + N, inclusive, "today" in the customer's own time zone) · ``is_set``.
                    A stored value of another JSON type than the attribute's never matches.
    ``identity``    ``{"kind": phone|email|webchat|external, "verified": false|true}``: has one (verified).
    ``tag``         ``{"value": "vip"}``.
    ``timezone``    ``{"operator": "in", "value": ["Europe/Oslo", ...]}`` or ``{"operator": "is_set"}`` on
                    the customer's explicit IANA zone (a zone only inferred from a phone number is not set).
    ``consent``     ``{"channel", "purpose": marketing|transactional, "state": opted_in|opted_out|not_set}``
                    as the ledger derives it now (``customers/consent.py``).
    ``reachable``   ``{"channel", "purpose": marketing|transactional|compliance}``: has an address of the
                    channel's kind and the send guard would let a message of that purpose go.
    ``activity``    ``{"direction": inbound|outbound|any, "channel": sms|email|voice|webchat|any,
                    "min_count": N ≥ 1, "within_days": D or null}``: at least N messages or calls on the
                    timeline (notes, and outbound ones that were blocked or failed, do not count) in the
                    last D * 24 hours (null: ever).
    ``last_seen``   ``{"operator": before|after, "value": ISO datetime}`` or
                    ``{"operator": in_last_days|more_than_days_ago, "value": N}``, optional ``channel``:
                    the newest inbound message or call. A customer never seen matches none of them.
    ``event``       ``{"name", "where": [{"property", "operator", "value"}], "min_count": N ≥ 1,
                    "within_days": D or null}``: at least N custom events of that name (``CustomerEvent``)
                    whose properties all match, occurred in the last D * 24 hours. Property operators:
                    ``equals`` (a string, number or boolean; exact JSON value), ``contains`` (strings,
                    case-insensitive), ``greater_than`` / ``less_than`` (numbers), ``is_set``.
    ``segment``     ``{"segment_id": 42}``: a member of another segment of the workspace (no cycles).

Validation (:func:`segment_rules_validate`) returns the normalized tree (attribute types recorded in the
node, dates and datetimes in ISO form, unknown keys dropped) or raises :class:`SegmentRulesInvalid`,
whose message starts with the path of the bad node (``$.rules[2].rule``).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from customers.models import AttributeDefinition, AttributeType, ConsentChannel, IdentityKind
from engagement.errors import ValidationFailed
from engagement.models import Segment, SegmentKind, Workspace

MAX_DEPTH = 12
MAX_NODES = 200
MAX_LIST = 200
MAX_DAYS = 36_500
MAX_COUNT = 1_000_000
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

GROUP_TYPES = ("and", "or", "not")
CONDITION_TYPES = (
    "attribute",
    "identity",
    "tag",
    "timezone",
    "consent",
    "reachable",
    "activity",
    "last_seen",
    "event",
    "segment",
)
CHANNELS = tuple(ConsentChannel.values)
ATTRIBUTE_OPERATORS: dict[str, tuple[str, ...]] = {
    AttributeType.STRING: ("equals", "contains", "is_set"),
    AttributeType.NUMBER: ("equals", "greater_than", "less_than", "between", "is_set"),
    AttributeType.BOOLEAN: ("equals", "is_set"),
    AttributeType.DATE: (
        "equals",
        "greater_than",
        "less_than",
        "between",
        "in_last_days",
        "in_next_days",
        "is_set",
    ),
}
PROPERTY_OPERATORS = ("equals", "contains", "greater_than", "less_than", "is_set")
CONSENT_STATES = ("opted_in", "opted_out", "not_set")
SEND_PURPOSES = ("marketing", "transactional", "compliance")
LAST_SEEN_OPERATORS = ("before", "after", "in_last_days", "more_than_days_ago")


class SegmentRulesInvalid(ValidationFailed):
    """A rule tree that cannot be accepted; ``field`` holds the path of the bad node."""

    code = "segment_rules_invalid"
    title = "Invalid segment rules"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}", field=path)
        self.path = path


@lru_cache(maxsize=1)
def known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class _Validator:
    def __init__(self, workspace: Workspace, segment_id: int | None) -> None:
        self.workspace = workspace
        self.segment_id = segment_id
        self.nodes = 0
        self._definitions: dict[str, AttributeDefinition] | None = None

    @property
    def definitions(self) -> dict[str, AttributeDefinition]:
        if self._definitions is None:
            self._definitions = {
                d.key: d for d in AttributeDefinition.objects.filter(workspace=self.workspace)
            }
        return self._definitions

    # ------------------------------------------------------------ tree

    def node(self, raw: Any, path: str, depth: int) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise SegmentRulesInvalid(path, "a rule must be an object with a 'type'")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise SegmentRulesInvalid(path, f"a segment may have at most {MAX_NODES} rules")
        if depth > MAX_DEPTH:
            raise SegmentRulesInvalid(path, f"rules may nest at most {MAX_DEPTH} levels deep")
        kind = raw.get("type")
        if kind in ("and", "or"):
            rules = raw.get("rules")
            if not isinstance(rules, list):
                raise SegmentRulesInvalid(path, f"an '{kind}' group needs 'rules': a list of rules")
            return {
                "type": kind,
                "rules": [self.node(r, f"{path}.rules[{i}]", depth + 1) for i, r in enumerate(rules)],
            }
        if kind == "not":
            if "rule" not in raw:
                raise SegmentRulesInvalid(path, "a 'not' needs 'rule': the rule it negates")
            return {"type": "not", "rule": self.node(raw["rule"], f"{path}.rule", depth + 1)}
        check: Callable[[dict[str, Any], str], dict[str, Any]] | None = getattr(self, f"c_{kind}", None)
        if not isinstance(kind, str) or check is None:
            known = ", ".join((*GROUP_TYPES, *CONDITION_TYPES))
            raise SegmentRulesInvalid(path, f"unknown rule type {kind!r} (one of: {known})")
        return {"type": kind, **check(raw, path)}

    # ------------------------------------------------------------ values

    @staticmethod
    def choice(raw: dict[str, Any], name: str, options: tuple[str, ...], path: str) -> str:
        value = raw.get(name)
        if value not in options:
            raise SegmentRulesInvalid(path, f"'{name}' must be one of {', '.join(options)} (got {value!r})")
        return str(value)

    @staticmethod
    def integer(value: Any, name: str, path: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise SegmentRulesInvalid(path, f"'{name}' must be a whole number (got {value!r})")
        if not low <= int(value) <= high:
            raise SegmentRulesInvalid(path, f"'{name}' must be between {low} and {high} (got {value})")
        return int(value)

    @staticmethod
    def number(value: Any, path: str) -> int | float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise SegmentRulesInvalid(path, f"'value' must be a number (got {value!r})")
        if isinstance(value, float) and value in (float("inf"), float("-inf")):
            raise SegmentRulesInvalid(path, "'value' must be a finite number")
        return int(value) if float(value).is_integer() else float(value)

    @staticmethod
    def date(value: Any, path: str) -> str:
        if not isinstance(value, str) or not DATE_RE.fullmatch(value.strip()):
            raise SegmentRulesInvalid(path, f"'value' must be a date YYYY-MM-DD (got {value!r})")
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError as exc:
            raise SegmentRulesInvalid(path, f"{value!r} is not a calendar date") from exc

    @staticmethod
    def moment(value: Any, path: str) -> str:
        try:
            parsed = dt.datetime.fromisoformat(str(value).strip())
        except ValueError as exc:
            raise SegmentRulesInvalid(
                path, f"'value' must be an ISO date or datetime (got {value!r})"
            ) from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC).isoformat()

    def window(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        within = raw.get("within_days")
        return {
            "min_count": self.integer(raw.get("min_count", 1), "min_count", path, 1, MAX_COUNT),
            "within_days": None if within is None else self.integer(within, "within_days", path, 1, MAX_DAYS),
        }

    def typed_value(self, raw: dict[str, Any], operator: str, value_type: str, path: str) -> Any:
        """The normalized ``value`` of a comparison on a value of ``value_type``."""
        value = raw.get("value")
        if operator == "is_set":
            return None
        if operator in ("in_last_days", "in_next_days"):
            return self.integer(value, "value", path, 0, MAX_DAYS)
        if operator == "between":
            if not isinstance(value, list) or len(value) != 2:
                raise SegmentRulesInvalid(path, "'between' needs 'value': [low, high]")
            low, high = (self.typed_value({"value": v}, "equals", value_type, path) for v in value)
            if low > high:
                raise SegmentRulesInvalid(path, f"'between' needs low ≤ high (got {low!r} > {high!r})")
            return [low, high]
        if value_type == AttributeType.NUMBER:
            return self.number(value, path)
        if value_type == AttributeType.DATE:
            return self.date(value, path)
        if value_type == AttributeType.BOOLEAN:
            if not isinstance(value, bool):
                raise SegmentRulesInvalid(path, f"'value' must be true or false (got {value!r})")
            return value
        if not isinstance(value, str) or (operator == "contains" and not value):
            raise SegmentRulesInvalid(path, f"'value' must be a non-empty text (got {value!r})")
        return value[:1000]

    # ------------------------------------------------------------ conditions

    def c_attribute(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        key = raw.get("key")
        definition = self.definitions.get(key) if isinstance(key, str) else None
        if definition is None:
            known = ", ".join(sorted(self.definitions)) or "none defined"
            raise SegmentRulesInvalid(path, f"unknown attribute {key!r} (defined: {known})")
        operator = self.choice(raw, "operator", ATTRIBUTE_OPERATORS[definition.type], path)
        return {
            "key": definition.key,
            "value_type": definition.type,
            "operator": operator,
            "value": self.typed_value(raw, operator, definition.type, path),
        }

    def c_identity(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        verified = raw.get("verified", False)
        if not isinstance(verified, bool):
            raise SegmentRulesInvalid(path, "'verified' must be true or false")
        return {"kind": self.choice(raw, "kind", tuple(IdentityKind.values), path), "verified": verified}

    def c_tag(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        value = raw.get("value")
        if not isinstance(value, str) or not value.strip() or len(value) > 64:
            raise SegmentRulesInvalid(path, "'value' must be a tag (1-64 characters)")
        return {"value": value.strip()}

    def c_timezone(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        operator = self.choice(raw, "operator", ("in", "is_set"), path)
        if operator == "is_set":
            return {"operator": operator}
        zones = raw.get("value")
        if not isinstance(zones, list) or not zones or len(zones) > MAX_LIST:
            raise SegmentRulesInvalid(path, f"'value' must be a list of 1-{MAX_LIST} IANA time zones")
        for zone in zones:
            if zone not in known_timezones():
                raise SegmentRulesInvalid(path, f"unknown time zone {zone!r}")
        return {"operator": operator, "value": sorted(set(zones))}

    def c_consent(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        return {
            "channel": self.choice(raw, "channel", CHANNELS, path),
            "purpose": self.choice(raw, "purpose", ("marketing", "transactional"), path),
            "state": self.choice(raw, "state", CONSENT_STATES, path),
        }

    def c_reachable(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        return {
            "channel": self.choice(raw, "channel", CHANNELS, path),
            "purpose": self.choice(raw, "purpose", SEND_PURPOSES, path),
        }

    def c_activity(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        return {
            "direction": self.choice(raw, "direction", ("inbound", "outbound", "any"), path),
            "channel": self.choice(raw, "channel", (*CHANNELS, "any"), path),
            **self.window(raw, path),
        }

    def c_last_seen(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        operator = self.choice(raw, "operator", LAST_SEEN_OPERATORS, path)
        channel = raw.get("channel") or "any"
        if channel not in (*CHANNELS, "any"):
            raise SegmentRulesInvalid(path, f"'channel' must be one of {', '.join(CHANNELS)}, any")
        if operator in ("before", "after"):
            value: Any = self.moment(raw.get("value"), path)
        else:
            value = self.integer(raw.get("value"), "value", path, 0, MAX_DAYS)
        return {"operator": operator, "value": value, "channel": channel}

    def c_event(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise SegmentRulesInvalid(path, "'name' must be an event name (1-200 characters)")
        where = raw.get("where") or []
        if not isinstance(where, list) or len(where) > 20:
            raise SegmentRulesInvalid(path, "'where' must be a list of at most 20 property filters")
        filters = []
        for i, item in enumerate(where):
            at = f"{path}.where[{i}]"
            if not isinstance(item, dict):
                raise SegmentRulesInvalid(at, "a property filter is an object {property, operator, value}")
            prop = item.get("property")
            if not isinstance(prop, str) or not prop or len(prop) > 100:
                raise SegmentRulesInvalid(at, "'property' must be a property name (1-100 characters)")
            operator = self.choice(item, "operator", PROPERTY_OPERATORS, at)
            value = item.get("value")
            if operator in ("greater_than", "less_than"):
                value = self.number(value, at)
            elif operator == "contains":
                value = self.typed_value(item, operator, AttributeType.STRING, at)
            elif operator == "equals":
                if isinstance(value, int | float) and not isinstance(value, bool):
                    value = self.number(value, at)
                elif not isinstance(value, str | bool):
                    raise SegmentRulesInvalid(at, "'equals' compares with a text, number or boolean")
            else:
                value = None
            filters.append({"property": prop, "operator": operator, "value": value})
        return {"name": name.strip(), "where": filters, **self.window(raw, path)}

    def c_segment(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        segment_id = raw.get("segment_id")
        if isinstance(segment_id, bool) or not isinstance(segment_id, int):
            raise SegmentRulesInvalid(path, "'segment_id' must be the id of a segment")
        if segment_id == self.segment_id:
            raise SegmentRulesInvalid(path, "a segment cannot contain itself")
        if not Segment.objects.filter(workspace=self.workspace, pk=segment_id).exists():
            raise SegmentRulesInvalid(path, f"no segment {segment_id} in this workspace")
        if self.segment_id is not None:
            cycle = _cycle_through(self.workspace, start=segment_id, target=self.segment_id)
            if cycle:
                chain = " → ".join(str(s) for s in [self.segment_id, *cycle])
                raise SegmentRulesInvalid(path, f"segment {segment_id} leads back to this one ({chain})")
        return {"segment_id": segment_id}


def segment_references(rules: Any) -> list[int]:
    """The ids of the segments a rule tree refers to (``segment`` conditions), in tree order."""
    found: list[int] = []
    stack = [rules]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if node.get("type") == "segment" and isinstance(node.get("segment_id"), int):
            found.append(node["segment_id"])
        stack.extend(reversed(node.get("rules") or []))
        if "rule" in node:
            stack.append(node["rule"])
    return found


def _cycle_through(workspace: Workspace, *, start: int, target: int) -> list[int] | None:
    """The chain of references from ``start`` that reaches ``target``, or None (depth-first)."""
    rules_by_id = dict(
        Segment.objects.filter(workspace=workspace, kind=SegmentKind.DYNAMIC).values_list("pk", "rules")
    )
    path: list[int] = []
    seen: set[int] = set()

    def visit(segment_id: int) -> bool:
        path.append(segment_id)
        if segment_id == target:
            return True
        if segment_id not in seen:
            seen.add(segment_id)
            for ref in segment_references(rules_by_id.get(segment_id)):
                if visit(ref):
                    return True
        path.pop()
        return False

    return path if visit(start) else None


def segment_rules_validate(
    *, workspace: Workspace, rules: Any, segment_id: int | None = None
) -> dict[str, Any]:
    """The normalized rule tree, or SegmentRulesInvalid naming the bad node's path (``$.rules[0]``).

    ``segment_id`` is the segment being saved (None for a new one or a preview), so a ``segment``
    condition that leads back to it is refused as a cycle. Reads the workspace's attribute definitions
    and the segments referred to; writes nothing.
    """
    return _Validator(workspace, segment_id).node(rules, "$", 0)
