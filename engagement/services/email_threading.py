"""Email threading: reply addresses, Message-IDs, which conversation a mail belongs to, and safe HTML.

A customer's email joins a conversation by, in this order (PROTOCOLS.md J; Chatwoot's mailbox rules):

1. a per-conversation reply address among its recipients, ``reply+<token>@<inbound domain>``, where the
   token is the conversation id and an HMAC of it (unguessable, no lookup table);
2. its ``In-Reply-To``, then its ``References`` (newest first), against the Message-IDs we sent and
   received on the channel;
3. anything else opens a new conversation.

A match only counts within the channel and for the same customer; an auto-reply or bounce (whose sender
is often a mailer daemon) is filed under the conversation's customer instead.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import nh3
from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac

from customers.models import Customer
from customers.services import Identifier, customer_resolve
from engagement.models import Attachment, Channel, Conversation, Interaction

from .conversations import conversation_open

REPLY_PREFIX = "reply+"
MAX_REFERENCES = 20
_MSGID_RE = re.compile(r"<([^<>\s]+)>")
_REPLY_TOKEN_RE = re.compile(r"^reply\+(\d+)-([0-9a-f]{20})$")
UNSUBSCRIBE_SALT = "engagement.email.unsubscribe"


# ---------------------------------------------------------------- Message-IDs


def message_id_key(raw: str) -> str:
    """The form we store and compare: no angle brackets or whitespace; hashed if absurdly long."""
    value = raw.strip()
    found = _MSGID_RE.search(value)
    if found:
        value = found.group(1)
    value = value.strip("<> \t\r\n")
    if len(value) > 200:
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return value


def message_ids_parse(header: str | None) -> list[str]:
    """Every Message-ID in an ``In-Reply-To`` or ``References`` header, in order."""
    if not header:
        return []
    found = _MSGID_RE.findall(str(header))
    if not found:  # some clients drop the brackets
        found = [part for part in str(header).split() if "@" in part]
    return [message_id_key(v) for v in found]


def _domain(channel: Channel) -> str:
    return str(channel.config.get("sending_domain") or channel.address.rpartition("@")[2] or "localhost")


def message_id_generate(*, channel: Channel, interaction_id: int) -> str:
    """Our Message-ID for an outbound interaction (key form). Deterministic, so a retry reuses it."""
    mac = salted_hmac("engagement.email.message-id", str(interaction_id), algorithm="sha256").hexdigest()[:12]
    return f"i{interaction_id}.{mac}@{_domain(channel)}"


# ---------------------------------------------------------------- reply-to addresses


def _reply_mac(conversation_id: int) -> str:
    return salted_hmac("engagement.email.reply-to", str(conversation_id), algorithm="sha256").hexdigest()[:20]


def reply_address(*, conversation: Conversation, channel: Channel) -> str:
    """``reply+<id>-<hmac>@<inbound domain>`` for the conversation (config ``inbound_domain``)."""
    domain = channel.config.get("inbound_domain") or _domain(channel)
    return f"{REPLY_PREFIX}{conversation.pk}-{_reply_mac(conversation.pk)}@{domain}"


def reply_address_conversation_id(address: str) -> int | None:
    """The conversation id a reply address names, or None if it is not one of ours (checked HMAC)."""
    local = address.strip().strip("<>").rpartition("@")[0].lower()
    found = _REPLY_TOKEN_RE.match(local)
    if not found:
        return None
    conversation_id = int(found.group(1))
    return conversation_id if constant_time_compare(found.group(2), _reply_mac(conversation_id)) else None


# ---------------------------------------------------------------- finding the conversation


class ThreadHintsLike(Protocol):
    @property
    def message_id(self) -> str: ...
    @property
    def in_reply_to(self) -> str: ...
    @property
    def references(self) -> tuple[str, ...]: ...
    @property
    def recipients(self) -> tuple[str, ...]: ...


def email_conversation_match(*, channel: Channel, thread: ThreadHintsLike) -> Conversation | None:
    """The conversation the mail's reply address or references point at, on ``channel``; locked."""
    candidates = Conversation.objects.select_for_update().filter(channel=channel)
    for address in thread.recipients:
        conversation_id = reply_address_conversation_id(address)
        if conversation_id is not None:
            found = candidates.filter(pk=conversation_id).first()
            if found is not None:
                return found
    keys = [message_id_key(thread.in_reply_to)] if thread.in_reply_to else []
    keys += [message_id_key(r) for r in reversed(thread.references)]
    keys = [k for k in dict.fromkeys(keys) if k]
    if not keys:
        return None
    rows = dict(
        Interaction.objects.filter(
            workspace_id=channel.workspace_id,
            channel=channel,
            email_message_id__in=keys,
            conversation__isnull=False,
        ).values_list("email_message_id", "conversation_id")
    )
    for key in keys:
        if key in rows:
            return candidates.filter(pk=rows[key]).first()
    return None


