"""Phone calls on the timeline: the per-workspace call flow (data), one call interaction per call, its
outcome, recording and transcript, and click-to-call.

Provider adapters turn a provider's call webhooks into calls of these services and render the
:class:`CallPlan` as the provider's call instructions (TwiML for Twilio); nothing here knows a provider.
"""

from __future__ import annotations

import logging
import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.lookup import customer_follow_merges
from customers.models import Customer, IdentityKind
from customers.services import Identifier, customer_primary_address, customer_resolve, identifier_normalize
from engagement import events
from engagement.errors import Rejected, ValidationFailed
from engagement.models import Attachment, Channel, Conversation, Interaction, InteractionStatus, Membership
from engagement.models.conversations import CallOutcome, Direction, InteractionKind

from .conversations import conversation_find_or_open, conversation_touch
from .media import attachment_fetch_on_commit
from .timeline import interaction_follow_merges, status_is_forward

logger = logging.getLogger(__name__)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


# ---------------------------------------------------------------------------------------- call flow


class CallFlowInvalid(ValidationFailed):
    """The channel's call flow (``Channel.config["call_flow"]``) is not valid. The message says why."""

    code = "call_flow_invalid"


@dataclass(frozen=True)
class CallFlow:
    """What a caller hears: stored as data in the voice channel's ``config["call_flow"]``.

    ``hours`` maps a weekday (mon…sun) to an opening interval; a missing day is closed all day.
    """

    greeting: str = "Thanks for calling."
    menu_prompt: str = "To speak to someone, press 1. Or stay on the line to leave a message."
    voicemail_prompt: str = "Please leave a message after the tone."
    closed_message: str = "We are closed right now."
    nobody_available: str = "Sorry, nobody can take your call right now."
    goodbye: str = "Thank you. Goodbye."
    timezone: str = "UTC"
    hours: tuple[tuple[str, time, time], ...] = tuple((day, time(9, 0), time(17, 0)) for day in WEEKDAYS[:5])
    dial_timeout: int = 20
    max_voicemail_seconds: int = 120
    transcribe: bool = True
    voice: str = "alice"
    language: str = "en-US"

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(zoneinfo.ZoneInfo(self.timezone))
        day = WEEKDAYS[local.weekday()]
        return any(d == day and start <= local.time() < end for d, start, end in self.hours)


_TEXT_FIELDS = (
    "greeting",
    "menu_prompt",
    "voicemail_prompt",
    "closed_message",
    "nobody_available",
    "goodbye",
)
_INT_FIELDS = {"dial_timeout": (5, 60), "max_voicemail_seconds": (5, 3600)}


