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

from rest_framework import generics, viewsets

from .idempotency import IdempotencyMixin
from .pagination import ContractCursorPagination

__all__ = ["ContractAPIView", "ContractCursorPagination", "ContractMixin", "ContractViewSet"]


class ContractMixin(IdempotencyMixin):
    """Every contract behaviour a view must opt into (today: idempotent POSTs)."""


class ContractViewSet(ContractMixin, viewsets.GenericViewSet):
    pass


class ContractAPIView(ContractMixin, generics.GenericAPIView):
    pass
