"""The console's customers page: find customers by name or any identity, filter, page.

Simple ``icontains`` matching for now (an index-backed fuzzy search with ``pg_trgm`` is planned); every
query is scoped to the workspace and skips merged-away tombstones.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from engagement.models import Workspace

from .models import Customer, Identity, IdentityKind


def customer_directory(
    *,
    workspace: Workspace,
    query: str = "",
    has_email: bool = False,
    has_phone: bool = False,
    tag: str = "",
) -> QuerySet[Customer]:
    """Customers of ``workspace`` whose name or any identity value contains ``query`` (case-insensitive;
    a phone number also matches without its ``+``), optionally only those with an email address, a phone
    number or the tag ``tag``; newest first. Each row carries ``identity_list`` (every identity, newest
    seen first) in one more query for the whole page."""
    qs = Customer.objects.filter(workspace=workspace, merged_into__isnull=True)
    query = query.strip()
    if query:
        identities = Identity.objects.filter(workspace=workspace, customer=OuterRef("pk"))
        digits = query.lstrip("+").replace(" ", "").replace("-", "")
        match = Q(value__icontains=query)
        if digits.isdigit():
            match |= Q(value__contains=digits)
        qs = qs.filter(Q(display_name__icontains=query) | Exists(identities.filter(match)))
    for wanted, kind in ((has_email, IdentityKind.EMAIL), (has_phone, IdentityKind.PHONE)):
        if wanted:
            qs = qs.filter(
                Exists(Identity.objects.filter(workspace=workspace, customer=OuterRef("pk"), kind=kind))
            )
    if tag.strip():
        qs = qs.filter(tags__contains=[tag.strip()])
    return qs.prefetch_related(
        Prefetch(
            "identities",
            queryset=Identity.objects.filter(workspace=workspace).order_by("-last_seen_at", "-id"),
            to_attr="identity_list",
        )
    ).order_by("-created_at", "-pk")


def customer_tags_in_use(*, workspace: Workspace, limit: int = 200) -> list[str]:
    """The distinct tags of the workspace's customers, sorted (for the tag filter)."""
    seen: set[str] = set()
    for tags in (
        Customer.objects.filter(workspace=workspace, merged_into__isnull=True)
        .exclude(tags=[])
        .values_list("tags", flat=True)[:5000]
    ):
        seen.update(str(t) for t in tags or [])
    return sorted(seen)[:limit]
