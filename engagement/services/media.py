"""Media that arrives by URL (MMS pictures, call recordings): kept as an Attachment with its source URL,
then downloaded into Django storage by a Celery task after commit, so the webhook answers fast.

Providers that protect media with HTTP Basic auth (Twilio: AccountSid/AuthToken) get the channel's
credentials, and only on requests to the channel's own API origin: a URL on any other host is fetched
without them, so a payload can never make us hand our credentials to someone else.
"""

from __future__ import annotations

import logging
import mimetypes
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from engagement import events
from engagement.errors import TransientError
from engagement.models import Attachment, Channel, Interaction

logger = logging.getLogger(__name__)

MEDIA_FETCH_MAX_BYTES = 10 * 1024 * 1024
MEDIA_FETCH_TIMEOUT = 15.0


class MediaFetchRetryable(TransientError):
    """The media host is unreachable or failing for now; try again later."""


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _basic_auth_for(channel: Channel | None, url: str) -> tuple[str, str] | None:
    """The channel's Twilio credentials when ``url`` is on its Twilio API origin; None otherwise (and
    always for a channel of another provider, which must never get the deployment's Twilio account)."""
    if channel is None or channel.provider != "twilio":
        return None
    config = channel.config
    account = config.get("account_sid") or settings.TWILIO_ACCOUNT_SID
    token = config.get("auth_token") or settings.TWILIO_AUTH_TOKEN
    origins = {
        _origin(config.get("api_base_url") or settings.TWILIO_API_BASE_URL),
        ("https", "api.twilio.com"),
    }
    if account and token and _origin(url) in origins:
        return account, token
    return None


def attachment_fetch_on_commit(*, attachment: Attachment) -> None:
    """Download the attachment's source URL into storage in a task (``engagement.tasks.fetch_attachment``),
    once the transaction commits: an ``attachment.stored`` event through the outbox."""
    events.publish_on_commit(
        events.DomainEvent(
            name=events.ATTACHMENT_STORED,
            workspace_id=attachment.workspace_id,
            interaction_id=attachment.interaction_id,
            data={"attachment_id": attachment.pk},
        )
    )


def interaction_media_attach(*, interaction: Interaction, media: list[dict[str, Any]]) -> list[Attachment]:
    """Record each ``{"url", "content_type"}`` as an attachment of ``interaction`` and fetch it after
    commit. Runs in the caller's transaction; call it once, when the interaction is created."""
    attachments = []
    for n, item in enumerate(media):
        content_type = item.get("content_type") or "application/octet-stream"
        extension = mimetypes.guess_extension(content_type) or ""
        attachment = Attachment.objects.create(
            workspace_id=interaction.workspace_id,
            interaction=interaction,
            filename=f"{interaction.provider_message_id or interaction.pk}-{n}{extension}"[:255],
            content_type=content_type,
            source_url=item["url"],
        )
        attachment_fetch_on_commit(attachment=attachment)
        attachments.append(attachment)
    return attachments


def attachment_fetch(*, attachment_id: int) -> bool:
    """Download one attachment's ``source_url`` into storage. True when the file is (now) stored.

    Raises MediaFetchRetryable for network errors and 5xx/429 answers. A 4xx or an oversized file is
    logged and left as a link. Safe to repeat: a stored file is never fetched again.
    """
    attachment = Attachment.objects.select_related("interaction__channel").filter(pk=attachment_id).first()
    if attachment is None or not attachment.source_url:
        return False
    if attachment.file:
        return True
    url = attachment.source_url
    try:
        with requests.get(
            url,
            auth=_basic_auth_for(attachment.interaction.channel, url),
            timeout=MEDIA_FETCH_TIMEOUT,
            stream=True,
        ) as response:
            if response.status_code == 429 or response.status_code >= 500:
                raise MediaFetchRetryable(f"{url}: HTTP {response.status_code}")
            if response.status_code >= 400:
                logger.warning("attachment %s: %s answered %s", attachment_id, url, response.status_code)
                return False
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > MEDIA_FETCH_MAX_BYTES:
                    logger.warning(
                        "attachment %s: %s exceeds %s bytes", attachment_id, url, MEDIA_FETCH_MAX_BYTES
                    )
                    return False
                chunks.append(chunk)
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    except requests.RequestException as exc:
        raise MediaFetchRetryable(f"{url}: {type(exc).__name__}: {exc}") from exc
    with transaction.atomic():
        locked = Attachment.objects.select_for_update().get(pk=attachment_id)
        if locked.file:
            return True
        locked.file.save(locked.filename, ContentFile(b"".join(chunks)), save=False)
        locked.size = size
        if content_type and locked.content_type in ("", "application/octet-stream"):
            locked.content_type = content_type
        locked.save(update_fields=["file", "size", "content_type"])
    return True
