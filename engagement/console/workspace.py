"""Which workspace a console request acts for, and the decorators every console view wears.

The current workspace is the user's Membership named by ``request.session["workspace_id"]``, falling
back to their first membership (``membership_for_user``). A stale id in the session (a membership that
was removed) is dropped rather than honoured.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, cast

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from engagement.models import Membership, Role, Workspace
from engagement.services.inbox import member_timezone
from engagement.services.tenancy import membership_for_user, memberships_for
from engagement.webhooks.services import webhook_endpoints_disabled_by_failure

SESSION_KEY = "workspace_id"


class ConsoleRequest(HttpRequest):
    """An authenticated request with its workspace resolved (for type checking only)."""

    workspace: Workspace
    membership: Membership


def _session_workspace_id(request: HttpRequest) -> int | None:
    raw = request.session.get(SESSION_KEY)
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def membership_current(request: HttpRequest) -> Membership | None:
    wanted = _session_workspace_id(request)
    if wanted is not None:
        membership = membership_for_user(user=request.user, workspace_id=wanted)
        if membership is not None:
            return membership
        request.session.pop(SESSION_KEY, None)
    return membership_for_user(user=request.user)


def console_view[**P](
    view: Callable[Concatenate[ConsoleRequest, P], HttpResponse],
) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
    """Require a signed-in workspace member; set ``request.workspace`` and ``request.membership``."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        membership = membership_current(request)
        if membership is None:
            return render(request, "console/no_workspace.html", status=403)
        console_request = cast(ConsoleRequest, request)
        console_request.membership = membership
        console_request.workspace = membership.workspace
        # Times on every console page in the member's zone (Membership.timezone, else the workspace's);
        # templates mark the zone next to each time.
        with timezone.override(member_timezone(membership=membership)):
            return view(console_request, *args, **kwargs)

    return login_required(wrapped)


def admin_required[**P](
    view: Callable[Concatenate[ConsoleRequest, P], HttpResponse],
) -> Callable[Concatenate[ConsoleRequest, P], HttpResponse]:
    """Only the workspace's admins; everybody else gets 403."""

    @functools.wraps(view)
    def wrapped(request: ConsoleRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        if request.membership.role != Role.ADMIN:
            return console_render(
                request, "403.html", {"reason": "This page is for workspace admins."}, status=403
            )
        return view(request, *args, **kwargs)

    return wrapped


def console_render(
    request: ConsoleRequest, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HttpResponse:
    """Render a full console page: adds the membership and, for the switcher, every membership."""
    is_admin = request.membership.role == Role.ADMIN
    full = {
        "membership": request.membership,
        "is_admin": is_admin,
        # The notice to admins that outbound webhook endpoints were switched off after sustained failure.
        "webhooks_disabled": (
            webhook_endpoints_disabled_by_failure(workspace=request.workspace) if is_admin else []
        ),
        "is_marketer": request.membership.role == Role.MARKETER,
        "memberships": memberships_for(user=request.user),
        **(context or {}),
    }
    return render(request, template, full, status=status)
