"""Console: the customer profile (identities, attributes, tags, consent, timeline, suggestions, merges).

Thin views over ``customers`` services; every lookup is scoped to the request's workspace and follows
merges (``customers.lookup.customer_resolve_current``): a merged-away customer's page redirects to the
survivor's, and an action posted from a page that predates a merge applies to the survivor.
"""

from __future__ import annotations

import json
import zoneinfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from customers.consent import consent_history, consent_record, consent_summary
from customers.directory import customer_directory, customer_tags_in_use
from customers.duplicates import merge_suggestion_accept, merge_suggestion_dismiss, merge_suggestion_list
from customers.events import customer_events_recent
from customers.lookup import customer_resolve_current_or_none
from customers.merging import (
    MergeRejected,
    customer_merge,
    customer_merge_preview,
    customer_unmerge,
    merge_list_for_customer,
)
from customers.models import (
    AttributeDefinition,
    ConsentChannel,
    ConsentPurpose,
    ConsentSource,
    ConsentStatus,
    Customer,
    CustomerMerge,
    Identity,
    IdentityKind,
    MergeSource,
    MergeSuggestion,
    PreferredChannel,
)
from customers.privacy import customer_erase, customer_export
from customers.profile import IdentityTaken, customer_create, customer_timezone, customer_update, identity_add
from customers.services import Identifier
from engagement.errors import DomainError
from engagement.sanitize import digits_parse
from engagement.services import console_queries as q
from engagement.services.inbox import customer_label, thread_high_water_mark

from .forms import CustomerCreateForm
from .journey_views import customer_journeys_context
from .workspace import ConsoleRequest, admin_required, console_render, console_view


def _customer_or_404(request: ConsoleRequest, customer_id: int) -> Customer:
    """The customer ``customer_id`` lives on as (itself, or the survivor of its merges); 404 if none."""
    customer = customer_resolve_current_or_none(workspace_id=request.workspace.pk, customer_id=customer_id)
    if customer is None:
        raise Http404("No such customer")
    if customer.pk != customer_id and request.method == "POST":
        messages.info(request, f"Customer {customer_id} was merged into this one; applied here.")
    return customer


@require_http_methods(["GET", "HEAD"])
@console_view
def customer_profile(request: ConsoleRequest, customer_id: int) -> HttpResponse:
    customer = _customer_or_404(request, customer_id)
    if customer.pk != customer_id:
        messages.info(request, f"Customer {customer_id} was merged into this one.")
        return redirect("console:customer", customer_id=customer.pk)
    preview = None
    other_id = request.GET.get("merge")
    other_pk = digits_parse(other_id) if other_id else None
    if other_id and other_pk is None:
        messages.error(request, "Give a customer number to merge.")
    elif other_pk is not None:
        other = customer_resolve_current_or_none(workspace_id=request.workspace.pk, customer_id=other_pk)
        if other is None:
            messages.error(request, f"No customer {other_id} in this workspace.")
        else:
            try:
                preview = customer_merge_preview(workspace=request.workspace, survivor=customer, merged=other)
            except MergeRejected as exc:
                messages.error(request, str(exc))
    interactions, truncated = q.interaction_list_for_timeline(workspace=request.workspace, customer=customer)
    identities = list(
        Identity.objects.filter(workspace=request.workspace, customer=customer).order_by("kind", "value")
    )
    zone, zone_source = customer_timezone(customer=customer, identities=identities)
    context = {
        **_profile_panel_context(request, customer),
        "customer_label": customer_label(customer, identities),
        "live_mark": thread_high_water_mark(workspace=request.workspace),
        "timeline_limit": q.TIMELINE_LIMIT,
        "custom_events": customer_events_recent(customer=customer),
        "identities": identities,
        "zone": zone,
        "zone_source": zone_source,
        "consent_rows": _consent_rows(consent_summary(customer=customer)),
        "consent_history": consent_history(customer=customer),
        "interactions": interactions,
        "truncated": truncated,
        "suggestions": merge_suggestion_list(workspace=request.workspace, customer=customer),
        "merges": merge_list_for_customer(workspace=request.workspace, customer=customer),
        "preview": preview,
        **customer_journeys_context(request, customer),
        "channels": ConsentChannel.choices,
        "purposes": [("", "Every purpose"), *ConsentPurpose.choices],
        "statuses": ConsentStatus.choices,
    }
    return console_render(request, "console/customer_profile.html", context)


