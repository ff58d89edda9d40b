"""Celery tasks of the customer view. Thin: fetch by id, call a service (imported inside the body: the
service imports its task at the top, HackSoft "Celery")."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="customers.tasks.run_import", acks_late=True)
def run_import_task(import_id: int) -> int:
    from .imports import customer_import_run

    return customer_import_run(import_id=import_id).processed_rows