def email_conversation_find_or_open(
    *,
    channel: Channel,
    sender: Identifier,
    sender_name: str,
    thread: ThreadHintsLike,
    subject: str,
    is_auto_reply: bool,
    at: datetime,
) -> tuple[Customer, Conversation, bool]:
    """Resolve the customer and the conversation of an inbound email. Returns (customer, conv, opened).

    Runs in the caller's transaction. ``sender`` is already normalized.
    """
    conversation = email_conversation_match(channel=channel, thread=thread)
    if conversation is not None and is_auto_reply:
        # Bounces come from MAILER-DAEMON: file them with the conversation they answer.
        return conversation.customer, conversation, False
    customer, _ = customer_resolve(
        workspace=channel.workspace, identifier=sender, channel_kind=channel.kind, display_name=sender_name
    )
    if conversation is not None and conversation.customer_id == customer.pk:
        return customer, conversation, False
    return customer, conversation_open(customer=customer, channel=channel, at=at, subject=subject), True


# ---------------------------------------------------------------- attachments


class AttachmentLike(Protocol):
    @property
    def filename(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def content(self) -> bytes: ...
    @property
    def content_id(self) -> str: ...
    @property
    def inline(self) -> bool: ...


def _safe_filename(name: str) -> str:
    base = re.split(r"[\\/]", name)[-1].strip().strip(".")
    base = re.sub(r"[^\w.\- ]+", "_", base)[:200]
    return base or "attachment"


def interaction_attachments_store(
    *, interaction: Interaction, attachments: Sequence[AttachmentLike]
) -> list[Attachment]:
    """Save each file through Django's storage API and link it to the interaction."""
    stored = []
    for item in attachments:
        name = _safe_filename(item.filename)
        attachment = Attachment(
            workspace_id=interaction.workspace_id,
            interaction=interaction,
            filename=name,
            content_type=(item.content_type or "application/octet-stream")[:150],
            size=len(item.content),
            content_id=item.content_id.strip("<>")[:255],
            inline=item.inline,
        )
        attachment.file.save(name, ContentFile(item.content), save=False)
        attachment.save()
        stored.append(attachment)
    return stored


# ---------------------------------------------------------------- auto-replies and bounces


# Precedence values that mark list or bulk mail (RFC 3834 section 2; RFC 2076 3.9).
_AUTOMATED_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
# Headers whose mere presence marks a message sent by a program or a list: vendor auto-responder marks,
# RFC 2369 / RFC 2919 list headers, Exim's bounce header, procmail's loop guard.
_AUTOMATED_HEADERS = (
    "x-autoreply",
    "x-autorespond",
    "x-autoreply-from",
    "x-mail-autoreply",
    "list-id",
    "list-unsubscribe",
    "x-failed-recipients",
)
_NULL_SENDERS = frozenset({"", "<>", "mailer-daemon", "postmaster"})


def email_automated_reason(
    *, headers: Mapping[str, str], envelope_from: str | None = None, sender: str = ""
) -> str:
    """Why a received mail was sent by a program rather than a person, or "" if it was not.

    ``headers`` maps lower-case header names to their (first) decoded value. The rules (RFC 3834
    section 2, which says a responder must not answer these, and RFC 3464 for bounces):
    ``Auto-Submitted`` other than ``no``; ``Precedence`` (or ``X-Precedence``) bulk, junk, list or
    auto_reply; ``X-Autoreply``/``X-Autorespond`` and similar vendor marks; ``List-Id`` or
    ``List-Unsubscribe`` (mailing-list traffic); Microsoft's ``X-Auto-Response-Suppress`` set to
    suppress everything or out-of-office answers; a delivery or disposition report
    (``multipart/report``); a null envelope sender or ``Return-Path`` (``<>``), or one, or a From
    address, whose local part is ``MAILER-DAEMON``/``postmaster``. Such mail is recorded but never
    answered automatically.
    """
    auto_submitted = headers.get("auto-submitted", "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    for name in ("precedence", "x-precedence"):
        precedence = headers.get(name, "").strip().lower()
        if precedence in _AUTOMATED_PRECEDENCE:
            return f"{name.title()}: {precedence}"
    for name in _AUTOMATED_HEADERS:
        if name in headers:
            return f"{name.title()} header"
    suppress = {v.strip().lower() for v in headers.get("x-auto-response-suppress", "").split(",")}
    if suppress & {"all", "oof", "autoreply"}:
        return "X-Auto-Response-Suppress header"
    if headers.get("content-type", "").strip().lower().startswith("multipart/report"):
        return "delivery or disposition report"
    return_paths = [headers["return-path"]] if "return-path" in headers else []
    if envelope_from is not None:
        return_paths.append(envelope_from)
    for path in return_paths:
        local = path.strip().strip("<>").rpartition("@")[0] or path.strip().strip("<>")
        if local.strip().lower() in _NULL_SENDERS:
            return "null return path" if not local.strip() else f"return path {local.strip()}"
    if sender.rpartition("@")[0].lower() in _NULL_SENDERS - {""}:
        return f"sender {sender}"
    return ""


# ---------------------------------------------------------------- outbound


@dataclass(frozen=True)
class EmailEnvelope:
    subject: str
    headers: dict[str, str]
    reply_to: str


def _reply_subject(subject: str) -> str:
    subject = subject.strip()
    if not subject:
        return ""
    return subject if re.match(r"^(re|aw|sv)(\[\d+\])?:", subject, re.IGNORECASE) else f"Re: {subject}"


def unsubscribe_token(*, customer_id: int, channel_id: int, interaction_id: int) -> str:
    return signing.dumps({"c": customer_id, "ch": channel_id, "i": interaction_id}, salt=UNSUBSCRIBE_SALT)


def unsubscribe_token_read(token: str) -> dict[str, int] | None:
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), int) for k in ("c", "ch", "i")):
        return None
    return data


