"""Console: the reports page (Chart.js charts + tables) and CSV export. Thin over
``engagement.reports.selectors``; filters come from the query string (date range, day/week, channel
kind, assignee, team), the zone is the member's."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from engagement.errors import DomainError
from engagement.models import Membership, Team
from engagement.models.channels import ChannelKind
from engagement.reports.selectors import REPORTS, ReportFilters, report_csv, report_filters_build, report_get

from .workspace import ConsoleRequest, console_render, console_view


def _date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _ids(raw: list[str]) -> list[int]:
    return [int(v) for v in raw if v.isascii() and v.isdigit() and 0 < len(v) < 19]


def _filters(request: ConsoleRequest) -> ReportFilters:
    get = request.GET
    assignees = _ids(get.getlist("assignee"))
    teams = _ids(get.getlist("team"))
    kinds = [k for k in get.getlist("channel") if k]
    zone = str(timezone.get_current_timezone())
    try:
        return report_filters_build(
            start=_date(get.get("start", "")),
            end=_date(get.get("end", "")),
            interval=get.get("interval", "day") or "day",
            channel_kinds=kinds,
            assignee_ids=assignees,
            zone=zone,
            today=timezone.localdate(),
            team_ids=teams,
            workspace=request.workspace,
        )
    except DomainError as exc:
        messages.error(request, str(exc))
        return report_filters_build(start=None, end=None, zone=zone, today=timezone.localdate())


@require_http_methods(["GET", "HEAD"])
@console_view
def reports_page(request: ConsoleRequest) -> HttpResponse:
    filters = _filters(request)
    reports = [report_get(workspace=request.workspace, name=name, filters=filters) for name in REPORTS]
    members = get_user_model().objects.filter(
        pk__in=Membership.objects.filter(workspace=request.workspace).values("user_id")
    )
    context = {
        "reports": reports,
        "charts": {r.name: r.chart for r in reports},
        "filters": filters,
        "channel_kinds": ChannelKind.choices,
        "teams": Team.objects.filter(workspace=request.workspace).order_by("name"),
        "members": sorted(members, key=lambda u: (u.get_full_name() or u.get_username()).lower()),
        "query": request.GET.urlencode(),
    }
    return console_render(request, "console/reports.html", context)


@require_http_methods(["GET", "HEAD"])
@console_view
def report_export(request: ConsoleRequest, name: str) -> HttpResponse:
    if name not in REPORTS:
        raise Http404("No such report")
    filters = _filters(request)
    report = report_get(workspace=request.workspace, name=name, filters=filters)
    response = HttpResponse(report_csv(report), content_type="text/csv; charset=utf-8")
    filename = f"{name}-{filters.start.isoformat()}-{filters.end.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
