"""Console for marketers: the segments list and the builder.

Thin views over ``engagement.segments.services``. The builder page holds the rule tree as JSON in a form
field; ``static/console/segments.js`` draws it as rows (field / operator / value) in AND/OR groups with
NOT, writes it back to that field on every change, and asks ``/api/v1/segments/preview-count/`` for the
live count. Without JavaScript the JSON field itself is editable. Admins and marketers only.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, Concatenate

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods, require_POST

from customers.consent import SendPurpose
from customers.models import AttributeDefinition, ConsentChannel, IdentityKind
from engagement.errors import DomainError
from engagement.models import Role, Segment, SegmentKind
from engagement.segments.rules import (
    ATTRIBUTE_OPERATORS,
    LAST_SEEN_OPERATORS,
    PROPERTY_OPERATORS,
    known_timezones,
)
from engagement.segments.services import (
    segment_create,
    segment_delete,
    segment_members_upload,
    segment_update,
)

from .workspace import ConsoleRequest, console_render, console_view

SEGMENT_ROLES = (Role.ADMIN, Role.MARKETER)


def segments_role_required[**P](
    view: Callable[Concatenate[ConsoleRequest, P], HttpResponse],
) -> Callable[Concatenate[ConsoleRequest, P], HttpResponse]:
    """Admins and marketers; everybody else gets 403."""

    @functools.wraps(view)
    def wrapped(request: ConsoleRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        if request.membership.role not in SEGMENT_ROLES:
            reason = "Segments are for the workspace's marketers and admins."
            return console_render(request, "403.html", {"reason": reason}, status=403)
        return view(request, *args, **kwargs)

    return wrapped


def _segment_or_404(request: ConsoleRequest, segment_id: int) -> Segment:
    segment = Segment.objects.filter(workspace=request.workspace, pk=segment_id).first()
    if segment is None:
        raise Http404("No such segment")
    return segment


def _actor(request: HttpRequest) -> Any:
    return request.user if request.user.is_authenticated else None


def builder_schema(request: ConsoleRequest, segment: Segment | None) -> dict[str, Any]:
    """What the builder offers: the workspace's attributes, the other segments, the fixed vocabularies."""
    attributes = AttributeDefinition.objects.filter(workspace=request.workspace).order_by("label", "key")
    others = Segment.objects.filter(workspace=request.workspace).order_by("name")
    if segment is not None:
        others = others.exclude(pk=segment.pk)
    return {
        "attributes": [{"key": a.key, "label": a.label, "type": a.type} for a in attributes],
        "attribute_operators": {kind: list(ops) for kind, ops in ATTRIBUTE_OPERATORS.items()},
        "property_operators": list(PROPERTY_OPERATORS),
        "last_seen_operators": list(LAST_SEEN_OPERATORS),
        "segments": [{"id": s.pk, "name": s.name} for s in others],
        "channels": list(ConsentChannel.values),
        "identity_kinds": list(IdentityKind.values),
        "purposes": list(SendPurpose.values),
        "timezones": sorted(known_timezones()),
    }


@require_http_methods(["GET", "HEAD"])
@console_view
@segments_role_required
def segment_list(request: ConsoleRequest) -> HttpResponse:
    segments = Segment.objects.filter(workspace=request.workspace).select_related("updated_by")
    segments = segments.order_by("name")
    return console_render(request, "console/segments.html", {"segments": segments})


