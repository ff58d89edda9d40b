"""Issue 9, e-mail kinds: what SendGrid Inbound Parse legitimately posts is never refused, lost or garbled.

Every case goes through the real webhook endpoint in the real Inbound Parse formats (raw mode: the whole
MIME message in the ``email`` field; parsed mode: ``headers``/``text``/``html``/``charsets`` and file
parts ``attachmentN``). One section per kind of fault:

1. sender addresses are read as mail clients read them;
2. any charset label mail software uses decodes;
3. a malformed part never drops the whole message;
6. no auto-reply loops (RFC 3834);
8. the stored original is byte for byte what SendGrid posted.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from channels_inbound.models import ProviderEvent
from channels_outbound.services import outbound_interaction_send
from customers.models import Identity
from engagement.models import Attachment, AutomationRule, Interaction
from engagement.services.messaging import message_send
from tests.channels_inbound.test_sendgrid_inbound import fields_sample, post_inbound
from tests.fakes.sendgrid_server import multipart_body

pytestmark = pytest.mark.django_db

CRLF = b"\r\n"


def mime(*headers: str | bytes, body: bytes = b"Hello, where is my parcel?\r\n", ctype: bytes = b"") -> bytes:
    """A raw RFC 5322 message, byte for byte as written (no library re-encodes it)."""
    lines = [h if isinstance(h, bytes) else h.encode() for h in headers]
    if not any(line.lower().startswith(b"message-id:") for line in lines):
        lines.append(
            b"Message-ID: <" + hashlib.sha256(b"".join(lines) + body).hexdigest()[:16].encode() + b"@ex>"
        )
    if not any(line.lower().startswith(b"to:") for line in lines):
        lines.append(b"To: support@mail.example.com")
    lines.append(b"MIME-Version: 1.0")
    lines.append(b"Content-Type: " + (ctype or b"text/plain; charset=utf-8"))
    return CRLF.join(lines) + CRLF + CRLF + body


def raw_fields(email: bytes, envelope_from: str = "bounce-123@mailer.example.org") -> dict[str, str | bytes]:
    return {
        "email": email,
        "to": "support@mail.example.com",
        "envelope": json.dumps({"to": ["support@mail.example.com"], "from": envelope_from}),
        "charsets": json.dumps({"to": "UTF-8", "subject": "UTF-8", "from": "UTF-8"}),
        "SPF": "pass",
    }


def post_raw(client, channel, email: bytes, **kw: str):
    body, content_type = multipart_body(raw_fields(email, **kw))
    return post_inbound(client, channel, body, content_type)


def post_parsed(client, channel, fields: dict[str, str | bytes], files=None):
    body, content_type = multipart_body(fields, files)
    return post_inbound(client, channel, body, content_type)


def parsed_fields(*header_lines: str, **changes: str | bytes | None) -> dict[str, str | bytes]:
    headers = "\n".join(
        ["Date: Wed, 11 Oct 2017 18:31:04 -0700", *header_lines, "To: support@mail.example.com"]
    )
    return fields_sample(headers=headers + "\n", **changes)


def inbound() -> Interaction:
    return Interaction.objects.filter(direction="inbound").latest("id")


# ---------------------------------------------------------------- 1. sender addresses


def test_sender_address_kind_unquoted_comma_in_display_name_raw_mode(client, email_channel):
    """The issue's example: answered 400 (and lost) before."""
    resp = post_raw(client, email_channel, mime("From: Smith, Jr <john.smith@example.com>", "Subject: Hi"))
    assert resp.status_code == 200, resp.content
    interaction = inbound()
    assert interaction.customer_address == "john.smith@example.com"
    assert Identity.objects.get(kind="email").value == "john.smith@example.com"
    assert interaction.customer.display_name == "Smith, Jr"
    assert interaction.metadata["email"]["from_name"] == "Smith, Jr"


SENDER_CASES = [
    # (From header as written, expected address, expected display name)
    ("Smith, Jr <john.smith@example.com>", "john.smith@example.com", "Smith, Jr"),
    ("O'Brien, Pat <pat@example.ie>", "pat@example.ie", "O'Brien, Pat"),
    ('"Smith, Jr" <john.smith@example.com>', "john.smith@example.com", "Smith, Jr"),
    ('"Ada \\"The Countess\\" Lovelace" <ada@example.org>', "ada@example.org", 'Ada "The Countess" Lovelace'),
    ("=?utf-8?Q?Jos=C3=A9_P=C3=A9rez?= <jose@example.com>", "jose@example.com", "José Pérez"),
    ("=?UTF-8?B?TcO8bGxlciwgSsO8cmdlbg==?= <jm@example.de>", "jm@example.de", "Müller, Jürgen"),
    ("=?iso-8859-8-i?B?4/DkIOvk7w==?= <dana@example.co.il>", "dana@example.co.il", "דנה כהן"),
    ('"=?utf-8?Q?Ren=C3=A9e?=" <renee@example.fr>', "renee@example.fr", "Renée"),
    ("plain.address@example.com", "plain.address@example.com", ""),
    ("<angle.only@example.com>", "angle.only@example.com", ""),
    ("John.Doe@Example.COM", "john.doe@example.com", ""),
    ("john@example.com (John Doe)", "john@example.com", "John Doe"),
    ("John Doe john@example.com", "john@example.com", "John Doe"),
    ("Ann <ann@example.com> (via Support) trailing junk", "ann@example.com", "Ann"),
    ('"Smith, Jr" <john.smith@example.com>>', "john.smith@example.com", "Smith, Jr"),
    ("Sales team: sales@example.com;", "sales@example.com", ""),
    ("Jörg <jorg@bücher.example>", "jorg@xn--bcher-kva.example", "Jörg"),
    ("Jörg <jorg@xn--bcher-kva.example>", "jorg@xn--bcher-kva.example", "Jörg"),
    ("Ann\r\n <ann@example.com>", "ann@example.com", "Ann"),
    # The whole header encoded, address included (some senders do).
    ("=?utf-8?B?SmFuZSBSb2UgPGphbmVAZXhhbXBsZS5jb20+?=", "jane@example.com", "Jane Roe"),
]


