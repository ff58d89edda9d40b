"""Inbound email through the real SendGrid Inbound Parse endpoint: recorded samples in both modes
(parsed fields and raw MIME), charsets, attachments and inline images, Basic auth, replays, malformed
posts, auto-replies and bounces."""

from __future__ import annotations

import json
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from django.db import connection

from channels_inbound.models import InboundRequest, ProviderEvent
from customers.models import Identity
from engagement.models import Attachment, AutomationRule, Conversation, Interaction, OutboxEvent
from tests.conftest import PAYLOADS, load_payload, webhook_path
from tests.fakes.sendgrid_server import (
    INBOUND_PASSWORD,
    INBOUND_USER,
    basic_auth,
    multipart_body,
    sample_to_crlf,
)

pytestmark = pytest.mark.django_db


def post_inbound(client, channel, body: bytes, content_type: str, auth: str | None = None):
    auth = basic_auth(INBOUND_USER, INBOUND_PASSWORD) if auth is None else auth
    headers = {"Authorization": auth} if auth else {}
    return client.post(
        webhook_path(channel, "inbound"), data=body, content_type=content_type, headers=headers
    )


def sample(name: str) -> tuple[bytes, str]:
    text = (PAYLOADS / name).read_text().split("\n", 1)[1]
    return sample_to_crlf(text), "multipart/form-data; boundary=xYzZY"


def fields_sample(**changes: str | bytes | None) -> dict[str, str | bytes]:
    fields: dict[str, str | bytes] = dict(load_payload("sendgrid_inbound_parse_fields.json"))
    for key, value in changes.items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return fields


