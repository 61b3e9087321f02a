"""Matching: price-time priority at the resting price, partial and multi-level fills,
IOC and FOK, self-trade prevention, ineligible resting orders, fees and the postings of
each trade (database only; the outbox rows are written, not sent)."""

import pytest
from django.core import mail

from compliance.services import investor_freeze
from marketplace.models import Holding, Market, Trade, TradeOrder
from marketplace.trading_selectors import last_price, order_book

from .factories import OfferingFactory, verified_investor
from .trading_helpers import books_sound, cash, fees, give_units, place, units

pytestmark = pytest.mark.django_db

FUNDS = 10_000_000  # 100,000.00 EUR each


@pytest.fixture(autouse=True)
def rates(settings):
    settings.MARKETPLACE_MAKER_FEE_BPS = 10
    settings.MARKETPLACE_TAKER_FEE_BPS = 25
    settings.MARKETPLACE_TRADE_ORDER_RATE = (1000, 60)
    settings.MARKETPLACE_MAX_OPEN_ORDERS_PER_ASSET = 20
    settings.MARKETPLACE_PRICE_CHECKS = []


@pytest.fixture
def asset(db):
    return OfferingFactory().asset


@pytest.fixture
def people(fund, asset):
    """Four verified investors, each with 100,000.00 EUR and 100 settled units."""

    def make():
        user = verified_investor()
        fund(user, FUNDS)
        give_units(user, asset, 100)
        return user

    return [make() for _ in range(4)]


