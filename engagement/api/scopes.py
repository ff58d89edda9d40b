"""API key scopes: read or write per resource area.

A scope is ``"<area>:read"`` or ``"<area>:write"``; write implies read. ``GET``/``HEAD``/``OPTIONS`` need
read, every other method write. A view names its area with ``scope_area`` (and, per action, in
``scope_areas = {"consent": "consent"}``); a view that names none gets the area of its URL's first segment
under ``/api/v1/`` through ``settings.API_SCOPE_PATH_AREAS`` (``customer-imports`` → ``imports``), else
the segment itself, so a new module (``segments/``, ``campaigns/``, ``webhooks/``) is scoped by its URL
without doing anything. Signed-in console members are not scoped (their role governs the console).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request

from engagement.scopes import ALL_SCOPES, SCOPE_AREAS, SCOPE_CHOICES, scopes_allow, scopes_normalize

__all__ = [
    "ALL_SCOPES",
    "SCOPE_AREAS",
    "SCOPE_CHOICES",
    "scope_required",
    "scopes_allow",
    "scopes_normalize",
    "view_scope_area",
]


def view_scope_area(*, request: Request, view: Any) -> str:
    """The resource area a request to ``view`` touches (see the module docstring)."""
    action = getattr(view, "action", None)
    per_action = getattr(view, "scope_areas", None) or {}
    if action in per_action:
        return str(per_action[action])
    if getattr(view, "scope_area", None):
        return str(view.scope_area)
    path = request.path
    marker = "/api/v1/"
    segment = path[path.find(marker) + len(marker) :].split("/", 1)[0] if marker in path else ""
    return str(getattr(settings, "API_SCOPE_PATH_AREAS", {}).get(segment, segment))


def scope_required(*, request: Request, view: Any) -> str:
    level = "read" if request.method in SAFE_METHODS else "write"
    return f"{view_scope_area(request=request, view=view)}:{level}"
