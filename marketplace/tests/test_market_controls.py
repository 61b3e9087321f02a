"""Market controls (issue 14): halts per asset and market-wide, price bands at entry and
during matching, auction mode / called auctions / trading hours pausing matching, the
controls service, the trade page's controls panel, market_check's halt and band proofs,
and (on real PostgreSQL, threads) that no trade commits after a halt commits."""

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.roles import ISSUER
from accounts.tests.factories import UserFactory
from assets.tests.factories import IssuerFactory
from compliance.audit import audit_chain_verify, audit_record
from compliance.models import AuditEntry
from marketplace import market_controls
from marketplace.market_controls import (
    market_controls_update,
    market_halt,
    market_resume,
    market_wide_halt,
    market_wide_resume,
)
from marketplace.market_controls_selectors import market_controls_state
from marketplace.market_hours import DAYS
from marketplace.models import Market, MarketEvent, MarketWideControl, Trade, TradeOrder
from marketplace.trading import trade_order_cancel, trade_order_modify, trade_order_place
from marketplace.trading_selectors import matching_paused, trade_quote

from .factories import OfferingFactory, verified_investor
from .test_concurrency import run_in_threads
from .trading_helpers import books_sound, cash, codes, give_units, place, units

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def rates(settings):
    settings.MARKETPLACE_MAKER_FEE_BPS = 10
    settings.MARKETPLACE_TAKER_FEE_BPS = 25
    settings.MARKETPLACE_TRADE_ORDER_RATE = (100_000, 60)
    settings.MARKETPLACE_PRICE_CHECKS = []
    settings.MARKETPLACE_PRICE_BAND_PCT = 20
    settings.MARKETPLACE_REOPENING_AUCTION_SECONDS = 300
    settings.MARKETPLACE_BAND_AUCTION_SECONDS = 300


@pytest.fixture
def asset(platform_accounts):
    return OfferingFactory().asset


@pytest.fixture
def buyer(fund):
    user = verified_investor()
    fund(user, 10_000_000)
    return user


@pytest.fixture
def seller(asset, fund):
    user = verified_investor()
    give_units(user, asset, 100)
    fund(user, 10_000_000)
    return user


def staff_with(*codenames):
    user = UserFactory(roles=[], is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="marketplace", codename__in=codenames))
    return user


@pytest.fixture
def halter():
    return staff_with("halt_market")


@pytest.fixture
def controller():
    return staff_with("change_market_controls")


@pytest.fixture
def market(asset, seller, buyer):
    """A book with a trade at 100.00 (the reference: band 80.00–120.00)."""
    place(seller, asset, "sell", 1, 10_000)
    place(buyer, asset, "buy", 1, 10_000)
    return Market.objects.get(asset=asset)


def fresh(market):
    return Market.objects.get(pk=market.pk)


# -- permissions and input --------------------------------------------------------------


def test_every_control_needs_active_staff_with_its_permission(market, buyer):
    issuer = IssuerFactory(roles=[ISSUER])
    wrong = staff_with("change_market", "view_market")
    inactive = staff_with("halt_market", "change_market_controls")
    inactive.is_active = False
    inactive.save()
    calls = [
        lambda who: market_halt(market=market, actor=who, reason="x"),
        lambda who: market_resume(market=market, actor=who, reason="x"),
        lambda who: market_wide_halt(actor=who, reason="x"),
        lambda who: market_wide_resume(actor=who, reason="x"),
        lambda who: market_controls_update(market=market, actor=who, fields={"band_pct": 5}, reason="x"),
    ]
    for who in (None, buyer, issuer, wrong, inactive):
        for call in calls:
            with pytest.raises(PermissionDenied):
                call(who)
    market = fresh(market)
    assert not market.halted and market.band_pct is None
    assert not MarketEvent.objects.exists() and not AuditEntry.objects.filter(action__startswith="market.").exists()
    # The halt permission does not change bands, and the other way round
    with pytest.raises(PermissionDenied):
        market_controls_update(market=market, actor=staff_with("halt_market"), fields={"band_pct": 5}, reason="x")
    with pytest.raises(PermissionDenied):
        market_halt(market=market, actor=staff_with("change_market_controls"), reason="x")


