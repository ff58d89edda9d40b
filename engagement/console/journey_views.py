"""Console: journeys (list, editor, publish, pause/resume/archive, test run, per-step stats) and agent
tasks. Marketers and admins edit journeys; every member sees and completes tasks and removes a
customer from a journey on the profile.

Thin views over ``engagement.journeys.services`` (create, publish, state changes, enrollments, tasks),
``engagement.journeys.drafts`` (the step-by-step draft edits) and ``engagement.journeys.insight`` (test
run, per-step stats). The editor is server-rendered; with htmx a step's form, add, remove and move swap
the steps list in place (the validation message may move to another step), without it they redirect.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from customers.directory import customer_directory
from customers.lookup import customer_resolve_current_or_none
from customers.models import Customer
from engagement.errors import DomainError
from engagement.journeys.definition import (
    CHANNEL_KINDS,
    MATCH_TYPES,
    STEP_TYPES,
    TRIGGER_TYPES,
    goals_validate,
)
from engagement.journeys.drafts import (
    journey_draft_check,
    journey_draft_rows,
    journey_step_add,
    journey_step_edit,
    journey_step_move,
    journey_step_remove,
    journey_trigger_set,
    step_field_value,
    step_fields,
)
from engagement.journeys.insight import (
    WAIT_ASSUMPTIONS,
    condition_text,
    journey_step_stats,
    journey_test_run,
)
from engagement.journeys.services import (
    agent_task_complete,
    agent_tasks_open,
    customer_enrollments,
    enrollment_remove,
    journey_archive,
    journey_create,
    journey_pause,
    journey_publish,
    journey_resume,
    journey_update,
)
from engagement.models import (
    AgentTask,
    Channel,
    Enrollment,
    EnrollmentState,
    Journey,
    JourneyStatus,
    ReentryPolicy,
)
from engagement.sanitize import digits_parse, json_check, json_parse

from .segment_views import segments_role_required
from .workspace import ConsoleRequest, console_render, console_view

journeys_role_required = segments_role_required  # admins and marketers


def _journey_or_404(request: ConsoleRequest, journey_id: int) -> Journey:
    journey = (
        Journey.objects.filter(workspace=request.workspace, pk=journey_id)
        .select_related("live_version", "workspace")
        .first()
    )
    if journey is None:
        raise Http404("No such journey")
    return journey


def _is_htmx(request: ConsoleRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _actor(request: ConsoleRequest) -> Any:
    return request.user if request.user.is_authenticated else None


# ---------------------------------------------------------------- list


@require_http_methods(["GET", "HEAD", "POST"])
@console_view
@journeys_role_required
def journey_list(request: ConsoleRequest) -> HttpResponse:
    """Every journey with its state, live version and enrolled / active counts (one query). POST
    makes a new draft (a name) and opens it in the editor."""
    if request.method == "POST":
        try:
            journey = journey_create(
                workspace=request.workspace,
                name=request.POST.get("name", ""),
                definition={"trigger": {"type": "manual"}, "steps": []},
                actor=_actor(request),
            )
        except DomainError as exc:
            messages.error(request, str(exc))
            return redirect("console:journeys")
        return redirect("console:journey", journey_id=journey.pk)
    journeys = (
        Journey.objects.filter(workspace=request.workspace)
        .select_related("live_version")
        .annotate(
            enrolled=Count("enrollments"),
            active=Count("enrollments", filter=Q(enrollments__state=EnrollmentState.ACTIVE)),
        )
        .order_by("status", "name")
    )
    return console_render(request, "console/journeys.html", {"journeys": journeys})


# ---------------------------------------------------------------- editor


_NO_STATS = {
    "entered": 0,
    "waiting": 0,
    "sent": 0,
    "skipped": {},
    "skipped_total": 0,
    "exited_goal": 0,
    "exited_condition": 0,
}


def _step_rows(journey: Journey, check: Any, stats: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for row in journey_draft_rows(definition=journey.definition):
        item: dict[str, Any] = {"row": row}
        if row.kind == "step":
            item["fields"] = [
                {
                    "spec": spec,
                    "value": step_field_value(row.step, spec),
                    "id": f"f-{row.key}-{spec.name.replace('.', '-')}",
                }
                for spec in step_fields(row.step)
            ]
            item["error"] = check.message if not check.ok and check.step_key == row.key else ""
            item["stats"] = stats["steps"].get(row.key) or _NO_STATS
            item["summary"] = _step_summary(row.step)
        rows.append(item)
    return rows


def _step_summary(step: dict[str, Any]) -> str:
    kind = step.get("type")
    if kind == "send":
        if step.get("format") == "automation":
            return "Automated answer (a migrated automation rule)"
        return "Send " + (", ".join(sorted((step.get("content") or {}).keys())) or "…")
    if kind == "delay":
        if step.get("seconds"):
            return f"Wait {step['seconds']} s"
        if step.get("until_local_time"):
            return f"Wait until {step['until_local_time']} local time"
        return f"Wait until {step.get('until_attribute') or '…'}"
    if kind == "wait_for":
        return f"Wait for a {step.get('for', '…')} (up to {step.get('timeout_seconds', '…')} s)"
    if kind == "condition":
        test = step.get("if")
        return f"If {condition_text(test) if isinstance(test, dict) else '…'}"
    if kind == "random_split":
        return f"Random split into {len(step.get('branches') or [])}"
    if kind == "create_task":
        return f"Task for an agent: {step.get('title') or '…'}"
    return str(kind).replace("_", " ").capitalize()


def _editor_context(request: ConsoleRequest, journey: Journey) -> dict[str, Any]:
    check = journey_draft_check(journey=journey)
    version = digits_parse(request.GET.get("version", "")) if request.GET.get("version") else None
    stats = journey_step_stats(journey=journey, version_number=version)
    live = journey.live_version
    return {
        "journey": journey,
        "check": check,
        "rows": _step_rows(journey, check, stats),
        "stats": stats,
        "step_types": STEP_TYPES,
        "unpublished": live is not None and live.definition != journey.definition,
        "readonly": journey.status == JourneyStatus.ARCHIVED,
    }


def _goal_text(condition: Any) -> str:
    """A goal or exit condition in words (``definition.goal_validate``'s shapes)."""
    if not isinstance(condition, dict):
        return str(condition)
    kind = condition.get("type")
    if kind == "event":
        return f"the event “{condition.get('name')}”"
    if kind == "reply":
        return "any reply"
    if kind == "segment":
        return f"entering segment {condition.get('segment_id')}"
    if kind == "tag":
        return f"the tag “{condition.get('tag')}”"
    return json.dumps(condition)


def _trigger_context(request: ConsoleRequest, journey: Journey) -> dict[str, Any]:
    trigger = (journey.definition or {}).get("trigger") or {}
    exits = journey.exit_conditions if isinstance(journey.exit_conditions, list) else []
    return {
        "goal_text": _goal_text(journey.goal) if journey.goal else "",
        "exits_text": "; ".join(_goal_text(e) for e in exits),
        "trigger": trigger,
        "trigger_keywords": ", ".join(trigger.get("keywords") or []),
        "trigger_types": TRIGGER_TYPES.items(),
        "match_types": MATCH_TYPES,
        "channel_kinds": CHANNEL_KINDS,
        "reentry_choices": ReentryPolicy.choices,
        "goal_json": json.dumps(journey.goal) if journey.goal else "",
        "exits_json": json.dumps(journey.exit_conditions) if journey.exit_conditions else "",
        "versions": list(journey.versions.order_by("-number").values("number", "created_at")[:20]),
        "channels": Channel.objects.filter(workspace=request.workspace).order_by("pk"),
        "wait_assumptions": WAIT_ASSUMPTIONS,
    }


@require_http_methods(["GET", "HEAD"])
@console_view
@journeys_role_required
def journey_detail(request: ConsoleRequest, journey_id: int) -> HttpResponse:
    journey = _journey_or_404(request, journey_id)
    context = {**_editor_context(request, journey), **_trigger_context(request, journey)}
    return console_render(request, "console/journey.html", context)


def _steps_response(request: ConsoleRequest, journey: Journey, anchor: str = "") -> HttpResponse:
    if _is_htmx(request):
        journey.refresh_from_db()
        return render(request, "console/_journey_steps.html", _editor_context(request, journey))
    url = reverse("console:journey", kwargs={"journey_id": journey.pk})
    return redirect(f"{url}#{anchor}" if anchor else url)


def _steps_error(request: ConsoleRequest, journey: Journey, exc: DomainError) -> HttpResponse:
    if _is_htmx(request):
        journey.refresh_from_db()
        context = {**_editor_context(request, journey), "action_error": str(exc)}
        return render(request, "console/_journey_steps.html", context)
    messages.error(request, str(exc))
    return redirect("console:journey", journey_id=journey.pk)


@require_POST
@console_view
@journeys_role_required
def journey_step_view(request: ConsoleRequest, journey_id: int, key: str) -> HttpResponse:
    """Save one step's form."""
    journey = _journey_or_404(request, journey_id)
    posted: dict[str, str | list[str]] = {k: request.POST.get(k, "") for k in request.POST}
    if "channel_ids" in request.POST:
        posted["channel_ids"] = request.POST.getlist("channel_ids")
    try:
        journey_step_edit(journey=journey, key=key, posted=posted)
    except DomainError as exc:
        return _steps_error(request, journey, exc)
    return _steps_response(request, journey, f"step-{key}")


@require_POST
@console_view
@journeys_role_required
def journey_step_action(request: ConsoleRequest, journey_id: int, action: str) -> HttpResponse:
    """Add (``parent``, ``type``), remove (``key``), move (``key``, ``direction``) a step."""
    journey = _journey_or_404(request, journey_id)
    post = request.POST
    key = post.get("key", "")
    try:
        if action == "add":
            key = journey_step_add(
                journey=journey, parent=post.get("parent", ""), step_type=post.get("type", "")
            )
        elif action == "remove":
            journey_step_remove(journey=journey, key=key)
        elif action == "move":
            journey_step_move(journey=journey, key=key, direction=post.get("direction", ""))
        else:
            raise Http404("No such action")
    except DomainError as exc:
        return _steps_error(request, journey, exc)
    return _steps_response(request, journey, f"step-{key}" if action != "remove" else "")


def _json_field(raw: str, label: str) -> Any:
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = json_parse(raw)
    except ValueError as exc:
        raise _SettingsError(f"{label}: not valid JSON ({exc})") from None
    json_check(value, field=label.lower())  # NUL, NaN…: jsonb cannot hold them (InputInvalid, 400)
    return value


class _SettingsError(ValueError):
    pass


@require_POST
@console_view
@journeys_role_required
def journey_settings_view(request: ConsoleRequest, journey_id: int) -> HttpResponse:
    """Name, description, re-entry policy, purpose, the trigger, the goal and the exit conditions."""
    journey = _journey_or_404(request, journey_id)
    post = request.POST
    trigger: dict[str, Any] = {"type": post.get("trigger_type", "")}
    if post.get("trigger_channel_kind"):
        trigger["channel_kind"] = post["trigger_channel_kind"]
    if trigger["type"] == "message.received":
        trigger["match"] = post.get("trigger_match", "any")
        if trigger["match"] != "any":
            trigger["keywords"] = [
                w.strip() for w in post.get("trigger_keywords", "").split(",") if w.strip()
            ]
    if trigger["type"] == "event":
        trigger["name"] = post.get("trigger_event", "").strip()
    old = (journey.definition or {}).get("trigger") or {}
    if trigger["type"] == old.get("type"):  # keep what the form does not show (channel ids, a campaign)
        trigger = {
            **{k: v for k, v in old.items() if k in ("channel_ids", "campaign_id", "within_hours")},
            **trigger,
        }
    try:
        goal = _json_field(post.get("goal", ""), "Goal")
        exits = _json_field(post.get("exit_conditions", ""), "Exit conditions")
        goals_validate(goal, exits)  # messages now rather than at publish
        journey_update(
            journey=journey,
            name=post.get("name", journey.name),
            description=post.get("description", ""),
            reentry=post.get("reentry", journey.reentry),
            purpose=post.get("purpose", journey.purpose),
            goal=goal or {},
            exit_conditions=exits or [],
        )
        journey_trigger_set(journey=journey, trigger=trigger)
    except (DomainError, _SettingsError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Journey settings saved (a draft until you publish).")
    return redirect("console:journey", journey_id=journey.pk)


@require_POST
@console_view
@journeys_role_required
def journey_state_view(request: ConsoleRequest, journey_id: int, verb: str) -> HttpResponse:
    """publish (validates; a live journey gets a new version), pause, resume, archive."""
    journey = _journey_or_404(request, journey_id)
    try:
        if verb == "publish":
            version = journey_publish(journey=journey, actor=_actor(request))
            messages.success(
                request,
                f"Published version {version.number}. New enrollments start on it; customers already in "
                "the journey finish on the version they started.",
            )
        elif verb == "pause":
            journey_pause(journey=journey)
            messages.success(request, "Paused: nobody new enters; customers in it wait where they are.")
        elif verb == "resume":
            journey_resume(journey=journey)
            messages.success(request, "Live again.")
        elif verb == "archive":
            journey_archive(journey=journey)
            messages.success(request, "Archived: everyone in it was removed; it can no longer be edited.")
        else:
            raise Http404("No such action")
    except DomainError as exc:
        messages.error(request, str(exc))
    return redirect("console:journey", journey_id=journey.pk)


def _customer_from_query(request: ConsoleRequest, raw: str) -> Customer | None:
    raw = raw.strip()[:200]
    if not raw:
        return None
    pk = digits_parse(raw)
    if pk is not None:
        found = customer_resolve_current_or_none(workspace_id=request.workspace.pk, customer_id=pk)
        if found is not None:
            return found
    return customer_directory(workspace=request.workspace, query=raw).first()


@require_http_methods(["GET", "HEAD"])
@console_view
@journeys_role_required
def journey_test_view(request: ConsoleRequest, journey_id: int) -> HttpResponse:
    """The test run for one customer (id, phone, email or name): the path they would take through the
    draft, sending nothing. htmx swaps it into the editor; without it, a page of its own."""
    journey = _journey_or_404(request, journey_id)
    query = request.GET.get("customer", "")
    waits = request.GET.get("waits", "timeout")
    context: dict[str, Any] = {"journey": journey, "query": query, "waits": waits}
    customer = _customer_from_query(request, query)
    if customer is None:
        context["error"] = "No customer matches that." if query.strip() else "Choose a customer."
    else:
        try:
            context["run"] = journey_test_run(journey=journey, customer=customer, waits=waits)
        except DomainError as exc:
            context["error"] = str(exc)
    if _is_htmx(request):
        return render(request, "console/_journey_test_run.html", context)
    return console_render(request, "console/journey_test.html", context)


# ---------------------------------------------------------------- the profile: enrollments


@require_POST
@console_view
def enrollment_remove_view(request: ConsoleRequest, enrollment_id: int) -> HttpResponse:
    """An agent takes a customer out of a journey (``enrollment_remove``: pending steps cancelled)."""
    enrollment = (
        Enrollment.objects.filter(workspace=request.workspace, pk=enrollment_id)
        .select_related("journey")
        .first()
    )
    if enrollment is None:
        raise Http404("No such enrollment")
    try:
        enrollment_remove(enrollment=enrollment, actor=_actor(request))
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Removed from the journey “{enrollment.journey.name}”.")
    return redirect("console:customer", customer_id=enrollment.customer_id)


def customer_journeys_context(request: ConsoleRequest, customer: Customer) -> dict[str, Any]:
    """The profile's Journeys and Tasks panels: the journeys the customer is in (the step it waits at
    and why, until when), the ones they left, and their open tasks. Three queries whatever the
    counts."""
    enrollments = customer_enrollments(customer=customer)
    return {
        "enrollments_active": [e for e in enrollments if e["state"] == EnrollmentState.ACTIVE],
        "enrollments_past": [e for e in enrollments if e["state"] != EnrollmentState.ACTIVE][:10],
        "customer_tasks": tasks_for(request, scope="all", customer=customer),
    }


# ---------------------------------------------------------------- agent tasks


def tasks_for(request: ConsoleRequest, *, scope: str, customer: Customer | None = None) -> list[AgentTask]:
    """Open tasks: ``scope`` "mine" (assigned to me or to nobody) or "all"; one query."""
    return agent_tasks_open(
        workspace=request.workspace, customer=customer, mine_for=request.user if scope == "mine" else None
    )


@require_http_methods(["GET", "HEAD"])
@console_view
def task_list(request: ConsoleRequest) -> HttpResponse:
    """Open agent tasks, mine (assigned to me or to nobody) or all; live: a new task re-fetches the list."""
    scope = "all" if request.GET.get("scope") == "all" else "mine"
    context = {
        "tasks": tasks_for(request, scope=scope),
        "scope": scope,
        # The live refresh renders the list alone: "Done" must come back to the page, not the fragment.
        "tasks_next": f"{reverse('console:tasks')}?scope={scope}",
    }
    if request.GET.get("fragment") == "1":
        return render(request, "console/_tasks.html", context)
    return console_render(request, "console/tasks.html", context)


@require_POST
@console_view
def task_done_view(request: ConsoleRequest, task_id: int) -> HttpResponse:
    task = AgentTask.objects.filter(workspace=request.workspace, pk=task_id).first()
    if task is None:
        raise Http404("No such task")
    agent_task_complete(task=task, actor=_actor(request))
    messages.success(request, f"Done: {task.title}.")
    back = request.POST.get("next", "")
    if back.startswith("/") and not back.startswith("//"):
        return redirect(back)
    return redirect("console:tasks")
