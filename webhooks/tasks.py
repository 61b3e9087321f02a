from celery import shared_task

from . import services


@shared_task(name="webhooks.tasks.deliver", ignore_result=True)
def deliver(delivery_id: int) -> None:
    """Send one webhook delivery (a retry is scheduled on the row; the sweeper sends it)."""
    services.delivery_attempt(delivery_id=delivery_id)


@shared_task(name="webhooks.tasks.sweep", ignore_result=True)
def sweep() -> None:
    services.deliveries_sweep()