@pytest.mark.parametrize(("from_header", "address", "name"), SENDER_CASES)
def test_sender_address_kind_raw_mode(client, email_channel, from_header, address, name):
    email = mime(b"From: " + from_header.encode(), "Subject: Hello")
    assert post_raw(client, email_channel, email).status_code == 200
    interaction = inbound()
    assert (interaction.customer_address, interaction.metadata["email"]["from_name"]) == (address, name)
    assert interaction.customer.display_name == (name or interaction.customer.display_name)


@pytest.mark.parametrize(("from_header", "address", "name"), SENDER_CASES)
def test_sender_address_kind_parsed_mode(client, email_channel, from_header, address, name):
    fields = parsed_fields(f"From: {from_header}", "Subject: Hello", "Message-ID: <p1@example.org>")
    fields["from"] = from_header
    assert post_parsed(client, email_channel, fields).status_code == 200
    interaction = inbound()
    assert (interaction.customer_address, interaction.metadata["email"]["from_name"]) == (address, name)


def test_sender_address_kind_idn_forms_are_one_customer(client, email_channel):
    post_raw(client, email_channel, mime("From: Jörg <jorg@bücher.example>".encode(), "Subject: a"))
    post_raw(client, email_channel, mime("From: jorg@xn--bcher-kva.example", "Subject: b"))
    first, second = Interaction.objects.filter(direction="inbound").order_by("id")
    assert first.customer_id == second.customer_id


@pytest.mark.parametrize(
    ("headers", "envelope_from", "address", "source"),
    [
        # RFC 5322 3.6.2: several From mailboxes, the Sender header says who sent it.
        (
            [
                "From: Doe, Jane <jane@example.com>, Roe, Rick <rick@example.com>",
                "Sender: Rick <rick@example.com>",
            ],
            "x@mailer.example",
            "rick@example.com",
            "sender",
        ),
        # No Sender: the From mailbox the envelope came from.
        (["From: a@example.com, b@example.com"], "b@example.com", "b@example.com", "from"),
        # Neither: the first.
        (["From: a@example.com, b@example.com"], "x@mailer.example", "a@example.com", "from"),
        # No usable From address at all: Sender, then the envelope (SMTP MAIL FROM).
        (["From: Bob <bob@>", "Sender: bob@example.net"], "x@mailer.example", "bob@example.net", "sender"),
        (["From: Bob <bob@>"], "bob@example.com", "bob@example.com", "envelope"),
        (["From: undisclosed-recipients:;"], "ops@example.com", "ops@example.com", "envelope"),
        (["From: "], "ops@example.com", "ops@example.com", "envelope"),
        ([], "ops@example.com", "ops@example.com", "envelope"),
    ],
)
def test_sender_address_kind_sender_header_and_envelope_fallback(
    client, email_channel, headers, envelope_from, address, source
):
    email = mime(*headers, "Subject: Hello")
    assert post_raw(client, email_channel, email, envelope_from=envelope_from).status_code == 200
    interaction = inbound()
    assert interaction.customer_address == address
    assert interaction.metadata["email"]["sender_source"] == source


def test_sender_address_kind_envelope_fallback_keeps_the_display_name(client, email_channel):
    resp = post_raw(client, email_channel, mime("From: Bob Brown <bob@>"), envelope_from="bob@example.com")
    assert resp.status_code == 200
    assert inbound().customer.display_name == "Bob Brown"


def test_sender_address_kind_parsed_mode_envelope_fallback(client, email_channel):
    fields = parsed_fields("From: Support Desk", "Subject: hi", **{"from": "Support Desk"})
    assert post_parsed(client, email_channel, fields).status_code == 200
    # fields_sample's envelope: {"from": "envelope-from@example.org"}
    assert inbound().customer_address == "envelope-from@example.org"


# ---------------------------------------------------------------- 2. charsets

HEBREW = "שלום, איפה החבילה שלי?"


