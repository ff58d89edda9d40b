"""The ASGI application of the webchat benchmark only: the product's application, plus a bare Channels
echo consumer at ``/bench/echo/`` as the baseline. Nothing in the product mounts it."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import URLRouter
from django.urls import path

from config.asgi import application as product


class EchoConsumer(AsyncWebsocketConsumer):
    """Sends every frame straight back: what a websocket round trip through Channels costs."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)


echo = URLRouter([path("bench/echo/", EchoConsumer.as_asgi())])


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket" and scope["path"] == "/bench/echo/":
        await echo(scope, receive, send)
    else:
        await product(scope, receive, send)
