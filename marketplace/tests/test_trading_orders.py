"""The secondary market's order entry: reservation at entry, refusals that reserve nothing,
limits, idempotency, cancel, modify and expiry releasing exactly (one database
transaction each; settlement is test_trading_settlement.py)."""

import datetime

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.tests.factories import UserFactory
from compliance.eligibility import RuleFailure
from compliance.models import AuditEntry, KycApplication
from compliance.services import investor_freeze
from marketplace.models import JournalEntry, Market, TradeOrder
from marketplace.tasks import trade_orders_expire as trade_orders_expire_task
from marketplace.trading import trade_order_cancel, trade_order_modify, trade_order_place, trade_orders_expire
from marketplace.trading_selectors import trade_quote

from .factories import OfferingFactory, StaffFactory, verified_investor
from .trading_helpers import books_sound, cash, codes, give_units, place, units

pytestmark = pytest.mark.django_db


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
def buyer(fund):
    user = verified_investor()
    fund(user, 1_000_000)  # 10,000.00 EUR
    return user


@pytest.fixture
def seller(asset):
    user = verified_investor()
    give_units(user, asset, 50)
    return user


# -- reservation at entry ------------------------------------------------------------------


def test_a_buy_holds_price_times_quantity_plus_the_maximum_fee(asset, buyer):
    # When a buyer bids 3 at 100.01 (no seller yet)
    order = place(buyer, asset, "buy", 3, 10_001)
    # Then it rests and holds 300.03 + the taker rate (the higher) rounded up: 75.0075 → 76
    assert (order.status, order.remaining_quantity, order.filled_quantity) == ("open", 3, 0)
    assert order.reserved_minor == 30_003 + 76 and order.fee_bps_reserved == 25
    assert cash(buyer) == (1_000_000 - 30_079, 30_079)
    assert not order.replayed
    market = Market.objects.get(asset=asset)
    assert (market.currency, market.trading_mode, order.priority) == ("EUR", "continuous", 1)
    books_sound()


def test_a_sell_locks_settled_units_only(asset, seller, fund):
    # Given a seller with 50 settled units and 7 more bought but not delivered
    from marketplace.models import Holding

    Holding.objects.filter(investor=seller, asset=asset).update(pending_quantity=7)
    # When they offer 20, then try 31 more (only 30 are free)
    place(seller, asset, "sell", 20, 10_000)
    assert units(seller, asset) == (50, 7, 20, 0, 30)
    with pytest.raises(ValidationError) as exc_info:
        place(seller, asset, "sell", 31, 10_000)
    # Then the pending and locked units cannot be sold, and nothing more is locked
    assert codes(exc_info.value) == ["insufficient_units"]
    assert "You can sell 30 units" in exc_info.value.messages[0]
    assert units(seller, asset) == (50, 7, 20, 0, 30)


def test_a_frozen_seller_short_of_units_hears_both_reasons_at_entry_and_in_the_quote(asset, seller, staff):
    # Given a seller with 50 units whom compliance froze
    investor_freeze(user=seller, actor=staff, reason="review")
    # When they offer 60: both the unit shortfall and the engine's freeze are named
    with pytest.raises(ValidationError) as exc_info:
        place(seller, asset, "sell", 60, 10_000)
    assert codes(exc_info.value) == ["insufficient_units", "account_frozen"]
    quote = trade_quote(investor=seller, asset=asset, side="sell", quantity=60, limit_price_minor=10_000)
    assert [f.code for f in quote.failures] == ["insufficient_units", "account_frozen"]
    assert units(seller, asset) == (50, 0, 0, 0, 50)


TOMORROW = object()
YESTERDAY = object()


