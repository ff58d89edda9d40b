"""API keys: admins create (secret shown once), list and revoke them; nobody else may."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from engagement.models import ApiKey, Role
from engagement.services.tenancy import api_key_create
from tests import factories


def _secret(html: str) -> str | None:
    found = re.search(r"<code class=\"secret-value\"[^>]*>(eng_[^<]+)</code>", html)
    return found.group(1) if found else None


@pytest.mark.django_db
def test_admin_creates_a_key_that_authenticates_until_revoked(admin_client: Client, workspace, sms_channel):
    resp = admin_client.post(
        "/settings/api-keys/", {"name": "CRM sync", "scopes": ["customers:read", "messages:write"]}
    )
    assert resp.status_code == 200
    assert resp["Cache-Control"] == "no-store"
    html = resp.content.decode()
    secret = _secret(html)
    assert secret is not None
    key = ApiKey.objects.get(workspace=workspace)
    assert key.name == "CRM sync"
    assert secret.startswith(f"eng_{key.prefix}_")
    assert key.key_hash != secret
    assert key.scopes == ["customers:read", "messages:write"]

    listing = admin_client.get("/settings/api-keys/").content.decode()
    assert "CRM sync" in listing
    assert key.prefix in listing
    assert secret not in listing  # shown once only
    assert "never" in listing

    api = Client()
    headers = {"Authorization": f"Bearer {secret}"}
    ok = api.get("/api/v1/customers/", headers=headers)
    assert ok.status_code == 200
    assert ok.json()["results"] == []
    key.refresh_from_db()
    assert key.last_used_at is not None

    resp = admin_client.post(f"/settings/api-keys/{key.pk}/revoke/")
    assert resp.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api.get("/api/v1/customers/", headers=headers).status_code in (401, 403)
    assert "Revoked" in admin_client.get("/settings/api-keys/").content.decode()


@pytest.mark.django_db
def test_a_key_needs_at_least_one_scope_and_gets_only_those(admin_client: Client, workspace) -> None:
    resp = admin_client.post("/settings/api-keys/", {"name": "no scopes"})
    assert "Pick at least one scope." in resp.content.decode()
    assert not ApiKey.objects.exists()
    assert 'value="conversations:write"' in resp.content.decode()
    resp = admin_client.post("/settings/api-keys/", {"name": "reader", "scopes": ["channels:read"]})
    secret = _secret(resp.content.decode())
    headers = {"Authorization": f"Bearer {secret}"}
    assert Client().get("/api/v1/channels/", headers=headers).status_code == 200
    denied = Client().get("/api/v1/customers/", headers=headers)
    assert denied.status_code == 403
    assert denied.json()["required_scope"] == "customers:read"
    bogus = admin_client.post("/settings/api-keys/", {"name": "x", "scopes": ["everything:write"]})
    assert _secret(bogus.content.decode()) is None


@pytest.mark.django_db
def test_key_name_is_required(admin_client: Client) -> None:
    resp = admin_client.post("/settings/api-keys/", {"name": ""})
    assert resp.status_code == 200
    assert _secret(resp.content.decode()) is None
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.AGENT, Role.MARKETER])
def test_non_admins_get_403(client: Client, workspace, role: str) -> None:
    key, _ = api_key_create(workspace=workspace, name="existing")
    client.force_login(factories.member(workspace, role))
    assert client.get("/settings/api-keys/").status_code == 403
    assert client.post("/settings/api-keys/", {"name": "mine"}).status_code == 403
    assert client.post(f"/settings/api-keys/{key.pk}/revoke/").status_code == 403
    assert ApiKey.objects.count() == 1
    assert ApiKey.objects.get().revoked_at is None


@pytest.mark.django_db
def test_admin_sees_admin_links(admin_client: Client) -> None:
    html = admin_client.get("/").content.decode()
    assert 'href="/settings/api-keys/"' in html
    assert 'href="/admin/"' in html