def _consent_rows(summary: dict[str, dict[str, str | None]]) -> list[tuple[str, list[str]]]:
    """``[(channel label, [status label or "" per purpose, in ConsentPurpose order])]`` for the profile."""
    channels, statuses = dict(ConsentChannel.choices), dict(ConsentStatus.choices)
    rows = []
    for channel, states in summary.items():
        labels = [statuses.get(states.get(purpose) or "", "") for purpose in ConsentPurpose.values]
        rows.append((channels.get(channel, channel), labels))
    return rows


@require_POST
@console_view
def customer_merge_view(request: ConsoleRequest, customer_id: int) -> HttpResponse:
    survivor = _customer_or_404(request, customer_id)
    other_pk = digits_parse(request.POST.get("other_id", "").strip())
    other = (
        customer_resolve_current_or_none(workspace_id=request.workspace.pk, customer_id=other_pk)
        if other_pk is not None
        else None
    )
    if other is None:
        messages.error(request, "No such customer to merge.")
        return redirect("console:customer", customer_id=survivor.pk)
    try:
        customer_merge(
            workspace=request.workspace,
            survivor=survivor,
            merged=other,
            source=MergeSource.AGENT,
            event_ref="console:merge",
            evidence={"note": request.POST.get("note", "")[:500]},
            actor=request.user if request.user.is_authenticated else None,
        )
    except MergeRejected as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Customer {other.pk} merged into this one.")
    return redirect("console:customer", customer_id=survivor.pk)


@require_POST
@console_view
def customer_unmerge_view(request: ConsoleRequest, merge_id: int) -> HttpResponse:
    record = CustomerMerge.objects.filter(workspace=request.workspace, pk=merge_id).first()
    if record is None:
        raise Http404("No such merge")
    try:
        customer_unmerge(
            workspace=request.workspace,
            merge=record,
            actor=request.user if request.user.is_authenticated else None,
        )
    except MergeRejected as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Customer {record.merged_id} split off again.")
    return redirect("console:customer", customer_id=record.survivor_id)


@require_POST
@console_view
def customer_suggestion_view(request: ConsoleRequest, suggestion_id: int) -> HttpResponse:
    suggestion = MergeSuggestion.objects.filter(workspace=request.workspace, pk=suggestion_id).first()
    if suggestion is None:
        raise Http404("No such suggestion")
    actor = request.user if request.user.is_authenticated else None
    if request.POST.get("decision") == "accept":
        try:
            record = merge_suggestion_accept(workspace=request.workspace, suggestion=suggestion, actor=actor)
        except MergeRejected as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Merged.")
            return redirect("console:customer", customer_id=record.survivor_id)
    else:
        merge_suggestion_dismiss(workspace=request.workspace, suggestion=suggestion, actor=actor)
        messages.success(request, "Suggestion dismissed.")
    back = digits_parse(request.POST.get("back", ""))
    return redirect("console:customer", customer_id=back if back is not None else suggestion.customer_a_id)


@require_POST
@console_view
def customer_consent_view(request: ConsoleRequest, customer_id: int) -> HttpResponse:
    customer = _customer_or_404(request, customer_id)
    try:
        consent_record(
            customer=customer,
            channel=request.POST.get("channel", ""),
            purpose=request.POST.get("purpose", ""),
            status=request.POST.get("status", ""),
            source=ConsentSource.AGENT,
            evidence={"note": request.POST.get("note", "")[:500]},
            actor=request.user if request.user.is_authenticated else None,
        )
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Consent recorded.")
    return redirect("console:customer", customer_id=customer.pk)


