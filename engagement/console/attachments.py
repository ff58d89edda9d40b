"""Attachments (email files, inline images, MMS media) served to signed-in members of their workspace."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from engagement.models import Attachment

from .workspace import ConsoleRequest, console_view

# Only these render in the browser; anything else (HTML, SVG, PDF…) is downloaded, never shown on our origin.
INLINE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "audio/mpeg",
        "audio/wav",
        "audio/x-wav",
        "video/mp4",
    }
)


@require_GET
@console_view
def attachment_download(request: ConsoleRequest, attachment_id: int) -> HttpResponse:
    attachment = Attachment.objects.filter(pk=attachment_id, workspace=request.workspace).first()
    if attachment is None or not attachment.file:
        raise Http404("No such attachment")
    inline = attachment.content_type in INLINE_TYPES
    with attachment.file.open("rb") as handle:
        data = handle.read()
    response = HttpResponse(
        data, content_type=attachment.content_type if inline else "application/octet-stream"
    )
    response["Content-Disposition"] = content_disposition_header(not inline, attachment.filename) or ""
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response
