"""Customer resolution entry points every channel, the API and imports use.

The normalization helpers live in :mod:`customers.identifiers` and the multi-identifier resolution in
:mod:`customers.resolution`; they are re-exported here because callers across the project import them
from this module.
"""

from __future__ import annotations

from engagement.models import Workspace

from .identifiers import (
    Identifier,
    InvalidIdentifier,
    email_normalize,
    identifier_normalize,
    phone_normalize,
    reply_refusal,
    sms_sender_identifier,
)
from .models import Customer, Identity, IdentityKind
from .resolution import Resolution, customer_resolve_identifiers

__all__ = [
    "Identifier",
    "InvalidIdentifier",
    "Resolution",
    "customer_primary_address",
    "customer_reply_refusal",
    "customer_resolve",
    "customer_resolve_identifiers",
    "email_normalize",
    "identifier_normalize",
    "phone_normalize",
    "reply_refusal",
    "sms_sender_identifier",
]


def customer_resolve(
    *, workspace: Workspace, identifier: Identifier, channel_kind: str = "", display_name: str = ""
) -> tuple[Customer, bool]:
    """Find the customer who owns ``identifier`` in ``workspace``, or create one.

    Returns ``(customer, created)``. A one-identifier shortcut for :func:`customer_resolve_identifiers`;
    safe under concurrency (the unique constraint on identities decides the race).
    """
    resolution = customer_resolve_identifiers(
        workspace=workspace, identifiers=[identifier], channel_kind=channel_kind, display_name=display_name
    )
    return resolution.customer, resolution.created


def customer_primary_address(*, customer: Customer, kind: str) -> str | None:
    """The most recently seen identity of ``kind`` for sending, or None."""
    identity = (
        Identity.objects.filter(workspace_id=customer.workspace_id, customer=customer, kind=kind)
        .order_by("-last_seen_at", "-id")
        .first()
    )
    return identity.value if identity else None


# Identity kinds a customer may be known by on SMS and voice that are not phone numbers.
NON_PHONE_SENDER_KINDS = (
    IdentityKind.SHORT_CODE,
    IdentityKind.SENDER_ID,
    IdentityKind.UNKNOWN_CALLER,
    IdentityKind.SIP,
    IdentityKind.VOICE_CLIENT,
)


def customer_reply_refusal(
    *,
    workspace_id: int,
    customer: Customer | None,
    channel_kind: str,
    channel_address: str,
    to_address: str = "",
) -> tuple[str, str]:
    """Whether a phone channel (SMS, voice) can reach a customer known by something other than a phone
    number: ``(address, "")`` to send to (a short code, from a short-code channel), ``("", reason)``
    saying why not (:func:`customers.identifiers.reply_refusal`), or ``("", "")`` when no such
    identity is known. Looks at ``customer``'s identities (any customer's when None), or only at the
    one ``to_address`` names when given: a typo is not mistaken for a sender ID nobody wrote from."""
    identities = Identity.objects.filter(workspace_id=workspace_id, kind__in=NON_PHONE_SENDER_KINDS)
    if customer is not None:
        identities = identities.filter(customer=customer)
    if to_address:
        try:
            ident = sms_sender_identifier(to_address, region=None)
        except InvalidIdentifier:
            return "", ""
        identities = identities.filter(kind=ident.kind, value=ident.value)
    identity = identities.order_by("-last_seen_at", "-id").first()
    if identity is None:
        return "", ""
    reason = reply_refusal(
        kind=identity.kind, value=identity.value, channel_kind=channel_kind, channel_address=channel_address
    )
    if reason:
        return "", reason
    return (identity.value, "") if identity.kind == IdentityKind.SHORT_CODE else ("", "")
