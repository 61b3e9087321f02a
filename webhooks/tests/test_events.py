"""Events are recorded in the transaction of the change that causes them."""

import pytest
from django.db import transaction

from marketplace.services import deposit_book, deposit_record
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

pytestmark = pytest.mark.django_db


def test_a_deposit_records_its_event_and_a_pending_delivery_handed_over_after_commit(
    user, staff, endpoint_with_secret, django_capture_on_commit_callbacks, monkeypatch
):
    endpoint, _ = endpoint_with_secret
    sent = []
    monkeypatch.setattr("webhooks.tasks.deliver.delay", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        deposit_record(investor=user, amount_minor=12_345, currency="EUR", bank_reference="WH-1", actor=staff)
    event = WebhookEvent.objects.get()
    assert (event.user, event.kind) == (user, "deposit.booked")
    assert event.payload == {
        "object": "deposit",
        "bank_reference": "WH-1",
        "amount_minor": 12_345,
        "currency": "EUR",
    }
    delivery = WebhookDelivery.objects.get()
    assert (delivery.event, delivery.endpoint, delivery.status, delivery.attempts) == (event, endpoint, "pending", 0)
    assert sent == [delivery.pk]


def test_a_rolled_back_change_records_and_sends_nothing(
    user, staff, endpoint_with_secret, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr("webhooks.tasks.deliver.delay", sent.append)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            deposit_book(investor=user, amount_minor=500, currency="EUR", bank_reference="WH-2", actor=staff)
            assert WebhookEvent.objects.count() == 1  # written with the change ...
            raise RuntimeError("the change fails after the event was recorded")
    assert WebhookEvent.objects.count() == 0 and WebhookDelivery.objects.count() == 0  # ... and gone with it
    assert sent == []


def test_no_event_for_users_without_an_active_subscribed_endpoint(user, staff, receiver):
    other, _ = services.endpoint_create(user=user, url=receiver.url, events=["withdrawal.paid"])
    disabled, _ = services.endpoint_create(user=user, url=receiver.url, events=["deposit.booked"])
    services.endpoint_disable(endpoint=disabled)
    deposit_record(investor=user, amount_minor=100, currency="EUR", bank_reference="WH-3", actor=staff)
    assert WebhookEvent.objects.count() == 0


def test_the_cached_none_answer_gives_way_to_a_new_disabled_or_enabled_endpoint(user, staff, receiver, settings):
    """The per-user endpoint list is cached (webhooks/events.py): every write of an
    endpoint, by save() or by the services' UPDATEs, is seen by the very next event."""

    def deposit(ref: str) -> int:
        before = WebhookEvent.objects.count()
        deposit_record(investor=user, amount_minor=100, currency="EUR", bank_reference=ref, actor=staff)
        return WebhookEvent.objects.count() - before

    assert deposit("WH-C1") == 0  # "no endpoint" is now cached
    endpoint, _ = services.endpoint_create(user=user, url=receiver.url, events=["deposit.booked"])
    assert deposit("WH-C2") == 1
    services.endpoint_disable(endpoint=endpoint)
    assert deposit("WH-C3") == 0
    services.endpoint_enable(endpoint=endpoint)
    assert deposit("WH-C4") == 1
    endpoint.events = ["withdrawal.paid"]
    endpoint.save(update_fields=["events"])
    assert deposit("WH-C5") == 0
    endpoint.delete()
    assert deposit("WH-C6") == 0


def test_each_subscribed_endpoint_gets_one_delivery_of_the_same_event(user, staff, receiver):
    first, _ = services.endpoint_create(user=user, url=receiver.url, events=["deposit.booked"])
    second, _ = services.endpoint_create(user=user, url=receiver.url + "&second", events=["deposit.booked"])
    deposit_record(investor=user, amount_minor=100, currency="EUR", bank_reference="WH-4", actor=staff)
    event = WebhookEvent.objects.get()
    assert set(WebhookDelivery.objects.filter(event=event).values_list("endpoint", flat=True)) == {first.pk, second.pk}


def test_a_primary_purchase_records_order_accepted(user, staff, receiver, platform_accounts):
    from marketplace.services import order_place
    from marketplace.tests.factories import OfferingFactory

    services.endpoint_create(user=user, url=receiver.url, events=["order.accepted"])
    offering = OfferingFactory()
    deposit_record(investor=user, amount_minor=10**7, currency=offering.currency, bank_reference="WH-5", actor=staff)
    order = order_place(investor=user, offering_id=offering.pk, quantity=offering.min_purchase, idempotency_key="k1")
    event = WebhookEvent.objects.get(kind="order.accepted")
    assert event.payload["order"] == str(order.public_id) and event.payload["object"] == "primary_order"
    assert not WebhookEvent.objects.filter(kind="order.settled").exists()  # not subscribed yet
    endpoint = WebhookEndpoint.objects.get(user=user)
    endpoint.events = ["order.accepted", "order.settled"]
    endpoint.save(update_fields=["events"])

    from chain.models import ChainTransaction
    from marketplace.services import order_settlement_confirmed

    ChainTransaction.objects.filter(pk=order.chain_tx_id).update(status="confirmed", confirmed_round=42, txid="T" * 52)
    with transaction.atomic():
        order_settlement_confirmed(ChainTransaction.objects.get(pk=order.chain_tx_id))
    settled = WebhookEvent.objects.get(kind="order.settled")
    assert (settled.payload["order"], settled.payload["status"]) == (str(order.public_id), "settled")


def test_a_paid_withdrawal_records_withdrawal_paid(user, staff, receiver):
    from marketplace.services import withdrawal_approve, withdrawal_request
    from marketplace.tests.factories import usable_payout_account

    services.endpoint_create(user=user, url=receiver.url, events=["withdrawal.paid"])
    deposit_record(investor=user, amount_minor=5_000, currency="EUR", bank_reference="WH-6", actor=staff)
    withdrawal = withdrawal_request(
        investor=user, amount_minor=1_000, currency="EUR", payout_account=usable_payout_account(user)
    )
    assert not WebhookEvent.objects.exists()  # requested is not paid
    withdrawal_approve(withdrawal=withdrawal, actor=staff, bank_reference="OUT-1")
    event = WebhookEvent.objects.get()
    assert (event.kind, event.payload["withdrawal"], event.payload["amount_minor"]) == (
        "withdrawal.paid",
        str(withdrawal.public_id),
        1_000,
    )
