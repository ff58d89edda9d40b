"""Console pages and actions of the team tools: the thread's assignment, status and snooze, labels,
private notes, the reply box's canned responses, bulk actions on inbox rows, and the admins' teams and
canned responses settings. Thin: every change goes through ``engagement.services.teamwork``."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from customers.lookup import customer_resolve_current_or_none
from customers.models import Customer
from engagement.errors import DomainError
from engagement.models import CannedResponse, Channel, Membership, Team
from engagement.services import teamwork

from .workspace import ConsoleRequest, admin_required, console_render, console_view


def _customer_or_404(request: ConsoleRequest, customer_id: int) -> Customer:
    customer = customer_resolve_current_or_none(workspace_id=request.workspace.pk, customer_id=customer_id)
    if customer is None:
        raise Http404("No such customer")
    return customer


def _back(request: ConsoleRequest, fallback: str) -> HttpResponse:
    """Back where the form was (``next``), when it is a path on this site; else ``fallback``. A URL, never
    a view name: ``redirect("0")`` would try to reverse "0" (a 500 the fuzz test found)."""
    target = request.POST.get("next", "")
    if target.startswith("/") and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return HttpResponseRedirect(target)
    return HttpResponseRedirect(fallback)


def _int_or_none(raw: str | None, field: str) -> int | None:
    if raw in (None, "", "none"):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise teamwork.ValidationFailed(f"{field} must be a number", field=field) from None
    if not 0 < value < 2**63:
        raise teamwork.ValidationFailed(f"{field} is out of range", field=field)
    return value


SNOOZE_CHOICES: tuple[tuple[str, str], ...] = (
    ("reply", "Until the customer replies"),
    ("1h", "For an hour"),
    ("tomorrow", "Until tomorrow 9:00"),
    ("week", "Until next Monday 9:00"),
)


def snooze_until_parse(choice: str, *, now: datetime | None = None) -> datetime | None:
    """The moment a console snooze choice ends, in the member's zone (active during the request); None
    for "until the customer replies". A ``YYYY-MM-DDTHH:MM`` value (a datetime-local input) is read in
    that zone too. ValidationFailed for anything else."""
    now = timezone.localtime(now or timezone.now())
    if choice == "reply":
        return None
    if choice == "1h":
        return now + timedelta(hours=1)
    if choice in ("tomorrow", "week"):
        days = 1 if choice == "tomorrow" else (7 - now.weekday()) or 7
        day = (now + timedelta(days=days)).date()
        return timezone.make_aware(datetime.combine(day, time(9, 0)), now.tzinfo)
    try:
        at = datetime.fromisoformat(choice)
        return at if timezone.is_aware(at) else timezone.make_aware(at, now.tzinfo)
    except (ValueError, OverflowError):
        raise teamwork.SnoozeInvalid(f"unknown snooze choice {choice!r}", field="snooze") from None


def _act(request: ConsoleRequest, done: str, action: Any) -> None:
    try:
        action()
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        if done:
            messages.success(request, done)


# ---------------------------------------------------------------- the thread's actions


@require_POST
@console_view
def thread_assign_view(request: ConsoleRequest, customer_id: int) -> HttpResponse:
    """Assign the thread to a member (``assignee``: a user id, "me", or "" for nobody) and/or a team."""
    customer = _customer_or_404(request, customer_id)
    raw = request.POST.get("assignee", "")
    team_raw = request.POST.get("team")

    def act() -> None:
        assignee = request.membership.user_id if raw == "me" else _int_or_none(raw, "assignee")
        team = teamwork.KEEP if team_raw is None else _int_or_none(team_raw, "team")
        teamwork.thread_assign(
            workspace=request.workspace, customer_id=customer.pk, assignee_id=assignee, team_id=team
        )

    _act(request, "Assignment saved.", act)
    return _back(request, f"/customers/{customer.pk}/thread/")


@require_POST
@console_view
def thread_status_view(request: ConsoleRequest, customer_id: int) -> HttpResponse:
    """Resolve, reopen, mark pending or snooze (``snooze``: a :data:`SNOOZE_CHOICES` key) the thread."""
    customer = _customer_or_404(request, customer_id)
    status = request.POST.get("status", "")

    def act() -> None:
        until = snooze_until_parse(request.POST.get("snooze", "reply")) if status == "snoozed" else None
        teamwork.thread_status_set(
            workspace=request.workspace,
            customer_id=customer.pk,
            status=status,
            snoozed_until=until,
            actor=request.user if request.user.is_authenticated else None,
        )

    labels = {
        "resolved": "Resolved.",
        "open": "Reopened.",
        "pending": "Marked pending.",
        "snoozed": "Snoozed.",
    }
    _act(request, labels.get(status, ""), act)
    return _back(request, f"/customers/{customer.pk}/thread/")


@require_POST
@console_view
def thread_labels_view(request: ConsoleRequest, customer_id: int) -> HttpResponse:
    """Add (``add``, comma separated) or remove (``remove``) labels on the thread's conversations."""
    customer = _customer_or_404(request, customer_id)
    add = [x for x in request.POST.get("add", "").split(",") if x.strip()]
    remove = [x for x in request.POST.getlist("remove") if x.strip()]

    def act() -> None:
        conversations = teamwork.thread_conversations(workspace=request.workspace, customer_id=customer.pk)
        teamwork.conversation_labels_change(
            workspace=request.workspace, conversations=conversations, add=add, remove=remove
        )

    _act(request, "", act)
    return _back(request, f"/customers/{customer.pk}/thread/")


