"""API key scopes: ``"<area>:read"`` or ``"<area>:write"`` per resource area; write implies read.
A leaf module (services and the API both read it). Which area a request touches: ``engagement.api.scopes``.
"""

from __future__ import annotations

SCOPE_AREAS: tuple[str, ...] = (
    "customers",
    "consent",
    "imports",
    "messages",
    "conversations",
    "channels",
    "segments",
    "campaigns",
    "journeys",
    "webhooks",
    "events",
    "reports",
)
ALL_SCOPES: tuple[str, ...] = tuple(f"{area}:{level}" for area in SCOPE_AREAS for level in ("read", "write"))
SCOPE_CHOICES: list[tuple[str, str]] = [
    (s, f"{s.split(':')[0].capitalize()}: {s.split(':')[1]}") for s in ALL_SCOPES
]


def scopes_normalize(scopes: list[str] | tuple[str, ...]) -> list[str]:
    """Known scopes only, sorted, without duplicates. Raises ValueError naming an unknown one."""
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(unknown)}")
    return sorted(set(scopes))


def scopes_allow(*, granted: list[str], required: str) -> bool:
    area, _, level = required.partition(":")
    return required in granted or (level == "read" and f"{area}:write" in granted)
