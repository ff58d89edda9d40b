"""Project wiring: settings, URLs, ASGI/WSGI entry points, websocket routing and the Celery app.

Kept out of the apps so that no app's import pulls in another's (Zulip keeps ``zproject/``, HackSoft's
styleguide ``config/``). Only this package may import every app.
"""

from .celery import app as celery_app

__all__ = ["celery_app"]
