"""The API contract as base classes. New API modules subclass these (or add ``ContractMixin`` first in
their bases); everything else comes from the project's DRF settings without adopting anything:

- errors: RFC 9457 problem details from ``engagement.api.exceptions.exception_handler``;
- authentication, workspace, scopes (``scope_area``) and known query parameters:
  ``DEFAULT_PERMISSION_CLASSES`` (``engagement.api.permissions``);
- rate limits and their headers: ``DEFAULT_THROTTLE_CLASSES`` + ``RateLimitHeadersMiddleware``;
- cursor pagination (``ContractCursorPagination``) and django-filter (``DEFAULT_FILTER_BACKENDS``);
- the OpenAPI problem responses on every operation: ``engagement.api.schema.ContractAutoSchema``.

What needs the mixin: ``Idempotency-Key`` on ``POST`` (``engagement.api.idempotency``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import generics, viewsets
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from engagement.models import ApiKey, Workspace
from engagement.services.tenancy import membership_for_user

from .idempotency import IdempotencyMixin
from .pagination import ContractCursorPagination

__all__ = [
    "ContractAPIView",
    "ContractCursorPagination",
    "ContractMixin",
    "ContractViewSet",
    "WritesByRole",
    "request_actor",
    "request_workspace",
]


class ContractMixin(IdempotencyMixin):
    """Every contract behaviour a view must opt into (today: idempotent POSTs)."""


class ContractViewSet(ContractMixin, viewsets.GenericViewSet):
    pass


class ContractAPIView(ContractMixin, generics.GenericAPIView):
    pass


def request_workspace(request: Request) -> Workspace:
    """The workspace the request acts in (set by ``engagement.api.permissions`` before any view runs)."""
    return request.workspace  # type: ignore[attr-defined]


def request_actor(request: Request) -> Any:
    """The signed-in user, or ``None`` for an API key (services record ``None`` as "the API")."""
    return request.user if request.user.is_authenticated else None


class WritesByRole(BasePermission):
    """Reads, and the view actions named in ``read_actions`` (e.g. a preview that changes nothing), for
    every member and API key of the workspace; every other request for API keys and for members whose
    role is in ``roles``. Subclasses set ``roles``, ``read_actions`` and ``message`` (the 403's detail)."""

    roles: ClassVar[tuple[str, ...]] = ()
    read_actions: ClassVar[frozenset[str]] = frozenset()

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS or getattr(view, "action", "") in self.read_actions:
            return True
        if isinstance(request.auth, ApiKey):
            return True
        membership = membership_for_user(user=request.user, workspace_id=request_workspace(request).pk)
        return membership is not None and membership.role in self.roles
