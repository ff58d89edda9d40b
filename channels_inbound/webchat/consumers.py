"""The visitor's websocket (``/ws/webchat/<channel public token>/``), thin over ``services``.

Protocol (JSON frames). The widget opens the socket, then sends ``hello`` first:

    → {"type": "hello", "visitor": <token or "">, "identity": {user_id, email, name, hash} | null,
       "after": <id of the newest message it already shows>}
    ← {"type": "welcome", "visitor": <token>, "verified": bool, "messages": [...], "availability": {...}}
    → {"type": "message", "client_id": "...", "body": "..."}
    ← {"type": "ack", "client_id": "...", "message": {...}}        (also for a resend: dedupe by client_id)
    ← {"type": "error", "code": "...", "message": "...", "client_id"?, "retry_after"?, "retryable": bool}
    → {"type": "email", "email": "..."}     ← {"type": "email_saved", "email": "..."}
    → {"type": "ping"}                      ← {"type": "pong"}
    ← {"type": "message", "message": {...}}  (an agent's reply, or the visitor's message from another tab)
    ← {"type": "typing", "author": "...", "typing": bool}

The origin is checked against the channel's ``allowed_origins`` before the socket is accepted (this
route is deliberately outside ``AllowedHostsOriginValidator``: host pages live on other origins).
"""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from engagement.models import Channel
from engagement.realtime import presence_add, presence_remove, visitor_key
from engagement.sanitize import json_parse, json_problem