def raw_mail(
    *,
    sender: str = "Ada Lovelace <ada@example.org>",
    to: str = "support@mail.example.com",
    subject: str = "Question about my order",
    text: str = "Hello, where is my parcel?",
    html: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.org")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


def raw_post_fields(msg: EmailMessage) -> dict[str, str | bytes]:
    return {
        "email": msg.as_bytes(),
        "to": str(msg["To"]),
        "from": str(msg["From"]),
        "subject": str(msg["Subject"]),
        "envelope": json.dumps({"to": [str(msg["To"])], "from": "ada@example.org"}),
        "charsets": json.dumps({"to": "UTF-8", "subject": "UTF-8", "from": "UTF-8"}),
        "SPF": "pass",
        "dkim": "{@example.org : pass}",
    }


def _snapshot() -> dict[str, list[tuple]]:
    with connection.cursor() as cur:
        snap = {}
        for table in (
            "customers_customer",
            "customers_identity",
            "engagement_conversation",
            "engagement_interaction",
            "engagement_attachment",
            "channels_inbound_providerevent",
        ):
            cur.execute(f"SELECT id FROM {table} ORDER BY id")  # noqa: S608 - fixed names
            snap[table] = cur.fetchall()
        return snap


# ---------------------------------------------------------------- recorded samples


def test_parsed_mode_sample_lands_on_timeline(client, email_channel, django_capture_on_commit_callbacks):
    body, content_type = sample("sendgrid_inbound_parse_default.txt")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        resp = post_inbound(client, email_channel, body, content_type)
    assert resp.status_code == 200, resp.content
    interaction = Interaction.objects.get()
    assert interaction.direction == "inbound"
    assert interaction.body.strip() == "Hello Twilio SendGrid!"
    assert interaction.customer_address == "test@example.com"
    identity = Identity.objects.get(kind="email")
    assert (identity.value, identity.customer_id) == ("test@example.com", interaction.customer_id)
    assert interaction.customer.display_name == "Example User"
    email = interaction.metadata["email"]
    assert email["mode"] == "parsed"
    assert email["subject"] == "Inbound Parse Test Data"
    assert "<strong>Hello Twilio SendGrid!" in email["html"]
    # No Message-ID in this sample: a hash of the content stands in, so a retry still deduplicates.
    assert interaction.email_message_id.startswith("sha256:")
    assert interaction.conversation is not None
    assert interaction.conversation.subject == "Inbound Parse Test Data"
    assert ProviderEvent.objects.get().processed_at is not None
    # customer.created, conversation.opened and message.received, in the outbox with the change,
    # relayed after commit
    assert list(OutboxEvent.objects.order_by("id").values_list("name", flat=True)) == [
        "customer.created",
        "conversation.opened",
        "message.received",
    ]
    assert len(callbacks) == 2  # the unit tests' inline relay, one per publish


def test_raw_mime_sample_lands_on_timeline(client, email_channel):
    body, content_type = sample("sendgrid_inbound_parse_raw.txt")
    resp = post_inbound(client, email_channel, body, content_type)
    assert resp.status_code == 200, resp.content
    interaction = Interaction.objects.get()
    assert interaction.body.strip() == "Hello Twilio SendGrid!"
    assert interaction.metadata["email"]["mode"] == "raw"
    assert interaction.metadata["email"]["subject"] == "Inbound Parse Test Raw Data"
    assert "<strong>Hello Twilio SendGrid!</body>" in interaction.metadata["email"]["html"]
    assert interaction.customer_address == "test@example.com"


def test_anymail_fields_sample_with_message_id_and_spam_fields(client, email_channel):
    body, content_type = multipart_body(fields_sample())
    assert post_inbound(client, email_channel, body, content_type).status_code == 200
    interaction = Interaction.objects.get()
    assert interaction.customer_address == "from+test@example.org"
    assert interaction.customer.display_name == "Displayed From"
    assert interaction.email_message_id == "CAEPk3R+4Zr@mail.example.org"
    assert interaction.provider_message_id == f"{email_channel.pk}:CAEPk3R+4Zr@mail.example.org"
    email = interaction.metadata["email"]
    assert email["to"] == ["test@inbound.example.com", "other@example.com"]
    assert email["cc"] == ["cc@example.com"]
    assert (email["spam_score"], email["spf"]) == ("1.7", "pass")
    assert interaction.body == "Test body plain"


def test_attachments_and_inline_image_are_stored_and_linked(client, email_channel):
    spec = load_payload("sendgrid_inbound_parse_attachment_fields.json")
    fields = fields_sample(**{k: v for k, v in spec.items() if not k.startswith("_")})
    fields["headers"] = load_payload("sendgrid_inbound_parse_fields.json")["headers"]
    png = b"\x89PNG\r\n\x1a\n" + b"\x00fake-image-bytes"
    files = {
        "attachment1": ("test.txt", "text/plain", b"test attachment"),
        "attachment2": ("image.png", "image/png", png),
        "attachment3": ("forwarded.msg", "message/rfc822", b"Subject: fwd\r\n\r\nforwarded body\r\n"),
    }
    body, content_type = multipart_body(fields, files)
    assert post_inbound(client, email_channel, body, content_type).status_code == 200
    interaction = Interaction.objects.get()
    stored = {a.filename: a for a in Attachment.objects.filter(interaction=interaction)}
    assert set(stored) == {"test.txt", "image.png", "forwarded.msg"}
    assert stored["test.txt"].file.read() == b"test attachment"
    assert stored["image.png"].file.read() == png
    assert (stored["image.png"].content_id, stored["image.png"].inline) == ("abc123", True)
    assert stored["image.png"].content_type == "image/png"
    assert stored["forwarded.msg"].content_type == "message/rfc822"
    assert not stored["test.txt"].inline
    assert stored["test.txt"].workspace_id == email_channel.workspace_id


def test_parsed_fields_are_redecoded_with_their_charsets(client, email_channel):
    fields = fields_sample(
        text="Grüße aus Köln".encode("iso-8859-1"),
        subject="Ärger mit der Lieferung".encode("iso-8859-1"),
        charsets=json.dumps(
            {"to": "UTF-8", "html": "UTF-8", "subject": "iso-8859-1", "from": "UTF-8", "text": "iso-8859-1"}
        ),
    )
    body, content_type = multipart_body(fields)
    assert post_inbound(client, email_channel, body, content_type).status_code == 200
    interaction = Interaction.objects.get()
    assert interaction.body == "Grüße aus Köln"
    # The header block wins for the subject; the form field is the fallback.
    assert interaction.metadata["email"]["subject"] == "Test subject"


def test_html_only_mail_keeps_its_line_breaks_in_the_text_body(client, email_channel):
    html = "<div>Hello,<br/>where is<BR>my parcel?</div><div>Order 42 &amp; 43</div><p>Ada</p>"
    body, content_type = multipart_body(fields_sample(text="", html=html))
    assert post_inbound(client, email_channel, body, content_type).status_code == 200
    assert Interaction.objects.get().body == "Hello,\nwhere is\nmy parcel?\nOrder 42 & 43\nAda"


def test_raw_mime_with_charset_attachment_and_inline_image(client, email_channel):
    msg = raw_mail(text="Grüße, see the photo", html='<p>Grüße <img src="cid:photo1"></p>')
    msg.replace_header("Content-Type", msg["Content-Type"])
    for part in msg.iter_parts():
        if part.get_content_type() == "text/plain":
            part.set_content("Grüße, see the photo", charset="iso-8859-1", cte="quoted-printable")
    msg.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="invoice.pdf")
    html_part = next(p for p in msg.walk() if p.get_content_type() == "text/html")
    html_part.add_related(
        b"\x89PNGfake", maintype="image", subtype="png", cid="<photo1>", filename="photo.png"
    )
    body, content_type = multipart_body(raw_post_fields(msg))
    assert post_inbound(client, email_channel, body, content_type).status_code == 200
    interaction = Interaction.objects.get()
    assert interaction.body.strip() == "Grüße, see the photo"
    attachments = {a.filename: a for a in interaction.attachments.all()}
    assert set(attachments) == {"invoice.pdf", "photo.png"}
    assert attachments["invoice.pdf"].file.read() == b"%PDF-1.4 fake"
    assert (attachments["photo.png"].content_id, attachments["photo.png"].inline) == ("photo1", True)


