"""Segments: create, change and delete them, and ask who is in one. The API campaigns and journeys call.

Reading (each is ONE SQL query over the workspace's customers; the rule tree is compiled by
``compiler.py``, never evaluated in a Python loop):

* :func:`segment_queryset` — the members, a ``QuerySet[Customer]`` (snapshot it with
  ``INSERT … SELECT`` or iterate it in pk order);
* :func:`segment_contains` — is this customer a member right now (send-time re-check, journey triggers);
* :func:`segment_members_among` — which of these customer ids are members (a batch re-check);
* :func:`segment_count`, :func:`segment_reachable_counts`, :func:`segment_audience_counts`.

Members are live customers only: never a merged-away tombstone, never an erased customer.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from customers.consent import SendPurpose
from customers.identifiers import Identifier, InvalidIdentifier
from customers.imports import IDENTIFIER_COLUMNS
from customers.models import Customer, Identity, MergeSource
from customers.profile import ProfileInvalid, tags_clean
from customers.resolution import customer_resolve_identifiers, identifiers_normalize
from engagement.errors import Conflict, ValidationFailed
from engagement.models import ChannelKind, Segment, SegmentKind, SegmentMember, Workspace

from .compiler import live_customers, reachable_q, rules_q, segment_q
from .rules import SegmentRulesInvalid, segment_references, segment_rules_validate

MAX_UPLOAD_ROWS = 10_000
MAX_REPORTED_ERRORS = 200
EVERYONE: dict[str, Any] = {"type": "and", "rules": []}


class SegmentInvalid(ValidationFailed):
    code = "segment_invalid"
    title = "Invalid segment"


class SegmentInUse(Conflict):
    code = "segment_in_use"
    title = "The segment is used by other segments"


# ---------------------------------------------------------------- reading


def segment_queryset(
    *, segment: Segment, now: dt.datetime | None = None, per_row: bool = False
) -> QuerySet[Customer]:
    """The segment's members as one query: live customers of its workspace matching its rules (or on
    its static list). ``now`` fixes the clock for relative windows (default: now). ``per_row`` shapes
    the query for a few customers (correlated subqueries) instead of a whole audience; same members."""
    return live_customers(workspace=segment.workspace).filter(
        segment_q(segment=segment, now=now or timezone.now(), per_row=per_row)
    )


def segment_rules_queryset(
    *, workspace: Workspace, rules: Any, now: dt.datetime | None = None, per_row: bool = False
) -> QuerySet[Customer]:
    """The members an unsaved rule tree would have; SegmentRulesInvalid (400) for a bad tree."""
    normalized = segment_rules_validate(workspace=workspace, rules=rules)
    return live_customers(workspace=workspace).filter(
        rules_q(workspace=workspace, rules=normalized, now=now or timezone.now(), per_row=per_row)
    )


def segment_contains(*, segment: Segment, customer: Customer, now: dt.datetime | None = None) -> bool:
    """Is ``customer`` a member right now? The segment's compiled query restricted to one primary key
    (correlated shape: index probes for this customer only). A tombstone or erased customer never is."""
    return segment_queryset(segment=segment, now=now, per_row=True).filter(pk=customer.pk).exists()


def segment_members_among(
    *, segment: Segment, customer_ids: Iterable[int], now: dt.datetime | None = None
) -> set[int]:
    """The ids among ``customer_ids`` that are members right now (one query; a batch re-check)."""
    ids = list(customer_ids)
    if not ids:
        return set()
    members = segment_queryset(segment=segment, now=now, per_row=True).filter(pk__in=ids)
    return set(members.values_list("pk", flat=True))


def segment_count(*, segment: Segment, now: dt.datetime | None = None) -> int:
    return segment_queryset(segment=segment, now=now).count()


@dataclass(frozen=True)
class AudienceCounts:
    count: int
    purpose: str
    # channel kind → members with an address of that kind whom the consent guard lets ``purpose`` reach
    reachable: dict[str, int]


def segment_audience_counts(
    *, workspace: Workspace, queryset: QuerySet[Customer], purpose: str
) -> AudienceCounts:
    """The size of an audience (customers of ``workspace``) and how many of it are reachable on each
    channel kind for ``purpose``, in one query. ValidationFailed for an unknown purpose."""
    if purpose not in SendPurpose.values:
        raise ValidationFailed(f"unknown purpose {purpose!r} (one of {', '.join(SendPurpose.values)})")
    aggregates: dict[str, Any] = {"count": Count("pk")}
    for kind in ChannelKind.values:
        aggregates[f"reach_{kind}"] = Count(
            "pk", filter=reachable_q(channel_kind=kind, purpose=purpose, workspace_id=workspace.pk)
        )
    row = queryset.aggregate(**aggregates)
    return AudienceCounts(
        count=row["count"],
        purpose=purpose,
        reachable={kind: row[f"reach_{kind}"] for kind in ChannelKind.values},
    )


def segment_reachable_counts(
    *, segment: Segment, purpose: str, now: dt.datetime | None = None
) -> dict[str, int]:
    """Channel kind → members reachable on it for ``purpose``: an address of the kind, and consent as
    the ledger says now (``customers.consent.consent_check_send``'s rules, compiled to SQL)."""
    members = segment_queryset(segment=segment, now=now)
    return segment_audience_counts(workspace=segment.workspace, queryset=members, purpose=purpose).reachable


# ---------------------------------------------------------------- writing


def _name_clean(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise SegmentInvalid("a segment needs a name of 1-200 characters", field="name")
    return name


def _tag_clean(tag: str) -> str:
    if not tag:
        return ""
    try:
        return tags_clean([tag])[0]
    except ProfileInvalid as exc:
        raise SegmentInvalid(str(exc), field="static_tag") from exc


def _save(segment: Segment, fields: list[str] | None = None) -> None:
    try:
        with transaction.atomic():
            segment.save(update_fields=fields)
    except IntegrityError as exc:
        raise Conflict(f"a segment named {segment.name!r} already exists", field="name") from exc


def segment_create(
    *,
    workspace: Workspace,
    name: str,
    kind: str = SegmentKind.DYNAMIC,
    rules: Any = None,
    description: str = "",
    static_tag: str = "",
    actor: AbstractBaseUser | None = None,
) -> Segment:
    """A new segment. Dynamic: ``rules`` validated (``rules.py``; None = everyone). Static: no rules, an
    optional ``static_tag``; members are added with :func:`segment_members_upload`.

    Errors: SegmentInvalid / SegmentRulesInvalid (400), Conflict (409) for a name already taken.
    """
    if kind not in SegmentKind.values:
        raise SegmentInvalid(f"kind must be one of {', '.join(SegmentKind.values)}", field="kind")
    if kind == SegmentKind.STATIC:
        if rules:
            raise SegmentInvalid(
                "a static segment has no rules (upload members or name a tag)", field="rules"
            )
        normalized: dict[str, Any] = {}
    else:
        if static_tag:
            raise SegmentInvalid("only a static segment has a tag list", field="static_tag")
        normalized = segment_rules_validate(workspace=workspace, rules=EVERYONE if rules is None else rules)
    segment = Segment(
        workspace=workspace,
        name=_name_clean(name),
        description=(description or "").strip(),
        kind=kind,
        rules=normalized,
        static_tag=_tag_clean(static_tag),
        created_by=actor,  # type: ignore[misc]
        updated_by=actor,
    )
    _save(segment)
    return segment


def segment_update(
    *,
    segment: Segment,
    name: str | None = None,
    description: str | None = None,
    rules: Any = None,
    static_tag: str | None = None,
    actor: AbstractBaseUser | None = None,
) -> Segment:
    """Change a segment (None leaves a field as it is). New rules are validated against the workspace,
    with this segment's id, so a reference that leads back to it is refused as a cycle."""
    if name is not None:
        segment.name = _name_clean(name)
    if description is not None:
        segment.description = description.strip()
    if rules is not None:
        if segment.kind == SegmentKind.STATIC:
            raise SegmentInvalid("a static segment has no rules", field="rules")
        segment.rules = segment_rules_validate(
            workspace=segment.workspace, rules=rules, segment_id=segment.pk
        )
    if static_tag is not None:
        if segment.kind != SegmentKind.STATIC:
            raise SegmentInvalid("only a static segment has a tag list", field="static_tag")
        segment.static_tag = _tag_clean(static_tag)
    segment.updated_by = actor  # type: ignore[assignment]
    _save(segment)
    return segment


def segment_users(*, segment: Segment) -> list[Segment]:
    """The workspace's segments whose rules refer to ``segment``."""
    candidates = Segment.objects.filter(workspace_id=segment.workspace_id, kind=SegmentKind.DYNAMIC).exclude(
        pk=segment.pk
    )
    return [s for s in candidates if segment.pk in segment_references(s.rules)]


def segment_delete(*, segment: Segment) -> None:
    """Delete a segment; SegmentInUse (409) while another segment's rules refer to it."""
    users = segment_users(segment=segment)
    if users:
        names = ", ".join(repr(s.name) for s in users)
        raise SegmentInUse(f"segment {segment.name!r} is used by {names}; change those first")
    segment.delete()


# ---------------------------------------------------------------- static lists


@dataclass
class SegmentUpload:
    rows: int = 0
    added: int = 0
    already: int = 0
    created_customers: int = 0
    not_found: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "added": self.added,
            "already_members": self.already,
            "created_customers": self.created_customers,
            "not_found": self.not_found,
            "errors": self.errors,
        }


def _upload_rows(source: str) -> list[tuple[int, list[Identifier]]]:
    reader = csv.DictReader(io.StringIO(source))
    headers = {(h or "").strip().lower(): h for h in (reader.fieldnames or [])}
    columns = {kind: headers[name] for name, kind in IDENTIFIER_COLUMNS.items() if name in headers}
    if not columns:
        raise SegmentInvalid(
            f"the CSV needs a header with at least one of: {', '.join(IDENTIFIER_COLUMNS)}", field="file"
        )
    rows: list[tuple[int, list[Identifier]]] = []
    for number, row in enumerate(reader, start=1):
        if number > MAX_UPLOAD_ROWS:
            raise SegmentInvalid(f"at most {MAX_UPLOAD_ROWS} rows per upload", field="file")
        idents = [
            Identifier(kind, value.strip())
            for kind, column in columns.items()
            for value in (row.get(column) or "").split(";")
            if value.strip()
        ]
        rows.append((number, idents))
    return rows


def segment_members_upload(
    *,
    segment: Segment,
    source: str,
    create_missing: bool = True,
    actor: AbstractBaseUser | None = None,
) -> SegmentUpload:
    """Add the customers a CSV names to a static segment.

    Columns as the customer import's identifier columns (``email``, ``phone``, ``external_id``,
    ``webchat_id``; several values separated by ``;``). Each row's identifiers are normalized and looked
    up; a row whose known identifiers all belong to one customer and has no unknown one is that customer;
    any other row goes through ``customer_resolve_identifiers`` (new customers created, new identifiers
    linked, conflicts merged or suggested by the workspace's policy) — unless ``create_missing`` is
    False, then rows with no known identifier are counted as ``not_found``. Bad rows are reported, the
    others applied; one transaction. At most ``MAX_UPLOAD_ROWS`` rows.
    """
    if segment.kind != SegmentKind.STATIC:
        raise SegmentInvalid("members are uploaded to a static segment only", field="kind")
    workspace = segment.workspace
    result = SegmentUpload()
    prepared: list[tuple[int, list[Identifier]]] = []
    for number, idents in _upload_rows(source):
        result.rows += 1
        try:
            if not idents:
                raise InvalidIdentifier("no identifier on this row")
            prepared.append((number, identifiers_normalize(workspace=workspace, identifiers=idents)))
        except InvalidIdentifier as exc:
            if len(result.errors) < MAX_REPORTED_ERRORS:
                result.errors.append({"row": number, "error": str(exc)})
    wanted: dict[str, set[str]] = {}
    for _, idents in prepared:
        for ident in idents:
            wanted.setdefault(ident.kind, set()).add(ident.value)
    owners: dict[tuple[str, str], int] = {}
    for kind, values in wanted.items():
        for value, customer_id in Identity.objects.filter(
            workspace=workspace, kind=kind, value__in=values
        ).values_list("value", "customer_id"):
            owners[(kind, value)] = customer_id
    customer_ids: list[int] = []
    with transaction.atomic():
        for number, idents in prepared:
            known = {owners[(i.kind, i.value)] for i in idents if (i.kind, i.value) in owners}
            unknown = [i for i in idents if (i.kind, i.value) not in owners]
            if len(known) == 1 and not unknown:
                customer_ids.append(known.pop())
                continue
            if not known and not create_missing:
                result.not_found += 1
                continue
            resolution = customer_resolve_identifiers(
                workspace=workspace,
                identifiers=idents,
                source=MergeSource.IMPORT,
                event_ref=f"segment:{segment.pk}:row:{number}",
                actor=actor,
            )
            result.created_customers += int(resolution.created)
            customer_ids.append(resolution.customer.pk)
            for ident in idents:
                owners[(ident.kind, ident.value)] = resolution.customer.pk
        unique = list(dict.fromkeys(customer_ids))
        existing = set(
            SegmentMember.objects.filter(segment=segment, customer_id__in=unique).values_list(
                "customer_id", flat=True
            )
        )
        new = [SegmentMember(segment=segment, customer_id=pk) for pk in unique if pk not in existing]
        SegmentMember.objects.bulk_create(new, ignore_conflicts=True, batch_size=1000)
        result.added, result.already = len(new), len(existing)
        segment.updated_by = actor  # type: ignore[assignment]
        segment.save(update_fields=["updated_by", "updated_at"])
    return result


def segment_members_remove(*, segment: Segment, customer_ids: Iterable[int]) -> int:
    """Take customers off a static segment's list; returns how many rows went."""
    if segment.kind != SegmentKind.STATIC:
        raise SegmentInvalid("members are removed from a static segment only", field="kind")
    return SegmentMember.objects.filter(segment=segment, customer_id__in=list(customer_ids)).delete()[0]


__all__ = [
    "AudienceCounts",
    "SegmentInUse",
    "SegmentInvalid",
    "SegmentRulesInvalid",
    "SegmentUpload",
    "segment_audience_counts",
    "segment_contains",
    "segment_count",
    "segment_create",
    "segment_delete",
    "segment_members_among",
    "segment_members_remove",
    "segment_members_upload",
    "segment_queryset",
    "segment_reachable_counts",
    "segment_rules_queryset",
    "segment_update",
]