@pytest.mark.parametrize(
    "side, quantity, price, tif, expires, code",
    [
        ("buy", 0, 100, "gtc", None, "not_positive"),
        ("buy", -3, 100, "gtc", None, "not_positive"),
        ("buy", 2.5, 100, "gtc", None, "not_integer"),
        ("buy", "5", 100, "gtc", None, "not_integer"),
        ("buy", True, 100, "gtc", None, "not_integer"),
        ("buy", 10**6, 100, "gtc", None, "too_large"),  # more than the asset's 10,000 fractions
        ("buy", 5, 0, "gtc", None, "not_positive"),
        ("buy", 5, -100, "gtc", None, "not_positive"),
        ("buy", 5, 99.5, "gtc", None, "not_integer"),
        ("buy", 5, "100", "gtc", None, "not_integer"),
        ("buy", 5, 2**62, "gtc", None, "too_large"),
        ("buy", 5, 2**64, "gtc", None, "too_large"),
        ("hold", 5, 100, "gtc", None, "invalid_side"),
        ("buy", 5, 100, "day", None, "invalid_time_in_force"),
        ("buy", 5, 100, "gtd", None, "expiry_required"),
        ("buy", 5, 100, "gtd", YESTERDAY, "expiry_in_past"),
        ("buy", 5, 100, "gtd", "tomorrow", "invalid_expiry"),
        ("buy", 5, 100, "gtc", TOMORROW, "expiry_not_allowed"),
        ("sell", 0, 100, "gtc", None, "not_positive"),
        ("sell", 5, 0, "ioc", None, "not_positive"),
    ],
)
def test_bad_input_gets_a_clear_message_and_nothing_is_reserved(
    asset, buyer, seller, side, quantity, price, tif, expires, code
):
    now = timezone.now()
    expires = {TOMORROW: now + datetime.timedelta(days=1), YESTERDAY: now - datetime.timedelta(days=1)}.get(
        expires, expires
    )
    entries = JournalEntry.objects.count()
    user = seller if side == "sell" else buyer
    with pytest.raises(ValidationError) as exc_info:
        place(user, asset, side, quantity, price, tif=tif, expires_at=expires)
    assert code in codes(exc_info.value), codes(exc_info.value)
    assert all(exc_info.value.messages)
    assert JournalEntry.objects.count() == entries and not TradeOrder.objects.exists()
    assert cash(buyer) == (1_000_000, 0)
    assert units(seller, asset) == (50, 0, 0, 0, 50)


def test_a_refusal_carries_the_engines_reasons(asset, fund):
    unverified = UserFactory()
    fund(unverified, 100_000)
    with pytest.raises(ValidationError) as exc_info:
        place(unverified, asset, "buy", 1, 100)
    assert codes(exc_info.value) == ["kyc_not_approved"]
    assert "Verify your identity" in exc_info.value.messages[0]
    assert cash(unverified) == (100_000, 0) and not TradeOrder.objects.exists()


def test_exit_only_a_lapsed_kyc_can_sell_and_cannot_buy(asset, seller, fund):
    KycApplication.objects.filter(user=seller).update(expires_at=timezone.localdate() - datetime.timedelta(days=1))
    fund(seller, 100_000)
    with pytest.raises(ValidationError) as exc_info:
        place(seller, asset, "buy", 1, 100)
    assert codes(exc_info.value) == ["kyc_expired"]
    order = place(seller, asset, "sell", 5, 100)
    assert order.status == "open" and units(seller, asset)[2] == 5


def test_a_frozen_investor_cannot_sell(asset, seller, staff):
    investor_freeze(user=seller, actor=staff, reason="Court order")
    with pytest.raises(ValidationError) as exc_info:
        place(seller, asset, "sell", 5, 100)
    assert "account_frozen" in codes(exc_info.value)
    assert units(seller, asset) == (50, 0, 0, 0, 50)


def test_not_enough_cash_reserves_nothing(asset, fund):
    poor = verified_investor()
    fund(poor, 10_000)
    with pytest.raises(ValidationError) as exc_info:
        place(poor, asset, "buy", 100, 100)  # 100.00 + 0.25 fee > 100.00
    assert codes(exc_info.value) == ["insufficient_cash"]
    assert cash(poor) == (10_000, 0)
    place(poor, asset, "buy", 99, 100)  # 99.00 + 0.25 fits


def test_a_halted_market_and_a_price_check_refuse_before_reserving(asset, buyer, settings):
    place(buyer, asset, "buy", 1, 100)
    Market.objects.filter(asset=asset).update(halted=True)
    with pytest.raises(ValidationError) as exc_info:
        place(buyer, asset, "buy", 1, 100)
    assert codes(exc_info.value) == ["market_halted"]
    Market.objects.filter(asset=asset).update(halted=False)
    settings.MARKETPLACE_PRICE_CHECKS = ["marketplace.tests.test_trading_orders.band_check"]
    held = cash(buyer)
    with pytest.raises(ValidationError) as exc_info:
        place(buyer, asset, "buy", 1, 500)
    assert codes(exc_info.value) == ["outside_band"]
    assert cash(buyer) == held
    place(buyer, asset, "buy", 1, 150)


def band_check(market, side, limit_price_minor):
    if limit_price_minor > 200:
        return RuleFailure("outside_band", f"{side} price {limit_price_minor} outside the band of {market.asset_id}")
    return None


