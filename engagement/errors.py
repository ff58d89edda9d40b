"""The one domain error hierarchy.

Services raise a subclass of :class:`DomainError`; the API turns every one into RFC 9457 problem details
in one exception handler (``engagement/api/exceptions.py``) and console views turn it into a form error.
No view catches domain errors one by one (HackSoft ``ApplicationError``, Zulip ``JsonableError``).

This module is a leaf: it imports nothing from the project, so every app may raise these.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every error a service raises on purpose.

    ``code`` is machine readable and stable (``"send_rejected"``, ``"identifier_invalid"``…); ``status``
    is the HTTP status the API answers with; ``field`` names the input at fault, when one is.
    """

    code: ClassVar[str] = "domain_error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "The request cannot be carried out"

    def __init__(self, message: str = "", *, field: str = "", extra: dict[str, Any] | None = None) -> None:
        super().__init__(message or self.title)
        self.message = message or self.title
        self.field = field
        self.extra = extra or {}

    def __str__(self) -> str:
        return self.message


class ValidationFailed(DomainError, ValueError):
    """Input that cannot be accepted as it is (a malformed value, an unknown option)."""

    code = "validation_failed"
    status = 400
    title = "Invalid input"


class NotFound(DomainError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(DomainError):
    """The request clashes with the current state (already merged, already taken…)."""

    code = "conflict"
    status = 409
    title = "Conflict with the current state"


class Rejected(DomainError, ValueError):
    """The request is valid but the rules refuse it (consent, a wrong state…)."""

    code = "rejected"
    status = 422
    title = "Refused by the rules"


class TransientError(Exception):
    """A dependency is failing for now (a provider's 5xx or 429, a network error): try again later.
    Not a domain error: it never reaches a client; tasks retry it with backoff."""
