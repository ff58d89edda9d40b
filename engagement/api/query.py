"""Query parameters: an endpoint names what it accepts; anything else is a 400 problem naming it.

Accepted: the view's FilterSet filters (``filterset_class``; django-filter's ``filterset_fields`` too),
its paginator's ``cursor`` / ``page_size``, DRF's ``format`` and what the view lists in
``extra_query_params``. A typo (``?identiy=…``) would otherwise return everything unfiltered.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.request import Request


def view_query_params(*, view: Any) -> set[str]:
    allowed: set[str] = set(getattr(view, "extra_query_params", ()) or ())
    fmt = settings.REST_FRAMEWORK.get("URL_FORMAT_OVERRIDE", "format")
    if fmt:
        allowed.add(str(fmt))
    filterset_class = getattr(view, "filterset_class", None)
    if filterset_class is None and getattr(view, "filterset_fields", None):
        queryset = getattr(view, "queryset", None)
        if queryset is not None:
            filterset_class = DjangoFilterBackend().get_filterset_class(view, queryset)
    if filterset_class is not None:
        allowed.update(filterset_class.base_filters.keys())
    paginator_class = getattr(view, "pagination_class", None)
    if paginator_class is not None:
        for attr in (
            "cursor_query_param",
            "page_size_query_param",
            "page_query_param",
            "limit_query_param",
            "offset_query_param",
        ):
            name = getattr(paginator_class, attr, None)
            if name:
                allowed.add(name)
    return allowed


def query_params_check(*, request: Request, view: Any) -> None:
    """Raise ``ValidationError`` (400 problem, one error per parameter, ``code="unknown_parameter"``)."""
    unknown = sorted(set(request.query_params.keys()) - view_query_params(view=view))
    if unknown:
        raise ValidationError(
            {
                name: [ErrorDetail(f"unknown query parameter {name!r}", code="unknown_parameter")]
                for name in unknown
            }
        )
