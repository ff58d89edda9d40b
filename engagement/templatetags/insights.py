"""SLA badges for the inbox rows and the thread (``{% load insights %}``).

``{% sla_for_rows rows as sla_map %}`` computes the clocks of a whole inbox page at once (three
queries whatever its size); ``{% sla_badge sla_map conversation %}`` renders one row's badge;
``{% sla_badge_for conversation %}`` computes and renders the clocks of one conversation (the thread).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from engagement.models import Conversation
from engagement.services.sla import SlaClock, sla_clock_shown, sla_clocks_for_conversations

register = template.Library()


@register.simple_tag(takes_context=True)
def sla_for_rows(context: Any, rows: Any) -> dict[int, list[SlaClock]]:
    conversations: list[Conversation] = []
    for row in rows or []:
        item = row[0] if isinstance(row, tuple | list) else row
        conversation = getattr(item, "conversation", item)
        if isinstance(conversation, Conversation):
            conversations.append(conversation)
    if not conversations:
        return {}
    request = context.get("request")
    workspace = getattr(request, "workspace", None) or conversations[0].workspace
    return sla_clocks_for_conversations(workspace=workspace, conversation_ids=[c.pk for c in conversations])


def _badge_context(clocks: list[SlaClock], *, all_clocks: bool) -> dict[str, Any]:
    now = timezone.now()
    shown = clocks if all_clocks else [c for c in [sla_clock_shown(clocks, now=now)] if c is not None]
    return {
        "clocks": [
            {"clock": c, "state": c.state(now), "remaining": c.remaining(now), "now": now} for c in shown
        ]
    }


@register.inclusion_tag("console/_sla_badge.html")
def sla_badge(sla_map: dict[int, list[SlaClock]] | None, conversation: Conversation) -> dict[str, Any]:
    return _badge_context((sla_map or {}).get(conversation.pk, []), all_clocks=False)


@register.inclusion_tag("console/_sla_badge.html")
def sla_badge_for(conversation: Conversation | None) -> dict[str, Any]:
    if conversation is None:
        return {"clocks": []}
    clocks = sla_clocks_for_conversations(
        workspace=conversation.workspace, conversation_ids=[conversation.pk]
    )
    return _badge_context(clocks.get(conversation.pk, []), all_clocks=True)
