"""Provider credentials and webhook secrets in ``Channel.config``, encrypted at rest.

The secret keys of a channel's config (:data:`SECRET_CONFIG_KEYS`: the Twilio auth token, the SendGrid
API key, the Inbound Parse basic-auth pair, the webchat identity secret, the Event Webhook key) are
stored as ``"enc:v1:<Fernet token>"`` (AES-128-CBC + HMAC-SHA256, ``cryptography``'s Fernet) under
``settings.CREDENTIALS_KEYS``: a ``MultiFernet`` whose first key encrypts and every key decrypts, so a
key is rotated by putting a new one first, running ``manage.py credentials_rotate`` and then dropping
the old one. Everything else in the config stays readable JSON.

:class:`EncryptedConfigField` does this on every write and read, so code keeps reading
``channel.config["auth_token"]`` in plain text; the database, backups and the stored JSON never hold
it. The admin shows secrets masked (:func:`config_masked`) and keeps a masked value unchanged on save
(:func:`config_unmask`); no API serializes a channel's config.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models

from engagement.sanitize import json_problem

SECRET_CONFIG_KEYS = frozenset(
    {"auth_token", "api_key", "inbound_basic_auth", "identity_secret", "event_webhook_public_key"}
)
PREFIX = "enc:v1:"
MASK = "••••••••"


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "CREDENTIALS_KEYS must be Fernet keys (urlsafe base64 of 32 bytes), comma-separated"
        ) from exc


def credentials_fernet() -> MultiFernet:
    """The key ring of ``settings.CREDENTIALS_KEYS`` (first encrypts, all decrypt)."""
    return _fernet(tuple(settings.CREDENTIALS_KEYS))


def credential_is_encrypted(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def credential_encrypt(value: Any) -> str:
    """``value`` (any JSON value) as ``enc:v1:<token>`` under the first key."""
    token = credentials_fernet().encrypt(json.dumps(value).encode())
    return PREFIX + token.decode()


def credential_decrypt(stored: Any) -> Any:
    """The value an ``enc:v1:`` string holds; anything else (a row written before encryption) as is.

    Raises ``ImproperlyConfigured`` when no key of ``CREDENTIALS_KEYS`` opens it (a key was dropped
    before ``credentials_rotate`` ran)."""
    if not credential_is_encrypted(stored):
        return stored
    try:
        return json.loads(credentials_fernet().decrypt(stored[len(PREFIX) :].encode()))
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "a channel credential cannot be decrypted with any key in CREDENTIALS_KEYS"
        ) from exc


def config_encrypt(config: dict[str, Any]) -> dict[str, Any]:
    """The config as stored: every secret key's value (unless empty) encrypted."""
    return {
        key: credential_encrypt(value)
        if key in SECRET_CONFIG_KEYS and value not in ("", None, {}) and not credential_is_encrypted(value)
        else value
        for key, value in config.items()
    }


def config_decrypt(config: dict[str, Any]) -> dict[str, Any]:
    return {key: credential_decrypt(value) for key, value in config.items()}


def config_masked(config: dict[str, Any]) -> dict[str, Any]:
    """The config for display: each set secret replaced by :data:`MASK`."""
    return {key: MASK if key in SECRET_CONFIG_KEYS and value else value for key, value in config.items()}


def config_unmask(config: dict[str, Any], *, previous: dict[str, Any]) -> dict[str, Any]:
    """A config edited from its masked form: a secret still equal to :data:`MASK` keeps its previous
    value (a new value replaces it; removing the key removes it)."""
    return {
        key: previous.get(key) if key in SECRET_CONFIG_KEYS and value == MASK else value
        for key, value in config.items()
    }


def config_storable(value: Any) -> None:
    """Model validator (admin forms): a ValidationError naming a value jsonb cannot store."""
    found = json_problem(value)
    if found:
        raise ValidationError(f"{found[0] or 'the config'} {found[1]}", code="not_storable")


class EncryptedConfigField(models.JSONField):
    """A JSON object whose :data:`SECRET_CONFIG_KEYS` are encrypted in the database and plain in Python."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("validators", [config_storable])
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("validators") == [config_storable]:
            del kwargs["validators"]
        return name, path, args, kwargs

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        value = super().from_db_value(value, expression, connection)
        if isinstance(value, dict):
            return config_decrypt(value)
        return credential_decrypt(value)  # one key read alone (values("config__auth_token"))

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            value = config_encrypt(value)
        return super().get_prep_value(value)
