"""Intake of authenticated provider requests: no authentic request is lost.

The rule (issue 9, "the principle"): a request that passed authentication (signature or Basic auth,
a known channel token, the size limit) is provider data. It is normalized and applied; if normalizing
it or applying any of its events fails for any reason other than the database itself, the request is
stored as received (:class:`~channels_inbound.models.InboundRequest`: body bytes, Content-Type, query
string, headers, hook) with the error, and the provider is answered 2xx: Twilio and SendGrid never retry
a 4xx, and retrying a deterministic failure cannot help. Only a database failure (OperationalError,
InterfaceError) propagates as a 5xx so the provider retries. An admin applies stored requests again
after a fix (console "Unprocessed events", ``manage.py inbound_reprocess``); events applied meanwhile
are skipped by ``ProviderEvent``'s unique provider id.

The happy path writes nothing here: the request is held in memory until it is either applied in its
own transaction or stored with its error, and the answer goes out only after that commit, so a crash
in between leaves the provider without an answer, and it retries.

Each provider ("twilio", "sendgrid", "webchat") has one :class:`Processor`: the webhook adapters share
:func:`webhook_process` (``parse_events`` then ``event_ingest`` per event); the webchat upload endpoint
registers its own.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.handlers.wsgi import WSGIRequest
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from engagement.errors import NotFound
from engagement.inbound import InboundEvent
from engagement.models import Channel, Workspace

from .models import InboundRequest, InboundStage
from .registry import adapter_for
from .services import event_ingest

logger = logging.getLogger(__name__)

# The database itself failed: the request was not stored, so the provider must retry (5xx).
DATABASE_FAILURES: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
# Never stored with the raw request: credentials.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
ERROR_MAX_CHARS = 4000


@dataclass(frozen=True)
class RawRequest:
    """One request as received, enough to run its parser again."""

    provider: str
    hook: str
    content_type: str
    query_string: str
    headers: dict[str, str]
    body: bytes
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for part in (self.provider, self.hook, self.query_string):
            h.update(part.encode())
            h.update(b"\0")
        h.update(self.body)
        return h.hexdigest()


@dataclass
class Outcome:
    """What processing a request did. ``stage`` is "" when everything was applied; else where it
    failed, with ``error``; ``stored_id`` is the InboundRequest kept for it."""

    events: list[InboundEvent] = field(default_factory=list)
    value: Any = None
    stage: str = ""
    error: str = ""
    stored_id: int | None = None

    @property
    def applied(self) -> bool:
        return not self.stage


@dataclass(frozen=True)
class Processor:
    """Turns a request of one provider into applied events. ``run(channel, hook, request, context)``
    must return an Outcome rather than raise, except for ``refusals``: answers the endpoint gives the
    sender on purpose (webchat: a file type it refuses), which are not stored."""

    run: Callable[[Channel, str, HttpRequest, Mapping[str, Any]], Outcome]
    refusals: tuple[type[Exception], ...] = ()


_PROCESSORS: dict[str, Processor] = {}


def processor_register(provider: str, processor: Processor) -> None:
    _PROCESSORS[provider] = processor


def _processor_for(provider: str) -> Processor:
    return _PROCESSORS.get(provider) or Processor(run=webhook_process)


def error_describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]


def webhook_process(channel: Channel, hook: str, request: HttpRequest, context: Mapping[str, Any]) -> Outcome:
    """A webhook adapter's request: ``parse_events``, then each event stored and applied on its own
    (``event_ingest``); one event failing does not stop the others. Database failures propagate."""
    adapter = adapter_for(channel.provider)
    if adapter is None:
        return Outcome(stage=InboundStage.PARSE, error=f"no adapter for provider {channel.provider!r}")
    try:
        events = adapter.parse_events(request, channel, hook)
    except DATABASE_FAILURES:
        raise
    except Exception as exc:
        return Outcome(stage=InboundStage.PARSE, error=error_describe(exc))
    errors = []
    for event in events:
        try:
            event_ingest(channel=channel, event=event)
        except DATABASE_FAILURES:
            raise
        except Exception as exc:
            logger.warning(
                "applying %s event %s on channel %s failed",
                channel.provider,
                event.provider_event_id,
                channel.pk,
                exc_info=True,
            )
            errors.append(f"{event.provider_event_id}: {error_describe(exc)}")
    return Outcome(
        events=events, stage=InboundStage.APPLY if errors else "", error="\n".join(errors)[:ERROR_MAX_CHARS]
    )


def raw_request_capture(
    request: HttpRequest, *, provider: str, hook: str, context: Mapping[str, Any] | None = None
) -> RawRequest:
    """The request as received. Reads (and caches) the body, so call it before ``request.POST``
    streams a multipart body away."""
    return RawRequest(
        provider=provider,
        hook=hook,
        content_type=str(request.META.get("CONTENT_TYPE") or ""),
        query_string=str(request.META.get("QUERY_STRING") or ""),
        headers={k: v for k, v in request.headers.items() if k.lower() not in SECRET_HEADERS},
        body=request.body,
        context=dict(context or {}),
    )


def raw_request_rebuild(*, stored: InboundRequest) -> HttpRequest:
    """An HttpRequest equal, for a parser, to the one received: same body, Content-Type, query and
    headers (what Django's test RequestFactory builds, as a WSGI environ)."""
    body = bytes(stored.body)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": f"/reprocess/{stored.provider}/{stored.hook}/",
        "QUERY_STRING": stored.query_string,
        "CONTENT_TYPE": stored.content_type,
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "inbound-reprocess.invalid",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
    }
    for name, value in stored.headers.items():
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[f"HTTP_{key}"] = value
    return WSGIRequest(environ)


