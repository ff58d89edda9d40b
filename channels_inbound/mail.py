"""Reading internet mail the way mail clients read it: charsets, encoded headers, sender addresses.

Shared by the email adapters. Everything here is tolerant by design: a provider that passed
authentication sent us a real mail, and a mail client would show it, so we decode what can be decoded
and never refuse the mail for a label, a comma or a byte we did not expect.

* Charset labels go through the WHATWG Encoding Standard's label table (``webencodings``), which is the
  table mail clients built on browser engines use (Thunderbird: ``iso-8859-8-i`` is ISO-8859-8,
  ``ks_c_5601-1987`` is EUC-KR, ``gb2312`` is GBK, ``iso-8859-1`` is windows-1252…); labels it does not
  know (``utf-7``, ``iso-2022-kr``) go to Python's own codecs, and a label nobody knows, or none on
  8-bit text, to UTF-8 and then ``charset-normalizer``'s detection.
* Headers: RFC 2047 encoded words (with the charset table above) and raw 8-bit header bytes (RFC 6532).
* Addresses: ``email.utils.getaddresses`` (the stdlib's lenient RFC 5322 parser), with the repair
  mail clients make for a display name whose comma was left unquoted (``Smith, Jr <j@example.com>``).
"""

from __future__ import annotations

import binascii
import codecs
import inspect
import re
from dataclasses import dataclass
from email.base64mime import decode as base64_decode
from email.quoprimime import header_decode as q_decode
from email.utils import getaddresses

import charset_normalizer
import webencodings

from customers.services import InvalidIdentifier, email_normalize

_FOLD_RE = re.compile(r"\r?\n(?=[ \t])")
# RFC 2047 section 2: =?charset?encoding?encoded-text?= (the stdlib's email.header uses the same).
ENCODED_WORD_RE = re.compile(r"=\?(?P<charset>[^?]*?)\?(?P<encoding>[qQbB])\?(?P<encoded>.*?)\?=")
# Python 3.12.6+ made getaddresses strict by default (it then refuses the unquoted comma we repair).
_LENIENT = {"strict": False} if "strict" in inspect.signature(getaddresses).parameters else {}


# ---------------------------------------------------------------- charsets


