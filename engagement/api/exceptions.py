"""The API's one exception handler: every error becomes RFC 9457 problem details.

Sources, in one place: the domain error hierarchy (``engagement.errors.DomainError``: its ``code``,
``status``, ``title``, ``field`` and ``extra``) and DRF's own exceptions (``ValidationError``,
``NotFound``, ``PermissionDenied``, ``NotAuthenticated``, ``Throttled``, ``ParseError``,
``UnsupportedMediaType``…), plus Django's ``Http404`` / ``PermissionDenied``. Views never catch errors one
by one; a new API module adopts this by doing nothing (it is the project's ``EXCEPTION_HANDLER``).

Body (``Content-Type: application/problem+json``, RFC 9457 §3)::

    {"type": "urn:engagement:problem:<code>", "title": "...", "status": 400, "detail": "...",
     "code": "<code>", "errors": [{"field": "identifiers.0.value", "pointer": "/identifiers/0/value",
                                   "detail": "...", "code": "invalid"}], ...extra members}

``errors`` is present (possibly empty) on every problem so clients read one shape; ``pointer`` is a JSON
Pointer (RFC 6901) into the request body, ``field`` the same path dotted (a query parameter or header is
named as it is sent).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import page_not_found
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from engagement.errors import DomainError

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:engagement:problem:"

# DRF's exceptions: (code, title). The code is the problem's stable machine-readable name.
_DRF_PROBLEMS: dict[type[drf.APIException], tuple[str, str]] = {
    drf.ValidationError: ("validation_failed", "Invalid input"),
    drf.ParseError: ("parse_error", "Malformed request body"),
    drf.AuthenticationFailed: ("authentication_failed", "Authentication failed"),
    drf.NotAuthenticated: ("not_authenticated", "Authentication required"),
    drf.PermissionDenied: ("permission_denied", "Permission denied"),
    drf.NotFound: ("not_found", "Not found"),
    drf.MethodNotAllowed: ("method_not_allowed", "Method not allowed"),
    drf.NotAcceptable: ("not_acceptable", "Not acceptable"),
    drf.UnsupportedMediaType: ("unsupported_media_type", "Unsupported media type"),
    drf.Throttled: ("rate_limited", "Too many requests"),
}


def _pointer(path: list[str]) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in path)


def field_errors(detail: Any, path: list[str] | None = None) -> list[dict[str, str]]:
    """DRF's nested ``ValidationError.detail`` flattened into ``[{field, pointer, detail, code}]``.
    ``non_field_errors`` (and a bare list) belong to the object at ``path`` itself."""
    path = path or []
    out: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            sub = path if key in ("non_field_errors", "detail") else [*path, str(key)]
            out += field_errors(value, sub)
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                out += field_errors(value, [*path, str(index)])
            else:
                out += field_errors(value, path)
    else:
        out.append(
            {
                "field": ".".join(path),
                "pointer": _pointer(path),
                "detail": str(detail),
                "code": str(getattr(detail, "code", "invalid") or "invalid"),
            }
        )
    return out


def problem_body(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One problem document (RFC 9457). ``extra`` members never overwrite the standard ones."""
    body: dict[str, Any] = dict(extra or {})
    body.update(
        {
            "type": PROBLEM_TYPE_PREFIX + code,
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
            "errors": errors or [],
        }
    )
    return body


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        problem_body(status=status, code=code, title=title, detail=detail, errors=errors, extra=extra),
        status=status,
        headers=headers,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def domain_error_response(exc: DomainError) -> Response:
    errors = []
    if exc.field:
        errors = [
            {
                "field": exc.field,
                "pointer": _pointer(exc.field.split(".")),
                "detail": exc.message,
                "code": exc.code,
            }
        ]
    return problem_response(
        status=exc.status, code=exc.code, title=exc.title, detail=exc.message, errors=errors, extra=exc.extra
    )


def _drf_problem(exc: drf.APIException) -> Response:
    code, title = next(
        (v for cls, v in _DRF_PROBLEMS.items() if isinstance(exc, cls)),
        (str(exc.default_code), str(exc.default_detail)),
    )
    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if getattr(exc, "wait", None) is not None:
        headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
    extra = dict(getattr(exc, "problem_extra", None) or {})
    if isinstance(exc, drf.ValidationError):
        errors = field_errors(exc.detail)
        if len(errors) == 1:
            only = errors[0]
            detail = f"{only['field']}: {only['detail']}" if only["field"] else only["detail"]
        else:
            detail = f"{len(errors)} fields are invalid: " + ", ".join(
                sorted({e["field"] or "(body)" for e in errors})
            )
        return problem_response(
            status=exc.status_code, code=code, title=title, detail=detail, errors=errors, headers=headers
        )
    message = str(exc.detail) if not isinstance(exc.detail, dict | list) else title
    code = str(getattr(exc, "problem_code", "") or code)
    return problem_response(
        status=exc.status_code, code=code, title=title, detail=message, extra=extra, headers=headers
    )


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: a URL under ``/api/`` that matches no route is a 404 problem, not an HTML page."""
    if request.path.startswith("/api/"):
        body = problem_body(status=404, code="not_found", title="Not found", detail="no such URL in the API")
        return JsonResponse(body, status=404, content_type=PROBLEM_CONTENT_TYPE)
    return page_not_found(request, exception or Http404())


def api_bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler400``: a request Django itself refuses (too many form fields, a suspicious header) is a
    400 problem under ``/api/``, not an HTML page."""
    if request.path.startswith("/api/"):
        detail = str(exception) if exception else "the request could not be read"
        body = problem_body(status=400, code="bad_request", title="Bad request", detail=detail)
        return JsonResponse(body, status=400, content_type=PROBLEM_CONTENT_TYPE)
    return django_bad_request(request, exception or Exception())


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """``settings.REST_FRAMEWORK["EXCEPTION_HANDLER"]``. Anything else (a bug) is left to Django (500)."""
    if isinstance(exc, Http404):
        exc = drf.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied(str(exc) or None)
    if isinstance(exc, DomainError):
        set_rollback()
        return domain_error_response(exc)
    if isinstance(exc, drf.APIException):
        set_rollback()
        return _drf_problem(exc)
    return None
