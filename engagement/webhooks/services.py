"""Outbound webhook endpoints, the listener that records deliveries, replays, and the read side.

The listener only INSERTs: one :class:`WebhookDelivery` per (enabled endpoint that wants the event,
event id), unique on that pair, so an event handed over twice (a relay retry, a redelivered task) is
recorded once. Sending is the delivery worker's (``delivery.py``), from PostgreSQL, so nothing recorded
is lost while Redis or a worker is down.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from engagement import events
from engagement.errors import Conflict, NotFound, ValidationFailed
from engagement.models import (
    DeliveryState,
    DisabledReason,
    WebhookDelivery,
    WebhookEndpoint,
    Workspace,
)

from .catalog import EVENT_TYPES, webhook_event_build
from .ssrf import webhook_target_check_setting
from .tasks import webhooks_deliver_due_task

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
MAX_ENDPOINTS_PER_WORKSPACE = 20


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"


class WebhookEndpointDisabled(Conflict):
    code = "webhook_endpoint_disabled"


def webhook_secret_generate() -> str:
    """``whsec_`` + base64 of 32 random bytes (Standard Webhooks: a secret of 24 to 64 bytes, base64)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_event_types_check(event_types: Iterable[str]) -> list[str]:
    """The requested public event types, deduplicated and sorted; [] means every type.

    Raises :class:`ValidationFailed` (field ``event_types``) naming the unknown ones."""
    wanted = sorted(set(event_types))
    unknown = [t for t in wanted if t not in EVENT_TYPES]
    if unknown:
        raise ValidationFailed(
            f"unknown event types {unknown}; known: {sorted(EVENT_TYPES)}", field="event_types"
        )
    return wanted


def _url_check(url: str) -> str:
    url = url.strip()
    if len(url) > 2000:
        raise ValidationFailed("the URL is longer than 2000 characters", field="url")
    webhook_target_check_setting(url=url)  # raises WebhookTargetRefused (field "url")
    return url


# ---------------------------------------------------------------- endpoints


