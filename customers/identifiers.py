"""Identifiers and their normalization: E.164 phones, lower-cased emails with IDNA domains, and the
senders carriers deliver that are not E.164 numbers (short codes, alphanumeric sender IDs, SIP and Voice
SDK callers, withheld numbers), each a kind of its own so none is ever taken for a phone number."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
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


# A number already written in E.164 (``+`` and digits only, no leading zero after the country code):
# the common form of imports, API calls and every Twilio webhook.
_E164_SHAPE_RE = re.compile(r"\+([1-9][0-9]{2,19})")
# Per country calling code: the pattern of its national prefix for parsing (or None), and per length of
# the national number whether libphonenumber calls it possible. Filled lazily from libphonenumber itself.
_NATIONAL_PREFIX: dict[int, re.Pattern[str] | None] = {}
_POSSIBLE_LENGTH: dict[tuple[int, int], bool] = {}


def _phone_e164_unchanged(raw: str) -> bool:
    """True when ``raw`` is a number in E.164 that ``phonenumbers`` would parse, call possible and format
    back to exactly ``raw``; False means "ask phonenumbers" (never "invalid").

    ``phonenumbers.parse`` of ``+<digits>`` takes the country code as the first 1 to 3 digits that name
    one, strips a national prefix only where the region's ``national_prefix_for_parsing`` matches the
    start of the rest, keeps a leading zero as the Italian-leading-zero flag, and checks 2 to 17 digits;
    ``is_possible_number`` depends only on the country code and the national number's length. So a
    number with no national prefix to strip and no leading zero is its own E.164 form, and its
    possibility is known per (country code, length). About 10x cheaper than parsing (the import's and
    every SMS webhook's sender); ``tests/customers/test_identifiers_fast_path.py`` compares the two on
    random numbers of every country code."""
    match = _E164_SHAPE_RE.fullmatch(raw)
    if match is None:
        return False
    digits = match.group(1)
    for size in (1, 2, 3):
        country_code = int(digits[:size])
        if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return False
    national = digits[size:]
    if not 2 <= len(national) <= 17 or national[0] == "0":
        return False
    if country_code not in _NATIONAL_PREFIX:
        region = phonenumbers.region_code_for_country_code(country_code)
        metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
        if metadata is None:
            return False
        prefix = metadata.national_prefix_for_parsing
        _NATIONAL_PREFIX[country_code] = re.compile(prefix) if prefix else None
    prefix_re = _NATIONAL_PREFIX[country_code]
    if prefix_re is not None and prefix_re.match(national):
        return False
    key = (country_code, len(national))
    possible = _POSSIBLE_LENGTH.get(key)
    if possible is None:
        number = phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national))
        possible = _POSSIBLE_LENGTH[key] = bool(phonenumbers.is_possible_number(number))
    return possible


def phone_normalize(raw: str, *, region: str | None = None) -> str:
    """Return the E.164 form of ``raw`` or raise InvalidIdentifier."""
    if _phone_e164_unchanged(raw):
        return raw
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
    ascii_domain = _domain_ascii(domain)
    if ascii_domain is None:
        raise InvalidIdentifier(f"{raw!r} has an invalid domain")
    return f"{local.lower()}@{ascii_domain}"


@functools.lru_cache(maxsize=4096)
def _domain_ascii(domain: str) -> str | None:
    """The lower-cased IDNA form of an email domain, or None when it has none. Cached: an import or a
    busy inbox sees the same few domains again and again."""
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None


# Short codes are 3 to 8 digits (US/CA 5-6 per the CTIA Short Code Handbook, UK 5, FR 5, DE 4-5, AU 8).
SHORT_CODE_RE = re.compile(r"^[0-9]{3,8}$")
# Separators people and some carriers put inside a number.
_NUMBER_SEPARATORS_RE = re.compile(r"[\s().\-]")
# What Twilio puts in From/Caller when the caller's number is withheld: the words, and the same words
# spelt on a phone keypad (ANONYMOUS, RESTRICTED, UNAVAILABLE, BLOCKED), per Twilio's support article
# "Why do I see +266696687, +7378742833, +86282452253 or +2562533 as the caller ID?".
WITHHELD_CALLERS = frozenset(
    {"", "anonymous", "restricted", "unknown", "unavailable", "private", "blocked", "withheld"}
)
WITHHELD_KEYPAD_NUMBERS = frozenset({"266696687", "7378742833", "86282452253", "2562533"})


def short_code_normalize(raw: str) -> str:
    """The digits of a short code (3 to 8 digits, separators dropped) or InvalidIdentifier."""
    value = _NUMBER_SEPARATORS_RE.sub("", raw)
    if not SHORT_CODE_RE.match(value):
        raise InvalidIdentifier(f"{raw!r} is not a short code (3 to 8 digits)")
    return value


def sip_normalize(raw: str) -> str:
    """``sip:user@host`` with the scheme and host lower-cased (RFC 3261 §19.1.4: the user part is case
    sensitive, the host is not) and URI parameters and headers dropped; InvalidIdentifier otherwise."""
    value = raw.strip()
    scheme, sep, rest = value.partition(":")
    if not sep or scheme.lower() not in ("sip", "sips") or not rest:
        raise InvalidIdentifier(f"{raw!r} is not a SIP URI")
    rest = re.split(r"[;?]", rest, maxsplit=1)[0]
    user, at, host = rest.rpartition("@")
    return f"{scheme.lower()}:{user}{at}{host.lower()}" if at else f"{scheme.lower()}:{host.lower()}"


def phone_region(number: str) -> str | None:
    """The ISO region of an E.164 number (our channel's number), or None."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    # An unassigned number still tells its country by its country code (its main region).
    region = phonenumbers.region_code_for_number(parsed)
    if not region and parsed.country_code:
        region = phonenumbers.region_code_for_country_code(parsed.country_code)
    return None if not region or region == phonenumbers.UNKNOWN_REGION else str(region)


def is_short_code(value: str) -> bool:
    return bool(SHORT_CODE_RE.match(value))


def sms_sender_identifier(raw: str, *, region: str | None) -> Identifier:
    """The identity of whoever an SMS came from, as the carrier delivered it.

    * an E.164 number (``+14155550100``) is a phone;
    * a national number without its country code (``(415) 555-0100``) is a phone when it is a valid
      number of ``region`` (the sender's country as the provider reports it, else our number's);
    * 3 to 8 digits that are no valid number there are a short code (``68849``); more digits that make
      a possible number of ``region`` are a phone;
    * anything else (``AMAZON``, ``Vodafone``, an invalid ``+`` number) is an alphanumeric sender ID,
      kept as sent.

    Raises InvalidIdentifier only for an empty sender.
    """
    value = raw.strip()
    if not value:
        raise InvalidIdentifier("the sender is empty")
    if value.startswith("+"):
        try:
            return Identifier(IdentityKind.PHONE, phone_normalize(value))
        except InvalidIdentifier:
            return Identifier(IdentityKind.SENDER_ID, value)
    digits = _NUMBER_SEPARATORS_RE.sub("", value)
    if digits.isdigit():
        if region:
            try:
                number = phonenumbers.parse(digits, region)
            except phonenumbers.NumberParseException:
                number = None
            if number is not None and phonenumbers.is_valid_number(number):
                return Identifier(
                    IdentityKind.PHONE,
                    phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
                )
        if SHORT_CODE_RE.match(digits):
            return Identifier(IdentityKind.SHORT_CODE, digits)
        if region:
            # Longer than any short code: a possible number of the region (as phone_normalize accepts).
            try:
                return Identifier(IdentityKind.PHONE, phone_normalize(digits, region=region))
            except InvalidIdentifier:
                pass
    return Identifier(IdentityKind.SENDER_ID, value[:IDENTIFIER_MAX_LENGTH])


def caller_identifier(raw: str, *, region: str | None, call_id: str) -> Identifier:
    """The identity of a voice caller (Twilio ``From``): a phone or other sender as for SMS, a SIP URI
    (``sip:alice@example.com``), a Voice SDK client (``client:alice``), or, when the number is withheld
    (``anonymous``, ``+266696687``…), an unknown caller identified by the call itself: each such call
    is its own customer rather than every withheld caller being one person."""
    value = raw.strip()
    lowered = value.lower()
    if lowered in WITHHELD_CALLERS or value.lstrip("+") in WITHHELD_KEYPAD_NUMBERS:
        if not call_id:
            raise InvalidIdentifier("a withheld caller needs the call id")
        return Identifier(IdentityKind.UNKNOWN_CALLER, call_id)
    if lowered.startswith("client:"):
        return Identifier(IdentityKind.VOICE_CLIENT, value.partition(":")[2].strip())
    if lowered.startswith(("sip:", "sips:")):
        return Identifier(IdentityKind.SIP, sip_normalize(value))
    return sms_sender_identifier(value, region=region)


def reply_refusal(*, kind: str, value: str, channel_kind: str, channel_address: str) -> str:
    """Why nothing can be sent to the identity ``kind``/``value`` on a channel of ``channel_kind`` whose
    own address is ``channel_address``; "" when it can be.

    Alphanumeric sender IDs are send-only (3GPP TS 23.040: the TP-OA of a mobile-terminated message;
    there is no number to answer); a short code takes messages only through its own short-code route,
    not from a long-code number; a withheld caller, a SIP address or a Voice SDK client has no number.
    """
    if kind == IdentityKind.SENDER_ID:
        return (
            f"{value!r} is an alphanumeric sender ID: carriers deliver messages from it, "
            "but nothing can be sent to it"
        )
    if kind == IdentityKind.SHORT_CODE and not is_short_code(channel_address):
        return (
            f"{value} is a short code: it cannot receive messages from a long-code number "
            f"({channel_address or channel_kind})"
        )
    if kind == IdentityKind.UNKNOWN_CALLER:
        return "the caller withheld their number, so there is nothing to reply to"
    if kind in (IdentityKind.SIP, IdentityKind.VOICE_CLIENT):
        return (
            f"{value} called from a {IdentityKind(kind).label}, which has no phone number to {channel_kind}"
        )
    return ""


def identities_reply_refusal(
    *, identities: Iterable[tuple[str, str]], channel_kind: str, channel_address: str
) -> str:
    """For a customer's ``(kind, value)`` identities: why a phone channel (SMS, voice) cannot reach them
    (:func:`reply_refusal` of their first non-phone sender), or "" when it can, or when the channel is
    not a phone channel. A decision only: ``message_send`` enforces it."""
    if channel_kind not in ("sms", "voice"):
        return ""
    reasons = []
    for kind, value in identities:
        if kind == IdentityKind.PHONE:
            return ""
        reason = reply_refusal(
            kind=kind, value=value, channel_kind=channel_kind, channel_address=channel_address
        )
        if kind == IdentityKind.SHORT_CODE and not reason:
            return ""
        if reason:
            reasons.append(reason)
    return reasons[0] if reasons else ""


def identifier_normalize(identifier: Identifier, *, workspace: Workspace) -> Identifier:
    """The normalized identifier (same ``verified`` flag) or InvalidIdentifier."""
    value = identifier_value_normalize(
        kind=identifier.kind, value=identifier.value, region=workspace.default_region
    )
    return Identifier(identifier.kind, value, identifier.verified)


def identifier_value_normalize(*, kind: str, value: str, region: str | None) -> str:
    """The normalized value of an identifier of ``kind`` (a phone number read in ``region`` when it
    has no country code), or InvalidIdentifier."""
    if kind == IdentityKind.PHONE:
        value = phone_normalize(value, region=region)
    elif kind == IdentityKind.EMAIL:
        value = email_normalize(value)
    elif kind == IdentityKind.SHORT_CODE:
        value = short_code_normalize(value)
    elif kind == IdentityKind.SIP:
        value = sip_normalize(value)
    elif kind in (
        IdentityKind.WEBCHAT,
        IdentityKind.EXTERNAL,
        IdentityKind.SENDER_ID,
        IdentityKind.VOICE_CLIENT,
        IdentityKind.UNKNOWN_CALLER,
    ):
        value = value.strip()
        if not value:
            raise InvalidIdentifier(f"empty {kind} identifier")
    else:
        raise InvalidIdentifier(f"unknown identifier kind {kind!r}")
    # Checked on the normalized value (IDNA lengthens a domain): a longer one would not fit the column.
    if len(value) > IDENTIFIER_MAX_LENGTH:
        raise InvalidIdentifier(f"{kind} identifier is longer than {IDENTIFIER_MAX_LENGTH} characters")
    return value
