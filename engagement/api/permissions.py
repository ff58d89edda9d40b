"""Every API request acts for exactly one workspace (the API key's, or the signed-in user's), within the
key's scopes, and names only query parameters the endpoint knows. All three are project defaults
(``REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"]``), so every API module gets them without adopting
anything; a view that sets ``permission_classes`` itself must list them again."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from engagement.models import ApiKey, Workspace
from engagement.services.tenancy import membership_for_user

from .query import query_params_check
from .scopes import scope_required, scopes_allow


def is_resource_path(path: str) -> bool:
    """Resources live under ``/api/v1/``; ``/api/schema/`` and the docs pages are not resources."""
    return "/api/v1/" in path


def request_workspace(request: Request) -> Workspace | None:
    if isinstance(request.auth, ApiKey):
        return request.auth.workspace
    session = getattr(request, "session", None)
    wanted = session.get("workspace_id") if session is not None else None
    membership = membership_for_user(user=request.user, workspace_id=wanted)
    return membership.workspace if membership else None


class HasWorkspace(BasePermission):
    message = "authenticate with a workspace API key or a signed-in workspace member"

    def has_permission(self, request: Request, view: Any) -> bool:
        workspace = request_workspace(request)
        if workspace is None:
            return False
        request.workspace = workspace  # type: ignore[attr-defined]
        return True


class HasScope(BasePermission):
    """An API key needs ``<area>:read`` for safe methods and ``<area>:write`` otherwise (403 problem
    ``scope_missing`` naming the scope)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, ApiKey) or not is_resource_path(request.path):
            return True  # the schema and docs are open to any valid key
        required = scope_required(request=request, view=view)
        if not scopes_allow(granted=list(request.auth.scopes or []), required=required):
            exc = PermissionDenied(f"this API key lacks the scope {required}")
            exc.problem_code = "scope_missing"  # type: ignore[attr-defined]
            exc.problem_extra = {"required_scope": required}  # type: ignore[attr-defined]
            raise exc
        return True


class KnownQueryParameters(BasePermission):
    """Unknown query parameters are a 400 problem that names them (``engagement.api.query``)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if is_resource_path(request.path):  # not the schema view (?format=, ?lang= are its own)
            query_params_check(request=request, view=view)
        return True