def _b_word(text: str, label: str, codec: str) -> str:
    return f"=?{label}?B?{base64.b64encode(text.encode(codec)).decode()}?="


def test_charset_kind_iso_8859_8_i_raw_mode(client, email_channel):
    """The issue's example: U+FFFD before."""
    email = mime(
        "From: Dana <dana@example.co.il>",
        "Subject: " + _b_word("הזמנה 42", "iso-8859-8-i", "iso-8859-8"),
        ctype=b"text/plain; charset=iso-8859-8-i",
        body=HEBREW.encode("iso-8859-8") + CRLF,
    )
    assert post_raw(client, email_channel, email).status_code == 200
    interaction = inbound()
    assert interaction.body == HEBREW
    assert interaction.metadata["email"]["subject"] == "הזמנה 42"
    assert interaction.conversation is not None
    assert interaction.conversation.subject == "הזמנה 42"


def test_charset_kind_iso_8859_8_i_parsed_mode(client, email_channel):
    fields = parsed_fields(
        "From: Dana <dana@example.co.il>",
        "Subject: " + _b_word("הזמנה 42", "iso-8859-8-i", "iso-8859-8"),
        text=HEBREW.encode("iso-8859-8"),
        subject="הזמנה 42".encode("iso-8859-8"),
        html=f"<p>{HEBREW}</p>".encode("iso-8859-8"),
        charsets=json.dumps(
            {
                "to": "UTF-8",
                "from": "UTF-8",
                "subject": "iso-8859-8-i",
                "text": "iso-8859-8-i",
                "html": "iso-8859-8-i",
            }
        ),
    )
    assert post_parsed(client, email_channel, fields).status_code == 200
    interaction = inbound()
    assert interaction.body == HEBREW
    assert interaction.metadata["email"]["subject"] == "הזמנה 42"
    assert interaction.metadata["email"]["html"] == f"<p>{HEBREW}</p>"


# (label as mail software writes it, the text, the codec the bytes are really in)
CHARSET_CASES = [
    ("iso-8859-8-i", "שלום עולם", "iso-8859-8"),
    ("ISO-8859-8-E", "שלום עולם", "iso-8859-8"),
    ("ks_c_5601-1987", "안녕하세요, 주문 문의드립니다", "cp949"),  # Outlook's label for Korean
    ("x-mac-cyrillic", "Здравствуйте, где мой заказ?", "mac-cyrillic"),
    ("x-mac-roman", "Caf\u00e9 cr\u00e8me \u2014 merci", "mac-roman"),
    ("windows-874", "สวัสดีครับ", "cp874"),
    ("tis-620", "สวัสดีครับ", "cp874"),
    ("utf8", "naïve café ✓", "utf-8"),
    ("unicode-1-1-utf-8", "naïve café ✓", "utf-8"),
    ("gb2312", "你好\uff0c镕铁髙", "gbk"),  # labelled GB2312, written in GBK (the last two are GBK only)
    ("x-gbk", "你好\uff0c世界", "gbk"),
    ("iso-8859-1", "\u201csmart quotes\u201d \u2013 \u20ac5", "cp1252"),  # Outlook labels cp1252 so
    ("us-ascii", "plain ascii", "ascii"),
    ("x-sjis", "こんにちは", "cp932"),
    ("big5-hkscs", "你好嗎", "big5hkscs"),
    ("koi8-u", "Привіт", "koi8-u"),
    ("utf-7", "Grüße ✓", "utf-7"),  # not a WHATWG label: Python's codec
    ("iso-2022-kr", "안녕하세요", "iso2022_kr"),  # WHATWG "replacement": Python's codec
    ("iso-2022-jp", "こんにちは", "iso2022_jp"),
    ('"UTF-8"', "quoted label ✓", "utf-8"),
    ("x-no-such-charset", "unknown label, UTF-8 bytes ✓", "utf-8"),
    ("", "no label at all, UTF-8 bytes ✓", "utf-8"),
]


@pytest.mark.parametrize(("label", "text", "codec"), CHARSET_CASES)
def test_charset_kind_raw_mode_text_part_and_subject(client, email_channel, label, text, codec):
    ctype = b"text/plain" + (f"; charset={label}".encode() if label else b"")
    email = mime(
        "From: a@example.com",
        "Subject: " + (_b_word(text, label.strip('"'), codec) if label else "no label"),
        ctype=ctype,
        body=text.encode(codec) + CRLF,
    )
    assert post_raw(client, email_channel, email).status_code == 200
    interaction = inbound()
    assert interaction.body == text
    assert interaction.metadata["email"]["subject"] == (text if label else "no label")


@pytest.mark.parametrize(("label", "text", "codec"), CHARSET_CASES)
def test_charset_kind_parsed_mode_charsets_field(client, email_channel, label, text, codec):
    fields = parsed_fields(
        "From: a@example.com",
        "Subject: " + (_b_word(text, label.strip('"'), codec) if label else "no label"),
        text=text.encode(codec),
        charsets=json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8", "text": label.strip('"')}),
    )
    assert post_parsed(client, email_channel, fields).status_code == 200
    interaction = inbound()
    assert interaction.body == text
    assert interaction.metadata["email"]["subject"] == (text if label else "no label")


