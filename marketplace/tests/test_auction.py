"""The periodic call auction on PostgreSQL (marketplace/auction.py): one price for
everyone, fills in price-time priority, what stays, halts, bands (extended, then
skipped), idempotence, the eligibility and self-trade rules, the buyer's refund, the
proofs of market_check, the beat task and the trade page's panel."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from compliance.services import investor_freeze
from marketplace import tasks
from marketplace.auction import auction_run, auction_summary, auctions_run, indicative_auction
from marketplace.ledger import trade_fee
from marketplace.market_proofs import market_verify
from marketplace.models import Auction, Market, MarketEvent, MarketWideControl, Trade, TradeOrder
from marketplace.trading import market_open
from marketplace.trading_selectors import buy_reservation

from .factories import OfferingFactory, verified_investor
from .trading_helpers import books_sound, cash, confirm, fees, give_units, place, units

pytestmark = pytest.mark.django_db

FUNDS = 10_000_000


@pytest.fixture(autouse=True)
def rates(settings):
    settings.MARKETPLACE_MAKER_FEE_BPS = 10
    settings.MARKETPLACE_TAKER_FEE_BPS = 25
    settings.MARKETPLACE_TRADE_ORDER_RATE = (1000, 60)
    settings.MARKETPLACE_MAX_OPEN_ORDERS_PER_ASSET = 20
    settings.MARKETPLACE_PRICE_CHECKS = []
    settings.MARKETPLACE_AUCTION_EXTENSION_SECONDS = 300
    settings.MARKETPLACE_AUCTION_MAX_EXTENSIONS = 2


@pytest.fixture
def asset(db):
    return OfferingFactory().asset


@pytest.fixture
def market(asset):
    """A book in auction mode (daily at 15:00 UTC), its next auction tomorrow: orders rest."""
    market = market_open(asset=asset)
    Market.objects.filter(pk=market.pk).update(
        trading_mode="auction",
        auction_times=["15:00"],
        next_auction_at=timezone.now() + timedelta(days=1),
        auction_reason="scheduled",
    )
    market.refresh_from_db()
    return market


@pytest.fixture
def people(fund, asset):
    def make():
        user = verified_investor()
        fund(user, FUNDS)
        give_units(user, asset, 100)
        return user

    return [make() for _ in range(5)]


def due(market, now=None):
    """Make the auction due (one second ago) and return that moment's now."""
    now = now or timezone.now()
    Market.objects.filter(pk=market.pk).update(next_auction_at=now - timedelta(seconds=1))
    return now


def run(market, now=None):
    now = due(market, now)
    return auction_run(market_id=market.pk, now=now)


def refresh(*orders):
    for o in orders:
        o.refresh_from_db()