_STORE = """
INSERT INTO channels_inbound_inboundrequest
    (workspace_id, channel_id, provider, hook, content_type, query_string, headers, body, context,
     digest, stage, last_error, attempts, received_at, last_attempt_at, processed_at)
VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s::jsonb, %s, %s, %s, 1, %s, %s, NULL)
ON CONFLICT (channel_id, digest) DO UPDATE
    SET stage = EXCLUDED.stage, last_error = EXCLUDED.last_error, processed_at = NULL,
        body = EXCLUDED.body, headers = EXCLUDED.headers, context = EXCLUDED.context,
        attempts = channels_inbound_inboundrequest.attempts + 1, last_attempt_at = EXCLUDED.last_attempt_at
RETURNING id
"""


def inbound_request_store(*, channel: Channel, raw: RawRequest, stage: str, error: str) -> int:
    """Keep ``raw`` with the error that stopped it; returns its id. A second delivery of the same bytes
    updates the first row (its error, attempts) instead of adding one. One statement."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _STORE,
            [
                channel.workspace_id,
                channel.pk,
                raw.provider,
                raw.hook,
                raw.content_type[:255],
                raw.query_string,
                json.dumps(raw.headers),
                raw.body,
                json.dumps(raw.context, default=str),
                raw.digest,
                stage,
                error[:ERROR_MAX_CHARS],
                now,
                now,
            ],
        )
        row = cursor.fetchone()
    logger.warning(
        "kept %s/%s request of channel %s unprocessed (%s): %s",
        raw.provider,
        raw.hook,
        channel.pk,
        stage,
        error,
    )
    return int(row[0])


def inbound_request_receive(
    *,
    channel: Channel,
    request: HttpRequest,
    provider: str,
    hook: str,
    context: Mapping[str, Any] | None = None,
) -> Outcome:
    """Process an authenticated request; on failure keep it raw (see the module docstring).

    Precondition: the caller has authenticated the request and checked its size. Raises only the
    provider's refusals (:attr:`Processor.refusals`) and database failures. The returned Outcome's
    ``stored_id`` names the kept request when ``stage`` is set.
    """
    raw = raw_request_capture(request, provider=provider, hook=hook, context=context or {})
    processor = _processor_for(provider)
    outcome = (
        processor.run(channel, hook, request, raw.context)
        if channel.is_active
        else Outcome(stage=InboundStage.CHANNEL, error=_inactive(channel))
    )
    if outcome.stage:
        outcome.stored_id = inbound_request_store(
            channel=channel, raw=raw, stage=outcome.stage, error=outcome.error
        )
    return outcome


def _inactive(channel: Channel) -> str:
    return f"channel {channel.name!r} is not active: activate it, then process this again"


def _reprocess_run(processor: Processor, stored: InboundRequest) -> Outcome:
    request = raw_request_rebuild(stored=stored)
    try:
        return processor.run(stored.channel, stored.hook, request, stored.context)
    except processor.refusals as exc:
        return Outcome(stage=InboundStage.PARSE, error=error_describe(exc))


def inbound_request_reprocess(*, request_id: int, workspace: Workspace | None = None) -> InboundRequest:
    """Run a kept request through its parser and apply it again; returns the row as it now stands.

    Applied: ``processed_at`` is set, the error cleared and the raw copy dropped. Failed again: the
    new error and stage are kept and ``attempts`` grows. A request processed already is left as it
    is. Events another request applied meanwhile are skipped by their provider id, so nothing is
    applied twice. ``workspace`` scopes the lookup (console); raises NotFound. Owns its transaction
    and locks the row, so two admins cannot run it at once.
    """
    with transaction.atomic():
        rows = InboundRequest.objects.select_for_update().select_related("channel__workspace")
        if workspace is not None:
            rows = rows.filter(workspace=workspace)
        stored = rows.filter(pk=request_id).first()
        if stored is None:
            raise NotFound(f"no unprocessed event {request_id}")
        if stored.processed_at is not None:
            return stored
        processor = _processor_for(stored.provider)
        if not stored.channel.is_active:
            outcome = Outcome(stage=InboundStage.CHANNEL, error=_inactive(stored.channel))
        else:
            outcome = _reprocess_run(processor, stored)
        now = timezone.now()
        if outcome.stage:
            InboundRequest.objects.filter(pk=stored.pk).update(
                stage=outcome.stage, last_error=outcome.error, attempts=F("attempts") + 1, last_attempt_at=now
            )
        else:
            # Applied: the events' own rows are the record now (and customer erasure scrubs those),
            # so the raw copy, which holds bodies and numbers, is not kept.
            InboundRequest.objects.filter(pk=stored.pk).update(
                last_error="",
                attempts=F("attempts") + 1,
                last_attempt_at=now,
                processed_at=now,
                body=b"",
                headers={},
                context={},
            )
        stored.refresh_from_db()
    return stored


def inbound_request_discard(*, request_id: int, workspace: Workspace) -> None:
    """Delete a kept request an admin decided will never apply (spam, a test post), raw copy and all.
    Raises NotFound (also for one applied already: those are the events' record, not this page's)."""
    deleted, _ = InboundRequest.objects.filter(
        pk=request_id, workspace=workspace, processed_at__isnull=True
    ).delete()
    if not deleted:
        raise NotFound(f"no unprocessed event {request_id}")
    logger.info("unprocessed inbound request %s of workspace %s discarded", request_id, workspace.pk)


def inbound_request_reprocess_all(*, workspace: Workspace | None = None) -> tuple[int, int]:
    """Reprocess every unprocessed request (of ``workspace``, or all), oldest first, each in its own
    transaction. Returns ``(applied, still_failing)``."""
    applied = failing = 0
    for request_id in inbound_request_list_unprocessed(workspace=workspace).values_list("pk", flat=True):
        row = inbound_request_reprocess(request_id=request_id, workspace=workspace)
        if row.processed_at is not None:
            applied += 1
        else:
            failing += 1
    return applied, failing


def inbound_request_list_unprocessed(*, workspace: Workspace | None = None) -> QuerySet[InboundRequest]:
    """Kept requests not yet applied, oldest first, without their bodies (selector)."""
    rows = InboundRequest.objects.filter(processed_at__isnull=True).defer("body", "headers", "context")
    if workspace is not None:
        rows = rows.filter(workspace=workspace)
    return rows.select_related("channel").order_by("received_at", "pk")
