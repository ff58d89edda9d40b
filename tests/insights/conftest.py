"""Helpers for search, SLA, CSAT and reports tests: real inbound messages through the timeline service."""

from __future__ import annotations

from tests.console.conftest import admin_client, admin_user, conversation_pk, inbound, minutes_ago

__all__ = ["admin_client", "admin_user", "conversation_pk", "inbound", "minutes_ago"]