def call_flow_parse(data: Any) -> CallFlow:
    """Validate a stored call flow; every field is optional and defaults to :class:`CallFlow`'s."""
    if data is None:
        return CallFlow()
    if not isinstance(data, dict):
        raise CallFlowInvalid("call_flow must be an object")
    unknown = set(data) - {
        *_TEXT_FIELDS,
        *_INT_FIELDS,
        "timezone",
        "hours",
        "transcribe",
        "voice",
        "language",
    }
    if unknown:
        raise CallFlowInvalid(f"unknown call_flow field(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name in (*_TEXT_FIELDS, "voice", "language"):
        if name in data:
            if not isinstance(data[name], str) or len(data[name]) > 1000:
                raise CallFlowInvalid(f"{name} must be text of at most 1000 characters")
            values[name] = data[name].strip()
    for name, (low, high) in _INT_FIELDS.items():
        if name in data:
            if not isinstance(data[name], int) or not low <= data[name] <= high:
                raise CallFlowInvalid(f"{name} must be a whole number from {low} to {high}")
            values[name] = data[name]
    if "transcribe" in data:
        if not isinstance(data["transcribe"], bool):
            raise CallFlowInvalid("transcribe must be true or false")
        values["transcribe"] = data["transcribe"]
    if "timezone" in data:
        try:
            zoneinfo.ZoneInfo(str(data["timezone"]))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise CallFlowInvalid(f"unknown timezone {data['timezone']!r}") from exc
        values["timezone"] = str(data["timezone"])
    if "hours" in data:
        values["hours"] = _hours_parse(data["hours"])
    return CallFlow(**values)


def _hours_parse(hours: Any) -> tuple[tuple[str, time, time], ...]:
    if not isinstance(hours, dict):
        raise CallFlowInvalid(
            'hours must map a weekday to ["HH:MM", "HH:MM"], e.g. {"mon": ["09:00", "17:00"]}'
        )
    parsed = []
    for day, interval in hours.items():
        if day not in WEEKDAYS:
            raise CallFlowInvalid(f"hours: {day!r} is not one of {', '.join(WEEKDAYS)}")
        if interval is None:
            continue
        if not (isinstance(interval, list | tuple) and len(interval) == 2):
            raise CallFlowInvalid(f"hours.{day} must be [opening, closing] as HH:MM")
        bounds = []
        for value in interval:
            match = _HHMM.match(str(value))
            if match is None:
                raise CallFlowInvalid(f"hours.{day}: {value!r} is not HH:MM")
            bounds.append(time(int(match[1]), int(match[2])))
        if bounds[0] >= bounds[1]:
            raise CallFlowInvalid(f"hours.{day}: opening must be before closing")
        parsed.append((day, bounds[0], bounds[1]))
    return tuple(parsed)


@dataclass(frozen=True)
class CallPlan:
    """What to do with an inbound call now: render it as the provider's call instructions."""

    flow: CallFlow
    is_open: bool
    agent_phones: tuple[str, ...]

    @property
    def offer_agents(self) -> bool:
        return self.is_open and bool(self.agent_phones)


def call_agents_on_duty(*, channel: Channel) -> list[Membership]:
    """Members of the channel's workspace who are on duty and have a phone, in a stable order."""
    return list(
        Membership.objects.filter(workspace_id=channel.workspace_id, on_duty=True)
        .exclude(phone="")
        .select_related("user")
        .order_by("pk")
    )


def call_flow_for(*, channel: Channel) -> CallFlow:
    """The voice channel's stored call flow, or the default one (logged) when the stored one is invalid."""
    try:
        return call_flow_parse(channel.config.get("call_flow"))
    except CallFlowInvalid:
        # A caller must hear something: the default flow, while the stored one gets fixed.
        logger.exception("channel %s has an invalid call flow; using the default", channel.pk)
        return CallFlow()


def call_plan(*, channel: Channel, at: datetime | None = None) -> CallPlan:
    """The channel's call flow at ``at``: open or closed, and whose phones to ring."""
    flow = call_flow_for(channel=channel)
    is_open = flow.is_open(at or timezone.now())
    phones = tuple(m.phone for m in call_agents_on_duty(channel=channel)) if is_open else ()
    return CallPlan(flow=flow, is_open=is_open, agent_phones=phones)


# ---------------------------------------------------------------------------------- call interactions

# Provider-neutral call statuses (Twilio's CallStatus values) and how far along each is.
CALL_STATUS_RANK = {
    "queued": 0,
    "initiated": 1,
    "ringing": 2,
    "in-progress": 3,
    "completed": 4,
    "busy": 4,
    "no-answer": 4,
    "failed": 4,
    "canceled": 4,
}
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
# An outbound call's final status → the interaction's delivery status.
OUTBOUND_CALL_DELIVERY = {
    "completed": InteractionStatus.DELIVERED,
    "busy": InteractionStatus.UNDELIVERED,
    "no-answer": InteractionStatus.UNDELIVERED,
    "canceled": InteractionStatus.FAILED,
    "failed": InteractionStatus.FAILED,
}
# A leg's final status → the call's outcome when that leg decides it.
LEG_OUTCOME = {
    "completed": CallOutcome.ANSWERED,
    "in-progress": CallOutcome.ANSWERED,
    "busy": CallOutcome.BUSY,
    "no-answer": CallOutcome.MISSED,
    "canceled": CallOutcome.MISSED,
    "failed": CallOutcome.FAILED,
}


def _event(name: str, interaction: Interaction, **data: Any) -> events.DomainEvent:
    return events.DomainEvent(
        name=name,
        workspace_id=interaction.workspace_id,
        interaction_id=interaction.pk,
        conversation_id=interaction.conversation_id,
        customer_id=interaction.customer_id,
        data={"channel_kind": "voice", **data},
    )


def _publish(name: str, interaction: Interaction, **data: Any) -> None:
    events.publish_on_commit(_event(name, interaction, **data))


def call_duration_label(seconds: int | None) -> str:
    """38 → "0:38", 3725 → "1:02:05"; None (unknown) → "0:00"."""
    hours, rest = divmod(int(seconds or 0), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def call_record_inbound(
    *,
    channel: Channel,
    caller: Identifier,
    call_id: str,
    occurred_at: datetime,
    metadata: dict[str, Any] | None = None,
) -> tuple[Interaction, bool]:
    """The one call interaction of an inbound call, created on the first webhook that names it.

    Idempotent on ``(channel, call_id)``. Owns its transaction; the console hears of it after commit.
    """
    with transaction.atomic():
        existing = Interaction.objects.filter(channel=channel, provider_message_id=call_id).first()
        if existing is not None:
            return existing, False
        caller = identifier_normalize(caller, workspace=channel.workspace)
        withheld = caller.kind == IdentityKind.UNKNOWN_CALLER
        # A withheld number is a customer of its own per call (its identity is the call id), named so.
        customer, _ = customer_resolve(
            workspace=channel.workspace,
            identifier=caller,
            channel_kind=channel.kind,
            display_name="Unknown caller" if withheld else "",
        )
        conversation, _ = conversation_find_or_open(customer=customer, channel=channel, at=occurred_at)
        try:
            with transaction.atomic():
                interaction = Interaction.objects.create(
                    workspace_id=channel.workspace_id,
                    customer=customer,
                    conversation=conversation,
                    channel=channel,
                    kind=InteractionKind.CALL,
                    direction=Direction.INBOUND,
                    customer_address="" if withheld else caller.value,
                    status=InteractionStatus.RECEIVED,
                    status_changed_at=occurred_at,
                    provider_message_id=call_id,
                    metadata={"call_status": "ringing", **(metadata or {})},
                    created_at=occurred_at,
                )
        except IntegrityError:
            return Interaction.objects.get(channel=channel, provider_message_id=call_id), False
        conversation_touch(conversation=conversation, at=occurred_at, preview="Incoming call", reopen=True)
        _publish(events.INTERACTION_UPDATED, interaction, status=interaction.status)
    return interaction, True


def _call_locked(*, channel: Channel, call_id: str, interaction_id: int | None) -> Interaction | None:
    # The conversation and the customer come along (unlocked): settling a call updates its preview,
    # and a call left on a customer merged away since moves to the survivor (no query otherwise).
    qs = (
        Interaction.objects.select_related("conversation", "customer")
        .select_for_update(of=("self",))
        .filter(channel=channel, kind=InteractionKind.CALL)
    )
    found = qs.filter(pk=interaction_id).first() if interaction_id is not None else None
    if found is None and call_id:
        found = qs.filter(provider_message_id=call_id).first()
    if found is not None:
        interaction_follow_merges(interaction=found)
    return found


def _outcome(interaction: Interaction) -> str:
    """The outcome the facts gathered so far imply; "" while the call is still going."""
    meta = interaction.metadata
    final = meta.get("call_status") in FINAL_CALL_STATUSES
    if interaction.direction == Direction.INBOUND:
        if meta.get("agent_answered"):
            return CallOutcome.ANSWERED
        if meta.get("voicemail"):
            return CallOutcome.VOICEMAIL
        if not final:
            return ""
        return CallOutcome.BUSY if meta["call_status"] == "busy" else CallOutcome.MISSED
    if meta.get("connect_via"):  # click-to-call: the customer's leg decides
        leg = meta.get("customer_leg_status", "")
        if leg in LEG_OUTCOME and (leg in FINAL_CALL_STATUSES or leg == "in-progress"):
            return LEG_OUTCOME[leg]
        return CallOutcome.FAILED if final else ""
    return LEG_OUTCOME.get(meta.get("call_status", ""), "") if final else ""


def _settle(interaction: Interaction, update: set[str]) -> None:
    """Recompute the outcome, save, and publish what changed (each inbound-call event at most once)."""
    before = interaction.call_outcome
    interaction.call_outcome = _outcome(interaction)
    update.add("call_outcome")
    meta = interaction.metadata
    published: list[str] = []
    if interaction.direction == Direction.INBOUND:
        ended_unanswered = meta.get("call_status") in FINAL_CALL_STATUSES and interaction.call_outcome in (
            CallOutcome.MISSED,
            CallOutcome.VOICEMAIL,
            CallOutcome.BUSY,
        )
        if ended_unanswered and not meta.get("missed_published"):
            meta["missed_published"] = True
            published.append(events.CALL_MISSED)
        if meta.get("recording_sid") and not meta.get("voicemail_published"):
            meta["voicemail_published"] = True
            published.append(events.VOICEMAIL_RECEIVED)
    update.add("metadata")
    interaction.save(update_fields=sorted(update))
    if interaction.conversation is not None and interaction.call_outcome != before:
        conversation_touch(
            conversation=interaction.conversation,
            at=interaction.created_at,
            preview=call_summary(interaction),
            reopen=False,
        )
    # One outbox insert for all of them.
    events.publish_on_commit(
        *(_event(name, interaction, outcome=interaction.call_outcome) for name in published),
        _event(
            events.INTERACTION_UPDATED,
            interaction,
            status=interaction.status,
            outcome=interaction.call_outcome,
        ),
    )


def call_summary(interaction: Interaction) -> str:
    """One line for the inbox preview: "Missed call", "Voicemail (0:42): …", "Call answered (3:05)"."""
    outcome = interaction.call_outcome
    if outcome == CallOutcome.VOICEMAIL:
        text = f"Voicemail ({call_duration_label(interaction.metadata.get('recording_duration'))})"
        return f"{text}: {interaction.body}" if interaction.body else text
    if outcome == CallOutcome.ANSWERED:
        return f"Call answered ({call_duration_label(interaction.duration_seconds)})"
    if outcome:
        return f"{CallOutcome(outcome).label} call"
    return "Call in progress"


def call_apply_status(
    *,
    channel: Channel,
    call_id: str,
    status: str,
    occurred_at: datetime,
    interaction_id: int | None = None,
    parent_call_id: str = "",
    leg: str = "",
    duration_seconds: int | None = None,
    agent_address: str = "",
    caller: Identifier | None = None,
) -> Interaction | None:
    """Apply one call status report: the customer's call (``leg=""``), an agent's leg of an inbound
    call that rang the on-duty phones (``leg="agent"``), or the customer's leg of click-to-call
    (``leg="customer"``). Statuses only move forward; repeats change nothing.

    An inbound call first seen in a status report (its voice webhook failed) is created from ``caller``.
    Returns the call interaction, or None when it is unknown.
    """
    with transaction.atomic():
        interaction = _call_locked(
            channel=channel, call_id=parent_call_id if leg else call_id, interaction_id=interaction_id
        )
        if interaction is None and not leg and caller is not None and interaction_id is None:
            call_record_inbound(channel=channel, caller=caller, call_id=call_id, occurred_at=occurred_at)
            interaction = _call_locked(channel=channel, call_id=call_id, interaction_id=None)
        if interaction is None:
            logger.warning("call status %s for unknown call %s on channel %s", status, call_id, channel.pk)
            return None
        meta = interaction.metadata
        update: set[str] = set()
        key = {"": "call_status", "agent": "agent_leg_status", "customer": "customer_leg_status"}[leg]
        advanced = CALL_STATUS_RANK.get(status, -1) > CALL_STATUS_RANK.get(meta.get(key, ""), -1)
        # Several agents' phones ring at once: another leg may have ended (canceled) before this one
        # reports that it answered, so an answer is taken whatever the order.
        answered = leg == "agent" and (
            status == "in-progress" or (status == "completed" and (duration_seconds or 0) > 0)
        )
        if not advanced and not (answered and not meta.get("agent_answered")):
            return interaction
        if advanced:
            meta[key] = status
        if leg == "agent":
            if answered and not meta.get("agent_answered"):
                meta["agent_answered"] = True
                member = (
                    Membership.objects.filter(workspace_id=channel.workspace_id, phone=agent_address)
                    .select_related("user")
                    .first()
                )
                if member is not None:
                    interaction.answered_by = member.user
                    update.add("answered_by")
                meta["agent_address"] = agent_address
        elif leg == "customer":
            if status in FINAL_CALL_STATUSES and duration_seconds is not None:
                interaction.duration_seconds = duration_seconds
                update.add("duration_seconds")
            if status in ("in-progress", "completed") and interaction.author_id is not None:
                interaction.answered_by_id = interaction.author_id
                update.add("answered_by")
        else:
            if not interaction.provider_message_id:
                interaction.provider_message_id = call_id
                update.add("provider_message_id")
            if status in FINAL_CALL_STATUSES and interaction.duration_seconds is None:
                interaction.duration_seconds = duration_seconds
                update.add("duration_seconds")
            if interaction.direction == Direction.OUTBOUND:
                new = OUTBOUND_CALL_DELIVERY.get(status, InteractionStatus.SENT)
                customer_answered = meta.get("customer_leg_status") in ("completed", "in-progress")
                if meta.get("connect_via") and status == "completed" and not customer_answered:
                    new = InteractionStatus.UNDELIVERED
                if status_is_forward(interaction.status, new):
                    interaction.status = new
                    interaction.status_changed_at = occurred_at
                    update |= {"status", "status_changed_at"}
        _settle(interaction, update)
    return interaction


def call_record_voicemail_left(*, channel: Channel, call_id: str, recording_duration: int | None) -> None:
    """The caller finished recording (the record action): the call's outcome is voicemail."""
    with transaction.atomic():
        interaction = _call_locked(channel=channel, call_id=call_id, interaction_id=None)
        if interaction is None or interaction.metadata.get("voicemail"):
            return
        interaction.metadata["voicemail"] = True
        if recording_duration is not None:
            interaction.metadata.setdefault("recording_duration", recording_duration)
        _settle(interaction, set())


def call_attach_recording(
    *,
    channel: Channel,
    call_id: str,
    recording_id: str,
    recording_url: str,
    recording_status: str,
    duration_seconds: int | None,
    content_type: str = "audio/mpeg",
) -> Interaction | None:
    """Attach a finished recording (a voicemail, or a recorded conversation) to its call.

    The attachment keeps the provider's URL and is downloaded into storage after commit, when
    reachable. Repeats attach nothing more. A new voicemail is published once as ``voicemail.received``.
    """
    with transaction.atomic():
        interaction = _call_locked(channel=channel, call_id=call_id, interaction_id=None)
        if interaction is None:
            logger.warning(
                "recording %s for unknown call %s on channel %s", recording_id, call_id, channel.pk
            )
            return None
        meta = interaction.metadata
        if recording_status != "completed":
            meta["recording_status"] = recording_status
            interaction.save(update_fields=["metadata"])
            return interaction
        if meta.get("recording_sid") == recording_id:
            return interaction
        attachment = Attachment.objects.create(
            workspace_id=interaction.workspace_id,
            interaction=interaction,
            filename=f"{recording_id}.{'mp3' if content_type == 'audio/mpeg' else 'wav'}",
            content_type=content_type,
            source_url=recording_url,
        )
        meta.update(
            recording_sid=recording_id,
            recording_status=recording_status,
            recording_duration=duration_seconds,
        )
        if interaction.direction == Direction.INBOUND and interaction.call_outcome != CallOutcome.ANSWERED:
            meta["voicemail"] = True
        _settle(interaction, set())
        attachment_fetch_on_commit(attachment=attachment)
    return interaction


def call_attach_transcript(
    *, channel: Channel, call_id: str, transcription_id: str, transcription_status: str, text: str
) -> Interaction | None:
    """Put a recording's transcript on its call (as the interaction's body). Repeats change nothing."""
    with transaction.atomic():
        interaction = _call_locked(channel=channel, call_id=call_id, interaction_id=None)
        if interaction is None:
            logger.warning(
                "transcript %s for unknown call %s on channel %s", transcription_id, call_id, channel.pk
            )
            return None
        meta = interaction.metadata
        if meta.get("transcription_sid") == transcription_id:
            return interaction
        meta.update(transcription_sid=transcription_id, transcription_status=transcription_status)
        update = {"metadata"}
        if transcription_status == "completed":
            interaction.body = text.strip()
            update.add("body")
        interaction.save(update_fields=sorted(update))
        if interaction.conversation is not None:
            conversation_touch(
                conversation=interaction.conversation,
                at=interaction.created_at,
                preview=call_summary(interaction),
                reopen=False,
            )
        _publish(events.INTERACTION_UPDATED, interaction, status=interaction.status)
    return interaction


# ------------------------------------------------------------------------------------- outbound calls


class CallRejected(Rejected):
    """The call cannot be placed as asked. The message says why."""

    code = "call_rejected"
    status = 400


def call_channel_for(*, workspace_id: int) -> Channel | None:
    """The workspace's line for click-to-call: its first active voice channel, if any."""
    return (
        Channel.objects.filter(workspace_id=workspace_id, kind="voice", is_active=True).order_by("pk").first()
    )


def call_click_to_call(
    *,
    channel: Channel,
    customer: Customer,
    agent: AbstractBaseUser,
    conversation: Conversation | None = None,
    to_address: str | None = None,
) -> Interaction:
    """Click-to-call from the console: ring the agent's phone, then bridge them to the customer.

    Precondition: ``agent`` is a member of the channel's workspace with a phone number. Queues one
    outbound call interaction (author = the agent) that the voice sender places after commit.
    """
    if channel.kind != "voice" or not channel.is_active:
        raise CallRejected(f"{channel.name!r} is not an active voice channel")
    if customer.workspace_id != channel.workspace_id:
        raise CallRejected("customer and channel must belong to the same workspace")
    member = Membership.objects.filter(workspace_id=channel.workspace_id, user_id=agent.pk).first()
    if member is None:
        raise CallRejected("only a member of the workspace can place a call")
    if not member.phone:
        raise CallRejected("add your phone number to your membership to place calls")
    asked_for = customer.pk
    customer = customer_follow_merges(customer=customer)  # a merged-away customer is called as the survivor
    if conversation is not None and conversation.customer_id != customer.pk:
        if conversation.customer_id != asked_for:
            raise CallRejected("conversation belongs to another customer")
        conversation = None  # the merged-away customer's: the survivor's conversation on the channel is used
    try:
        address = (
            identifier_normalize(Identifier("phone", to_address), workspace=channel.workspace).value
            if to_address
            else customer_primary_address(customer=customer, kind="phone")
        )
    except ValueError as exc:
        raise CallRejected(str(exc)) from exc
    if not address:
        raise CallRejected("customer has no phone number")
    with transaction.atomic():
        now = timezone.now()
        if conversation is None or conversation.channel_id != channel.pk:
            conversation, _ = conversation_find_or_open(customer=customer, channel=channel, at=now)
        interaction = Interaction.objects.create(
            workspace_id=channel.workspace_id,
            customer=customer,
            conversation=conversation,
            channel=channel,
            kind=InteractionKind.CALL,
            direction=Direction.OUTBOUND,
            customer_address=address,
            status=InteractionStatus.QUEUED,
            status_changed_at=now,
            author=agent,  # type: ignore[misc]
            next_attempt_at=now,
            metadata={"connect_via": member.phone},
            created_at=now,
        )
        conversation_touch(conversation=conversation, at=now, preview="Outgoing call", reopen=False)
        events.publish_on_commit(
            _event(events.OUTBOUND_QUEUED, interaction),
            _event(events.INTERACTION_UPDATED, interaction, status=interaction.status),
        )
    return interaction


# ------------------------------------------------------------------------------------------ demo

DEMO_VOICEMAIL = "Hi, it's Grace Hopper. My order hasn't arrived yet, could you call me back? Thanks!"


def _demo_wav(seconds: float = 1.5, rate: int = 8000) -> bytes:
    """A short, quiet two-tone WAV so the demo's voicemail plays without any network."""
    import io
    import math
    import struct
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        frames = bytearray()
        for n in range(int(seconds * rate)):
            tone = 440 if n < rate * seconds / 2 else 660
            frames += struct.pack("<h", int(3000 * math.sin(2 * math.pi * tone * n / rate)))
        wav.writeframes(bytes(frames))
    return buffer.getvalue()


def demo_voice_seed(*, channel: Channel, caller: str, at: datetime) -> Interaction:
    """Seed one inbound call that went to voicemail, with its recording and transcript, through the
    same services the Twilio webhooks use. Idempotent: the call id is fixed."""
    from django.core.files.base import ContentFile

    call_id = "CADEMO0000000000000000000000000001"
    existing = Interaction.objects.filter(channel=channel, provider_message_id=call_id).first()
    if existing is not None:
        return existing
    call, _ = call_record_inbound(
        channel=channel, caller=Identifier("phone", caller), call_id=call_id, occurred_at=at
    )
    call_record_voicemail_left(channel=channel, call_id=call_id, recording_duration=14)
    call_apply_status(
        channel=channel, call_id=call_id, status="completed", occurred_at=at, duration_seconds=38
    )
    with transaction.atomic():
        locked = _call_locked(channel=channel, call_id=call_id, interaction_id=None)
        if locked is not None and not locked.attachments.exists():
            recording = Attachment(
                workspace_id=locked.workspace_id,
                interaction=locked,
                filename="voicemail-demo.wav",
                content_type="audio/wav",
            )
            data = _demo_wav()
            recording.file.save("voicemail-demo.wav", ContentFile(data), save=False)
            recording.size = len(data)
            recording.save()
            locked.metadata.update(recording_sid="REDEMO", recording_status="completed")
            _settle(locked, set())
    call_attach_transcript(
        channel=channel,
        call_id=call_id,
        transcription_id="TRDEMO",
        transcription_status="completed",
        text=DEMO_VOICEMAIL,
    )
    call.refresh_from_db()
    return call
