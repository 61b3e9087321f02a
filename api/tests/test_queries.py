"""The lists answer in a constant number of queries, whatever the number of rows (the
selectors' select_related, no per-row reads in the API's shaping)."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketplace.models import DistributionPayment, Holding, Market
from marketplace.services import order_place
from marketplace.tests.factories import OfferingFactory
from marketplace.tests.test_distributions import declare
from marketplace.tests.trading_helpers import give_units, place

pytestmark = pytest.mark.django_db


def rows(alice, bob, asset, fund, n):
    """n more of everything the lists show: assets with markets, deposits, primary
    orders, trade orders, trades, distribution payments, holdings."""
    for _ in range(n):
        offering = OfferingFactory()
        Market.objects.create(asset=offering.asset, currency="EUR", last_price_minor=10_500)
        fund(alice, 100_000)
        order_place(investor=alice, offering_id=offering.pk, quantity=1, idempotency_key=uuid.uuid4().hex)
        place(alice, asset, "buy", 1, 10_000)
        place(bob, asset, "sell", 1, 10_000)
        distribution = declare(offering.asset, offering.asset.issuer, gross=50_000)
        DistributionPayment.objects.create(
            distribution=distribution,
            investor=alice,
            units=1,
            gross_minor=5,
            net_minor=5,
            status=DistributionPayment.Status.PAID,
            paid_at=timezone.now(),
        )


LISTS = [
    ("/api/v1/assets", "items"),
    ("/api/v1/me/cash-movements", "items"),
    ("/api/v1/me/orders", "items"),
    ("/api/v1/me/trade-orders", "items"),
    ("/api/v1/me/trades", "items"),
    ("/api/v1/me/distributions", "items"),
    ("/api/v1/me/portfolio", "holdings"),
]


def counts(api, paths):
    out = {}
    for path, key in paths:
        with CaptureQueriesContext(connection) as queries:
            response = api.get(path, {"limit": "100"} if key == "items" else {})
        assert response.status_code == 200, response.content
        out[path] = (len(response.json()[key]), len(queries))
    return out


def test_list_query_counts_do_not_grow_with_rows(alice, bob, alice_api, asset, fund):
    fund(alice, 10_000_000)
    give_units(bob, asset, 1_000)
    paths = LISTS + [(f"/api/v1/assets/{asset.public_id}/trades", "items")]
    rows(alice, bob, asset, fund, 2)
    alice_api.get("/api/v1/me/portfolio")  # the token's last-used stamp, once a minute
    two = counts(alice_api, paths)
    rows(alice, bob, asset, fund, 18)
    twenty = counts(alice_api, paths)
    for path, _key in paths:
        (n2, q2), (n20, q20) = two[path], twenty[path]
        assert n20 > n2 >= 2, (path, n2, n20)
        assert q20 == q2, (path, q2, q20)
    assert Holding.objects.filter(investor=alice).count() >= 20
