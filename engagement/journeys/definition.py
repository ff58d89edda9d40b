"""The journey definition: a trigger and an ordered list of steps, some with branches.

Shape (JSON)::

    {"trigger": {"type": "message.received", "channel_kind": "sms", "match": "keyword",
                 "keywords": ["DEMO"]},
     "steps": [
       {"key": "sorry", "type": "send", "channel_ids": [3], "content": {"sms": {"body": "Sorry…"}}},
       {"key": "wait", "type": "wait_for", "for": "reply", "timeout_seconds": 3600,
        "matched": [], "timeout": [{"key": "task", "type": "create_task", "title": "Call back"}]}
     ]}

A branch is a nested list of steps; when it ends, the journey goes on with the step after the step
that branched (paths drawn indented, then joined), and after the last step the enrollment completes.
Step keys are unique in a definition (generated as ``s1``, ``s2``… when missing) and are what
``JourneyStepRun`` rows and the stats key on.

:func:`definition_validate` returns the normalized definition or raises :class:`DefinitionInvalid`
(400) whose message starts with the path of the faulty node (``$.steps[1].timeout[0].title: …``).
:func:`definition_index` flattens it: step key → (step, next key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from customers.keywords import keyword_normalize
from engagement.campaigns.content import CHANNEL_FIELDS, MAX_TEMPLATE, template_lint
from engagement.errors import ValidationFailed

TRIGGER_TYPES: dict[str, str] = {
    "message.received": "An inbound message (channel; any, keyword or contains)",
    "conversation.opened": "A new conversation opens",
    "call.missed": "An inbound call ends without an agent answering",
    "voicemail.received": "A caller leaves a voicemail",
    "chat.started": "A webchat visitor starts a chat",
    "email.opened": "A customer opens an email",
    "email.clicked": "A customer clicks a link in an email",
    "event": "A custom event (POST /api/v1/events)",
    "campaign.reply": "A customer replies to a campaign message",
    "segment.entered": "A customer enters a segment (evaluated every minute)",
    "segment.left": "A customer leaves a segment (evaluated every minute)",
    "date": "A date attribute (a birthday, a renewal date), N days before or after (evaluated daily)",
    "sla.breached": "A conversation missed a service-level target (first or next response, resolution)",
    "manual": "Only enrolled through the API or the console",
}
MATCH_TYPES = ("any", "keyword", "contains")
SLA_METRICS = ("first_response", "next_response", "resolution")
CHANNEL_KINDS = ("sms", "email", "voice", "webchat")
STEP_TYPES = (
    "send",
    "delay",
    "wait_for",
    "condition",
    "random_split",
    "update",
    "assign_conversation",
    "create_task",
    "webhook",
    "exit",
)
# What the console shows for each step type.
STEP_LABELS: dict[str, str] = {
    "send": "Send a message",
    "delay": "Wait (delay)",
    "wait_for": "Wait for a reply, event or segment",
    "condition": "If / else",
    "random_split": "Random split",
    "update": "Update the profile",
    "assign_conversation": "Assign the conversation",
    "create_task": "Create a task for an agent",
    "webhook": "Call a webhook",
    "exit": "Exit",
}
WAIT_FOR = ("reply", "event", "segment")
CONDITION_KINDS = ("segment", "attribute", "tag", "consent", "last_channel", "message_engaged")
ATTRIBUTE_OPS = ("equals", "not_equals", "contains", "is_set", "not_set", "greater", "less")
GOAL_TYPES = ("event", "reply", "segment", "tag")
KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
ATTRIBUTE_KEY_RE = re.compile(r"[A-Za-z0-9]+(_[A-Za-z0-9]+)*")
LOCAL_TIME_RE = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
MAX_STEPS = 200
MAX_DEPTH = 8
MAX_DELAY_SECONDS = 366 * 24 * 3600


class DefinitionInvalid(ValidationFailed):
    code = "journey_invalid"
    title = "Invalid journey definition"


def _fail(path: str, message: str) -> DefinitionInvalid:
    return DefinitionInvalid(f"{path}: {message}", field=path)


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, "must be an object")
    return value


def _str(node: dict[str, Any], name: str, path: str, *, required: bool = True, limit: int = 200) -> str:
    value = node.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _fail(f"{path}.{name}", "must be a string")
    value = value.strip()
    if required and not value:
        raise _fail(f"{path}.{name}", "is required")
    if len(value) > limit:
        raise _fail(f"{path}.{name}", f"is at most {limit} characters")
    return value


def _int(
    node: dict[str, Any], name: str, path: str, *, low: int, high: int, default: int | None = None
) -> int:
    value = node.get(name, default)
    if value is None:
        raise _fail(f"{path}.{name}", "is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"{path}.{name}", "must be a whole number")
    if not low <= value <= high:
        raise _fail(f"{path}.{name}", f"must be between {low} and {high}")
    return value


def _choice(
    node: dict[str, Any], name: str, path: str, choices: tuple[str, ...], default: str | None = None
) -> str:
    value = node.get(name, default)
    if value not in choices:
        raise _fail(f"{path}.{name}", f"must be one of {', '.join(choices)}")
    return str(value)


def _ids(node: dict[str, Any], name: str, path: str, *, required: bool) -> list[int]:
    value = node.get(name, [])
    if value is None:
        value = []
    if not isinstance(value, list) or any(
        isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value
    ):
        raise _fail(f"{path}.{name}", "must be a list of ids")
    if required and not value:
        raise _fail(f"{path}.{name}", "needs at least one id")
    return list(dict.fromkeys(value))


def keywords_normalize(words: Any, path: str) -> list[str]:
    """Keywords as the opt-out handling compares them (``customers.keywords.keyword_normalize``)."""
    if isinstance(words, str):
        words = words.split(",")
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise _fail(path, "must be a list of words")
    out = [keyword_normalize(w) for w in words]
    out = list(dict.fromkeys(w for w in out if w))
    if not out:
        raise _fail(path, "needs at least one keyword")
    return out


def trigger_validate(value: Any, path: str = "$.trigger") -> dict[str, Any]:
    node = _obj(value, path)
    kind = _choice(node, "type", path, tuple(TRIGGER_TYPES))
    out: dict[str, Any] = {"type": kind}
    if kind in ("message.received", "conversation.opened", "call.missed", "voicemail.received"):
        channel_kind = node.get("channel_kind") or ""
        if channel_kind and channel_kind not in CHANNEL_KINDS:
            raise _fail(f"{path}.channel_kind", f"must be one of {', '.join(CHANNEL_KINDS)} or empty")
        out["channel_kind"] = channel_kind
        out["channel_ids"] = _ids(node, "channel_ids", path, required=False)
    if kind == "message.received":
        out["match"] = _choice(node, "match", path, MATCH_TYPES, default="any")
        if out["match"] != "any":
            out["keywords"] = keywords_normalize(node.get("keywords"), f"{path}.keywords")
    elif kind == "event":
        out["name"] = _str(node, "name", path)
    elif kind in ("segment.entered", "segment.left"):
        out["segment_id"] = _int(node, "segment_id", path, low=1, high=2**31 - 1)
    elif kind == "date":
        out["attribute"] = _str(node, "attribute", path, limit=64)
        if not ATTRIBUTE_KEY_RE.fullmatch(out["attribute"]):
            raise _fail(f"{path}.attribute", "is an attribute key: letters, digits and single underscores")
        out["offset_days"] = _int(node, "offset_days", path, low=-366, high=366, default=0)
        out["annual"] = bool(node.get("annual", False))
    elif kind == "sla.breached":
        # Empty: any target; else only breaches of that metric (engagement.models.insights.SlaMetric).
        out["metric"] = _choice(node, "metric", path, ("", *SLA_METRICS), default="")
    elif kind == "campaign.reply":
        out["campaign_id"] = node.get("campaign_id") or None
        if out["campaign_id"] is not None:
            _ids({"x": [out["campaign_id"]]}, "x", f"{path}.campaign_id", required=True)
        out["within_hours"] = _int(node, "within_hours", path, low=1, high=24 * 90, default=72)
    return out


def condition_validate(value: Any, path: str) -> dict[str, Any]:
    node = _obj(value, path)
    kind = _choice(node, "kind", path, CONDITION_KINDS)
    out: dict[str, Any] = {"kind": kind}
    if kind == "segment":
        out["segment_id"] = _int(node, "segment_id", path, low=1, high=2**31 - 1)
    elif kind == "attribute":
        out["key"] = _str(node, "key", path, limit=64)
        out["op"] = _choice(node, "op", path, ATTRIBUTE_OPS, default="equals")
        if out["op"] not in ("is_set", "not_set"):
            if "value" not in node or isinstance(node["value"], (dict, list)):
                raise _fail(f"{path}.value", "is required: a string, number or boolean")
            out["value"] = node["value"]
    elif kind == "tag":
        out["tag"] = _str(node, "tag", path, limit=64)
    elif kind == "consent":
        out["channel_kind"] = _choice(node, "channel_kind", path, CHANNEL_KINDS)
        out["purpose"] = _choice(node, "purpose", path, ("marketing", "transactional"), default="marketing")
    elif kind == "last_channel":
        out["channel_kind"] = _choice(node, "channel_kind", path, CHANNEL_KINDS)
    elif kind == "message_engaged":
        # The message an earlier send step of this enrollment sent was opened / clicked.
        out["step"] = _str(node, "step", path, limit=64)
        out["engagement"] = _choice(node, "engagement", path, ("click", "open"), default="click")
    return out


def goal_validate(value: Any, path: str) -> dict[str, Any]:
    """A goal or an exit condition: ``{"type": "event", "name"}`` (a custom event), ``{"type":
    "reply"}`` (any inbound message), ``{"type": "segment", "segment_id"}`` (the customer is in the
    segment at an event of theirs), ``{"type": "tag", "tag"}``."""
    node = _obj(value, path)
    kind = _choice(node, "type", path, GOAL_TYPES)
    out: dict[str, Any] = {"type": kind}
    if kind == "event":
        out["name"] = _str(node, "name", path)
    elif kind == "segment":
        out["segment_id"] = _int(node, "segment_id", path, low=1, high=2**31 - 1)
    elif kind == "tag":
        out["tag"] = _str(node, "tag", path, limit=64)
    return out


class _Walker:
    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.count = 0
        self.auto = 0

    def steps(self, value: Any, path: str, depth: int) -> list[dict[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise _fail(path, "must be a list of steps")
        if depth > MAX_DEPTH:
            raise _fail(path, f"branches nest at most {MAX_DEPTH} deep")
        return [self.step(item, f"{path}[{i}]", depth) for i, item in enumerate(value)]

    def _key(self, node: dict[str, Any], path: str) -> str:
        key = node.get("key")
        if key in (None, ""):
            while True:
                self.auto += 1
                key = f"s{self.auto}"
                if key not in self.keys:
                    break
        if not isinstance(key, str) or not KEY_RE.fullmatch(key):
            raise _fail(f"{path}.key", "is 1-64 letters, digits, _ or -")
        if key in self.keys:
            raise _fail(f"{path}.key", f"{key!r} is used by another step")
        self.keys.add(key)
        return key

    def step(self, value: Any, path: str, depth: int) -> dict[str, Any]:
        node = _obj(value, path)
        self.count += 1
        if self.count > MAX_STEPS:
            raise _fail(path, f"a journey has at most {MAX_STEPS} steps")
        kind = _choice(node, "type", path, STEP_TYPES)
        out: dict[str, Any] = {"key": self._key(node, path), "type": kind}
        if node.get("label"):
            out["label"] = _str(node, "label", path)
        handler = getattr(self, f"_{kind}")
        handler(node, out, path, depth)
        return out

    def _send(self, node: dict[str, Any], out: dict[str, Any], path: str, depth: int) -> None:
        out["channel_ids"] = _ids(node, "channel_ids", path, required=False)
        out["reply_on_trigger_channel"] = bool(node.get("reply_on_trigger_channel", False))
        if not out["channel_ids"] and not out["reply_on_trigger_channel"]:
            raise _fail(f"{path}.channel_ids", "needs at least one channel (or reply_on_trigger_channel)")
        out["prefer_customer_channel"] = bool(node.get("prefer_customer_channel", False))
        purpose = node.get("purpose") or ""
        if purpose and purpose not in ("marketing", "transactional"):
            raise _fail(f"{path}.purpose", "must be marketing or transactional (empty: the journey's)")
        out["purpose"] = purpose
        out["answer"] = bool(node.get("answer", False))
        # "automation": a migrated automation rule's Django-template reply ({{ customer.display_name }},
        # {{ message.body }}); "campaign" (default): the campaigns' sandboxed per-channel content.
        out["format"] = _choice(node, "format", path, ("campaign", "automation"), default="campaign")
        if out["format"] == "automation":
            out["template"] = _str(node, "template", path, limit=MAX_TEMPLATE)
            out["automation_rule_id"] = node.get("automation_rule_id")
            return
        content = _obj(node.get("content"), f"{path}.content")
        if not content:
            raise _fail(f"{path}.content", "needs the message for at least one channel kind")
        clean: dict[str, dict[str, Any]] = {}
        for kind, block in content.items():
            bpath = f"{path}.content.{kind}"
            if kind not in CHANNEL_FIELDS:
                raise _fail(bpath, f"unknown channel kind; one of {', '.join(CHANNEL_FIELDS)}")
            block = _obj(block, bpath)
            fields, required = CHANNEL_FIELDS[kind]
            kept: dict[str, Any] = {}
            for name in fields:
                text = block.get(name, "")
                if not isinstance(text, str):
                    raise _fail(f"{bpath}.{name}", "must be a string")
                if len(text) > MAX_TEMPLATE:
                    raise _fail(f"{bpath}.{name}", f"is at most {MAX_TEMPLATE} characters")
                problems = template_lint(text, known_attributes=set(), html=name == "html")
                problems = [p for p in problems if not p.startswith("unknown attribute")]
                if problems:
                    raise _fail(f"{bpath}.{name}", "; ".join(problems))
                if text:
                    kept[name] = text
            for name in required:
                if not kept.get(name):
                    raise _fail(f"{bpath}.{name}", "is required")
            if kind == "email" and not (kept.get("html") or kept.get("text")):
                raise _fail(f"{bpath}.html", "an email needs html or text")
            if kind == "sms" and block.get("media_urls"):
                media = block["media_urls"]
                if not isinstance(media, list) or not all(isinstance(u, str) for u in media):
                    raise _fail(f"{bpath}.media_urls", "must be a list of URLs")
                kept["media_urls"] = media
            clean[kind] = kept
        out["content"] = clean

    def _delay(self, node: dict[str, Any], out: dict[str, Any], path: str, depth: int) -> None:
        given = [
            k for k in ("seconds", "until_local_time", "until_attribute") if node.get(k) not in (None, "")
        ]
        if len(given) != 1:
            raise _fail(path, "give exactly one of seconds, until_local_time, until_attribute")
        if given[0] == "seconds":
            out["seconds"] = _int(node, "seconds", path, low=1, high=MAX_DELAY_SECONDS)
            return
        if given[0] == "until_local_time":
            out["until_local_time"] = _str(node, "until_local_time", path)
            if not LOCAL_TIME_RE.fullmatch(out["until_local_time"]):
                raise _fail(f"{path}.until_local_time", "must be HH:MM (24 h)")
            return
        out["until_attribute"] = _str(node, "until_attribute", path, limit=64)
        out["offset_days"] = _int(node, "offset_days", path, low=-366, high=366, default=0)
        at = node.get("at_local_time") or "09:00"
        if not isinstance(at, str) or not LOCAL_TIME_RE.fullmatch(at):
            raise _fail(f"{path}.at_local_time", "must be HH:MM (24 h)")
        out["at_local_time"] = at

    def _wait_for(self, node: dict[str, Any], out: dict[str, Any], path: str, depth: int) -> None:
        out["for"] = _choice(node, "for", path, WAIT_FOR)
        if out["for"] == "event":
            out["event_name"] = _str(node, "event_name", path)
        elif out["for"] == "segment":
            out["segment_id"] = _int(node, "segment_id", path, low=1, high=2**31 - 1)
        out["timeout_seconds"] = _int(node, "timeout_seconds", path, low=1, high=MAX_DELAY_SECONDS)
        out["matched"] = self.steps(node.get("matched"), f"{path}.matched", depth + 1)
        out["timeout"] = self.steps(node.get("timeout"), f"{path}.timeout", depth + 1)

    def _condition(self, node: dict[str, Any], out: dict[str, Any], path: str, depth: int) -> None:
        out["if"] = condition_validate(node.get("if"), f"{path}.if")
        out["yes"] = self.steps(node.get("yes"), f"{path}.yes", depth + 1)
        out["no"] = self.steps(node.get("no"), f"{path}.no", depth + 1)

    def _random_split(self, node: dict[str, Any], out: dict[str, Any], path: str, depth: int) -> None:
        branches = node.get("branches")
        if not isinstance(branches, list) or not 2 <= len(branches) <= 8:
            raise _fail(f"{path}.branches", "must be a list of 2 to 8 branches")
        clean = []
        for i, branch in enumerate(branches):
            bpath = f"{path}.branches[{i}]"
            branch = _obj(branch, bpath)
            clean.append(
                {
                    "weight": _int(branch, "weight", bpath, low=1, high=10_000),
                    "steps": self.steps(branch.get("steps"), f"{bpath}.steps", depth + 1),
                }
            )
        out["branches"] = clean

    def _update(self, node: dict[str, Any], out: dict[str, Any], path: str, depth: int) -> None:
        attrs = node.get("set_attributes") or {}
        if not isinstance(attrs, dict) or any(isinstance(v, (dict, list)) for v in attrs.values()):
            raise _fail(f"{path}.set_attributes", "must be an object of plain values")
        tags: dict[str, list[str]] = {}
        for name in ("add_tags", "remove_tags"):
            value = node.get(name) or []
            if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
                raise _fail(f"{path}.{name}", "must be a list of tags")
            tags[name] = [t.strip()[:64] for t in value]
        if not attrs and not tags["add_tags"] and not tags["remove_tags"]:
            raise _fail(path, "set at least one attribute or tag")
        out["set_attributes"] = attrs
        out.update(tags)

    def _assign_conversation(self, node: dict[str, Any], out: dict[str, Any], path: str, depth: int) -> None:
        assignee = node.get("assignee_id")
        if assignee is not None:
            _ids({"x": [assignee]}, "x", f"{path}.assignee_id", required=True)
        out["assignee_id"] = assignee

    def _create_task(self, node: dict[str, Any], out: dict[str, Any], path: str, depth: int) -> None:
        out["title"] = _str(node, "title", path)
        out["detail"] = _str(node, "detail", path, required=False, limit=2000)
        assignee = node.get("assignee_id")
        if assignee is not None:
            _ids({"x": [assignee]}, "x", f"{path}.assignee_id", required=True)
        out["assignee_id"] = assignee
        out["due_in_seconds"] = _int(node, "due_in_seconds", path, low=0, high=MAX_DELAY_SECONDS, default=0)

    def _webhook(self, node: dict[str, Any], out: dict[str, Any], path: str, depth: int) -> None:
        out["name"] = _str(node, "name", path, required=False, limit=100) or out["key"]
        data = node.get("data") or {}
        if not isinstance(data, dict):
            raise _fail(f"{path}.data", "must be an object")
        out["data"] = data

    def _exit(self, node: dict[str, Any], out: dict[str, Any], path: str, depth: int) -> None:
        return None


def definition_validate(value: Any) -> dict[str, Any]:
    """The normalized definition (keys filled in, keywords normalized, unknown fields dropped), or
    DefinitionInvalid naming the path of the faulty node. Ids of channels, segments and users are
    checked against the workspace by ``journey_publish``, not here."""
    node = _obj(value, "$")
    walker = _Walker()
    steps = walker.steps(node.get("steps"), "$.steps", 0)
    if not steps:
        raise _fail("$.steps", "a journey needs at least one step")
    clean = {"trigger": trigger_validate(node.get("trigger")), "steps": steps}
    index = definition_index(clean)
    for key, info in index.items():
        cond = info.step.get("if") or {}
        if cond.get("kind") == "message_engaged":
            target = index.get(cond["step"])
            if target is None or target.step["type"] != "send":
                raise _fail(f"$.steps[{key}].if.step", f"{cond['step']!r} is not a send step of this journey")
    return clean


def goals_validate(goal: Any, exits: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The journey's goal ({} for none) and exit conditions, validated."""
    clean_goal = goal_validate(goal, "$.goal") if goal else {}
    if exits in (None, ""):
        exits = []
    if not isinstance(exits, list):
        raise _fail("$.exit_conditions", "must be a list")
    return clean_goal, [goal_validate(e, f"$.exit_conditions[{i}]") for i, e in enumerate(exits)]