@pytest.mark.parametrize(
    "reason, code",
    [("", "reason_required"), ("   ", "reason_required"), ("a\x00b", "invalid_reason"), ("x" * 501, "reason_too_long")],
)
def test_a_halt_needs_a_clean_reason(market, halter, reason, code):
    with pytest.raises(ValidationError) as exc_info:
        market_halt(market=market, actor=halter, reason=reason)
    assert exc_info.value.error_dict["reason"][0].code == code
    assert not fresh(market).halted


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"band_pct": 0}, "band_pct"),
        ({"band_pct": 1001}, "band_pct"),
        ({"band_pct": True}, "band_pct"),
        ({"band_pct": float("inf")}, "band_pct"),
        ({"band_pct": "20"}, "band_pct"),
        ({"trading_mode": "halted"}, "trading_mode"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "Europe/Zurich\x00"}, "time_zone"),
        ({"time_zone": "x" * 10_000}, "time_zone"),
        ({"trading_hours": {"mon": ["17:00", "09:00"]}}, "trading_hours"),
        ({"trading_hours": {"moon": ["09:00", "17:00"]}}, "trading_hours"),
        ({"trading_hours": {"mon": ["０９:00", "17:00"]}}, "trading_hours"),
        ({"auction_times": ["25:00"]}, "auction_times"),
        ({"auction_times": "15:00"}, "auction_times"),
    ],
)
def test_hostile_control_values_are_refused_per_field(market, controller, fields, field):
    with pytest.raises(ValidationError) as exc_info:
        market_controls_update(market=market, actor=controller, fields=fields, reason="change")
    assert field in exc_info.value.error_dict and exc_info.value.messages[0]
    assert fresh(market).band_pct is None and fresh(market).time_zone == "UTC"


def test_unknown_fields_are_refused(market, controller):
    with pytest.raises(ValidationError):
        market_controls_update(market=market, actor=controller, fields={"halted": True}, reason="x")
    assert not fresh(market).halted


# -- one book halted ----------------------------------------------------------------------


def test_a_halt_refuses_new_orders_keeps_resting_ones_and_cancels_still_work(market, halter, seller, buyer):
    resting_bid = place(buyer, market.asset, "buy", 5, 9_500)
    resting_ask = place(seller, market.asset, "sell", 5, 10_500)
    available_before = cash(buyer)
    market_halt(market=market, actor=halter, reason="  Issuer announcement pending  ")
    market = fresh(market)
    assert (market.halted, market.halt_reason) == (True, "Issuer announcement pending")
    event = MarketEvent.objects.get(kind="halted")
    assert (event.market_id, event.actor_id, event.message) == (market.pk, halter.pk, "Issuer announcement pending")
    entry = AuditEntry.objects.get(action="market.halted")
    assert entry.actor_id == halter.pk and entry.after["halted"] is True and entry.reason == market.halt_reason
    assert audit_chain_verify().ok

    with pytest.raises(ValidationError) as exc_info:
        place(buyer, market.asset, "buy", 1, 10_500)  # would cross the resting ask
    assert codes(exc_info.value) == ["market_halted"]
    assert "Issuer announcement pending" in exc_info.value.messages[0]
    assert cash(buyer) == available_before and Trade.objects.count() == 1
    # Resting orders stay; a pure quantity decrease goes through; other changes are refused
    assert TradeOrder.objects.filter(status="open").count() == 2
    smaller = trade_order_modify(order=resting_bid, investor=buyer, quantity=3, idempotency_key=uuid.uuid4().hex)
    assert (smaller.pk, smaller.remaining_quantity) == (resting_bid.pk, 3)
    with pytest.raises(ValidationError) as exc_info:
        trade_order_modify(order=resting_bid, investor=buyer, limit_price_minor=9_600, idempotency_key="k1")
    assert codes(exc_info.value) == ["market_halted"]
    resting_bid.refresh_from_db()
    assert (resting_bid.status, resting_bid.limit_price_minor) == ("open", 9_500)
    cancelled = trade_order_cancel(order=resting_ask, actor=seller)
    assert cancelled.status == "cancelled" and units(seller, market.asset)[2] == 0
    # The quote says so too
    quote = trade_quote(investor=buyer, asset=market.asset, side="buy", quantity=1, limit_price_minor=10_000)
    assert "market_halted" in [f.code for f in quote.failures]
    with pytest.raises(ValidationError) as exc_info:
        market_halt(market=market, actor=halter, reason="again")
    assert exc_info.value.code == "already_halted"
    books_sound()


