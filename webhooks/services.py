"""Webhook writes: endpoints (create, disable, enable, delete), one delivery attempt, the
sweeper, and staff's "retry now".

A delivery is claimed before it is sent with a conditional update that moves its next
attempt past the send's timeout (a lease), so two workers (a task and the sweeper's
re-enqueue) never send the same attempt twice; the outcome is written in a short
transaction after the request, never while a row lock is held across the network call."""

from __future__ import annotations

import http.client
import json
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.notifications import notify
from compliance.audit import audit_record

from . import signing, transport
from .events import deliveries_enqueue, endpoints_changed
from .models import EventKind, WebhookDelivery, WebhookEndpoint, WebhookEvent

logger = logging.getLogger("webhooks")

DS = WebhookDelivery.Status
RETRY_PERMISSION = "webhooks.retry_webhookdelivery"


# -- endpoints ---------------------------------------------------------------------------------


def _events_clean(events) -> list[str]:
    chosen = sorted({str(e) for e in (events or [])})
    if not chosen:
        raise ValidationError({"events": "Choose at least one event."})
    unknown = [e for e in chosen if e not in EventKind.values]
    if unknown:
        raise ValidationError({"events": "Choose events from the list."})
    return chosen


@transaction.atomic(durable=True)
def endpoint_create(*, user, url: str, events) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (the only time the plaintext leaves here)."""
    refusal = transport.url_refusal(url)
    if refusal is not None:
        raise ValidationError({"url": refusal})
    chosen = _events_clean(events)
    # Lock the user's row: the endpoint limit is check-then-insert.
    User.objects.select_for_update().filter(pk=user.pk).first()
    if WebhookEndpoint.objects.filter(user=user).count() >= settings.WEBHOOKS_MAX_ENDPOINTS:
        raise ValidationError(f"You can have at most {settings.WEBHOOKS_MAX_ENDPOINTS} endpoints; delete one first.")
    endpoint = WebhookEndpoint(user=user, url=url, events=chosen)
    secret = signing.secret_generate()
    endpoint.secret_key_id, endpoint.secret_wrapped, endpoint.secret_nonce = signing.secret_seal(
        public_id=endpoint.public_id, secret=secret
    )
    endpoint.full_clean()
    endpoint.save(force_insert=True)
    return endpoint, secret


@transaction.atomic(durable=True)
def endpoint_disable(*, endpoint: WebhookEndpoint, reason: str = "Disabled by you.") -> WebhookEndpoint:
    WebhookEndpoint.objects.filter(pk=endpoint.pk, disabled_at__isnull=True).update(
        disabled_at=timezone.now(), disabled_reason=reason[:500]
    )
    endpoints_changed()
    endpoint.refresh_from_db()
    return endpoint


@transaction.atomic(durable=True)
def endpoint_enable(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Active again, failure count reset; deliveries still pending resume."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(disabled_at=None, disabled_reason="", consecutive_failures=0)
    endpoints_changed()
    endpoint.refresh_from_db()
    ids = list(WebhookDelivery.objects.filter(endpoint=endpoint, status=DS.PENDING).values_list("pk", flat=True)[:1000])
    WebhookDelivery.objects.filter(pk__in=ids).update(next_attempt_at=timezone.now())
    transaction.on_commit(lambda: deliveries_enqueue(ids))
    return endpoint


@transaction.atomic(durable=True)
def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    WebhookEndpoint.objects.select_for_update().filter(pk=endpoint.pk).first()  # before its deliveries
    endpoint.delete()


# -- delivery ----------------------------------------------------------------------------------


def event_body(event: WebhookEvent) -> bytes:
    """The JSON a receiver gets; the same bytes on every attempt."""
    document = {
        "id": str(event.public_id),
        "type": event.kind,
        "created": event.created_at.isoformat(),
        "data": event.payload,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def signed_headers(*, event: WebhookEvent, secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "RWA-Marketplace-Webhooks/1",
        "Webhook-Id": str(event.public_id),
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": signing.signature(secret=secret, timestamp=timestamp, body=body),
    }


def _claim(delivery_id: int, now) -> bool:
    lease = now + timedelta(seconds=settings.WEBHOOKS_TIMEOUT_SECONDS * 4 + 30)
    return bool(
        WebhookDelivery.objects.filter(
            pk=delivery_id, status=DS.PENDING, next_attempt_at__lte=now, endpoint__disabled_at__isnull=True
        ).update(next_attempt_at=lease)
    )


def delivery_attempt(*, delivery_id: int) -> str | None:
    """Send one due delivery once; its status afterwards, or None when it was not due (not
    pending, not yet time, endpoint disabled, or another worker holds it)."""
    if not _claim(delivery_id, timezone.now()):
        return None
    delivery = WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
    body = event_body(delivery.event)
    status_code: int | None = None
    try:
        headers = signed_headers(
            event=delivery.event, secret=signing.secret_open(delivery.endpoint), body=body, timestamp=int(time.time())
        )
        status_code = transport.post(
            delivery.endpoint.url, body=body, headers=headers, timeout=settings.WEBHOOKS_TIMEOUT_SECONDS
        )
        error = "" if 200 <= status_code < 300 else f"HTTP {status_code}"
    except transport.Refused as exc:
        error = f"Refused: {exc}"
    except (OSError, http.client.HTTPException) as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return _outcome(delivery, status_code=status_code, error=error[:500])


@transaction.atomic(durable=True)
def _outcome(delivery: WebhookDelivery, *, status_code: int | None, error: str) -> str:
    """Lock order: the endpoint, then its deliveries (as endpoint_enable and _delete)."""
    now = timezone.now()
    endpoint = WebhookEndpoint.objects.select_for_update().select_related("user").get(pk=delivery.endpoint_id)
    if not error:
        if endpoint.consecutive_failures:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0)
        WebhookDelivery.objects.filter(pk=delivery.pk, status=DS.PENDING).update(
            status=DS.DELIVERED,
            attempts=F("attempts") + 1,
            delivered_at=now,
            next_attempt_at=None,
            last_status_code=status_code,
            last_error="",
        )
        return DS.DELIVERED
    endpoint.consecutive_failures += 1
    fields = ["consecutive_failures"]
    if endpoint.disabled_at is None and endpoint.consecutive_failures >= settings.WEBHOOKS_DISABLE_AFTER_FAILURES:
        endpoint.disabled_at = now
        endpoint.disabled_reason = f"{endpoint.consecutive_failures} deliveries in a row failed (last: {error})"[:500]
        fields += ["disabled_at", "disabled_reason"]
        notify(
            user=endpoint.user,
            subject="Webhook endpoint disabled",
            body=f"We stopped sending events to {endpoint.url[:200]} after {endpoint.consecutive_failures} "
            f"failed deliveries in a row (last: {error[:200]}). Fix the endpoint and enable it again; "
            "the events not yet delivered are sent then.",
            path=reverse("webhooks:endpoint", args=[endpoint.public_id]),
        )
    endpoint.save(update_fields=fields)
    attempts = delivery.attempts + 1
    schedule = settings.WEBHOOKS_RETRY_SCHEDULE
    final = attempts >= settings.WEBHOOKS_MAX_ATTEMPTS
    WebhookDelivery.objects.filter(pk=delivery.pk, status=DS.PENDING).update(
        status=DS.FAILED if final else DS.PENDING,
        attempts=F("attempts") + 1,
        next_attempt_at=None if final else now + timedelta(seconds=schedule[min(attempts, len(schedule)) - 1]),
        last_status_code=status_code,
        last_error=error,
    )
    return DS.FAILED if final else DS.PENDING


def deliveries_sweep(*, limit: int = 500) -> int:
    """Beat: hand the worker every due pending delivery of an active endpoint (a lost
    message, a retry whose time has come). The claim in `delivery_attempt` makes a
    duplicate message harmless."""
    ids = list(
        WebhookDelivery.objects.filter(
            status=DS.PENDING, next_attempt_at__lte=timezone.now(), endpoint__disabled_at__isnull=True
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    deliveries_enqueue(ids)
    return len(ids)


@transaction.atomic(durable=True)
def deliveries_retry(*, delivery_ids, actor) -> int:
    """Staff: send these deliveries again now (one more attempt for a failed one)."""
    if actor is None or not actor.has_perm(RETRY_PERMISSION):
        raise PermissionDenied("You may not retry webhook deliveries.")
    ids = list(WebhookDelivery.objects.filter(pk__in=list(delivery_ids)).values_list("pk", flat=True))
    WebhookDelivery.objects.filter(pk__in=ids).exclude(status=DS.DELIVERED).update(
        status=DS.PENDING, next_attempt_at=timezone.now()
    )
    retried = list(WebhookDelivery.objects.filter(pk__in=ids, status=DS.PENDING).values_list("pk", flat=True))
    audit_record(actor=actor, action="webhooks.delivery_retried", after={"deliveries": retried})
    transaction.on_commit(lambda: deliveries_enqueue(retried))
    return len(retried)