def test_price_time_priority_at_the_resting_price(asset, people):
    a, b, c, buyer = people
    ask_a = place(a, asset, "sell", 2, 10_000)  # first at 100.00
    ask_b = place(b, asset, "sell", 2, 10_000)  # second at 100.00
    ask_c = place(c, asset, "sell", 1, 9_900)  # best price, latest
    # When a buy for 3 at up to 101.00 arrives
    bid = place(buyer, asset, "buy", 3, 10_100)
    # Then it takes the best price first, then the earlier order at the next level
    trades = list(Trade.objects.order_by("pk"))
    assert [(t.sell_order_id, t.quantity, t.price_minor) for t in trades] == [
        (ask_c.pk, 1, 9_900),
        (ask_a.pk, 2, 10_000),
    ]
    assert all(t.maker_side == "sell" and t.buyer_id == buyer.pk for t in trades)
    for order, expected in ((ask_a, ("filled", 2, 0)), (ask_b, ("open", 0, 2)), (ask_c, ("filled", 1, 0))):
        order.refresh_from_db()
        assert (order.status, order.filled_quantity, order.remaining_quantity) == expected
    assert (bid.status, bid.filled_quantity, bid.reserved_minor) == ("filled", 3, 0)
    # The buyer paid the resting prices plus the taker fee (rounded down), the rest is free again
    gross = 9_900 + 20_000
    cost = gross + (9_900 * 25 // 10_000) + (20_000 * 25 // 10_000)
    assert cash(buyer) == (FUNDS - cost, 0)
    assert last_price(market=Market.objects.get(asset=asset)) == 10_000
    books_sound()


def test_partial_fill_keeps_the_rest_resting_and_moves_units(asset, people):
    seller, buyer = people[0], people[1]
    ask = place(seller, asset, "sell", 10, 10_000)
    bid = place(buyer, asset, "buy", 4, 10_000)
    ask.refresh_from_db()
    assert (ask.status, ask.filled_quantity, ask.remaining_quantity) == ("open", 4, 6)
    assert bid.status == "filled"
    # seller: 100 settled, 6 still locked, 4 settling out; buyer: 4 pending in
    assert units(seller, asset) == (100, 0, 6, 4, 90)
    assert units(buyer, asset) == (100, 4, 0, 0, 100)
    trade = Trade.objects.get()
    # seller is maker (10 bps), buyer taker (25 bps): fees on 400.00 are 0.40 and 1.00
    assert (trade.seller_fee_minor, trade.buyer_fee_minor) == (40, 100)
    assert cash(seller) == (FUNDS, 40_000 - 40)  # proceeds held until the delivery confirms
    assert cash(buyer) == (FUNDS - 40_100, 0)
    assert fees() == 140
    book = order_book(market=trade.market)
    assert [(lvl.price_minor, lvl.quantity, lvl.orders) for lvl in book.asks] == [(10_000, 6, 1)] and not book.bids
    books_sound()


def test_an_order_crossing_several_levels_fills_level_by_level_and_rests(asset, people):
    s1, s2, s3, buyer = people
    place(s1, asset, "sell", 2, 10_000)
    place(s2, asset, "sell", 3, 10_100)
    place(s3, asset, "sell", 5, 10_200)
    bid = place(buyer, asset, "buy", 12, 10_100)
    assert [(t.price_minor, t.quantity) for t in Trade.objects.order_by("pk")] == [(10_000, 2), (10_100, 3)]
    assert (bid.status, bid.filled_quantity, bid.remaining_quantity) == ("open", 5, 7)
    # The rest holds exactly its own limit × 7 + the maximum fee
    assert bid.reserved_minor == 7 * 10_100 + -(-7 * 10_100 * 25 // 10_000)
    book = order_book(market=bid.market)
    assert (book.best_bid, book.best_ask) == (10_100, 10_200)
    books_sound()


def test_immediate_or_cancel_cancels_the_rest(asset, people):
    seller, buyer = people[0], people[1]
    place(seller, asset, "sell", 3, 10_000)
    bid = place(buyer, asset, "buy", 5, 10_000, tif="ioc")
    assert (bid.status, bid.filled_quantity, bid.remaining_quantity, bid.cancel_code) == (
        "cancelled",
        3,
        2,
        "ioc_remainder",
    )
    assert bid.reserved_minor == 0 and cash(buyer)[1] == 0
    nothing = place(buyer, asset, "buy", 5, 9_000, tif="ioc")
    assert (nothing.status, nothing.filled_quantity) == ("cancelled", 0)
    ask = place(seller, asset, "sell", 5, 11_000, tif="ioc")  # within the ±20 % band around 100.00
    assert ask.status == "cancelled" and units(seller, asset)[2] == 0
    books_sound()


def test_fill_or_kill_is_all_or_nothing(asset, people):
    s1, s2, buyer, _ = people
    place(s1, asset, "sell", 3, 10_000)
    place(s2, asset, "sell", 2, 10_100)
    killed = place(buyer, asset, "buy", 6, 10_100, tif="fok")
    assert (killed.status, killed.filled_quantity, killed.cancel_code) == ("cancelled", 0, "fok_not_filled")
    assert not Trade.objects.exists() and cash(buyer) == (FUNDS, 0)
    filled = place(buyer, asset, "buy", 5, 10_100, tif="fok")
    assert (filled.status, filled.filled_quantity) == ("filled", 5)
    assert Trade.objects.count() == 2
    books_sound()


def test_self_trade_cancels_the_rest_of_the_incoming_order(asset, people):
    me, other = people[0], people[1]
    theirs = place(other, asset, "sell", 2, 9_900)
    mine = place(me, asset, "sell", 4, 10_000)
    behind = place(other, asset, "sell", 4, 10_000)  # same price, later
    bid = place(me, asset, "buy", 5, 10_000)
    # It traded with the other investor's better ask, then met its owner's ask and stopped
    assert [(t.sell_order_id, t.quantity) for t in Trade.objects.all()] == [(theirs.pk, 2)]
    assert (bid.status, bid.filled_quantity, bid.remaining_quantity, bid.cancel_code) == (
        "cancelled",
        2,
        3,
        "self_trade",
    )
    assert "self-trade" in bid.cancel_reason
    mine.refresh_from_db()
    behind.refresh_from_db()
    assert (mine.status, mine.remaining_quantity, behind.remaining_quantity) == ("open", 4, 4)
    assert not Trade.objects.filter(buyer=me, seller=me).exists()
    books_sound()


def test_a_resting_order_whose_owner_is_frozen_is_cancelled_and_matching_goes_on(
    asset, people, staff, django_capture_on_commit_callbacks
):
    frozen, good, buyer, _ = people
    stale = place(frozen, asset, "sell", 5, 9_900)
    fresh = place(good, asset, "sell", 5, 10_000)
    investor_freeze(user=frozen, actor=staff, reason="Sanctions review")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        bid = place(buyer, asset, "buy", 5, 10_000)
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.status, stale.cancel_code) == ("cancelled", "account_frozen")
    assert "frozen" in stale.cancel_reason
    assert units(frozen, asset) == (100, 0, 0, 0, 100)  # its units are free again
    assert (fresh.status, bid.status) == ("filled", "filled")
    assert Trade.objects.get().seller_id == good.pk
    recipients = sorted(m.to[0] for m in mail.outbox)
    assert recipients == sorted([frozen.email, good.email, buyer.email])  # cancelled, filled, filled
    books_sound()


def test_a_resting_buyer_over_the_max_holding_is_cancelled(asset, people, fund):
    asset.max_holding = 103
    asset.save(update_fields=["max_holding"])
    greedy, modest, seller, _ = people
    over = place(greedy, asset, "buy", 3, 10_000)  # fits now: 100 + 3
    Holding.objects.filter(investor=greedy, asset=asset).update(pending_quantity=2)  # a primary purchase meanwhile
    ok = place(modest, asset, "buy", 3, 9_900)
    place(seller, asset, "sell", 3, 9_900)
    over.refresh_from_db()
    ok.refresh_from_db()
    assert (over.status, over.cancel_code) == ("cancelled", "above_max_holding")
    assert ok.status == "filled" and cash(greedy)[1] == 0


def test_fees_are_bps_of_the_gross_rounded_down_and_conserve_every_cent(asset, people):
    seller, buyer = people[0], people[1]
    place(buyer, asset, "buy", 3, 10_001)  # resting bid: the buyer is the maker
    before_seller, before_buyer = cash(seller), cash(buyer)
    place(seller, asset, "sell", 3, 10_001)
    trade = Trade.objects.get()
    # gross 300.03: maker (buyer) 10 bps = 0.30003 → 0.30; taker (seller) 25 bps = 0.750075 → 0.75
    assert (trade.maker_side, trade.gross_minor, trade.buyer_fee_minor, trade.seller_fee_minor) == (
        "buy",
        30_003,
        30,
        75,
    )
    assert (trade.buyer_fee_bps, trade.seller_fee_bps) == (10, 25)
    # buyer: 300.03 + 0.76 held (the taker rate, rounded up) → pays 300.33, gets 0.46 back
    assert cash(buyer) == (before_buyer[0] + 30_079 - 30_033, 0)
    assert cash(seller) == (before_seller[0], 30_003 - 75)
    assert fees() == 105
    total = sum(sum(cash(u)) for u in people) + fees()
    assert total == 4 * FUNDS
    books_sound()


def test_a_fill_mails_once_per_order_not_per_partial_fill(asset, people, django_capture_on_commit_callbacks):
    seller, b1, b2, _ = people
    ask = place(seller, asset, "sell", 6, 10_000)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        place(b1, asset, "buy", 2, 10_000)
        place(b1, asset, "buy", 2, 10_000)
    assert [m.to[0] for m in mail.outbox] == [b1.email, b1.email]  # the two buys filled; the ask only partially
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        place(b2, asset, "buy", 2, 10_000)
    ask.refresh_from_db()
    assert ask.status == "filled"
    assert sorted(m.to[0] for m in mail.outbox) == sorted([seller.email, b2.email])
    assert "filled" in mail.outbox[0].subject.lower()


def test_the_book_never_rests_crossed(asset, people):
    a, b, c, d = people
    for user, side, q, price in [
        (a, "sell", 5, 10_500),
        (b, "buy", 5, 9_500),
        (c, "buy", 3, 10_600),
        (d, "sell", 4, 9_400),
        (a, "buy", 2, 10_000),
        (b, "sell", 9, 9_000),
    ]:
        place(user, asset, side, q, price)
        book = order_book(market=Market.objects.get(asset=asset))
        assert book.best_bid is None or book.best_ask is None or book.best_bid < book.best_ask
    assert TradeOrder.objects.filter(status="filled").exists()
    books_sound()


def test_a_due_good_till_date_order_expires_instead_of_trading(asset, people):
    import datetime

    from django.utils import timezone

    buyer, seller, late, _ = people
    due = place(buyer, asset, "buy", 2, 10_000, tif="gtd", expires_at=timezone.now() + datetime.timedelta(hours=1))
    TradeOrder.objects.filter(pk=due.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    behind = place(late, asset, "buy", 2, 9_900)
    place(seller, asset, "sell", 2, 9_900)
    due.refresh_from_db()
    behind.refresh_from_db()
    assert (due.status, due.cancel_code, due.reserved_minor) == ("expired", "expired", 0)
    assert behind.status == "filled" and Trade.objects.get().buyer_id == late.pk
    assert cash(buyer) == (FUNDS, 0)
    books_sound()