def test_charset_kind_x_user_defined_maps_bytes_per_whatwg(client, email_channel):
    email = mime("From: a@example.com", ctype=b"text/plain; charset=x-user-defined", body=b"OK \x80\xff")
    assert post_raw(client, email_channel, email).status_code == 200
    assert inbound().body == "OK \uf780\uf7ff"


def test_charset_kind_header_details(client, email_channel):
    euro = "€".encode()
    split = (  # one UTF-8 character split across two encoded words, as some senders do
        f"=?utf-8?B?{base64.b64encode(euro[:2]).decode()}?= =?utf-8?B?{base64.b64encode(euro[2:]).decode()}?="
    )
    email = mime(
        "From: a@example.com",
        b"Subject: "
        + split.encode()
        + b" 5 for \xc3\xa9clairs and =?utf-8*fr?Q?cr=C3=A8me?=\r\n  br\xc3\xbbl\xc3\xa9e",
        ctype=b"text/plain; charset=utf-8",
    )
    assert post_raw(client, email_channel, email).status_code == 200
    # RFC 6532 raw UTF-8 header bytes, an RFC 2231 language suffix, folding: all as a mail client shows.
    assert inbound().metadata["email"]["subject"] == "€ 5 for éclairs and crème  brûlée"


def test_charset_kind_html_part_and_base64_body(client, email_channel):
    html = "<p>Привет, где мой заказ?</p>"
    body = (
        b"--b1\r\nContent-Type: text/html; charset=KOI8-R\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(html.encode("koi8-r"))
        + b"--b1--\r\n"
    )
    email = mime("From: a@example.com", ctype=b'multipart/alternative; boundary="b1"', body=body)
    assert post_raw(client, email_channel, email).status_code == 200
    interaction = inbound()
    assert interaction.metadata["email"]["html"] == html
    assert interaction.body == "Привет, где мой заказ?"


def test_charset_kind_8bit_text_labelled_us_ascii_is_read_as_utf8(client, email_channel):
    email = mime("From: a@example.com", ctype=b"text/plain; charset=us-ascii", body="Café ✓\r\n".encode())
    assert post_raw(client, email_channel, email).status_code == 200
    assert inbound().body == "Café ✓"


def test_charset_kind_html_part_without_charset_uses_its_meta_label(client, email_channel):
    html = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1251"></head>'
    html += "<body><p>Здравствуйте</p></body></html>"
    email = mime("From: a@example.com", ctype=b"text/html", body=html.encode("cp1251"))
    assert post_raw(client, email_channel, email).status_code == 200
    interaction = inbound()
    assert interaction.metadata["email"]["html"] == html
    assert interaction.body == "Здравствуйте"


# ---------------------------------------------------------------- 3. malformed parts


def test_malformed_part_kind_nameless_file_part_parsed_mode(client, email_channel):
    """The issue's example: ``attachment2 is missing``, 400, before."""
    info = {
        "attachment1": {"filename": "notes.txt", "type": "text/plain"},
        "attachment2": {"filename": "", "type": "application/pdf"},
    }
    fields = parsed_fields(
        "From: a@example.com", "Subject: two files", attachments="2", **{"attachment-info": json.dumps(info)}
    )
    files = {
        "attachment1": ("notes.txt", "text/plain", b"some notes"),
        "attachment2": ("", "application/pdf", b"%PDF-1.4 nameless"),
    }
    resp = post_parsed(client, email_channel, fields, files)
    assert resp.status_code == 200, resp.content
    interaction = inbound()
    assert interaction.body == "Test body plain"
    stored = {a.filename: a.file.read() for a in Attachment.objects.filter(interaction=interaction)}
    assert stored == {"notes.txt": b"some notes", "attachment2.pdf": b"%PDF-1.4 nameless"}
    assert any("attachment2" in p for p in interaction.metadata["email"]["problems"])
    # The stored event names every file part as posted; its bytes are the stored attachment.
    posted = ProviderEvent.objects.get().payload["files"]
    assert [(f["field"], f["filename"], f["sha256"]) for f in posted] == [
        ("attachment1", "notes.txt", hashlib.sha256(b"some notes").hexdigest()),
        ("attachment2", "", hashlib.sha256(b"%PDF-1.4 nameless").hexdigest()),
    ]


def test_malformed_part_kind_agent_sees_the_kept_part_and_what_was_wrong(client, email_channel):
    from django.test import Client
    from django.urls import reverse

    from engagement.models import Role
    from tests import factories

    fields = parsed_fields("From: a@example.com", "Subject: two files", attachments="2")
    files = {
        "attachment1": ("notes.txt", "text/plain", b"some notes"),
        "attachment2": ("", "application/pdf", b"%PDF-1.4 nameless"),
    }
    assert post_parsed(client, email_channel, fields, files).status_code == 200
    agent = Client()
    agent.force_login(factories.member(email_channel.workspace, Role.AGENT))
    page = agent.get(reverse("console:conversation", args=[inbound().conversation_id])).content.decode()
    assert "attachment2.pdf" in page
    assert "notes.txt" in page
    assert "As received: attachment2 has no filename; kept as attachment2.pdf" in page


