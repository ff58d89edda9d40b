"""The profile: typed custom attributes, tags, time zone, preferred channel, and identities by hand."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterable
from typing import Any

import phonenumbers
from django.db import transaction
from phonenumbers import timezone as phone_timezone

from engagement.errors import Conflict, ValidationFailed
from engagement.models import Workspace

from .identifiers import Identifier, identifier_normalize
from .models import AttributeDefinition, AttributeType, Customer, Identity, IdentityKind, PreferredChannel

TAG_RE = re.compile(r"^[\w][\w .:/-]{0,63}$")


class ProfileInvalid(ValidationFailed):
    """A profile change that does not fit (unknown attribute, wrong type, bad zone or tag...)."""

    code = "profile_invalid"


class IdentityTaken(Conflict, ValueError):
    """The identifier already belongs to another customer (merge them instead)."""

    code = "identity_taken"

    def __init__(self, owner_id: int) -> None:
        super().__init__(
            f"the identifier belongs to customer {owner_id}; merge the customers instead",
            extra={"owner_id": owner_id},
        )
        self.owner_id = owner_id


def attribute_define(*, workspace: Workspace, key: str, label: str, type: str) -> AttributeDefinition:
    if type not in AttributeType.values:
        raise ProfileInvalid(f"unknown attribute type {type!r}", field="type")
    if not re.fullmatch(r"[a-z0-9_-]{1,64}", key):
        raise ProfileInvalid("attribute keys are 1-64 lower-case letters, digits, - or _", field="key")
    definition, _ = AttributeDefinition.objects.update_or_create(
        workspace=workspace, key=key, defaults={"label": label or key, "type": type}
    )
    return definition


def attribute_coerce(*, definition: AttributeDefinition, value: Any) -> Any:
    """The JSON form of ``value`` for the definition's type (dates as ISO strings); None clears."""
    if value is None or value == "":
        return None
    kind = definition.type
    try:
        if kind == AttributeType.STRING:
            return str(value)[:1000]
        if kind == AttributeType.NUMBER:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError
            return int(number) if number.is_integer() else number
        if kind == AttributeType.BOOLEAN:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"true", "yes", "1", "y"}:
                return True
            if text in {"false", "no", "0", "n"}:
                return False
            raise ValueError
        if kind == AttributeType.DATE:
            if isinstance(value, dt.date):
                return value.isoformat()
            return dt.date.fromisoformat(str(value).strip()).isoformat()
    except (TypeError, ValueError, OverflowError) as exc:
        raise ProfileInvalid(f"{definition.key}: {str(value)[:40]!r} is not a {kind}") from exc
    raise ProfileInvalid(f"{definition.key}: unknown type {kind}")


def attributes_coerce(
    *,
    workspace: Workspace,
    values: dict[str, Any],
    definitions: dict[str, AttributeDefinition] | None = None,
) -> dict[str, Any]:
    """The JSON form of every value; ProfileInvalid for an unknown key or a value of the wrong type.

    ``definitions`` (key → definition, e.g. all of the workspace's, read once for a whole import batch)
    saves the query."""
    if definitions is None:
        definitions = {
            d.key: d for d in AttributeDefinition.objects.filter(workspace=workspace, key__in=list(values))
        }
    unknown = sorted(set(values) - set(definitions))
    if unknown:
        raise ProfileInvalid(f"unknown attribute(s): {', '.join(unknown)}")
    return {key: attribute_coerce(definition=definitions[key], value=v) for key, v in values.items()}


def tags_clean(tags: list[str]) -> list[str]:
    out: list[str] = []
    for tag in tags:
        tag = str(tag).strip()
        if not TAG_RE.match(tag):
            raise ProfileInvalid(f"{tag!r} is not a valid tag")
        if tag not in out:
            out.append(tag)
    return out