def unsubscribe_url(*, customer_id: int, channel_id: int, interaction_id: int) -> str:
    token = unsubscribe_token(customer_id=customer_id, channel_id=channel_id, interaction_id=interaction_id)
    return settings.PUBLIC_BASE_URL + _unsubscribe_path().replace(_SLOT, token)


_SLOT = "TOKEN-SLOT"


@functools.cache
def _unsubscribe_path() -> str:
    """The unsubscribe URL's path with a mark for the token: reversed once (a batch builds 1,000)."""
    return reverse("email-unsubscribe", kwargs={"token": _SLOT})


AUTOMATED_KEY_PREFIXES = ("automation:", "keyword:")


def email_auto_submitted(*, interaction: Interaction) -> str:
    """The RFC 3834 ``Auto-Submitted`` value of an outbound mail, or "" for one an agent wrote.

    ``auto-replied`` for an automatic answer to a message (an automation rule's reply, a keyword
    confirmation: it has ``automation_rule`` or an ``automation:``/``keyword:`` idempotency key);
    ``auto-generated`` for any other mail no person wrote (campaigns, journeys, API sends without an
    author). The other side's auto-responders then stay silent, so two responders cannot loop.
    """
    key = interaction.idempotency_key or ""
    if interaction.automation_rule_id is not None or key.startswith(AUTOMATED_KEY_PREFIXES):
        return "auto-replied"
    if interaction.author_id is None:
        return "auto-generated"
    return ""


