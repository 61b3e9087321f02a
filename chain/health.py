"""chain's readiness checks, named in settings.READINESS_CHECKS (config/health.py)."""

from django.conf import settings
from django.utils import timezone

from .gateway import algod_status
from .heartbeat import worker_heartbeat_age
from .models import ChainTransaction


class SettlementStalled(Exception):
    """Outbox rows wait and no worker has taken a task for longer than the threshold."""


def check_algod() -> str | None:
    if not settings.ALGOD_URL:
        return None
    return f"round {algod_status()['last-round']}"


def oldest_unfinished_age() -> float | None:
    """Seconds since the oldest unfinished (pending or submitted) outbox row was created."""
    oldest = (
        ChainTransaction.objects.filter(status__in=[ChainTransaction.Status.PENDING, ChainTransaction.Status.SUBMITTED])
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return None if oldest is None else (timezone.now() - oldest).total_seconds()


def check_outbox() -> str:
    """The age of the oldest unfinished (pending or submitted) outbox row and when a worker
    last took a task. Raises SettlementStalled (→ /readyz 503) when that row is older than
    CHAIN_WORKER_STALL_SECONDS and no worker heartbeat is newer than that: nothing is
    settling. A row that waits while the worker beats (algod down, retries backing off)
    is not a stall of the worker; the algod check reports that."""
    threshold = settings.CHAIN_WORKER_STALL_SECONDS
    age = oldest_unfinished_age()
    beat_age = worker_heartbeat_age()
    seen = "never" if beat_age is None else f"{beat_age:.0f}s ago"
    if age is None:
        return f"no pending outbox rows; worker last seen {seen}"
    if age > threshold and (beat_age is None or beat_age > threshold):
        raise SettlementStalled(
            f"oldest pending outbox row is {age:.0f}s old and no worker has taken a task for "
            f"more than {threshold:.0f}s (last seen {seen})"
        )
    return f"oldest pending outbox row {age:.0f}s old; worker last seen {seen}"