def test_per_investor_limits(asset, buyer, settings):
    settings.MARKETPLACE_MAX_OPEN_ORDERS_PER_ASSET = 2
    place(buyer, asset, "buy", 1, 100)
    place(buyer, asset, "buy", 1, 101)
    with pytest.raises(ValidationError) as exc_info:
        place(buyer, asset, "buy", 1, 102)
    assert codes(exc_info.value) == ["too_many_open_orders"] and "2 open orders" in exc_info.value.messages[0]
    settings.MARKETPLACE_MAX_OPEN_ORDERS_PER_ASSET = 20
    settings.MARKETPLACE_TRADE_ORDER_RATE = (3, 60)
    place(buyer, asset, "buy", 1, 103)
    with pytest.raises(ValidationError) as exc_info:
        place(buyer, asset, "buy", 1, 104)
    assert (
        codes(exc_info.value) == ["rate_limited"] and "at most 3 orders every 60 seconds" in exc_info.value.messages[0]
    )
    assert TradeOrder.objects.count() == 3


def test_the_same_key_answers_the_same_order(asset, buyer):
    first = place(buyer, asset, "buy", 3, 100, key="form-1")
    again = place(buyer, asset, "buy", 3, 100, key="form-1")
    assert again.pk == first.pk and again.replayed
    assert TradeOrder.objects.count() == 1
    assert JournalEntry.objects.filter(kind="trade_reserve").count() == 1
    with pytest.raises(ValidationError) as exc_info:
        place(buyer, asset, "buy", 4, 100, key="form-1")
    assert codes(exc_info.value) == ["idempotency_conflict"]
    for key in ("", "  ", None, "k" * 65):
        with pytest.raises(ValidationError) as exc_info:
            trade_order_place(
                investor=buyer,
                asset=asset,
                side="buy",
                quantity=1,
                limit_price_minor=100,
                time_in_force="gtc",
                idempotency_key=key,
            )
        assert codes(exc_info.value) == ["idempotency_key"]


def test_the_quote_tells_before_the_button(asset, buyer, seller):
    quote = trade_quote(investor=buyer, asset=asset, side="buy", quantity=3, limit_price_minor=10_001)
    assert quote.allowed and (quote.gross_minor, quote.max_fee_minor, quote.reserve_minor) == (30_003, 76, 30_079)
    poor = trade_quote(investor=buyer, asset=asset, side="buy", quantity=5_000, limit_price_minor=10_000)
    assert [f.code for f in poor.failures] == ["insufficient_cash"]
    sell = trade_quote(investor=seller, asset=asset, side="sell", quantity=60, limit_price_minor=100)
    assert [f.code for f in sell.failures] == ["insufficient_units"] and sell.available_units == 50
    bad = trade_quote(investor=buyer, asset=asset, side="buy", quantity=0, limit_price_minor=0)
    assert [f.code for f in bad.failures][:2] == ["not_positive", "not_positive"]
    assert not TradeOrder.objects.exists()


