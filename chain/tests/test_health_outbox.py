"""chain.health.check_outbox in /readyz: rows that wait while no worker takes tasks."""

import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from chain import heartbeat
from chain.health import SettlementStalled, check_outbox
from chain.models import ChainTransaction

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_heartbeat(settings):
    settings.CHAIN_WORKER_STALL_SECONDS = 60
    settings.READINESS_CHECKS = {"settlement": "chain.health.check_outbox"}  # this check alone
    cache.delete(heartbeat.HEARTBEAT_KEY)
    yield
    cache.delete(heartbeat.HEARTBEAT_KEY)


def pending_row(age_seconds: float, status=ChainTransaction.Status.PENDING) -> ChainTransaction:
    row = ChainTransaction.objects.create(
        kind=ChainTransaction.Kind.ASSET_TRANSFER,
        payload={"asset_id": 1, "sender": "A", "receiver": "B", "amount": 1},
        idempotency_key=f"health-{age_seconds}-{status}",
        status=status,
    )
    ChainTransaction.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(seconds=age_seconds))
    return row


def test_old_pending_rows_without_a_worker_heartbeat_are_503_with_the_age(client):
    from accounts.tests.factories import UserFactory

    pending_row(600)
    pending_row(30)

    public = client.get(reverse("readyz"))
    assert public.status_code == 503
    assert public.json()["checks"]["settlement"]["detail"] == "SettlementStalled (see the server log)"

    client.force_login(UserFactory(is_staff=True))
    staff = client.get(reverse("readyz"))
    detail = staff.json()["checks"]["settlement"]["detail"]
    assert staff.status_code == 503
    assert "oldest pending outbox row is 600s old" in detail or "oldest pending outbox row is 601s old" in detail
    assert "last seen never" in detail


def test_a_stale_heartbeat_is_a_stall_too():
    pending_row(600, status=ChainTransaction.Status.SUBMITTED)
    heartbeat.worker_heartbeat_record(time.time() - 120)

    with pytest.raises(SettlementStalled, match=r"last seen 12\ds ago"):
        check_outbox()


def test_a_fresh_heartbeat_is_ok_and_reports_the_oldest_age(client):
    pending_row(600)
    heartbeat.worker_heartbeat_record()

    response = client.get(reverse("readyz"))

    assert response.status_code == 200
    assert response.json()["checks"]["settlement"]["detail"] == "reachable"  # the public sees only the status
    assert check_outbox().startswith("oldest pending outbox row 60")


def test_young_rows_or_none_are_ok_without_a_heartbeat(client):
    assert check_outbox() == "no pending outbox rows; worker last seen never"
    pending_row(10)
    assert client.get(reverse("readyz")).status_code == 200


def test_finished_rows_do_not_count():
    pending_row(600, status=ChainTransaction.Status.CONFIRMED)
    pending_row(700, status=ChainTransaction.Status.FAILED)
    assert check_outbox() == "no pending outbox rows; worker last seen never"


def test_a_task_started_by_a_worker_records_the_heartbeat():
    class Request:
        is_eager = False

    class Task:
        request = Request()

    heartbeat._beat_on_task(task=Task())
    age = heartbeat.worker_heartbeat_age()
    assert age is not None and age < 5

    cache.delete(heartbeat.HEARTBEAT_KEY)
    Request.is_eager = True
    heartbeat._beat_on_task(task=Task())
    assert heartbeat.worker_heartbeat_age() is None