@pytest.mark.parametrize(
    ("changes", "files", "expected", "problem"),
    [
        # A file part whose name sanitises to nothing.
        (
            {"attachments": "1"},
            {"attachment1": (".", "image/png", b"\x89PNG")},
            {"attachment1.png": b"\x89PNG"},
            "attachment1 has no filename",
        ),
        # Announced but never posted: the mail is kept without it.
        (
            {"attachments": "2"},
            {"attachment1": ("a.txt", "text/plain", b"A")},
            {"a.txt": b"A"},
            "attachment2 was announced but not posted",
        ),
        # More posted than announced, and a count that is not a number: every posted part is kept.
        (
            {"attachments": "1"},
            {"attachment1": ("a.txt", "text/plain", b"A"), "attachment2": ("b.txt", "text/plain", b"B")},
            {"a.txt": b"A", "b.txt": b"B"},
            "",
        ),
        (
            {"attachments": "two"},
            {"attachment1": ("a.txt", "text/plain", b"A")},
            {"a.txt": b"A"},
            "not a whole number",
        ),
        # Side fields that are not the JSON they should be: ignored, the mail kept.
        (
            {"attachments": "1", "attachment-info": "{not json"},
            {"attachment1": ("a.txt", "text/plain", b"A")},
            {"a.txt": b"A"},
            "attachment-info is not valid JSON",
        ),
        (
            {"attachments": "1", "content-ids": "[1, 2]"},
            {"attachment1": ("a.txt", "text/plain", b"A")},
            {"a.txt": b"A"},
            "content-ids is not a JSON dict",
        ),
        ({"envelope": "{not json"}, {}, {}, "envelope is not valid JSON"),
        ({"charsets": "[1, 2"}, {}, {}, "charsets is not valid JSON"),
        # An RFC 2047 encoded filename (Outlook writes them) is shown decoded.
        (
            {"attachments": "1"},
            {"attachment1": ("=?utf-8?B?w5xiZXJzaWNodC5wZGY=?=", "application/pdf", b"%PDF")},
            {"Übersicht.pdf": b"%PDF"},
            "",
        ),
    ],
)
def test_malformed_part_kind_parsed_mode_keeps_the_mail(
    client, email_channel, changes, files, expected, problem
):
    fields = parsed_fields("From: a@example.com", "Subject: files", **changes)
    resp = post_parsed(client, email_channel, fields, files)
    assert resp.status_code == 200, resp.content
    interaction = inbound()
    assert interaction.body == "Test body plain"
    assert {a.filename: a.file.read() for a in Attachment.objects.filter(interaction=interaction)} == expected
    problems = " | ".join(interaction.metadata["email"]["problems"])
    assert problem in problems if problem else True


def _multipart(*parts: bytes, boundary: bytes = b"mix") -> bytes:
    return b"".join(b"--" + boundary + CRLF + p + CRLF for p in parts) + b"--" + boundary + b"--" + CRLF


TEXT_PART = b"Content-Type: text/plain; charset=utf-8\r\n\r\nThe text is kept."


@pytest.mark.parametrize(
    ("part", "filename", "content"),
    [
        # Undecodable base64 (bad characters, impossible length): decoded as far as it goes, kept.
        (
            b"Content-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            b"!!not*base64**",
            "a.pdf",
            None,
        ),
        (
            b"Content-Type: application/pdf; name=b.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            b"JVBERi0xLjQK\r\nJ",
            "b.pdf",
            b"%PDF-1.4\n",
        ),
        # An unknown transfer encoding: the bytes as they came.
        (
            b"Content-Type: application/octet-stream; name=c.bin\r\nContent-Transfer-Encoding: base65\r\n\r\n"
            b"raw bytes",
            "c.bin",
            b"raw bytes",
        ),
        # Broken uuencode.
        (
            b"Content-Type: application/octet-stream; name=d.bin\r\n"
            b"Content-Transfer-Encoding: x-uuencode\r\n\r\n"
            b"begin 644 d\r\n!!!",
            "d.bin",
            None,
        ),
        # A filename in a charset nobody knows (RFC 2231), and one in raw 8-bit UTF-8.
        (
            b"Content-Type: application/pdf\r\n"
            b"Content-Disposition: attachment; filename*=x-bogus''na%EFve.pdf\r\n\r\n"
            b"%PDF",
            None,
            b"%PDF",
        ),
        (
            b"Content-Type: application/pdf\r\n"
            b'Content-Disposition: attachment; filename="r\xc3\xa9sum\xc3\xa9.pdf"\r\n\r\n%PDF',
            "résumé.pdf",
            b"%PDF",
        ),
        # A nameless attachment gets a generated name.
        (
            b"Content-Type: image/png\r\n"
            b"Content-Disposition: attachment\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            b"iVBORw==",
            "part2.png",
            b"\x89PNG",
        ),
        # A malformed Content-Type.
        (
            b"Content-Type: application\r\nContent-Disposition: attachment; filename=e.dat\r\n\r\ndata",
            "e.dat",
            b"data",
        ),
    ],
)
def test_malformed_part_kind_raw_mode_keeps_the_rest(client, email_channel, part, filename, content):
    other = (
        b"Content-Type: text/csv; name=ok.csv\r\nContent-Disposition: attachment; filename=ok.csv\r\n\r\na,b"
    )
    email = mime(
        "From: a@example.com",
        ctype=b'multipart/mixed; boundary="mix"',
        body=_multipart(TEXT_PART, part, other),
    )
    assert post_raw(client, email_channel, email).status_code == 200
    interaction = inbound()
    assert interaction.body == "The text is kept."
    stored = {a.filename: a.file.read() for a in Attachment.objects.filter(interaction=interaction)}
    assert stored.pop("ok.csv") == b"a,b"
    assert len(stored) == 1
    [(name, data)] = stored.items()
    if filename is not None:
        assert name == filename
    if content is not None:
        assert data == content