def test_orders_rest_crossed_then_uncross_at_one_price_for_everyone(market, asset, people):
    a, b, c, d, _ = people
    bid_a = place(a, asset, "buy", 10, 10_200)
    bid_b = place(b, asset, "buy", 5, 10_100)
    ask_c = place(c, asset, "sell", 8, 9_900)
    ask_d = place(d, asset, "sell", 5, 10_000)
    assert not Trade.objects.exists()  # auction mode: nothing matched at entry
    indicative = indicative_auction(market)
    assert (indicative.price_minor, indicative.volume, indicative.imbalance) == (10_000, 13, 2)

    auction = run(market)

    assert auction.status == "uncrossed"
    # 10,000 and 10,100 both execute 13 with an imbalance of 2; no reference: the lower
    assert (auction.clearing_price_minor, auction.matched_quantity, auction.imbalance) == (10_000, 13, 2)
    trades = list(Trade.objects.order_by("pk"))
    assert {t.price_minor for t in trades} == {10_000}
    assert all(t.auction_id == auction.pk for t in trades)
    assert sum(t.quantity for t in trades) == 13
    # better prices first: a (10,200) fills 10, b (10,100) the remaining 3 and rests 2
    assert [(t.buy_order_id, t.sell_order_id, t.quantity) for t in trades] == [
        (bid_a.pk, ask_c.pk, 8),
        (bid_a.pk, ask_d.pk, 2),
        (bid_b.pk, ask_d.pk, 3),
    ]
    refresh(bid_a, bid_b, ask_c, ask_d)
    assert [o.status for o in (bid_a, bid_b, ask_c, ask_d)] == ["filled", "open", "filled", "filled"]
    assert (bid_b.filled_quantity, bid_b.remaining_quantity) == (3, 2)
    # the maker is the earlier order: a and b (placed first) pay the maker rate
    assert {t.maker_side for t in trades} == {"buy"}
    a_cost = 100_000 + trade_fee(gross_minor=80_000, fee_bps=10) + trade_fee(gross_minor=20_000, fee_bps=10)
    assert cash(a) == (FUNDS - a_cost, 0)  # bid at 102.00, paid 100.00: the difference came back
    b_rest = buy_reservation(limit_price_minor=10_100, quantity=2, fee_bps=25)
    assert cash(b) == (FUNDS - 30_000 - 30 - b_rest, b_rest)
    assert units(c, asset) == (100, 0, 0, 8, 92)
    assert units(a, asset)[1] == 10
    market.refresh_from_db()
    assert market.last_price_minor == 10_000
    assert market.next_auction_at is not None and market.next_auction_at > timezone.now()
    assert market.next_auction_at.astimezone(UTC).hour == 15
    event = MarketEvent.objects.get(market=market, kind="auction_uncrossed")
    assert "13 units traded at" in event.message and "2 units left on the buy side" in event.message
    for t in trades:  # settlement through the outbox as continuous trades
        assert t.chain_tx is not None and t.chain_tx.idempotency_key == f"trade:{t.public_id}"
    books_sound()
    confirm(trades[0])
    books_sound()


def test_partial_fill_in_time_priority_and_unfilled_orders_stay(market, asset, people):
    x, y, z, w, _ = people
    first = place(x, asset, "buy", 5, 10_000)
    second = place(y, asset, "buy", 5, 10_000)
    low = place(w, asset, "buy", 4, 9_000)
    ask = place(z, asset, "sell", 7, 10_000)
    auction = run(market)
    assert (auction.clearing_price_minor, auction.matched_quantity, auction.imbalance) == (10_000, 7, 3)
    refresh(first, second, low, ask)
    assert (first.status, first.filled_quantity) == ("filled", 5)
    assert (second.status, second.filled_quantity, second.remaining_quantity) == ("open", 2, 3)
    assert (low.status, low.filled_quantity) == ("open", 0)  # below the clearing price: untouched
    assert ask.status == "filled"
    books_sound()


def test_no_cross_is_recorded_and_the_next_auction_scheduled(market, asset, people):
    place(people[0], asset, "buy", 5, 9_000)
    place(people[1], asset, "sell", 5, 10_000)
    auction = run(market)
    assert (auction.status, auction.clearing_price_minor, auction.matched_quantity) == ("no_cross", None, 0)
    market.refresh_from_db()
    assert market.next_auction_at > timezone.now()
    assert MarketEvent.objects.filter(market=market, kind="auction_uncrossed", data__status="no_cross").exists()
    books_sound()


@pytest.mark.parametrize("where", ["market", "whole market"])
def test_not_run_while_halted_and_left_scheduled(market, asset, people, where):
    place(people[0], asset, "buy", 5, 10_000)
    place(people[1], asset, "sell", 5, 10_000)
    if where == "market":
        Market.objects.filter(pk=market.pk).update(halted=True, halt_reason="news pending")
    else:
        MarketWideControl.objects.update_or_create(pk=1, defaults={"halted": True})
    now = due(market)
    scheduled = Market.objects.get(pk=market.pk).next_auction_at
    assert auction_run(market_id=market.pk, now=now) is None
    assert auctions_run(now=now) == 0
    assert not Auction.objects.exists() and not Trade.objects.exists()
    assert Market.objects.get(pk=market.pk).next_auction_at == scheduled


def test_not_run_before_it_is_due(market, asset, people):
    place(people[0], asset, "buy", 5, 10_000)
    place(people[1], asset, "sell", 5, 10_000)
    assert auction_run(market_id=market.pk) is None
    assert not Auction.objects.exists()


