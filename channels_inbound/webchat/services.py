"""Webchat: the website widget's visitors, their identity and their messages.

A visitor is anonymous (an opaque signed token the browser keeps) or verified (the host site passes its
own user id and/or email with an HMAC of them made with the channel's ``identity_secret``). Messages go
through the same path as every provider's: a normalized :class:`InboundMessage` into ``events_ingest``,
deduplicated by ``provider_event_id = "wc:<visitor>:<client message id>"``. The consumer and the views
are thin over the functions here.

Per-channel settings live in ``Channel.config``: ``allowed_origins`` (exact origins, or
``https://*.example.com``), ``identity_secret``, ``office_hours`` (``{"timezone", "days": [0-6, Monday=0],
"start": "09:00", "end": "17:00"}``), ``reply_time_text``, ``title``, ``greeting``, ``color``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core import signing
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from channels_inbound.intake import (
    DATABASE_FAILURES,
    Outcome,
    Processor,
    error_describe,
    processor_register,
)
from channels_inbound.models import InboundStage
from channels_inbound.services import events_ingest
from customers.services import Identifier, InvalidIdentifier, customer_resolve_identifiers, email_normalize
from engagement.errors import DomainError
from engagement.inbound import DeliveryStatus, InboundAttachment, InboundMessage
from engagement.models import Attachment, Channel, ChannelKind, Interaction, InteractionStatus
from engagement.models.conversations import Direction, InteractionKind
from engagement.realtime import (
    agents_online_count,
    group_send_now,
    presence_count,
    redis_client,
    visitor_key,
    webchat_visitor_group,
)

logger = logging.getLogger(__name__)

PROVIDER = "webchat"
VISITOR_SALT = "webchat.visitor"
ATTACHMENT_SALT = "webchat.attachment"
ANONYMOUS_TOKEN_MAX_AGE = 400 * 24 * 3600
VERIFIED_TOKEN_MAX_AGE = 24 * 3600
ATTACHMENT_URL_MAX_AGE = 7 * 24 * 3600
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
DEFAULT_REPLY_TIME = "We usually reply within a few hours."
# Uploads the widget accepts; anything else (SVG, HTML, executables) is refused.
ALLOWED_UPLOAD_TYPES = {
    "image/png": "image",
    "image/jpeg": "image",
    "image/gif": "image",
    "image/webp": "image",
    "application/pdf": "document",
    "text/plain": "document",
    "text/csv": "document",
    "application/msword": "document",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "document",
    "application/vnd.ms-excel": "document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "document",
}


class WebchatError(DomainError):
    """A request the widget made that cannot be honoured; ``code`` is what the widget sees."""

    code = "invalid"
    retryable = False

    def __init__(self, message: str, *, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IdentityRejected(WebchatError):
    code = "identity_invalid"


class RateLimited(WebchatError):
    code = "rate_limited"
    status = 429
    retryable = True


class MessageRejected(WebchatError):
    code = "invalid_message"


class MessageTooLong(MessageRejected):
    code = "too_long"


class FileTooLarge(MessageRejected):
    code = "too_large"


class FileTypeRefused(MessageRejected):
    code = "type_refused"


@dataclass(frozen=True)
class Visitor:
    """Who is on the other end of a widget. ``visitor_id`` is the value of their webchat identity."""

    channel_id: int
    visitor_id: str
    verified: bool = False
    user_id: str = ""
    email: str = ""
    name: str = ""

    @property
    def group(self) -> str:
        return visitor_group(self.channel_id, self.visitor_id)


def visitor_group(channel_id: int, visitor_id: str) -> str:
    """The channel-layer group every open widget of one visitor listens on (named by the core, which
    also publishes the agent's typing indicator to it)."""
    return webchat_visitor_group(channel_id, visitor_id)


# ---------------------------------------------------------------- channel and its settings


def webchat_channel_get(*, token: str) -> Channel | None:
    """The active webchat channel whose public token is ``token`` (its webhook token)."""
    if not token or len(token) > 64:
        return None
    return (
        Channel.objects.select_related("workspace")
        .filter(webhook_token=token, kind=ChannelKind.WEBCHAT, is_active=True)
        .first()
    )


def origin_normalize(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def origin_allowed(*, channel: Channel, origin: str | None, platform_origins: Iterable[str] = ()) -> bool:
    """Is a page on ``origin`` allowed to embed this channel's widget? No origin is never allowed.

    ``platform_origins`` are the platform's own origins for this request (its ``PUBLIC_BASE_URL`` and
    the origin the request was addressed to): a channel whose config sets ``allow_platform_origin``
    (the demo's, for ``/webchat/demo/``) may be embedded by the platform's own pages on any of them,
    whatever host and port ``make run`` serves on."""
    if not origin or origin == "null":
        return False
    origin = origin_normalize(origin)
    if channel.config.get("allow_platform_origin") is True and origin in {
        origin_normalize(o) for o in platform_origins if o
    }:
        return True
    for raw in channel.config.get("allowed_origins") or []:
        allowed = origin_normalize(str(raw))
        if allowed == origin:
            return True
        scheme, sep, host = allowed.partition("://*.")
        if sep and origin.startswith(f"{scheme}://") and origin.endswith("." + host):
            return True
    return False


def webchat_channel_for_origin(
    *, token: str, origin: str | None, platform_origins: Iterable[str] = ()
) -> Channel | None:
    channel = webchat_channel_get(token=token)
    if channel is None:
        return None
    if not origin_allowed(channel=channel, origin=origin, platform_origins=platform_origins):
        return None
    return channel


def _in_office_hours(config: Mapping[str, Any], now: datetime) -> bool:
    hours = config.get("office_hours")
    if not hours:
        return True
    try:
        local = now.astimezone(ZoneInfo(str(hours.get("timezone") or "UTC")))
        start = dtime.fromisoformat(str(hours.get("start", "00:00")))
        end = dtime.fromisoformat(str(hours.get("end", "23:59")))
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("webchat office_hours do not parse: %r", hours)
        return True
    days = hours.get("days", [0, 1, 2, 3, 4])
    return local.weekday() in days and start <= local.time() < end


def webchat_availability(*, channel: Channel, now: datetime | None = None) -> dict[str, Any]:
    """Whether someone can answer now (office hours and an agent's console open), and what to tell the
    visitor about when to expect a reply."""
    config = channel.config
    in_hours = _in_office_hours(config, now or timezone.now())
    agents = agents_online_count(workspace_id=channel.workspace_id) if in_hours else 0
    return {
        "online": in_hours and agents > 0,
        "in_office_hours": in_hours,
        "reply_time_text": str(config.get("reply_time_text") or DEFAULT_REPLY_TIME),
    }


def webchat_public_config(*, channel: Channel) -> dict[str, Any]:
    """What the widget may know about the channel before a visitor says anything."""
    config = channel.config
    return {
        "title": str(config.get("title") or channel.name),
        "greeting": str(config.get("greeting") or "Hi! How can we help?"),
        "color": str(config.get("color") or "#2563eb"),
        "max_message_chars": settings.WEBCHAT_MAX_MESSAGE_CHARS,
        "max_upload_bytes": settings.WEBCHAT_MAX_UPLOAD_BYTES,
        "upload_types": sorted(ALLOWED_UPLOAD_TYPES),
        "identity_verification": bool(config.get("identity_secret")),
        **webchat_availability(channel=channel),
    }


# ---------------------------------------------------------------- rate limits


def rate_limit_consume(*, bucket: str, key: str) -> None:
    """Count one action against ``settings.WEBCHAT_RATE_LIMITS[bucket] = (limit, window seconds)``
    (a fixed window counted in Redis, one round trip); raise RateLimited once over the limit."""
    limit, window = settings.WEBCHAT_RATE_LIMITS[bucket]
    now = time.time()
    redis_key = f"engagement:webchat:rl:{bucket}:{key}:{int(now // window)}"
    # The key names its window, so refreshing the expiry on every hit cannot extend the window.
    pipe = redis_client().pipeline()
    pipe.incr(redis_key)
    pipe.expire(redis_key, window + 5)
    count = int(pipe.execute()[0])
    if count > limit:
        raise RateLimited(
            f"too many {bucket.replace('_', ' ')}: at most {limit} per {window} s",
            retry_after=round(window - now % window, 1),
        )


# ---------------------------------------------------------------- visitors and identity


def identity_hash_compute(*, secret: str, user_id: str = "", email: str = "") -> str:
    """The hash a host site computes on its server to vouch for its signed-in user:
    ``hex(HMAC-SHA256(identity_secret, user_id + "\\n" + email))`` (either part may be empty)."""
    message = f"{user_id}\n{email}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _verified_visitor_id(*, workspace_id: int, user_id: str, email: str) -> str:
    # Stable per person and workspace, so every browser of a signed-in user shares one chat.
    basis = f"user:{user_id}" if user_id else f"email:{email}"
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"webchat:{workspace_id}:{basis}".encode(), hashlib.sha256
    ).hexdigest()
    return "u-" + digest[:32]


def visitor_verify(*, channel: Channel, identity: Mapping[str, Any]) -> Visitor:
    """A verified visitor from the host site's ``{user_id, email, name, hash}``; IdentityRejected when
    the channel has no identity secret, the hash does not match, or the values are malformed."""
    secret = str(channel.config.get("identity_secret") or "")
    user_id = str(identity.get("user_id") or "").strip()
    raw_email = str(identity.get("email") or "").strip()
    given = str(identity.get("hash") or "")
    if not secret:
        raise IdentityRejected("this channel does not verify identities")
    if not user_id and not raw_email:
        raise IdentityRejected("a verified identity needs a user id or an email")
    if len(user_id) > 200 or any(ord(c) < 32 for c in user_id + raw_email):
        raise IdentityRejected("malformed identity")
    expected = identity_hash_compute(secret=secret, user_id=user_id, email=raw_email)
    if not hmac.compare_digest(expected, given.lower()):
        raise IdentityRejected("identity hash does not match")
    try:
        email = email_normalize(raw_email) if raw_email else ""
    except InvalidIdentifier as exc:
        raise IdentityRejected(str(exc)) from exc
    return Visitor(
        channel_id=channel.pk,
        visitor_id=_verified_visitor_id(workspace_id=channel.workspace_id, user_id=user_id, email=email),
        verified=True,
        user_id=user_id,
        email=email,
        name=str(identity.get("name") or "").strip()[:200],
    )


def visitor_token_issue(*, visitor: Visitor) -> str:
    payload: dict[str, Any] = {"c": visitor.channel_id, "v": visitor.visitor_id}
    if visitor.verified:
        payload.update({"vf": 1, "u": visitor.user_id, "e": visitor.email, "n": visitor.name})
    return signing.dumps(payload, salt=VISITOR_SALT)


def visitor_from_token(*, channel: Channel, token: str, allow_verified: bool = True) -> Visitor | None:
    """The visitor a token names, if it is genuine, not expired and issued for ``channel``."""
    if not token or len(token) > 1000:
        return None
    try:
        payload = signing.loads(token, salt=VISITOR_SALT, max_age=ANONYMOUS_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("c") != channel.pk or not payload.get("v"):
        return None
    if payload.get("vf"):
        if not allow_verified:
            return None
        try:
            signing.loads(token, salt=VISITOR_SALT, max_age=VERIFIED_TOKEN_MAX_AGE)
        except signing.BadSignature:
            return None
        return Visitor(
            channel_id=channel.pk,
            visitor_id=str(payload["v"]),
            verified=True,
            user_id=str(payload.get("u") or ""),
            email=str(payload.get("e") or ""),
            name=str(payload.get("n") or ""),
        )
    return Visitor(channel_id=channel.pk, visitor_id=str(payload["v"]))


def webchat_visitor_start(
    *, channel: Channel, token: str = "", identity: Mapping[str, Any] | None = None, ip: str = ""
) -> tuple[Visitor, str, bool]:
    """Who this widget is: verified from ``identity`` when given (IdentityRejected if forged), else the
    anonymous visitor of ``token``, else a new anonymous visitor (rate limited per IP, since every new
    visitor can open a conversation). Returns ``(visitor, token, new)``; creates nothing in the database:
    an anonymous visitor becomes a customer with their first message."""
    if identity:
        visitor = visitor_verify(channel=channel, identity=identity)
        return visitor, visitor_token_issue(visitor=visitor), False
    known = visitor_from_token(channel=channel, token=token, allow_verified=False) if token else None
    if known is not None:
        return known, token, False
    rate_limit_consume(bucket="ip_visitors", key=ip or "unknown")
    visitor = Visitor(channel_id=channel.pk, visitor_id="v-" + secrets.token_urlsafe(16))
    return visitor, visitor_token_issue(visitor=visitor), True


def _sender_name(visitor: Visitor) -> str:
    return visitor.name or ("" if visitor.verified else f"Visitor {visitor.visitor_id[2:8]}")


def webchat_visitor_link(*, channel: Channel, visitor: Visitor) -> None:
    """Tie a verified visitor's webchat identity to the customer who already has their external id or
    email (or to one new customer owning them all), through the customers resolution service, so their
    chat lands on the timeline with their calls and emails. Anonymous visitors need nothing here."""
    if not visitor.verified:
        return
    identifiers = []
    if visitor.user_id:
        identifiers.append(Identifier("external", visitor.user_id, verified=True))
    if visitor.email:
        identifiers.append(Identifier("email", visitor.email, verified=True))
    identifiers.append(Identifier("webchat", visitor.visitor_id, verified=True))
    customer_resolve_identifiers(
        workspace=channel.workspace,
        identifiers=identifiers,
        channel_kind=ChannelKind.WEBCHAT,
        display_name=visitor.name,
        event_ref=f"webchat:{channel.pk}:{visitor.visitor_id}",
    )


# ---------------------------------------------------------------- messages


def _validate_message(*, client_id: str, body: str, has_files: bool) -> str:
    if not isinstance(client_id, str) or not CLIENT_ID_RE.match(client_id):
        raise MessageRejected("client_id must be 8-64 letters, digits, '-' or '_'")
    if not isinstance(body, str):
        raise MessageRejected("body must be text")
    body = body.strip()
    limit = settings.WEBCHAT_MAX_MESSAGE_CHARS
    if len(body) > limit:
        raise MessageTooLong(f"message is {len(body)} characters; the limit is {limit}")
    if not body and not has_files:
        raise MessageRejected("message is empty")
    return body


def provider_event_id_for(*, visitor: Visitor, client_id: str) -> str:
    return f"wc:{visitor.visitor_id}:{client_id}"


def webchat_message_receive(
    *,
    channel: Channel,
    visitor: Visitor,
    client_id: str,
    body: str,
    ip: str = "",
    attachments: Sequence[InboundAttachment] = (),
) -> tuple[Interaction, bool]:
    """Record a visitor's message on the timeline. Returns ``(interaction, created)``.

    Idempotent on the widget's ``client_id``: a resend after a reconnect returns the first interaction
    (and is not counted against the rate limits). Raises MessageRejected / MessageTooLong / RateLimited.
    Precondition: ``visitor`` came from :func:`webchat_visitor_start` for this ``channel``.
    """
    body = _validate_message(client_id=client_id, body=body, has_files=bool(attachments))
    event_id = provider_event_id_for(visitor=visitor, client_id=client_id)
    existing = Interaction.objects.filter(channel=channel, provider_message_id=event_id).first()
    if existing is not None:
        return existing, False
    rate_limit_consume(bucket="visitor_messages", key=f"{channel.pk}:{visitor.visitor_id}")
    rate_limit_consume(bucket="ip_messages", key=ip or "unknown")
    webchat_visitor_link(channel=channel, visitor=visitor)
    event = InboundMessage(
        provider_event_id=event_id,
        sender=Identifier("webchat", visitor.visitor_id, verified=True),
        body=body,
        occurred_at=timezone.now(),
        sender_name=_sender_name(visitor),
        # "files" lets the console list attachments only where there are some (no query per message).
        metadata={
            "webchat": {"client_id": client_id, "verified": visitor.verified, "files": len(attachments)}
        },
        raw={"client_id": client_id, "body": body, "files": [a.filename for a in attachments]},
        attachments=tuple(attachments),
    )
    applied = events_ingest(channel=channel, events=[event])
    interaction = Interaction.objects.get(channel=channel, provider_message_id=event_id)
    return interaction, applied > 0


def webchat_upload_check(*, filename: str, content_type: str, size: int) -> str:
    """The content type to store an upload under, or MessageRejected (too big, not an allowed type)."""
    limit = settings.WEBCHAT_MAX_UPLOAD_BYTES
    if size > limit:
        raise FileTooLarge(f"file is {size} bytes; the limit is {limit}")
    if size == 0:
        raise MessageRejected("file is empty")
    kind = content_type.split(";")[0].strip().lower()
    if kind not in ALLOWED_UPLOAD_TYPES:
        raise FileTypeRefused(f"files of type {kind or 'unknown'} are not accepted")
    return kind


# What the widget is told instead of the upload being kept (the visitor can act on each).
UPLOAD_REFUSALS: tuple[type[Exception], ...] = (FileTooLarge, FileTypeRefused, MessageTooLong, RateLimited)


def webchat_upload_process(
    channel: Channel, hook: str, request: HttpRequest, context: Mapping[str, Any]
) -> Outcome:
    """The upload endpoint's request (multipart ``client_id``, optional ``body``, ``file``) from the
    visitor its token proved (``context["visitor"]``, ``context["ip"]``), recorded on the timeline.

    The webchat :class:`~channels_inbound.intake.Processor`: a request that cannot be read (no file, a
    bad client id) or applied is kept unprocessed for an admin; the refusals the widget shows its
    visitor (file too large or of a refused type, too long, rate limited) are raised.
    """
    visitor = Visitor(**context["visitor"])
    try:
        upload = request.FILES.get("file")
        if upload is None:
            raise MessageRejected("no file")
        # The refusals first: the visitor can act on those, and they keep nothing.
        content_type = webchat_upload_check(
            filename=upload.name or "file", content_type=upload.content_type or "", size=upload.size or 0
        )
        client_id = request.POST.get("client_id", "")
        body = request.POST.get("body", "")
        _validate_message(client_id=client_id, body=body, has_files=True)
        attachment = InboundAttachment(
            filename=upload.name or "file", content_type=content_type, content=upload.read()
        )
    except UPLOAD_REFUSALS + DATABASE_FAILURES:
        raise
    except Exception as exc:
        return Outcome(stage=InboundStage.PARSE, error=error_describe(exc))
    try:
        interaction, created = webchat_message_receive(
            channel=channel,
            visitor=visitor,
            client_id=client_id,
            body=body,
            ip=str(context.get("ip") or ""),
            attachments=[attachment],
        )
    except UPLOAD_REFUSALS + DATABASE_FAILURES:
        raise
    except Exception as exc:
        return Outcome(stage=InboundStage.APPLY, error=error_describe(exc))
    return Outcome(value=(interaction, created))


processor_register(PROVIDER, Processor(run=webchat_upload_process, refusals=UPLOAD_REFUSALS))


def webchat_email_capture(*, channel: Channel, visitor: Visitor, email: str) -> str:
    """An anonymous visitor left an email so the conversation can continue by email.

    It is a claim, not proof: resolution links it to the visitor's customer only if nobody owns it yet;
    if another customer has it, the two stay apart and a merge suggestion is recorded for an agent. The
    visitor never sees anything of that customer. Returns the normalized email.
    """
    try:
        normalized = email_normalize(email)
    except InvalidIdentifier as exc:
        raise MessageRejected(str(exc)) from exc
    rate_limit_consume(bucket="visitor_messages", key=f"{channel.pk}:{visitor.visitor_id}")
    customer_resolve_identifiers(
        workspace=channel.workspace,
        identifiers=[
            Identifier("webchat", visitor.visitor_id, verified=True),
            Identifier("email", normalized, verified=False),
        ],
        channel_kind=ChannelKind.WEBCHAT,
        display_name=_sender_name(visitor),
        event_ref=f"webchat:{channel.pk}:{visitor.visitor_id}:email",
    )
    return normalized


# ---------------------------------------------------------------- what the widget shows


def attachment_url(*, attachment: Attachment, visitor_id: str) -> str:
    signed = signing.dumps({"a": attachment.pk, "v": visitor_id}, salt=ATTACHMENT_SALT)
    return reverse("webchat:attachment", kwargs={"signed": signed})


def attachment_for_signed(*, signed: str) -> Attachment | None:
    """The attachment a signed widget URL names, if the signature holds and it belongs to that visitor."""
    try:
        payload = signing.loads(signed, salt=ATTACHMENT_SALT, max_age=ATTACHMENT_URL_MAX_AGE)
    except signing.BadSignature:
        return None
    return (
        Attachment.objects.select_related("interaction")
        .filter(
            pk=payload.get("a"),
            interaction__customer_address=payload.get("v"),
            interaction__channel__kind=ChannelKind.WEBCHAT,
        )
        .first()
    )


def _author_name(interaction: Interaction) -> str:
    if interaction.direction == Direction.INBOUND:
        return ""
    if interaction.author is not None:
        return interaction.author.get_full_name() or interaction.author.get_username()
    channel = interaction.channel
    return str((channel.config.get("title") if channel else "") or interaction.workspace.name)


def webchat_message_payload(*, interaction: Interaction) -> dict[str, Any]:
    """One message as the widget renders it (as text: the widget never interprets it as HTML)."""
    webchat_meta = interaction.metadata.get("webchat") if isinstance(interaction.metadata, dict) else None
    return {
        "id": interaction.pk,
        "client_id": (webchat_meta or {}).get("client_id", ""),
        "from": "visitor" if interaction.direction == Direction.INBOUND else "agent",
        "author": _author_name(interaction),
        "body": interaction.body,
        "at": interaction.created_at.isoformat(),
        "attachments": [
            {
                "name": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "url": attachment_url(attachment=a, visitor_id=interaction.customer_address),
            }
            for a in interaction.attachments.all()
        ],
    }


def webchat_history(*, channel: Channel, visitor: Visitor, after_id: int = 0) -> list[dict[str, Any]]:
    """The visitor's own chat on this channel after message ``after_id``, oldest first (at most
    ``WEBCHAT_HISTORY_LIMIT``, the newest ones). Never anything else of their customer's timeline.
    Agent messages that had waited for the visitor are reported delivered now."""
    rows = list(
        Interaction.objects.filter(
            workspace_id=channel.workspace_id,
            channel=channel,
            customer_address=visitor.visitor_id,
            kind=InteractionKind.MESSAGE,
            pk__gt=max(after_id, 0),
        )
        .exclude(status__in=[InteractionStatus.FAILED, InteractionStatus.BLOCKED])
        .select_related("author", "channel", "workspace")
        .prefetch_related("attachments")
        .order_by("-pk")[: settings.WEBCHAT_HISTORY_LIMIT]
    )
    rows.reverse()
    waiting = [i.pk for i in rows if i.direction == Direction.OUTBOUND and i.status == InteractionStatus.SENT]
    if waiting:
        webchat_delivery_report(channel=channel, interaction_ids=waiting)
    return [webchat_message_payload(interaction=i) for i in rows]


def webchat_delivery_report(*, channel: Channel, interaction_ids: Sequence[int]) -> None:
    """Agent messages reached a widget: report them delivered through the inbound status path (the
    stored event id makes repeats from several tabs harmless)."""
    now = timezone.now()
    events_ingest(
        channel=channel,
        events=[
            DeliveryStatus(
                provider_event_id=f"wc-out:{pk}:delivered",
                provider_message_id="",
                interaction_id=pk,
                status=InteractionStatus.DELIVERED,
                occurred_at=now,
            )
            for pk in interaction_ids
        ],
    )


# ---------------------------------------------------------------- pushes to the widget


def visitor_is_online(*, channel_id: int, visitor_id: str) -> bool:
    return presence_count(key=visitor_key(channel_id, visitor_id)) > 0


def webchat_push_now(*, channel_id: int, visitor_id: str, message: dict[str, Any]) -> None:
    """Send ``message`` to every open widget of the visitor, immediately (call after commit)."""
    group_send_now(visitor_group(channel_id, visitor_id), message)
