"""Console: SLA policies and the workspace's business hours (admins). Thin over
``engagement.services.sla``; a refused setting comes back as the page's error message."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods, require_POST

from engagement.errors import DomainError
from engagement.models import BusinessHours, SlaPolicy
from engagement.models.channels import ChannelKind
from engagement.sanitize import digits_parse
from engagement.services.csat import DEFAULT_QUESTION, csat_settings_for, csat_settings_set
from engagement.services.sla import business_hours_set, sla_policy_delete, sla_policy_save

from .workspace import ConsoleRequest, admin_required, console_render, console_view

WEEKDAYS = [
    (1, "Monday"),
    (2, "Tuesday"),
    (3, "Wednesday"),
    (4, "Thursday"),
    (5, "Friday"),
    (6, "Saturday"),
    (7, "Sunday"),
]


def _minutes(raw: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    value = digits_parse(raw)
    if value is None:
        raise _FormError(f"{raw!r} is not a whole number of minutes")
    return value


class _FormError(ValueError):
    pass


@require_http_methods(["GET", "HEAD", "POST"])
@console_view
@admin_required
def sla_settings(request: ConsoleRequest) -> HttpResponse:
    workspace = request.workspace
    if request.method == "POST":
        form = request.POST
        try:
            if form.get("form") == "csat":
                csat_settings_set(
                    workspace=workspace,
                    enabled=form.get("enabled") == "1",
                    question=form.get("question", ""),
                    reply_window_hours=_minutes(form.get("reply_window_hours", "")) or 72,
                )
                messages.success(request, "Satisfaction survey settings saved.")
            elif form.get("form") == "hours":
                weekly = {}
                for day, _ in WEEKDAYS:
                    start, end = form.get(f"open_{day}", "").strip(), form.get(f"close_{day}", "").strip()
                    if start or end:
                        weekly[str(day)] = [[start, end]]
                business_hours_set(workspace=workspace, weekly=weekly)
                messages.success(request, "Business hours saved.")
            else:
                sla_policy_save(
                    workspace=workspace,
                    name=form.get("name", ""),
                    first_response_minutes=_minutes(form.get("first_response_minutes", "")),
                    next_response_minutes=_minutes(form.get("next_response_minutes", "")),
                    resolution_minutes=_minutes(form.get("resolution_minutes", "")),
                    business_hours_only=form.get("business_hours_only") == "1",
                    channel_kinds=form.getlist("channel_kinds"),
                    position=_minutes(form.get("position", "")) or 0,
                )
                messages.success(request, "SLA policy added.")
            return redirect("console:sla_settings")
        except (DomainError, _FormError) as exc:
            messages.error(request, str(exc))
    hours = BusinessHours.objects.filter(workspace=workspace).first()
    weekly = hours.weekly if hours else {}
    days = [
        {
            "day": day,
            "name": name,
            "open": (weekly.get(str(day)) or [["", ""]])[0][0],
            "close": (weekly.get(str(day)) or [["", ""]])[0][1],
        }
        for day, name in WEEKDAYS
    ]
    context = {
        "policies": SlaPolicy.objects.filter(workspace=workspace).order_by("position", "id"),
        "days": days,
        "channel_kinds": ChannelKind.choices,
        "zone": workspace.timezone or "UTC",
        "csat": csat_settings_for(workspace=workspace),
        "default_question": DEFAULT_QUESTION,
    }
    return console_render(request, "console/sla_settings.html", context)


@require_POST
@console_view
@admin_required
def sla_policy_toggle(request: ConsoleRequest, policy_id: int) -> HttpResponse:
    policy = SlaPolicy.objects.filter(workspace=request.workspace, pk=policy_id).first()
    if policy is None:
        raise Http404("No such policy")
    if request.POST.get("action") == "delete":
        sla_policy_delete(workspace=request.workspace, policy_id=policy.pk)
        messages.success(request, f"Policy {policy.name} deleted.")
    else:
        SlaPolicy.objects.filter(pk=policy.pk).update(is_active=not policy.is_active)
    return redirect("console:sla_settings")
