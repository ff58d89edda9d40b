"""Editing a journey's draft step by step (the console's editor): add, remove, move and edit one step,
set the trigger, and check the draft with the validation service, with the message tied to its step.

The draft is ``Journey.definition`` (it may be incomplete while a draft); every change here goes
through :func:`engagement.journeys.services.journey_update`, so an archived journey stays read-only and
a live journey keeps running its live version until ``journey_publish`` freezes the draft as the next
version. Steps are addressed by key; a list of steps by ``""`` (the top level) or
``"<step key>.<branch>"`` where branch is ``matched``/``timeout`` (wait for), ``yes``/``no``
(condition) or ``branches.<i>`` (random split).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from engagement.errors import NotFound, ValidationFailed
from engagement.models import Journey
from engagement.sanitize import INT32_MAX, digits_parse, json_check, json_parse

from .definition import STEP_TYPES, TRIGGER_TYPES, DefinitionInvalid
from .services import journey_update, journey_validate

# What a new step of each type starts as (a send step needs its channel and text before it validates).
STEP_SKELETONS: dict[str, dict[str, Any]] = {
    "send": {"channel_ids": [], "content": {"sms": {"body": ""}}},
    "delay": {"seconds": 3600},
    "wait_for": {"for": "reply", "timeout_seconds": 3600, "matched": [], "timeout": []},
    "condition": {"if": {"kind": "tag", "tag": "vip"}, "yes": [], "no": []},
    "random_split": {"branches": [{"weight": 50, "steps": []}, {"weight": 50, "steps": []}]},
    "update": {"add_tags": ["journey"]},
    "assign_conversation": {"assignee_id": None},
    "create_task": {"title": "Call this customer back"},
    "webhook": {"name": "", "data": {}},
    "exit": {},
}
BRANCH_LABELS = {
    "matched": "It happened",
    "timeout": "Timed out",
    "yes": "Yes",
    "no": "No",
}


@dataclass(frozen=True)
class StepField:
    """One editable field of a step: ``name`` is a dotted path in the step (``content.sms.body``);
    ``kind``: text, textarea, int, ids (list of ids), csv (list of words), json, bool, choice."""

    name: str
    label: str
    kind: str = "text"
    choices: tuple[str, ...] = ()
    help: str = ""


_SEND_CONTENT = (
    StepField("content.sms.body", "SMS text", "textarea", help="Personalize with {{ first_name }}"),
    StepField("content.email.subject", "Email subject"),
    StepField("content.email.html", "Email HTML", "textarea"),
    StepField("content.email.text", "Email text", "textarea"),
    StepField("content.webchat.message", "Webchat message", "textarea"),
    StepField("content.voice.message", "Voice message (read out)", "textarea"),
)
STEP_FIELDS: dict[str, tuple[StepField, ...]] = {
    "send": (
        StepField("channel_ids", "Channels, in order of preference", "ids"),
        StepField("reply_on_trigger_channel", "Reply on the channel that triggered", "bool"),
        StepField("prefer_customer_channel", "Prefer the customer's preferred channel", "bool"),
        StepField("purpose", "Purpose (empty: the journey's)", "choice", ("", "transactional", "marketing")),
        *_SEND_CONTENT,
    ),
    "delay": (
        StepField("seconds", "Wait (seconds)", "int"),
        StepField("until_local_time", "Or until this local time (HH:MM)"),
        StepField("until_attribute", "Or until this date attribute"),
        StepField("offset_days", "Days after (negative: before) that date", "int"),
        StepField("at_local_time", "At local time (HH:MM)"),
    ),
    "wait_for": (
        StepField("for", "Wait for", "choice", ("reply", "event", "segment")),
        StepField("event_name", "Event name (wait for an event)"),
        StepField("segment_id", "Segment (wait for entering it)", "int"),
        StepField("timeout_seconds", "Give up after (seconds)", "int"),
    ),
    "condition": (
        StepField(
            "if",
            "Condition (JSON)",
            "json",
            help='e.g. {"kind": "tag", "tag": "vip"}; kinds: segment, attribute, tag, consent, '
            "last_channel, message_engaged",
        ),
    ),
    "random_split": (StepField("weights", "Branch weights (comma-separated)", "csv"),),
    "update": (
        StepField("set_attributes", "Set attributes (JSON object)", "json"),
        StepField("add_tags", "Add tags (comma-separated)", "csv"),
        StepField("remove_tags", "Remove tags (comma-separated)", "csv"),
    ),
    "assign_conversation": (StepField("assignee_id", "Assign to (member id)", "int"),),
    "create_task": (
        StepField("title", "Task title"),
        StepField("detail", "Detail", "textarea"),
        StepField("assignee_id", "Assignee (member id; empty: anyone)", "int"),
        StepField("due_in_seconds", "Due in (seconds)", "int"),
    ),
    "webhook": (
        StepField("name", "Webhook event name"),
        StepField("data", "Data (JSON object)", "json"),
    ),
    "exit": (),
}
AUTOMATION_SEND_FIELDS = (
    StepField("channel_ids", "Reply channel (else the trigger's)", "ids"),
    StepField(
        "template", "Reply template", "textarea", help="{{ customer.display_name }}, {{ message.body }}"
    ),
)


def step_fields(step: dict[str, Any]) -> tuple[StepField, ...]:
    """The editable fields of ``step`` (a migrated automation rule's send step has its own)."""
    if step.get("type") == "send" and step.get("format") == "automation":
        return AUTOMATION_SEND_FIELDS
    return (StepField("label", "Label"), *STEP_FIELDS.get(str(step.get("type")), ()))


def _get(step: dict[str, Any], name: str) -> Any:
    if name == "weights":
        return [b.get("weight") for b in step.get("branches") or []]
    node: Any = step
    for part in name.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def step_field_value(step: dict[str, Any], spec: StepField) -> str:
    """The field's current value as a form shows it."""
    value = _get(step, spec.name)
    if value is None:
        return ""
    if spec.kind in ("ids", "csv"):
        return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if spec.kind == "json":
        return json.dumps(value, ensure_ascii=False)
    if spec.kind == "bool":
        return "on" if value else ""
    return str(value)


def _parse(spec: StepField, raw: str | list[str]) -> Any:
    """A posted value → the step's value; None removes the field. ValidationFailed names the field."""
    if spec.kind == "ids":
        joined = ",".join(raw) if isinstance(raw, list) else raw
        items = re.split(r"[,\s]+", joined)
        ids = []
        for item in items:
            if not str(item).strip():
                continue
            number = digits_parse(str(item).strip(), max_value=INT32_MAX)
            if number is None:
                raise ValidationFailed(f"{spec.label}: {item!r} is not an id", field=spec.name)
            ids.append(number)
        return ids
    text = (raw[0] if raw else "") if isinstance(raw, list) else raw
    if spec.kind == "bool":
        return text in ("on", "true", "1")
    text = text.strip() if spec.kind != "textarea" else text
    if text == "":
        return None
    if spec.kind == "int":
        number = digits_parse(text.removeprefix("-"), max_value=INT32_MAX)
        if number is None:
            raise ValidationFailed(f"{spec.label}: {text!r} is not a whole number", field=spec.name)
        return -number if text.startswith("-") else number
    if spec.kind == "csv":
        words = [w.strip() for w in text.split(",") if w.strip()]
        if spec.name == "weights":
            weights = [digits_parse(w, max_value=INT32_MAX) for w in words]
            if any(w is None for w in weights):
                raise ValidationFailed(f"{spec.label}: whole numbers, comma-separated", field=spec.name)
            return weights
        return words
    if spec.kind == "json":
        try:
            value = json_parse(text)
        except ValueError as exc:
            raise ValidationFailed(f"{spec.label}: not valid JSON ({exc})", field=spec.name) from None
        json_check(value, field=spec.name)  # NUL, NaN, out-of-range numbers: jsonb cannot hold them
        return value
    if spec.kind == "choice" and text not in spec.choices:
        raise ValidationFailed(
            f"{spec.label}: one of {', '.join(c for c in spec.choices if c)}", field=spec.name
        )
    return text


def _set(step: dict[str, Any], name: str, value: Any) -> None:
    if name == "weights":
        weights = value or []
        branches = list(step.get("branches") or [])
        while len(branches) < len(weights):
            branches.append({"weight": 1, "steps": []})
        if len(weights) >= 2:
            del branches[len(weights) :]
        for branch, weight in zip(branches, weights, strict=False):
            branch["weight"] = weight
        step["branches"] = branches
        return
    parts = name.split(".")
    node = step
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            if value is None:
                return
            child = {}
            node[part] = child
        node = child
    if value is None or value == []:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    if parts[0] == "content" and len(parts) == 3:  # drop a channel whose fields are all empty
        block = step.get("content", {}).get(parts[1])
        if isinstance(block, dict) and not any(block.values()):
            step["content"].pop(parts[1], None)


# ---------------------------------------------------------------- walking the draft


def _list_in(node: dict[str, Any], name: str) -> list[Any]:
    """``node[name]`` as a list of steps (made, or replaced when it is not a list)."""
    value = node.get(name)
    if not isinstance(value, list):
        value = []
        node[name] = value
    return value


def _branch_lists(step: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    kind = step.get("type")
    if kind == "wait_for":
        return [("matched", _list_in(step, "matched")), ("timeout", _list_in(step, "timeout"))]
    if kind == "condition":
        return [("yes", _list_in(step, "yes")), ("no", _list_in(step, "no"))]
    if kind == "random_split" and isinstance(step.get("branches"), list):
        return [
            (f"branches.{i}", _list_in(branch, "steps"))
            for i, branch in enumerate(step["branches"])
            if isinstance(branch, dict)
        ]
    return []


def _lists(definition: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every list of steps in the draft by address (see the module docstring)."""
    found: dict[str, list[dict[str, Any]]] = {}

    def walk(address: str, steps: list[Any]) -> None:
        found[address] = steps
        for step in steps:
            if isinstance(step, dict) and step.get("key"):
                for branch, inner in _branch_lists(step):
                    walk(f"{step['key']}.{branch}", inner)

    top = definition.setdefault("steps", [])
    if not isinstance(top, list):
        raise ValidationFailed("the draft's steps are not a list", field="definition")
    walk("", top)
    return found


def _locate(definition: dict[str, Any], key: str) -> tuple[list[dict[str, Any]], int]:
    for steps in _lists(definition).values():
        for i, step in enumerate(steps):
            if isinstance(step, dict) and step.get("key") == key:
                return steps, i
    raise NotFound(f"no step {key!r} in this journey", field="step")


def _all_keys(definition: dict[str, Any]) -> set[str]:
    return {str(s.get("key")) for steps in _lists(definition).values() for s in steps if isinstance(s, dict)}


def _draft(journey: Journey) -> dict[str, Any]:
    draft = copy.deepcopy(journey.definition) if isinstance(journey.definition, dict) else {}
    draft.setdefault("trigger", {"type": "manual"})
    draft.setdefault("steps", [])
    # Keys are what the editor addresses steps by: give every step one now (as validation would).
    keys = _all_keys(draft)
    n = 0
    for steps in _lists(draft).values():
        for step in steps:
            if isinstance(step, dict) and not step.get("key"):
                while f"s{n}" in keys or n == 0:
                    n += 1
                step["key"] = f"s{n}"
                keys.add(step["key"])
    return draft


# ---------------------------------------------------------------- edits


def journey_step_add(*, journey: Journey, parent: str, step_type: str) -> str:
    """Append a new ``step_type`` step (its skeleton, ``STEP_SKELETONS``) to the list ``parent``;
    returns its key. NotFound for an unknown list, ValidationFailed for an unknown type,
    JourneyStateConflict (archived)."""
    if step_type not in STEP_TYPES:
        raise ValidationFailed(f"step type must be one of {', '.join(STEP_TYPES)}", field="type")
    draft = _draft(journey)
    lists = _lists(draft)
    if parent not in lists:
        raise NotFound(f"no list of steps {parent!r} in this journey", field="parent")
    keys = _all_keys(draft)
    n = len(keys) + 1
    while f"s{n}" in keys:
        n += 1
    key = f"s{n}"
    lists[parent].append({"key": key, "type": step_type, **copy.deepcopy(STEP_SKELETONS[step_type])})
    journey_update(journey=journey, definition=draft)
    return key


def journey_step_remove(*, journey: Journey, key: str) -> None:
    """Remove step ``key`` (and the steps of its branches) from the draft."""
    draft = _draft(journey)
    steps, i = _locate(draft, key)
    del steps[i]
    journey_update(journey=journey, definition=draft)


def journey_step_move(*, journey: Journey, key: str, direction: str) -> None:
    """Move step ``key`` one place ``"up"`` or ``"down"`` within its list (no-op at either end)."""
    if direction not in ("up", "down"):
        raise ValidationFailed("direction is up or down", field="direction")
    draft = _draft(journey)
    steps, i = _locate(draft, key)
    j = i - 1 if direction == "up" else i + 1
    if 0 <= j < len(steps):
        steps[i], steps[j] = steps[j], steps[i]
        journey_update(journey=journey, definition=draft)


def journey_step_edit(*, journey: Journey, key: str, posted: dict[str, str | list[str]]) -> None:
    """Set the fields of step ``key`` from form values (``posted``: field name → text, or a list for
    ids), as :func:`step_fields` lists them; a field left empty is removed (validation's default
    applies). Saved even when the draft does not validate yet: :func:`journey_draft_check` says
    what is missing. ValidationFailed when a value cannot be read (a bad number or JSON)."""
    draft = _draft(journey)
    steps, i = _locate(draft, key)
    step = steps[i]
    for spec in step_fields(step):
        if spec.kind == "bool":
            _set(step, spec.name, _parse(spec, posted.get(spec.name, "")))
        elif spec.name in posted:
            _set(step, spec.name, _parse(spec, posted[spec.name]))
    journey_update(journey=journey, definition=draft)


def journey_trigger_set(*, journey: Journey, trigger: dict[str, Any]) -> None:
    """Replace the draft's trigger (validated at publish; see ``definition.TRIGGER_TYPES``)."""
    if trigger.get("type") not in TRIGGER_TYPES:
        raise ValidationFailed(f"trigger must be one of {', '.join(TRIGGER_TYPES)}", field="trigger")
    draft = _draft(journey)
    draft["trigger"] = {k: v for k, v in trigger.items() if v not in (None, "", [])}
    journey_update(journey=journey, definition=draft)


# ---------------------------------------------------------------- the editor's view of the draft


@dataclass
class DraftRow:
    """One line of the editor: a step, a branch heading, or the place to add a step to a list."""

    kind: str  # "step" | "branch" | "add"
    depth: int
    key: str = ""
    step: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    parent: str = ""  # the list a step belongs to / an "add" row appends to
    first: bool = False
    last: bool = False


def journey_draft_rows(*, definition: dict[str, Any]) -> list[DraftRow]:
    """The draft as rows top to bottom, branches indented under the step that branches (the editor
    draws paths as indented lists, no canvas)."""
    rows: list[DraftRow] = []

    def walk(steps: list[Any], parent: str, depth: int) -> None:
        for i, step in enumerate(steps):
            if not isinstance(step, dict):
                continue
            key = str(step.get("key") or "")
            rows.append(
                DraftRow(
                    kind="step",
                    depth=depth,
                    key=key,
                    step=step,
                    label=str(step.get("label") or ""),
                    parent=parent,
                    first=i == 0,
                    last=i == len(steps) - 1,
                )
            )
            for branch, inner in _branch_lists(step):
                if branch.startswith("branches."):
                    index = int(branch.split(".")[1])
                    weight = (step.get("branches") or [])[index].get("weight")
                    label = f"Branch {index + 1} (weight {weight})"
                else:
                    label = BRANCH_LABELS[branch]
                rows.append(DraftRow(kind="branch", depth=depth + 1, label=label, parent=f"{key}.{branch}"))
                walk(inner, f"{key}.{branch}", depth + 2)
                rows.append(DraftRow(kind="add", depth=depth + 2, parent=f"{key}.{branch}"))

    draft = copy.deepcopy(definition) if isinstance(definition, dict) else {}
    steps = draft.get("steps")
    walk(steps if isinstance(steps, list) else [], "", 0)
    rows.append(DraftRow(kind="add", depth=0, parent=""))
    return rows


@dataclass(frozen=True)
class DraftCheck:
    """The validation service's verdict on the draft: ``ok``, else the ``message`` (with its path),
    the ``step_key`` it is about ("" for the trigger, goals or the journey as a whole)."""

    ok: bool
    message: str = ""
    step_key: str = ""


def _step_at(definition: dict[str, Any], path: str) -> str:
    """The key of the deepest step a validation path (``$.steps[1].timeout[0].title``) goes through."""
    node: Any = definition
    key = ""
    rest = path[1:] if path.startswith("$") else path
    for token in re.findall(r"\.([A-Za-z_]+)|\[([^\]]+)\]", rest):
        name, index = token
        if index and not index.isdigit():  # "$.steps[<key>]": a step named by its key
            return index
        try:
            node = node[int(index)] if index else node[name]
        except (KeyError, IndexError, TypeError):
            break
        if index and isinstance(node, dict) and "type" in node and node.get("key"):
            key = str(node["key"])
    return key


def journey_draft_check(*, journey: Journey) -> DraftCheck:
    """Run the draft through ``journey_validate`` (the service publishing uses) and tie its message to
    the step it names."""
    try:
        journey_validate(
            workspace=journey.workspace,
            definition=journey.definition,
            goal=journey.goal,
            exit_conditions=journey.exit_conditions,
        )
    except DefinitionInvalid as exc:
        path = str(exc).split(":", 1)[0]
        return DraftCheck(ok=False, message=str(exc), step_key=_step_at(journey.definition or {}, path))
    return DraftCheck(ok=True)