@require_POST
@console_view
def thread_note_view(request: ConsoleRequest, customer_id: int) -> HttpResponse:
    """A private note; ``@username`` mentions notify those members live."""
    customer = _customer_or_404(request, customer_id)

    def act() -> None:
        teamwork.note_create(
            workspace=request.workspace,
            customer=customer,
            body=request.POST.get("body", ""),
            author_id=request.membership.user_id,
        )

    _act(request, "Note added.", act)
    return _back(request, f"/customers/{customer.pk}/thread/")


@require_GET
@console_view
def thread_canned_view(request: ConsoleRequest, customer_id: int) -> HttpResponse:
    """The canned responses filled in for this customer and agent, for the reply box's ``/`` menu."""
    customer = _customer_or_404(request, customer_id)
    items = teamwork.canned_responses_rendered(
        workspace=request.workspace, customer=customer, agent=request.user
    )
    return JsonResponse({"items": items})


@require_POST
@console_view
def inbox_bulk_view(request: ConsoleRequest) -> HttpResponse:
    """One action on the selected rows (``customer`` checkboxes)."""

    def act() -> None:
        ids = [_int_or_none(x, "customer") for x in request.POST.getlist("customer")]
        action = request.POST.get("action", "")
        raw = request.POST.get("assignee", "")
        count = teamwork.threads_bulk_apply(
            workspace=request.workspace,
            customer_ids=[i for i in ids if i is not None],
            action=action,
            assignee_id=request.membership.user_id if raw == "me" else _int_or_none(raw, "assignee"),
            actor=request.user if request.user.is_authenticated else None,
            label=request.POST.get("label", ""),
            snoozed_until=snooze_until_parse(request.POST.get("snooze", "reply"))
            if action == "snooze"
            else None,
        )
        messages.success(request, f"{count} conversation{'s' if count != 1 else ''} updated.")

    _act(request, "", act)
    return _back(request, "/")


# ---------------------------------------------------------------- settings: teams, canned responses


def _team_input(request: ConsoleRequest) -> teamwork.TeamInput:
    def ids(name: str) -> list[int]:
        return [i for i in (_int_or_none(x, name) for x in request.POST.getlist(name)) if i is not None]

    capacity = (
        _int_or_none(request.POST.get("capacity"), "capacity") if request.POST.get("capacity") != "0" else 0
    )
    return teamwork.TeamInput(
        name=request.POST.get("name", ""),
        member_ids=ids("members"),
        channel_ids=ids("channels"),
        auto_assign=request.POST.get("auto_assign") == "on",
        capacity=capacity or 0,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@console_view
@admin_required
def teams_view(request: ConsoleRequest) -> HttpResponse:
    """Teams with members, the channels whose new conversations they take, round-robin and capacity."""
    error = ""
    if request.method == "POST":
        try:
            team_id = _int_or_none(request.POST.get("team_id"), "team_id")
            team = Team.objects.filter(workspace=request.workspace, pk=team_id).first() if team_id else None
            if team_id and team is None:
                raise Http404("No such team")
            if request.POST.get("delete") and team is not None:
                teamwork.team_delete(workspace=request.workspace, team_id=team.pk)
                messages.success(request, "Team deleted.")
            else:
                saved = teamwork.team_save(workspace=request.workspace, data=_team_input(request), team=team)
                messages.success(request, f"Team “{saved.name}” saved.")
        except DomainError as exc:
            error = str(exc)
        else:
            return redirect("console:teams")
    teams = list(
        Team.objects.filter(workspace=request.workspace)
        .prefetch_related("members", "channels")
        .order_by("name")
    )
    members = list(
        Membership.objects.filter(workspace=request.workspace)
        .select_related("user")
        .order_by("user__username")
    )
    channels = list(Channel.objects.filter(workspace=request.workspace).order_by("kind", "name"))
    for team in teams:
        team.member_ids = {u.pk for u in team.members.all()}  # type: ignore[attr-defined]
        team.channel_ids = {c.pk for c in team.channels.all()}  # type: ignore[attr-defined]
    return console_render(
        request,
        "console/teams.html",
        {"teams": teams, "members": members, "channels": channels, "error": error},
    )


@require_http_methods(["GET", "HEAD", "POST"])
@console_view
@admin_required
def canned_responses_view(request: ConsoleRequest) -> HttpResponse:
    """Canned responses: ``/shortcut``, title, body with ``{{ customer.first_name }}``-style variables."""
    error = ""
    if request.method == "POST":
        try:
            canned_id = _int_or_none(request.POST.get("canned_id"), "canned_id")
            canned = (
                CannedResponse.objects.filter(workspace=request.workspace, pk=canned_id).first()
                if canned_id
                else None
            )
            if canned_id and canned is None:
                raise Http404("No such canned response")
            if request.POST.get("delete") and canned is not None:
                canned.delete()
                messages.success(request, "Canned response deleted.")
            else:
                saved = teamwork.canned_response_save(
                    workspace=request.workspace,
                    shortcut=request.POST.get("shortcut", ""),
                    title=request.POST.get("title", ""),
                    body=request.POST.get("body", ""),
                    canned=canned,
                )
                messages.success(request, f"/{saved.shortcut} saved.")
        except DomainError as exc:
            error = str(exc)
        else:
            return redirect("console:canned_responses")
    return console_render(
        request,
        "console/canned_responses.html",
        {
            "items": CannedResponse.objects.filter(workspace=request.workspace).order_by("shortcut"),
            "variables": teamwork.CANNED_VARIABLES,
            "error": error,
        },
    )
