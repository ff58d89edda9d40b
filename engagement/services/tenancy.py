"""Tenancy: which workspace a request acts for, and API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.utils import timezone

from engagement.errors import ValidationFailed
from engagement.models import ApiKey, Membership, Workspace
from engagement.scopes import ALL_SCOPES, scopes_normalize

KEY_PREFIX = "eng_"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(
    *,
    workspace: Workspace,
    name: str,
    created_by: AbstractBaseUser | None = None,
    scopes: list[str] | tuple[str, ...] | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret. The secret is not stored (only its SHA-256) and
    cannot be shown again. ``scopes``: ``"<area>:read|write"`` (``engagement.api.scopes``); None gives
    every scope (the console asks the admin to pick). Raises ``ValidationFailed`` on an unknown scope."""
    try:
        granted = scopes_normalize(list(ALL_SCOPES if scopes is None else scopes))
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="scopes") from exc
    public = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}{public}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        key = ApiKey.objects.create(
            workspace=workspace,
            name=name,
            prefix=public,
            key_hash=_hash(secret),
            created_by=created_by,  # type: ignore[misc]
            scopes=granted,
        )
    return key, secret


def api_key_authenticate(*, secret: str) -> ApiKey | None:
    """The active key matching ``secret``, compared in constant time, or None."""
    if not secret.startswith(KEY_PREFIX) or secret.count("_") < 2:
        return None
    public = secret[len(KEY_PREFIX) :].split("_", 1)[0]
    key = ApiKey.objects.select_related("workspace").filter(prefix=public, revoked_at__isnull=True).first()
    if key is None or not hmac.compare_digest(key.key_hash, _hash(secret)):
        return None
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def api_key_revoke(*, key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())


def memberships_for(*, user: User | AbstractBaseUser | AnonymousUser) -> list[Membership]:
    if not user.is_authenticated:
        return []
    return list(
        Membership.objects.select_related("workspace").filter(user_id=user.pk).order_by("workspace__name")
    )


def membership_for_user(
    *, user: User | AbstractBaseUser | AnonymousUser, workspace_id: int | None = None
) -> Membership | None:
    """The user's membership in ``workspace_id``, or in their first workspace when none is asked for."""
    if not user.is_authenticated:
        return None
    qs = Membership.objects.select_related("workspace").filter(user_id=user.pk)
    if workspace_id is not None:
        return qs.filter(workspace_id=workspace_id).first()
    return qs.order_by("workspace__name", "workspace_id").first()


def membership_timezone_set(*, membership: Membership, timezone: str) -> Membership:
    """The zone the console shows this member times in; "" falls back to the workspace's.
    ValidationFailed for a name that is not an IANA zone."""
    import zoneinfo

    from engagement.errors import ValidationFailed

    timezone = timezone.strip()
    if timezone:
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationFailed(f"unknown time zone {timezone!r}", field="timezone") from exc
    membership.timezone = timezone
    membership.save(update_fields=["timezone"])
    return membership
