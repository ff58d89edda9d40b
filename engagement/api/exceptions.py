"""The API's one exception handler: every domain error (``engagement.errors.DomainError``) becomes a JSON
error with its status and machine-readable ``code``; views never catch domain errors one by one."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from engagement.errors import DomainError
from engagement.services.messaging import SendRejected


def domain_error_response(exc: DomainError) -> Response:
    """``{"error": message, "code": code, ...extra}``; an error about one input field answers in DRF's
    field-error shape (``{field: [message]}``) so clients handle it like any validation error."""
    if exc.field:
        return Response({exc.field: [exc.message]}, status=exc.status)
    return Response({"error": exc.message, "code": exc.code, **exc.extra}, status=exc.status)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, SendRejected):  # not yet a DomainError on this branch
        return Response({"error": str(exc)}, status=400)
    if isinstance(exc, DomainError):
        return domain_error_response(exc)
    return drf_exception_handler(exc, context)