def test_clearing_price_outside_the_band_extends_then_skips(market, asset, people):
    buyer, seller, _, _, _ = people
    bid = place(buyer, asset, "buy", 5, 13_000)
    ask = place(seller, asset, "sell", 5, 12_500)
    now = timezone.now()
    # a reference of 100.00 (a trade just now): band 80.00 – 120.00 at 20 %
    Market.objects.filter(pk=market.pk).update(last_price_minor=10_000, last_trade_at=now, band_pct=20)
    t0 = due(market, now)
    first = auction_run(market_id=market.pk, now=t0)
    assert first.status == "extended"
    assert (first.clearing_price_minor, first.band_low_minor, first.band_high_minor) == (12_500, 8_000, 12_000)
    assert first.matched_quantity == 0 and "not used" in first.message and "Extended to" in first.message
    market.refresh_from_db()
    assert market.next_auction_at == first.scheduled_at + timedelta(seconds=300)
    second = auction_run(market_id=market.pk, now=market.next_auction_at)
    assert second.status == "extended"
    market.refresh_from_db()
    third = auction_run(market_id=market.pk, now=market.next_auction_at)
    assert third.status == "skipped" and "skipped" in third.message
    assert list(MarketEvent.objects.filter(market=market).order_by("pk").values_list("kind", flat=True)) == [
        "auction_extended",
        "auction_extended",
        "auction_skipped",
    ]
    refresh(bid, ask)
    assert bid.status == ask.status == "open" and not Trade.objects.exists()  # the orders stay
    market.refresh_from_db()
    assert market.next_auction_at.astimezone(UTC).hour == 15  # back to the schedule
    report = market_verify()
    assert not [p for p in report.problems if "auction" in p], report.problems


def test_a_continuous_book_whose_call_is_skipped_stays_in_its_call_until_it_uncrosses(market, asset, people):
    # Given a continuous book in a band auction whose orders cross far above the band
    buyer, seller, _, _, _ = people
    place(buyer, asset, "buy", 5, 13_000)
    place(seller, asset, "sell", 5, 12_500)
    now = timezone.now()
    Market.objects.filter(pk=market.pk).update(
        trading_mode="continuous", auction_times=[], auction_reason="band", last_price_minor=10_000, last_trade_at=now
    )
    at = due(market, now)
    for _ in range(3):  # extended twice, then skipped
        outcome = auction_run(market_id=market.pk, now=at)
        at = Market.objects.get(pk=market.pk).next_auction_at
    # Then it does not go back to continuous matching with a crossed book: it calls again
    assert outcome.status == "skipped" and "next try" in outcome.message
    market.refresh_from_db()
    assert market.next_auction_at is not None and market.auction_reason == "band"
    assert not [p for p in market_verify().problems if "crossed" in p]
    # And once staff widen the band, the next try uncrosses and continuous trading resumes
    Market.objects.filter(pk=market.pk).update(band_pct=50)
    final = auction_run(market_id=market.pk, now=market.next_auction_at)
    assert final.status == "uncrossed" and final.matched_quantity == 5
    market.refresh_from_db()
    assert market.next_auction_at is None
    books_sound()


def test_running_twice_makes_one_auction(market, asset, people):
    place(people[0], asset, "buy", 5, 10_000)
    place(people[1], asset, "sell", 5, 10_000)
    now = due(market)
    scheduled = Market.objects.get(pk=market.pk).next_auction_at
    assert auction_run(market_id=market.pk, now=now) is not None
    assert auction_run(market_id=market.pk, now=now) is None
    # even pointed at the same schedule again, it does not run twice
    Market.objects.filter(pk=market.pk).update(next_auction_at=scheduled)
    assert auction_run(market_id=market.pk, now=now) is None
    assert Auction.objects.count() == 1 and Trade.objects.count() == 1
    books_sound()


def test_an_owner_who_can_no_longer_trade_is_cancelled_and_the_book_uncrosses_again(market, asset, people, staff):
    frozen, good, buyer, _, _ = people
    stale = place(frozen, asset, "sell", 5, 9_000)
    fresh = place(good, asset, "sell", 5, 10_000)
    bid = place(buyer, asset, "buy", 5, 10_000)
    investor_freeze(user=frozen, actor=staff, reason="Sanctions review")
    auction = run(market)
    refresh(stale, fresh, bid)
    assert (stale.status, stale.cancel_code) == ("cancelled", "account_frozen")
    assert units(frozen, asset) == (100, 0, 0, 0, 100)
    # without the frozen ask, the book clears at 100.00 against the good seller
    assert (auction.clearing_price_minor, auction.matched_quantity) == (10_000, 5)
    assert Trade.objects.get().seller_id == good.pk
    assert fresh.status == bid.status == "filled"
    books_sound()


