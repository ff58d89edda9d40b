from django.apps import AppConfig


class WiringConfig(AppConfig):
    """Registers what connects the apps (the listeners of domain events) once every app is loaded."""

    name = "config"
    label = "wiring"
    verbose_name = "Project wiring"

    def ready(self) -> None:
        from config.listeners import listeners_register

        listeners_register()