def test_resuming_a_continuous_book_calls_a_reopening_auction(market, halter, seller, buyer):
    market_halt(market=market, actor=halter, reason="news")
    before = timezone.now()
    market_resume(market=market, actor=halter, reason="news out")
    market = fresh(market)
    assert not market.halted and market.halt_reason == "" and market.halted_at is None
    assert market.auction_reason == "reopening"
    assert before + timedelta(seconds=299) < market.next_auction_at < timezone.now() + timedelta(seconds=301)
    assert list(MarketEvent.objects.order_by("pk").values_list("kind", flat=True)) == [
        "halted",
        "resumed",
        "auction_called",
    ]
    assert AuditEntry.objects.get(action="market.resumed").after["auction_reason"] == "reopening"
    # Orders collect without matching until the auction: a crossing gtc rests, ioc/fok refused
    ask = place(seller, market.asset, "sell", 2, 10_000)
    bid = place(buyer, market.asset, "buy", 2, 10_100)
    assert (ask.status, bid.status, Trade.objects.count()) == ("open", "open", 1)
    held = cash(buyer)
    for tif in ("ioc", "fok"):
        with pytest.raises(ValidationError) as exc_info:
            place(buyer, market.asset, "buy", 1, 10_100, tif=tif)
        assert codes(exc_info.value) == ["no_continuous_matching"]
        assert "reopening auction" in exc_info.value.messages[0]
    assert cash(buyer) == held
    with pytest.raises(ValidationError) as exc_info:
        market_resume(market=market, actor=halter, reason="again")
    assert exc_info.value.code == "not_halted"
    books_sound()  # the crossed book collects for its auction: not a crossed book at rest


# -- the whole market ---------------------------------------------------------------------------


def test_a_market_wide_halt_stops_every_book_even_one_opened_later(market, halter, seller, buyer, platform_accounts):
    market_wide_halt(actor=halter, reason="Exchange-wide incident")
    control = MarketWideControl.objects.get(pk=1)
    assert (control.halted, control.reason, control.changed_by_id) == (True, "Exchange-wide incident", halter.pk)
    assert MarketEvent.objects.get(kind="halted").market_id is None
    assert AuditEntry.objects.get(action="market.wide_halted").actor_id == halter.pk
    with pytest.raises(ValidationError) as exc_info:
        place(buyer, market.asset, "buy", 1, 10_000)
    assert codes(exc_info.value) == ["market_wide_halt"] and "Exchange-wide incident" in exc_info.value.messages[0]
    other = OfferingFactory().asset
    give_units(seller, other, 10)
    with pytest.raises(ValidationError) as exc_info:
        place(seller, other, "sell", 1, 10_000)  # opens the book, which is halted too
    assert codes(exc_info.value) == ["market_wide_halt"]
    with pytest.raises(ValidationError):
        market_wide_halt(actor=halter, reason="again")

    # One book halted on its own stays halted; the others reopen with an auction
    market_halt(market=market, actor=halter, reason="its own halt")
    market_wide_resume(actor=halter, reason="incident over")
    assert not MarketWideControl.objects.get(pk=1).halted
    market = fresh(market)
    assert market.halted and market.next_auction_at is None
    with pytest.raises(ValidationError) as exc_info:
        place(buyer, market.asset, "buy", 1, 10_000)
    assert codes(exc_info.value) == ["market_halted"]
    market_resume(market=market, actor=halter, reason="fine")
    assert fresh(market).auction_reason == "reopening"
    assert AuditEntry.objects.filter(action="market.wide_resumed").count() == 1
    assert audit_chain_verify().ok


