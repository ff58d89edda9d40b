from django.urls import path

from channels_inbound.webchat.consumers import WebchatConsumer
from engagement.console.consumers import InboxConsumer

websocket_urlpatterns = [
    path("ws/console/", InboxConsumer.as_asgi()),
]

# The website widget's visitors: served from other origins, so not behind AllowedHostsOriginValidator;
# the consumer checks the origin against the channel's own allowed origins.
webchat_websocket_urlpatterns = [
    path("ws/webchat/<str:token>/", WebchatConsumer.as_asgi()),
]
