"""The agent console: thin views over the services, every query scoped to the request's workspace."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.http import require_http_methods, require_POST

from customers.identifiers import identities_reply_refusal
from customers.services import Identifier, InvalidIdentifier
from engagement.inbound import InboundMessage, inbound_events_ingest
from engagement.models import Conversation
from engagement.models.conversations import ConversationStatus
from engagement.services import console_queries as q
from engagement.services.conversation_actions import conversation_status_set
from engagement.services.messaging import SendRejected, message_send
from engagement.services.tenancy import api_key_create, api_key_revoke, membership_for_user

from .forms import ApiKeyCreateForm, ConversationStatusForm, ReplyForm, SimulatorForm, WorkspaceSwitchForm
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


@dataclass(frozen=True)
class InboxRow:
    conversation: Conversation
    customer_label: str
    ago: str


def _inbox_row(conversation: Conversation, now: datetime) -> InboxRow:
    customer = conversation.customer
    phones = getattr(customer, "phones", [])
    label = customer.display_name or (phones[0].value if phones else f"Customer {customer.pk}")
    return InboxRow(
        conversation=conversation, customer_label=label, ago=_ago(conversation.last_activity_at, now)
    )


@require_http_methods(["GET", "HEAD"])
@console_view
def inbox(request: ConsoleRequest) -> HttpResponse:
    status = request.GET.get("status", DEFAULT_STATUS)
    if status not in q.INBOX_STATUSES:
        status = DEFAULT_STATUS
    conversations = q.conversation_list_for_inbox(
        workspace=request.workspace, status=None if status == "all" else status
    )
    page = Paginator(conversations, INBOX_PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    context = {
        "page": page,
        "rows": [_inbox_row(c, now) for c in page.object_list],
        "status": status,
        "statuses": [(value, label) for value, label in ConversationStatus.choices] + [("all", "All")],
    }
    if _wants_fragment(request):
        return render(request, "console/_inbox_list.html", context)
    return console_render(request, "console/inbox.html", context)


# ---------------------------------------------------------------- conversation


def _conversation_or_404(request: ConsoleRequest, conversation_id: int) -> Conversation:
    conversation = q.conversation_get(workspace=request.workspace, conversation_id=conversation_id)
    if conversation is None:
        raise Http404("No such conversation")
    return conversation


def _timeline_context(request: ConsoleRequest, conversation: Conversation) -> dict[str, object]:
    interactions, truncated = q.interaction_list_for_timeline(
        workspace=request.workspace, customer=conversation.customer
    )
    return {
        "conversation": conversation,
        "interactions": interactions,
        "truncated": truncated,
        "timeline_limit": q.TIMELINE_LIMIT,
    }


@require_http_methods(["GET", "HEAD", "POST"])
@console_view
def conversation_detail(request: ConsoleRequest, conversation_id: int) -> HttpResponse:
    conversation = _conversation_or_404(request, conversation_id)
    if request.method == "POST":
        form = ReplyForm(request.POST)
        if form.is_valid():
            try:
                message_send(
                    workspace=request.workspace,
                    channel=conversation.channel,
                    customer=conversation.customer,
                    conversation=conversation,
                    body=form.cleaned_data["body"],
                    author=request.user if request.user.is_authenticated else None,
                )
            except SendRejected as exc:
                form.add_error("body", str(exc))
            else:
                messages.success(request, "Reply queued.")
                return redirect("console:conversation", conversation_id=conversation.pk)
    else:
        if _wants_fragment(request):
            return render(request, "console/_timeline.html", _timeline_context(request, conversation))
        form = ReplyForm()
    customer = conversation.customer
    identities = q.identity_list_for_customer(workspace=request.workspace, customer=customer)
    context = {
        **_timeline_context(request, conversation),
        "customer": customer,
        "identities": identities,
        # Said before the agent types: this sender cannot receive (a sender ID, a short code…).
        "reply_refusal": identities_reply_refusal(
            identities=[(i.kind, i.value) for i in identities],
            channel_kind=conversation.channel.kind,
            channel_address=conversation.channel.address,
        ),
        "conversation_ids": q.conversation_ids_for_customer(workspace=request.workspace, customer=customer),
        "form": form,
    }
    return console_render(request, "console/conversation.html", context)


@require_POST
@console_view
def conversation_status(request: ConsoleRequest, conversation_id: int) -> HttpResponse:
    conversation = _conversation_or_404(request, conversation_id)
    form = ConversationStatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Unknown status.")
    elif conversation_status_set(
        workspace=request.workspace, conversation=conversation, status=form.cleaned_data["status"]
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
