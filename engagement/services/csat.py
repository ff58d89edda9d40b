"""Customer satisfaction (CSAT): one question after a resolution, on the conversation's channel.

* :func:`conversation_resolution_record` — called by ``conversation_status_set`` when a conversation
  becomes resolved, in its transaction: one :class:`ConversationResolution` row (resolution time for
  reports), then :func:`csat_survey_send` when the workspace switched surveys on (``CsatSettings``).
* :func:`csat_survey_send` — through ``message_send`` (so consent is enforced there: an opted-out
  customer gets a ``blocked`` interaction, never a provider call) with the idempotency key
  ``csat:<resolution id>``: never twice per resolution. SMS: the question and "Reply 1-5"; webchat: the
  question as a message; email: five links to the signed survey page (:func:`csat_token`). Voice
  conversations get no survey (``csat_skipped="channel"``).
* :func:`csat_reply_record` — an inbound SMS or webchat message that is only a digit 1-5 (``"5"``,
  ``"4!"``, ``"3 stars"``), from a customer whose newest survey was sent within
  ``CsatSettings.reply_window_hours`` and is unanswered, is the answer; the conversation that message
  opened (the first one was resolved) is closed again when the digit is all it holds.
* :func:`csat_response_record` — the answer from the survey page (or the two above): one
  :class:`CsatResponse` per resolution (a second answer replaces the score), ``csat.received``
  published, shown on the timeline.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db import transaction
from django.utils import timezone
from django.utils.html import escape

from engagement import events
from engagement.errors import DomainError, NotFound, ValidationFailed
from engagement.models import (
    Conversation,
    ConversationResolution,
    CsatResponse,
    CsatSource,
    Interaction,
    InteractionStatus,
    Workspace,
)
from engagement.models.channels import ChannelKind
from engagement.models.conversations import ConversationStatus, Direction
from engagement.models.insights import CsatSettings

from .messaging import message_send

LINK_SALT = "engagement.csat"
TOKEN_MAX_AGE = timedelta(days=30)
DEFAULT_QUESTION = "How satisfied are you with the help you got?"
_REPLY_RE = re.compile(r"^\s*([1-5])\s*(?:/\s*5)?\s*(?:stars?|[.!]*)?\s*$", re.IGNORECASE)


class CsatInvalid(ValidationFailed):
    code = "csat_invalid"


class CsatNotFound(NotFound):
    code = "csat_not_found"


def csat_settings_for(*, workspace: Workspace) -> CsatSettings:
    found = CsatSettings.objects.filter(workspace=workspace).first()
    return found or CsatSettings(workspace=workspace)


def csat_settings_set(
    *, workspace: Workspace, enabled: bool, question: str = "", reply_window_hours: int = 72
) -> CsatSettings:
    """Switch surveys on or off; ``question`` (≤ 300 characters; empty: the default),
    ``reply_window_hours`` 1-720. Raises :class:`CsatInvalid` naming the field."""
    if len(question) > 300:
        raise CsatInvalid("at most 300 characters", field="question")
    if not 1 <= reply_window_hours <= 720:
        raise CsatInvalid("between 1 and 720 hours", field="reply_window_hours")
    row, _ = CsatSettings.objects.update_or_create(
        workspace=workspace,
        defaults={"enabled": enabled, "question": question.strip(), "reply_window_hours": reply_window_hours},
    )
    return row


def csat_token(*, resolution: ConversationResolution) -> str:
    return signing.dumps({"r": resolution.pk}, salt=LINK_SALT, compress=True)


def csat_resolution_from_token(token: str) -> ConversationResolution:
    """The resolution a survey link names. Raises :class:`CsatNotFound` for a forged, expired or
    unknown token."""
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=TOKEN_MAX_AGE)
    except signing.BadSignature as exc:
        raise CsatNotFound("this survey link is not valid any more") from exc
    resolution = ConversationResolution.objects.select_related("workspace").filter(pk=data.get("r")).first()
    if resolution is None:
        raise CsatNotFound("this survey link is not valid any more")
    return resolution


def conversation_resolution_record(
    *, workspace: Workspace, conversation: Conversation, resolved_by: AbstractBaseUser | None = None
) -> ConversationResolution:
    """Record that ``conversation`` was resolved now and send the survey (when switched on). Call inside
    the transaction that resolved it."""
    now = timezone.now()
    previous = (
        ConversationResolution.objects.filter(conversation=conversation).order_by("-resolved_at").first()
    )
    resolution = ConversationResolution.objects.create(
        workspace=workspace,
        conversation=conversation,
        customer_id=conversation.customer_id,
        channel_id=conversation.channel_id,
        assignee_id=conversation.assignee_id,
        resolved_by_id=resolved_by.pk if resolved_by is not None and resolved_by.is_authenticated else None,
        opened_at=previous.resolved_at if previous else conversation.created_at,
        resolved_at=now,
    )
    if csat_settings_for(workspace=workspace).enabled:
        csat_survey_send(workspace=workspace, resolution=resolution)
    return resolution


def _survey_body(
    *, kind: str, question: str, resolution: ConversationResolution
) -> tuple[str, dict[str, Any]]:
    if kind == ChannelKind.SMS:
        return f"{question} Reply 1-5 (5 = very satisfied).", {}
    if kind == ChannelKind.WEBCHAT:
        return f"{question} Reply with a number from 1 (poor) to 5 (great).", {}
    base = f"{settings.PUBLIC_BASE_URL}/csat/{csat_token(resolution=resolution)}/"
    lines = [question, ""] + [f"{n} - {base}?score={n}" for n in range(5, 0, -1)]
    links = " ".join(f'<a href="{escape(base)}?score={n}">{n}</a>' for n in range(1, 6))
    html = f"<p>{escape(question)}</p><p>{links}</p><p>1 = poor, 5 = great</p>"
    return "\n".join(lines), {"email": {"subject": "How did we do?", "html": html}}


def csat_survey_send(*, workspace: Workspace, resolution: ConversationResolution) -> Interaction | None:
    """Send the survey of ``resolution`` once (idempotency key ``csat:<id>``). Returns the interaction,
    or None when none is sent (a voice conversation, a refused send: the reason in ``csat_skipped``)."""
    if resolution.csat_interaction_id is not None:
        return None
    channel = resolution.channel
    if channel.kind not in (ChannelKind.SMS, ChannelKind.EMAIL, ChannelKind.WEBCHAT):
        ConversationResolution.objects.filter(pk=resolution.pk).update(csat_skipped="channel")
        return None
    question = csat_settings_for(workspace=workspace).question or DEFAULT_QUESTION
    body, metadata = _survey_body(kind=channel.kind, question=question, resolution=resolution)
    try:
        with transaction.atomic():
            interaction, _ = message_send(
                workspace=workspace,
                channel=channel,
                customer=resolution.customer,
                body=body,
                conversation=resolution.conversation,
                idempotency_key=f"csat:{resolution.pk}",
                metadata={**metadata, "csat": {"resolution_id": resolution.pk}},
            )
    except DomainError as exc:
        ConversationResolution.objects.filter(pk=resolution.pk).update(csat_skipped=exc.code[:64])
        return None
    skipped = "consent" if interaction.status == InteractionStatus.BLOCKED else ""
    ConversationResolution.objects.filter(pk=resolution.pk).update(
        csat_interaction=interaction,
        csat_sent_at=None if skipped else interaction.created_at,
        csat_skipped=skipped,
    )
    resolution.csat_interaction = interaction
    return interaction


def csat_response_record(
    *,
    resolution: ConversationResolution,
    score: int,
    source: str,
    comment: str = "",
    interaction: Interaction | None = None,
) -> CsatResponse:
    """The customer's answer to ``resolution``'s survey (1-5). A second answer replaces the first.
    Publishes ``csat.received``. Raises :class:`CsatInvalid` for a score outside 1-5."""
    if not 1 <= score <= 5:
        raise CsatInvalid("the score is a whole number from 1 to 5", field="score")
    with transaction.atomic():
        response, _ = CsatResponse.objects.update_or_create(
            resolution=resolution,
            defaults={
                "workspace_id": resolution.workspace_id,
                "conversation_id": resolution.conversation_id,
                "customer_id": resolution.customer_id,
                "score": score,
                "comment": comment[:2000],
                "source": source,
                "interaction": interaction,
                "responded_at": timezone.now(),
            },
        )
        if resolution.csat_interaction_id is not None:
            survey = Interaction.objects.select_for_update().get(pk=resolution.csat_interaction_id)
            survey.metadata = {**survey.metadata, "csat": {"resolution_id": resolution.pk, "score": score}}
            survey.save(update_fields=["metadata"])
        events.publish_on_commit(
            events.DomainEvent(
                name=events.CSAT_RECEIVED,
                workspace_id=resolution.workspace_id,
                conversation_id=resolution.conversation_id,
                customer_id=resolution.customer_id,
                data={"csat_id": response.pk, "score": score, "resolution_id": resolution.pk},
            )
        )
    return response


def csat_reply_score(body: str) -> int | None:
    """The score an SMS/webchat reply gives (``"5"``, ``"4!"``, ``"3 stars"``, ``"2/5"``), else None."""
    match = _REPLY_RE.match(body or "")
    return int(match.group(1)) if match else None


def csat_reply_record(*, interaction_id: int) -> CsatResponse | None:
    """Take an inbound message as the answer to the customer's newest open survey (module docstring).
    Returns the response, or None when the message is not one."""
    interaction = Interaction.objects.select_related("channel").filter(pk=interaction_id).first()
    if interaction is None or interaction.direction != Direction.INBOUND or interaction.channel is None:
        return None
    if interaction.channel.kind not in (ChannelKind.SMS, ChannelKind.WEBCHAT):
        return None
    score = csat_reply_score(interaction.body)
    if score is None:
        return None
    window = timedelta(hours=csat_settings_for(workspace=interaction.workspace).reply_window_hours)
    resolution = (
        ConversationResolution.objects.filter(
            customer_id=interaction.customer_id,
            channel__kind=interaction.channel.kind,
            csat_sent_at__isnull=False,
            csat_sent_at__gte=interaction.created_at - window,
            csat_sent_at__lte=interaction.created_at,
            csat__isnull=True,
        )
        .order_by("-csat_sent_at")
        .first()
    )
    if resolution is None:
        return None
    source = CsatSource.SMS if interaction.channel.kind == ChannelKind.SMS else CsatSource.WEBCHAT
    with transaction.atomic():
        response = csat_response_record(
            resolution=resolution, score=score, source=source, interaction=interaction
        )
        # The digit opened a new conversation (the surveyed one was resolved): nothing to work on.
        if (
            interaction.conversation_id is not None
            and interaction.conversation_id != resolution.conversation_id
            and not Interaction.objects.filter(conversation_id=interaction.conversation_id)
            .exclude(pk=interaction.pk)
            .exists()
        ):
            Conversation.objects.filter(pk=interaction.conversation_id).update(
                status=ConversationStatus.RESOLVED
            )
        Interaction.objects.filter(pk=interaction.pk).update(
            metadata={**interaction.metadata, "csat": {"resolution_id": resolution.pk, "score": score}}
        )
    return response
