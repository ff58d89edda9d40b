"""The one webhook endpoint every provider posts to: /webhooks/<provider>/<channel token>/<hook>/.

4xx only for what is not authentic provider data: 404 unknown provider/hook/token, 413 oversized, 403
bad signature. Everything else is answered 2xx, applied or kept unprocessed (channels_inbound/intake.py),
including what reaches a channel that was switched off.
"""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from engagement.middleware import input_unchecked

from .base import SignatureInvalid
from .intake import inbound_request_receive
from .registry import adapter_for
from .services import channel_for_webhook

logger = logging.getLogger(__name__)


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@csrf_exempt
@input_unchecked  # signed as sent: verified first, then cleaned in normalization (inbound_event_clean)
@require_POST
def webhook(request: HttpRequest, provider: str, token: str, hook: str) -> HttpResponse:
    adapter = adapter_for(provider)
    if adapter is None or hook not in adapter.hooks:
        return _error(404, "no such webhook")
    limit = adapter.max_body_bytes(hook)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error(400, "Content-Length is not a number")
    if declared > limit:
        return _error(413, f"request body is {declared} bytes; the limit is {limit}")
    # An inactive channel's token is still known: its signed requests are kept for when it is back.
    channel = channel_for_webhook(provider=provider, token=token)
    if channel is None:
        return _error(404, "no such webhook")
    try:
        if len(request.body) > limit:
            return _error(413, f"request body is larger than the limit of {limit} bytes")
        adapter.validate_request(request, channel)
    except RequestDataTooBig:
        return _error(413, f"request body is larger than the limit of {limit} bytes")
    except SignatureInvalid as exc:
        logger.warning("rejected %s webhook for channel %s: %s", provider, channel.pk, exc)
        return _error(403, str(exc))
    # Authentic from here on: applied, or kept unprocessed with its error; either way a 2xx (the
    # provider would not retry a 4xx). Only a database failure raises, and the 500 makes it retry.
    outcome = inbound_request_receive(channel=channel, request=request, provider=provider, hook=hook)
    return adapter.respond(request, channel, hook, outcome.events)
