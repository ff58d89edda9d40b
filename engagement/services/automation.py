"""Automation: rules as data, run by a Celery task on domain events after commit."""

from __future__ import annotations

import logging
import re

from django.db.models import Q
from django.template import Context, Template, TemplateSyntaxError

from engagement import events
from engagement.models import AutomationRule, Channel, Conversation, Interaction
from engagement.models.automation import Action, MatchType
from engagement.models.channels import CHANNEL_IDENTITY_KIND
from engagement.models.conversations import Direction

from .messaging import SendRejected, message_send

logger = logging.getLogger(__name__)

AUTOMATION_TRIGGERS = frozenset(
    {events.MESSAGE_RECEIVED, events.CONVERSATION_OPENED, events.CALL_MISSED, events.VOICEMAIL_RECEIVED}
)


def _keywords(rule: AutomationRule) -> list[str]:
    return [k.strip().lower() for k in rule.keywords.split(",") if k.strip()]


def rule_matches(*, rule: AutomationRule, interaction: Interaction) -> bool:
    if (
        rule.channel_kind
        and interaction.channel is not None
        and rule.channel_kind != interaction.channel.kind
    ):
        return False
    text = interaction.body.strip().lower()
    if rule.match_type == MatchType.ANY:
        return True
    if rule.match_type == MatchType.KEYWORD:
        return text in _keywords(rule)
    if rule.match_type == MatchType.CONTAINS:
        return any(re.search(rf"\b{re.escape(k)}\b", text) for k in _keywords(rule))
    return False


def interaction_is_automated(*, interaction: Interaction) -> bool:
    """Whether an inbound message was sent by a program (the email adapter's RFC 3834 mark)."""
    email = interaction.metadata.get("email")
    return isinstance(email, dict) and bool(email.get("auto_reply"))


def human_has_answered(*, interaction: Interaction) -> bool:
    """Whether a person (an agent: an outbound interaction with an author) already wrote in the message's
    conversation, or to the customer on any channel since the message. The bot then stays silent: it
    never answers after a human has, so an agent's conversation is not interrupted by a canned reply."""
    answered = Q(created_at__gte=interaction.created_at)
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


def _reply_target(
    *, rule: AutomationRule, interaction: Interaction, channel: Channel
) -> tuple[Channel, Conversation | None, str | None]:
    """Where a rule's reply goes: its ``reply_channel`` of the same workspace (e.g. an SMS line after a
    missed call), else the interaction's own ``channel`` and conversation."""
    reply = rule.reply_channel
    if reply is None or reply.pk == channel.pk or reply.workspace_id != interaction.workspace_id:
        return channel, interaction.conversation, interaction.customer_address or None
    same_kind = CHANNEL_IDENTITY_KIND.get(reply.kind) == CHANNEL_IDENTITY_KIND.get(channel.kind)
    return reply, None, (interaction.customer_address or None) if same_kind else None


def automations_run(*, event_name: str, workspace_id: int, interaction_id: int) -> list[Interaction]:
    """Run every enabled rule of the workspace that listens to ``event_name`` against the interaction.

    Each (rule, interaction) pair sends at most once, whatever the retries: the outbound message
    carries the idempotency key ``automation:<rule>:<interaction>``. A message that was itself sent by
    a program (an email marked automated: auto-reply, bounce, list mail; RFC 3834 section 2) is never
    answered, whichever event brought it here; answers are also capped per hour in ``message_send``.
    Nor is a message a person has answered, or one in a conversation an agent already wrote in
    (:func:`human_has_answered`): the bot never speaks after a human.
    """
    interaction = (
        Interaction.objects.select_related("channel", "customer", "conversation", "workspace")
        .filter(pk=interaction_id, workspace_id=workspace_id)
        .first()
    )
    if (
        interaction is None
        or interaction.channel is None
        or interaction_is_automated(interaction=interaction)
        or human_has_answered(interaction=interaction)
    ):
        return []
    sent: list[Interaction] = []
    rules = AutomationRule.objects.filter(
        workspace_id=workspace_id, enabled=True, trigger=event_name
    ).select_related("reply_channel")
    for rule in rules:
        if not rule_matches(rule=rule, interaction=interaction):
            continue
        if rule.action == Action.SEND_REPLY:
            body = template_render(template=rule.template, interaction=interaction)
            channel, conversation, to_address = _reply_target(
                rule=rule, interaction=interaction, channel=interaction.channel
            )
            try:
                out, _ = message_send(
                    workspace=interaction.workspace,
                    channel=channel,
                    customer=interaction.customer,
                    conversation=conversation,
                    body=body,
                    to_address=to_address,
                    automation_rule=rule,
                    idempotency_key=f"automation:{rule.pk}:{interaction.pk}",
                )
            except SendRejected:
                logger.warning(
                    "rule %s could not reply to interaction %s", rule.pk, interaction.pk, exc_info=True
                )
                continue
            sent.append(out)
    return sent