@dataclass(frozen=True)
class StepInfo:
    step: dict[str, Any]
    next_key: str  # "" after the last step: the enrollment completes


def _branches(step: dict[str, Any]) -> list[list[dict[str, Any]]]:
    kind = step["type"]
    if kind == "wait_for":
        return [step.get("matched") or [], step.get("timeout") or []]
    if kind == "condition":
        return [step.get("yes") or [], step.get("no") or []]
    if kind == "random_split":
        return [b.get("steps") or [] for b in step.get("branches") or []]
    return []


def definition_index(definition: dict[str, Any]) -> dict[str, StepInfo]:
    """Every step by key, with the key of the step that follows it when it ends without branching (its
    next sibling, else the step after the branching parent, else "")."""
    index: dict[str, StepInfo] = {}

    def walk(steps: list[dict[str, Any]], after: str) -> None:
        for i, step in enumerate(steps):
            following = steps[i + 1]["key"] if i + 1 < len(steps) else after
            index[step["key"]] = StepInfo(step=step, next_key=following)
            for branch in _branches(step):
                walk(branch, following)

    walk(definition.get("steps") or [], "")
    return index


def branch_entry(*, steps: list[dict[str, Any]], next_key: str) -> str:
    """Where a branch starts: its first step, or (an empty branch) the step after the branching one."""
    return steps[0]["key"] if steps else next_key


def first_step_key(definition: dict[str, Any]) -> str:
    steps = definition.get("steps") or []
    return steps[0]["key"] if steps else ""


def definition_references(definition: dict[str, Any]) -> dict[str, set[int]]:
    """Ids the definition names: ``{"channels", "segments", "users", "campaigns"}``."""
    refs: dict[str, set[int]] = {"channels": set(), "segments": set(), "users": set(), "campaigns": set()}
    trigger = definition.get("trigger") or {}
    refs["channels"].update(trigger.get("channel_ids") or [])
    if trigger.get("segment_id"):
        refs["segments"].add(int(trigger["segment_id"]))
    if trigger.get("campaign_id"):
        refs["campaigns"].add(int(trigger["campaign_id"]))
    for info in definition_index(definition).values():
        step = info.step
        refs["channels"].update(step.get("channel_ids") or [])
        if step.get("segment_id"):
            refs["segments"].add(int(step["segment_id"]))
        if (step.get("if") or {}).get("segment_id"):
            refs["segments"].add(int(step["if"]["segment_id"]))
        if step.get("assignee_id"):
            refs["users"].add(int(step["assignee_id"]))
    return refs
