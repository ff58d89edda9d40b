"""Twilio Voice (PROTOCOLS.md F): call webhooks → normalized CallEvents, and the workspace's call flow
rendered as TwiML with the twilio SDK's builders. Used by the one Twilio adapter (providers/twilio.py),
which serves these hooks beside the SMS ones:

    voice          the number's Voice URL: greeting, business hours, "press 1", else voicemail
    voice-menu     <Gather> action: 1 rings the on-duty agents' phones
    voice-dial     <Dial> action: nobody answered → voicemail
    voice-done     <Record> action: the caller left a message → goodbye
    call-status    call status callbacks (the number's, and each agent leg's with ?leg=agent)
    recording      recording status callbacks
    transcription  transcription callbacks

Outbound calls report their status to the same ``status`` hook as messages (told apart by CallSid).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlencode

from django.conf import settings
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from customers.identifiers import Identifier, InvalidIdentifier, caller_identifier, phone_region
from customers.models import IdentityKind
from engagement.inbound import CallEvent
from engagement.models import Channel
from engagement.sanitize import INT32_MAX, digits_parse
from engagement.services.calls import CALL_STATUS_RANK, CallFlow, CallPlan, call_plan

from ..base import MalformedPayload

logger = logging.getLogger(__name__)

VOICE_HOOKS = ("voice", "voice-menu", "voice-dial", "voice-done", "call-status", "recording", "transcription")
LEGS = ("", "agent", "customer")
# Twilio's RecordingUrl has no extension and serves WAV; ".mp3" asks for a smaller MP3 of it.
RECORDING_FORMAT = (".mp3", "audio/mpeg")


def hook_url(channel: Channel, hook: str, **query: str) -> str:
    path = reverse(
        "channels_inbound:webhook",
        kwargs={"provider": channel.provider, "token": channel.webhook_token, "hook": hook},
    )
    return f"{settings.PUBLIC_BASE_URL}{path}" + (f"?{urlencode(query)}" if query else "")


# Twilio SIDs are two letters and 32 hex digits; recorded payloads mask some with X. Our ids are built
# from them (dedupe keys, Interaction.provider_message_id: varchar 100), so anything else is refused.
SID_RE = re.compile(r"[A-Za-z0-9]{2,64}")
MAX_STATUS_CHARS = 40


def form_ids_check(form: dict[str, str]) -> None:
    """Raise MalformedPayload unless every ``…Sid`` field is SID-shaped and every ``…Status`` field a
    short word (both end up in stored ids)."""
    for name, value in form.items():
        if name.endswith("Sid") and value and not SID_RE.fullmatch(value):
            raise MalformedPayload(f"{name} is not a Twilio SID: {value[:40]!r}")
        if name.endswith("Status") and len(value) > MAX_STATUS_CHARS:
            raise MalformedPayload(f"{name} is longer than {MAX_STATUS_CHARS} characters")


def require_fields(form: dict[str, str], *names: str) -> None:
    """Raise MalformedPayload naming every field of ``names`` that ``form`` lacks or leaves empty."""
    missing = [n for n in names if not form.get(n)]
    if missing:
        raise MalformedPayload(f"missing required field(s): {', '.join(missing)}")


def _seconds(form: dict[str, str], name: str) -> int | None:
    value = form.get(name, "")
    if not value:
        return None
    seconds = digits_parse(value, max_value=INT32_MAX)
    if seconds is None:
        raise MalformedPayload(f"{name} must be a whole number of seconds, got {value[:40]!r}")
    return seconds


def sender_region(form: dict[str, str], channel: Channel) -> str | None:
    """The country a national-format sender number belongs to: Twilio's FromCountry, else that of the
    number it called (To), else our channel's number."""
    country = form.get("FromCountry", "").strip().upper()
    if len(country) == 2 and country.isalpha():
        return country
    return phone_region(form.get("To", "")) or phone_region(channel.address)


# Which reading of From/Caller names the caller best when the two differ.
_CALLER_PREFERENCE = (
    IdentityKind.PHONE,
    IdentityKind.SIP,
    IdentityKind.VOICE_CLIENT,
    IdentityKind.UNKNOWN_CALLER,
    IdentityKind.SHORT_CODE,
    IdentityKind.SENDER_ID,
)


