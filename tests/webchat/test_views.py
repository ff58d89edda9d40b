"""Webchat HTTP endpoints: the script, its config, uploads and the signed file links."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from channels_inbound.webchat.services import Visitor, visitor_token_issue
from engagement.models import Attachment, Channel, Interaction
from tests import factories

from .conftest import ORIGIN, webchat_channel_create

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


def visitor_token(channel: Channel, visitor_id: str = "v-testvisitor000001") -> str:
    return visitor_token_issue(visitor=Visitor(channel_id=channel.pk, visitor_id=visitor_id))


def upload(client: Client, channel: Channel, file: SimpleUploadedFile, **fields: Any) -> Any:
    data = {"visitor": visitor_token(channel), "client_id": "client-upload1", "file": file, **fields}
    return client.post(f"/webchat/{channel.webhook_token}/upload/", data, headers={"Origin": ORIGIN})


def test_the_widget_script_loads_from_the_platform(client: Client) -> None:
    response = client.get("/webchat/widget.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    body = response.getvalue()
    assert b"attachShadow" in body
    assert b"innerHTML" not in body  # everything is rendered as text


@pytest.mark.django_db
def test_config_only_for_allowed_origins(client: Client, webchat_channel: Channel) -> None:
    ok = client.get(f"/webchat/{webchat_channel.webhook_token}/config/", headers={"Origin": ORIGIN})
    assert ok.status_code == 200
    assert ok["Access-Control-Allow-Origin"] == ORIGIN
    assert ok.json()["title"] == "Website chat"
    assert ok.json()["online"] is False  # no agent has the console open
    assert "identity_secret" not in ok.content.decode()

    refused = client.get(
        f"/webchat/{webchat_channel.webhook_token}/config/", headers={"Origin": "https://evil.example"}
    )
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused
    assert client.get("/webchat/not-a-token/config/", headers={"Origin": ORIGIN}).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_an_uploaded_image_is_stored_and_served_to_the_visitor(
    client: Client, webchat_channel: Channel
) -> None:
    response = upload(client, webchat_channel, SimpleUploadedFile("photo.png", PNG, content_type="image/png"))
    assert response.status_code == 200, response.content
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    message = response.json()["message"]
    interaction = Interaction.objects.get(pk=message["id"])
    attachment = Attachment.objects.get(interaction=interaction)
    assert attachment.filename == "photo.png"
    assert attachment.size == len(PNG)
    assert attachment.workspace_id == webchat_channel.workspace_id
    [shown] = message["attachments"]
    served = client.get(shown["url"])
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert served.getvalue() == PNG

    # The agent sees it on the conversation like an email attachment, served to the workspace only.
    agent = factories.member(webchat_channel.workspace)
    console = Client()
    console.force_login(agent)
    page = console.get(f"/conversations/{interaction.conversation_id}/").content.decode()
    assert f'href="/attachments/{attachment.pk}/"' in page
    assert "photo.png" in page
    assert console.get(f"/attachments/{attachment.pk}/").status_code == 200

    again = upload(client, webchat_channel, SimpleUploadedFile("photo.png", PNG, content_type="image/png"))
    assert again.json()["message"]["id"] == interaction.pk  # a retried upload is not stored twice
    assert Attachment.objects.count() == 1
    assert client.get(shown["url"].replace("/files/", "/files/x")).status_code == 404


@pytest.mark.django_db
def test_uploads_are_limited_in_size_and_type(
    client: Client, webchat_channel: Channel, settings: Any
) -> None:
    settings.WEBCHAT_MAX_UPLOAD_BYTES = 10
    big = upload(client, webchat_channel, SimpleUploadedFile("a.txt", b"x" * 11, content_type="text/plain"))
    assert big.status_code == 413
    settings.WEBCHAT_MAX_UPLOAD_BYTES = 10_000
    svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    refused = upload(client, webchat_channel, SimpleUploadedFile("x.svg", svg, content_type="image/svg+xml"))
    assert refused.status_code == 415
    forged = upload(
        client,
        webchat_channel,
        SimpleUploadedFile("a.txt", b"hello", content_type="text/plain"),
        visitor="not-a-token",
    )
    assert forged.status_code == 403
    wrong_origin = client.post(
        f"/webchat/{webchat_channel.webhook_token}/upload/",
        {"visitor": visitor_token(webchat_channel), "client_id": "client-upload1"},
        headers={"Origin": "https://evil.example"},
    )
    assert wrong_origin.status_code == 403
    assert not Interaction.objects.exists()


@pytest.mark.django_db
def test_the_demo_page_embeds_the_seeded_widget(client: Client) -> None:
    from engagement.services.demo import demo_workspace_seed

    demo_workspace_seed()
    channel = Channel.objects.get(workspace__slug="demo", kind="webchat")
    page = client.get("/webchat/demo/")
    assert page.status_code == 200
    assert f'data-token="{channel.webhook_token}"' in page.content.decode()
    assert "http://127.0.0.1:8000" in channel.config["allowed_origins"]


def _emoji(text: str) -> list[str]:
    """Pictographs (emoji blocks): they show as empty boxes where the visitor has no emoji font."""
    return [c for c in text if 0x1F300 <= ord(c) <= 0x1FAFF or 0x2600 <= ord(c) <= 0x26FF]


@pytest.mark.django_db
def test_the_demo_copy_does_not_contradict_itself_and_uses_no_emoji(client: Client) -> None:
    """The page says how this page is allowed (allow_platform_origin) beside the rule for other sites; the
    greeting makes no promise of its own beside the "when to expect a reply" notice; icons are SVG."""
    from django.contrib.staticfiles import finders

    from channels_inbound.webchat.services import webchat_public_config
    from engagement.services.demo import demo_workspace_seed

    demo_workspace_seed()
    channel = Channel.objects.get(workspace__slug="demo", kind="webchat")
    page = client.get("/webchat/demo/").content.decode()
    assert "allowed_origins" in page
    assert "allow_platform_origin" in page
    config = webchat_public_config(channel=channel)
    assert "minute" not in config["greeting"]
    assert "hour" not in config["greeting"]
    assert _emoji(page) == []
    widget = finders.find("webchat/widget.js")
    assert widget is not None
    with open(widget, encoding="utf-8") as f:
        assert _emoji(f.read()) == []


@pytest.mark.django_db
def test_an_older_demo_greeting_is_replaced_on_the_next_seed() -> None:
    from engagement.services.demo import demo_workspace_seed

    demo_workspace_seed()
    channel = Channel.objects.get(workspace__slug="demo", kind="webchat")
    channel.config = {**channel.config, "greeting": "Hi! Ask us anything - we usually answer within minutes."}
    channel.save(update_fields=["config"])
    demo_workspace_seed()
    channel.refresh_from_db()
    assert channel.config["greeting"] == "Hi! Ask us anything."


@pytest.mark.django_db
def test_a_same_origin_page_without_an_origin_header_gets_the_config(client, workspace):
    """Browsers send no Origin on a same-origin GET (the demo page on our own origin): the browser-set
    Sec-Fetch-Site says the page is ours, and our origin must still be among the allowed ones."""
    channel = webchat_channel_create(workspace, origins=["http://testserver"])
    path = f"/webchat/{channel.webhook_token}/config/"
    assert client.get(path, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert client.get(path).status_code == 403
    assert client.get(path, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    other = webchat_channel_create(factories.workspace_create(), origins=["https://shop.example.com"])
    other_path = f"/webchat/{other.webhook_token}/config/"
    assert client.get(other_path, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 403


@pytest.mark.django_db
def test_the_demo_config_answers_a_same_origin_request_without_an_origin_header(client: Client) -> None:
    """Browsers send no Origin on a same-origin GET (the demo page's config request); the platform's own
    origin is allowed for the demo channel whatever host and port it is served on."""
    from engagement.services.demo import demo_workspace_seed

    demo_workspace_seed()
    demo = Channel.objects.get(workspace__slug="demo", kind="webchat")
    url = f"/webchat/{demo.webhook_token}/config/"
    same_origin = client.get(url, headers={"Sec-Fetch-Site": "same-origin"}, HTTP_HOST="demo.local:8123")
    assert same_origin.status_code == 200
    assert same_origin["Access-Control-Allow-Origin"] == "http://demo.local:8123"
    assert same_origin.json()["title"] == "Chat with Demo Co"
    # With the Origin a browser sends on a POST or a websocket from the demo page: allowed as well.
    assert (
        client.get(url, headers={"Origin": "http://demo.local:8123"}, HTTP_HOST="demo.local:8123").status_code
        == 200
    )
    # No Origin and not marked same-origin (a cross-site page cannot drop both): refused, as before.
    assert client.get(url).status_code == 403
    assert client.get(url, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    # Another site naming the platform's host in nothing but Host: refused.
    cross = client.get(url, headers={"Origin": "https://evil.example"}, HTTP_HOST="demo.local:8123")
    assert cross.status_code == 403


@pytest.mark.django_db
def test_a_customer_channel_is_not_opened_to_the_platform_origin(
    client: Client, webchat_channel: Channel
) -> None:
    url = f"/webchat/{webchat_channel.webhook_token}/config/"
    assert client.get(url, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 403
    assert client.get(url, headers={"Origin": "http://testserver"}).status_code == 403
