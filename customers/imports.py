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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from psycopg import sql

from engagement import events
from engagement.errors import ValidationFailed
from engagement.sanitize import InputInvalid, text_problem

from .consent import consent_check_values, consent_record
from .identifiers import Identifier, InvalidIdentifier, identifier_value_normalize
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
    attribute_coerce,
    customer_update,
    preferred_channel_check,
    tags_clean,
    timezone_check,
)
from .resolution import LAST_SEEN_RESOLUTION, customer_resolve_identifiers

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


def customer_import_run(*, import_id: int, batch_size: int = 10_000) -> CustomerImport:
    """Run a pending import to the end. Safe to call again: a finished import is returned as is."""
    imp = CustomerImport.objects.select_related("workspace", "created_by").get(pk=import_id)
    if imp.status in (ImportStatus.DONE, ImportStatus.FAILED):
        return imp
    reader = csv.reader(io.StringIO(imp.source.lstrip("\ufeff")))
    header = next(reader, None)
    if not header:
        imp.status, imp.finished_at = ImportStatus.FAILED, timezone.now()
        imp.errors = [{"row": 0, "error": "the file has no header row"}]
        imp.save()
        return imp
    imp.status = ImportStatus.RUNNING
    imp.total_rows = max(imp.source.count("\n") - 1, 0)  # an estimate for progress; exact at the end
    imp.save(update_fields=["status", "total_rows"])
    definitions = {d.key: d for d in AttributeDefinition.objects.filter(workspace=imp.workspace)}
    preparer = _RowPreparer(workspace=imp.workspace, header=header, definitions=definitions)
    batch: list[_Row | tuple[int, str]] = []
    number = 0
    for cells in reader:
        if not cells:
            continue  # a blank line is no row (as csv.DictReader reads the file)
        number += 1
        batch.append(preparer.prepare(cells, number))
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


@dataclass(slots=True)
class _Row:
    """One row, parsed and validated: what the bulk path writes."""

    number: int
    keys: list[tuple[str, str]]  # (kind, normalized value), each once, in column order
    verified: bool
    name: str
    attributes: dict[str, Any]
    tags: list[str]
    timezone: str
    preferred: str
    consents: list[tuple[str, str, str]]  # (channel, purpose, status)
    has_profile: bool

    @property
    def idents(self) -> list[Identifier]:
        return [Identifier(kind, value, self.verified) for kind, value in self.keys]

    def identity_keys(self) -> list[tuple[str, str]]:
        return self.keys


_ABSENT = -1


