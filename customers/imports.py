"""CSV import of customers through the one resolution service, deduplicating as it goes.

Columns (header names, case-insensitive; every one optional except at least one identifier per row):

``name``, ``email``, ``phone``, ``external_id``, ``webchat_id`` (several values separated by ``;``),
``verified`` (true: the file vouches for the row's identifiers, so links between existing customers
merge instead of being suggested), ``tags`` (``;``-separated, added), ``timezone``,
``preferred_channel``, ``attr:<key>`` (a defined attribute), ``consent:<channel>:<purpose>``
(``opted_in``/``opted_out``; purpose ``all`` for the whole channel).

Rows go in batches of ``batch_size``, one transaction each, so progress is committed per batch and a
reader sees it move. Within a batch every row is first parsed and validated without the database (a bad
row is reported with its row number and reason, and never stops the good ones). Then the identifiers of
the whole batch are looked up at once, and the rows that need no decision — all identifiers new (a new
customer), or the known ones all on one customer no other row of the batch touches (an update, new
identifiers linked to it) — are written with a few bulk statements. Everything else (an identifier
repeated within the batch, identifiers on several customers: merges and suggestions) goes row by row in
file order through :func:`customer_resolve_identifiers`, one savepoint per row, exactly as a single
upsert would; so does the whole batch if the bulk write loses a race with a concurrent writer.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from psycopg import sql

from engagement import events
from engagement.errors import ValidationFailed
from engagement.sanitize import InputInvalid, text_problem

from .consent import consent_check_values, consent_record
from .identifiers import Identifier, InvalidIdentifier
from .models import (
    AttributeDefinition,
    ConsentEvent,
    ConsentSource,
    Customer,
    CustomerImport,
    Identity,
    ImportStatus,
    MergeSource,
)
from .profile import (
    ProfileInvalid,
    attributes_coerce,
    customer_update,
    preferred_channel_check,
    tags_clean,
    timezone_check,
)
from .resolution import customer_resolve_identifiers, identifiers_normalize, identity_touch_fields

IDENTIFIER_COLUMNS = {"email": "email", "phone": "phone", "external_id": "external", "webchat_id": "webchat"}
MAX_REPORTED_ERRORS = 1000
TRUE = {"1", "true", "yes", "y"}


class RowError(ValidationFailed):
    code = "import_row_invalid"


def customer_import_create(
    *, workspace: Any, source: str, filename: str = "", actor: Any = None
) -> CustomerImport:
    """Store a pending import. Raises ``InputInvalid`` (400) when the file holds text no column can
    store (a NUL character), with the line it is on."""
    for text, what in ((source, "the file"), (filename, "the file name")):
        problem = text_problem(text)
        if problem:
            line = text.count("\n", 0, max(text.find("\x00"), 0)) + 1
            where = f"{what} (line {line})" if what == "the file" else what
            raise InputInvalid(f"{where} {problem}", field="file")
    return CustomerImport.objects.create(
        workspace=workspace, source=source, filename=filename[:255], created_by=actor
    )


def customer_import_start(
    *, workspace: Any, source: str, filename: str = "", actor: Any = None
) -> CustomerImport:
    """Store a pending import and queue its run (``customers.tasks.run_import``) after commit, through
    the outbox (an ``import.queued`` event), so a broker outage delays the run but never loses it."""
    with transaction.atomic():
        imp = customer_import_create(workspace=workspace, source=source, filename=filename, actor=actor)
        events.publish_on_commit(
            events.DomainEvent(
                name=events.IMPORT_QUEUED, workspace_id=imp.workspace_id, data={"import_id": imp.pk}
            )
        )
    return imp


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(";") if v.strip()]


def _row_apply(*, imp: CustomerImport, item: _Row) -> bool:
    """Apply one prepared row through the resolution service, exactly as a single upsert would;
    returns True when it created a customer."""
    resolution = customer_resolve_identifiers(
        workspace=imp.workspace,
        identifiers=item.idents,
        display_name=item.name,
        source=MergeSource.IMPORT,
        event_ref=f"import:{imp.pk}:row:{item.number}",
        actor=imp.created_by,
    )
    customer = resolution.customer
    if item.has_profile:
        customer_update(
            workspace=imp.workspace,
            customer=customer,
            attributes=item.attributes or None,
            add_tags=item.tags or None,
            timezone=item.timezone or None,
            preferred_channel=item.preferred or None,
        )
    for channel, purpose, status in item.consents:
        consent_record(
            customer=customer,
            channel=channel,
            purpose=purpose,
            status=status,
            source=ConsentSource.IMPORT,
            evidence={"import_id": imp.pk, "row": item.number},
        )
    return resolution.created


def customer_import_run(*, import_id: int, batch_size: int = 2000) -> CustomerImport:
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


ROW_ERRORS = (RowError, InvalidIdentifier, ProfileInvalid, ValueError)


@dataclass
class _Row:
    """One row, parsed and validated: what the bulk path writes."""

    number: int
    idents: list[Identifier]
    name: str
    attributes: dict[str, Any]
    tags: list[str]
    timezone: str
    preferred: str
    consents: list[tuple[str, str, str]]  # (channel, purpose, status)
    has_profile: bool
    owner: int | None = None
    known: list[Identity] = field(default_factory=list)

    def identity_keys(self) -> list[tuple[str, str]]:
        return [(i.kind, i.value) for i in self.idents]


def _row_prepare(
    *, imp: CustomerImport, row: dict[str, str], number: int, definitions: dict[str, AttributeDefinition]
) -> _Row:
    """Parse and validate one row without writing (identifiers, profile, consent, in that order); a row
    that passes only fails later on a database conflict."""
    verified = row.get("verified", "").strip().lower() in TRUE
    identifiers = [
        Identifier(kind, value, verified)
        for column, kind in IDENTIFIER_COLUMNS.items()
        for value in _split(row.get(column, ""))
    ]
    if not identifiers:
        raise RowError("no identifier (email, phone, external_id or webchat_id)")
    idents = identifiers_normalize(workspace=imp.workspace, identifiers=identifiers)
    raw_attributes = {k[5:]: v for k, v in row.items() if k.startswith("attr:") and v.strip()}
    raw_tags = _split(row.get("tags", ""))
    tz = row.get("timezone", "").strip()
    preferred = row.get("preferred_channel", "").strip().lower()
    attributes: dict[str, Any] = {}
    tags: list[str] = []
    if raw_attributes:
        attributes = attributes_coerce(
            workspace=imp.workspace, values=raw_attributes, definitions=definitions
        )
    if raw_tags:
        tags = tags_clean(raw_tags)
    if tz:
        timezone_check(tz)
    if preferred:
        preferred_channel_check(preferred)
    consents: list[tuple[str, str, str]] = []
    for column, value in row.items():
        if not column.startswith("consent:") or not value.strip():
            continue
        parts = column.split(":")
        if len(parts) != 3:
            raise RowError(f"consent column {column!r} must be consent:<channel>:<purpose>")
        purpose = "" if parts[2] == "all" else parts[2]
        status = value.strip().lower()
        consent_check_values(channel=parts[1], status=status, source=ConsentSource.IMPORT, purpose=purpose)
        consents.append((parts[1], purpose, status))
    return _Row(
        number=number,
        idents=idents,
        name=row.get("name", "").strip()[:200],
        attributes=attributes,
        tags=tags,
        timezone=tz,
        preferred=preferred,
        consents=consents,
        has_profile=bool(raw_attributes or raw_tags or tz or preferred),
    )


def _batch_run(imp: CustomerImport, batch: Sequence[tuple[int, dict[str, str]]]) -> None:
    definitions = {d.key: d for d in AttributeDefinition.objects.filter(workspace=imp.workspace)}
    errors: list[tuple[int, str]] = []
    prepared: list[_Row] = []
    for number, row in batch:
        try:
            prepared.append(_row_prepare(imp=imp, row=row, number=number, definitions=definitions))
        except ROW_ERRORS as exc:
            errors.append((number, str(exc)))
    created = updated = 0
    with transaction.atomic():
        try:
            with transaction.atomic():
                slow, created, updated = _batch_bulk_apply(imp, prepared)
        except DatabaseError:
            # A concurrent writer took one of the identifiers between the lookup and the insert (or a
            # value does not fit a column): row by row, where each row decides or fails on its own.
            slow, created, updated = prepared, 0, 0
        for item in slow:
            try:
                with transaction.atomic():
                    was_created = _row_apply(imp=imp, item=item)
            except ROW_ERRORS as exc:
                errors.append((item.number, str(exc)))
            else:
                if was_created:
                    created += 1
                else:
                    updated += 1
        errors.sort()
        room = max(MAX_REPORTED_ERRORS - len(imp.errors), 0)
        if errors and room:
            imp.errors = [*imp.errors, *({"row": n, "error": e} for n, e in errors[:room])]
        imp.failed_count += len(errors)
        imp.created_count += created
        imp.updated_count += updated
        imp.processed_rows += len(batch)
        imp.save(update_fields=["processed_rows", "created_count", "updated_count", "failed_count", "errors"])


def _batch_bulk_apply(imp: CustomerImport, rows: list[_Row]) -> tuple[list[_Row], int, int]:
    """Write the rows that need no decision with bulk statements; return the rest (file order) for the
    row-by-row path, and how many customers were created and updated."""
    workspace = imp.workspace
    key_uses = Counter(key for item in rows for key in item.identity_keys())
    by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, value in key_uses:
        by_kind[kind].append(value)
    known: dict[tuple[str, str], Identity] = {}
    for kind, values in by_kind.items():
        for identity in Identity.objects.filter(workspace=workspace, kind=kind, value__in=values):
            known[(identity.kind, identity.value)] = identity

    slow: list[_Row] = []
    fast: list[_Row] = []
    for item in rows:
        item.known = [known[key] for key in item.identity_keys() if key in known]
        owners = {identity.customer_id for identity in item.known}
        # Repeated within the batch (the rows depend on each other's outcome) or tying customers
        # together (merge or suggestion): decided one row at a time.
        if len(owners) > 1 or any(key_uses[key] > 1 for key in item.identity_keys()):
            slow.append(item)
        else:
            item.owner = next(iter(owners), None)
            fast.append(item)
    # A customer the row-by-row path may change (merge) or that two rows update: row by row as well,
    # so every row sees the customer as the rows before it in the file left it.
    slow_owners = {identity.customer_id for item in slow for identity in item.known}
    owner_uses = Counter(item.owner for item in fast if item.owner is not None)
    existing = [item for item in fast if item.owner is not None and owner_uses[item.owner] == 1]
    existing = [item for item in existing if item.owner not in slow_owners]
    locked = (
        {
            c.pk: c
            for c in Customer.objects.select_for_update().filter(
                workspace=workspace, pk__in=[item.owner for item in existing]
            )
        }
        if existing
        else {}
    )
    new: list[_Row] = []
    update: list[_Row] = []
    for item in fast:
        if item.owner is None:
            new.append(item)
            continue
        customer = locked.get(item.owner)
        if customer is None or customer.merged_into_id is not None or customer.erased_at is not None:
            slow.append(item)
        else:
            update.append(item)
    slow.sort(key=lambda item: item.number)

    now = timezone.now()
    # New customers: ids reserved from the table's sequence, so identities and consent rows can name
    # them, then one COPY (no ORM objects: at 100,000 rows their construction cost more than the SQL).
    new_ids = _ids_reserve(Customer._meta.db_table, len(new))
    _copy_rows(
        Customer._meta.db_table,
        (
            "id",
            "workspace_id",
            "display_name",
            "attributes",
            "tags",
            "timezone",
            "preferred_channel",
            "created_at",
            "updated_at",
        ),
        (
            (
                pk,
                workspace.pk,
                item.name,
                json.dumps({k: v for k, v in item.attributes.items() if v is not None}),
                json.dumps(item.tags),
                item.timezone,
                item.preferred,
                now,
                now,
            )
            for item, pk in zip(new, new_ids, strict=True)
        ),
    )
    owner_of: dict[int, int] = {item.number: pk for item, pk in zip(new, new_ids, strict=True)}
    changed: list[Customer] = []
    for item in update:
        assert item.owner is not None
        customer = locked[item.owner]
        owner_of[item.number] = customer.pk
        if _profile_apply(customer, item):
            customer.updated_at = now
            changed.append(customer)
    if changed:
        Customer.objects.bulk_update(
            changed, ["display_name", "attributes", "tags", "timezone", "preferred_channel", "updated_at"]
        )

    identities: list[tuple[Any, ...]] = []
    touched: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for item in [*new, *update]:
        customer_id = owner_of[item.number]
        for ident in item.idents:
            seen = known.get((ident.kind, ident.value))
            if seen is not None:
                fields = identity_touch_fields(identity=seen, ident=ident, channel_kind="", now=now)
                if fields:
                    touched[tuple(sorted(fields))].append(seen.pk)
                continue
            identities.append(
                (workspace.pk, customer_id, ident.kind, ident.value, ident.verified, "", now, "", now)
            )
    _identities_insert(identities)
    for names, pks in touched.items():
        change: dict[str, datetime | bool] = {"last_seen_at": now}
        if "verified" in names:
            change["verified"] = True
        Identity.objects.filter(pk__in=pks).update(**change)
    _copy_rows(
        ConsentEvent._meta.db_table,
        (
            "workspace_id",
            "customer_id",
            "channel",
            "purpose",
            "status",
            "source",
            "address",
            "evidence",
            "occurred_at",
            "created_at",
        ),
        (
            (
                workspace.pk,
                owner_of[item.number],
                channel,
                purpose,
                status,
                ConsentSource.IMPORT,
                "",
                json.dumps({"import_id": imp.pk, "row": item.number}),
                now,
                now,
            )
            for item in [*new, *update]
            for channel, purpose, status in item.consents
        ),
    )
    return slow, len(new), len(update)


IDENTITY_COLUMNS = (
    "workspace_id",
    "customer_id",
    "kind",
    "value",
    "verified",
    "first_channel",
    "first_seen_at",
    "last_channel",
    "last_seen_at",
)


def _sql(template: str, **names: str | Sequence[str]) -> str:
    """``template`` with ``{name}`` filled in as quoted identifiers (lists joined by commas)."""
    parts = {
        key: sql.Identifier(value)
        if isinstance(value, str)
        else sql.SQL(", ").join(map(sql.Identifier, value))
        for key, value in names.items()
    }
    connection.ensure_connection()
    return sql.SQL(template).format(**parts).as_string(connection.connection)


def _ids_reserve(table: str, count: int) -> list[int]:
    """``count`` ids from ``table``'s id sequence (identity column), ascending."""
    if not count:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count]
        )
        return sorted(int(row[0]) for row in cursor.fetchall())


