"""The public operations: live assets with their offering terms, one asset, its order
book (the trade page's selector) and its trades, cursor-paginated."""

import pytest

from assets.models import Asset
from marketplace.tests.factories import OfferingFactory
from marketplace.tests.trading_helpers import give_units, place

from .helpers import assert_problem

pytestmark = pytest.mark.django_db


def test_assets_lists_live_assets_with_offering_terms(anon_api, offering, platform_accounts):
    draft = OfferingFactory(asset__status=Asset.Status.DRAFT)
    response = anon_api.get("/api/v1/assets")
    assert response.status_code == 200 and response["Content-Type"] == "application/json; charset=utf-8"
    items = response.json()["items"]
    assert [i["public_id"] for i in items] == [str(offering.asset.public_id)]
    item = items[0]
    assert item["offering"]["price_per_fraction_minor"] == 10_000 and item["offering"]["currency"] == "EUR"
    assert item["offering"]["status"] == "open" and item["offering"]["remaining"] == 1_000
    assert item["market"] is None and item["funded_pct"] == 0
    assert_problem(anon_api.get(f"/api/v1/assets/{draft.asset.public_id}"), 404, "not-found")


def test_one_asset(anon_api, asset):
    body = anon_api.get(f"/api/v1/assets/{asset.public_id}").json()
    assert body["name"] == asset.name and body["total_fractions"] == asset.total_fractions


def test_book_aggregates_levels_best_first(anon_api, asset, fund, alice, bob):
    assert anon_api.get(f"/api/v1/assets/{asset.public_id}/book").json()["bids"] == []
    fund(alice)
    give_units(bob, asset, 50)
    place(alice, asset, "buy", 2, 9_000)
    place(alice, asset, "buy", 3, 9_000)
    place(alice, asset, "buy", 1, 9_500)
    place(bob, asset, "sell", 4, 11_000)
    book = anon_api.get(f"/api/v1/assets/{asset.public_id}/book").json()
    assert book["bids"] == [
        {"price_minor": 9_500, "quantity": 1, "orders": 1},
        {"price_minor": 9_000, "quantity": 5, "orders": 2},
    ]
    assert book["asks"] == [{"price_minor": 11_000, "quantity": 4, "orders": 1}]
    assert (book["best_bid_minor"], book["best_ask_minor"], book["spread_minor"]) == (9_500, 11_000, 1_500)
    assert book["currency"] == "EUR" and book["halted"] is False


def test_trades_newest_first_without_parties(anon_api, asset, fund, alice, bob):
    fund(alice)
    give_units(bob, asset, 50)
    for price in (10_000, 10_100, 10_200):
        place(alice, asset, "buy", 1, price)
        place(bob, asset, "sell", 1, price)
    body = anon_api.get(f"/api/v1/assets/{asset.public_id}/trades", {"limit": 2}).json()
    assert [t["price_minor"] for t in body["items"]] == [10_200, 10_100]
    assert set(body["items"][0]) == {"public_id", "quantity", "price_minor", "currency", "status", "created_at"}
    rest = anon_api.get(body["next"]).json()
    assert [t["price_minor"] for t in rest["items"]] == [10_000] and rest["next"] is None


@pytest.mark.parametrize("suffix", ["", "/book", "/trades"])
def test_unknown_or_malformed_ids_are_404_problems(anon_api, suffix):
    assert_problem(anon_api.get(f"/api/v1/assets/00000000-0000-0000-0000-000000000000{suffix}"), 404)
    assert_problem(anon_api.get(f"/api/v1/assets/not-a-uuid{suffix}"), 404)
