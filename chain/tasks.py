"""Celery tasks: thin wrappers that take ids and call one service."""

from celery import shared_task
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections

from . import worker


@task_prerun.connect
@task_postrun.connect
def _close_old_db_connections(task=None, **kwargs) -> None:
    """Django's request rule around every task: drop a connection that is broken or
    older than CONN_MAX_AGE. Celery's fixup would close every connection around every
    task (a new PostgreSQL backend each time); CELERY_DB_REUSE_MAX turns that off.
    Not for eager tasks, which run inside the caller's connection and transaction."""
    if task is not None and not getattr(task.request, "is_eager", False):
        close_old_connections()


@shared_task(bind=True, name="chain.tasks.outbox_process", max_retries=None, acks_late=True)
def outbox_process_task(self, chain_tx_id: int, sender: str | None = None, upto: int | None = None) -> str:
    outcome = worker.outbox_process(chain_tx_id=chain_tx_id, sender=sender, upto=upto)
    if outcome.retry_in is not None:
        # The row's own retry: the wake or hand-off it carried was passed on already.
        raise self.retry(args=(chain_tx_id,), kwargs={}, countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="chain.tasks.outbox_sweep")
def outbox_sweep() -> int:
    return worker.outbox_sweep()
