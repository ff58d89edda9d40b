"""Twilio webhooks: incoming messages, message status callbacks (PROTOCOLS.md A-C) and, through
providers/twilio_voice.py, voice calls (F). One adapter serves every Twilio hook of a channel."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils import timezone
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from customers.identifiers import sms_sender_identifier
from customers.models import IdentityKind
from engagement.inbound import DeliveryStatus, InboundEvent, InboundMessage
from engagement.models import Channel
from engagement.sanitize import digits_parse

from ..base import MalformedPayload, SignatureInvalid, WebhookAdapter
from ..registry import register
from .twilio_errors import ERROR_REASONS, OPT_OUT_ERRORS
from .twilio_voice import (
    VOICE_HOOKS,
    call_status_events,
    form_ids_check,
    parse_voice_events,
    require_fields,
    sender_region,
    voice_twiml,
)

# Twilio MessageStatus (every value of PROTOCOLS.md C) → our interaction status. None: the status says
# nothing about a message we sent (receiving/received are inbound states), so the callback is ignored.
STATUS_MAP: dict[str, str | None] = {
    "queued": "queued",
    "accepted": "queued",
    "scheduled": "queued",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "partially_delivered": "delivered",
    "read": "read",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
    "receiving": None,
    "received": None,
}
MAX_MEDIA = 10
logger = logging.getLogger(__name__)


@register
class TwilioAdapter(WebhookAdapter):
    provider = "twilio"
    hooks = ("inbound", "status", *VOICE_HOOKS)

    def validate_request(self, request: HttpRequest, channel: Channel) -> None:
        signature = request.headers.get("X-Twilio-Signature", "")
        token = channel.config.get("auth_token") or settings.TWILIO_AUTH_TOKEN
        if not signature or not token:
            raise SignatureInvalid(
                "missing X-Twilio-Signature" if not signature else "channel has no auth token"
            )
        validator = RequestValidator(token)
        params = request.POST if request.method == "POST" else {}
        # The URL Twilio called: as this server saw it, or as the public origin we told Twilio.
        candidates = {request.build_absolute_uri(), f"{settings.PUBLIC_BASE_URL}{request.get_full_path()}"}
        if not any(validator.validate(url, params, signature) for url in candidates):
            raise SignatureInvalid("X-Twilio-Signature does not match")

    def parse_events(self, request: HttpRequest, channel: Channel, hook: str) -> list[InboundEvent]:
        if request.content_type != "application/x-www-form-urlencoded":
            raise MalformedPayload(
                f"expected application/x-www-form-urlencoded, got {request.content_type or 'no content type'}"
            )
        form = {k: request.POST.get(k, "") for k in request.POST}
        form_ids_check(form)
        if hook == "inbound":
            return [self._message(form, channel)]
        if hook == "status" and form.get("CallSid") and not form.get("MessageSid"):
            return list(call_status_events(form, request.GET, channel))  # an outbound call's progress
        if hook == "status":
            event = self._status(form, request.GET)
            return [event] if event is not None else []
        if hook in VOICE_HOOKS:
            return list(parse_voice_events(form, hook, request.GET, channel))
        raise MalformedPayload(f"unknown hook {hook!r}")

    def _message(self, form: dict[str, str], channel: Channel) -> InboundMessage:
        require_fields(form, "MessageSid", "From", "To")
        # Carriers deliver from numbers, short codes (68849) and alphanumeric sender IDs (AMAZON), and
        # some from national numbers without a country code: each is a customer of its own kind.
        sender = sms_sender_identifier(form["From"], region=sender_region(form, channel))
        try:
            num_media = int(form.get("NumMedia") or 0)
        except ValueError:
            raise MalformedPayload(f"NumMedia must be a whole number, got {form['NumMedia']!r}") from None
        if not 0 <= num_media <= MAX_MEDIA:
            raise MalformedPayload(f"NumMedia must be between 0 and {MAX_MEDIA}")
        media = []
        for n in range(num_media):
            url = form.get(f"MediaUrl{n}")
            if not url:
                raise MalformedPayload(f"NumMedia is {num_media} but MediaUrl{n} is missing")
            media.append({"url": url, "content_type": form.get(f"MediaContentType{n}", "")})
        if not form.get("Body") and not media:
            raise MalformedPayload("a message needs a Body or media")
        return InboundMessage(
            provider_event_id=form["MessageSid"],
            sender=sender,
            # A sender ID or short code is the name the customer's phone shows for them too.
            sender_name="" if sender.kind == IdentityKind.PHONE else sender.value[:200],
            body=form.get("Body", ""),
            occurred_at=timezone.now(),
            metadata={
                "to": form["To"],
                "num_segments": form.get("NumSegments", ""),
                "media": media,
                "from_country": form.get("FromCountry", ""),
            },
            raw=form,
        )

    def _status(self, form: dict[str, str], query: QueryDict) -> DeliveryStatus | None:
        require_fields(form, "MessageSid")
        raw_status = form.get("MessageStatus") or form.get("SmsStatus")
        if not raw_status:
            raise MalformedPayload("missing required field(s): MessageStatus")
        if raw_status not in STATUS_MAP:
            logger.warning("ignored unknown MessageStatus %r for %s", raw_status, form["MessageSid"])
            return None
        status = STATUS_MAP[raw_status]
        if status is None:
            return None
        iid = query.get("iid", "")
        code = form.get("ErrorCode", "")
        return DeliveryStatus(
            provider_event_id=f"{form['MessageSid']}:{raw_status}",
            provider_message_id=form["MessageSid"],
            status=status,
            interaction_id=digits_parse(iid),
            error_code=code,
            error_message=form.get("ErrorMessage") or ERROR_REASONS.get(code, ""),
            # 21610: the recipient replied STOP; Twilio blocks every message until they send START.
            opt_out_source="provider_error" if code in OPT_OUT_ERRORS else "",
            occurred_at=timezone.now(),
            raw=form,
        )

    def acknowledge(self, hook: str) -> HttpResponse:
        return HttpResponse(str(MessagingResponse()), content_type="text/xml")

    def respond(
        self, request: HttpRequest, channel: Channel, hook: str, events: list[InboundEvent]
    ) -> HttpResponse:
        if hook in VOICE_HOOKS:
            form = {k: request.POST.get(k, "") for k in request.POST}
            return HttpResponse(voice_twiml(channel, hook, form), content_type="text/xml")
        return self.acknowledge(hook)