from .services import (
    Visitor,
    WebchatError,
    webchat_availability,
    webchat_channel_for_origin,
    webchat_email_capture,
    webchat_history,
    webchat_message_payload,
    webchat_message_receive,
    webchat_visitor_start,
)

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
CLOSE_IDENTITY = 4401
CLOSE_RATE_LIMITED = 4429
CLOSE_TOO_BIG = 1009


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class WebchatConsumer(AsyncJsonWebsocketConsumer):
    channel: Channel | None = None
    visitor: Visitor | None = None

    @property
    def ip(self) -> str:
        client = self.scope.get("client") or ("", 0)
        return str(client[0] or "")

    def _platform_origins(self) -> tuple[str, ...]:
        """The platform's own origins for this socket: PUBLIC_BASE_URL and the one the socket was
        opened on (ws → http, wss → https, with its Host header)."""
        host = _header(self.scope, b"host") or ""
        scheme = "https" if self.scope.get("scheme") == "wss" else "http"
        return (settings.PUBLIC_BASE_URL, f"{scheme}://{host}" if host else "")

    async def connect(self) -> None:
        token = self.scope["url_route"]["kwargs"]["token"]
        self.channel = await database_sync_to_async(webchat_channel_for_origin)(
            token=token, origin=_header(self.scope, b"origin"), platform_origins=self._platform_origins()
        )
        if self.channel is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.visitor is not None:
            await self.channel_layer.group_discard(self.visitor.group, self.channel_name)
            await database_sync_to_async(presence_remove)(
                key=visitor_key(self.visitor.channel_id, self.visitor.visitor_id),
                member=self.channel_name,
            )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > settings.WEBCHAT_MAX_FRAME_CHARS:
            await self.close(code=CLOSE_TOO_BIG)
            return
        try:
            content = json_parse(text_data)
        except ValueError:
            await self._error(WebchatError("frames must be JSON"))
            return
        if not isinstance(content, dict):
            await self._error(WebchatError("frames must be JSON objects"))
            return
        # A visitor is a client, not a signed provider: values no column can hold are refused here.
        found = json_problem(content)
        if found:
            await self._error(WebchatError(f"{found[0] or 'the frame'} {found[1]}"))
            return
        await self.receive_json(content)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        kind = content.get("type")
        if kind == "hello":
            await self._hello(content)
        elif self.visitor is None:
            await self._error(WebchatError("say hello first"))
        elif kind == "message":
            await self._message(content)
        elif kind == "email":
            await self._email(content)
        elif kind == "ping":
            await self._heartbeat()
            await self.send_json({"type": "pong"})
        else:
            await self._error(WebchatError(f"unknown frame type {kind!r}"))

    async def _error(self, exc: WebchatError, **extra: Any) -> None:
        frame = {"type": "error", "code": exc.code, "message": str(exc), "retryable": exc.retryable, **extra}
        if exc.retry_after:
            frame["retry_after"] = exc.retry_after
        await self.send_json(frame)

    async def _heartbeat(self) -> None:
        assert self.visitor is not None
        await database_sync_to_async(presence_add)(
            key=visitor_key(self.visitor.channel_id, self.visitor.visitor_id),
            member=self.channel_name,
        )

    async def _hello(self, content: dict[str, Any]) -> None:
        assert self.channel is not None
        if self.visitor is not None:
            await self._error(WebchatError("already said hello"))
            return
        identity = content.get("identity")
        after = content.get("after")

        def start() -> tuple[Visitor, str, list[dict[str, Any]], dict[str, Any]]:
            assert self.channel is not None
            visitor, token, new = webchat_visitor_start(
                channel=self.channel,
                token=str(content.get("visitor") or ""),
                identity=identity if isinstance(identity, dict) else None,
                ip=self.ip,
            )
            history = (
                []
                if new
                else webchat_history(
                    channel=self.channel, visitor=visitor, after_id=after if isinstance(after, int) else 0
                )
            )
            return visitor, token, history, webchat_availability(channel=self.channel)

        try:
            visitor, token, history, availability = await database_sync_to_async(start)()
        except WebchatError as exc:
            await self._error(exc)
            close = CLOSE_RATE_LIMITED if exc.retryable else CLOSE_IDENTITY
            await self.close(code=close)
            return
        self.visitor = visitor
        await self.channel_layer.group_add(visitor.group, self.channel_name)
        await self._heartbeat()
        await self.send_json(
            {
                "type": "welcome",
                "visitor": token,
                "verified": visitor.verified,
                "has_email": bool(visitor.email),
                "messages": history,
                "availability": availability,
            }
        )

    async def _message(self, content: dict[str, Any]) -> None:
        assert self.channel is not None
        assert self.visitor is not None
        client_id, body = content.get("client_id"), content.get("body")
        channel, visitor = self.channel, self.visitor

        def receive() -> tuple[dict[str, Any], bool]:
            interaction, created = webchat_message_receive(
                channel=channel,
                visitor=visitor,
                client_id=client_id if isinstance(client_id, str) else "",
                body=body if isinstance(body, str) else "",
                ip=self.ip,
            )
            return webchat_message_payload(interaction=interaction), created

        try:
            # Not thread-sensitive: by default every consumer of a process runs its database work on
            # one shared thread, so a process stored one message at a time and the rate was bounded by
            # one transaction's latency. Each message is one transaction of its own (a pooled
            # connection per thread), and a consumer still handles its own frames in order.
            payload, created = await database_sync_to_async(receive, thread_sensitive=False)()
        except WebchatError as exc:
            await self._error(exc, client_id=client_id)
            return
        await self.send_json({"type": "ack", "client_id": client_id, "message": payload})
        if created:  # the visitor's other tabs
            await self.channel_layer.group_send(
                visitor.group, {"type": "webchat.message", "message": payload, "sender": self.channel_name}
            )

    async def _email(self, content: dict[str, Any]) -> None:
        assert self.channel is not None
        assert self.visitor is not None
        try:
            email = await database_sync_to_async(webchat_email_capture)(
                channel=self.channel, visitor=self.visitor, email=str(content.get("email") or "")
            )
        except WebchatError as exc:
            await self._error(exc)
            return
        await self.send_json({"type": "email_saved", "email": email})

    # ---------------------------------------------------------------- group messages

    async def webchat_message(self, event: dict[str, Any]) -> None:
        if event.get("sender") == self.channel_name:
            return  # this tab already has it (the ack)
        await self.send_json({"type": "message", "message": event["message"]})

    async def webchat_typing(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "typing", "author": event.get("author", ""), "typing": event["typing"]})