def test_malformed_part_kind_multipart_without_boundary_shows_its_text(client, email_channel):
    email = mime("From: a@example.com", ctype=b"multipart/alternative", body=b"Just text, no parts.\r\n")
    assert post_raw(client, email_channel, email).status_code == 200
    assert inbound().body == "Just text, no parts."


def test_malformed_part_kind_nested_message_is_one_attachment(client, email_channel):
    nested = b"From: x@example.net\r\nSubject: inner\r\nContent-Type: text/plain\r\n\r\ninner body\r\n"
    email = mime(
        "From: a@example.com",
        ctype=b'multipart/mixed; boundary="mix"',
        body=_multipart(TEXT_PART, b"Content-Type: message/rfc822\r\n\r\n" + nested),
    )
    assert post_raw(client, email_channel, email).status_code == 200
    interaction = inbound()
    assert interaction.body == "The text is kept."
    [attachment] = Attachment.objects.filter(interaction=interaction)
    assert (attachment.filename, attachment.content_type) == ("part2.eml", "message/rfc822")


# ---------------------------------------------------------------- 6. auto-reply loops


AUTOMATED = [
    ["Precedence: bulk"],
    ["Precedence: junk"],
    ["Precedence: list"],
    ["X-Precedence: bulk"],
    ["Auto-Submitted: auto-generated"],
    ["Auto-Submitted: auto-notified; owner-email=x@example.com"],
    ["Auto-Submitted: Auto-Replied (vacation)"],
    ["X-Autoreply: yes"],
    ["X-Autorespond: Out of office"],
    ["X-AutoReply-From: a@example.com"],
    ["List-Id: Customers <customers.lists.example.com>"],
    ["List-Unsubscribe: <mailto:leave@lists.example.com>"],
    ["X-Auto-Response-Suppress: All"],
    ["Return-Path: <>"],
    ["Return-Path: <MAILER-DAEMON@mx.example.org>"],
]


@pytest.mark.parametrize("headers", AUTOMATED)
@pytest.mark.parametrize("mode", ["raw", "parsed"])
def test_automated_mail_kind_gets_no_automated_answer(
    client, email_channel, django_capture_on_commit_callbacks, headers, mode
):
    AutomationRule.objects.create(
        workspace=email_channel.workspace, name="any", match_type="any", template="thanks!"
    )
    with django_capture_on_commit_callbacks(execute=True):
        if mode == "raw":
            resp = post_raw(client, email_channel, mime("From: a@example.com", "Subject: Note", *headers))
        else:
            resp = post_parsed(
                client, email_channel, parsed_fields("From: a@example.com", "Subject: Note", *headers)
            )
    assert resp.status_code == 200
    email = inbound().metadata["email"]
    assert email["auto_reply"] is True
    assert email["automated_reason"]
    assert not Interaction.objects.filter(direction="outbound").exists()


@pytest.mark.parametrize(
    ("from_header", "envelope_from", "ctype"),
    [
        ("a@example.com", "", b""),  # null envelope sender (a bounce)
        ("a@example.com", "<>", b""),
        ("Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>", "x@example.org", b""),
        ("postmaster@example.org", "postmaster@example.org", b""),
        (
            "a@example.com",
            "a@example.com",
            b'multipart/report; report-type=disposition-notification; boundary="r"',
        ),
    ],
)
def test_automated_mail_kind_bounces_and_reports(
    client, email_channel, django_capture_on_commit_callbacks, from_header, envelope_from, ctype
):
    AutomationRule.objects.create(
        workspace=email_channel.workspace, name="any", match_type="any", template="thanks!"
    )
    body = _multipart(TEXT_PART, boundary=b"r") if ctype else b"Delivery failed.\r\n"
    with django_capture_on_commit_callbacks(execute=True):
        resp = post_raw(
            client,
            email_channel,
            mime(f"From: {from_header}", ctype=ctype, body=body),
            envelope_from=envelope_from,
        )
    assert resp.status_code == 200
    assert inbound().metadata["email"]["auto_reply"] is True
    assert not Interaction.objects.filter(direction="outbound").exists()


