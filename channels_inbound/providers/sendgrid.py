"""SendGrid webhooks: Inbound Parse (parsed fields and raw MIME) and the signed Event Webhook
(PROTOCOLS.md G, I, J).

Hooks, both under the channel's unguessable URL token:

* ``inbound``: Inbound Parse has no signature, so the channel's config also holds HTTP Basic credentials
  (``inbound_basic_auth: {"username", "password"}``) that go into the Parse URL SendGrid calls
  (``https://user:pass@host/webhooks/sendgrid/<token>/inbound/``). It has no event id either: a mail is
  deduplicated on its Message-ID (or, lacking one, a hash of its content).
* ``events``: ECDSA P-256 / SHA-256 over ``timestamp + raw body``, verified with the channel's
  ``event_webhook_public_key`` (base64 SubjectPublicKeyInfo, as SendGrid shows it). Deduplicated on
  ``sg_event_id``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses, parseaddr
from html import unescape
from typing import Any

import nh3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from customers.services import Identifier, InvalidIdentifier, email_normalize
from engagement.inbound import DeliveryStatus, InboundAttachment, InboundEvent, InboundMessage, ThreadHints
from engagement.models import Channel
from engagement.sanitize import digits_parse, json_parse
from engagement.services.email_threading import (
    addresses_join,
    email_is_auto_reply,
    message_id_key,
    message_ids_parse,
)

from ..base import MalformedPayload, SignatureInvalid, WebhookAdapter
from ..registry import register

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

# SendGrid event → our interaction status ("" = no status news). anymail webhooks/sendgrid.py.
STATUS_MAP = {
    "processed": "sent",
    "deferred": "",
    "delivered": "delivered",
    "bounce": "undelivered",
    "dropped": "failed",
    "open": "read",
    "click": "read",
    "spamreport": "",
    "unsubscribe": "",
    "group_unsubscribe": "",
    "group_resubscribe": "",
}
ENGAGEMENT_MAP = {"open": "open", "click": "click"}
# SendGrid event → (consent source, purpose). "" purpose = every email purpose.
OPT_OUT_MAP = {
    "spamreport": ("spam_report", ""),
    "unsubscribe": ("provider_unsubscribe", "marketing"),
    "group_unsubscribe": ("provider_unsubscribe", "marketing"),
}
HARD_BOUNCE = ("hard_bounce", "")
MAX_ATTACHMENTS = 50


# ---------------------------------------------------------------- helpers


def _decode(value: str, charset: str | None) -> str:
    """Re-decode a form field Django read as latin-1 (byte-for-byte) with the charset SendGrid names."""
    data = value.encode("latin-1", errors="replace")
    try:
        return data.decode(charset or "utf-8", errors="replace").replace("\x00", "")
    except LookupError:
        return data.decode("utf-8", errors="replace").replace("\x00", "")


def _json_field(form: dict[str, str], name: str, default: Any) -> Any:
    raw = form.get(name, "")
    if not raw.strip():
        return default
    try:
        return json_parse(raw)
    except ValueError:
        raise MalformedPayload(f"{name} is not valid JSON") from None


# Where an HTML-only mail breaks a line: <br>, <br/>, <BR> and the end of a block.
_LINE_BREAK_RE = re.compile(r"<br\s*/?>|</(?:p|div|li|tr|h[1-6]|blockquote)\s*>", re.IGNORECASE)


def _html_to_text(html: str) -> str:
    text = unescape(nh3.clean(_LINE_BREAK_RE.sub(lambda m: m.group(0) + "\n", html), tags=set()))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _key_within(value: str, limit: int) -> str:
    return value if len(value) <= limit else "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def _mime_leaves(part: Message, out: list[Message]) -> None:
    if part.get_content_maintype() == "message" or not part.is_multipart():
        out.append(part)
        return
    for sub in part.get_payload():
        if isinstance(sub, Message):
            _mime_leaves(sub, out)


def _part_bytes(part: Message) -> bytes:
    if part.get_content_maintype() == "message":
        inner = part.get_payload()
        if isinstance(inner, list):
            return b"".join(m.as_bytes() for m in inner if isinstance(m, Message))
        return str(inner).encode()
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _text_content(part: Message) -> str:
    """A text part decoded by the stdlib; a charset Python does not know falls back to UTF-8 with
    replacement characters rather than failing the whole mail (SendGrid would retry it forever)."""
    try:
        return str(part.get_content()) if isinstance(part, EmailMessage) else _part_bytes(part).decode()
    except (LookupError, UnicodeDecodeError):
        return _part_bytes(part).decode("utf-8", errors="replace")


def _original_message_ids(leaves: list[Message]) -> list[str]:
    """Message-IDs of the message a delivery-status report (bounce) is about."""
    found = []
    for part in leaves:
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                found += message_ids_parse(inner[0].get("Message-ID"))
        elif ctype == "text/rfc822-headers":
            headers = HeaderParser(policy=policy.default).parsestr(_part_bytes(part).decode(errors="replace"))
            found += message_ids_parse(headers.get("Message-ID"))
    return found


class _Mail:
    """What we take from a mail, whichever way SendGrid posted it."""

    def __init__(self) -> None:
        self.headers: Message = EmailMessage()
        self.text = ""
        self.html = ""
        self.attachments: list[InboundAttachment] = []
        self.related_ids: list[str] = []


def _from_raw_mime(data: bytes) -> _Mail:
    msg = BytesParser(policy=policy.default).parsebytes(data)
    if not msg.keys():
        raise MalformedPayload("email does not hold an RFC 5322 message")
    mail = _Mail()
    mail.headers = msg
    leaves: list[Message] = []
    _mime_leaves(msg, leaves)
    texts: list[str] = []
    htmls: list[str] = []
    for n, part in enumerate(leaves, start=1):
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = part.get_filename() or ""
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            (texts if ctype == "text/plain" else htmls).append(_text_content(part))
            continue
        if ctype in ("message/delivery-status", "text/rfc822-headers") and disposition != "attachment":
            texts.append(_part_bytes(part).decode(errors="replace"))
            continue
        content_id = str(part.get("Content-ID", "")).strip().strip("<>")
        extension = {"message/rfc822": ".eml"}.get(ctype, "")
        mail.attachments.append(
            InboundAttachment(
                filename=filename or f"part{n}{extension}",
                content_type=ctype,
                content=_part_bytes(part),
                content_id=content_id,
                inline=disposition == "inline" or bool(content_id and disposition != "attachment"),
            )
        )
    mail.text = "\n".join(texts).replace("\x00", "")
    mail.html = "\n".join(htmls).replace("\x00", "")
    # An image the HTML shows through cid: is inline, whatever its Content-Disposition says.
    lowered = mail.html.lower()
    mail.attachments = [
        replace(a, inline=True) if a.content_id and f"cid:{a.content_id.lower()}" in lowered else a
        for a in mail.attachments
    ]
    mail.related_ids = _original_message_ids(leaves)
    return mail


def _from_parsed_fields(request: HttpRequest, form: dict[str, str]) -> _Mail:
    mail = _Mail()
    mail.headers = HeaderParser(policy=policy.default).parsestr(form.get("headers", ""))
    mail.text = form.get("text", "")
    mail.html = form.get("html", "")
    try:
        count = int(form.get("attachments") or 0)
    except ValueError:
        raise MalformedPayload(f"attachments must be a whole number, got {form['attachments']!r}") from None
    if not 0 <= count <= MAX_ATTACHMENTS:
        raise MalformedPayload(f"attachments must be between 0 and {MAX_ATTACHMENTS}")
    info = _json_field(form, "attachment-info", {})
    content_ids = _json_field(form, "content-ids", {})
    if not isinstance(info, dict) or not isinstance(content_ids, dict):
        raise MalformedPayload("attachment-info and content-ids must be JSON objects")
    cid_of = {str(part): str(cid) for cid, part in content_ids.items()}
    for n in range(1, count + 1):
        name = f"attachment{n}"
        upload = request.FILES.get(name)
        if upload is None:
            raise MalformedPayload(f"attachments is {count} but file part {name} is missing")
        meta: dict[str, Any] = info[name] if isinstance(info.get(name), dict) else {}
        content_id = str(meta.get("content-id") or cid_of.get(name, ""))
        mail.attachments.append(
            InboundAttachment(
                filename=str(meta.get("filename") or upload.name or name),
                content_type=str(meta.get("type") or upload.content_type or "application/octet-stream"),
                content=upload.read(),
                content_id=content_id,
                inline=bool(content_id),
            )
        )
    return mail


# ---------------------------------------------------------------- the adapter


@register
class SendGridAdapter(WebhookAdapter):
    provider = "sendgrid"
    hooks = ("inbound", "events")

    def max_body_bytes(self, hook: str) -> int:
        # A whole email with its attachments arrives in one Inbound Parse post; SendGrid does not retry a
        # 4xx, so a mail over the limit would be lost. Event Webhook batches reach about 768 KB.
        return int(settings.EMAIL_INBOUND_MAX_BYTES if hook == "inbound" else settings.EMAIL_EVENTS_MAX_BYTES)

    def validate_request(self, request: HttpRequest, channel: Channel) -> None:
        hook = request.resolver_match.kwargs.get("hook") if request.resolver_match else None
        if hook == "events":
            self._verify_event_signature(request, channel)
        else:
            self._verify_basic_auth(request, channel)

    def _verify_basic_auth(self, request: HttpRequest, channel: Channel) -> None:
        creds = channel.config.get("inbound_basic_auth") or {}
        username, password = str(creds.get("username") or ""), str(creds.get("password") or "")
        if not username or not password:
            raise SignatureInvalid("channel has no inbound Basic auth credentials")
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise SignatureInvalid("missing Basic authorization")
        try:
            given_user, _, given_password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise SignatureInvalid("malformed Basic authorization") from None
        user_ok = constant_time_compare(given_user, username)
        password_ok = constant_time_compare(given_password, password)
        if not (user_ok and password_ok):
            raise SignatureInvalid("Basic authorization does not match")

    def _verify_event_signature(self, request: HttpRequest, channel: Channel) -> None:
        key_b64 = str(channel.config.get("event_webhook_public_key") or "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        if not key_b64:
            raise SignatureInvalid("channel has no event webhook verification key")
        if not signature or not timestamp:
            raise SignatureInvalid(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
        try:
            key = load_der_public_key(base64.b64decode(key_b64))
            decoded = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureInvalid("signature or key is not valid base64 DER") from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise SignatureInvalid("event webhook key is not an ECDSA P-256 public key")
        try:
            key.verify(decoded, timestamp.encode() + request.body, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise SignatureInvalid(f"{SIGNATURE_HEADER} does not match") from None

    def parse_events(self, request: HttpRequest, channel: Channel, hook: str) -> list[InboundEvent]:
        if hook == "inbound":
            return [self._inbound(request, channel)]
        if hook == "events":
            return self._events(request)
        raise MalformedPayload(f"unknown hook {hook!r}")

    # -- Inbound Parse

    def _inbound(self, request: HttpRequest, channel: Channel) -> InboundMessage:
        if request.content_type != "multipart/form-data":
            raise MalformedPayload(f"expected multipart/form-data, got {request.content_type or 'nothing'}")
        # Read every field byte-for-byte, then decode each with the charset SendGrid reports for it.
        request.encoding = "latin-1"
        latin = {k: request.POST.get(k, "") for k in request.POST}
        try:
            charsets = json_parse(_decode(latin.get("charsets", ""), "utf-8") or "{}")
        except ValueError:
            raise MalformedPayload("charsets is not valid JSON") from None
        if not isinstance(charsets, dict):
            raise MalformedPayload("charsets must be a JSON object")
        form = {k: _decode(v, charsets.get(k)) for k, v in latin.items() if k != "email"}
        if "email" in latin:
            raw_mime = latin["email"].encode("latin-1", errors="replace")
            mail = _from_raw_mime(raw_mime)
            fingerprint = raw_mime
            form["email"] = raw_mime.decode("utf-8", errors="replace").replace("\x00", "")
        elif "headers" in latin or "from" in latin:
            mail = _from_parsed_fields(request, form)
            fingerprint = "\n".join(form.get(k, "") for k in ("headers", "from", "text", "html")).encode()
        else:
            raise MalformedPayload("neither an 'email' field (raw mode) nor 'headers'/'from' (parsed mode)")
        headers = mail.headers

        name, address = parseaddr(str(headers.get("From") or form.get("from") or ""))
        if not address:
            raise MalformedPayload("the mail has no From address")
        try:
            sender = email_normalize(address)
        except InvalidIdentifier as exc:
            raise MalformedPayload(f"From: {exc}") from exc

        envelope = _json_field(form, "envelope", {})
        if not isinstance(envelope, dict):
            raise MalformedPayload("envelope must be a JSON object")
        to = [a for _, a in getaddresses([str(v) for v in headers.get_all("To", [])] or [form.get("to", "")])]
        cc = [a for _, a in getaddresses([str(v) for v in headers.get_all("Cc", [])] or [form.get("cc", "")])]
        envelope_to = envelope.get("to") or []
        recipients = addresses_join(
            [*to, *cc, *(str(a) for a in envelope_to if isinstance(envelope_to, list))]
        )

        header_message_id = message_id_key(str(headers.get("Message-ID") or ""))
        message_id = header_message_id or "sha256:" + hashlib.sha256(fingerprint).hexdigest()
        in_reply_to = (message_ids_parse(str(headers.get("In-Reply-To") or "")) or [""])[0]
        references = tuple(message_ids_parse(str(headers.get("References") or ""))) + tuple(mail.related_ids)
        envelope_from = envelope.get("from") if "from" in envelope else None
        auto = email_is_auto_reply(
            headers, envelope_from=None if envelope_from is None else str(envelope_from)
        )
        subject = str(headers.get("Subject") or form.get("subject") or "")[:300]
        text = mail.text.strip() or _html_to_text(mail.html)
        return InboundMessage(
            # Scoped by channel (the same mail may reach two workspaces); it is also the interaction's
            # provider_message_id, hence at most 100 characters.
            provider_event_id=_key_within(f"{channel.pk}:{message_id}", 100),
            sender=Identifier("email", sender),
            body=text or subject,
            occurred_at=timezone.now(),
            sender_name=name[:200],
            subject=subject,
            attachments=tuple(mail.attachments),
            thread=ThreadHints(
                message_id=message_id,
                in_reply_to=in_reply_to,
                references=references,
                recipients=recipients,
            ),
            is_auto_reply=auto,
            metadata={
                "email": {
                    "mode": "raw" if "email" in latin else "parsed",
                    "subject": subject,
                    "from": str(headers.get("From") or form.get("from") or ""),
                    "to": list(addresses_join(to)),
                    "cc": list(addresses_join(cc)),
                    "message_id": message_id,
                    "in_reply_to": in_reply_to,
                    "references": list(references),
                    "date": str(headers.get("Date") or ""),
                    "html": mail.html,
                    "attachment_count": len(mail.attachments),
                    "auto_reply": auto,
                    "spam_score": form.get("spam_score", ""),
                    "spf": form.get("SPF", ""),
                    "dkim": form.get("dkim", ""),
                }
            },
            raw=form,
        )

    # -- Event Webhook

    def _events(self, request: HttpRequest) -> list[InboundEvent]:
        if request.content_type != "application/json":
            raise MalformedPayload(f"expected application/json, got {request.content_type or 'nothing'}")
        try:
            batch = json_parse(request.body)
        except ValueError:
            raise MalformedPayload("body is not valid JSON") from None
        if not isinstance(batch, list):
            raise MalformedPayload("expected a JSON array of events")
        events: list[InboundEvent] = []
        for n, item in enumerate(batch):
            if not isinstance(item, dict):
                raise MalformedPayload(f"event {n} is not a JSON object")
            missing = [k for k in ("event", "sg_event_id", "timestamp") if not item.get(k)]
            if missing:
                raise MalformedPayload(f"event {n}: missing required field(s): {', '.join(missing)}")
            event = self._event(n, item)
            if event is not None:
                events.append(event)
        return events

    def _event(self, n: int, item: dict[str, Any]) -> DeliveryStatus | None:
        kind = str(item["event"])
        if kind not in STATUS_MAP:
            logger.info("ignoring SendGrid event type %r (%s)", kind, item.get("sg_event_id"))
            return None
        try:
            occurred_at = datetime.fromtimestamp(int(item["timestamp"]), tz=UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            raise MalformedPayload(f"event {n}: timestamp must be unix seconds") from None
        iid = str(item.get("iid", ""))
        opt_out = OPT_OUT_MAP.get(kind, ("", ""))
        if kind == "bounce" and str(item.get("type", "bounce")) == "bounce":
            opt_out = HARD_BOUNCE
        error_code = str(item.get("status", ""))[:32] if kind in ("bounce", "dropped") else ""
        error_message = str(item.get("reason", ""))[:500] if kind in ("bounce", "dropped") else ""
        return DeliveryStatus(
            provider_event_id=str(item["sg_event_id"])[:200],
            # sg_message_id is the X-Message-Id of the send, a dot, and a per-recipient suffix.
            provider_message_id=str(item.get("sg_message_id", "")).split(".", 1)[0][:100],
            status=STATUS_MAP[kind],
            occurred_at=occurred_at,
            interaction_id=digits_parse(iid),
            error_code=error_code,
            error_message=error_message,
            engagement=ENGAGEMENT_MAP.get(kind, ""),
            engagement_details={k: item[k] for k in ("url", "useragent", "ip") if k in item},
            opt_out_source=opt_out[0],
            opt_out_purpose=opt_out[1],
            recipient=str(item.get("email", "")),
            raw={"provider": "sendgrid", **item},
        )