class _RowPreparer:
    """Parses and validates rows without the database, exactly as the profile, consent and identifier
    services would one row at a time (same checks, same order, same messages), but checks each distinct
    cell value once per import: an import repeats few plan names, tags, consent values and time zones,
    and each identifier is normalized once however many rows carry it."""

    def __init__(
        self, *, workspace: Any, header: list[str], definitions: dict[str, AttributeDefinition]
    ) -> None:
        self.workspace = workspace
        self.definitions = definitions
        # Header names lower-cased; a repeated name reads its last column (as csv.DictReader's dict).
        index: dict[str, int] = {}
        for position, name in enumerate(header):
            index[name.strip().lower()] = position
        self.width = len(header)
        self.identifier_columns = [
            (kind, index.get(column, _ABSENT)) for column, kind in IDENTIFIER_COLUMNS.items()
        ]
        self.verified = index.get("verified", _ABSENT)
        self.name = index.get("name", _ABSENT)
        self.tags = index.get("tags", _ABSENT)
        self.timezone = index.get("timezone", _ABSENT)
        self.preferred = index.get("preferred_channel", _ABSENT)
        self.attribute_columns = [(name[5:], i) for name, i in index.items() if name.startswith("attr:")]
        self.consent_columns = [(name, i) for name, i in index.items() if name.startswith("consent:")]
        self.all_defined = all(key in definitions for key, _ in self.attribute_columns)
        self.region = workspace.default_region
        self._identifiers: dict[tuple[str, str], tuple[str, str] | str] = {}
        self._attributes: dict[tuple[str, str], tuple[Any, str]] = {}
        self._tags: dict[str, tuple[list[str], str]] = {}
        self._checked: dict[tuple[str, str], str] = {}
        self._consents: dict[tuple[str, str], tuple[tuple[str, str, str] | None, str]] = {}

    def prepare(self, cells: list[str], number: int) -> _Row | tuple[int, str]:
        """The row ready to write, or ``(number, error)``."""
        if len(cells) < self.width:
            cells = [*cells, *([""] * (self.width - len(cells)))]
        cells.append("")  # what an absent column reads (index -1)
        try:
            return self._prepare(cells, number)
        except ROW_ERRORS as exc:
            return (number, str(exc))

    def _prepare(self, cells: list[str], number: int) -> _Row:
        verified = cells[self.verified].strip().lower() in TRUE
        keys: list[tuple[str, str]] = []
        seen_any = False
        for kind, position in self.identifier_columns:
            cell = cells[position]
            if not cell:
                continue
            for raw in _split(cell) if ";" in cell else (cell.strip(),):
                if not raw:
                    continue
                seen_any = True
                key = self._identifier(kind, raw)
                if key not in keys:
                    keys.append(key)
        if not seen_any:
            raise RowError("no identifier (email, phone, external_id or webchat_id)")
        attributes: dict[str, Any] = {}
        present = [(key, cells[i]) for key, i in self.attribute_columns if cells[i].strip()]
        if present:
            unknown = [] if self.all_defined else sorted({k for k, _ in present} - set(self.definitions))
            if unknown:
                raise ProfileInvalid(f"unknown attribute(s): {', '.join(unknown)}")
            for name, raw in present:
                attributes[name] = self._attribute(name, raw)
        tags: list[str] = []
        raw_tags = cells[self.tags]
        if raw_tags.strip():
            tags = self._tag_list(raw_tags)
        tz = cells[self.timezone].strip()
        if tz:
            self._check("timezone", tz)
        preferred = cells[self.preferred].strip().lower()
        if preferred:
            self._check("preferred", preferred)
        consents: list[tuple[str, str, str]] = []
        for column, position in self.consent_columns:
            value = cells[position]
            if value.strip():
                consents.append(self._consent(column, value))
        return _Row(
            number=number,
            keys=keys,
            verified=verified,
            name=cells[self.name].strip()[:200],
            attributes=attributes,
            tags=tags,
            timezone=tz,
            preferred=preferred,
            consents=consents,
            has_profile=bool(present or tags or tz or preferred),
        )

    def _identifier(self, kind: str, raw: str) -> tuple[str, str]:
        found = self._identifiers.get((kind, raw))
        if found is None:
            try:
                found = (kind, identifier_value_normalize(kind=kind, value=raw, region=self.region))
            except InvalidIdentifier as exc:
                found = str(exc)
            self._identifiers[(kind, raw)] = found
        if isinstance(found, str):
            raise InvalidIdentifier(found)
        return found

    def _attribute(self, key: str, raw: str) -> Any:
        found = self._attributes.get((key, raw))
        if found is None:
            try:
                found = (attribute_coerce(definition=self.definitions[key], value=raw), "")
            except ProfileInvalid as exc:
                found = (None, str(exc))
            self._attributes[(key, raw)] = found
        if found[1]:
            raise ProfileInvalid(found[1])
        return found[0]

    def _tag_list(self, raw: str) -> list[str]:
        found = self._tags.get(raw)
        if found is None:
            try:
                found = (tags_clean(_split(raw)), "")
            except ProfileInvalid as exc:
                found = ([], str(exc))
            self._tags[raw] = found
        if found[1]:
            raise ProfileInvalid(found[1])
        return list(found[0])

    def _check(self, what: str, value: str) -> None:
        problem = self._checked.get((what, value))
        if problem is None:
            try:
                if what == "timezone":
                    timezone_check(value)
                else:
                    preferred_channel_check(value)
                problem = ""
            except ProfileInvalid as exc:
                problem = str(exc)
            self._checked[(what, value)] = problem
        if problem:
            raise ProfileInvalid(problem)

    def _consent(self, column: str, value: str) -> tuple[str, str, str]:
        found = self._consents.get((column, value))
        if found is None:
            try:
                found = (_consent_parse(column, value), "")
            except (RowError, ValueError) as exc:
                found = (None, str(exc))
            self._consents[(column, value)] = found
        if found[0] is None:
            raise RowError(found[1])
        return found[0]


def _consent_parse(column: str, value: str) -> tuple[str, str, str]:
    parts = column.split(":")
    if len(parts) != 3:
        raise RowError(f"consent column {column!r} must be consent:<channel>:<purpose>")
    purpose = "" if parts[2] == "all" else parts[2]
    status = value.strip().lower()
    consent_check_values(channel=parts[1], status=status, source=ConsentSource.IMPORT, purpose=purpose)
    return (parts[1], purpose, status)


def _batch_run(imp: CustomerImport, batch: Sequence[_Row | tuple[int, str]]) -> None:
    errors: list[tuple[int, str]] = [item for item in batch if isinstance(item, tuple)]
    prepared: list[_Row] = [item for item in batch if isinstance(item, _Row)]
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


@dataclass(slots=True)
class _Profile:
    """A customer's profile as the batch leaves it: an existing (locked) customer's, or a new one's."""

    display_name: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    timezone: str = ""
    preferred_channel: str = ""
    customer_id: int | None = None  # None: created by this batch
    changed: bool = False