def test_automated_mail_kind_automation_never_answers_a_marked_mail_whatever_the_event(
    client, email_channel, django_capture_on_commit_callbacks
):
    from engagement import events
    from engagement.services.automation import automations_run

    AutomationRule.objects.create(
        workspace=email_channel.workspace, name="any", match_type="any", template="thanks!"
    )
    with django_capture_on_commit_callbacks(execute=True):
        post_raw(client, email_channel, mime("From: a@example.com", "Precedence: bulk"))
    automated = inbound()
    for name in (events.MESSAGE_RECEIVED, events.CONVERSATION_OPENED):
        assert (
            automations_run(event_name=name, workspace_id=automated.workspace_id, interaction_id=automated.pk)
            == []
        )
    assert not Interaction.objects.filter(direction="outbound").exists()


def test_automated_mail_kind_a_person_is_answered_with_auto_submitted(
    client, email_channel, fake_sendgrid, django_capture_on_commit_callbacks
):
    AutomationRule.objects.create(
        workspace=email_channel.workspace, name="any", match_type="any", template="thanks!"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            post_raw(client, email_channel, mime("From: a@example.com", "Auto-Submitted: no")).status_code
            == 200
        )
    answer = Interaction.objects.get(direction="outbound")
    assert answer.status == "sent"
    [sent] = fake_sendgrid.messages
    assert sent["headers"]["Auto-Submitted"] == "auto-replied"


def test_automated_mail_kind_auto_submitted_on_every_automated_send(
    email_channel, fake_sendgrid, django_user_model
):
    from customers.services import Identifier, customer_resolve
    from engagement.services.email_threading import email_auto_submitted

    workspace = email_channel.workspace
    customer, _ = customer_resolve(
        workspace=workspace, identifier=Identifier("email", "grace@example.com"), channel_kind="email"
    )
    agent = django_user_model.objects.create_user(username="agent", password="x")
    rule = AutomationRule.objects.create(workspace=workspace, name="r", match_type="any", template="t")
    sends = {
        "rule": message_send(
            workspace=workspace, channel=email_channel, customer=customer, body="a", automation_rule=rule
        ),
        "keyword": message_send(
            workspace=workspace,
            channel=email_channel,
            customer=customer,
            body="b",
            idempotency_key="keyword:1",
        ),
        "api": message_send(workspace=workspace, channel=email_channel, customer=customer, body="c"),
        "agent": message_send(
            workspace=workspace, channel=email_channel, customer=customer, body="d", author=agent
        ),
    }
    expected = {"rule": "auto-replied", "keyword": "auto-replied", "api": "auto-generated", "agent": ""}
    assert {k: email_auto_submitted(interaction=i) for k, (i, _) in sends.items()} == expected
    for interaction, _ in sends.values():
        outbound_interaction_send(interaction_id=interaction.pk)
    sent = [m["headers"].get("Auto-Submitted", "") for m in fake_sendgrid.messages]
    assert sent == ["auto-replied", "auto-replied", "auto-generated", ""]


