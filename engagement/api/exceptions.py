"""Errors always come back as JSON with a message that says what is wrong.

A :class:`engagement.errors.DomainError` raised by a service becomes RFC 9457 problem details
(``application/problem+json``: ``type``, ``title``, ``status``, ``detail``, plus ``code`` and, when the
error names one, ``field``), with the error's own status.
"""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from engagement.errors import DomainError
from engagement.services.messaging import SendRejected


def problem_details(exc: DomainError) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:engagement:error:{exc.code}",
        "title": exc.title,
        "status": exc.status,
        "detail": exc.message,
        "code": exc.code,
    }
    if exc.field:
        body["field"] = exc.field
    if exc.extra:
        body.update(exc.extra)
    return Response(body, status=exc.status, content_type="application/problem+json")


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, SendRejected):
        return Response({"error": str(exc)}, status=400)
    if isinstance(exc, DomainError):
        return problem_details(exc)
    return drf_exception_handler(exc, context)
