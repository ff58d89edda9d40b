"""Console: the search box in the header (an htmx dropdown as the agent types) and its results page.

Thin views over ``engagement.services.search``; a query the service refuses (too short, too long) is
shown as the form's error, never as an error page.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from engagement.errors import DomainError
from engagement.services.search import ALL_MATCHES_CAP, COMMON_CANDIDATES, SearchResults, workspace_search

from .workspace import ConsoleRequest, console_render, console_view

PAGE_LIMIT = 25
DROPDOWN_LIMIT = 5


def _search(request: ConsoleRequest, limit: int) -> tuple[str, SearchResults | None, str]:
    query = request.GET.get("q", "")
    if not query.strip():
        return "", None, ""
    try:
        return query, workspace_search(workspace=request.workspace, query=query, limit=limit), ""
    except DomainError as exc:
        return query, None, str(exc)


@require_http_methods(["GET", "HEAD"])
@console_view
def search_page(request: ConsoleRequest) -> HttpResponse:
    query, results, error = _search(request, PAGE_LIMIT)
    return console_render(
        request,
        "console/search.html",
        {"q": query, "results": results, "error": error, "cap": ALL_MATCHES_CAP, "common": COMMON_CANDIDATES},
    )


@require_http_methods(["GET", "HEAD"])
@console_view
def search_suggest(request: ConsoleRequest) -> HttpResponse:
    """The dropdown under the header's box: a few customers and messages, or nothing."""
    query, results, error = _search(request, DROPDOWN_LIMIT)
    return render(request, "console/_search_dropdown.html", {"q": query, "results": results, "error": error})