def timezone_check(name: str) -> None:
    """ProfileInvalid unless ``name`` is an IANA time zone."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ProfileInvalid(f"unknown time zone {name!r}") from exc


def preferred_channel_check(value: str) -> None:
    if value not in PreferredChannel.values:
        raise ProfileInvalid(f"unknown channel {value!r}")


def customer_update(
    *,
    workspace: Workspace,
    customer: Customer,
    display_name: str | None = None,
    attributes: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    add_tags: list[str] | None = None,
    timezone: str | None = None,
    preferred_channel: str | None = None,
) -> Customer:
    """Change the profile. ``attributes`` are merged in (a None value removes the key); ``tags`` replaces
    the list, ``add_tags`` adds to it. Validates everything before writing; locks the customer row."""
    coerced = attributes_coerce(workspace=workspace, values=attributes) if attributes else {}
    new_tags = tags_clean(tags) if tags is not None else None
    extra_tags = tags_clean(add_tags) if add_tags else []
    if timezone:
        timezone_check(timezone)
    if preferred_channel is not None:
        preferred_channel_check(preferred_channel)
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(workspace=workspace, pk=customer.pk)
        if locked.merged_into_id is not None or locked.erased_at is not None:
            raise ProfileInvalid("this customer was merged away or erased")
        if display_name is not None:
            locked.display_name = display_name.strip()[:200]
        if coerced:
            merged = {**locked.attributes, **coerced}
            locked.attributes = {k: v for k, v in merged.items() if v is not None}
        if new_tags is not None:
            locked.tags = new_tags
        for tag in extra_tags:
            if tag not in locked.tags:
                locked.tags = [*locked.tags, tag]
        if timezone is not None:
            locked.timezone = timezone
        if preferred_channel is not None:
            locked.preferred_channel = preferred_channel
        locked.save()
    return locked


def customer_timezone(
    *, customer: Customer, identities: Iterable[Identity] | None = None
) -> tuple[str | None, str]:
    """The customer's time zone and where it comes from: ``("Europe/Oslo", "explicit")``, inferred from
    a phone number (``"phone"``) when the number's country has exactly one zone, or ``(None, "")``.

    ``identities``: the customer's identities when the caller already holds them (a list serializer's
    prefetch), so a page of customers costs no query per customer; otherwise they are read."""
    if customer.timezone:
        return customer.timezone, "explicit"
    if identities is None:
        identities = Identity.objects.filter(
            workspace_id=customer.workspace_id, customer=customer, kind=IdentityKind.PHONE
        )
    phones = sorted(
        (i for i in identities if i.kind == IdentityKind.PHONE), key=lambda i: i.last_seen_at, reverse=True
    )
    for identity in phones:
        try:
            number = phonenumbers.parse(identity.value)
        except phonenumbers.NumberParseException:
            continue
        zones = [z for z in phone_timezone.time_zones_for_number(number) if z != "Etc/Unknown"]
        if len(zones) == 1:
            return zones[0], "phone"
    return None, ""


def identity_add(
    *, workspace: Workspace, customer: Customer, identifier: Identifier, channel_kind: str = ""
) -> Identity:
    """Attach an identifier to the customer; IdentityTaken when another customer owns it."""
    from django.utils import timezone as djtz

    ident = identifier_normalize(identifier, workspace=workspace)
    with transaction.atomic():
        existing = (
            Identity.objects.select_for_update()
            .filter(workspace=workspace, kind=ident.kind, value=ident.value)
            .first()
        )
        if existing is not None:
            if existing.customer_id != customer.pk:
                raise IdentityTaken(existing.customer_id)
            if ident.verified and not existing.verified:
                existing.verified = True
                existing.save(update_fields=["verified"])
            return existing
        now = djtz.now()
        return Identity.objects.create(
            workspace=workspace,
            customer=customer,
            kind=ident.kind,
            value=ident.value,
            verified=ident.verified,
            first_channel=channel_kind,
            first_seen_at=now,
            last_channel=channel_kind,
            last_seen_at=now,
        )


def identity_remove(*, workspace: Workspace, customer: Customer, identity_id: int) -> bool:
    return Identity.objects.filter(workspace=workspace, customer=customer, pk=identity_id).delete()[0] > 0


def customer_create(
    *,
    workspace: Workspace,
    display_name: str = "",
    identifiers: Iterable[Identifier] = (),
    tags: list[str] | None = None,
) -> Customer:
    """A new customer, typed in by an agent, with the identifiers given (unverified claims).

    One transaction: InvalidIdentifier for an identifier that does not normalize and IdentityTaken
    (with the owner's id) when one already belongs to a customer, and then nothing is created."""
    cleaned_tags = tags_clean(tags or [])
    with transaction.atomic():
        customer = Customer.objects.create(
            workspace=workspace, display_name=display_name.strip()[:200], tags=cleaned_tags
        )
        for identifier in identifiers:
            identity_add(workspace=workspace, customer=customer, identifier=identifier)
    return customer