def test_raw_mime_with_an_unknown_charset_is_kept_not_refused(client, email_channel):
    msg = raw_mail(text="placeholder")
    raw = msg.as_bytes().replace(b'charset="utf-8"', b'charset="x-no-such-charset"')
    raw = raw.replace(b"placeholder", b"Caf\xc3\xa9 order 42")
    assert b"x-no-such-charset" in raw
    body, content_type = multipart_body({**raw_post_fields(msg), "email": raw})
    resp = post_inbound(client, email_channel, body, content_type)
    assert resp.status_code == 200, resp.content
    assert Interaction.objects.get().body.strip() == "Caf\u00e9 order 42"


# ---------------------------------------------------------------- security and robustness


def test_replaying_an_inbound_mail_five_times_equals_once(client, email_channel):
    AutomationRule.objects.create(
        workspace=email_channel.workspace, name="r", match_type="any", template="got it"
    )
    files = {"attachment1": ("test.txt", "text/plain", b"test attachment")}
    body, content_type = multipart_body(fields_sample(attachments="1"), files)
    assert post_inbound(client, email_channel, body, content_type).status_code == 200
    once = _snapshot()
    for _ in range(5):
        assert post_inbound(client, email_channel, body, content_type).status_code == 200
    assert _snapshot() == once
    assert Attachment.objects.count() == 1


@pytest.mark.parametrize(
    "auth",
    ["", basic_auth(INBOUND_USER, "wrong"), basic_auth("someone", INBOUND_PASSWORD), "Basic !!!", "Bearer x"],
)
def test_wrong_or_missing_basic_auth_is_403_and_stores_nothing(client, email_channel, auth):
    body, content_type = sample("sendgrid_inbound_parse_default.txt")
    resp = post_inbound(client, email_channel, body, content_type, auth=auth)
    assert resp.status_code == 403
    assert ProviderEvent.objects.count() == 0
    assert Interaction.objects.count() == 0


