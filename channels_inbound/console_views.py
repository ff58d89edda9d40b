"""The console's "Unprocessed events" page: authentic provider requests kept because they could not be
normalized or applied (channels_inbound/intake.py), for workspace admins to process again after a fix."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods, require_POST

from engagement.console.workspace import ConsoleRequest, admin_required, console_render, console_view
from engagement.errors import NotFound

from .intake import (
    inbound_request_discard,
    inbound_request_list_unprocessed,
    inbound_request_reprocess,
    inbound_request_reprocess_all,
)

PAGE_LIMIT = 200


@require_http_methods(["GET", "HEAD"])
@console_view
@admin_required
def unprocessed_events(request: ConsoleRequest) -> HttpResponse:
    rows = inbound_request_list_unprocessed(workspace=request.workspace)
    return console_render(
        request,
        "channels_inbound/unprocessed_events.html",
        {"rows": list(rows[:PAGE_LIMIT]), "total": rows.count(), "limit": PAGE_LIMIT},
    )


@require_POST
@console_view
@admin_required
def unprocessed_event_reprocess(request: ConsoleRequest, request_id: int) -> HttpResponse:
    try:
        row = inbound_request_reprocess(request_id=request_id, workspace=request.workspace)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    if row.processed_at is not None:
        messages.success(request, f"Event {row.pk} processed.")
    else:
        messages.error(request, f"Event {row.pk} failed again: {row.last_error}")
    return redirect("inbound_console:unprocessed_events")


@require_POST
@console_view
@admin_required
def unprocessed_events_reprocess_all(request: ConsoleRequest) -> HttpResponse:
    applied, failing = inbound_request_reprocess_all(workspace=request.workspace)
    if failing:
        messages.error(request, f"{applied} processed, {failing} failed again.")
    else:
        messages.success(request, f"{applied} processed.")
    return redirect("inbound_console:unprocessed_events")


@require_POST
@console_view
@admin_required
def unprocessed_event_discard(request: ConsoleRequest, request_id: int) -> HttpResponse:
    try:
        inbound_request_discard(request_id=request_id, workspace=request.workspace)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    messages.success(request, f"Event {request_id} discarded.")
    return redirect("inbound_console:unprocessed_events")
