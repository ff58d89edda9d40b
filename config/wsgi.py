"""WSGI entry point: the product's HTTP (console, API, webhooks) served by a WSGI server (granian).

Websockets (console live updates, webchat) are served by the ASGI application in ``config.asgi``; the
front (``tools/run.py``, ``docker-compose.yml``) routes ``/ws/`` there, so both share one origin.
Django's WSGI handler runs a sync view without the sync/async hops of its ASGI handler, which the
benchmarks measured at a third to a half of the rate for the same view (``bench/README.md``).
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()