def _render_builder(
    request: ConsoleRequest,
    segment: Segment | None,
    values: dict[str, Any],
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {
        "segment": segment,
        "values": values,
        "error": error,
        "schema": builder_schema(request, segment),
        "kinds": SegmentKind.choices,
        "purposes": SendPurpose.choices,
        "preview_url": "/api/v1/segments/preview-count/",
    }
    return console_render(request, "console/segment_builder.html", context, status=status)


def _posted_rules(raw: str) -> Any:
    try:
        return json.loads(raw) if raw.strip() else None
    except json.JSONDecodeError as exc:
        raise _BadJson(f"the rules are not valid JSON: {exc.msg} (line {exc.lineno})") from exc


class _BadJson(ValueError):
    pass


@require_http_methods(["GET", "HEAD", "POST"])
@console_view
@segments_role_required
def segment_new(request: ConsoleRequest) -> HttpResponse:
    empty = {"name": "", "description": "", "kind": SegmentKind.DYNAMIC, "static_tag": ""}
    if request.method != "POST":
        return _render_builder(request, None, {**empty, "rules": '{"type": "and", "rules": []}'})
    values = {key: request.POST.get(key, default) for key, default in empty.items()}
    values["rules"] = request.POST.get("rules", "")
    try:
        segment = segment_create(
            workspace=request.workspace,
            name=values["name"],
            kind=values["kind"],
            rules=_posted_rules(values["rules"]) if values["kind"] == SegmentKind.DYNAMIC else None,
            description=values["description"],
            static_tag=values["static_tag"] if values["kind"] == SegmentKind.STATIC else "",
            actor=_actor(request),
        )
    except (DomainError, _BadJson) as exc:
        return _render_builder(request, None, values, error=str(exc), status=400)
    messages.success(request, f"Segment “{segment.name}” created.")
    return redirect("console:segment", segment_id=segment.pk)


@require_http_methods(["GET", "HEAD", "POST"])
@console_view
@segments_role_required
def segment_detail(request: ConsoleRequest, segment_id: int) -> HttpResponse:
    segment = _segment_or_404(request, segment_id)
    current = {
        "name": segment.name,
        "description": segment.description,
        "kind": segment.kind,
        "static_tag": segment.static_tag,
        "rules": json.dumps(segment.rules, indent=1) if segment.kind == SegmentKind.DYNAMIC else "",
    }
    if request.method != "POST":
        return _render_builder(request, segment, current)
    posted = ("name", "description", "static_tag", "rules")
    values = {**current, **{k: request.POST[k] for k in posted if k in request.POST}}
    try:
        segment_update(
            segment=segment,
            name=values["name"],
            description=values["description"],
            rules=_posted_rules(values["rules"]) if segment.kind == SegmentKind.DYNAMIC else None,
            static_tag=values["static_tag"] if segment.kind == SegmentKind.STATIC else None,
            actor=_actor(request),
        )
    except (DomainError, _BadJson) as exc:
        segment.refresh_from_db()
        return _render_builder(request, segment, values, error=str(exc), status=400)
    messages.success(request, f"Segment “{segment.name}” saved.")
    return redirect("console:segment", segment_id=segment.pk)


@require_POST
@console_view
@segments_role_required
def segment_upload(request: ConsoleRequest, segment_id: int) -> HttpResponse:
    segment = _segment_or_404(request, segment_id)
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a CSV file to upload.")
        return redirect("console:segment", segment_id=segment.pk)
    try:
        source = upload.read().decode("utf-8-sig")
        result = segment_members_upload(
            segment=segment,
            source=source,
            create_missing=request.POST.get("create_missing") == "on",
            actor=_actor(request),
        )
    except UnicodeDecodeError:
        messages.error(request, "The file must be UTF-8 CSV.")
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        summary = (
            f"{result.rows} rows: {result.added} added, {result.already} already on the list, "
            f"{result.created_customers} new customers, {result.not_found} not found, "
            f"{len(result.errors)} with errors."
        )
        messages.success(request, summary)
        for error in result.errors[:5]:
            messages.warning(request, f"Row {error['row']}: {error['error']}")
    return redirect("console:segment", segment_id=segment.pk)


@require_POST
@console_view
@segments_role_required
def segment_delete_view(request: ConsoleRequest, segment_id: int) -> HttpResponse:
    segment = _segment_or_404(request, segment_id)
    try:
        segment_delete(segment=segment)
    except DomainError as exc:
        messages.error(request, str(exc))
        return redirect("console:segment", segment_id=segment.pk)
    messages.success(request, f"Segment “{segment.name}” deleted.")
    return redirect("console:segments")


class ConsoleLoginView(auth_views.LoginView):
    """Sign-in. Coming from the bare console address (``?next=/``, where any first visit starts), each
    role lands on its home (:func:`home`) rather than the inbox; any other ``next`` is honoured."""

    redirect_authenticated_user = True

    def get_redirect_url(self, request: HttpRequest | None = None) -> str:
        url = super().get_redirect_url(request)
        return "" if url == "/" else url


@require_http_methods(["GET", "HEAD"])
@console_view
def home(request: ConsoleRequest) -> HttpResponse:
    """Where signing in lands: marketers on their campaigns, everybody else in the inbox."""
    if request.membership.role == Role.MARKETER:
        return redirect("console:campaigns")
    return redirect("console:inbox")