@require_http_methods(["GET"])
@console_view
def customer_export_view(request: ConsoleRequest, customer_id: int) -> HttpResponse:
    customer = _customer_or_404(request, customer_id)
    data = customer_export(workspace=request.workspace, customer=customer)
    response = HttpResponse(json.dumps(data, indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="customer-{customer.pk}.json"'
    return response


@require_POST
@console_view
@admin_required
def customer_erase_view(request: ConsoleRequest, customer_id: int) -> HttpResponse:
    customer = _customer_or_404(request, customer_id)
    if request.POST.get("confirm") != "erase":
        messages.error(request, 'Type "erase" to confirm.')
        return redirect("console:customer", customer_id=customer.pk)
    try:
        customer_erase(
            workspace=request.workspace,
            customer=customer,
            actor=request.user if request.user.is_authenticated else None,
            via="console",
            reason=request.POST.get("reason", "")[:200],
        )
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Personal data erased.")
    return redirect("console:customer", customer_id=customer.pk)


# ---------------------------------------------------------------- the customers page, creating, editing

CUSTOMERS_PAGE_SIZE = 25


def _is_htmx(request: ConsoleRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


@require_http_methods(["GET", "HEAD"])
@console_view
def customer_list(request: ConsoleRequest) -> HttpResponse:
    """Search by name or any identity, filter (has email / phone, tag), 25 a page. htmx swaps the
    results as the agent types (``HX-Request``: only ``_customer_results.html``)."""
    query = request.GET.get("q", "")[:200]
    has_email = request.GET.get("has_email") == "1"
    has_phone = request.GET.get("has_phone") == "1"
    tag = request.GET.get("tag", "")[:64]
    customers = customer_directory(
        workspace=request.workspace, query=query, has_email=has_email, has_phone=has_phone, tag=tag
    )
    page = Paginator(customers, CUSTOMERS_PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    context = {
        "page": page,
        "rows": [
            (c, customer_label(c, c.identity_list))  # type: ignore[attr-defined]
            for c in page.object_list
        ],
        "q": query,
        "has_email": has_email,
        "has_phone": has_phone,
        "tag": tag,
        "tags": customer_tags_in_use(workspace=request.workspace),
        "params": params.urlencode(),
    }
    if _is_htmx(request):
        return render(request, "console/_customer_results.html", context)
    return console_render(request, "console/customers.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
@console_view
def customer_create_view(request: ConsoleRequest) -> HttpResponse:
    form = CustomerCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        identifiers = [Identifier(kind, data[kind]) for kind in ("email", "phone") if data[kind]]
        try:
            customer = customer_create(
                workspace=request.workspace,
                display_name=form.cleaned_data["display_name"],
                identifiers=identifiers,
            )
        except IdentityTaken as exc:
            form.add_error(None, f"That address belongs to customer {exc.owner_id} already.")
            return console_render(
                request, "console/customer_new.html", {"form": form, "owner_id": exc.owner_id}
            )
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, "Customer created.")
            return redirect("console:customer", customer_id=customer.pk)
    return console_render(request, "console/customer_new.html", {"form": form})


def _profile_panel_context(request: ConsoleRequest, customer: Customer) -> dict[str, object]:
    definitions = list(AttributeDefinition.objects.filter(workspace=request.workspace).order_by("key"))
    return {
        "customer": customer,
        "definitions": [(d, customer.attributes.get(d.key, "")) for d in definitions],
        "preferred_channels": PreferredChannel.choices,
        "zones": sorted(zoneinfo.available_timezones()),
    }


@require_POST
@console_view
def customer_edit_view(request: ConsoleRequest, customer_id: int) -> HttpResponse:
    """Name, tags (comma-separated), time zone, preferred channel and the workspace's attributes. With
    htmx the profile panel is swapped in place; otherwise back to the profile."""
    customer = _customer_or_404(request, customer_id)
    post = request.POST
    error = ""
    keys = AttributeDefinition.objects.filter(workspace=request.workspace).values_list("key", flat=True)
    attributes = {key: post.get(f"attr_{key}", "") or None for key in keys if f"attr_{key}" in post}
    tags = [t for t in (x.strip() for x in post.get("tags", "").split(",")) if t]
    try:
        customer = customer_update(
            workspace=request.workspace,
            customer=customer,
            display_name=post.get("display_name"),
            tags=tags if "tags" in post else None,
            timezone=post.get("timezone") if "timezone" in post else None,
            preferred_channel=post.get("preferred_channel") if "preferred_channel" in post else None,
            attributes=attributes or None,
        )
    except DomainError as exc:
        error = str(exc)
    if _is_htmx(request):
        context = {**_profile_panel_context(request, customer), "error": error, "saved": not error}
        return render(request, "console/_profile_panel.html", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, "Profile saved.")
    return redirect("console:customer", customer_id=customer.pk)


@require_POST
@console_view
def customer_identity_add_view(request: ConsoleRequest, customer_id: int) -> HttpResponse:
    """Add an email address or phone number (an unverified claim) through ``customers.profile``."""
    customer = _customer_or_404(request, customer_id)
    kind = request.POST.get("kind", "")
    value = request.POST.get("value", "").strip()
    if kind not in (IdentityKind.EMAIL, IdentityKind.PHONE) or not value:
        messages.error(request, "Give an email address or a phone number.")
    else:
        try:
            identity = identity_add(
                workspace=request.workspace, customer=customer, identifier=Identifier(kind, value)
            )
        except IdentityTaken as exc:
            messages.error(
                request,
                f"{value} belongs to customer {exc.owner_id}: merge them from the profile "
                f"(Merge another customer into this one, id {exc.owner_id}).",
            )
        except DomainError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{identity.get_kind_display()} {identity.value} added.")
    back = request.POST.get("next", "")
    if back.startswith("/") and not back.startswith("//"):
        return redirect(back)
    return redirect("console:customer", customer_id=customer.pk)
