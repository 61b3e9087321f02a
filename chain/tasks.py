"""Celery tasks: thin wrappers that take ids and call one service."""

from celery import shared_task

from . import services


@shared_task(bind=True, name="chain.tasks.outbox_process", max_retries=None, acks_late=True)
def outbox_process_task(self, chain_tx_id: int) -> str:
    outcome = services.outbox_process(chain_tx_id=chain_tx_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="chain.tasks.outbox_sweep")
def outbox_sweep() -> int:
    return services.outbox_sweep()


@shared_task(name="chain.tasks.reconcile_holdings")
def reconcile_holdings() -> int:
    from .reconciliation import reconcile

    report = reconcile()
    report.log()
    return len(report.mismatches)
