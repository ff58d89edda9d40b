"""The agent console: thin views over the services, every query scoped to the request's workspace."""

from __future__ import annotations

import secrets
import zoneinfo
from datetime import datetime
from typing import cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.http import require_http_methods, require_POST

from customers.events import customer_events_recent
from customers.identifiers import identities_reply_refusal
from customers.lookup import customer_resolve_current_or_none
from customers.models import Customer
from customers.services import Identifier, InvalidIdentifier
from engagement.errors import ValidationFailed
from engagement.inbound import InboundMessage, inbound_events_ingest
from engagement.models import Conversation, Interaction
from engagement.models.conversations import ConversationStatus, Direction
from engagement.services import console_queries as q
from engagement.services import inbox as inbox_service
from engagement.services import teamwork
from engagement.services.conversation_actions import conversation_status_set
from engagement.services.messaging import SendRejected
from engagement.services.tenancy import (
    api_key_create,
    api_key_revoke,
    membership_for_user,
    membership_timezone_set,
)

from .forms import ApiKeyCreateForm, ConversationStatusForm, ReplyForm, SimulatorForm, WorkspaceSwitchForm
from .journey_views import tasks_for
from .team_views import SNOOZE_CHOICES
from .workspace import SESSION_KEY, ConsoleRequest, admin_required, console_render, console_view

INBOX_PAGE_SIZE = 50
DEFAULT_STATUS = ConversationStatus.OPEN.value


def _wants_fragment(request: HttpRequest) -> bool:
    return request.GET.get("fragment") == "1"


def _ago(at: datetime, now: datetime) -> str:
    if (now - at).total_seconds() < 60:
        return "just now"
    return f"{timesince(at, now, depth=1)} ago"


# ---------------------------------------------------------------- inbox


def _id_param(request: HttpRequest, name: str) -> int | None:
    raw = request.GET.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63 else None


def inbox_query_from_request(request: ConsoleRequest) -> inbox_service.InboxQuery:
    """The inbox's view, status, filters and sort from the query string; unknown values fall back to
    the defaults (mine when the member holds threads, else all; open; newest activity)."""
    status = request.GET.get("status", DEFAULT_STATUS)
    if status not in inbox_service.INBOX_STATUSES:
        status = DEFAULT_STATUS
    view = request.GET.get("view", "all")
    if view not in dict(inbox_service.INBOX_VIEWS):
        view = "all"
    sort = request.GET.get("sort", "newest")
    if sort not in dict(inbox_service.INBOX_SORTS):
        sort = "newest"
    return inbox_service.InboxQuery(
        view=view,
        status=None if status == "all" else status,
        channel_id=_id_param(request, "channel"),
        label_id=_id_param(request, "label"),
        assignee_id=_id_param(request, "assignee"),
        team_id=_id_param(request, "team"),
        sort=sort,
    )


