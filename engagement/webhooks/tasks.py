"""The delivery worker's Celery task. Beat runs it every ``WEBHOOKS_POLL_SECONDS``; the listener also
asks for a run when it records deliveries. Retries are not Celery's: each delivery's next attempt time is
kept in PostgreSQL and a run claims what is due (``delivery.py``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="engagement.webhooks.tasks.webhooks_deliver_due", ignore_result=True, acks_late=False)
def webhooks_deliver_due_task() -> int:
    from django.conf import settings

    from engagement.webhooks.delivery import webhook_deliveries_run

    return webhook_deliveries_run(budget_seconds=settings.WEBHOOKS_RUN_BUDGET_SECONDS)