def _mails(client, channel, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        email = mime("From: loop@example.com", f"Subject: ticket {i}", f"Message-ID: <m{i}@example.com>")
        assert post_raw(client, channel, email).status_code == 200


def test_automated_mail_kind_hourly_cap_on_automated_answers(
    client, email_channel, settings, django_capture_on_commit_callbacks
):
    """A responder on the other side that ignores Auto-Submitted still cannot make us answer more than
    AUTOMATED_ANSWERS_PER_HOUR times an hour; the answers over the cap are on the timeline as blocked."""
    settings.AUTOMATED_ANSWERS_PER_HOUR = 3
    AutomationRule.objects.create(
        workspace=email_channel.workspace, name="any", match_type="any", template="thanks!"
    )
    with django_capture_on_commit_callbacks(execute=True):
        _mails(client, email_channel, 5)
    answers = Interaction.objects.filter(direction="outbound").order_by("id")
    assert [a.status for a in answers] == ["sent"] * 3 + ["blocked"] * 2
    blocked = answers[3]
    assert blocked.metadata["blocked_reason"] == "automated_answer_limit"
    assert "(limit 3 an hour)" in blocked.error_message
    assert blocked.conversation_id is not None  # on the timeline, not dropped
    # An hour later the customer is answered again.
    Interaction.objects.filter(direction="outbound").update(created_at=timezone.now() - timedelta(minutes=61))
    with django_capture_on_commit_callbacks(execute=True):
        _mails(client, email_channel, 1, start=5)
    assert Interaction.objects.filter(direction="outbound").latest("id").status == "sent"


def test_automated_mail_kind_cap_is_configurable_per_channel(
    client, email_channel, django_capture_on_commit_callbacks
):
    email_channel.config["automated_answers_per_hour"] = 1
    email_channel.save()
    AutomationRule.objects.create(
        workspace=email_channel.workspace, name="any", match_type="any", template="thanks!"
    )
    with django_capture_on_commit_callbacks(execute=True):
        _mails(client, email_channel, 2)
    assert [a.status for a in Interaction.objects.filter(direction="outbound").order_by("id")] == [
        "sent",
        "blocked",
    ]


# ---------------------------------------------------------------- 8. the stored original


def test_stored_original_kind_raw_mode_is_byte_for_byte(client, email_channel):
    from channels_inbound.providers.sendgrid import inbound_original_fields

    email = mime(
        b"From: =?iso-8859-1?Q?J=F6rg?= <jorg@example.de>",
        b"Subject:   spaced   out\r\n\tand folded",
        b"X-Odd: trailing space ",
        ctype=b"text/plain; charset=iso-8859-1",
        body=b"Gr\xfc\xdfe aus K\xf6ln\r\nline with NUL \x00 byte\r\n\r\n",
    )
    assert post_raw(client, email_channel, email).status_code == 200
    stored = inbound_original_fields(ProviderEvent.objects.get().payload)
    assert stored["email"] == email
    assert stored["SPF"] == b"pass"
    # What the timeline shows is what a mail client shows for it.
    interaction = inbound()
    assert interaction.body.startswith("Grüße aus Köln")
    assert interaction.metadata["email"]["subject"] == "spaced   out\tand folded"
    assert interaction.customer.display_name == "Jörg"


def test_stored_original_kind_parsed_mode_fields_are_byte_for_byte(client, email_channel):
    from channels_inbound.providers.sendgrid import inbound_original_fields

    text = "Grüße aus Köln\r\n\r\n-- \r\nJörg".encode("iso-8859-1")
    fields = parsed_fields(
        "From: a@example.com",
        "Subject: hi",
        text=text,
        charsets=json.dumps({"text": "iso-8859-1", "to": "UTF-8", "from": "UTF-8", "subject": "UTF-8"}),
    )
    assert post_parsed(client, email_channel, fields).status_code == 200
    stored = inbound_original_fields(ProviderEvent.objects.get().payload)
    assert stored == {k: v if isinstance(v, bytes) else v.encode() for k, v in fields.items()}
    assert inbound().body.startswith("Grüße aus Köln")


def test_stored_original_kind_nested_message_attachment_is_byte_for_byte(client, email_channel):
    nested = (
        b"From: x@example.net\r\nSubject:   odd   spacing\r\n folded\r\nX-Long: "
        + b"word " * 40
        + b"\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nbody \xe9\r\n"
    )
    email = mime(
        "From: a@example.com",
        ctype=b'multipart/mixed; boundary="mix"',
        body=_multipart(
            TEXT_PART, b"Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" + nested
        ),
    )
    assert post_raw(client, email_channel, email).status_code == 200
    [attachment] = Attachment.objects.filter(interaction=inbound())
    assert attachment.file.read() == nested


def test_stored_original_kind_quoted_printable_shows_as_a_mail_client_shows_it(client, email_channel):
    body = (
        b"--alt\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b""
        b"A long line that was wrapped by the sender's mail program because it is lo=\r\nng. Caf=C3=A9.\r\n"
        b"--alt\r\n"
        b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b""
        b"<p>Caf=C3=A9 =3D coffee</p>\r\n--alt--\r\n"
    )
    email = mime("From: a@example.com", ctype=b'multipart/alternative; boundary="alt"', body=body)
    assert post_raw(client, email_channel, email).status_code == 200
    interaction = inbound()
    assert interaction.body == (
        "A long line that was wrapped by the sender's mail program because it is long. Café."
    )
    assert interaction.metadata["email"]["html"] == "<p>Café = coffee</p>"


FLOWED = (
    b"Hello,\r\n\r\nthis paragraph was wrapped by the sender's mail program \r\nand a client joins it "
    b"\r\nagain.\r\n>> quoted and \r\n>> flowed\r\n> \r\n>From here, space-stuffed\r\n \r\n-- \r\nAda\r\n"
)
FLOWED_SHOWN = (
    "Hello,\n\nthis paragraph was wrapped by the sender's mail program and a client joins it again.\n"
    ">> quoted and flowed\n> \n> From here, space-stuffed\n\n-- \nAda"
)


def test_stored_original_kind_format_flowed_shows_as_a_mail_client_shows_it(client, email_channel):
    email = mime("From: a@example.com", ctype=b"text/plain; charset=utf-8; format=flowed", body=FLOWED)
    assert post_raw(client, email_channel, email).status_code == 200
    assert inbound().body == FLOWED_SHOWN


def test_stored_original_kind_format_flowed_delsp_and_parsed_mode(client, email_channel):
    text = "Gr\u00fc\u00dfe aus K\u00f6 \r\nln.\r\n"
    fields = parsed_fields(
        "From: a@example.com", "Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes", text=text
    )
    assert post_parsed(client, email_channel, fields).status_code == 200
    assert inbound().body == "Gr\u00fc\u00dfe aus K\u00f6ln."
