"""The duplicate finder: ranked merge suggestions for agents to accept or dismiss.

Rules, strongest first:

* ``same_email`` (0.95): the same canonical email (``+tag`` dropped; Gmail dots dropped) on two customers;
* ``same_name_phone`` (0.8): the same name and phone numbers sharing their last 7 digits;
* ``same_name_email_domain`` (0.6): the same name and an email at the same non-webmail domain.

Suggestions on an unordered pair are unique: a dismissed pair is never proposed again.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import Lower, Trim
from django.utils import timezone

from engagement.models import Workspace

from .lookup import customer_follow_merges
from .merging import MergeRejected, customer_merge
from .models import (
    Customer,
    CustomerMerge,
    Identity,
    IdentityKind,
    MergeSource,
    MergeSuggestion,
    SuggestionStatus,
)
from .resolution import suggestion_record

WEBMAIL = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "icloud.com",
        "aol.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "proton.me",
        "protonmail.com",
        "mail.ru",
        "yandex.ru",
    }
)
MAX_NAME_GROUP = 50


def email_canonical(value: str) -> str:
    local, _, domain = value.rpartition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def _live(workspace: Workspace) -> Q:
    return Q(
        customer__workspace=workspace, customer__merged_into__isnull=True, customer__erased_at__isnull=True
    )


def merge_suggestions_find(*, workspace: Workspace) -> int:
    """Scan the workspace and record new suggestions. Returns how many pending suggestions it touched."""
    customers: dict[int, Customer] = {}
    touched = 0

    def suggest(a: int, b: int, reason: str, score: float, evidence: dict[str, object]) -> None:
        nonlocal touched
        for pk in (a, b):
            if pk not in customers:
                customers[pk] = Customer.objects.get(pk=pk)
        if suggestion_record(
            workspace=workspace, a=customers[a], b=customers[b], reason=reason, score=score, evidence=evidence
        ):
            touched += 1

    by_email: dict[str, set[int]] = defaultdict(set)
    emails = Identity.objects.filter(_live(workspace), workspace=workspace, kind=IdentityKind.EMAIL)
    for customer_id, value in emails.values_list("customer_id", "value").iterator(chunk_size=5000):
        by_email[email_canonical(value)].add(customer_id)
    for canonical, owners in by_email.items():
        for a, b in combinations(sorted(owners), 2):
            suggest(a, b, "same_email", 0.95, {"canonical_email": canonical})

    names = (
        Customer.objects.filter(workspace=workspace, merged_into__isnull=True, erased_at__isnull=True)
        .exclude(display_name="")
        .annotate(key=Lower(Trim("display_name")))
        .values("key")
        .annotate(n=Count("id"))
        .filter(n__gt=1, n__lte=MAX_NAME_GROUP)
    )
    for group in names:
        ids = list(
            Customer.objects.filter(workspace=workspace, merged_into__isnull=True, erased_at__isnull=True)
            .annotate(key=Lower(Trim("display_name")))
            .filter(key=group["key"])
            .values_list("pk", flat=True)
        )
        phones: dict[int, set[str]] = defaultdict(set)
        domains: dict[int, set[str]] = defaultdict(set)
        for customer_id, kind, value in Identity.objects.filter(
            workspace=workspace, customer_id__in=ids
        ).values_list("customer_id", "kind", "value"):
            if kind == IdentityKind.PHONE:
                phones[customer_id].add(value[-7:])
            elif kind == IdentityKind.EMAIL and value.rpartition("@")[2] not in WEBMAIL:
                domains[customer_id].add(value.rpartition("@")[2])
        for a, b in combinations(sorted(ids), 2):
            if phones[a] & phones[b]:
                suggest(
                    a,
                    b,
                    "same_name_phone",
                    0.8,
                    {"name": group["key"], "phone_suffix": sorted(phones[a] & phones[b])},
                )
            elif domains[a] & domains[b]:
                suggest(
                    a,
                    b,
                    "same_name_email_domain",
                    0.6,
                    {"name": group["key"], "email_domain": sorted(domains[a] & domains[b])},
                )
    return touched


def merge_suggestion_list(*, workspace: Workspace, customer: Customer | None = None) -> list[MergeSuggestion]:
    """Pending suggestions between live customers, best first (optionally those involving ``customer``)."""
    qs = MergeSuggestion.objects.filter(
        workspace=workspace,
        status=SuggestionStatus.PENDING,
        customer_a__merged_into__isnull=True,
        customer_b__merged_into__isnull=True,
        customer_a__erased_at__isnull=True,
        customer_b__erased_at__isnull=True,
    )
    if customer is not None:
        qs = qs.filter(Q(customer_a=customer) | Q(customer_b=customer))
    return list(qs.select_related("customer_a", "customer_b").order_by("-score", "-created_at", "-pk")[:200])


def merge_suggestion_accept(
    *, workspace: Workspace, suggestion: MergeSuggestion, actor: AbstractBaseUser | None = None
) -> CustomerMerge:
    """Merge the pair (the older customer survives) and mark the suggestion accepted. A side merged
    away since is replaced by its survivor."""
    with transaction.atomic():
        locked = (
            MergeSuggestion.objects.select_for_update().filter(workspace=workspace, pk=suggestion.pk).first()
        )
        if locked is None or locked.status != SuggestionStatus.PENDING:
            raise MergeRejected("this suggestion is no longer pending")
        # Either side may have been merged into someone else since the suggestion was made: the
        # suggestion is about the people, so it applies to whom they live on as.
        a = customer_follow_merges(customer=locked.customer_a)
        b = customer_follow_merges(customer=locked.customer_b)
        if a.pk == b.pk:
            raise MergeRejected(f"these customers were already merged into customer {a.pk}")
        survivor, merged = (a, b) if (a.created_at, a.pk) <= (b.created_at, b.pk) else (b, a)
        record = customer_merge(
            workspace=workspace,
            survivor=survivor,
            merged=merged,
            source=MergeSource.SUGGESTION,
            event_ref=f"suggestion:{locked.pk}",
            evidence={"reason": locked.reason, "score": locked.score, **locked.evidence},
            actor=actor,
        )
        # customer_merge closes the suggestion of the pair it merged; a suggestion about customers
        # merged away since names another pair, so it is closed here.
        MergeSuggestion.objects.filter(pk=locked.pk, status=SuggestionStatus.PENDING).update(
            status=SuggestionStatus.ACCEPTED, decided_at=timezone.now(), decided_by=actor, merge=record
        )
        locked.refresh_from_db()
        return record


def merge_suggestion_dismiss(
    *, workspace: Workspace, suggestion: MergeSuggestion, actor: AbstractBaseUser | None = None
) -> MergeSuggestion:
    MergeSuggestion.objects.filter(
        workspace=workspace, pk=suggestion.pk, status=SuggestionStatus.PENDING
    ).update(status=SuggestionStatus.DISMISSED, decided_at=timezone.now(), decided_by=actor)
    suggestion.refresh_from_db()
    return suggestion
