"""``Idempotency-Key`` on every ``POST``, with Stripe's semantics.

- The same key with the same body (and the same method and path) answers the first response again,
  status and body, with ``Idempotent-Replayed: true``.
- The same key with a different body (or another endpoint) is a 422 problem
  ``idempotency_key_reused``; while the first request is still running a duplicate waits for it up to
  ``settings.API_IDEMPOTENCY_WAIT_SECONDS`` and then gets a 409 problem ``idempotency_key_in_flight``.
- Keys are scoped to the workspace (a unique (workspace, key) row) and expire after
  ``settings.API_IDEMPOTENCY_TTL_SECONDS`` (24 hours); ``idempotency_records_purge`` deletes old rows.
- Only responses below 500 are kept (Stripe keeps what ran; a 5xx or a 429 may be retried with the key).

Source: https://docs.stripe.com/api/idempotent_requests and draft-ietf-httpapi-idempotency-key-header.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from engagement.errors import Conflict, Rejected
from engagement.models import IdempotencyRecord, Workspace

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(Rejected):
    code = "idempotency_key_reused"
    title = "Idempotency key reused with another request"


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency_key_in_flight"
    title = "A request with this idempotency key is in progress"


class IdempotentReplay(APIException):
    """Carries a stored response out of ``initial()``; ``IdempotencyMixin.handle_exception`` answers it."""

    def __init__(self, record: IdempotencyRecord) -> None:
        super().__init__("replay")
        self.record = record


def _ttl() -> timedelta:
    return timedelta(seconds=getattr(settings, "API_IDEMPOTENCY_TTL_SECONDS", 24 * 3600))


def request_fingerprint(*, request: Request) -> str:
    """SHA-256 over method, path and the raw body (a form or file upload hashes its bytes too)."""
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}\n".encode())
    try:
        digest.update(request._request.body)
    except Exception:
        digest.update(json.dumps(request.data, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def idempotency_key_read(*, request: Request) -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationError({HEADER: [f"must be 1 to {MAX_KEY_LENGTH} printable characters"]})
    return key


def idempotency_begin(*, workspace: Workspace, key: str, request: Request) -> IdempotencyRecord:
    """Claim ``key`` for this request, or raise: ``IdempotentReplay`` (a finished first request with the
    same fingerprint), ``Rejected`` 422 (another fingerprint), ``Conflict`` 409 (still running)."""
    fingerprint = request_fingerprint(request=request)
    deadline = time.monotonic() + getattr(settings, "API_IDEMPOTENCY_WAIT_SECONDS", 5)
    while True:
        now = timezone.now()
        IdempotencyRecord.objects.filter(workspace=workspace, key=key, created_at__lt=now - _ttl()).delete()
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    workspace=workspace,
                    key=key,
                    method=str(request.method),
                    path=request.path[:500],
                    request_hash=fingerprint,
                    created_at=now,
                )
        except IntegrityError:
            record = IdempotencyRecord.objects.filter(workspace=workspace, key=key).first()
        if record is None:  # expired and deleted meanwhile
            continue
        if record.request_hash != fingerprint:
            raise IdempotencyKeyReused(
                f"this Idempotency-Key was first used with a different request ({record.method} "
                f"{record.path}, another body); use a new key for a new request",
                field=HEADER,
            )
        if record.response_status is not None:
            raise IdempotentReplay(record)
        if time.monotonic() >= deadline:
            raise IdempotencyKeyInFlight(
                "a request with this Idempotency-Key is still being processed; retry later", field=HEADER
            )
        time.sleep(0.05)


def idempotency_finish(*, record: IdempotencyRecord, response: Response) -> None:
    """Keep the response (below 500 and not 429), or free the key so a retry runs again."""
    if response.status_code >= 500 or response.status_code == 429:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        response_status=response.status_code,
        response_body=getattr(response, "data", None),
        # Set only when the view chose one (problem+json); otherwise the renderer decides again.
        response_content_type=str(getattr(response, "content_type", None) or ""),
    )


def idempotency_replay(*, record: IdempotencyRecord) -> Response:
    content_type = record.response_content_type.split(";")[0] or None
    response = Response(record.response_body, status=record.response_status, content_type=content_type)
    response["Idempotent-Replayed"] = "true"
    return response


def idempotency_records_purge() -> int:
    """Delete records older than the TTL; returns how many."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - _ttl()).delete()
    return deleted


class IdempotencyMixin:
    """For API views: every ``POST`` honours ``Idempotency-Key``. Put it first in the bases."""

    _idempotency_record: IdempotencyRecord | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        self._idempotency_record = None
        if request.method != "POST":
            return
        key = idempotency_key_read(request=request)
        workspace = getattr(request, "workspace", None)
        if key is None or workspace is None:
            return
        self._idempotency_record = idempotency_begin(workspace=workspace, key=key, request=request)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, IdempotentReplay):
            return idempotency_replay(record=exc.record)
        return super().handle_exception(exc)  # type: ignore[misc]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        record, self._idempotency_record = self._idempotency_record, None
        if record is not None:
            idempotency_finish(record=record, response=response)
        return response