def test_a_placement_is_a_fixed_number_of_statements_once_the_rows_exist(asset, buyer, seller):
    """The SQL of a placement (bench/trading replays it): the book's lock (with its asset),
    the idempotency read, the limits, the market-wide halt, the opposite side of the book,
    the holding and cash locks, the standing (KYC and freeze in one statement), the order,
    the reservation, the book's sequence; no savepoint around the order's insert. A crossing
    buy adds the resting owners' holdings and standing, the chain accounts, the outbox row,
    the trade, its entry, both holdings' and both orders' updates. Holdings are read only
    for orders the walk can reach. A new query here is a cost every order pays."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    place(seller, asset, "sell", 10, 10_000)  # the book, the seller's accounts, a resting ask
    place(buyer, asset, "buy", 1, 10_000)  # a first trade: the fee account, the last price

    def statements(side, price):
        with CaptureQueriesContext(connection) as captured:
            place(buyer, asset, side, 1, price)
        return [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]

    crossing, resting = statements("buy", 10_000), statements("buy", 9_000)
    assert len(resting) == 11, "\n".join(resting)
    assert len(crossing) == 21, "\n".join(crossing)


# -- cancel, modify, expire ----------------------------------------------------------------


def test_cancel_releases_exactly_what_the_order_holds(asset, buyer, seller):
    bid = place(buyer, asset, "buy", 5, 10_000)
    ask = place(seller, asset, "sell", 8, 12_000)
    trade_order_cancel(order=bid, actor=buyer)
    trade_order_cancel(order=ask, actor=seller)
    assert cash(buyer) == (1_000_000, 0)
    assert units(seller, asset) == (50, 0, 0, 0, 50)
    bid.refresh_from_db()
    assert (bid.status, bid.cancel_code, bid.reserved_minor) == ("cancelled", "cancelled_by_investor", 0)
    with pytest.raises(ValidationError) as exc_info:
        trade_order_cancel(order=bid, actor=buyer)
    assert codes(exc_info.value) == ["not_open"]
    books_sound()


def test_only_the_owner_or_permitted_staff_cancel(asset, buyer, django_capture_on_commit_callbacks):
    bid = place(buyer, asset, "buy", 5, 10_000)
    stranger = verified_investor()
    with pytest.raises(PermissionDenied):
        trade_order_cancel(order=bid, actor=stranger)
    plain_staff = UserFactory(is_staff=True)
    with pytest.raises(PermissionDenied):
        trade_order_cancel(order=bid, actor=plain_staff, reason="x")
    operator = StaffFactory()
    with pytest.raises(ValidationError):
        trade_order_cancel(order=bid, actor=operator, reason="  ")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        trade_order_cancel(order=bid, actor=operator, reason="Suspected manipulation")
    bid.refresh_from_db()
    assert (bid.status, bid.cancel_code, bid.cancelled_by) == ("cancelled", "cancelled_by_staff", operator)
    entry = AuditEntry.objects.get(action="trade_order.cancelled_by_staff")
    assert entry.reason == "Suspected manipulation" and entry.after["released_minor"] == 50_125
    assert [m.to for m in mail.outbox] == [[buyer.email]]
    assert "Suspected manipulation" in mail.outbox[0].body
    assert cash(buyer) == (1_000_000, 0)


def test_lowering_only_the_quantity_keeps_priority_and_releases_the_difference(asset, buyer, fund, seller):
    other = verified_investor()
    fund(other, 1_000_000)
    first = place(buyer, asset, "buy", 10, 10_000)
    second = place(other, asset, "buy", 10, 10_000)
    modified = trade_order_modify(order=first, investor=buyer, quantity=4, idempotency_key="m1")
    assert modified.pk == first.pk and modified.priority == first.priority
    assert (modified.quantity, modified.remaining_quantity, modified.reserved_minor) == (4, 4, 40_100)
    assert cash(buyer) == (1_000_000 - 40_100, 40_100)
    # The modified order is still first in the queue at its price
    place(seller, asset, "sell", 4, 10_000)
    modified.refresh_from_db()
    second.refresh_from_db()
    assert modified.status == "filled" and second.filled_quantity == 0
    books_sound()


def test_a_new_price_is_a_new_order_that_loses_priority(asset, buyer, fund):
    first = place(buyer, asset, "buy", 10, 10_000)
    later = place(buyer, asset, "buy", 1, 9_000)
    new = trade_order_modify(order=first, investor=buyer, limit_price_minor=9_500, quantity=12, idempotency_key="m2")
    first.refresh_from_db()
    assert (first.status, first.cancel_code, first.reserved_minor) == ("cancelled", "replaced", 0)
    assert new.pk != first.pk and new.replaces_id == first.pk and new.priority > later.priority
    assert new.reserved_minor == 12 * 9_500 + 285 and new.quantity == 12
    assert cash(buyer)[1] == new.reserved_minor + later.reserved_minor
    again = trade_order_modify(order=first, investor=buyer, limit_price_minor=9_500, idempotency_key="m2")
    assert again.pk == new.pk and again.replayed
    with pytest.raises(PermissionDenied):
        trade_order_modify(order=new, investor=verified_investor(), quantity=1, idempotency_key="m3")
    with pytest.raises(ValidationError) as exc_info:
        trade_order_modify(order=new, investor=buyer, quantity=0, idempotency_key="m4")
    assert codes(exc_info.value) == ["not_positive"]
    books_sound()


def test_good_till_date_orders_expire_and_release(asset, buyer, seller, django_capture_on_commit_callbacks):
    now = timezone.now()
    soon = place(buyer, asset, "buy", 2, 10_000, tif="gtd", expires_at=now + datetime.timedelta(hours=1))
    ask = place(seller, asset, "sell", 3, 20_000, tif="gtd", expires_at=now + datetime.timedelta(hours=2))
    later = place(buyer, asset, "buy", 1, 10_000, tif="gtd", expires_at=now + datetime.timedelta(days=2))
    assert trade_orders_expire(now=now) == 0
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert trade_orders_expire(now=now + datetime.timedelta(hours=3)) == 2
    soon.refresh_from_db()
    ask.refresh_from_db()
    later.refresh_from_db()
    assert (soon.status, ask.status, later.status) == ("expired", "expired", "open")
    assert cash(buyer) == (1_000_000 - later.reserved_minor, later.reserved_minor)
    assert units(seller, asset) == (50, 0, 0, 0, 50)
    assert sorted(m.to[0] for m in mail.outbox) == sorted([buyer.email, seller.email])
    assert all("expired" in m.subject.lower() for m in mail.outbox)
    # the beat task runs the same service (nothing due now)
    assert trade_orders_expire_task() == 0
    books_sound()