def test_a_wide_resume_reopens_continuous_books_with_an_auction(market, halter):
    market_wide_halt(actor=halter, reason="x")
    market_wide_resume(actor=halter, reason="y")
    market = fresh(market)
    assert market.auction_reason == "reopening" and market.next_auction_at is not None
    assert MarketEvent.objects.filter(kind="auction_called", market=market).count() == 1


# -- price bands ------------------------------------------------------------------------------


def test_a_limit_outside_the_band_is_refused_naming_the_band(market, buyer, seller):
    available = cash(buyer)
    with pytest.raises(ValidationError) as exc_info:
        place(buyer, market.asset, "buy", 1, 13_000)
    assert codes(exc_info.value) == ["outside_band"]
    assert exc_info.value.messages == [
        "Your limit of 130.00 EUR is outside this asset's price band, 80.00–120.00 EUR "
        "(±20 % around the reference price of 100.00 EUR, the last trade)."
    ]
    with pytest.raises(ValidationError) as exc_info:
        place(seller, market.asset, "sell", 1, 7_999)
    assert codes(exc_info.value) == ["outside_band"]
    assert cash(buyer) == available and units(seller, market.asset)[2] == 0
    # The edges are inside
    assert place(buyer, market.asset, "buy", 1, 8_000).status == "open"
    assert place(seller, market.asset, "sell", 1, 12_000).status == "open"
    quote = trade_quote(investor=buyer, asset=market.asset, side="buy", quantity=1, limit_price_minor=13_000)
    assert [f.code for f in quote.failures] == ["outside_band"]


def test_no_reference_price_no_band_and_trades_record_the_band(asset, buyer, seller):
    place(seller, asset, "sell", 1, 50_000)
    place(buyer, asset, "buy", 1, 50_000)
    first = Trade.objects.get()
    assert (first.band_low_minor, first.band_high_minor) == (None, None)
    place(seller, asset, "sell", 1, 55_000)
    place(buyer, asset, "buy", 1, 55_000)
    second = Trade.objects.latest("pk")
    assert (second.band_low_minor, second.band_high_minor) == (40_000, 60_000)
    books_sound()


def test_a_band_of_its_own_per_asset(market, buyer, controller):
    market_controls_update(market=market, actor=controller, fields={"band_pct": 5}, reason="volatile asset")
    with pytest.raises(ValidationError) as exc_info:
        place(buyer, market.asset, "buy", 1, 10_600)
    assert "95.00–105.00 EUR (±5 %" in exc_info.value.messages[0]
    assert MarketEvent.objects.get(kind="band_changed").data == {"band_pct": 5}
    assert AuditEntry.objects.get(action="market.controls_changed").after["band_pct"] == 5


@pytest.fixture
def stale_ask(asset, seller, buyer):
    """An ask at 70.00 resting from before the reference moved to 100.00 (outside the band now)."""
    ask = place(seller, asset, "sell", 3, 7_000)
    Market.objects.filter(asset=asset).update(last_price_minor=10_000, last_trade_at=timezone.now())
    return ask


def test_a_trade_that_would_print_outside_the_band_calls_an_auction_instead(stale_ask, asset, buyer, seller):
    before = timezone.now()
    bid = place(buyer, asset, "buy", 2, 10_000)
    assert bid.status == "open" and bid.filled_quantity == 0 and not Trade.objects.exists()
    market = Market.objects.get(asset=asset)
    assert market.auction_reason == "band"
    assert before + timedelta(seconds=299) < market.next_auction_at < timezone.now() + timedelta(seconds=301)
    event = MarketEvent.objects.get(kind="auction_called")
    assert event.data["reason"] == "band" and event.data["price_minor"] == 7_000
    assert (event.data["band_low_minor"], event.data["band_high_minor"]) == (8_000, 12_000)
    stale_ask.refresh_from_db()
    assert stale_ask.status == "open" and stale_ask.remaining_quantity == 3
    # Matching is paused now: another crossing order rests too
    assert "price band" in matching_paused(market)
    assert place(buyer, asset, "buy", 1, 9_000).status == "open"
    assert not Trade.objects.exists()
    books_sound()


