"""Customer resolution: the one path every channel, the API and imports use to find or create a customer."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from django.db import IntegrityError, transaction
from django.utils import timezone

from engagement.models import Workspace

from .models import Customer, Identity, IdentityKind


class InvalidIdentifier(ValueError):
    """An identifier that cannot be normalized (not a phone number, not an email address)."""


@dataclass(frozen=True)
class Identifier:
    kind: str
    value: str


def phone_normalize(raw: str, *, region: str | None = None) -> str:
    """Return the E.164 form of ``raw`` or raise InvalidIdentifier."""
    try:
        number = phonenumbers.parse(raw, None if raw.strip().startswith("+") else region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifier(f"{raw!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentifier(f"{raw!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def email_normalize(raw: str) -> str:
    """Lower-case the address and IDNA-encode its domain."""
    value = raw.strip()
    local, sep, domain = value.rpartition("@")
    if not sep or not local or not domain or " " in value:
        raise InvalidIdentifier(f"{raw!r} is not an email address")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidIdentifier(f"{raw!r} has an invalid domain") from exc
    return f"{local.lower()}@{ascii_domain.lower()}"


def identifier_normalize(identifier: Identifier, *, workspace: Workspace) -> Identifier:
    if identifier.kind == IdentityKind.PHONE:
        return Identifier(
            IdentityKind.PHONE, phone_normalize(identifier.value, region=workspace.default_region)
        )
    if identifier.kind == IdentityKind.EMAIL:
        return Identifier(IdentityKind.EMAIL, email_normalize(identifier.value))
    if identifier.kind in (IdentityKind.WEBCHAT, IdentityKind.EXTERNAL):
        value = identifier.value.strip()
        if not value:
            raise InvalidIdentifier(f"empty {identifier.kind} identifier")
        return Identifier(identifier.kind, value)
    raise InvalidIdentifier(f"unknown identifier kind {identifier.kind!r}")


def customer_resolve(
    *, workspace: Workspace, identifier: Identifier, channel_kind: str = "", display_name: str = ""
) -> tuple[Customer, bool]:
    """Find the customer who owns ``identifier`` in ``workspace``, or create one.

    Returns ``(customer, created)``. Safe under concurrency: the unique constraint on identities decides
    the race and the loser reads the winner's row. Must run inside the caller's transaction.
    """
    ident = identifier_normalize(identifier, workspace=workspace)
    now = timezone.now()
    existing = (
        Identity.objects.select_related("customer")
        .filter(workspace=workspace, kind=ident.kind, value=ident.value)
        .first()
    )
    if existing is not None:
        Identity.objects.filter(pk=existing.pk).update(last_seen_at=now)
        return existing.customer, False
    try:
        with transaction.atomic():
            customer = Customer.objects.create(workspace=workspace, display_name=display_name)
            Identity.objects.create(
                workspace=workspace,
                customer=customer,
                kind=ident.kind,
                value=ident.value,
                first_channel=channel_kind,
                first_seen_at=now,
                last_seen_at=now,
            )
    except IntegrityError:
        winner = Identity.objects.select_related("customer").get(
            workspace=workspace, kind=ident.kind, value=ident.value
        )
        return winner.customer, False
    return customer, True


def customer_primary_address(*, customer: Customer, kind: str) -> str | None:
    """The most recently seen identity of ``kind`` for sending, or None."""
    identity = customer.identities.filter(kind=kind).order_by("-last_seen_at").first()
    return identity.value if identity else None