def test_channel_without_inbound_credentials_refuses_everything(client, email_channel):
    email_channel.config.pop("inbound_basic_auth")
    email_channel.save()
    body, content_type = sample("sendgrid_inbound_parse_default.txt")
    assert post_inbound(client, email_channel, body, content_type).status_code == 403


def test_credentials_of_another_channel_are_403(client, email_channel, fake_sendgrid):
    from tests import factories
    from tests.fakes.sendgrid_server import sendgrid_channel

    other = sendgrid_channel(factories.workspace_create(), fake_sendgrid)
    other.config["inbound_basic_auth"] = {"username": "other", "password": "other-password-123"}
    other.save()
    body, content_type = sample("sendgrid_inbound_parse_default.txt")
    resp = post_inbound(
        client, email_channel, body, content_type, auth=basic_auth("other", "other-password-123")
    )
    assert resp.status_code == 403


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        # No address in From, no Sender, no envelope: nobody to file it under (tests/channels_inbound/
        # test_email_kinds.py covers everything that is kept instead).
        (
            fields_sample(**{"from": "Bob <bob@>", "headers": "Subject: hi\n", "envelope": None}),
            "no usable From",
        ),
        ({"subject": "only a subject"}, "neither an 'email' field"),
    ],
)
def test_malformed_inbound_is_kept_unprocessed_with_reason(client, email_channel, fields, message):
    body, content_type = multipart_body(fields)
    resp = post_inbound(client, email_channel, body, content_type)
    assert resp.status_code == 200
    kept = InboundRequest.objects.get()
    assert message in kept.last_error
    assert bytes(kept.body) == body
    assert Interaction.objects.count() == 0


def test_not_multipart_is_kept_unprocessed(client, email_channel):
    resp = post_inbound(client, email_channel, b'{"from": "a@b.c"}', "application/json")
    assert resp.status_code == 200
    assert "expected multipart/form-data" in InboundRequest.objects.get().last_error


def test_oversized_inbound_is_413(client, email_channel, settings):
    settings.EMAIL_INBOUND_MAX_BYTES = 2048
    body, content_type = multipart_body(fields_sample(text="x" * 5000))
    assert post_inbound(client, email_channel, body, content_type).status_code == 413
    assert Interaction.objects.count() == 0


# ---------------------------------------------------------------- auto-replies and bounces


@pytest.mark.parametrize(
    "headers",
    [{"Auto-Submitted": "auto-replied"}, {"X-Autoreply": "yes"}, {"Precedence": "auto_reply"}],
)
def test_auto_replies_are_recorded_but_trigger_no_automation(
    client, email_channel, django_capture_on_commit_callbacks, headers
):
    AutomationRule.objects.create(
        workspace=email_channel.workspace, name="any", match_type="any", template="thanks!"
    )
    AutomationRule.objects.create(
        workspace=email_channel.workspace,
        name="welcome",
        trigger="conversation.opened",
        match_type="any",
        template="welcome!",
    )
    msg = raw_mail(subject="Out of office", text="I am away until Monday.", headers=headers)
    body, content_type = multipart_body(raw_post_fields(msg))
    with django_capture_on_commit_callbacks(execute=True):
        assert post_inbound(client, email_channel, body, content_type).status_code == 200
    interaction = Interaction.objects.get()
    assert interaction.metadata["email"]["auto_reply"] is True
    assert not Interaction.objects.filter(direction="outbound").exists()