def email_outbound_prepare(*, interaction: Interaction) -> EmailEnvelope:
    """Subject and threading headers of an outbound email; gives it its Message-ID once.

    Precondition: ``interaction`` is outbound on an email channel and locked by the caller's
    transaction. ``In-Reply-To``/``References`` follow the newest earlier mail of the conversation.
    Marketing mail (``metadata["purpose"] == "marketing"``) carries RFC 8058 one-click unsubscribe;
    mail no agent wrote carries ``Auto-Submitted`` (:func:`email_auto_submitted`).
    """
    channel = interaction.channel
    assert channel is not None, "the send service checked it"
    conversation = interaction.conversation
    headers: dict[str, str] = {}
    email_meta: dict[str, Any] = dict(interaction.metadata.get("email") or {})
    if not interaction.email_message_id:
        interaction.email_message_id = message_id_generate(channel=channel, interaction_id=interaction.pk)
    headers["Message-ID"] = f"<{interaction.email_message_id}>"
    subject = str(email_meta.get("subject") or "")
    reply_to = ""
    if conversation is not None:
        parent = (
            Interaction.objects.filter(conversation=conversation, created_at__lte=interaction.created_at)
            .exclude(pk=interaction.pk)
            .exclude(email_message_id="")
            .order_by("-created_at", "-id")
            .first()
        )
        if parent is not None:
            parent_refs = list((parent.metadata.get("email") or {}).get("references") or [])
            references = [*parent_refs, parent.email_message_id]
            if len(references) > MAX_REFERENCES:  # keep the root and the newest (RFC 5322 3.6.4 advice)
                references = [references[0], *references[-(MAX_REFERENCES - 1) :]]
            headers["In-Reply-To"] = f"<{parent.email_message_id}>"
            headers["References"] = " ".join(f"<{r}>" for r in references)
            email_meta["in_reply_to"] = parent.email_message_id
            email_meta["references"] = references
        if not subject:
            subject = _reply_subject(conversation.subject) if parent is not None else conversation.subject
        reply_to = reply_address(conversation=conversation, channel=channel)
    if not subject:
        subject = f"Message from {channel.workspace.name}"
    auto_submitted = email_auto_submitted(interaction=interaction)
    if auto_submitted:
        headers["Auto-Submitted"] = auto_submitted
    if interaction.metadata.get("purpose") == "marketing":
        url = unsubscribe_url(
            customer_id=interaction.customer_id, channel_id=channel.pk, interaction_id=interaction.pk
        )
        headers["List-Unsubscribe"] = f"<{url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email_meta.update(subject=subject, reply_to=reply_to, message_id=interaction.email_message_id)
    interaction.metadata = {**interaction.metadata, "email": email_meta}
    interaction.save(update_fields=["email_message_id", "metadata"])
    return EmailEnvelope(subject=subject, headers=headers, reply_to=reply_to)


def email_broadcast_envelope(*, interaction: Interaction) -> EmailEnvelope:
    """The envelope of a broadcast mail (a campaign's) sent in a batch of many recipients, without a
    query: its own Message-ID (it starts a thread: no In-Reply-To), the subject it was queued with,
    RFC 8058 one-click unsubscribe for marketing, ``Auto-Submitted``. A batch shares one Reply-To, so it
    is the channel's ``reply@<inbound domain>``: the customer's answer is matched to the conversation by
    its ``In-Reply-To`` (our Message-ID). Sets ``email_message_id`` and ``metadata["email"]`` on the
    object only; the caller saves them (in bulk)."""
    channel = interaction.channel
    assert channel is not None, "the batch claimed email interactions only"
    email_meta: dict[str, Any] = dict(interaction.metadata.get("email") or {})
    if not interaction.email_message_id:
        interaction.email_message_id = message_id_generate(channel=channel, interaction_id=interaction.pk)
    headers = {"Message-ID": f"<{interaction.email_message_id}>"}
    subject = str(email_meta.get("subject") or "") or f"Message from {channel.name}"
    auto_submitted = email_auto_submitted(interaction=interaction)
    if auto_submitted:
        headers["Auto-Submitted"] = auto_submitted
    if interaction.metadata.get("purpose") == "marketing":
        url = unsubscribe_url(
            customer_id=interaction.customer_id, channel_id=channel.pk, interaction_id=interaction.pk
        )
        headers["List-Unsubscribe"] = f"<{url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    reply_to = f"reply@{channel.config.get('inbound_domain') or _domain(channel)}"
    email_meta.update(subject=subject, reply_to=reply_to, message_id=interaction.email_message_id)
    interaction.metadata = {**interaction.metadata, "email": email_meta}
    return EmailEnvelope(subject=subject, headers=headers, reply_to=reply_to)


