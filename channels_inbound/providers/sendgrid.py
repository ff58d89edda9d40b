"""SendGrid webhooks: Inbound Parse (parsed fields and raw MIME) and the signed Event Webhook
(PROTOCOLS.md G, I, J).

Hooks, both under the channel's unguessable URL token:

* ``inbound``: Inbound Parse has no signature, so the channel's config also holds HTTP Basic credentials
  (``inbound_basic_auth: {"username", "password"}``) that go into the Parse URL SendGrid calls
  (``https://user:pass@host/webhooks/sendgrid/<token>/inbound/``). It has no event id either: a mail is
  deduplicated on its Message-ID (or, lacking one, a hash of its content). The mail is read as mail
  clients read it (``channels_inbound.mail``: charsets, encoded headers, sender addresses); a part or
  side field that does not decode is kept as well as it can be and noted in
  ``metadata["email"]["problems"]``, never a reason to refuse the mail (SendGrid does not retry a 4xx).
  The stored event holds every posted field byte for byte (:func:`inbound_original_fields`).
* ``events``: ECDSA P-256 / SHA-256 over ``timestamp + raw body``, verified with the channel's
  ``event_webhook_public_key`` (base64 SubjectPublicKeyInfo, as SendGrid shows it). Deduplicated on
  ``sg_event_id``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import mimetypes
import re
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.errors import InvalidBase64LengthDefect
from email.message import Message
from email.parser import BytesParser, HeaderParser
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

from customers.services import Identifier
from engagement.inbound import DeliveryStatus, InboundAttachment, InboundEvent, InboundMessage, ThreadHints
from engagement.models import Channel
from engagement.sanitize import digits_parse, json_parse
from engagement.services.email_threading import (
    addresses_join,
    email_automated_reason,
    message_id_key,
    message_ids_parse,
)

from ..base import MalformedPayload, SignatureInvalid, WebhookAdapter
from ..mail import (
    charset_decode,
    flowed_decode,
    header_decode,
    header_text,
    header_unfold,
    html_charset_label,
    mail_sender,
    mailboxes_parse,
    text_guess,
)
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


def _json_field(form: dict[str, str], name: str, default: Any, problems: list[str]) -> Any:
    """A JSON form field; one that does not parse (or has the wrong shape) is noted in ``problems`` and
    read as ``default``: a broken side field never costs the mail."""
    raw = form.get(name, "")
    if not raw.strip():
        return default
    try:
        value = json_parse(raw)
    except ValueError:
        problems.append(f"{name} is not valid JSON; ignored")
        return default
    if not isinstance(value, type(default)):
        problems.append(f"{name} is not a JSON {type(default).__name__}; ignored")
        return default
    return value


# Where an HTML-only mail breaks a line: <br>, <br/>, <BR> and the end of a block.
_LINE_BREAK_RE = re.compile(r"<br\s*/?>|</(?:p|div|li|tr|h[1-6]|blockquote)\s*>", re.IGNORECASE)


def _html_to_text(html: str) -> str:
    text = unescape(nh3.clean(_LINE_BREAK_RE.sub(lambda m: m.group(0) + "\n", html), tags=set()))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _key_within(value: str, limit: int) -> str:
    return value if len(value) <= limit else "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def _generated_name(stem: str, content_type: str) -> str:
    extension = {"message/rfc822": ".eml", "message/global": ".eml", "text/plain": ".txt"}.get(
        content_type
    ) or (mimetypes.guess_extension(content_type) or "")
    return f"{stem}{extension}"


class _WholeMessage(Message):
    """A compat32 message whose ``message/*`` parts (an attached or bounced mail) the stdlib parser
    keeps as their bytes instead of parsing them into a sub-message, which could only give back a
    re-serialization: the stored attachment is the mail exactly as it was sent."""

    def get_content_maintype(self) -> str:
        maintype = super().get_content_maintype()
        if maintype == "message" and self.get_content_type() != "message/delivery-status":
            return "application"
        return maintype


def _parse_bytes(data: bytes) -> Message:
    return BytesParser(_class=_WholeMessage, policy=policy.compat32).parsebytes(data)


def _headers(msg: Message) -> dict[str, str]:
    """Lower-case name → raw value (unfolded) of each header's first occurrence."""
    found: dict[str, str] = {}
    for name, value in msg.raw_items():
        found.setdefault(name.strip().lower(), header_unfold(str(value)))
    return found


def _headers_all(msg: Message, name: str) -> list[str]:
    return [header_unfold(str(v)) for n, v in msg.raw_items() if n.strip().lower() == name]


def _mime_leaves(part: Message, out: list[Message]) -> None:
    if part.get_content_type() == "message/delivery-status" or not part.is_multipart():
        out.append(part)
        return
    for sub in part.get_payload():
        if isinstance(sub, Message):
            _mime_leaves(sub, out)


def _base64_prefix(data: bytes) -> bytes:
    """What a mail client makes of base64 the stdlib gives up on (a truncated or damaged part): the
    characters outside the alphabet skipped, a dangling last character dropped, the padding restored."""
    clean = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    clean = clean[: len(clean) - (len(clean) % 4 == 1)]
    return base64.b64decode(clean + b"=" * (-len(clean) % 4))


def _part_bytes(part: Message) -> bytes:
    """The part's content, its transfer encoding undone by the stdlib's tolerant decoders (bad base64
    is decoded as far as it goes; an unknown encoding leaves the bytes as they came)."""
    payload = part.get_payload()
    if isinstance(payload, list):  # message/delivery-status: blocks of fields
        return b"\n".join(m.as_bytes() for m in payload if isinstance(m, Message))
    data = part.get_payload(decode=True)
    if any(isinstance(d, InvalidBase64LengthDefect) for d in part.defects) and isinstance(payload, str):
        data = _base64_prefix(payload.encode("ascii", errors="surrogateescape"))
    return data if isinstance(data, bytes) else b""


def _usable_filename(name: str) -> str:
    """The file name a mail client shows: RFC 2047 encoded words decoded, the path dropped; "" when
    nothing is left (``""``, ``"."``, ``"../"``)."""
    return re.split(r"[\\/]", header_decode(name))[-1].strip().strip(".").strip()


def _part_filename(part: Message) -> str:
    """Content-Disposition filename (RFC 2231) or Content-Type name, as mail clients show it. The two
    headers are read raw and their 8-bit bytes decoded first (the stdlib would turn them into U+FFFD)."""
    probe = Message()
    for name, value in part.raw_items():
        if name.strip().lower() in ("content-disposition", "content-type"):
            probe[name] = header_text(header_unfold(str(value)))
    try:
        filename = probe.get_filename() or ""
    except (LookupError, UnicodeError, ValueError):
        filename = ""
    return _usable_filename(str(filename))


def _original_message_ids(leaves: list[Message]) -> list[str]:
    """Message-IDs of the message a delivery-status report (bounce) is about."""
    found = []
    for part in leaves:
        if part.get_content_type() in ("message/rfc822", "message/global", "text/rfc822-headers"):
            inner = HeaderParser(policy=policy.compat32).parsestr(
                _part_bytes(part).decode("ascii", errors="surrogateescape"), headersonly=True
            )
            found += message_ids_parse(_headers(inner).get("message-id"))
    return found


class _Mail:
    """What we take from a mail, whichever way SendGrid posted it."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.to: list[str] = []
        self.cc: list[str] = []
        self.text = ""
        self.html = ""
        self.attachments: list[InboundAttachment] = []
        self.related_ids: list[str] = []
        self.problems: list[str] = []
        # Parsed mode: each file part as posted (field, filename, content type, size, SHA-256).
        self.files: list[dict[str, Any]] = []


def _from_raw_mime(data: bytes) -> _Mail:
    msg = _parse_bytes(data)
    if not msg.keys():
        raise MalformedPayload("email does not hold an RFC 5322 message")
    mail = _Mail()
    mail.headers = _headers(msg)
    mail.to, mail.cc = _headers_all(msg, "to"), _headers_all(msg, "cc")
    leaves: list[Message] = []
    _mime_leaves(msg, leaves)
    texts: list[str] = []
    htmls: list[str] = []
    for n, part in enumerate(leaves, start=1):
        try:
            _read_leaf(n, part, mail, texts, htmls)
        except Exception as exc:  # one unreadable part never costs the rest of the mail
            logger.warning("kept undecoded MIME part %s: %s", n, exc, exc_info=True)
            mail.problems.append(f"part {n} could not be read ({type(exc).__name__}); kept as it came")
            raw = part.get_payload()
            mail.attachments.append(
                InboundAttachment(
                    filename=f"part{n}.bin",
                    content_type="application/octet-stream",
                    content=raw.encode("utf-8", errors="surrogateescape") if isinstance(raw, str) else b"",
                    content_id="",
                    inline=False,
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


def _read_leaf(n: int, part: Message, mail: _Mail, texts: list[str], htmls: list[str]) -> None:
    ctype = part.get_content_type()
    if part.get_content_maintype() == "multipart":
        # A multipart the parser could not split (no or wrong boundary): mail clients show its text.
        mail.problems.append(f"part {n} is {ctype} without a usable boundary; shown as text")
        ctype = "text/plain"
    disposition = (part.get_content_disposition() or "").lower()
    filename = _part_filename(part)
    content = _part_bytes(part)
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        label = part.get_content_charset() or (html_charset_label(content) if ctype == "text/html" else "")
        text = charset_decode(content, label)
        if ctype == "text/plain" and str(part.get_param("format") or "").lower() == "flowed":
            text = flowed_decode(text, delsp=str(part.get_param("delsp") or "").lower() == "yes")
        (texts if ctype == "text/plain" else htmls).append(text)
        return
    if ctype in ("message/delivery-status", "text/rfc822-headers") and disposition != "attachment":
        texts.append(charset_decode(content, part.get_content_charset()))
        return
    content_id = header_unfold(str(part.get("Content-ID", ""))).strip().strip("<>")
    mail.attachments.append(
        InboundAttachment(
            filename=filename or _generated_name(f"part{n}", ctype),
            content_type=ctype,
            content=content,
            content_id=content_id,
            inline=disposition == "inline" or bool(content_id and disposition != "attachment"),
        )
    )


_ATTACHMENT_FIELD_RE = re.compile(r"^attachment(\d+)$")


def _body_file_parts(request: HttpRequest) -> dict[str, tuple[str, str, bytes]]:
    """Every file part of the multipart body by field name → (filename, content type, bytes), read
    with the stdlib MIME parser. Only needed when Django's parser left a part out: it skips a file
    part whose filename is empty or sanitises to nothing (``filename=""``, ``"."``, ``"/"``)."""
    header = f"Content-Type: {request.META.get('CONTENT_TYPE', '')}\r\n\r\n".encode("latin-1", "replace")
    found: dict[str, tuple[str, str, bytes]] = {}
    for part in _parse_bytes(header + request.body).get_payload() or []:
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        if isinstance(name, str) and _ATTACHMENT_FIELD_RE.match(name) and filename is not None:
            payload = part.get_payload()
            data = (
                part.get_payload(decode=True)
                if isinstance(payload, str)
                else b"".join(m.as_bytes() for m in payload if isinstance(m, Message))
            )
            found[name] = (str(filename), part.get_content_type(), data if isinstance(data, bytes) else b"")
    return found


def _from_parsed_fields(request: HttpRequest, form: dict[str, str], problems: list[str]) -> _Mail:
    mail = _Mail()
    mail.problems = problems
    header_block = HeaderParser(policy=policy.compat32).parsestr(form.get("headers", ""), headersonly=True)
    mail.headers = _headers(header_block)
    mail.to = _headers_all(header_block, "to") or [form.get("to", "")]
    mail.cc = _headers_all(header_block, "cc") or [form.get("cc", "")]
    mail.text = form.get("text", "")
    if (
        header_block.get_content_type() == "text/plain"
        and str(header_block.get_param("format")).lower() == "flowed"
    ):
        mail.text = flowed_decode(mail.text, delsp=str(header_block.get_param("delsp")).lower() == "yes")
    mail.html = form.get("html", "")
    declared = form.get("attachments", "").strip() or "0"
    count = int(declared) if declared.isdigit() else 0
    if not declared.isdigit():
        problems.append(f"attachments is {declared!r}, not a whole number; the file parts were counted")
    names = {f"attachment{n}" for n in range(1, min(count, MAX_ATTACHMENTS) + 1)}
    names |= {k for k in request.FILES if _ATTACHMENT_FIELD_RE.match(k)}
    missing = names - set(request.FILES)
    from_body = _body_file_parts(request) if missing or not declared.isdigit() else {}
    names |= set(from_body)
    info = _json_field(form, "attachment-info", {}, problems)
    content_ids = _json_field(form, "content-ids", {}, problems)
    cid_of = {str(part): str(cid) for cid, part in content_ids.items()}
    for name in sorted(names, key=lambda k: int(k[len("attachment") :])):
        meta: dict[str, Any] = info[name] if isinstance(info.get(name), dict) else {}
        upload = request.FILES.get(name)
        if upload is not None:
            posted_name, posted_type, content = upload.name or "", upload.content_type or "", upload.read()
        elif name in from_body:
            posted_name, posted_type, content = from_body[name]
        else:
            problems.append(f"{name} was announced but not posted")
            continue
        mail.files.append(
            {
                "field": name,
                "filename": posted_name,
                "content_type": posted_type,
                "size": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
            }
        )
        content_type = str(meta.get("type") or posted_type or "application/octet-stream")
        filename = _usable_filename(str(meta.get("filename") or "")) or _usable_filename(posted_name)
        if not filename:
            filename = _generated_name(name, content_type)
            problems.append(f"{name} has no filename; kept as {filename}")
        content_id = str(meta.get("content-id") or cid_of.get(name, ""))
        mail.attachments.append(
            InboundAttachment(
                filename=filename,
                content_type=content_type,
                content=content,
                content_id=content_id,
                inline=bool(content_id),
            )
        )
    return mail


def _original(fields: dict[str, bytes], files: list[dict[str, Any]]) -> dict[str, Any]:
    """What SendGrid posted, kept exactly: each form field as text when its bytes are UTF-8 (without
    NUL, which PostgreSQL's JSON cannot hold), else as base64; the file parts by name, size and
    SHA-256 (their bytes are the stored attachments). :func:`inbound_original_fields` reads it back."""
    text: dict[str, str] = {}
    encoded: dict[str, str] = {}
    for name, data in fields.items():
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            value = "\x00"
        if "\x00" in value:
            encoded[name] = base64.b64encode(data).decode("ascii")
        else:
            text[name] = value
    return {"fields": text, "fields_base64": encoded, "files": files}


def inbound_original_fields(payload: dict[str, Any]) -> dict[str, bytes]:
    """The exact bytes of every form field of a stored Inbound Parse post (raw mode's ``email`` is
    the mail byte for byte)."""
    fields = {k: str(v).encode("utf-8") for k, v in (payload.get("fields") or {}).items()}
    fields.update({k: base64.b64decode(str(v)) for k, v in (payload.get("fields_base64") or {}).items()})
    return fields


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
        # Django reads every field as latin-1, i.e. byte for byte; each is then decoded with the charset
        # SendGrid reports for it (WHATWG labels, see channels_inbound.mail).
        request.encoding = "latin-1"
        posted = {k: request.POST.get(k, "").encode("latin-1") for k in request.POST}
        problems: list[str] = []
        charsets = _json_field(
            {"charsets": text_guess(posted.get("charsets", b""))}, "charsets", {}, problems
        )
        form = {
            k: charset_decode(v, str(charsets.get(k) or "")).replace("\x00", "")
            for k, v in posted.items()
            if k != "email"
        }
        if "email" in posted:
            raw_mime = posted["email"]
            mail = _from_raw_mime(raw_mime)
            mail.problems[:0] = problems
            fingerprint = raw_mime
        elif "headers" in posted or "from" in posted:
            mail = _from_parsed_fields(request, form, problems)
            fingerprint = "\n".join(form.get(k, "") for k in ("headers", "from", "text", "html")).encode()
        else:
            raise MalformedPayload("neither an 'email' field (raw mode) nor 'headers'/'from' (parsed mode)")
        headers = mail.headers

        envelope = _json_field(form, "envelope", {}, mail.problems)
        envelope_from = str(envelope["from"]) if envelope.get("from") is not None else None
        from_header = headers.get("from") or form.get("from", "")
        sender = mail_sender(
            from_header=from_header,
            sender_header=headers.get("sender", ""),
            envelope_from=envelope_from or "",
        )
        if sender is None:
            raise MalformedPayload("the mail has no usable From, Sender or envelope address")
        if sender.source != "from":
            mail.problems.append(f"From {from_header!r} has no usable address; the {sender.source} was used")

        to = [b.address for v in mail.to for b in mailboxes_parse(v)[0]]
        cc = [b.address for v in mail.cc for b in mailboxes_parse(v)[0]]
        envelope_to = envelope.get("to") if isinstance(envelope.get("to"), list) else []
        recipients = addresses_join([*to, *cc, *(str(a) for a in envelope_to)])

        header_message_id = message_id_key(headers.get("message-id", ""))
        message_id = header_message_id or "sha256:" + hashlib.sha256(fingerprint).hexdigest()
        in_reply_to = (message_ids_parse(headers.get("in-reply-to", "")) or [""])[0]
        references = tuple(message_ids_parse(headers.get("references", ""))) + tuple(mail.related_ids)
        decoded = {name: header_decode(value) for name, value in headers.items()}
        automated = email_automated_reason(
            headers=decoded, envelope_from=envelope_from, sender=sender.address
        )
        subject = (decoded.get("subject") or form.get("subject", "")).strip()[:300]
        text = mail.text.strip() or _html_to_text(mail.html)
        return InboundMessage(
            # Scoped by channel (the same mail may reach two workspaces); it is also the interaction's
            # provider_message_id, hence at most 100 characters.
            provider_event_id=_key_within(f"{channel.pk}:{message_id}", 100),
            sender=Identifier("email", sender.address),
            body=text or subject,
            occurred_at=timezone.now(),
            sender_name=sender.name,
            subject=subject,
            attachments=tuple(mail.attachments),
            thread=ThreadHints(
                message_id=message_id,
                in_reply_to=in_reply_to,
                references=references,
                recipients=recipients,
            ),
            is_auto_reply=bool(automated),
            metadata={
                "email": {
                    "mode": "raw" if "email" in posted else "parsed",
                    "subject": subject,
                    "from": header_decode(from_header),
                    "from_name": sender.name,
                    "from_addresses": list(sender.from_addresses) or [sender.address],
                    "sender_source": sender.source,
                    "to": list(addresses_join(to)),
                    "cc": list(addresses_join(cc)),
                    "message_id": message_id,
                    "in_reply_to": in_reply_to,
                    "references": list(references),
                    "date": decoded.get("date", ""),
                    "html": mail.html,
                    "attachment_count": len(mail.attachments),
                    "auto_reply": bool(automated),
                    "automated_reason": automated,
                    "problems": mail.problems,
                    "spam_score": form.get("spam_score", ""),
                    "spf": form.get("SPF", ""),
                    "dkim": form.get("dkim", ""),
                }
            },
            raw=_original(posted, mail.files),
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
