"""Reading RFC 9457 problem responses in tests."""

from __future__ import annotations

from typing import Any


def problem(resp: Any, status: int) -> dict[str, Any]:
    """The problem body of ``resp``, after checking its status, media type and members."""
    assert resp.status_code == status, resp.content
    assert resp["Content-Type"].startswith("application/problem+json"), resp["Content-Type"]
    body = resp.json()
    assert body["status"] == status
    assert body["type"] == f"urn:engagement:problem:{body['code']}"
    assert {"title", "detail", "errors"} <= body.keys()
    return body


def field_messages(resp: Any) -> dict[str, list[str]]:
    """``{field: [detail, …]}`` from a problem's ``errors`` (for tests that check one field's message)."""
    out: dict[str, list[str]] = {}
    for error in resp.json().get("errors", []):
        out.setdefault(error["field"], []).append(error["detail"])
    return out