@require_http_methods(["GET", "HEAD"])
@console_view
def inbox(request: ConsoleRequest) -> HttpResponse:
    """One row per customer with a conversation in the view, status tab and filters
    (engagement/services/inbox.py); counts per view; bulk actions on selected rows."""
    query = inbox_query_from_request(request)
    status = query.status or "all"
    user_id = request.membership.user_id
    teamwork.conversations_wake_due(workspace=request.workspace)  # snoozes that ended since the last beat
    team_ids = teamwork.teams_of_member(workspace=request.workspace, user_id=user_id)
    customers = inbox_service.inbox_customers(
        workspace=request.workspace, status=query.status, query=query, user_id=user_id, team_ids=team_ids
    )
    page = Paginator(customers, INBOX_PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = inbox_service.inbox_rows(workspace=request.workspace, user_id=user_id, customers=list(page))
    counts = inbox_service.inbox_view_counts(
        workspace=request.workspace, status=query.status, user_id=user_id, team_ids=team_ids
    )
    params = request.GET.copy()
    for name in ("page", "fragment"):
        params.pop(name, None)
    view_links = []
    for value, label in inbox_service.INBOX_VIEWS:
        params["view"] = value
        view_links.append((value, label, counts.get(value, 0), params.urlencode()))
    params = request.GET.copy()
    params.pop("fragment", None)
    params.pop("page", None)
    context = {
        "page": page,
        "rows": [(row, _ago(row.last_message.created_at, now) if row.last_message else "") for row in rows],
        "now": now,
        "status": status,
        "query": query,
        "view_links": view_links,
        "page_query": params.urlencode(),
        "statuses": [(value, label) for value, label in ConversationStatus.choices] + [("all", "All")],
        "sorts": inbox_service.INBOX_SORTS,
        "filter_options": inbox_service.inbox_filter_options(workspace=request.workspace),
        "snooze_choices": SNOOZE_CHOICES,
        "live_mark": inbox_service.thread_high_water_mark(workspace=request.workspace),
    }
    if _wants_fragment(request):
        return render(request, "console/_inbox_list.html", context)
    return console_render(request, "console/inbox.html", context)


# ---------------------------------------------------------------- the customer's thread


def _conversation_or_404(request: ConsoleRequest, conversation_id: int) -> Conversation:
    conversation = q.conversation_get(workspace=request.workspace, conversation_id=conversation_id)
    if conversation is None:
        raise Http404("No such conversation")
    return conversation


def _timeline_context(request: ConsoleRequest, customer: Customer) -> dict[str, object]:
    interactions, truncated = q.interaction_list_for_timeline(workspace=request.workspace, customer=customer)
    notes = list(teamwork.notes_for_customer(workspace=request.workspace, customer=customer))
    return {
        # Private notes between the messages, in time order (the template tells them by ``is_note``).
        "items": inbox_service.timeline_with_notes(interactions=interactions, notes=notes),
        "custom_events": customer_events_recent(customer=customer),
        "interactions": interactions,
        "truncated": truncated,
        "timeline_limit": q.TIMELINE_LIMIT,
    }


def _thread_bar(
    request: ConsoleRequest, customer: Customer, conversation: Conversation | None
) -> HttpResponse:
    """The thread page's live parts besides the timeline: the status head (status, snooze, SLA, status
    buttons) and the team bar (assignee, team, labels), re-fetched by console.js when an event about
    this customer arrives, as the timeline is."""
    if conversation is None:
        conversation = q.conversation_newest_for_customer(workspace=request.workspace, customer=customer)
    if conversation is None:
        return HttpResponse("")
    context = {
        "conversation": conversation,
        "customer": customer,
        **inbox_service.thread_team_context(workspace=request.workspace, customer=customer),
        "snooze_choices": SNOOZE_CHOICES,
    }
    return render(request, "console/_thread_bar.html", context)


def _thread(
    request: ConsoleRequest, customer: Customer, conversation: Conversation | None, here: str
) -> HttpResponse:
    """The customer's thread across channels with the reply box; ``conversation`` is the one the agent
    came from (its status buttons; its channel is the default when the form names none)."""
    if request.method != "POST" and request.GET.get("fragment") == "bar":
        return _thread_bar(request, customer, conversation)
    if request.method != "POST" and _wants_fragment(request):
        inbox_service.customer_thread_mark_read(
            workspace=request.workspace, user_id=request.membership.user_id, customer=customer
        )
        return render(request, "console/_timeline.html", _timeline_context(request, customer))
    identities = q.identity_list_for_customer(workspace=request.workspace, customer=customer)
    options = inbox_service.reply_options(
        workspace=request.workspace, customer=customer, identities=identities
    )
    timeline = _timeline_context(request, customer)
    interactions = cast(list[Interaction], timeline["interactions"])
    last_inbound = next((i for i in reversed(interactions) if i.direction == Direction.INBOUND), None)
    default = inbox_service.reply_option_default(options=options, last_inbound=last_inbound)
    if request.method == "POST":
        form = ReplyForm(request.POST)
        if form.is_valid():
            fallback = default.channel.pk if default else 0
            if conversation is not None:
                fallback = conversation.channel_id
            channel_id = form.cleaned_data["channel"] or fallback
            try:
                inbox_service.thread_reply_send(
                    workspace=request.workspace,
                    customer=customer,
                    channel_id=channel_id,
                    body=form.cleaned_data["body"],
                    subject=form.cleaned_data["subject"],
                    author=request.user if request.user.is_authenticated else None,
                    options=options,
                )
            except SendRejected as exc:
                form.add_error("body", str(exc))
            else:
                messages.success(request, "Reply queued.")
                return redirect(here)
        picked = form.data.get("channel", "")
    else:
        form = ReplyForm()
        picked = ""
    inbox_service.customer_thread_mark_read(
        workspace=request.workspace, user_id=request.membership.user_id, customer=customer
    )
    if conversation is None:
        conversation = q.conversation_newest_for_customer(workspace=request.workspace, customer=customer)
    selected = next((o for o in options if str(o.channel.pk) == picked and o.allowed), default)
    context = {
        **timeline,
        "conversation": conversation,
        "customer": customer,
        "customer_label": inbox_service.customer_label(customer, identities),
        "identities": identities,
        # Said before the agent types: this sender cannot receive (a sender ID, a short code…).
        "reply_refusal": identities_reply_refusal(
            identities=[(i.kind, i.value) for i in identities],
            channel_kind=conversation.channel.kind,
            channel_address=conversation.channel.address,
        )
        if conversation is not None
        else "",
        "conversation_ids": q.conversation_ids_for_customer(workspace=request.workspace, customer=customer),
        "customer_tasks": tasks_for(request, scope="all", customer=customer),
        "form": form,
        "options": options,
        "selected": selected,
        "here": here,
        "live_mark": inbox_service.thread_high_water_mark(workspace=request.workspace),
        "identity_kinds": [("email", "Email address"), ("phone", "Phone number")],
        **inbox_service.thread_team_context(workspace=request.workspace, customer=customer),
        "snooze_choices": SNOOZE_CHOICES,
    }
    return console_render(request, "console/conversation.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
@console_view
def conversation_detail(request: ConsoleRequest, conversation_id: int) -> HttpResponse:
    conversation = _conversation_or_404(request, conversation_id)
    return _thread(request, conversation.customer, conversation, request.path)


@require_http_methods(["GET", "HEAD", "POST"])
@console_view
def customer_thread(request: ConsoleRequest, customer_id: int) -> HttpResponse:
    """The thread of any customer, also one who never wrote: an agent starts a conversation here."""
    customer = customer_resolve_current_or_none(workspace_id=request.workspace.pk, customer_id=customer_id)
    if customer is None:
        raise Http404("No such customer")
    if customer.pk != customer_id:
        return redirect("console:customer_thread", customer_id=customer.pk)
    return _thread(request, customer, None, request.path)


@require_POST
@console_view
def conversation_status(request: ConsoleRequest, conversation_id: int) -> HttpResponse:
    conversation = _conversation_or_404(request, conversation_id)
    form = ConversationStatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Unknown status.")
    elif conversation_status_set(
        workspace=request.workspace,
        conversation=conversation,
        status=form.cleaned_data["status"],
        actor=request.user if request.user.is_authenticated else None,
    ):
        messages.success(request, f"Conversation marked {conversation.get_status_display().lower()}.")
    return redirect("console:conversation", conversation_id=conversation.pk)


# ---------------------------------------------------------------- simulator


@require_http_methods(["GET", "HEAD", "POST"])
@console_view
def simulator(request: ConsoleRequest) -> HttpResponse:
    if not settings.SIMULATOR_ENABLED:
        raise Http404("the simulator is off in this deployment")
    form = SimulatorForm(request.POST or None, workspace=request.workspace)
    if request.method == "POST" and form.is_valid():
        channel = form.cleaned_data["channel"]
        event = InboundMessage(
            provider_event_id="SIM" + secrets.token_hex(12),
            sender=Identifier("phone", form.cleaned_data["from_number"]),
            body=form.cleaned_data["body"],
            occurred_at=timezone.now(),
            sender_name=form.cleaned_data["sender_name"],
            metadata={"simulated": True},
        )
        try:
            inbound_events_ingest(channel=channel, events=[event])
        except InvalidIdentifier as exc:
            form.add_error("from_number", str(exc))
        else:
            conversation_id = q.interaction_conversation_id(
                workspace=request.workspace, channel=channel, provider_message_id=event.provider_event_id
            )
            messages.success(request, "Simulated message received.")
            if conversation_id is not None:
                return redirect("console:conversation", conversation_id=conversation_id)
            return redirect("console:inbox")
    return console_render(request, "console/simulator.html", {"form": form})


# ---------------------------------------------------------------- API keys


@require_http_methods(["GET", "HEAD", "POST"])
@console_view
@admin_required
def api_keys(request: ConsoleRequest) -> HttpResponse:
    form = ApiKeyCreateForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        key, secret = api_key_create(
            workspace=request.workspace,
            name=form.cleaned_data["name"],
            created_by=request.user if request.user.is_authenticated else None,
            scopes=form.cleaned_data["scopes"],
        )
        created = {"key": key, "secret": secret}
        form = ApiKeyCreateForm()
    response = console_render(
        request,
        "console/api_keys.html",
        {"keys": q.api_key_list(workspace=request.workspace), "form": form, "created": created},
    )
    if created is not None:
        response["Cache-Control"] = "no-store"  # the secret must not sit in any cache
    return response


@require_POST
@console_view
@admin_required
def api_key_revoke_view(request: ConsoleRequest, key_id: int) -> HttpResponse:
    key = q.api_key_get(workspace=request.workspace, key_id=key_id)
    if key is None:
        raise Http404("No such API key")
    if key.revoked_at is None:
        api_key_revoke(key=key)
        messages.success(request, f"API key “{key.name}” revoked.")
    return redirect("console:api_keys")


# ---------------------------------------------------------------- workspace switcher


@require_POST
@login_required
def workspace_switch(request: HttpRequest) -> HttpResponse:
    form = WorkspaceSwitchForm(request.POST)
    if form.is_valid():
        membership = membership_for_user(user=request.user, workspace_id=form.cleaned_data["workspace_id"])
        if membership is not None:
            request.session[SESSION_KEY] = membership.workspace_id
            return redirect("console:inbox")
    messages.error(request, "You are not a member of that workspace.")
    return redirect("console:inbox")


# ---------------------------------------------------------------- the member's own settings


@require_http_methods(["GET", "HEAD", "POST"])
@console_view
def member_settings(request: ConsoleRequest) -> HttpResponse:
    """The member's time zone (blank: the workspace's)."""
    error = ""
    if request.method == "POST":
        try:
            membership_timezone_set(membership=request.membership, timezone=request.POST.get("timezone", ""))
        except ValidationFailed as exc:
            error = str(exc)
        else:
            messages.success(request, "Time zone saved.")
            return redirect("console:member_settings")
    return console_render(
        request,
        "console/member_settings.html",
        {"zones": sorted(zoneinfo.available_timezones()), "error": error},
    )
