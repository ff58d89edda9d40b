from django.apps import AppConfig


class ChannelsInboundConfig(AppConfig):
    name = "channels_inbound"
    verbose_name = "Inbound channels"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .registry import autodiscover
        from .webchat import services  # noqa: F401 - registers the webchat upload processor

        autodiscover()
