"""Click-to-call from a conversation: ring the agent's phone, then bridge the customer."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from engagement.services import console_queries as q
from engagement.services.calls import CallRejected, call_channel_for, call_click_to_call

from .workspace import ConsoleRequest, console_view


@require_POST
@console_view
def conversation_call(request: ConsoleRequest, conversation_id: int) -> HttpResponse:
    conversation = q.conversation_get(workspace=request.workspace, conversation_id=conversation_id)
    if conversation is None:
        raise Http404("No such conversation")
    channel = (
        conversation.channel
        if conversation.channel.kind == "voice"
        else call_channel_for(workspace_id=request.workspace.pk)
    )
    if channel is None or not request.user.is_authenticated:
        messages.error(request, "This workspace has no voice line.")
    else:
        try:
            call_click_to_call(
                channel=channel,
                customer=conversation.customer,
                agent=request.user,
                conversation=conversation if conversation.channel_id == channel.pk else None,
            )
        except CallRejected as exc:
            messages.error(request, f"Cannot call: {exc}")
        else:
            messages.success(request, "Calling your phone: answer it to be connected to the customer.")
    return redirect("console:conversation", conversation_id=conversation.pk)