@pytest.mark.parametrize("tif", ["ioc", "fok"])
def test_an_ioc_or_fok_meeting_the_band_is_cancelled_with_the_reason(stale_ask, asset, buyer, tif):
    available = cash(buyer)
    order = place(buyer, asset, "buy", 2, 10_000, tif=tif)
    assert (order.status, order.cancel_code, order.filled_quantity, order.reserved_minor) == (
        "cancelled",
        "band_auction",
        0,
        0,
    )
    assert "outside the price band" in order.cancel_reason and "auction was called" in order.cancel_reason
    assert cash(buyer) == available and not Trade.objects.exists()
    assert Market.objects.get(asset=asset).auction_reason == "band"
    books_sound()


def test_a_sell_meeting_a_stale_bid_above_the_band_stops_too(asset, buyer, seller):
    place(buyer, asset, "buy", 2, 15_000)
    Market.objects.filter(asset=asset).update(last_price_minor=10_000, last_trade_at=timezone.now())
    ask = place(seller, asset, "sell", 2, 11_000)
    assert ask.status == "open" and not Trade.objects.exists()
    assert Market.objects.get(asset=asset).auction_reason == "band"


# -- auction mode and trading hours -----------------------------------------------------------------


def test_auction_mode_collects_orders_without_matching(market, controller, buyer, seller):
    with pytest.raises(ValidationError) as exc_info:
        market_controls_update(market=market, actor=controller, fields={"trading_mode": "auction"}, reason="thin")
    assert "auction_times" in exc_info.value.error_dict
    market_controls_update(
        market=market,
        actor=controller,
        fields={"trading_mode": "auction", "auction_times": ["15:00"], "time_zone": "Europe/Zurich"},
        reason="thin book",
    )
    market = fresh(market)
    assert market.auction_reason == "scheduled" and market.next_auction_at > timezone.now()
    assert market.next_auction_at.astimezone(timezone.get_fixed_timezone(0)) is not None
    local = timezone.localtime(market.next_auction_at, timezone=__import__("zoneinfo").ZoneInfo("Europe/Zurich"))
    assert (local.hour, local.minute) == (15, 0)
    kinds = set(MarketEvent.objects.values_list("kind", flat=True))
    assert {"mode_changed", "hours_changed", "auction_called"} <= kinds
    ask = place(seller, market.asset, "sell", 2, 10_000)
    bid = place(buyer, market.asset, "buy", 2, 10_100)
    assert (ask.status, bid.status, Trade.objects.count()) == ("open", "open", 1)
    with pytest.raises(ValidationError) as exc_info:
        place(buyer, market.asset, "buy", 1, 10_100, tif="ioc")
    assert codes(exc_info.value) == ["no_continuous_matching"]
    assert "periodic call auctions" in exc_info.value.messages[0]
    books_sound()
    # Back to continuous: the scheduled auction is cleared
    market_controls_update(market=market, actor=controller, fields={"trading_mode": "continuous"}, reason="liquid")
    market = fresh(market)
    assert (market.next_auction_at, market.auction_reason) == (None, "")
    assert matching_paused(market) is None


