"""The one way events are recorded: inside the transaction of the change that causes them,
so a rolled-back change sends nothing. An event is stored (with one pending delivery per
subscribed endpoint) only for users with an active endpoint subscribed to its kind; for
everyone else it costs one indexed read. The deliveries are handed to the worker after
commit; beat's sweeper (`webhooks.tasks.sweep`) sends what a lost message left behind."""

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from config import fragment_cache

from .models import EventKind, WebhookDelivery, WebhookEndpoint, WebhookEvent

logger = logging.getLogger("webhooks")

# The endpoints of one user, cached (config/fragment_cache.py): every purchase and trade
# order asks, almost every answer is "none", and the read was a statement and ~0.8 ms of
# ORM on those paths (bench/purchase). Any endpoint written anywhere replaces the version:
# the post_save/post_delete signals (webhooks/apps.py) and the services' own UPDATEs.
ENDPOINTS_VERSION = "webhooks:endpoints:version"
ENDPOINTS_CACHE_SECONDS = 300


def endpoints_changed(**_) -> None:
    fragment_cache.bump(ENDPOINTS_VERSION)


def _active_endpoints(user_ids: set[int]) -> list[tuple[int, int, list]]:
    """(pk, user id, event kinds) of the users' active endpoints."""

    def read() -> list[tuple[int, int, list]]:  # built only on a miss: a hit costs no queryset
        query = WebhookEndpoint.objects.filter(user_id__in=user_ids, disabled_at__isnull=True)
        return list(query.values_list("pk", "user_id", "events"))

    if len(user_ids) != 1:  # a batch (distributions): one query for all of them
        return read()
    (user_id,) = user_ids
    return fragment_cache.get_or_compute(
        f"webhooks:endpoints:{user_id}", [ENDPOINTS_VERSION], read, ENDPOINTS_CACHE_SECONDS
    )


def event_record(*, user_id: int, kind: str, data: dict) -> None:
    """Record one event for one user. Call inside the caller's transaction.atomic()."""
    event_record_many(kind=kind, items=[(user_id, data)])


def event_record_many(*, kind: str, items: Sequence[tuple[int, dict]]) -> int:
    """Record one event per (user id, data) item, in at most three statements whatever the
    number of items (a distribution batch). Returns how many events were stored."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_record must be called inside the transaction of the change it reports")
    if kind not in EventKind.values:
        raise ValueError(f"unknown webhook event kind {kind!r}")
    if not items:
        return 0
    # Filtered in Python: JSON containment is not available on SQLite (the embedded mode),
    # and a user has a handful of endpoints.
    subscribed: dict[int, list[int]] = defaultdict(list)
    for pk, user_id, kinds in _active_endpoints({user_id for user_id, _ in items}):
        if kind in kinds:
            subscribed[user_id].append(pk)
    if not subscribed:
        return 0
    now = timezone.now()
    events = [
        WebhookEvent(public_id=uuid.uuid4(), user_id=user_id, kind=kind, payload=data, created_at=now)
        for user_id, data in items
        if user_id in subscribed
    ]
    WebhookEvent.objects.bulk_create(events)
    deliveries = [
        WebhookDelivery(event=event, endpoint_id=endpoint_id, next_attempt_at=now, created_at=now)
        for event in events
        for endpoint_id in subscribed[event.user_id]
    ]
    WebhookDelivery.objects.bulk_create(deliveries)
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: deliveries_enqueue(ids))
    return len(events)


def deliveries_enqueue(ids: Sequence[int]) -> None:
    """Hand deliveries to the worker. A broker that cannot take them loses nothing: the
    rows stay pending and due, and the sweeper sends them."""
    from .tasks import deliver  # cycle: the tasks module imports the services that import this one

    for pk in ids:
        try:
            deliver.delay(pk)
        except Exception as exc:  # noqa: BLE001 - any broker failure; the sweeper retries
            logger.warning("webhook delivery %s not enqueued (%s); the sweeper will send it", pk, type(exc).__name__)
