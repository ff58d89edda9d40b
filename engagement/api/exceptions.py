"""The API's one exception handler: every domain error (``engagement.errors.DomainError``) becomes RFC 9457
problem details (``application/problem+json``: ``type``, ``title``, ``status``, ``detail``, plus the
machine-readable ``code``); views never catch domain errors one by one.

For clients written against the earlier shape, the body also keeps ``error`` (= ``detail``) and, for an
error about one input, DRF's field-error list under the field's name.
"""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from engagement.errors import DomainError


def domain_error_response(exc: DomainError) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:engagement:error:{exc.code}",
        "title": exc.title,
        "status": exc.status,
        "detail": exc.message,
        "code": exc.code,
        "error": exc.message,
        **exc.extra,
    }
    if exc.field:
        body["field"] = exc.field
        body[exc.field] = [exc.message]
    return Response(body, status=exc.status, content_type="application/problem+json")


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return domain_error_response(exc)
    return drf_exception_handler(exc, context)