def test_outside_trading_hours_orders_rest_and_the_session_opens_with_an_auction(market, controller, buyer, seller):
    tomorrow = DAYS[(timezone.now().weekday() + 1) % 7]
    market_controls_update(
        market=market, actor=controller, fields={"trading_hours": {tomorrow: ["09:00", "10:00"]}}, reason="hours"
    )
    market = fresh(market)
    assert market.auction_reason == "session_open"
    assert market.next_auction_at.weekday() == DAYS.index(tomorrow) and market.next_auction_at.hour == 9
    assert "Outside trading hours" not in (matching_paused(market) or "")  # the called auction says it
    assert "opens the trading session" in matching_paused(market)
    ask = place(seller, market.asset, "sell", 1, 10_000)
    bid = place(buyer, market.asset, "buy", 1, 10_000)
    assert (ask.status, bid.status, Trade.objects.count()) == ("open", "open", 1)
    books_sound()


def test_an_order_outside_hours_calls_the_session_auction_itself(market, buyer, seller):
    tomorrow = DAYS[(timezone.now().weekday() + 1) % 7]
    Market.objects.filter(pk=market.pk).update(trading_hours={tomorrow: ["09:00", "10:00"]})
    market = fresh(market)
    assert matching_paused(market).startswith("Outside trading hours")
    place(seller, market.asset, "sell", 1, 10_000)
    market = fresh(market)
    assert market.auction_reason == "session_open" and market.next_auction_at.hour == 9
    assert place(buyer, market.asset, "buy", 1, 10_000).status == "open"
    assert Trade.objects.count() == 1
    books_sound()


# -- the trade page -------------------------------------------------------------------------------


def test_the_trade_page_shows_the_controls_in_constant_queries(
    client, market, halter, controller, buyer, django_assert_max_num_queries
):
    state = market_controls_state(market=fresh(market))
    assert state.band.low_minor == 8_000 and state.reference_text == "the last trade" and state.trading
    with django_assert_max_num_queries(2):
        market_controls_state(market=fresh(market))
    client.force_login(buyer)
    page = reverse("marketplace:asset_trade", args=[market.asset.public_id])
    body = client.get(page).content.decode()
    assert 'id="market-controls"' in body and "80.00 EUR to 120.00 EUR" in body and "the last trade" in body
    market_halt(market=market, actor=halter, reason="Valuation under review")
    body = client.get(reverse("marketplace:trade_market_data", args=[market.asset.public_id])).content.decode()
    assert 'data-halted="yes"' in body and "Valuation under review" in body
    market_resume(market=market, actor=halter, reason="done")
    body = client.get(page).content.decode()
    assert "reopening auction" in body and 'id="controls-paused"' in body
    # The live quote says the order will rest until the book uncrosses
    quote = reverse("marketplace:trade_quote", args=[market.asset.public_id])
    body = client.get(quote, {"side": "buy", "quantity": "1", "limit_price": "100.00", "time_in_force": "gtc"})
    assert 'id="quote-paused"' in body.content.decode() and "reopening" in body.content.decode()
    market_wide_halt(actor=halter, reason="Maintenance window")
    body = client.get(page).content.decode()
    assert "halted on the whole market" in body and "Maintenance window" in body


# -- market_check: halts and bands ----------------------------------------------------------------


def _check(capsys):
    try:
        call_command("market_check")
    except SystemExit as exc:
        return exc.code, capsys.readouterr().out
    return 0, capsys.readouterr().out


def test_market_check_names_a_trade_inside_a_halt(market, halter, capsys):
    market_halt(market=market, actor=halter, reason="x")
    market_resume(market=market, actor=halter, reason="y")
    code, out = _check(capsys)
    assert code == 0, out
    trade = Trade.objects.get()
    halted = MarketEvent.objects.get(kind="halted")
    Trade.objects.filter(pk=trade.pk).update(created_at=halted.at + timedelta(microseconds=1))
    code, out = _check(capsys)
    assert code == 1 and f"trade #{trade.pk}" in out and f"while market #{market.pk} was halted" in out


def test_market_check_names_a_trade_inside_a_market_wide_halt_still_running(market, halter, capsys):
    market_wide_halt(actor=halter, reason="x")
    trade = Trade.objects.get()
    Trade.objects.filter(pk=trade.pk).update(created_at=timezone.now())
    code, out = _check(capsys)
    assert code == 1 and f"trade #{trade.pk}" in out and "while the whole market was halted" in out and "to now" in out


