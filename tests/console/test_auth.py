"""Every console page needs a signed-in workspace member; login and logout use Django's auth views."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from tests import factories


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/?fragment=1",
        "/conversations/1/",
        "/conversations/1/?fragment=1",
        "/simulator/",
        "/settings/api-keys/",
    ],
)
def test_pages_redirect_anonymous_visitors_to_login(client: Client, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 302
    assert resp["Location"].startswith(reverse("console:login") + "?next=")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/conversations/1/", "/conversations/1/status/", "/settings/api-keys/1/revoke/"]
)
def test_posts_of_anonymous_visitors_change_nothing(client: Client, path: str) -> None:
    resp = client.post(path, {"body": "hi", "status": "resolved"})
    assert resp.status_code == 302
    assert resp["Location"].startswith(reverse("console:login"))


@pytest.mark.django_db
def test_login_then_logout(client: Client, workspace) -> None:
    user = factories.member(workspace)
    page = client.get(reverse("console:login"))
    assert page.status_code == 200
    assert b"csrfmiddlewaretoken" in page.content

    bad = client.post(reverse("console:login"), {"username": user.username, "password": "wrong"})
    assert bad.status_code == 200
    assert SESSION_KEY not in client.session

    resp = client.post(reverse("console:login"), {"username": user.username, "password": "pw-for-tests-123"})
    assert resp.status_code == 302
    assert resp["Location"] == reverse("console:home")  # by role: an agent lands in the inbox
    assert client.get(resp["Location"])["Location"] == reverse("console:inbox")
    assert client.get("/").status_code == 200

    assert client.get(reverse("console:logout")).status_code == 405  # logout is POST only
    resp = client.post(reverse("console:logout"))
    assert resp.status_code == 302
    assert resp["Location"] == reverse("console:login")
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_login_follows_next(client: Client, workspace) -> None:
    user = factories.member(workspace)
    resp = client.post(
        reverse("console:login") + "?next=/simulator/",
        {"username": user.username, "password": "pw-for-tests-123", "next": "/simulator/"},
    )
    assert resp["Location"] == "/simulator/"


@pytest.mark.django_db
def test_user_without_a_workspace_gets_403(client: Client) -> None:
    client.force_login(get_user_model().objects.create_user(username="loner", password="pw-for-tests-123"))
    resp = client.get("/")
    assert resp.status_code == 403
    assert b"not a member of any workspace" in resp.content


@pytest.mark.django_db
def test_page_links_the_static_assets_and_the_nav(agent_client: Client) -> None:
    html = agent_client.get("/").content.decode()
    for href in ("console/console.css", "console/console.js", "/api/docs/", "/simulator/"):
        assert href in html
    assert "/settings/api-keys/" not in html  # agents see no API-keys link
    assert "/admin/" not in html
    assert finders.find("console/console.js")
    assert finders.find("console/console.css")


@pytest.mark.django_db
def test_first_visit_to_the_console_address_lands_each_role_on_its_home(client: Client, workspace) -> None:
    """A first visit to ``/`` goes to the sign-in with ``next=/``; after it a marketer lands on campaigns
    (their home), not the inbox; any other ``next`` is honoured."""
    from engagement.models import Role

    marketer = factories.member(workspace, Role.MARKETER)
    login = client.get("/")
    assert login.status_code == 302
    assert "next=/" in login["Location"]
    resp = client.post(
        f"{reverse('console:login')}?next=/",
        {"username": marketer.username, "password": "pw-for-tests-123", "next": "/"},
    )
    assert resp["Location"] == reverse("console:home")
    assert client.get(resp["Location"])["Location"] == reverse("console:campaigns")
    client.post(reverse("console:logout"))
    resp = client.post(
        reverse("console:login"),
        {"username": marketer.username, "password": "pw-for-tests-123", "next": "/segments/"},
    )
    assert resp["Location"] == "/segments/"
