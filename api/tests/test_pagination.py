"""Keyset pagination: pages follow `next`, never repeat or skip a row when rows are
inserted between two requests (no OFFSET), break ties on the primary key, and refuse a
cursor that the list did not give out."""

import base64
import json

import pytest
from django.utils import timezone

from marketplace.models import TradeOrder
from marketplace.tests.factories import OfferingFactory
from marketplace.tests.trading_helpers import place

from .helpers import assert_problem

pytestmark = pytest.mark.django_db


def walk(api, url, params):
    seen, pages = [], 0
    response = api.get(url, params).json()
    while True:
        pages += 1
        seen.extend(item["public_id"] for item in response["items"])
        if response["next"] is None:
            return seen, pages
        response = api.get(response["next"]).json()


def test_pages_stay_stable_when_rows_are_inserted_between_them(alice, alice_api, asset, fund):
    fund(alice, 10_000_000)
    first_five = [place(alice, asset, "buy", 1, 5_000 + i) for i in range(5)]
    page = alice_api.get("/api/v1/me/trade-orders", {"limit": 2}).json()
    assert [o["public_id"] for o in page["items"]] == [str(o.public_id) for o in first_five[::-1][:2]]
    newer = [place(alice, asset, "buy", 1, 6_000 + i) for i in range(3)]
    rest = []
    link = page["next"]
    while link:
        page = alice_api.get(link).json()
        rest.extend(o["public_id"] for o in page["items"])
        link = page["next"]
    assert rest == [str(o.public_id) for o in first_five[::-1][2:]]
    assert not set(rest) & {str(o.public_id) for o in newer}
    # A fresh walk sees everything once.
    seen, pages = walk(alice_api, "/api/v1/me/trade-orders", {"limit": 3})
    assert len(seen) == len(set(seen)) == 8 and pages == 3


def test_ties_on_the_time_are_broken_by_the_primary_key(alice, alice_api, asset, fund):
    fund(alice, 10_000_000)
    orders = [place(alice, asset, "buy", 1, 5_000 + i) for i in range(7)]
    TradeOrder.objects.filter(pk__in=[o.pk for o in orders]).update(created_at=timezone.now())
    seen, pages = walk(alice_api, "/api/v1/me/trade-orders", {"limit": 2})
    assert seen == [str(o.public_id) for o in sorted(orders, key=lambda o: -o.pk)] and pages == 4


def test_assets_paginate_by_newest_registration(anon_api, platform_accounts):
    offerings = [OfferingFactory() for _ in range(5)]
    seen, pages = walk(anon_api, "/api/v1/assets", {"limit": 2})
    assert seen == [str(o.asset.public_id) for o in offerings[::-1]] and pages == 3


def test_next_keeps_the_limit_and_is_absolute(alice, alice_api, asset, fund):
    fund(alice)
    for i in range(3):
        place(alice, asset, "buy", 1, 5_000 + i)
    link = alice_api.get("/api/v1/me/trade-orders", {"limit": 1}).json()["next"]
    assert link.startswith("http://testserver/api/v1/me/trade-orders?limit=1&cursor=")


def _cursor(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "%%%",
        _cursor({"l": "assets", "k": [1]}),  # another list's cursor
        _cursor({"l": "trade_orders", "k": ["2025-01-01T00:00:00", 1]}),  # naive time
        _cursor({"l": "trade_orders", "k": ["2025-01-01T00:00:00+00:00", -1]}),
        _cursor({"l": "trade_orders", "k": ["2025-01-01T00:00:00+00:00", 2**70]}),
        _cursor({"l": "trade_orders", "k": ["2025-01-01T00:00:00+00:00", True]}),
        _cursor({"l": "trade_orders", "k": [1, 1]}),
        _cursor({"l": "trade_orders", "k": ["x" * 30, 1]}),
        _cursor({"l": "trade_orders", "k": ["2025-01-01T00:00:00+00:00"]}),
        _cursor([1, 2]),
        _cursor({"l": "trade_orders", "k": "\x00"}),
        "A" * 301,
    ],
)
def test_a_cursor_the_list_did_not_give_out_is_422(alice_api, cursor):
    body = assert_problem(alice_api.get("/api/v1/me/trade-orders", {"cursor": cursor}), 422, "validation")
    assert body["errors"][0]["field"] == "cursor" and body["errors"][0]["location"] == "query"


@pytest.mark.parametrize("limit", ["0", "101", "-1", "1.5", "1e2", "abc", "", "١٠"])
def test_limit_is_1_to_100(alice_api, limit):
    body = assert_problem(alice_api.get("/api/v1/me/trade-orders", {"limit": limit}), 422, "validation")
    assert body["errors"][0]["field"] == "limit"