def test_auto_submitted_no_is_a_normal_mail(client, email_channel, django_capture_on_commit_callbacks):
    AutomationRule.objects.create(
        workspace=email_channel.workspace, name="any", match_type="any", template="thanks!"
    )
    msg = raw_mail(headers={"Auto-Submitted": "no"})
    body, content_type = multipart_body(raw_post_fields(msg))
    with django_capture_on_commit_callbacks(execute=True):
        assert post_inbound(client, email_channel, body, content_type).status_code == 200
    assert Interaction.objects.get(direction="inbound").metadata["email"]["auto_reply"] is False
    assert Interaction.objects.filter(direction="outbound").count() == 1


def test_bounce_report_is_filed_with_the_conversation_it_answers(
    client, email_channel, django_capture_on_commit_callbacks
):
    AutomationRule.objects.create(
        workspace=email_channel.workspace, name="any", match_type="any", template="thanks!"
    )
    first = raw_mail()
    body, content_type = multipart_body(raw_post_fields(first))
    post_inbound(client, email_channel, body, content_type)
    inbound = Interaction.objects.get(direction="inbound")
    ours = Interaction.objects.create(
        workspace=email_channel.workspace,
        customer=inbound.customer,
        conversation=inbound.conversation,
        channel=email_channel,
        direction="outbound",
        body="Your parcel left today.",
        customer_address=inbound.customer_address,
        status="sent",
        status_changed_at=inbound.created_at,
        email_message_id="i999.abc@mail.example.com",
        created_at=inbound.created_at,
    )
    report = EmailMessage()
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.org>"
    report["To"] = email_channel.address
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Message-ID"] = make_msgid(domain="mx.example.org")
    report.set_content("This is the mail system. Your message could not be delivered.")
    report.make_mixed()
    original = EmailMessage()
    original["Message-ID"] = f"<{ours.email_message_id}>"
    original["Subject"] = "Re: Question about my order"
    original.set_content("Your parcel left today.")
    wrapped = EmailMessage()
    wrapped.set_content(original)  # message/rfc822
    report.attach(wrapped)
    report.replace_header(
        "Content-Type", f'multipart/report; report-type=delivery-status; boundary="{report.get_boundary()}"'
    )
    fields = raw_post_fields(report)
    fields["envelope"] = json.dumps({"to": [email_channel.address], "from": ""})
    body, content_type = multipart_body(fields)
    with django_capture_on_commit_callbacks(execute=True):
        assert post_inbound(client, email_channel, body, content_type).status_code == 200
    bounce = Interaction.objects.filter(direction="inbound").order_by("-id")[0]
    assert bounce.metadata["email"]["auto_reply"] is True
    assert bounce.conversation_id == inbound.conversation_id
    assert bounce.customer_id == inbound.customer_id
    assert Conversation.objects.count() == 1
    # No automation answered the bounce.
    assert not Interaction.objects.filter(direction="outbound", automation_rule__isnull=False).exists()


def test_inbound_email_query_count_is_bounded(client, email_channel, django_assert_max_num_queries):
    body, content_type = multipart_body(fields_sample())
    assert post_inbound(client, email_channel, body, content_type).status_code == 200
    headers = load_payload("sendgrid_inbound_parse_fields.json")["headers"].replace("CAEPk3R", "CAEPk3S")
    # A reply to the first mail: threading runs its lookups too (at most 12 queries when written).
    headers += "In-Reply-To: <CAEPk3R+4Zr@mail.example.org>\n"
    body, content_type = multipart_body(fields_sample(headers=headers))
    with django_assert_max_num_queries(14):
        assert post_inbound(client, email_channel, body, content_type).status_code == 200
    assert Conversation.objects.count() == 1
    assert Interaction.objects.latest("id").metadata["email"]["in_reply_to"] == "CAEPk3R+4Zr@mail.example.org"


def test_a_large_email_is_accepted_under_the_email_limit(client, email_channel):
    # 1 MB of text: far over the default webhook limit, well under the inbound-email one.
    body, content_type = multipart_body(fields_sample(text="y" * 1_000_000))
    assert post_inbound(client, email_channel, body, content_type).status_code == 200
    assert len(Interaction.objects.get().body) >= 1_000_000