def _caller(form: dict[str, str], channel: Channel) -> Identifier:
    """Who called: From (Caller is its alias) as a phone, short code, SIP address or Voice SDK client;
    a withheld number ("anonymous", "+266696687"…) is an unknown caller identified by the call. When
    From and Caller differ (a platform in between rewrote one), the more telling one wins."""
    region = sender_region(form, channel)
    found: list[Identifier] = []
    for name in ("From", "Caller"):
        if name in form:
            try:
                found.append(caller_identifier(form[name], region=region, call_id=form.get("CallSid", "")))
            except InvalidIdentifier as exc:
                raise MalformedPayload(f"{name}: {exc}") from exc
    if not found:
        raise MalformedPayload("missing required field(s): From")
    return min(found, key=lambda ident: _CALLER_PREFERENCE.index(IdentityKind(ident.kind)))


def parse_voice_events(
    form: dict[str, str], hook: str, query: QueryDict, channel: Channel
) -> list[CallEvent]:
    now = timezone.now()
    if hook == "voice":
        require_fields(form, "CallSid")
        if "From" not in form and "Caller" not in form:
            raise MalformedPayload("missing required field(s): From")
        caller = _caller(form, channel)
        return [
            CallEvent(
                provider_event_id=f"{form['CallSid']}:voice",
                action="started",
                call_id=form["CallSid"],
                caller=caller,
                occurred_at=now,
                metadata={
                    "to": form.get("To", ""),
                    "caller_name": form.get("CallerName", ""),
                    "from_country": form.get("FromCountry", ""),
                    "forwarded_from": form.get("ForwardedFrom", ""),
                },
                raw=form,
            )
        ]
    if hook == "voice-menu":
        require_fields(form, "CallSid")
        return []
    if hook == "voice-dial":
        require_fields(form, "CallSid", "DialCallStatus")
        if form["DialCallStatus"] != "completed":
            return []
        return [
            CallEvent(
                provider_event_id=f"{form.get('DialCallSid') or form['CallSid']}:dial:completed",
                action="status",
                call_id=form["CallSid"],
                leg="agent",
                leg_call_id=form.get("DialCallSid", ""),
                status="completed",
                duration_seconds=_seconds(form, "DialCallDuration"),
                occurred_at=now,
                raw=form,
            )
        ]
    if hook == "voice-done":
        require_fields(form, "CallSid")
        if not form.get("RecordingUrl"):
            return []  # nothing was recorded
        return [
            CallEvent(
                provider_event_id=f"{form['CallSid']}:recorded",
                action="voicemail_left",
                call_id=form["CallSid"],
                duration_seconds=_seconds(form, "RecordingDuration"),
                occurred_at=now,
                raw=form,
            )
        ]
    if hook == "call-status":
        return call_status_events(form, query, channel)
    if hook == "recording":
        require_fields(form, "CallSid", "RecordingSid", "RecordingStatus")
        status = form["RecordingStatus"]
        if status == "completed":
            require_fields(form, "RecordingUrl")
        url = form.get("RecordingUrl", "")
        extension, content_type = RECORDING_FORMAT
        if url and not url.rsplit("/", 1)[-1].count("."):
            url += extension
        return [
            CallEvent(
                provider_event_id=f"{form['RecordingSid']}:{status}",
                action="recording",
                call_id=form["CallSid"],
                recording_id=form["RecordingSid"],
                recording_url=url,
                recording_status=status,
                recording_content_type=content_type if url.endswith(extension) else "audio/wav",
                duration_seconds=_seconds(form, "RecordingDuration"),
                occurred_at=now,
                raw=form,
            )
        ]
    if hook == "transcription":
        require_fields(form, "CallSid", "TranscriptionSid", "TranscriptionStatus")
        return [
            CallEvent(
                provider_event_id=f"{form['TranscriptionSid']}:{form['TranscriptionStatus']}",
                action="transcription",
                call_id=form["CallSid"],
                recording_id=form.get("RecordingSid", ""),
                transcription_id=form["TranscriptionSid"],
                transcription_status=form["TranscriptionStatus"],
                transcript=form.get("TranscriptionText", ""),
                occurred_at=now,
                raw=form,
            )
        ]
    raise MalformedPayload(f"unknown hook {hook!r}")


