"""Errors always come back as JSON with a message that says what is wrong."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from engagement.services.messaging import SendRejected


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, SendRejected):
        # A refusal with a machine-readable code (RecipientUnreachable) says which one it is.
        code = getattr(exc, "code", "")
        return Response({"error": str(exc), **({"code": code} if code else {})}, status=400)
    return drf_exception_handler(exc, context)
