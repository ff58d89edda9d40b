"""Provider credentials and webhook secrets in Channel.config are encrypted at rest with keys from the
environment (rotatable), readable in plain text by the code, encrypted for existing rows by the data
migration, and never shown in the Django admin once set."""

from __future__ import annotations

import importlib
import json

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import Client

from engagement.credentials import MASK, PREFIX
from engagement.models import Channel
from tests import factories
from tests.conftest import post_twilio

pytestmark = pytest.mark.django_db

SECRETS = {
    "auth_token": "twilio-token-0123456789abcdef",
    "api_key": "SG.secret-api-key.0123456789",
    "inbound_basic_auth": {"username": "parse", "password": "parse-pass-0123456789"},
    "identity_secret": "webchat-identity-secret-0123456789",
    "event_webhook_public_key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtest",
}


def _raw_config(channel: Channel) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT config::text FROM engagement_channel WHERE id = %s", [channel.pk])
        text = cursor.fetchone()[0]
    return json.loads(text)


def _channel(workspace, **extra) -> Channel:
    return Channel.objects.create(
        workspace=workspace,
        kind="sms",
        provider="twilio",
        name="SMS",
        address="+14155550199",
        config={**SECRETS, "account_sid": "AC" + "1" * 32, "api_base_url": "http://x", **extra},
    )


def test_secrets_are_encrypted_in_the_database_and_plain_in_code(workspace):
    channel = _channel(workspace)
    raw = _raw_config(channel)
    for key in SECRETS:
        assert raw[key].startswith(PREFIX), key
    text = str(raw)
    for secret in ("twilio-token", "SG.secret", "parse-pass", "webchat-identity", "MFkwEwYH"):
        assert secret not in text
    assert raw["account_sid"] == "AC" + "1" * 32  # not a secret: stays readable
    loaded = Channel.objects.get(pk=channel.pk)
    assert {k: loaded.config[k] for k in SECRETS} == SECRETS
    # Saving again re-encrypts the plain values, never encrypts twice.
    loaded.save()
    again = Channel.objects.get(pk=channel.pk).config
    assert again["auth_token"] == SECRETS["auth_token"]


def test_webhooks_still_verify_with_the_encrypted_token(client, workspace, fake_twilio):
    channel = factories.twilio_channel(workspace, fake_twilio)
    assert _raw_config(channel)["auth_token"].startswith(PREFIX)
    params = {"MessageSid": "SM" + "7" * 32, "From": "+14155550100", "To": channel.address, "Body": "hi"}
    assert post_twilio(client, Channel.objects.get(pk=channel.pk), "inbound", params).status_code == 200


def test_keys_rotate_old_keys_still_decrypt(settings, workspace):
    old = list(settings.CREDENTIALS_KEYS)
    channel = _channel(workspace)
    new = Fernet.generate_key().decode()
    settings.CREDENTIALS_KEYS = [new, *old]  # the new key first: it encrypts, the old still decrypts
    assert Channel.objects.get(pk=channel.pk).config["auth_token"] == SECRETS["auth_token"]
    call_command("credentials_rotate", stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings.CREDENTIALS_KEYS = [new]  # old key dropped after the rotation
    assert Channel.objects.get(pk=channel.pk).config["identity_secret"] == SECRETS["identity_secret"]
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]  # a key ring that never held it
    with pytest.raises(ImproperlyConfigured, match="CREDENTIALS_KEYS"):
        Channel.objects.get(pk=channel.pk)


def test_the_data_migration_encrypts_existing_rows_and_reverses(workspace):
    channel = _channel(workspace)
    with connection.cursor() as cursor:  # a row as it was before this release: plain text
        cursor.execute(
            "UPDATE engagement_channel SET config = %s::jsonb WHERE id = %s",
            [json.dumps({**SECRETS, "account_sid": "AC1"}), channel.pk],
        )
    assert _raw_config(channel)["auth_token"] == SECRETS["auth_token"]
    migration = importlib.import_module("engagement.migrations.0005_channel_credentials_encrypted")
    with connection.schema_editor() as editor:
        migration.encrypt_existing(apps, editor)
    raw = _raw_config(channel)
    assert all(raw[k].startswith(PREFIX) for k in SECRETS)
    assert Channel.objects.get(pk=channel.pk).config["api_key"] == SECRETS["api_key"]
    with connection.schema_editor() as editor:
        migration.decrypt_existing(apps, editor)
    assert _raw_config(channel)["inbound_basic_auth"] == SECRETS["inbound_basic_auth"]


@pytest.fixture
def admin_client(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-0123456789")
    client = Client()
    client.force_login(user)
    return client


def test_the_admin_never_shows_a_secret_and_keeps_it_when_left_masked(admin_client, workspace):
    channel = _channel(workspace)
    page = admin_client.get(f"/admin/engagement/channel/{channel.pk}/change/").content.decode()
    for secret in ("twilio-token", "SG.secret", "parse-pass", "webchat-identity", "MFkwEwYH", PREFIX):
        assert secret not in page
    assert MASK in page
    masked = {**dict.fromkeys(SECRETS, MASK), "account_sid": "AC" + "1" * 32, "api_base_url": "http://y"}
    form = {
        "workspace": workspace.pk,
        "kind": "sms",
        "provider": "twilio",
        "name": "SMS renamed",
        "address": channel.address,
        "config": json.dumps(masked),
        "is_active": "on",
    }
    resp = admin_client.post(f"/admin/engagement/channel/{channel.pk}/change/", form)
    assert resp.status_code == 302, resp.content.decode()[:2000]
    saved = Channel.objects.get(pk=channel.pk)
    assert saved.name == "SMS renamed"
    assert saved.config["api_base_url"] == "http://y"
    assert {k: saved.config[k] for k in SECRETS} == SECRETS  # masked = unchanged
    form["config"] = json.dumps({**masked, "auth_token": "rotated-token-987"})
    assert admin_client.post(f"/admin/engagement/channel/{channel.pk}/change/", form).status_code == 302
    saved = Channel.objects.get(pk=channel.pk)
    assert saved.config["auth_token"] == "rotated-token-987"
    assert saved.config["api_key"] == SECRETS["api_key"]
    assert _raw_config(saved)["auth_token"].startswith(PREFIX)


def test_the_api_never_returns_channel_credentials(workspace, fake_twilio):
    from rest_framework.test import APIClient

    from engagement.services.tenancy import api_key_create

    channel = factories.twilio_channel(workspace, fake_twilio)
    _, secret = api_key_create(workspace=workspace, name="t")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    sent = api.post(
        "/api/v1/messages/", {"channel_id": channel.pk, "to": "+14155550100", "body": "hi"}, format="json"
    )
    assert sent.status_code == 202
    schema = api.get("/api/schema/").content.decode()
    for text in (sent.content.decode(), schema):
        assert fake_twilio.auth_token not in text
        assert "auth_token" not in text


def test_the_admin_refuses_a_config_value_no_column_can_hold(admin_client, workspace):
    channel = _channel(workspace)
    form = {
        "workspace": workspace.pk,
        "kind": "sms",
        "provider": "twilio",
        "name": "SMS",
        "address": channel.address,
        "config": json.dumps({"auth_token": MASK, "from_name": "a\x00b"}),
        "is_active": "on",
    }
    resp = admin_client.post(f"/admin/engagement/channel/{channel.pk}/change/", form)
    assert resp.status_code == 200  # the form again, with the error
    assert "NUL" in resp.content.decode()
    assert Channel.objects.get(pk=channel.pk).config["auth_token"] == SECRETS["auth_token"]
