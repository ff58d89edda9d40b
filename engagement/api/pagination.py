"""The API's one paginator (``REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"]``). Kept in its own module:
DRF imports it while its own modules load, so it must import nothing of ours."""

from typing import Any

from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError
from rest_framework.pagination import CursorPagination


class ContractCursorPagination(CursorPagination):
    """Newest first; follow ``next``/``previous`` (they carry ``?cursor=``); ``page_size`` up to 200."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request: Any) -> Any:
        """A cursor we did not issue is bad input (400 naming ``cursor``), not a missing page (DRF: 404)."""
        try:
            return super().decode_cursor(request)
        except NotFound as exc:
            message = "invalid cursor: pass back the next or previous link as given"
            raise ValidationError({self.cursor_query_param: [ErrorDetail(message, code="invalid")]}) from exc
