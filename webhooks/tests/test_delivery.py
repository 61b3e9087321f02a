"""Sending: signature, retries with backoff, giving up, disabling a failing endpoint."""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from webhooks import services
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


def verify(secret: str, headers: dict, body: bytes, tolerance: int = 300) -> bool:
    """The receiver's check, as docs/webhooks.md shows it."""
    timestamp = headers["Webhook-Timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, given) for given in headers["Webhook-Signature"].split())


def make_due(delivery: WebhookDelivery) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_a_delivery_is_signed_and_the_receiver_can_verify_it(endpoint_with_secret, receiver, record):
    endpoint, secret = endpoint_with_secret
    delivery = record(endpoint, data={"amount_minor": 100, "currency": "EUR"})
    assert services.delivery_attempt(delivery_id=delivery.pk) == "delivered"
    (got,) = receiver.requests
    assert got.path == "/hooks/rwa?x=1"
    assert verify(secret, got.headers, got.body)
    assert not verify(secret, got.headers, got.body + b" ")
    assert not verify("whsec_wrong", got.headers, got.body)
    document = json.loads(got.body)
    assert document == {
        "id": str(delivery.event.public_id),
        "type": "deposit.booked",
        "created": delivery.event.created_at.isoformat(),
        "data": {"amount_minor": 100, "currency": "EUR"},
    }
    assert got.headers["Webhook-Id"] == str(delivery.event.public_id)
    assert got.headers["Content-Type"] == "application/json"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert services.delivery_attempt(delivery_id=delivery.pk) is None  # delivered: never sent again


def test_a_failing_delivery_is_retried_with_backoff_and_keeps_its_event_id(endpoint_with_secret, receiver, record):
    endpoint, secret = endpoint_with_secret
    receiver.statuses = [500, 503, 200]
    delivery = record(endpoint)
    before = timezone.now()
    assert services.delivery_attempt(delivery_id=delivery.pk) == "pending"
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (1, 500, "HTTP 500")
    assert before + timedelta(seconds=29) < delivery.next_attempt_at < timezone.now() + timedelta(seconds=31)
    assert services.delivery_attempt(delivery_id=delivery.pk) is None  # not due yet: nothing sent
    assert len(receiver.requests) == 1

    make_due(delivery)
    assert services.delivery_attempt(delivery_id=delivery.pk) == "pending"
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert timezone.now() + timedelta(seconds=119) < delivery.next_attempt_at < timezone.now() + timedelta(seconds=121)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).consecutive_failures == 2

    make_due(delivery)
    assert services.delivery_attempt(delivery_id=delivery.pk) == "delivered"
    assert [r.headers["Webhook-Id"] for r in receiver.requests] == [str(delivery.event.public_id)] * 3
    assert len({r.body for r in receiver.requests}) == 1
    assert all(verify(secret, r.headers, r.body) for r in receiver.requests)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).consecutive_failures == 0


def test_a_delivery_fails_for_good_after_the_last_attempt(endpoint_with_secret, receiver, record, settings):
    endpoint, _ = endpoint_with_secret
    receiver.statuses = [500]
    delivery = record(endpoint)
    outcomes = []
    for _ in range(settings.WEBHOOKS_MAX_ATTEMPTS):
        make_due(delivery)
        outcomes.append(services.delivery_attempt(delivery_id=delivery.pk))
    assert outcomes == ["pending"] * (settings.WEBHOOKS_MAX_ATTEMPTS - 1) + ["failed"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 6, None)


def test_an_unreachable_endpoint_is_a_failed_attempt_with_the_error(user, record, settings):
    endpoint, _ = services.endpoint_create(user=user, url="http://127.0.0.1:9/nothing", events=["deposit.booked"])
    delivery = record(endpoint)
    assert services.delivery_attempt(delivery_id=delivery.pk) == "pending"
    delivery.refresh_from_db()
    assert delivery.last_status_code is None and "ConnectionRefused" in delivery.last_error


def test_an_endpoint_failing_n_times_in_a_row_is_disabled_and_its_owner_mailed(
    endpoint_with_secret, receiver, record, settings, mailoutbox, django_capture_on_commit_callbacks, monkeypatch
):
    settings.WEBHOOKS_DISABLE_AFTER_FAILURES = 3
    monkeypatch.setattr("webhooks.tasks.deliver.delay", lambda pk: None)
    endpoint, _ = endpoint_with_secret
    receiver.statuses = [500]
    deliveries = [record(endpoint) for _ in range(4)]
    with django_capture_on_commit_callbacks(execute=True):
        for delivery in deliveries[:3]:
            services.delivery_attempt(delivery_id=delivery.pk)
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is not None and "3 deliveries in a row failed" in endpoint.disabled_reason
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [endpoint.user.email]
    assert "disabled" in mailoutbox[0].subject and str(endpoint.public_id) in mailoutbox[0].body
    # Nothing more is sent to it, by the task or the sweeper ...
    assert services.delivery_attempt(delivery_id=deliveries[3].pk) is None
    assert services.deliveries_sweep() == 0
    assert len(receiver.requests) == 3
    # ... until its owner enables it again: the pending deliveries resume.
    receiver.statuses = [200]
    services.endpoint_enable(endpoint=endpoint)
    assert services.delivery_attempt(delivery_id=deliveries[3].pk) == "delivered"


def test_the_sweeper_hands_over_due_pending_deliveries_only(endpoint_with_secret, record, monkeypatch):
    endpoint, _ = endpoint_with_secret
    sent = []
    monkeypatch.setattr("webhooks.tasks.deliver.delay", sent.append)
    due, later = record(endpoint), record(endpoint)
    WebhookDelivery.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    assert services.deliveries_sweep() == 1 and sent == [due.pk]


def test_staff_retry_needs_the_permission(endpoint_with_secret, record, monkeypatch):
    from django.contrib.auth.models import Permission
    from django.core.exceptions import PermissionDenied

    from accounts.tests.factories import UserFactory

    staff = UserFactory(is_staff=True, roles=[])

    monkeypatch.setattr("webhooks.tasks.deliver.delay", lambda pk: None)
    endpoint, _ = endpoint_with_secret
    delivery = record(endpoint)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", attempts=6, next_attempt_at=None)
    with pytest.raises(PermissionDenied):
        services.deliveries_retry(delivery_ids=[delivery.pk], actor=staff)
    staff.user_permissions.add(Permission.objects.get(codename="retry_webhookdelivery"))
    staff = type(staff).objects.get(pk=staff.pk)  # fresh permission cache
    assert services.deliveries_retry(delivery_ids=[delivery.pk], actor=staff) == 1
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at is not None
