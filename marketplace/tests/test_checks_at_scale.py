"""`market_check` and `ledger_check` at scale: the statements they execute do not grow
with the book (orders, trades, holdings, postings), only with the batches of trades; and
a problem is found whichever batch its row falls in. bench/checks times them on a
million postings."""

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import UserFactory
from marketplace import market_proofs
from marketplace.ledger_proofs import ledger_verify
from marketplace.market_proofs import market_verify
from marketplace.models import Holding, JournalEntry, LedgerAccount, Posting, Trade

from .factories import OfferingFactory, verified_investor
from .trading_helpers import give_units, place

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def rates(settings):
    settings.MARKETPLACE_MAKER_FEE_BPS = 10
    settings.MARKETPLACE_TAKER_FEE_BPS = 25
    settings.MARKETPLACE_TRADE_ORDER_RATE = (1000, 60)


@pytest.fixture
def book(fund):
    """Adds `trades` trades to one market, each between a new seller and buyer who then
    leave a bid and an ask resting (never crossed); returns the trades so far."""
    asset = OfferingFactory().asset

    def grow(trades: int) -> list[Trade]:
        for _ in range(trades):
            seller, buyer = verified_investor(), verified_investor()
            give_units(seller, asset, 10)
            fund(buyer, 1_000_000)
            place(seller, asset, "sell", 2, 10_000)
            place(buyer, asset, "buy", 2, 10_000)
            place(buyer, asset, "buy", 1, 9_000)
            place(seller, asset, "sell", 1, 11_000)
        return list(Trade.objects.order_by("pk"))

    return grow


def _statements(check) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as ctx:
        report = check()
    return len(ctx.captured_queries), report


def test_market_check_statements_do_not_grow_with_the_book(book):
    book(1)
    few, report = _statements(market_verify)
    assert report.ok, report.problems
    book(4)
    many, report = _statements(market_verify)
    assert report.ok, report.problems
    assert (report.trades, report.orders) == (5, 20)
    assert many == few


def test_market_check_reads_the_trades_in_batches_of_two_statements(book, monkeypatch):
    monkeypatch.setattr(market_proofs, "TRADES_PER_BATCH", 2)
    book(1)
    one_batch, _ = _statements(market_verify)
    book(4)  # 5 trades: batches of 2, 2 and 1
    three_batches, report = _statements(market_verify)
    assert report.ok, report.problems
    assert three_batches == one_batch + 2 * 2


@pytest.mark.parametrize("which", [0, 2, 4], ids=["first batch", "middle batch", "last batch"])
def test_market_check_names_a_bad_trade_in_any_batch(book, monkeypatch, which):
    monkeypatch.setattr(market_proofs, "TRADES_PER_BATCH", 2)
    trade = book(5)[which]
    Posting.objects.filter(entry__trade=trade, account__kind="platform_fees").update(amount_minor=F("amount_minor") + 1)
    Trade.objects.filter(pk=trade.pk).update(buyer_fee_minor=F("buyer_fee_minor") + 1)
    problems = market_verify().problems
    assert any(p.startswith(f"trade #{trade.pk}: its journal entry moved") for p in problems), problems
    assert any(p.startswith(f"trade #{trade.pk}: buyer fee") for p in problems), problems
    assert all(f"trade #{trade.pk}" in p for p in problems if p.startswith("trade #")), problems


def test_market_check_names_each_holding_and_order_that_disagrees_among_many(book):
    trades = book(4)
    sellers = [t.seller_id for t in trades]
    Holding.objects.filter(investor_id__in=sellers[1:3]).update(locked_quantity=F("locked_quantity") + 1)
    holder = UserFactory()
    LedgerAccount.objects.create(kind="investor_held", user=holder, currency="EUR")
    LedgerAccount.objects.filter(user=holder, kind="investor_held").update(balance=3)
    problems = market_verify().problems
    locked = [p for p in problems if "units locked" in p]
    assert len(locked) == 2 and all("its orders and trades say 1" in p for p in locked), problems
    ids = [int(p.split("#")[1].split(" ")[0]) for p in locked]
    assert ids == sorted(ids)  # in holding order, as before batching
    assert (
        f"investor #{holder.pk} held EUR is 3, its open buy orders, unsettled sales, primary orders and "
        "withdrawals add up to 0" in problems
    )


def test_ledger_check_statements_do_not_grow_with_the_postings(fund):
    investors = [UserFactory() for _ in range(6)]
    fund(investors[0], 1_000)
    few, report = _statements(ledger_verify)
    assert report.ok
    for investor in investors[1:]:
        fund(investor, 2_000)
        fund(investor, 3_000)
    many, report = _statements(ledger_verify)
    assert report.ok and report.entries == 11
    assert many == few


def test_ledger_check_names_an_entry_that_does_not_balance_and_one_with_a_single_posting(fund):
    investor = UserFactory()
    fund(investor, 1_000)
    fund(investor, 2_000)
    first, second = JournalEntry.objects.order_by("pk")
    Posting.objects.filter(entry=first, amount_minor__gt=0).update(amount_minor=999)
    Posting.objects.filter(entry=second, amount_minor__lt=0).delete()
    problems = ledger_verify().problems
    assert f"journal entry #{first.pk} does not balance in EUR: -1" in problems
    assert f"journal entry #{second.pk} has fewer than two postings" in problems
    assert any("balance 3000 != postings 2999" in p for p in problems), problems
