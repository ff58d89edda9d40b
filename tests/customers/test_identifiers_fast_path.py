"""The E.164 shortcut of ``phone_normalize`` agrees with phonenumbers on every input it takes."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from customers.identifiers import InvalidIdentifier, _phone_e164_unchanged, phone_normalize


def _phonenumbers_e164(raw: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _candidates() -> list[str]:
    rng = random.Random(20261130)
    out = [
        "+14155550100",
        "+442071838750",
        "+447911123456",
        "+4407911123456",
        "+33612345678",
        "+330612345678",
        "+78005553535",
        "+88005553535",
        "+11415555010",
        "+39061234567",
        "+390612345678",
        "+12",
        "+1",
        "+999123456",
        "+8001234567",
        "+979123456789",
        "+882123456",
    ]
    for code in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE):
        for length in range(1, 19):
            for _ in range(3):
                first = rng.choice("0123456789")
                rest = "".join(rng.choice("0123456789") for _ in range(length - 1))
                out.append(f"+{code}{first}{rest}")
    for _ in range(3000):
        out.append("+" + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 21))))
    return out


def test_the_e164_shortcut_never_disagrees_with_phonenumbers():
    taken = 0
    for raw in _candidates():
        expected = _phonenumbers_e164(raw)
        if _phone_e164_unchanged(raw):
            taken += 1
            assert expected == raw, raw
        if expected is None:
            with pytest.raises(InvalidIdentifier):
                phone_normalize(raw)
        else:
            assert phone_normalize(raw) == expected, raw
    assert taken > 1000  # the shortcut is actually taken for most well-formed numbers
