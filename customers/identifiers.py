"""Identifiers and their normalization: E.164 phones, lower-cased emails with IDNA domains."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers

from engagement.errors import ValidationFailed
from engagement.models import Workspace

from .models import IdentityKind

# ``Identity.value`` is a varchar of this length.
IDENTIFIER_MAX_LENGTH = 320


class InvalidIdentifier(ValidationFailed):
    """An identifier that cannot be normalized (not a phone number, not an email address)."""

    code = "identifier_invalid"


@dataclass(frozen=True)
class Identifier:
    """One identifier an event carries. ``verified`` says the event vouches that the person owns it
    (an inbound message from the address, a confirmed login); a bare claim typed into a form is not."""

    kind: str
    value: str
    verified: bool = False


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
    """The normalized identifier (same ``verified`` flag) or InvalidIdentifier."""
    if identifier.kind == IdentityKind.PHONE:
        value = phone_normalize(identifier.value, region=workspace.default_region)
    elif identifier.kind == IdentityKind.EMAIL:
        value = email_normalize(identifier.value)
    elif identifier.kind in (IdentityKind.WEBCHAT, IdentityKind.EXTERNAL):
        value = identifier.value.strip()
        if not value:
            raise InvalidIdentifier(f"empty {identifier.kind} identifier")
    else:
        raise InvalidIdentifier(f"unknown identifier kind {identifier.kind!r}")
    # Checked on the normalized value (IDNA lengthens a domain): a longer one would not fit the column.
    if len(value) > IDENTIFIER_MAX_LENGTH:
        raise InvalidIdentifier(
            f"{identifier.kind} identifier is longer than {IDENTIFIER_MAX_LENGTH} characters"
        )
    return Identifier(identifier.kind, value, identifier.verified)
