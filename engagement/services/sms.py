"""SMS facts the core needs without asking a provider: encoding and segment count (PROTOCOLS.md D)."""

from __future__ import annotations

from engagement.sanitize import INT16_MAX, digits_parse

# GSM 03.38: the basic set (one septet each) and the extension set (escape + septet: two each).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
# (characters in a single segment, per segment once split: the rest is the concatenation header).
SEGMENT_SIZES = {"gsm7": (160, 153), "ucs2": (70, 67)}


def sms_encoding(body: str) -> str:
    """ "gsm7" when every character is in the GSM-7 alphabet, else "ucs2"."""
    return "gsm7" if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in body) else "ucs2"


def sms_segment_count(body: str) -> int:
    """Segments ``body`` takes: GSM-7 160 (153 each when split), else UCS-2 70 (67 each) UTF-16 units.

    An extension character (€, [, ]…) counts two septets; a character outside the BMP (most emoji)
    counts two UTF-16 units. An empty body still takes one segment.
    """
    encoding = sms_encoding(body)
    if encoding == "gsm7":
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in body)
    else:
        units = len(body.encode("utf-16-le")) // 2
    single, split = SEGMENT_SIZES[encoding]
    return 1 if units <= single else -(-units // split)


def sms_segments_reported(*, reported: str | int | None, body: str) -> int:
    """The segment count the provider reported (Twilio's NumSegments), else our own count of ``body``."""
    count = digits_parse(reported, max_value=INT16_MAX) if reported is not None else None
    return count if count is not None else sms_segment_count(body)
