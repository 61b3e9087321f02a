"""The settlement worker's heartbeat: when a worker last took a task from the broker.

Every task a worker starts (the beat sweeper's `outbox_sweep` arrives every
CHAIN_SWEEP_INTERVAL_SECONDS, so a live worker beats at least that often) and a worker
becoming ready store the time in the shared cache. `chain.health.check_outbox` reads it:
rows that wait while no worker beats mean nothing is settling (a dead or wedged worker),
which /readyz then reports."""

import logging
import time

from celery.signals import task_prerun, worker_ready
from django.core.cache import cache

logger = logging.getLogger(__name__)

HEARTBEAT_KEY = "chain:worker-heartbeat"
# Kept long past any stall threshold, so an old beat reads as "seen N s ago", not "never".
HEARTBEAT_TTL_SECONDS = 7 * 24 * 3600
# A worker beats at most this often: a drain of hundreds of tasks a second would otherwise
# write the cache once per task (the stall thresholds are minutes).
BEAT_EVERY_SECONDS = 1.0
_last_beat = float("-inf")  # this process's, time.monotonic()


def worker_heartbeat_record(now: float | None = None) -> None:
    """Store the time of the latest beat. A cache outage is logged, never raised: the
    task that triggered the beat must run anyway."""
    try:
        cache.set(HEARTBEAT_KEY, time.time() if now is None else now, HEARTBEAT_TTL_SECONDS)
    except Exception:  # the cache is best effort here; /readyz reports a missing beat
        logger.warning("could not record the worker heartbeat", exc_info=True)


def worker_heartbeat_age(now: float | None = None) -> float | None:
    """Seconds since a worker last took a task, None when none ever did (or it expired)."""
    beat = cache.get(HEARTBEAT_KEY)
    if beat is None:
        return None
    return max(0.0, (time.time() if now is None else now) - float(beat))


@task_prerun.connect(dispatch_uid="chain.heartbeat.task_prerun")
def _beat_on_task(task=None, **kwargs) -> None:
    # Eager tasks run in the web process (tests, callers without a broker): not a worker.
    global _last_beat
    if task is not None and not getattr(task.request, "is_eager", False):
        now = time.monotonic()
        if now - _last_beat >= BEAT_EVERY_SECONDS:
            _last_beat = now
            worker_heartbeat_record()


@worker_ready.connect(dispatch_uid="chain.heartbeat.worker_ready")
def _beat_on_ready(**kwargs) -> None:
    worker_heartbeat_record()
