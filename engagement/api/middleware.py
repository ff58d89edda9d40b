"""The API's paths, whatever the mode: a missing trailing slash and an unknown path (the whole kind)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import is_valid_path

from .exceptions import api_not_found


class ApiPathMiddleware:
    """Under ``/api/``, before ``CommonMiddleware``:

    * a path without its trailing slash that matches a route with it is served as that route, for every
      method (``APPEND_SLASH`` would redirect, which a POST cannot follow, and in DEBUG raises a
      RuntimeError: a 500 for ``POST /api/v1/events``);
    * a path that matches no route is a 404 problem (RFC 9457) in every mode; ``handler404`` alone is
      skipped in DEBUG, which shows Django's HTML page instead.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path.startswith("/api/"):
            urlconf = getattr(request, "urlconf", None)
            if not is_valid_path(path, urlconf):
                if path.endswith("/") or not is_valid_path(f"{path}/", urlconf):
                    return api_not_found(request)
                request.path_info = f"{path}/"
                request.path = f"{request.path}/"
        return self.get_response(request)
