"""Request middleware of the core: the input boundary for everything but provider webhooks.

``InputBoundaryMiddleware`` refuses, with a 400 naming the field, a request whose path, query string,
headers, cookies or form fields (urlencoded or multipart) hold a value PostgreSQL cannot store (a NUL
character; see ``engagement/sanitize.py``) — once, for the console, the admin and the API, instead of a
500 wherever the value reaches a query. JSON bodies are checked by the API's parser
(``engagement/api/parsers.py``).

Provider webhooks opt out with :func:`input_unchecked`: their values are signed as sent, so they are
verified first and cleaned during normalization (``engagement.inbound.inbound_event_clean``), never
refused. A NUL in the URL path is refused for every view (no route or token contains one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin

from engagement.sanitize import text_problem

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def input_unchecked[V: Callable[..., Any]](view: V) -> V:
    """Mark a view whose input the boundary middleware leaves alone (it verifies and cleans its own)."""
    view.input_unchecked = True  # type: ignore[attr-defined]
    return view


def _first_problem(pairs: Iterable[tuple[str, str]], where: str) -> str:
    for key, value in pairs:
        for text, what in ((key, "name"), (value, "value")):
            if isinstance(text, str) and (problem := text_problem(text)):
                return (
                    f"{where} {key!r}: the {what} {problem}"
                    if what == "value"
                    else f"a {where} name {problem}"
                )
    return ""


def request_input_problem(request: HttpRequest) -> str:
    """Why the request's path, headers, cookies, query or form fields cannot be taken, or ``""``."""
    problem = text_problem(request.path)
    if problem:
        return f"the URL path {problem}"
    problem = _first_problem(
        ((k[5:].replace("_", "-").title(), v) for k, v in request.META.items() if k.startswith("HTTP_")),
        "header",
    )
    problem = problem or _first_problem(request.COOKIES.items(), "cookie")
    problem = problem or _first_problem(_flat(request.GET), "query parameter")
    if not problem and request.method in ("POST", "PUT", "PATCH") and request.content_type in _FORM_TYPES:
        problem = _first_problem(_flat(request.POST), "form field")
        problem = problem or _first_problem(
            ((name, f.name or "") for name, f in _flat_files(request)), "file name of"
        )
    return problem


def _flat(data: Any) -> Iterable[tuple[str, str]]:
    for key, values in data.lists():
        for value in values:
            yield key, value


def _flat_files(request: HttpRequest) -> Iterable[tuple[str, Any]]:
    for key, files in request.FILES.lists():
        for f in files:
            yield key, f


class InputBoundaryMiddleware(MiddlewareMixin):
    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if getattr(view_func, "input_unchecked", False):
            problem = text_problem(request.path)
            return _refuse(f"the URL path {problem}", request.path) if problem else None
        problem = request_input_problem(request)
        return _refuse(problem, request.path) if problem else None


def _refuse(message: str, path: str = "") -> HttpResponse:
    if path.startswith("/api/"):  # the API answers RFC 9457 problem details (engagement.api.exceptions)
        from engagement.api.exceptions import PROBLEM_CONTENT_TYPE, problem_body

        body = problem_body(status=400, code="input_invalid", title="Invalid input", detail=message)
        return JsonResponse(body, status=400, content_type=PROBLEM_CONTENT_TYPE)
    return JsonResponse({"error": message, "code": "input_invalid"}, status=400)
