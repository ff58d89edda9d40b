"""The input boundary: values PostgreSQL or Python cannot take are refused or cleaned where they enter.

PostgreSQL ``text``/``varchar`` and ``jsonb`` cannot hold a NUL character (``\\x00``; jsonb refuses the
``\\u0000`` escape too); a lone UTF-16 surrogate (``"\\ud800"`` in JSON) is not valid Unicode, so the
driver cannot encode it; ``jsonb`` has no ``NaN``/``Infinity``; integer columns are 64 bits at most;
Python's ``json`` overflows its stack on deep nesting. Each kind is handled once, here:

* **refuse** (client input → 400 naming the field): :func:`text_problem`, :func:`json_problem`,
  :func:`json_check` — used by the API's parsers (``engagement/api/parsers.py``) and the request
  middleware (``engagement/middleware.py``) for every form post and query string;
* **clean** (authentic provider events, which must be applied, never refused): :func:`text_clean` and
  :func:`json_clean` — NUL removed, lone surrogates replaced by U+FFFD, non-finite numbers as text;
  used by ``engagement/inbound.py:inbound_event_clean`` on every normalized event before it is stored.

A leaf module: it imports nothing from the project but the error base.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from engagement.errors import ValidationFailed

NUL = "\x00"
# Deeper JSON than this is refused: no field of ours nests past a few levels, and Python's json module
# and PostgreSQL's jsonb both fail on a deep enough document.
MAX_JSON_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1  # PositiveIntegerField
INT16_MAX = 2**15 - 1  # PositiveSmallIntegerField
_SURROGATE = re.compile("[\ud800-\udfff]")
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")


class InputInvalid(ValidationFailed):
    """A value no column can hold (NUL, an unpaired surrogate, an out-of-range number, deep nesting)."""

    code = "input_invalid"


def text_problem(value: str) -> str:
    """Why PostgreSQL cannot store ``value`` as text, or ``""`` when it can."""
    if NUL in value:
        return "contains a NUL character (\\u0000), which text cannot hold"
    if not value.isascii() and _SURROGATE.search(value):
        return "contains an unpaired UTF-16 surrogate, which is not valid Unicode"
    return ""


def text_clean(value: str) -> str:
    """``value`` without NUL characters and with lone surrogates replaced by U+FFFD (for provider data
    that must be stored whatever it holds)."""
    if NUL in value:
        value = value.replace(NUL, "")
    if not value.isascii() and _SURROGATE.search(value):
        value = _SURROGATE.sub("\ufffd", value)
    return value


def digits_parse(value: object, *, max_value: int = INT64_MAX) -> int | None:
    """The number a string of ASCII digits spells, when it is at most ``max_value``; else None.

    Use it instead of ``s.isdigit() and int(s)``: ``str.isdigit()`` accepts the superscript ``²``,
    which ``int()`` refuses (a 500), and no digit check stops a number too large for its column."""
    text = value if isinstance(value, str) else str(value) if isinstance(value, int) else ""
    if not _ASCII_DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if number <= max_value else None


def json_parse(text: str | bytes) -> Any:
    """``json.loads``, but every failure is a ``ValueError``: a document nested deeper than the parser's
    stack (``RecursionError`` from the C scanner) included, so a caller's ``except ValueError`` answers
    it as malformed input instead of a 500."""
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise ValueError("the JSON document is nested too deeply") from exc


def _where(path: str) -> str:
    return path or "the body"


def json_problem(value: Any, *, path: str = "", depth: int = 0) -> tuple[str, str] | None:
    """``(path, reason)`` of the first value in a parsed JSON document that cannot be stored, else None.

    ``path`` is dotted (``attributes.note``, ``identifiers.0.value``)."""
    if isinstance(value, str):
        problem = text_problem(value)
        return (path, problem) if problem else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            return (path, "is an integer outside the 64-bit range")
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, "is not a finite number")
    if depth >= MAX_JSON_DEPTH and isinstance(value, (dict, list, tuple)):
        return (path, f"is nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and (problem := text_problem(key)):
                return (path, f"has a key that {problem}")
            found = json_problem(item, path=sub, depth=depth + 1)
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = json_problem(item, path=f"{path}.{index}" if path else str(index), depth=depth + 1)
            if found:
                return found
    return None


def json_check(value: Any, *, field: str = "") -> None:
    """Raise :class:`InputInvalid` (400) naming the first value PostgreSQL or Python cannot take."""
    found = json_problem(value, path=field)
    if found:
        path, problem = found
        raise InputInvalid(f"{_where(path)} {problem}", field=path)


def json_clean(value: Any, *, depth: int = 0) -> Any:
    """A copy of ``value`` every part of which jsonb can store: strings through :func:`text_clean`,
    non-finite floats and out-of-range integers as their text, anything nested deeper than
    :data:`MAX_JSON_DEPTH` as its ``repr`` (cut to 1,000 characters). Returns ``value`` itself when
    nothing needed cleaning."""
    if isinstance(value, str):
        return text_clean(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (dict, list, tuple)) and depth >= MAX_JSON_DEPTH:
        return text_clean(repr(value)[:1000])
    if isinstance(value, dict):
        cleaned = {
            (text_clean(k) if isinstance(k, str) else k): json_clean(v, depth=depth + 1)
            for k, v in value.items()
        }
        same = len(cleaned) == len(value) and all(k in value and value[k] is v for k, v in cleaned.items())
        return value if same else cleaned
    if isinstance(value, list):
        items = [json_clean(v, depth=depth + 1) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, tuple):
        items = [json_clean(v, depth=depth + 1) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else tuple(items)
    return value
