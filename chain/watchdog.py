"""A worker that is connected to the broker but receives nothing is restarted.

Seen in the chaos run on RabbitMQ (celery 5.7.0, kombu 5.7.0, threads pool): after a
broker kill -9 the worker reconnected ("Connected to amqp://...", "Resuming normal
operations following a restart") and then received no message for as long as it lived,
while outbox rows waited; a restart of the worker healed it at once. A process manager
restarts only a process that exits, so the worker exits itself: a thread started when the
worker is ready watches when this worker process last received a task (Celery's
`task_received`, sent in the consumer's process for every pool). When nothing has arrived
for CHAIN_WORKER_WEDGE_SECONDS while the oldest unfinished outbox row is older than that,
it logs why and exits with status 70; the supervisor (`make run`) or systemd
(Restart=always) starts a fresh worker. Unacknowledged messages go back to the queue
(acks_late), and the outbox's conditional updates keep the settlement exactly once.

A live worker receives the beat sweeper's task every CHAIN_SWEEP_INTERVAL_SECONDS, so the
threshold must stay well above the interval times the number of workers. 0 turns the
watchdog off."""

import logging
import os
import threading
import time

from celery.signals import task_received, worker_ready
from django.conf import settings
from django.db import connection

from .health import oldest_unfinished_age

logger = logging.getLogger(__name__)
EXIT_STATUS = 70  # EX_SOFTWARE

_last_received = time.monotonic()


@task_received.connect(dispatch_uid="chain.watchdog.task_received")
def _note_received(**kwargs) -> None:
    global _last_received
    _last_received = time.monotonic()


def wedged(*, limit: float, now: float | None = None) -> str | None:
    """Why this worker should exit, or None while it is fine."""
    idle = (time.monotonic() if now is None else now) - _last_received
    if idle < limit:
        return None
    try:
        age = oldest_unfinished_age()
    except Exception:  # noqa: BLE001 - the database being down is not the worker's wedge
        logger.warning("watchdog could not read the outbox", exc_info=True)
        return None
    finally:
        connection.close()  # this thread's own connection; do not keep it between checks
    if age is None or age < limit:
        return None
    return f"received no task for {idle:.0f}s while the oldest unfinished outbox row is {age:.0f}s old"


def _watch(limit: float) -> None:
    while True:
        time.sleep(max(1.0, min(limit / 4, 15.0)))
        reason = wedged(limit=limit)
        if reason:
            logger.critical("worker wedged: %s; exiting so the process manager starts a fresh one", reason)
            logging.shutdown()
            os._exit(EXIT_STATUS)


@worker_ready.connect(dispatch_uid="chain.watchdog.worker_ready")
def _start(**kwargs) -> None:
    global _last_received
    limit = settings.CHAIN_WORKER_WEDGE_SECONDS
    if not limit:
        return
    _last_received = time.monotonic()
    threading.Thread(target=_watch, args=(limit,), name="chain-wedge-watchdog", daemon=True).start()