def test_an_investor_never_trades_with_themselves_the_later_order_is_cancelled(market, asset, people):
    a, b, c, _, _ = people
    a_ask = place(a, asset, "sell", 5, 9_900)  # earlier
    a_bid = place(a, asset, "buy", 5, 10_100)  # later: would fill in the same auction
    b_bid = place(b, asset, "buy", 5, 10_000)
    c_ask = place(c, asset, "sell", 5, 10_000)
    auction = run(market)
    refresh(a_ask, a_bid, b_bid, c_ask)
    assert (a_bid.status, a_bid.cancel_code, a_bid.reserved_minor) == ("cancelled", "self_trade", 0)
    # a's bid held nothing any more; a's sale proceeds (maker: placed first) wait for the delivery
    assert cash(a) == (FUNDS, 49_500 - trade_fee(gross_minor=49_500, fee_bps=10))
    # then b buys a's ask at 99.00 and c's ask stays
    assert (auction.clearing_price_minor, auction.matched_quantity) == (9_900, 5)
    trade = Trade.objects.get()
    assert (trade.buyer_id, trade.seller_id) == (b.pk, a.pk)
    assert a_ask.status == "filled" and c_ask.status == "open"
    assert not Trade.objects.filter(buyer=a).exists()
    books_sound()


def test_buyer_is_refunded_the_difference_between_limit_and_clearing_price(market, asset, people):
    buyer, seller, _, _, _ = people
    bid = place(buyer, asset, "buy", 10, 12_000)
    assert cash(buyer)[1] == buy_reservation(limit_price_minor=12_000, quantity=10, fee_bps=25)
    place(seller, asset, "sell", 10, 10_000)
    before = fees()
    auction = run(market)
    assert auction.clearing_price_minor == 10_000  # 100.00 and 120.00 tie; no reference: the lower
    bid.refresh_from_db()
    assert bid.status == "filled" and bid.reserved_minor == 0
    buyer_fee = trade_fee(gross_minor=100_000, fee_bps=10)  # maker: placed first
    assert cash(buyer) == (FUNDS - 100_000 - buyer_fee, 0)
    seller_fee = trade_fee(gross_minor=100_000, fee_bps=25)
    assert cash(seller) == (FUNDS, 100_000 - seller_fee)
    assert fees() - before == buyer_fee + seller_fee
    books_sound()


def test_a_due_good_till_date_order_expires_instead_of_filling(market, asset, people):
    buyer, seller, late, _, _ = people
    gtd = place(buyer, asset, "buy", 5, 10_500, tif="gtd", expires_at=timezone.now() + timedelta(hours=2))
    other = place(late, asset, "buy", 5, 10_000)
    place(seller, asset, "sell", 5, 10_000)
    TradeOrder.objects.filter(pk=gtd.pk).update(expires_at=timezone.now() - timedelta(seconds=5))
    run(market)
    refresh(gtd, other)
    assert (gtd.status, gtd.cancel_code) == ("expired", "expired")
    assert cash(buyer) == (FUNDS, 0)
    assert other.status == "filled"
    books_sound()


# -- market_check's auction proof ---------------------------------------------------------


@pytest.fixture
def auctioned(market, asset, people):
    place(people[0], asset, "buy", 5, 10_200)
    place(people[1], asset, "buy", 5, 10_000)
    place(people[2], asset, "sell", 8, 9_900)
    Market.objects.filter(pk=market.pk).update(last_price_minor=10_000, last_trade_at=timezone.now())
    auction = run(market)
    assert auction.status == "uncrossed"
    return auction


def _check(capsys):
    try:
        call_command("market_check")
    except SystemExit as exc:
        return exc.code, capsys.readouterr().out
    return 0, capsys.readouterr().out