# ---------------------------------------------------------------- display: sanitising and folding

_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "div", "em", "font", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "small", "span", "strong",
    "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {
    "*": {"title", "align", "dir"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
_HTML_QUOTE_MARKERS = (
    '<div class="gmail_quote',
    '<div class="gmail_attr',
    "<blockquote",
    '<div id="appendonsend"',
    '<div id="divRplyFwdMsg"',
    '<hr id="stopSpelling"',
    '<div class="moz-cite-prefix"',
    '<div class="yahoo_quoted"',
)
_TEXT_QUOTE_HEADER = re.compile(
    r"^(On .{1,200}wrote:|Le .{1,200}a écrit ?:|Am .{1,200}schrieb .{0,100}:|"
    r"-{2,}\s*Original Message\s*-{2,}|_{10,}|From: .+)\s*$",
    re.IGNORECASE,
)


def email_html_sanitize(html: str, *, cid_urls: dict[str, str] | None = None) -> str:
    """HTML safe to show in the console: nh3 allow-list, links made inert for the referrer, inline
    ``cid:`` images pointed at our stored attachment, remote images dropped (they are trackers)."""
    cid_urls = cid_urls or {}

    def _attr(tag: str, attr: str, value: str) -> str | None:
        if tag == "img" and attr == "src":
            if value.lower().startswith("cid:"):
                return cid_urls.get(value[4:].strip("<>"))
            return None
        return value

    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        clean_content_tags={"script", "style", "title", "head"},
        attributes=_ALLOWED_ATTRIBUTES,
        attribute_filter=_attr,
        url_schemes={"http", "https", "mailto", "cid"},
        link_rel="noopener noreferrer nofollow",
    )


def email_html_split(html: str) -> tuple[str, str]:
    """(new content, quoted history) of an HTML mail, split at the first quote marker."""
    lowered = html.lower()
    positions = [p for p in (lowered.find(m.lower()) for m in _HTML_QUOTE_MARKERS) if p > 0]
    if not positions:
        return html, ""
    cut = min(positions)
    head = html[:cut]
    if not nh3.clean(head, tags=set()).strip():
        return html, ""
    return head, html[cut:]


def email_text_split(text: str) -> tuple[str, str]:
    """(new content, quoted history and signature) of a plain-text mail. Nothing is dropped."""
    lines = text.splitlines(keepends=True)
    for n, line in enumerate(lines):
        stripped = line.rstrip("\r\n")
        if stripped == "-- " or stripped.startswith(">") or _TEXT_QUOTE_HEADER.match(stripped):
            cut = n
            # an "On … wrote:" header may wrap onto two lines
            if n > 0 and stripped.startswith(">") and lines[n - 1].strip().endswith("wrote:"):
                cut = n - 1
                if cut > 0 and lines[cut - 1].strip().startswith("On "):
                    cut -= 1
            head = "".join(lines[:cut])
            if not head.strip():
                return text, ""
            return head.rstrip() + "\n", "".join(lines[cut:])
    return text, ""


def addresses_join(addresses: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a.strip().lower() for a in addresses if a and a.strip()))