def _copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """``COPY table (columns) FROM STDIN`` of ``rows`` (psycopg 3 adapts each value; JSON as text)."""
    statement = _sql("COPY {table} ({columns}) FROM STDIN", table=table, columns=columns)
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _identities_insert(rows: list[tuple[Any, ...]]) -> None:
    """New identities: COPY into a staging table, then one set-based insert into the real table that
    skips identifiers taken meanwhile (the unique constraint on workspace, kind, value). If any was
    taken, a concurrent writer won the race for it: raises IntegrityError so the caller's savepoint
    rolls the batch back and its rows go one by one through resolution, which decides each."""
    if not rows:
        return
    names = {"stage": STAGE, "table": Identity._meta.db_table, "columns": IDENTITY_COLUMNS}
    with connection.cursor() as cursor:
        # The staging table has the real columns' types (a value too long fails here, as it would
        # there) and no constraints; it lives for the connection, and is emptied after each use.
        cursor.execute(
            _sql(
                "CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS"
                " AS SELECT {columns} FROM {table} WITH NO DATA",
                **names,
            )
        )
        cursor.execute(_sql("TRUNCATE {stage}", stage=STAGE))
    _copy_rows(STAGE, IDENTITY_COLUMNS, rows)
    with connection.cursor() as cursor:
        cursor.execute(
            _sql(
                "INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} ON CONFLICT DO NOTHING",
                **names,
            )
        )
        inserted = cursor.rowcount
        cursor.execute(_sql("TRUNCATE {stage}", stage=STAGE))
    if inserted != len(rows):
        raise IntegrityError(f"{len(rows) - inserted} identifier(s) of the batch were created meanwhile")


STAGE = "customers_import_identity_stage"


def _profile_apply(customer: Customer, item: _Row) -> bool:
    """Apply the row's profile to a customer it resolved to, as resolution (a name only fills a gap)
    and ``customer_update`` (attributes merged, tags added) would; True when the row has any."""
    changed = False
    if item.name and not customer.display_name:
        customer.display_name = item.name
        changed = True
    if not item.has_profile:
        return changed
    if item.attributes:
        merged = {**customer.attributes, **item.attributes}
        customer.attributes = {k: v for k, v in merged.items() if v is not None}
    for tag in item.tags:
        if tag not in customer.tags:
            customer.tags = [*customer.tags, tag]
    if item.timezone:
        customer.timezone = item.timezone
    if item.preferred:
        customer.preferred_channel = item.preferred
    return True