def call_status_events(form: dict[str, str], query: QueryDict, channel: Channel) -> list[CallEvent]:
    """A call status callback: for the customer's call, or (``?leg=``) for a leg we dialled."""
    require_fields(form, "CallSid", "CallStatus")
    status = form["CallStatus"]
    if status not in CALL_STATUS_RANK:
        logger.warning("ignored unknown CallStatus %r for %s", status, form["CallSid"])
        return []
    leg = query.get("leg", "")
    if leg not in LEGS:
        raise MalformedPayload(f"leg must be one of agent, customer; got {leg!r}")
    if leg == "agent":
        require_fields(form, "ParentCallSid")
    iid = query.get("iid", "")
    inbound = not leg and form.get("Direction", "inbound") == "inbound" and not iid
    return [
        CallEvent(
            provider_event_id=f"{form['CallSid']}:{status}",
            action="status",
            call_id=form.get("ParentCallSid", "") if leg == "agent" else form["CallSid"],
            leg=leg,
            leg_call_id=form["CallSid"] if leg else "",
            status=status,
            interaction_id=digits_parse(iid),
            duration_seconds=_seconds(form, "CallDuration"),
            agent_address=form.get("To", "") if leg == "agent" else "",
            caller=_caller(form, channel) if inbound else None,
            occurred_at=timezone.now(),
            raw=form,
        )
    ]


# ----------------------------------------------------------------------------------------- TwiML


def _say(target: VoiceResponse | Gather, text: str, flow: CallFlow) -> None:
    if text:
        target.say(text, voice=flow.voice, language=flow.language)


def _voicemail(response: VoiceResponse, channel: Channel, flow: CallFlow) -> None:
    _say(response, flow.voicemail_prompt, flow)
    response.record(
        action=hook_url(channel, "voice-done"),
        method="POST",
        max_length=flow.max_voicemail_seconds,
        play_beep=True,
        recording_status_callback=hook_url(channel, "recording"),
        recording_status_callback_method="POST",
        recording_status_callback_event="completed absent",
        transcribe=flow.transcribe or None,
        transcribe_callback=hook_url(channel, "transcription") if flow.transcribe else None,
    )


def _dial_agents(response: VoiceResponse, channel: Channel, plan: CallPlan) -> None:
    dial = Dial(action=hook_url(channel, "voice-dial"), method="POST", timeout=plan.flow.dial_timeout)
    for phone in plan.agent_phones:
        dial.number(
            phone,
            status_callback=hook_url(channel, "call-status", leg="agent"),
            status_callback_event="answered completed",
            status_callback_method="POST",
        )
    response.append(dial)


def voice_twiml(channel: Channel, hook: str, form: dict[str, str]) -> str:
    """The TwiML answer of a voice hook. A replayed request gets the same instructions."""
    response = VoiceResponse()
    if hook in ("voice", "voice-menu", "voice-dial"):
        plan = call_plan(channel=channel)
        flow = plan.flow
        if hook == "voice":
            _say(response, flow.greeting, flow)
            if plan.offer_agents:
                gather = response.gather(
                    num_digits=1, action=hook_url(channel, "voice-menu"), method="POST", timeout=5
                )
                _say(gather, flow.menu_prompt, flow)
            elif not plan.is_open:
                _say(response, flow.closed_message, flow)
            _voicemail(response, channel, flow)
        elif hook == "voice-menu":
            if form.get("Digits") == "1" and plan.offer_agents:
                _dial_agents(response, channel, plan)
            else:
                _voicemail(response, channel, flow)
        elif form.get("DialCallStatus") == "completed":
            response.hangup()
        else:
            _say(response, flow.nobody_available, flow)
            _voicemail(response, channel, flow)
    elif hook == "voice-done":
        plan = call_plan(channel=channel)
        _say(response, plan.flow.goodbye, plan.flow)
        response.hangup()
    return str(response)