def test_market_check_names_a_trade_outside_its_band(market, capsys):
    trade = Trade.objects.get()
    Trade.objects.filter(pk=trade.pk).update(band_low_minor=10_001, band_high_minor=12_000)
    code, out = _check(capsys)
    assert code == 1 and f"trade #{trade.pk}: printed at 10000, outside the band in force 10001 – 12000" in out
    Trade.objects.filter(pk=trade.pk).update(band_low_minor=8_000, band_high_minor=None)
    code, out = _check(capsys)
    assert code == 1 and f"trade #{trade.pk}" in out
    Trade.objects.filter(pk=trade.pk).update(band_low_minor=8_000, band_high_minor=10_000)
    assert _check(capsys)[0] == 0


# -- concurrency: no trade commits after a halt commits -------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("wide", [False, True], ids=["book", "whole-market"])
def test_no_trade_commits_after_a_halt_commits(platform_accounts, staff, monkeypatch, settings, wide):
    """Clients place crossing orders in a loop while staff halt. Inside the halt's own
    transaction, after its locks (at its audit entry, the last thing it writes), we read
    the trades committed so far; a trade that is not among them committed after the halt
    (it could not have committed in between: the halt holds the book). There must be
    none, and market_check's halt proof must pass."""
    from marketplace.services import deposit_record

    settings.MARKETPLACE_MAX_OPEN_ORDERS_PER_ASSET = 10_000
    asset = OfferingFactory().asset
    sellers = [verified_investor() for _ in range(3)]
    buyers = [verified_investor() for _ in range(3)]
    for user in sellers:
        give_units(user, asset, 10_000)
    for i, user in enumerate(buyers):
        deposit_record(investor=user, amount_minor=10**9, currency="EUR", bank_reference=f"C-{i}", actor=staff)
    halter = staff_with("halt_market")
    place(sellers[0], asset, "sell", 1, 10_000)  # open the book
    market = Market.objects.get(asset=asset)

    seen_at_halt: list[set[int]] = []
    original = audit_record

    def spying_audit_record(**kwargs):
        if kwargs["action"] in ("market.halted", "market.wide_halted"):
            seen_at_halt.append(set(Trade.objects.values_list("pk", flat=True)))
        return original(**kwargs)

    monkeypatch.setattr(market_controls, "audit_record", spying_audit_record)
    stop = threading.Event()
    refused: list[str] = []
    errors: list[str] = []

    def trader(user, side):
        def run():
            n = 0
            while not stop.is_set() and n < 400:
                n += 1
                try:
                    trade_order_place(
                        investor=user,
                        asset=asset,
                        side=side,
                        quantity=1,
                        limit_price_minor=10_000,
                        time_in_force="ioc" if n % 2 else "gtc",
                        idempotency_key=uuid.uuid4().hex,
                    )
                except ValidationError as exc:
                    refused.append(exc.error_list[0].code)
                except Exception as exc:  # noqa: BLE001 - the finding
                    errors.append(f"{type(exc).__name__}: {exc}")
            connection.close()

        return run

    def halting():
        time.sleep(0.4)  # let trading run first
        if wide:
            market_wide_halt(actor=halter, reason="race")
        else:
            market_halt(market=market, actor=halter, reason="race")
        time.sleep(0.4)  # and keep trying after it
        stop.set()

    run_in_threads([*(trader(u, "sell") for u in sellers), *(trader(u, "buy") for u in buyers), halting])
    assert not errors, errors
    assert len(seen_at_halt) == 1
    trades = set(Trade.objects.values_list("pk", flat=True))
    assert len(seen_at_halt[0]) > 0, "no trade happened before the halt: the race was not exercised"
    assert trades <= seen_at_halt[0], f"trades committed after the halt: {sorted(trades - seen_at_halt[0])}"
    assert ("market_wide_halt" if wide else "market_halted") in refused
    books_sound()