def webhook_endpoint_create(
    *,
    workspace: Workspace,
    url: str,
    event_types: Iterable[str] = (),
    description: str = "",
    created_by: AbstractBaseUser | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; return it with its secret (to show once).

    The URL is checked by the SSRF guard (``ssrf.py``) now and again before every delivery.
    Raises :class:`ValidationFailed` (bad URL, refused target, unknown event type, too many endpoints).
    """
    clean_url = _url_check(url)
    types = webhook_event_types_check(event_types)
    with transaction.atomic():
        if WebhookEndpoint.objects.filter(workspace=workspace).count() >= MAX_ENDPOINTS_PER_WORKSPACE:
            raise ValidationFailed(f"a workspace may have at most {MAX_ENDPOINTS_PER_WORKSPACE} endpoints")
        secret = webhook_secret_generate()
        endpoint = WebhookEndpoint.objects.create(
            workspace=workspace,
            url=clean_url,
            description=description.strip()[:200],
            secret=secret,
            event_types=types,
            created_by=created_by,  # type: ignore[misc]
        )
    return endpoint, secret


def webhook_endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    event_types: Iterable[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change what is given. Enabling (again) clears the disabled reason and the failure counters;
    disabling by hand records reason ``manual``. Raises :class:`ValidationFailed` like create."""
    fields: list[str] = []
    if url is not None:
        endpoint.url = _url_check(url)
        fields.append("url")
    if event_types is not None:
        endpoint.event_types = webhook_event_types_check(event_types)
        fields.append("event_types")
    if description is not None:
        endpoint.description = description.strip()[:200]
        fields.append("description")
    if enabled is not None and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        if enabled:
            endpoint.disabled_reason, endpoint.disabled_detail, endpoint.disabled_at = "", "", None
            endpoint.failing_since, endpoint.consecutive_failed_deliveries = None, 0
        else:
            endpoint.disabled_reason = DisabledReason.MANUAL
            endpoint.disabled_detail = ""
            endpoint.disabled_at = timezone.now()
        fields += [
            "enabled",
            "disabled_reason",
            "disabled_detail",
            "disabled_at",
            "failing_since",
            "consecutive_failed_deliveries",
        ]
    if fields:
        endpoint.save(update_fields=[*fields, "updated_at"])
    if enabled:
        webhooks_deliver_soon()  # what waited while it was disabled
    return endpoint


def webhook_endpoint_secret_rotate(*, endpoint: WebhookEndpoint) -> str:
    """A new secret (returned, to show once); the old one stops signing at once."""
    endpoint.secret = webhook_secret_generate()
    endpoint.save(update_fields=["secret", "updated_at"])
    return endpoint.secret


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint with its deliveries and their log."""
    endpoint.delete()


def webhook_endpoint_list(*, workspace: Workspace) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(workspace=workspace).order_by("id")


def webhook_endpoint_get(*, workspace: Workspace, endpoint_id: int) -> WebhookEndpoint:
    """Raises :class:`WebhookEndpointNotFound` (404) for an id of another workspace too."""
    found = WebhookEndpoint.objects.filter(workspace=workspace, pk=endpoint_id).first()
    if found is None:
        raise WebhookEndpointNotFound(f"no webhook endpoint {endpoint_id}")
    return found


def webhook_endpoints_disabled_by_failure(*, workspace: Workspace) -> list[WebhookEndpoint]:
    """Endpoints switched off after sustained failure: the console's notice to admins."""
    return list(
        WebhookEndpoint.objects.filter(
            workspace=workspace, enabled=False, disabled_reason=DisabledReason.FAILING
        ).order_by("id")
    )


# ---------------------------------------------------------------- deliveries


def webhook_delivery_list(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    """The endpoint's delivery log, newest first."""
    return WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-id")


def webhook_delivery_get(*, workspace: Workspace, delivery_id: int) -> WebhookDelivery:
    found = (
        WebhookDelivery.objects.select_related("endpoint")
        .prefetch_related("attempt_log")
        .filter(workspace=workspace, pk=delivery_id)
        .first()
    )
    if found is None:
        raise WebhookDeliveryNotFound(f"no webhook delivery {delivery_id}")
    return found


def webhook_delivery_replay(*, workspace: Workspace, delivery_id: int) -> WebhookDelivery:
    """Send the delivery again, whatever its state: an explicit new attempt with the same ``webhook-id``
    and body (the receiver may recognise it), a fresh retry schedule, and the customer's later events
    held behind it like any pending one.

    Raises :class:`WebhookDeliveryNotFound` (404), :class:`WebhookEndpointDisabled` (409) when its
    endpoint is disabled (enable it first)."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("endpoint")
            .filter(workspace=workspace, pk=delivery_id)
            .first()
        )
        if delivery is None:
            raise WebhookDeliveryNotFound(f"no webhook delivery {delivery_id}")
        if not delivery.endpoint.enabled:
            raise WebhookEndpointDisabled("the endpoint is disabled; enable it before replaying")
        delivery.state = DeliveryState.PENDING
        delivery.next_attempt_at = timezone.now()
        delivery.attempts_in_round = 0
        delivery.replays += 1
        delivery.save(update_fields=["state", "next_attempt_at", "attempts_in_round", "replays"])
        transaction.on_commit(webhooks_deliver_soon)
    return delivery


def webhook_deliveries_record(*, event: events.DomainEvent) -> int:
    """Record the deliveries of ``event`` (the webhook listener). Returns how many endpoints it was
    offered to (rows already there for a repeated event id are left as they are).

    One query for the workspace's enabled endpoints and one INSERT … ON CONFLICT DO NOTHING for the
    rows; an event without a public type costs nothing. Then asks for a delivery run at once (best
    effort: when the broker is away the beat schedule finds the rows anyway)."""
    public = webhook_event_build(event)
    if public is None:
        return 0
    endpoints = [
        e
        for e in WebhookEndpoint.objects.filter(workspace_id=event.workspace_id, enabled=True).only(
            "pk", "event_types"
        )
        if not e.event_types or public.type in e.event_types
    ]
    if not endpoints:
        return 0
    now = timezone.now()
    body = public.body()
    created = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                workspace_id=event.workspace_id,
                endpoint_id=e.pk,
                event_id=public.event_id,
                event_type=public.type,
                customer_id=public.customer_id,
                body=body,
                next_attempt_at=now,
            )
            for e in endpoints
        ],
        ignore_conflicts=True,
    )
    webhooks_deliver_soon()
    return len(created)


def webhooks_deliver_soon() -> None:
    """Ask a worker for a delivery run now (best effort; beat runs one every few seconds anyway)."""
    try:
        webhooks_deliver_due_task.delay()
    except Exception:  # the broker is down: the rows wait in PostgreSQL for the next beat
        logger.warning(
            "could not queue a webhook delivery run; beat will pick the deliveries up", exc_info=True
        )


def webhooks_listener(event: events.DomainEvent) -> None:
    """The outbound webhooks listener (``config/listeners.py``)."""
    webhook_deliveries_record(event=event)
