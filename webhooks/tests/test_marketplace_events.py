"""The marketplace's changes record their events (docs/webhooks.md lists where)."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from marketplace.models import Trade
from marketplace.services import deposit_record
from marketplace.tests.factories import OfferingFactory, verified_investor
from marketplace.tests.trading_helpers import confirm, give_units, place
from marketplace.trading import trade_order_cancel
from webhooks import services
from webhooks.events import event_record_many
from webhooks.models import EventKind, WebhookDelivery, WebhookEvent

pytestmark = pytest.mark.django_db


def kinds(user) -> list[str]:
    return list(WebhookEvent.objects.filter(user=user).order_by("pk").values_list("kind", flat=True))


def test_a_trade_reports_acceptance_fill_cancellation_and_settlement_to_each_side(staff, receiver, platform_accounts):
    asset = OfferingFactory().asset
    buyer, seller = verified_investor(), verified_investor()
    give_units(seller, asset, 100)
    for n, user in enumerate((buyer, seller)):
        services.endpoint_create(user=user, url=receiver.url, events=EventKind.values)
        deposit_record(investor=user, amount_minor=10**7, currency="EUR", bank_reference=f"T-{n}", actor=staff)
    sell = place(seller, asset, "sell", 5, 10_000)
    buy = place(buyer, asset, "buy", 3, 10_000)
    trade_order_cancel(order=sell, actor=seller)
    confirm(Trade.objects.get())

    assert kinds(buyer) == ["deposit.booked", "order.accepted", "order.filled", "trade.settled"]
    assert kinds(seller) == ["deposit.booked", "order.accepted", "order.cancelled", "trade.settled"]
    filled = WebhookEvent.objects.get(user=buyer, kind="order.filled").payload
    assert filled["order"] == str(buy.public_id) and filled["filled_quantity"] == 3 and filled["status"] == "filled"
    cancelled = WebhookEvent.objects.get(user=seller, kind="order.cancelled").payload
    assert cancelled["order"] == str(sell.public_id) and cancelled["remaining_quantity"] == 2
    bought = WebhookEvent.objects.get(user=buyer, kind="trade.settled").payload
    sold = WebhookEvent.objects.get(user=seller, kind="trade.settled").payload
    assert (bought["side"], sold["side"], bought["quantity"], bought["trade"]) == ("buy", "sell", 3, sold["trade"])
    assert bought["cash_minor"] < 0 < sold["cash_minor"]
    assert WebhookDelivery.objects.count() == WebhookEvent.objects.count()


def test_events_for_a_batch_cost_the_same_statements_whatever_its_size(receiver):
    def statements(n: int) -> int:
        users = [verified_investor() for _ in range(n)]
        for user in users:
            services.endpoint_create(user=user, url=receiver.url, events=["distribution.paid"])
        with CaptureQueriesContext(connection) as ctx, transaction.atomic():
            event_record_many(kind="distribution.paid", items=[(u.pk, {"net_minor": 1}) for u in users])
        return len([q for q in ctx.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))])

    assert statements(2) == statements(20) == 3


def test_a_distribution_reports_each_paid_holder_with_an_endpoint(staff, receiver, platform_accounts):
    import datetime
    import uuid

    from django.utils import timezone

    from marketplace import distributions as dist
    from marketplace.models import Distribution, DistributionPayment
    from marketplace.services import order_place
    from marketplace.tests.factories import StaffFactory

    offering = OfferingFactory()
    a, b = verified_investor(), verified_investor()
    for n, (user, quantity) in enumerate(((a, 100), (b, 50))):
        deposit_record(investor=user, amount_minor=10**7, currency="EUR", bank_reference=f"D-{n}", actor=staff)
        order_place(investor=user, offering_id=offering.pk, quantity=quantity, idempotency_key=uuid.uuid4().hex)
    services.endpoint_create(user=a, url=receiver.url, events=["distribution.paid"])
    today = timezone.localdate()
    d = dist.distribution_declare(
        asset=offering.asset,
        actor=offering.asset.issuer,
        kind=Distribution.Kind.RENT,
        gross_minor=100_000,
        currency="EUR",
        period_start=today - datetime.timedelta(days=30),
        period_end=today,
        record_at=timezone.now(),
        payment_date=today,
    )
    approver, payer = StaffFactory(), StaffFactory()
    dist.distribution_approve(distribution=d, actor=approver)
    dist.distribution_fund(
        distribution=d, actor=payer, amount_minor=100_000, source=dist.FUND_BY_DEPOSIT, bank_reference="RENT"
    )
    dist.distribution_pay(distribution=d, actor=payer)
    (event,) = WebhookEvent.objects.filter(kind="distribution.paid")
    share = DistributionPayment.objects.get(distribution=d, investor=a)
    assert event.user == a
    assert event.payload["distribution"] == str(d.public_id)
    assert (event.payload["gross_minor"], event.payload["net_minor"]) == (share.gross_minor, share.net_minor)