@dataclass(slots=True)
class _KnownIdentity:
    pk: int
    customer_id: int
    verified: bool
    last_seen_at: datetime
    customer_gone: bool  # its customer was merged away or erased


# One statement per batch: the batch's identifiers that exist, with their customers locked (they may be
# updated) and the customers' profiles. ``unnest`` of two arrays keeps it one prepared statement.
_KNOWN_SQL = (
    "SELECT i.id, i.kind, i.value, i.customer_id, i.verified, i.last_seen_at,"
    " (c.merged_into_id IS NOT NULL OR c.erased_at IS NOT NULL),"
    " c.display_name, c.attributes, c.tags, c.timezone, c.preferred_channel"
    " FROM unnest(%s::text[], %s::text[]) AS k(kind, value)"
    " JOIN customers_identity i ON i.workspace_id = %s AND i.kind = k.kind AND i.value = k.value"
    " JOIN customers_customer c ON c.id = i.customer_id"
    " FOR UPDATE OF c"
)

_CUSTOMERS_UPDATE_SQL = (
    "UPDATE customers_customer AS c SET display_name = u.display_name,"
    " attributes = u.attributes::jsonb, tags = u.tags::jsonb, timezone = u.timezone,"
    " preferred_channel = u.preferred_channel, updated_at = %s"
    " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])"
    " AS u(id, display_name, attributes, tags, timezone, preferred_channel)"
    " WHERE c.id = u.id"
)


