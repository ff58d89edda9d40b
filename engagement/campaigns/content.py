"""Campaign content: per-channel templates rendered in a sandbox over the recipient's profile only.

Django's template engine can walk attributes of whatever object it is given, so campaigns use Jinja2's
``SandboxedEnvironment`` (no attribute access to internals, no calls to unsafe methods) with
``StrictUndefined`` (a missing value is an error, never an empty string), and the context is a plain
dict of strings built here: ``first_name``, ``last_name``, ``display_name`` and ``attributes`` (the
customer's typed attributes). A value the customer lacks is left out, so ``{{ first_name |
default("there") }}`` gives the fallback and a bare ``{{ first_name }}`` fails for that customer.

:func:`content_lint` refuses, before launch, any template that does not parse, uses a name other than
those, or an attribute key the workspace has not defined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from customers.models import AttributeDefinition, Customer
from engagement.errors import ValidationFailed

CONTEXT_NAMES = frozenset({"first_name", "last_name", "display_name", "attributes"})
# Which content fields each channel kind has, and which of them are required.
CHANNEL_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "email": (("subject", "html", "text"), ("subject",)),
    "sms": (("body",), ("body",)),
    "voice": (("message",), ("message",)),
    "webchat": (("message",), ("message",)),
}
SMS_OPT_OUT_HINT = "Reply STOP to opt out"
MAX_TEMPLATE = 100_000

_text_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_html_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


class ContentInvalid(ValidationFailed):
    code = "content_invalid"
    title = "Invalid campaign content"


class RenderFailed(Exception):
    """A template could not be rendered for one customer (a value it needs is missing)."""


@dataclass(frozen=True)
class Rendered:
    """One recipient's message on one channel kind: ``body`` (SMS text, email text, spoken message,
    webchat message), and for email ``subject`` and ``html``; SMS ``media_urls``."""

    body: str
    subject: str = ""
    html: str = ""
    media_urls: tuple[str, ...] = ()


def customer_context(customer: Customer) -> dict[str, Any]:
    """The only values a template sees. ``first_name``/``last_name`` come from attributes of those keys,
    else from splitting ``display_name``; empty values are left out so ``default`` applies."""
    attrs = {str(k): v for k, v in (customer.attributes or {}).items() if v not in (None, "")}
    parts = (customer.display_name or "").split(None, 1)
    first = str(attrs.get("first_name") or (parts[0] if parts else ""))
    last = str(attrs.get("last_name") or (parts[1] if len(parts) > 1 else ""))
    context: dict[str, Any] = {"attributes": attrs}
    for key, value in (("first_name", first), ("last_name", last), ("display_name", customer.display_name)):
        if value:
            context[key] = value
    return context


def _attribute_keys(ast: nodes.Template) -> set[str]:
    keys: set[str] = set()
    for node in ast.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "attributes":
            keys.add(node.attr)
    for item in ast.find_all(nodes.Getitem):
        if (
            isinstance(item.node, nodes.Name)
            and item.node.name == "attributes"
            and isinstance(item.arg, nodes.Const)
            and isinstance(item.arg.value, str)
        ):
            keys.add(item.arg.value)
    return keys


def template_lint(source: str, *, known_attributes: set[str], html: bool = False) -> list[str]:
    """Problems with one template (empty list: fine)."""
    if len(source) > MAX_TEMPLATE:
        return [f"longer than {MAX_TEMPLATE} characters"]
    env = _html_env if html else _text_env
    try:
        ast = env.parse(source)
    except TemplateSyntaxError as exc:
        return [f"syntax error on line {exc.lineno}: {exc.message}"]
    problems = [
        f"unknown variable {name!r} (use one of {', '.join(sorted(CONTEXT_NAMES))})"
        for name in sorted(meta.find_undeclared_variables(ast) - CONTEXT_NAMES)
    ]
    problems += [
        f"unknown attribute {key!r} (not defined for this workspace)"
        for key in sorted(_attribute_keys(ast) - known_attributes - {"first_name", "last_name"})
    ]
    return problems


def content_lint(
    *, workspace_id: int, content: dict[str, Any], channel_kinds: list[str]
) -> dict[str, list[str]]:
    """Every problem in ``content`` for the channel kinds the campaign uses, keyed "sms.body",
    "email.subject"… A required field missing counts. Empty dict: ready to launch."""
    known = set(AttributeDefinition.objects.filter(workspace_id=workspace_id).values_list("key", flat=True))
    problems: dict[str, list[str]] = {}
    for kind in channel_kinds:
        fields, required = CHANNEL_FIELDS[kind]
        block = content.get(kind) or {}
        if kind == "email" and not (block.get("html") or block.get("text")):
            problems["email.text"] = ["an email needs an HTML or a text part"]
        for name in fields:
            value = block.get(name) or ""
            if not isinstance(value, str):
                problems[f"{kind}.{name}"] = ["must be text"]
                continue
            if not value.strip():
                if name in required:
                    problems[f"{kind}.{name}"] = ["required"]
                continue
            found = template_lint(value, known_attributes=known, html=(name == "html"))
            if found:
                problems[f"{kind}.{name}"] = found
    return problems


def content_for_variant(
    *, content: dict[str, Any], variants: list[dict[str, Any]], variant: str
) -> dict[str, Any]:
    """The campaign's content with the variant's overrides applied, per channel kind."""
    merged = {kind: dict(block or {}) for kind, block in (content or {}).items()}
    for entry in variants or []:
        if entry.get("key") == variant:
            for kind, block in (entry.get("content") or {}).items():
                merged.setdefault(kind, {}).update(block or {})
    return merged


def _render(source: str, context: dict[str, Any], *, html: bool = False) -> str:
    env = _html_env if html else _text_env
    try:
        return env.from_string(source).render(context)
    except UndefinedError as exc:
        raise RenderFailed(str(exc)) from exc
    except (SecurityError, TemplateSyntaxError, TypeError, ValueError) as exc:
        raise RenderFailed(f"{type(exc).__name__}: {exc}") from exc


def content_render(
    *, content: dict[str, Any], kind: str, customer: Customer, purpose: str, sms_opt_out_hint: bool
) -> Rendered:
    """Render the ``kind`` block of ``content`` (a variant's merged content) for ``customer``.

    Marketing SMS end with "Reply STOP to opt out" when ``sms_opt_out_hint`` and the text does not
    already mention STOP (CTIA messaging principles). RenderFailed when a value is missing."""
    block = content.get(kind) or {}
    context = customer_context(customer)
    if kind == "email":
        subject = _render(block.get("subject") or "", context).strip()
        html = _render(block.get("html") or "", context, html=True)
        text = _render(block.get("text") or "", context)
        if not text.strip() and html:
            text = _html_to_text(html)
        return Rendered(body=text.strip(), subject=subject, html=html)
    if kind == "sms":
        body = _render(block.get("body") or "", context).strip()
        if purpose == "marketing" and sms_opt_out_hint and "STOP" not in body.upper():
            body = f"{body}\n{SMS_OPT_OUT_HINT}"
        media = tuple(str(u) for u in (block.get("media_urls") or []) if u)
        return Rendered(body=body, media_urls=media)
    return Rendered(body=_render(block.get("message") or "", context).strip())


def _html_to_text(html: str) -> str:
    import nh3

    text = nh3.clean(html.replace("<br>", "\n").replace("</p>", "\n"), tags=set())
    import html as html_lib

    return html_lib.unescape(text)
