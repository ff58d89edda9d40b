"""Webchat HTTP endpoints: the widget script, its public config, file uploads, files, and a demo page.

Host pages call these cross-origin: every answer to an allowed origin carries
``Access-Control-Allow-Origin: <that origin>``; other origins get 403 and no CORS header at all.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from channels_inbound.intake import inbound_request_receive
from engagement.middleware import input_unchecked
from engagement.models import Channel, ChannelKind

from .services import (
    PROVIDER,
    FileTooLarge,
    FileTypeRefused,
    MessageTooLong,
    RateLimited,
    WebchatError,
    attachment_for_signed,
    origin_allowed,
    visitor_from_token,
    webchat_channel_get,
    webchat_message_payload,
    webchat_public_config,
    webchat_push_now,
)

logger = logging.getLogger(__name__)

UPLOAD_ERROR_STATUS: dict[type[WebchatError], int] = {
    FileTooLarge: 413,
    MessageTooLong: 413,
    FileTypeRefused: 415,
    RateLimited: 429,
}


def _cors(response: HttpResponse, origin: str) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = origin
    response["Vary"] = "Origin"
    return response


def _error(status: int, code: str, message: str, origin: str = "") -> HttpResponse:
    response = JsonResponse({"type": "error", "code": code, "message": message}, status=status)
    return _cors(response, origin) if origin else response


def _client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "")


@lru_cache(maxsize=1)
def _widget_source_cached() -> bytes:
    return _widget_source_read()


def _widget_source_read() -> bytes:
    found = finders.find("webchat/widget.js")
    if not found:
        raise Http404("widget script missing")
    return Path(str(found)).read_bytes()


@require_GET
def widget_js(request: HttpRequest) -> HttpResponse:
    """The embeddable script (engagement/static/webchat/widget.js), for any page to load."""
    source = _widget_source_read() if settings.DEBUG else _widget_source_cached()
    response = HttpResponse(source, content_type="application/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _own_origin(request: HttpRequest) -> str:
    """The origin this request was addressed to (scheme and validated Host)."""
    return f"{request.scheme}://{request.get_host()}"


def request_origin(request: HttpRequest) -> str:
    """The page's origin. Browsers omit ``Origin`` on a same-origin GET (Fetch standard, "serializing a
    request origin"), so a request without one that the browser marks ``Sec-Fetch-Site: same-origin``
    comes from a page on the request's own origin; anything else without ``Origin`` has none."""
    origin = request.headers.get("Origin", "")
    if origin:
        return origin
    if request.headers.get("Sec-Fetch-Site") == "same-origin":
        return _own_origin(request)
    return ""


def _channel_and_origin(request: HttpRequest, token: str) -> tuple[Channel | None, str]:
    channel = webchat_channel_get(token=token)
    origin = request_origin(request)
    platform = (settings.PUBLIC_BASE_URL, _own_origin(request))
    if channel is None or not origin_allowed(channel=channel, origin=origin, platform_origins=platform):
        return None, ""
    return channel, origin


@require_GET
def config(request: HttpRequest, token: str) -> HttpResponse:
    """Title, colours, limits and availability for the widget; 403 on a page outside allowed origins."""
    channel, origin = _channel_and_origin(request, token)
    if channel is None:
        return _error(403, "origin_refused", "this site may not embed this chat")
    return _cors(JsonResponse(webchat_public_config(channel=channel)), origin)


@csrf_exempt  # cross-origin by design: authorised by the allowed origin and the signed visitor token
@input_unchecked  # kept raw as sent (the body is read before the form); cleaned in event_ingest
@require_http_methods(["POST"])
def upload(request: HttpRequest, token: str) -> HttpResponse:
    """A visitor attaches a file (multipart: ``visitor``, ``client_id``, optional ``body``, ``file``).

    Authenticated by the allowed origin and the visitor token; within the size limit. An upload that
    cannot be read or applied is kept unprocessed for an admin (202, ``message: null``); the widget is
    told when the visitor can act (413 too large, 415 refused type, 429 rate limited)."""
    channel, origin = _channel_and_origin(request, token)
    if channel is None:
        return _error(403, "origin_refused", "this site may not embed this chat")
    limit = settings.WEBCHAT_MAX_UPLOAD_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit + 64 * 1024:
        return _error(413, "too_large", f"files may be at most {limit} bytes", origin)
    request.body  # noqa: B018 - read (and keep) the raw body before request.POST streams it away
    visitor = visitor_from_token(channel=channel, token=request.POST.get("visitor", ""))
    if visitor is None:
        return _error(403, "visitor_invalid", "unknown visitor", origin)
    client_id = request.POST.get("client_id", "")
    try:
        outcome = inbound_request_receive(
            channel=channel,
            request=request,
            provider=PROVIDER,
            hook="upload",
            context={"visitor": asdict(visitor), "ip": _client_ip(request)},
        )
    except WebchatError as exc:
        status = UPLOAD_ERROR_STATUS.get(type(exc), 400)
        response = _error(status, exc.code, str(exc), origin)
        if exc.retry_after:
            response["Retry-After"] = str(int(exc.retry_after) + 1)
        return response
    if not outcome.applied:
        # Authentic but not readable or not applicable now: kept for an admin, never lost.
        return _cors(
            JsonResponse({"type": "received", "client_id": client_id, "message": None}, status=202), origin
        )
    interaction, created = outcome.value
    payload = webchat_message_payload(interaction=interaction)
    if created:
        webchat_push_now(
            channel_id=channel.pk,
            visitor_id=visitor.visitor_id,
            message={"type": "webchat.message", "message": payload},
        )
    return _cors(JsonResponse({"type": "ack", "client_id": client_id, "message": payload}), origin)


@require_GET
def attachment(request: HttpRequest, signed: str) -> FileResponse:
    """A file of the chat, through a signed link only the visitor's widget is given."""
    found = attachment_for_signed(signed=signed)
    if found is None:
        raise Http404("No such file")
    image = found.content_type.startswith("image/")
    response = FileResponse(
        found.file.open("rb"),
        content_type=found.content_type or "application/octet-stream",
        as_attachment=not image,
        filename=found.filename,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, max-age=3600"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@require_GET
def demo(request: HttpRequest) -> HttpResponse:
    """A page embedding the demo workspace's widget, for ``make run`` users to try it."""
    channel = (
        Channel.objects.filter(workspace__slug="demo", kind=ChannelKind.WEBCHAT, is_active=True)
        .order_by("pk")
        .first()
    )
    if channel is None:
        raise Http404("No demo webchat channel: run `manage.py seed_demo`")
    return render(request, "webchat/demo.html", {"channel": channel})
