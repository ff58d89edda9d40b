"""Console pages for outbound webhooks (admins only): endpoints, their delivery log, replays. Thin: the
work is in ``engagement.webhooks.services``; domain errors become form errors or messages."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from engagement.errors import DomainError, NotFound
from engagement.models import WebhookDelivery, WebhookEndpoint
from engagement.webhooks import services

from .forms import WebhookEndpointForm
from .workspace import ConsoleRequest, admin_required, console_render, console_view

DELIVERY_LOG_SIZE = 50


def _endpoint(request: ConsoleRequest, endpoint_id: int) -> WebhookEndpoint:
    try:
        return services.webhook_endpoint_get(workspace=request.workspace, endpoint_id=endpoint_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _delivery(request: ConsoleRequest, delivery_id: int) -> WebhookDelivery:
    try:
        return services.webhook_delivery_get(workspace=request.workspace, delivery_id=delivery_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


@console_view
@admin_required
def webhooks(request: ConsoleRequest) -> HttpResponse:
    """Every endpoint of the workspace, and the form to add one (its secret is shown once)."""
    form = WebhookEndpointForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = services.webhook_endpoint_create(
                workspace=request.workspace,
                url=form.cleaned_data["url"],
                event_types=form.cleaned_data["event_types"],
                description=form.cleaned_data["description"],
                created_by=request.user if request.user.is_authenticated else None,
            )
        except DomainError as exc:
            form.add_error("url" if exc.field == "url" else None, exc.message)
        else:
            created = {"endpoint": endpoint, "secret": secret}
            form = WebhookEndpointForm()
    response = console_render(
        request,
        "console/webhooks.html",
        {
            "endpoints": services.webhook_endpoint_list(workspace=request.workspace),
            "form": form,
            "created": created,
        },
    )
    if created is not None:
        response["Cache-Control"] = "no-store"  # the secret must not sit in any cache
    return response


@console_view
@admin_required
def webhook_endpoint(request: ConsoleRequest, endpoint_id: int) -> HttpResponse:
    """One endpoint: edit it, switch it on or off, and its delivery log (newest first)."""
    endpoint = _endpoint(request, endpoint_id)
    initial = {"url": endpoint.url, "description": endpoint.description, "event_types": endpoint.event_types}
    form = WebhookEndpointForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.webhook_endpoint_update(
                endpoint=endpoint,
                url=form.cleaned_data["url"],
                event_types=form.cleaned_data["event_types"],
                description=form.cleaned_data["description"],
            )
        except DomainError as exc:
            form.add_error("url" if exc.field == "url" else None, exc.message)
        else:
            messages.success(request, "Endpoint saved.")
            return redirect("console:webhook_endpoint", endpoint_id=endpoint.pk)
    deliveries = list(services.webhook_delivery_list(endpoint=endpoint)[:DELIVERY_LOG_SIZE])
    return console_render(
        request,
        "console/webhook_endpoint.html",
        {"endpoint": endpoint, "form": form, "deliveries": deliveries},
    )


@require_POST
@console_view
@admin_required
def webhook_endpoint_action(request: ConsoleRequest, endpoint_id: int, verb: str) -> HttpResponse:
    """enable, disable, rotate (the secret, shown once) or delete."""
    if verb not in {"enable", "disable", "rotate", "delete"}:
        raise Http404("No such action")
    endpoint = _endpoint(request, endpoint_id)
    if verb == "delete":
        services.webhook_endpoint_delete(endpoint=endpoint)
        messages.success(request, f"Endpoint {endpoint.url} deleted.")
        return redirect("console:webhooks")
    if verb == "rotate":
        secret = services.webhook_endpoint_secret_rotate(endpoint=endpoint)
        response = console_render(
            request,
            "console/webhook_endpoint.html",
            {
                "endpoint": endpoint,
                "form": WebhookEndpointForm(
                    initial={
                        "url": endpoint.url,
                        "description": endpoint.description,
                        "event_types": endpoint.event_types,
                    }
                ),
                "deliveries": list(services.webhook_delivery_list(endpoint=endpoint)[:DELIVERY_LOG_SIZE]),
                "new_secret": secret,
            },
        )
        response["Cache-Control"] = "no-store"
        return response
    services.webhook_endpoint_update(endpoint=endpoint, enabled=verb == "enable")
    messages.success(request, "Endpoint enabled." if endpoint.enabled else "Endpoint disabled.")
    return redirect("console:webhook_endpoint", endpoint_id=endpoint.pk)


@console_view
@admin_required
def webhook_delivery(request: ConsoleRequest, delivery_id: int) -> HttpResponse:
    """One delivery: the body sent and every attempt."""
    delivery = _delivery(request, delivery_id)
    return console_render(request, "console/webhook_delivery.html", {"delivery": delivery})


@require_POST
@console_view
@admin_required
def webhook_delivery_replay(request: ConsoleRequest, delivery_id: int) -> HttpResponse:
    try:
        delivery = services.webhook_delivery_replay(workspace=request.workspace, delivery_id=delivery_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except services.WebhookEndpointDisabled as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Delivery of {delivery.event_type} queued again.")
    return redirect("console:webhook_delivery", delivery_id=delivery_id)
