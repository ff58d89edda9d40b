"""Every API request acts for exactly one workspace: the API key's, or the signed-in user's."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from engagement.models import ApiKey, Workspace
from engagement.services.tenancy import membership_for_user


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
