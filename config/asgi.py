"""ASGI entry point: HTTP through Django, websockets through Channels (served by uvicorn)."""

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from config.routing import webchat_websocket_urlpatterns, websocket_urlpatterns  # noqa: E402

console_websocket_app = AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
# Widget visitors connect from the host sites' origins; the webchat consumer checks each channel's own.
webchat_websocket_app = URLRouter(webchat_websocket_urlpatterns)


async def websocket_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    app = webchat_websocket_app if scope["path"].startswith("/ws/webchat/") else console_websocket_app
    await app(scope, receive, send)


application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_app})
