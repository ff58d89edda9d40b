"""Celery tasks of the customer view. Thin: fetch by id, call a service."""

from __future__ import annotations

from celery import shared_task

from .imports import customer_import_run


@shared_task(name="customers.tasks.run_import", acks_late=True)
def run_import(import_id: int) -> int:
    return customer_import_run(import_id=import_id).processed_rows