def _trade_price(auction):
    t = auction.trades.order_by("pk").first()
    Trade.objects.filter(pk=t.pk).update(price_minor=10_100, gross_minor=10_100 * t.quantity)
    return f"trade #{t.pk}: printed at 10100, its auction #{auction.pk} cleared at"


def _matched(auction):
    Auction.objects.filter(pk=auction.pk).update(matched_quantity=auction.matched_quantity + 1)
    return f"auction #{auction.pk}: matched {auction.matched_quantity + 1} but its trades sum to"


def _band(auction):
    Auction.objects.filter(pk=auction.pk).update(band_high_minor=auction.clearing_price_minor - 1)
    return f"auction #{auction.pk}: clearing price {auction.clearing_price_minor} outside its band"


@pytest.mark.parametrize("plant", [_trade_price, _matched, _band], ids=lambda f: f.__name__.strip("_"))
def test_each_auction_violation_is_named(auctioned, capsys, plant):
    code, out = _check(capsys)
    assert code == 0, out
    named = plant(auctioned)
    code, out = _check(capsys)
    assert code == 1, out
    assert any(line.startswith("PROBLEM") and named in line for line in out.splitlines()), out


def test_an_auction_trade_is_checked_against_the_clearing_price_not_the_makers_limit(auctioned, capsys):
    # a clean auction: trades at 99.00 .. 102.00 limits print at the clearing price, and pass
    assert auctioned.trades.exclude(price_minor=auctioned.clearing_price_minor).count() == 0
    code, out = _check(capsys)
    assert code == 0, out
    # a continuous trade at a price other than the maker's limit is still caught
    t = auctioned.trades.order_by("pk").first()
    Trade.objects.filter(pk=t.pk).update(auction=None)
    code, out = _check(capsys)
    assert code == 1 and f"trade #{t.pk}: the maker is order" in out, out


# -- the beat ---------------------------------------------------------------------------------


def test_the_beat_task_runs_due_auctions(market, asset, people):
    place(people[0], asset, "buy", 5, 10_000)
    place(people[1], asset, "sell", 5, 10_000)
    due(market)
    assert tasks.auctions_run() == 1
    assert Auction.objects.get().status == "uncrossed"
    assert tasks.auctions_run() == 0


def test_the_beat_calls_a_session_open_auction_outside_trading_hours(asset):
    market = market_open(asset=asset)
    Market.objects.filter(pk=market.pk).update(trading_hours={"mon": ["09:00", "17:00"]}, time_zone="Europe/Zurich")
    wednesday_noon = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    assert auctions_run(now=wednesday_noon) == 0
    market.refresh_from_db()
    assert market.auction_reason == "session_open"
    assert market.next_auction_at == datetime(2026, 3, 9, 8, 0, tzinfo=UTC)  # Monday 09:00 in Zurich
    assert MarketEvent.objects.filter(market=market, kind="auction_called").exists()
    # at the opening the auction runs (nothing to cross) and the book trades continuously
    monday_open = datetime(2026, 3, 9, 8, 0, 1, tzinfo=UTC)
    assert auctions_run(now=monday_open) == 1
    market.refresh_from_db()
    assert market.next_auction_at is None and market.auction_reason == ""
    # inside the session nothing is called
    assert auctions_run(now=datetime(2026, 3, 9, 10, 0, tzinfo=UTC)) == 0
    assert Market.objects.get(pk=market.pk).next_auction_at is None


# -- the trade page ---------------------------------------------------------------------------


def test_the_trade_page_shows_the_indicative_auction_and_the_last_outcome(
    market, asset, people, client, django_assert_max_num_queries
):
    place(people[0], asset, "buy", 5, 10_100)
    place(people[1], asset, "sell", 5, 9_900)
    summary = auction_summary(market=market)
    assert summary.indicative.volume == 5 and summary.indicative.price_minor == 9_900
    client.force_login(people[2])
    url = reverse("marketplace:trade_market_data", args=[asset.public_id])
    body = client.get(url).content.decode()
    assert 'id="auction-panel"' in body and 'id="indicative-price"' in body
    assert "99.00" in body and "UTC" in body
    run(market)
    body = client.get(url).content.decode()
    assert 'id="last-auction"' in body and "5 units traded" in body
    with django_assert_max_num_queries(8):
        auction_summary(market=Market.objects.get(pk=market.pk))
