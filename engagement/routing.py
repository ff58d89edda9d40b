from django.urls import path

from engagement.console.consumers import InboxConsumer

websocket_urlpatterns = [
    path("ws/console/", InboxConsumer.as_asgi()),
]
