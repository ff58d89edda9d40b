"""The API's one paginator (``REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"]``). Kept in its own module:
DRF imports it while its own modules load, so it must import nothing of ours."""

from rest_framework.pagination import CursorPagination


class ContractCursorPagination(CursorPagination):
    """Newest first; follow ``next``/``previous`` (they carry ``?cursor=``); ``page_size`` up to 200."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
