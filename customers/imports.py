"""CSV import of customers through the one resolution service, deduplicating as it goes.

Columns (header names, case-insensitive; every one optional except at least one identifier per row):

``name``, ``email``, ``phone``, ``external_id``, ``webchat_id`` (several values separated by ``;``),
``verified`` (true: the file vouches for the row's identifiers, so links between existing customers
merge instead of being suggested), ``tags`` (``;``-separated, added), ``timezone``,
``preferred_channel``, ``attr:<key>`` (a defined attribute), ``consent:<channel>:<purpose>``
(``opted_in``/``opted_out``; purpose ``all`` for the whole channel).

Each row runs in its own savepoint, so a bad row is reported (row number and reason) and never stops the
good ones. Progress is committed every ``batch_size`` rows, so a reader sees it move.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from .consent import consent_record
from .identifiers import Identifier, InvalidIdentifier
from .models import ConsentSource, CustomerImport, ImportStatus, MergeSource
from .profile import ProfileInvalid, customer_update
from .resolution import customer_resolve_identifiers

IDENTIFIER_COLUMNS = {"email": "email", "phone": "phone", "external_id": "external", "webchat_id": "webchat"}
MAX_REPORTED_ERRORS = 1000
TRUE = {"1", "true", "yes", "y"}


class RowError(ValueError):
    pass


def customer_import_create(
    *, workspace: Any, source: str, filename: str = "", actor: Any = None
) -> CustomerImport:
    return CustomerImport.objects.create(
        workspace=workspace, source=source, filename=filename[:255], created_by=actor
    )


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(";") if v.strip()]


def _row_apply(*, imp: CustomerImport, row: dict[str, str], number: int) -> bool:
    """Apply one row; returns True when it created a customer. Raises on a bad row."""
    verified = row.get("verified", "").strip().lower() in TRUE
    identifiers = [
        Identifier(kind, value, verified)
        for column, kind in IDENTIFIER_COLUMNS.items()
        for value in _split(row.get(column, ""))
    ]
    if not identifiers:
        raise RowError("no identifier (email, phone, external_id or webchat_id)")
    resolution = customer_resolve_identifiers(
        workspace=imp.workspace,
        identifiers=identifiers,
        display_name=row.get("name", "").strip(),
        source=MergeSource.IMPORT,
        event_ref=f"import:{imp.pk}:row:{number}",
        actor=imp.created_by,
    )
    customer = resolution.customer
    attributes = {k[5:]: v for k, v in row.items() if k.startswith("attr:") and v.strip()}
    tags = _split(row.get("tags", ""))
    tz = row.get("timezone", "").strip()
    preferred = row.get("preferred_channel", "").strip().lower()
    if attributes or tags or tz or preferred:
        customer_update(
            workspace=imp.workspace,
            customer=customer,
            attributes=attributes or None,
            add_tags=tags or None,
            timezone=tz or None,
            preferred_channel=preferred or None,
        )
    for column, value in row.items():
        if not column.startswith("consent:") or not value.strip():
            continue
        parts = column.split(":")
        if len(parts) != 3:
            raise RowError(f"consent column {column!r} must be consent:<channel>:<purpose>")
        purpose = "" if parts[2] == "all" else parts[2]
        consent_record(
            customer=customer,
            channel=parts[1],
            purpose=purpose,
            status=value.strip().lower(),
            source=ConsentSource.IMPORT,
            evidence={"import_id": imp.pk, "row": number},
        )
    return resolution.created


def customer_import_run(*, import_id: int, batch_size: int = 500) -> CustomerImport:
    """Run a pending import to the end. Safe to call again: a finished import is returned as is."""
    imp = CustomerImport.objects.select_related("workspace", "created_by").get(pk=import_id)
    if imp.status in (ImportStatus.DONE, ImportStatus.FAILED):
        return imp
    reader = csv.DictReader(io.StringIO(imp.source.lstrip("\ufeff")))
    if not reader.fieldnames:
        imp.status, imp.finished_at = ImportStatus.FAILED, timezone.now()
        imp.errors = [{"row": 0, "error": "the file has no header row"}]
        imp.save()
        return imp
    imp.status = ImportStatus.RUNNING
    imp.total_rows = max(imp.source.count("\n") - 1, 0)  # an estimate for progress; exact at the end
    imp.save(update_fields=["status", "total_rows"])
    rows = ({(k or "").strip().lower(): (v or "") for k, v in row.items()} for row in reader)
    batch: list[tuple[int, dict[str, str]]] = []
    number = 0
    for number, row in enumerate(rows, start=1):
        batch.append((number, row))
        if len(batch) >= batch_size:
            _batch_run(imp, batch)
            batch = []
    if batch:
        _batch_run(imp, batch)
    imp.total_rows = number
    imp.status = ImportStatus.DONE
    imp.finished_at = timezone.now()
    imp.save(update_fields=["total_rows", "status", "finished_at"])
    return imp


def _batch_run(imp: CustomerImport, batch: Iterable[tuple[int, dict[str, str]]]) -> None:
    with transaction.atomic():
        for number, row in batch:
            try:
                with transaction.atomic():
                    created = _row_apply(imp=imp, row=row, number=number)
            except (RowError, InvalidIdentifier, ProfileInvalid, ValueError) as exc:
                imp.failed_count += 1
                if len(imp.errors) < MAX_REPORTED_ERRORS:
                    imp.errors = [*imp.errors, {"row": number, "error": str(exc)}]
            else:
                if created:
                    imp.created_count += 1
                else:
                    imp.updated_count += 1
            imp.processed_rows += 1
        imp.save(update_fields=["processed_rows", "created_count", "updated_count", "failed_count", "errors"])
