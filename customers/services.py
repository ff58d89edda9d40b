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
)
from .models import Customer, Identity
from .resolution import Resolution, customer_resolve_identifiers

__all__ = [
    "Identifier",
    "InvalidIdentifier",
    "Resolution",
    "customer_primary_address",
    "customer_resolve",
    "customer_resolve_identifiers",
    "email_normalize",
    "identifier_normalize",
    "phone_normalize",
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
