import pytest
from django.db import transaction

from marketplace.tests.factories import StaffFactory, verified_investor
from webhooks import services
from webhooks.events import event_record
from webhooks.models import WebhookDelivery

from .receiver import Receiver


@pytest.fixture
def user(db):
    return verified_investor()


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def endpoint_with_secret(user, receiver):
    return services.endpoint_create(user=user, url=receiver.url, events=["deposit.booked", "order.accepted"])


@pytest.fixture
def record():
    """Record one event for the endpoint's user as a service would; its delivery."""

    def record(endpoint, kind="deposit.booked", data=None) -> WebhookDelivery:
        with transaction.atomic():
            event_record(user_id=endpoint.user_id, kind=kind, data=data or {"amount_minor": 100, "currency": "EUR"})
        return WebhookDelivery.objects.filter(endpoint=endpoint).select_related("event").latest("pk")

    return record


@pytest.fixture
def staff(db):
    return StaffFactory()


@pytest.fixture
def platform_accounts(db):
    from chain.services import platform_accounts_ensure

    return {account.role: account for account, _ in platform_accounts_ensure()}
