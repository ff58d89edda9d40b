"""An inbound email as an agent sees it in the console: HTML sanitised by nh3, quoted history folded in
a <details>, inline images from our storage, attachments listed and served only to the workspace."""

from __future__ import annotations

import json
from email.message import EmailMessage

import pytest
from django.test import Client

from engagement.models import Attachment, Interaction
from engagement.services.email_threading import email_html_sanitize, email_html_split, email_text_split
from tests import factories
from tests.conftest import webhook_path
from tests.fakes.sendgrid_server import INBOUND_PASSWORD, INBOUND_USER, basic_auth, multipart_body

pytestmark = pytest.mark.django_db

HTML = (
    '<html><head><style>p{color:red}</style><script>alert("head")</script></head><body>'
    '<p onclick="steal()">Here is the <b>photo</b> <img src="cid:pic1" onerror="x()"> and '
    '<img src="https://tracker.example/pixel.gif"> <a href="javascript:alert(1)">bad</a> '
    '<a href="https://example.org/order">good</a></p>'
    '<div class="gmail_quote">On Mon, Support wrote:<blockquote>Earlier answer</blockquote></div>'
    "</body></html>"
)


def _post_html_mail(client: Client, channel) -> Interaction:
    msg = EmailMessage()
    msg["From"] = "Grace Hopper <grace@customer.example>"
    msg["To"] = channel.address
    msg["Subject"] = "Photo of the damage"
    msg["Message-ID"] = "<photo.1@customer.example>"
    msg.set_content("Here is the photo.\n\nOn Mon, Support wrote:\n> Earlier answer")
    msg.add_alternative(HTML, subtype="html")
    html_part = next(p for p in msg.walk() if p.get_content_type() == "text/html")
    html_part.add_related(
        b"\x89PNG-inline", maintype="image", subtype="png", cid="<pic1>", filename="pic.png"
    )
    msg.add_attachment(b"<script>alert(1)</script>", maintype="text", subtype="html", filename="evil.html")
    body, content_type = multipart_body(
        {
            "email": msg.as_bytes(),
            "from": str(msg["From"]),
            "to": channel.address,
            "envelope": json.dumps({"to": [channel.address], "from": "grace@customer.example"}),
            "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8"}),
        }
    )
    resp = client.post(
        webhook_path(channel, "inbound"),
        data=body,
        content_type=content_type,
        headers={"Authorization": basic_auth(INBOUND_USER, INBOUND_PASSWORD)},
    )
    assert resp.status_code == 200, resp.content
    return Interaction.objects.get()


def test_console_shows_sanitised_email_with_quotes_folded_and_attachments(agent_client, email_channel):
    interaction = _post_html_mail(Client(), email_channel)
    page = agent_client.get(f"/conversations/{interaction.conversation_id}/").content.decode()
    inline = Attachment.objects.get(filename="pic.png")
    evil = Attachment.objects.get(filename="evil.html")
    assert "Photo of the damage" in page
    assert "<b>photo</b>" in page
    for unsafe in ("alert(", "onclick", "onerror", "javascript:", "tracker.example", "<style"):
        assert unsafe not in page.split('<ol class="timeline">', 1)[1], unsafe
    assert f'src="/attachments/{inline.pk}/"' in page
    assert 'href="https://example.org/order"' in page
    folded = page.split('<details class="email-quoted">', 1)[1].split("</details>", 1)[0]
    assert "Earlier answer" in folded
    assert f'href="/attachments/{evil.pk}/"' in page
    # The stored mail is kept whole: nothing was cut from it.
    interaction.refresh_from_db()
    assert "Earlier answer" in interaction.metadata["email"]["html"]
    assert "> Earlier answer" in interaction.body


def test_an_inline_flagged_image_the_html_does_not_show_is_still_listed(agent_client, email_channel):
    fields = {
        "headers": (
            "From: Grace Hopper <grace@customer.example>\nSubject: Damage\n"
            "Message-ID: <d.1@customer.example>\n"
        ),
        "from": "Grace Hopper <grace@customer.example>",
        "to": email_channel.address,
        "subject": "Damage",
        "text": "See the photo.",
        "html": "<p>See the photo.</p>",
        "attachments": "1",
        "attachment-info": json.dumps({"attachment1": {"filename": "photo.png", "type": "image/png"}}),
        "content-ids": json.dumps({"photo": "attachment1"}),
    }
    body, content_type = multipart_body(fields, {"attachment1": ("photo.png", "image/png", b"\x89PNG")})
    resp = Client().post(
        webhook_path(email_channel, "inbound"),
        data=body,
        content_type=content_type,
        headers={"Authorization": basic_auth(INBOUND_USER, INBOUND_PASSWORD)},
    )
    assert resp.status_code == 200, resp.content
    photo = Attachment.objects.get()
    assert (photo.content_id, photo.inline) == ("photo", True)
    interaction = Interaction.objects.get()
    page = agent_client.get(f"/conversations/{interaction.conversation_id}/").content.decode()
    assert f'href="/attachments/{photo.pk}/"' in page


def test_attachments_are_served_to_the_workspace_only_and_never_as_html(agent_client, email_channel):
    _post_html_mail(Client(), email_channel)
    inline = Attachment.objects.get(filename="pic.png")
    evil = Attachment.objects.get(filename="evil.html")
    resp = agent_client.get(f"/attachments/{inline.pk}/")
    assert resp.status_code == 200
    assert resp["Content-Type"] == "image/png"
    assert resp.content == b"\x89PNG-inline"
    resp = agent_client.get(f"/attachments/{evil.pk}/")
    assert resp["Content-Type"] == "application/octet-stream"
    assert resp["Content-Disposition"].startswith("attachment")
    assert resp["X-Content-Type-Options"] == "nosniff"
    outsider = Client()
    outsider.force_login(factories.member(factories.workspace_create()))
    assert outsider.get(f"/attachments/{inline.pk}/").status_code == 404
    assert Client().get(f"/attachments/{inline.pk}/").status_code == 302  # to the login page


def test_text_and_html_quote_splitting_keeps_everything():
    text = "Thanks!\n\nGrace\n\nOn Tue, 3 Mar 2026 at 10:00, Support <s@x.example>\nwrote:\n> old\n> older\n"
    new, quoted = email_text_split(text)
    assert new == "Thanks!\n\nGrace\n"
    assert quoted.startswith("On Tue")
    assert "> older" in quoted
    assert email_text_split("> only a quote\n") == ("> only a quote\n", "")
    new, quoted = email_text_split("Hi\n-- \nGrace Hopper\nCTO\n")
    assert (new, quoted) == ("Hi\n", "-- \nGrace Hopper\nCTO\n")
    new_html, quoted_html = email_html_split('<p>New</p><blockquote type="cite">Old</blockquote>')
    assert (new_html, quoted_html) == ("<p>New</p>", '<blockquote type="cite">Old</blockquote>')
    assert email_html_split("<blockquote>all quoted</blockquote>") == (
        "<blockquote>all quoted</blockquote>",
        "",
    )
    assert email_html_sanitize('<img src="cid:x">', cid_urls={"x": "/attachments/1/"}) == (
        '<img src="/attachments/1/">'
    )
