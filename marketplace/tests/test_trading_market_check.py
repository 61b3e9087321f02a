"""`manage.py market_check` passes on a sound market and names the rows of each kind of
violation planted behind the services' back."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import F

from marketplace.models import Holding, LedgerAccount, Market, Posting, Trade, TradeOrder

from .factories import OfferingFactory, verified_investor
from .trading_helpers import give_units, place

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def rates(settings):
    settings.MARKETPLACE_MAKER_FEE_BPS = 10
    settings.MARKETPLACE_TAKER_FEE_BPS = 25
    settings.MARKETPLACE_TRADE_ORDER_RATE = (1000, 60)


@pytest.fixture
def market(fund):
    """A live book: a partial fill, a resting bid and ask, a settled-out seller."""
    asset = OfferingFactory().asset
    seller, buyer, bidder = verified_investor(), verified_investor(), verified_investor()
    give_units(seller, asset, 20)
    fund(buyer, 1_000_000)
    fund(bidder, 1_000_000)
    ask = place(seller, asset, "sell", 10, 10_000)
    bid = place(buyer, asset, "buy", 4, 10_000)
    rest = place(bidder, asset, "buy", 5, 9_000)
    return {"asset": asset, "ask": ask, "bid": bid, "rest": rest, "trade": Trade.objects.get()}


def _check(capsys) -> tuple[object, str]:
    try:
        call_command("market_check")
    except SystemExit as exc:
        return exc.code, capsys.readouterr().out
    return 0, capsys.readouterr().out


def test_a_sound_market_passes(market, capsys):
    code, out = _check(capsys)
    assert code == 0, out
    assert "1 markets, 3 orders, 1 trades checked, 0 problem(s)" in out


def _crossed(m):
    TradeOrder.objects.filter(pk=m["rest"].pk).update(limit_price_minor=10_500)
    return f"market #{Market.objects.get().pk}", "crossed at rest"


def _reservation(m):
    TradeOrder.objects.filter(pk=m["rest"].pk).update(reserved_minor=F("reserved_minor") - 1)
    return f"trade order #{m['rest'].pk} (open buy)", "need"


def _held_cash(m):
    LedgerAccount.objects.filter(user=m["rest"].investor, kind="investor_held").update(balance=F("balance") + 5)
    return f"investor #{m['rest'].investor_id} held EUR", "add up to"


def _locked(m):
    Holding.objects.filter(investor=m["ask"].investor).update(locked_quantity=F("locked_quantity") + 1)
    return "units locked", "its orders and trades say 6"


def _filled_plus_remaining(m):
    with connection.cursor() as cursor:  # the CHECK constraint would refuse it, so drop it in this test's transaction
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "ALTER TABLE marketplace_tradeorder DROP CONSTRAINT trade_order_filled_plus_remaining, "
            "DROP CONSTRAINT trade_order_open_has_remainder"
        )
    TradeOrder.objects.filter(pk=m["ask"].pk).update(quantity=11)
    return f"trade order #{m['ask'].pk}: filled 4 + remaining 6 != original 11", ""


def _units(m):
    Trade.objects.filter(pk=m["trade"].pk).update(quantity=5, gross_minor=50_000)
    return f"trade order #{m['bid'].pk}: filled 4 but its trades sum to 5", ""


def _bought_vs_sold(m):
    TradeOrder.objects.filter(pk=m["bid"].pk).update(quantity=5, filled_quantity=5)
    return f"asset #{m['asset'].pk}: 5 units bought but 4 sold", ""


def _cash(m):
    Posting.objects.filter(entry__trade=m["trade"], account__kind="platform_fees").update(
        amount_minor=F("amount_minor") + 1
    )
    return f"trade #{m['trade'].pk}: its journal entry moved", ""


def _fee(m):
    Trade.objects.filter(pk=m["trade"].pk).update(buyer_fee_minor=F("buyer_fee_minor") + 1)
    return f"trade #{m['trade'].pk}: buyer fee 101 != 25 bps of 40000 = 100", ""


def _fee_rate(m):
    Trade.objects.filter(pk=m["trade"].pk).update(seller_fee_bps=25, seller_fee_minor=100)
    return f"trade #{m['trade'].pk}: fee rates buyer 25 / seller 25 bps, configured 25 / 10", ""


def _price(m):
    Trade.objects.filter(pk=m["trade"].pk).update(price_minor=9_000, gross_minor=36_000)
    return f"trade #{m['trade'].pk}: the maker is order #{m['ask'].pk}", ""


@pytest.mark.parametrize(
    "plant",
    [
        _crossed,
        _reservation,
        _held_cash,
        _locked,
        _filled_plus_remaining,
        _units,
        _bought_vs_sold,
        _cash,
        _fee,
        _fee_rate,
        _price,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_each_violation_is_caught_and_named(market, capsys, plant):
    code, out = _check(capsys)
    assert code == 0, out
    names, detail = plant(market)
    code, out = _check(capsys)
    assert code == 1, out
    problems = [line for line in out.splitlines() if line.startswith("PROBLEM")]
    assert any(names in line and detail in line for line in problems), out