def _batch_bulk_apply(imp: CustomerImport, rows: list[_Row]) -> tuple[list[_Row], int, int]:
    """Write the rows that need no decision with set-based statements; return the rest (file order) for
    the row-by-row path, and how many customers were created and updated.

    The batch is planned in file order in memory, as the row-by-row path would apply it: each
    identifier's owner is the existing customer that has it or the row of this batch that brought it
    first, so a later row repeating an identifier updates the customer an earlier row created. A row that
    ties two owners together (a merge or a suggestion), or whose customer was merged away or erased,
    needs a decision: it goes row by row, and so does every later row sharing an identifier or a
    customer with it, so every row still sees the customer as the rows before it in the file left it."""
    workspace = imp.workspace
    keys = list(dict.fromkeys(key for item in rows for key in item.identity_keys()))
    known: dict[tuple[str, str], _KnownIdentity] = {}
    profiles: list[_Profile] = []
    owner: dict[tuple[str, str], int] = {}  # identifier -> index in ``profiles``
    by_customer: dict[int, int] = {}
    if keys:
        with connection.cursor() as cursor:
            cursor.execute(_KNOWN_SQL, [[k for k, _ in keys], [v for _, v in keys], workspace.pk])
            for pk, kind, value, customer_id, verified, last_seen_at, gone, *profile in cursor.fetchall():
                known[(kind, value)] = _KnownIdentity(pk, customer_id, verified, last_seen_at, gone)
                if customer_id not in by_customer:
                    name, attributes, tags, tz, preferred = profile
                    by_customer[customer_id] = len(profiles)
                    profiles.append(
                        _Profile(
                            display_name=name,
                            attributes=_json(attributes),
                            tags=_json(tags),
                            timezone=tz,
                            preferred_channel=preferred,
                            customer_id=customer_id,
                        )
                    )
                owner[(kind, value)] = by_customer[customer_id]

    now = timezone.now()
    stale = now - LAST_SEEN_RESOLUTION
    slow: list[_Row] = []
    tainted_keys: set[tuple[str, str]] = set()
    tainted_owners: set[int] = set()
    planned: list[tuple[_Row, int]] = []  # (row, index in ``profiles``)
    new_identities: dict[tuple[str, str], list[Any]] = {}  # key -> [profile index, verified]
    touched: dict[int, bool] = {}  # known identity pk -> becomes verified
    created = updated = 0
    for item in rows:
        item_keys = item.identity_keys()
        owners = list(dict.fromkeys(owner[key] for key in item_keys if key in owner))
        if (
            len(owners) > 1
            or any(key in tainted_keys for key in item_keys)
            or any(o in tainted_owners for o in owners)
            or any(known[key].customer_gone for key in item_keys if key in known)
        ):
            slow.append(item)
            tainted_keys.update(item_keys)
            tainted_owners.update(owners)
            continue
        if owners:
            index = owners[0]
            updated += 1
        else:
            index = len(profiles)
            profiles.append(_Profile())
            created += 1
        if _profile_apply(profiles[index], item):
            profiles[index].changed = True
        for key in item_keys:
            seen = known.get(key)
            if seen is not None:
                # What identity_touch_fields decides for an import (no channel): verified when the row
                # vouches for it, last seen now unless seen within LAST_SEEN_RESOLUTION.
                if item.verified and not seen.verified:
                    touched[seen.pk] = True
                elif seen.last_seen_at <= stale:
                    touched.setdefault(seen.pk, False)
            elif key in new_identities:
                new_identities[key][1] = new_identities[key][1] or item.verified
            else:
                new_identities[key] = [index, item.verified]
                owner[key] = index
        planned.append((item, index))

    # New customers: ids reserved from the table's sequence, so identities and consent rows can name
    # them, then one COPY (no ORM objects: at 100,000 rows their construction cost more than the SQL).
    new_profiles = [p for p in profiles if p.customer_id is None]
    for profile, pk in zip(
        new_profiles, _ids_reserve(Customer._meta.db_table, len(new_profiles)), strict=True
    ):
        profile.customer_id = pk
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
                p.customer_id,
                workspace.pk,
                p.display_name,
                json.dumps(p.attributes) if p.attributes else "{}",
                json.dumps(p.tags) if p.tags else "[]",
                p.timezone,
                p.preferred_channel,
                now,
                now,
            )
            for p in new_profiles
        ),
    )
    changed = [p for p in profiles[: len(by_customer)] if p.changed]
    if changed:
        with connection.cursor() as cursor:
            cursor.execute(
                _CUSTOMERS_UPDATE_SQL,
                [
                    now,
                    [p.customer_id for p in changed],
                    [p.display_name for p in changed],
                    [json.dumps(p.attributes) for p in changed],
                    [json.dumps(p.tags) for p in changed],
                    [p.timezone for p in changed],
                    [p.preferred_channel for p in changed],
                ],
            )
    _identities_insert(
        [
            (workspace.pk, profiles[index].customer_id, kind, value, verified, "", now, "", now)
            for (kind, value), (index, verified) in new_identities.items()
        ]
    )
    for verify in (False, True):
        pks = [pk for pk, becomes_verified in touched.items() if becomes_verified is verify]
        if pks:
            change: dict[str, datetime | bool] = {"last_seen_at": now}
            if verify:
                change["verified"] = True
            Identity.objects.filter(pk__in=pks).update(**change)
    consents = [
        (item, index, channel, purpose, status)
        for item, index in planned
        for channel, purpose, status in item.consents
    ]
    consent_ids = _ids_reserve(ConsentEvent._meta.db_table, len(consents))
    _copy_rows(
        ConsentEvent._meta.db_table,
        (
            "id",
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
                pk,
                workspace.pk,
                profiles[index].customer_id,
                channel,
                purpose,
                status,
                ConsentSource.IMPORT,
                "",
                # json.dumps({"import_id": ..., "row": ...}) of two ints, spelt out (a call per row otherwise)
                f'{{"import_id": {int(imp.pk)}, "row": {int(item.number)}}}',
                now,
                now,
            )
            for pk, (item, index, channel, purpose, status) in zip(consent_ids, consents, strict=True)
        ),
    )
    # What resolution and consent_record publish row by row, for the whole batch in ONE outbox INSERT:
    # one customer.created per customer the batch created, one consent.changed per consent row.
    events.publish_on_commit(
        *(
            events.DomainEvent(
                name=events.CUSTOMER_CREATED,
                workspace_id=workspace.pk,
                customer_id=p.customer_id,
                data={"source": MergeSource.IMPORT, "channel_kind": ""},
            )
            for p in new_profiles
        ),
        *(
            events.DomainEvent(
                name=events.CONSENT_CHANGED,
                workspace_id=workspace.pk,
                customer_id=profiles[index].customer_id,
                data={
                    "consent_event_id": pk,
                    "channel": channel,
                    "purpose": purpose,
                    "status": status,
                    "source": ConsentSource.IMPORT,
                },
            )
            for pk, (_, index, channel, purpose, status) in zip(consent_ids, consents, strict=True)
        ),
    )
    return slow, created, updated


def _json(value: Any) -> Any:
    """A jsonb column's value as psycopg returns it (decoded) or as text (decoded here)."""
    return json.loads(value) if isinstance(value, str) else value


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
    """New identities: one COPY straight into the table. The unique constraint on (workspace, kind,
    value) refuses an identifier a concurrent writer created after the batch looked it up (the COPY
    waits for that writer's commit): raises IntegrityError, so the caller's savepoint rolls the batch
    back and its rows go one by one through resolution, which decides each."""
    if not rows:
        return
    try:
        _copy_rows(Identity._meta.db_table, IDENTITY_COLUMNS, rows)
    except psycopg.errors.UniqueViolation as exc:
        detail = exc.diag.message_detail or ""
        raise IntegrityError(f"an identifier of the batch was created meanwhile: {detail}") from exc


def _profile_apply(customer: Any, item: _Row) -> bool:
    """Apply the row's profile to a customer it resolved to (a :class:`_Profile`), as resolution (a name
    only fills a gap) and ``customer_update`` (attributes merged, tags added) would; True when the row
    changes anything it carries."""
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
