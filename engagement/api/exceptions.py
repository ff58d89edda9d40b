"""Errors always come back as JSON with a message that says what is wrong.

A service's :class:`~engagement.errors.DomainError` becomes RFC 9457 problem details (``type``,
``title``, ``status``, ``detail``) plus ``code``, ``field`` and the older ``error`` key clients read.
"""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from engagement.errors import DomainError
from engagement.services.messaging import SendRejected


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, SendRejected):
        return Response({"error": str(exc)}, status=400)
    if isinstance(exc, DomainError):
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": exc.title,
            "status": exc.status,
            "detail": exc.message,
            "code": exc.code,
            "error": exc.message,
        }
        if exc.field:
            body["field"] = exc.field
        return Response(body, status=exc.status, content_type="application/problem+json")
    return drf_exception_handler(exc, context)
