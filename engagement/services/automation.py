"""Automation rules: one-step journeys (a trigger and a reply), run by the journey engine.

The helpers here (who answered, where an answer goes, the rule's Django-template reply) are what the
engine's send step uses for a rule's answer; :func:`automations_run` runs a rule set for one event."""

from __future__ import annotations

import logging

from django.db.models import Q
from django.template import Context, Template, TemplateSyntaxError

from engagement import events
from engagement.models import Channel, Conversation, Interaction
from engagement.models.channels import CHANNEL_IDENTITY_KIND
from engagement.models.conversations import ConversationStatus, Direction

logger = logging.getLogger(__name__)

AUTOMATION_TRIGGERS = frozenset(
    {events.MESSAGE_RECEIVED, events.CONVERSATION_OPENED, events.CALL_MISSED, events.VOICEMAIL_RECEIVED}
)


def interaction_is_automated(*, interaction: Interaction) -> bool:
    """Whether an inbound message was sent by a program (the email adapter's RFC 3834 mark)."""
    email = interaction.metadata.get("email")
    return isinstance(email, dict) and bool(email.get("auto_reply"))


def human_has_answered(*, interaction: Interaction) -> bool:
    """Whether a person (an agent: an outbound interaction with an author) already wrote in the message's
    conversation, in the customer's open thread (any conversation of theirs not resolved, on any
    channel: the console shows one thread per customer), or to the customer on any channel since the
    message. The bot then stays silent: it never answers after a human has, so an agent's thread is not
    interrupted by a canned reply; once the thread is resolved, a new contact may be answered again."""
    unresolved = [s for s in ConversationStatus.values if s != ConversationStatus.RESOLVED]
    answered = Q(created_at__gte=interaction.created_at) | Q(conversation__status__in=unresolved)
    if interaction.conversation_id is not None:
        answered |= Q(conversation_id=interaction.conversation_id)
    return (
        Interaction.objects.filter(
            workspace_id=interaction.workspace_id,
            customer_id=interaction.customer_id,
            direction=Direction.OUTBOUND,
            author__isnull=False,
        )
        .filter(answered)
        .exists()
    )


def template_render(*, template: str, interaction: Interaction) -> str:
    context = Context(
        {
            "customer": interaction.customer,
            "message": interaction,
            "workspace": interaction.workspace,
        },
        autoescape=False,
    )
    try:
        return Template(template).render(context).strip()
    except TemplateSyntaxError:
        logger.exception("automation template does not parse")
        return template.strip()


def reply_target(
    *, reply_channel: Channel | None, interaction: Interaction, channel: Channel
) -> tuple[Channel, Conversation | None, str | None]:
    """Where an automated answer goes: ``reply_channel`` of the same workspace (e.g. an SMS line after a
    missed call), else the interaction's own ``channel`` and conversation."""
    reply = reply_channel
    if reply is None or reply.pk == channel.pk or reply.workspace_id != interaction.workspace_id:
        return channel, interaction.conversation, interaction.customer_address or None
    same_kind = CHANNEL_IDENTITY_KIND.get(reply.kind) == CHANNEL_IDENTITY_KIND.get(channel.kind)
    return reply, None, (interaction.customer_address or None) if same_kind else None


def automations_run(*, event_name: str, workspace_id: int, interaction_id: int) -> list[Interaction]:
    """Run the workspace's automation rules for ``event_name`` on the interaction, through the journey
    engine: every rule is a live one-step journey (``engagement/journeys/automation.py``; migration
    0012 converted the existing ones, a rule added since is converted here on first use). Returns the
    answers those journeys queued (or recorded as blocked) for this interaction, also on a repeat.

    Each (rule, interaction) pair answers at most once, whatever the retries: the enrollment is unique
    per trigger (``<event>:<interaction>``) and the step's message per ``journey:<enrollment>:<step>``.
    A message sent by a program (RFC 3834 section 2) is never answered, nor one a person has answered
    (:func:`human_has_answered`): the bot never speaks after a human; answers are capped per hour in
    ``message_send``.
    """
    # Inside the body: the journeys engine imports this module's helpers at its top.
    from engagement.journeys.automation import automation_event_run

    return automation_event_run(
        event_name=event_name, workspace_id=workspace_id, interaction_id=interaction_id
    )
