from django.apps import AppConfig


class ChannelsOutboundConfig(AppConfig):
    name = "channels_outbound"
    verbose_name = "Outbound channels"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .registry import autodiscover

        autodiscover()
