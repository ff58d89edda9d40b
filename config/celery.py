"""The Celery application. Tasks are thin: fetch by id, call a service."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("engagement")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _fresh_db_pool_after_fork(**_: object) -> None:
    """A forked worker must not share the parent's pooled PostgreSQL sockets."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        conn.close_pool() if hasattr(conn, "close_pool") else conn.close()
