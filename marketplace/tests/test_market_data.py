"""Market data (marketplace/market_data.py): candles, change and volume with exact
integers, the batch figures of many assets, and query counts of the pages that show them
(catalogue cards, trade page fragment, portfolio) as trades and assets grow."""

import datetime
from datetime import UTC, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from marketplace import market_data
from marketplace.models import Trade
from marketplace.tests.factories import OfferingFactory, verified_investor
from marketplace.tests.trading_helpers import give_units, place

pytestmark = pytest.mark.django_db

TODAY = timezone.now().astimezone(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


@pytest.fixture(autouse=True)
def rates(settings):
    settings.MARKETPLACE_MAKER_FEE_BPS = 10
    settings.MARKETPLACE_TAKER_FEE_BPS = 25
    settings.MARKETPLACE_TRADE_ORDER_RATE = (10_000, 60)
    settings.MARKETPLACE_MAX_OPEN_ORDERS_PER_ASSET = 1000
    settings.MARKETPLACE_PRICE_CHECKS = []
    settings.MARKETPLACE_PRICE_BAND_PCT = 100


@pytest.fixture
def asset(platform_accounts):
    return OfferingFactory().asset


@pytest.fixture
def parties(asset, fund):
    buyer, seller = verified_investor(), verified_investor()
    fund(buyer, 100_000_000)
    give_units(seller, asset, 5_000)
    return buyer, seller


def trade(asset, parties, quantity, price, at: datetime.datetime) -> Trade:
    buyer, seller = parties
    place(seller, asset, "sell", quantity, price)
    order = place(buyer, asset, "buy", quantity, price)
    t = Trade.objects.filter(buy_order=order).get()
    Trade.objects.filter(pk=t.pk).update(created_at=at)
    return t


def test_candles_open_high_low_close_volume_per_utc_day(asset, parties):
    day1 = TODAY - timedelta(days=2)
    trade(asset, parties, 3, 10_001, day1.replace(hour=1))
    trade(asset, parties, 2, 10_250, day1.replace(hour=5))
    trade(asset, parties, 7, 9_999, day1.replace(hour=9))
    trade(asset, parties, 1, 10_100, day1.replace(hour=23, minute=59))
    trade(asset, parties, 4, 10_500, TODAY.replace(hour=0, minute=0, second=1))
    reversed_trade = trade(asset, parties, 9, 1, TODAY.replace(hour=2))
    Trade.objects.filter(pk=reversed_trade.pk).update(status=Trade.Status.REVERSED)

    candles = market_data.daily_candles(asset=asset)

    assert candles == [
        market_data.Candle(
            day1.date(), 10_001, 10_250, 9_999, 10_100, 13, 3 * 10_001 + 2 * 10_250 + 7 * 9_999 + 10_100
        ),
        market_data.Candle(TODAY.date(), 10_500, 10_500, 10_500, 10_500, 4, 42_000),
    ]


def test_change_against_previous_close_and_24_hour_volume(asset, parties):
    trade(asset, parties, 5, 10_000, TODAY - timedelta(days=3))
    trade(asset, parties, 2, 9_000, TODAY - timedelta(days=1, hours=6))  # yesterday: previous close
    trade(asset, parties, 3, 9_900, TODAY - timedelta(hours=20))  # inside 24 h (yesterday or today)
    trade(asset, parties, 4, 9_333, TODAY)  # the last price

    stats = market_data.market_stats(asset=asset, at=TODAY + timedelta(minutes=1))

    assert stats.last_price_minor == 9_333
    prev = 9_900 if (TODAY - timedelta(hours=20)).date() < TODAY.date() else 9_000
    assert stats.previous_close_minor == prev
    assert stats.change_minor == 9_333 - prev
    # Integer basis points, truncated toward zero.
    assert stats.change_bps == -((abs(9_333 - prev) * 10_000) // prev)
    assert stats.volume_24h == 3 + 4
    assert stats.gross_24h_minor == 3 * 9_900 + 4 * 9_333


def test_bps_arithmetic_is_exact():
    assert market_data.bps_change(1, 3) == 3333
    assert market_data.bps_change(-1, 3) == -3333
    assert market_data.bps_change(0, 7) == 0
    assert market_data.bps_change(2**62, 1) == 2**62 * 10_000  # no float anywhere
    assert market_data.format_bps_as_percent(1234) == "+12.34 %"
    assert market_data.format_bps_as_percent(-5) == "−0.05 %"
    assert market_data.format_bps_as_percent(0) == "0.00 %"


def test_spread_and_best_bid_ask_come_from_the_book(asset, parties):
    buyer, seller = parties
    place(buyer, asset, "buy", 1, 9_800)
    place(buyer, asset, "buy", 1, 9_900)
    place(seller, asset, "sell", 1, 10_100)
    stats = market_data.market_stats(asset=asset)
    assert (stats.best_bid_minor, stats.best_ask_minor, stats.spread_minor) == (9_900, 10_100, 200)
    assert stats.spread_bps == (200 * 2 * 10_000) // 20_000  # 200 bps of the mid


def test_no_market_gives_empty_figures(asset):
    stats = market_data.market_stats_many(asset_ids=[asset.pk])[asset.pk]
    assert stats.last_price_minor is None and stats.change_minor is None and stats.volume_24h == 0


def test_batch_figures_are_constant_in_assets(platform_accounts, fund):
    def add(n):
        made = []
        for _ in range(n):
            a = OfferingFactory().asset
            buyer, seller = verified_investor(), verified_investor()
            fund(buyer, 10_000_000)
            give_units(seller, a, 10)
            trade(a, (buyer, seller), 1, 10_000, TODAY - timedelta(days=1))
            trade(a, (buyer, seller), 1, 10_500, TODAY)
            made.append(a)
        return made

    few = add(1)
    with CaptureQueriesContext(connection) as small:
        market_data.market_stats_many(asset_ids=[a.pk for a in few])
    many = few + add(4)
    with CaptureQueriesContext(connection) as large:
        stats = market_data.market_stats_many(asset_ids=[a.pk for a in many])
    assert len(small.captured_queries) == len(large.captured_queries) == 3
    assert all(stats[a.pk].change_bps == 500 for a in many)


def _count(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(ctx.captured_queries), response.content.decode()


def test_catalogue_cards_show_last_price_and_change_in_constant_queries(client, platform_accounts, fund, settings):
    settings.CATALOGUE_CACHE_SECONDS = 0

    def add(n):
        for _ in range(n):
            a = OfferingFactory().asset
            buyer, seller = verified_investor(), verified_investor()
            fund(buyer, 10_000_000)
            give_units(seller, a, 10)
            trade(a, (buyer, seller), 1, 10_000, TODAY - timedelta(days=1))
            trade(a, (buyer, seller), 2, 10_250, TODAY)

    add(1)
    few, _ = _count(client, reverse("assets:catalogue"))
    add(4)
    many, html = _count(client, reverse("assets:catalogue"))
    assert many == few
    assert html.count("card-last-price") == 5 and html.count("+2.50 %") == 5


def test_a_trade_replaces_the_cached_catalogue(client, asset, parties, settings, django_capture_on_commit_callbacks):
    settings.CATALOGUE_CACHE_SECONDS = 300
    first = client.get(reverse("assets:catalogue")).content.decode()
    assert "card-last-price" not in first
    with django_capture_on_commit_callbacks(execute=True):
        trade(asset, parties, 1, 12_345, TODAY)
    assert "123.45 EUR" in client.get(reverse("assets:catalogue")).content.decode()


def test_trade_page_fragment_is_constant_in_trades(client, asset, parties):
    client.force_login(parties[0])
    url = reverse("marketplace:trade_market_data", args=[asset.public_id])
    trade(asset, parties, 1, 10_000, TODAY - timedelta(days=1))
    few, _ = _count(client, url)
    for i in range(6):
        trade(asset, parties, 1, 10_000 + i, TODAY - timedelta(hours=i))
    many, html = _count(client, url)
    assert many == few
    assert 'id="volume-24h"' in html and 'id="change"' in html and 'hx-preserve="true"' in html


def test_portfolio_values_at_last_price_and_valuation_with_totals(client, platform_accounts, fund):
    from assets.tests.factories import make_document
    from marketplace.valuations import valuation_publish

    from .factories import StaffFactory

    staff = StaffFactory()
    holder = verified_investor()
    client.force_login(holder)

    def add(n):
        for _ in range(n):
            a = OfferingFactory().asset
            buyer, seller = verified_investor(), verified_investor()
            fund(buyer, 10_000_000)
            give_units(seller, a, 10)
            trade(a, (buyer, seller), 1, 11_000, TODAY)
            give_units(holder, a, 3)
            valuation_publish(
                asset=a,
                actor=staff,
                value_per_fraction_minor=12_000,
                as_of=TODAY.date() - timedelta(days=1),
                document=make_document(a),
                note="",
            )

    add(1)
    client.get(reverse("marketplace:portfolio"))  # the first visit creates the payment reference (once)
    few, _ = _count(client, reverse("marketplace:portfolio"))
    add(3)
    many, html = _count(client, reverse("marketplace:portfolio"))
    assert many == few
    assert html.count('class="holding-valuation">120.00 EUR') == 4
    # 4 holdings × 3 units: 132.00 at the last price, 144.00 at the valuation.
    assert "1,320.00 EUR" in html and "1,440.00 EUR" in html