def text_guess(data: bytes) -> str:
    """Text whose charset is unknown or undeclared: UTF-8 if it is valid UTF-8, else what
    ``charset-normalizer`` detects, else windows-1252 (the WHATWG default for undeclared legacy text)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(data).best()
    if best is not None:
        return str(best)
    return data.decode("cp1252", errors="replace")


def charset_decode(data: bytes, label: str | None) -> str:
    """``data`` decoded as the charset ``label`` names, the way a mail client decodes it.

    WHATWG label first (a byte-order mark wins over the label, as the Encoding Standard says); its
    "replacement" encoding (``iso-2022-kr``, ``hz-gb-2312``…, blanked in browsers for script-injection
    reasons that do not apply to sanitised mail) and labels outside the table go to Python's codecs; an
    unknown or missing label to :func:`text_guess`, and so does 8-bit text labelled US-ASCII (the label
    is then proven wrong; it is usually UTF-8 from a program that wrote the RFC 2045 default). Bytes
    invalid in the named charset become U+FFFD. Never raises.
    """
    name = (label or "").strip().strip("\"'").strip()
    if name and not (_is_ascii_label(name) and not data.isascii()):
        encoding = webencodings.lookup(name)
        if encoding is not None and encoding.name != "replacement":
            return str(webencodings.decode(data, encoding, errors="replace")[0])
        try:
            return data.decode(name, errors="replace")
        except (LookupError, ValueError):  # unknown label, or a bytes-to-bytes codec like "base64"
            pass
    return text_guess(data)


def _is_ascii_label(name: str) -> bool:
    try:
        return codecs.lookup(name).name == "ascii"
    except LookupError:
        return False


# <meta charset=…> or <meta http-equiv=Content-Type content="text/html; charset=…">, in the first 1024
# bytes, where the HTML standard's prescan looks for it.
_META_CHARSET_RE = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)


def html_charset_label(data: bytes) -> str:
    """The charset an HTML document declares in a ``<meta>`` tag, or "". Mail clients use it for an
    HTML part whose Content-Type names no charset."""
    found = _META_CHARSET_RE.search(data[:1024])
    return found.group(1).decode("ascii") if found else ""


def flowed_decode(text: str, *, delsp: bool = False) -> str:
    """Plain text sent ``format=flowed`` (RFC 3676 section 4.2) as mail clients show it: a line ending
    in a space continues on the next line of the same quote depth (with ``DelSp=yes`` that space
    goes); space-stuffing is undone; quoted lines keep their ``>`` marks; "-- " stays a hard line."""
    out: list[str] = []
    paragraph: str | None = None
    depth_of_paragraph = 0

    def emit(depth: int, content: str) -> None:
        out.append(f"{'>' * depth} {content}" if depth else content)

    for line in text.splitlines():
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]
        if paragraph is not None and depth != depth_of_paragraph:
            emit(depth_of_paragraph, paragraph)
            paragraph = None
        paragraph = content if paragraph is None else paragraph + content
        depth_of_paragraph = depth
        if content.endswith(" ") and content != "-- ":
            if delsp:
                paragraph = paragraph[:-1]
            continue
        emit(depth, paragraph)
        paragraph = None
    if paragraph is not None:
        emit(depth_of_paragraph, paragraph)
    return "\n".join(out)


# ---------------------------------------------------------------- headers


def header_unfold(value: str) -> str:
    return _FOLD_RE.sub("", value).strip("\r\n")


def header_text(value: str) -> str:
    """A raw header value as text: raw 8-bit bytes, which the stdlib parser keeps as surrogate escapes,
    decoded as UTF-8 (RFC 6532) or, failing that, as detected. Encoded words are left alone."""
    if not any("\udc80" <= c <= "\udcff" for c in value):
        return value
    return text_guess(value.encode("utf-8", errors="surrogateescape"))


def header_decode(value: str) -> str:
    """The text a mail client shows for a raw header value (unfolded, 8-bit bytes and RFC 2047 encoded
    words decoded). Adjacent encoded words in one charset are joined before decoding (senders split a
    multi-byte character across two); the whitespace between encoded words is dropped (RFC 2047 6.2);
    an encoded word that does not decode stays as it was written."""
    value = header_text(header_unfold(value))
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset = ""
    last_end = 0
    after_word = False

    def flush() -> None:
        if pending:
            out.append(charset_decode(b"".join(pending), pending_charset))
            pending.clear()

    for match in ENCODED_WORD_RE.finditer(value):
        between = value[last_end : match.start()]
        last_end = match.end()
        charset = match.group("charset").split("*", 1)[0]  # RFC 2231 adds *language
        encoded = match.group("encoded")
        try:
            if match.group("encoding").lower() == "b":
                data = base64_decode(encoded + "=" * (-len(encoded) % 4))
            else:
                data = q_decode(encoded).encode("latin-1")
        except (binascii.Error, ValueError, UnicodeEncodeError):
            flush()
            out.append(between + match.group(0))
            after_word = False
            continue
        if not (after_word and not between.strip() and charset.lower() == pending_charset.lower()):
            flush()
        if not (after_word and not between.strip()):
            out.append(between)
        pending.append(data)
        pending_charset = charset
        after_word = True
    flush()
    out.append(value[last_end:])
    return "".join(out).replace("\x00", "")


# ---------------------------------------------------------------- addresses


@dataclass(frozen=True)
class Mailbox:
    name: str
    address: str  # normalized (email_normalize): lower case, IDNA domain


def _mailbox(name: str, address: str) -> Mailbox | None:
    address = address.strip().strip("<>")
    if "@" not in address:
        return None
    try:
        return Mailbox(name=name, address=email_normalize(address))
    except InvalidIdentifier:
        return None


def _display_name(phrase: str) -> str:
    return header_decode(phrase).strip()


def mailboxes_parse(value: str) -> tuple[list[Mailbox], str]:
    """The mailboxes of an address-list header (From, Sender, To, Cc) as mail clients read them, and a
    display name left without a usable address (``Bob <bob@>`` gives ``[], "Bob"``).

    ``getaddresses`` splits at every comma outside quotes, so an unquoted ``Smith, Jr <j@example.com>``
    comes back as the address-less word ``Smith`` and ``Jr <j@example.com>``; such words belong to the
    next mailbox's display name, as in every mail client. Group syntax is flattened; trailing junk
    after the last mailbox and address-less words are dropped; ``Name addr@example.com`` without angle
    brackets is read as name and address. Display names are decoded (RFC 2047, 8-bit).
    """
    raw = header_text(header_unfold(value))
    found, orphan = _mailboxes(raw)
    if not found and ENCODED_WORD_RE.search(raw):
        # Some senders encode the whole header, address included: read it decoded.
        found, orphan = _mailboxes(header_decode(raw))
    return found, orphan


def _mailboxes(raw: str) -> tuple[list[Mailbox], str]:
    found: list[Mailbox] = []
    words: list[str] = []
    for name, address in getaddresses([raw], **_LENIENT):
        mailbox = _mailbox("", address)
        if mailbox is None and " " in address.strip():
            # "John Doe john@example.com": a phrase and a bare address (no angle brackets).
            head, _, last = address.strip().rpartition(" ")
            mailbox = _mailbox("", last)
            name = " ".join(p for p in (name, head) if p)
        if mailbox is None:
            words += [w for w in (name.strip(), address.strip()) if w]
            continue
        phrase = ", ".join(w for w in (*words, name.strip()) if w)
        words = []
        found.append(Mailbox(name=_display_name(phrase)[:200], address=mailbox.address))
    return found, _display_name(", ".join(words))[:200] if words else ""


@dataclass(frozen=True)
class Sender:
    name: str
    address: str
    source: str  # "from", "sender", "envelope"
    from_addresses: tuple[str, ...] = ()


def mail_sender(*, from_header: str, sender_header: str = "", envelope_from: str = "") -> Sender | None:
    """Who wrote the mail: its From mailbox; of several From mailboxes (RFC 5322 3.6.2), the Sender
    mailbox, else the one the envelope came from, else the first; with no usable From mailbox, the
    Sender header, then the envelope sender (SMTP MAIL FROM), keeping a display name the From header
    still had. None when there is no address anywhere (a bounce with a broken From)."""
    boxes, orphan_name = mailboxes_parse(from_header) if from_header.strip() else ([], "")
    from_addresses = tuple(b.address for b in boxes)
    envelope = _mailbox("", envelope_from) if envelope_from.strip() else None
    if len(boxes) == 1:
        return Sender(boxes[0].name, boxes[0].address, "from", from_addresses)
    sender_boxes = mailboxes_parse(sender_header)[0] if sender_header.strip() else []
    if boxes:
        if sender_boxes:
            box = sender_boxes[0]
            name = box.name or next((b.name for b in boxes if b.address == box.address), "")
            return Sender(name, box.address, "sender", from_addresses)
        chosen = next((b for b in boxes if envelope and b.address == envelope.address), boxes[0])
        return Sender(chosen.name, chosen.address, "from", from_addresses)
    if sender_boxes:
        return Sender(sender_boxes[0].name or orphan_name, sender_boxes[0].address, "sender")
    if envelope is not None:
        return Sender(orphan_name, envelope.address, "envelope")
    return None
