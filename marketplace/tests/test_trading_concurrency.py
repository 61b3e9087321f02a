"""The secondary market under real concurrency: threads on PostgreSQL, each with its own
connection, committing for real. Many clients place (crossing and not, every time in
force), modify and cancel on one hot book, staff cancel and beat expires at the same
time; then the same across several books whose investors share their cash.

Afterwards: market_check and ledger_check clean, cash and units conserved per investor,
per asset and overall (counting fees), nothing negative, no order overfilled, and every
failure a ValidationError with a known code (no deadlock, serialization failure or
IntegrityError reached a client)."""

import datetime
import io
import random
import threading
import time
import uuid
from collections import Counter, defaultdict

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from marketplace.ledger_proofs import ledger_verify
from marketplace.market_proofs import market_verify
from marketplace.models import Holding, LedgerAccount, Trade, TradeOrder
from marketplace.trading import (
    trade_order_cancel,
    trade_order_modify,
    trade_order_place,
    trade_orders_expire,
)

from .factories import OfferingFactory, StaffFactory, verified_investor
from .test_concurrency import cash_invariants, run_in_threads
from .trading_helpers import books_sound, give_units

pytestmark = pytest.mark.django_db(transaction=True)
A = LedgerAccount.Kind

# The refusals a client may meet when others race it: anything else (OperationalError,
# IntegrityError, a deadlock, an AssertionError from the engine) fails the test.
KNOWN_CODES = {
    "insufficient_cash",
    "insufficient_units",
    "not_open",
    "too_many_open_orders",
    "expiry_in_past",  # a gtd order being modified just as its time came
}


@pytest.fixture(autouse=True)
def rates(settings):
    settings.MARKETPLACE_MAKER_FEE_BPS = 10
    settings.MARKETPLACE_TAKER_FEE_BPS = 25
    settings.MARKETPLACE_TRADE_ORDER_RATE = (100_000, 60)
    settings.MARKETPLACE_MAX_OPEN_ORDERS_PER_ASSET = 8
    settings.MARKETPLACE_PRICE_CHECKS = []


class Outcomes:
    def __init__(self):
        self.counts: Counter = Counter()
        self.unexpected: list[str] = []
        self._lock = threading.Lock()

    def run(self, label: str, fn):
        try:
            result = fn()
        except ValidationError as exc:
            code = exc.error_list[0].code
            with self._lock:
                self.counts[f"{label}:{code}"] += 1
                if code not in KNOWN_CODES:
                    self.unexpected.append(f"{label}: ValidationError {code}: {exc.messages}")
            return None
        except Exception as exc:  # noqa: BLE001 - every other failure is the finding
            with self._lock:
                self.unexpected.append(f"{label}: {type(exc).__name__}: {exc}")
            return None
        with self._lock:
            self.counts[f"{label}:ok"] += 1
        return result


def snapshot(investors, assets):
    cash = {
        u.pk: sum(
            LedgerAccount.objects.filter(
                user=u, currency="EUR", kind__in=[A.INVESTOR_AVAILABLE, A.INVESTOR_HELD]
            ).values_list("balance", flat=True)
        )
        for u in investors
    }
    units = {
        (h.investor_id, h.asset_id): h.quantity
        for h in Holding.objects.filter(investor__in=investors, asset__in=assets)
    }
    return cash, units


def client(*, user, assets, rnd: random.Random, steps: int, outcomes: Outcomes, mid: int = 10_000):
    """One investor's browser: mostly places near the mid (half of them crossing), the rest
    modifies or cancels one of its open orders."""

    def run():
        for _ in range(steps):
            asset = rnd.choice(assets)
            op = rnd.choices(["place", "cancel", "modify"], weights=[6, 2, 2])[0]
            mine = list(
                TradeOrder.objects.filter(investor=user, asset=asset, status="open").values_list("pk", flat=True)
            )
            if op != "place" and mine:
                order = TradeOrder.objects.get(pk=rnd.choice(mine))
                if op == "cancel":
                    outcomes.run("cancel", lambda order=order: trade_order_cancel(order=order, actor=user))
                else:
                    quantity = rnd.choice([None, rnd.randint(1, 6)])
                    price = rnd.choice([None, mid + rnd.randint(-4, 4)]) if quantity else mid + rnd.randint(-4, 4)
                    outcomes.run(
                        "modify",
                        lambda order=order, quantity=quantity, price=price: trade_order_modify(
                            order=order,
                            investor=user,
                            quantity=quantity,
                            limit_price_minor=price,
                            idempotency_key=uuid.uuid4().hex,
                        ),
                    )
                continue
            side = rnd.choice(["buy", "sell"])
            # a buy at mid+k and a sell at mid-k cross the other side's resting orders
            offset = rnd.randint(-4, 4)
            price = mid + offset if side == "buy" else mid - offset
            tif = rnd.choices(["gtc", "gtd", "ioc", "fok"], weights=[4, 2, 2, 2])[0]
            expires = timezone.now() + datetime.timedelta(seconds=rnd.uniform(0.2, 1.5)) if tif == "gtd" else None
            outcomes.run(
                f"place-{tif}",
                lambda asset=asset, side=side, price=price, tif=tif, expires=expires: trade_order_place(
                    investor=user,
                    asset=asset,
                    side=side,
                    quantity=rnd.randint(1, 6),
                    limit_price_minor=price,
                    time_in_force=tif,
                    expires_at=expires,
                    idempotency_key=uuid.uuid4().hex,
                ),
            )

    return run


def staff_canceller(*, staff, assets, rnd: random.Random, outcomes: Outcomes, done: threading.Event):
    def run():
        while not done.is_set():
            open_orders = list(TradeOrder.objects.filter(asset__in=assets, status="open").values_list("pk", flat=True))
            if open_orders:
                order = TradeOrder.objects.get(pk=rnd.choice(open_orders))
                outcomes.run(
                    "staff-cancel",
                    lambda order=order: trade_order_cancel(order=order, actor=staff, reason="Race test"),
                )
            time.sleep(0.05)  # pacing, not synchronisation: staff act now and then

    return run


def beat(*, outcomes: Outcomes, done: threading.Event):
    def run():
        while not done.is_set():
            outcomes.run("expire", trade_orders_expire)
            time.sleep(0.1)  # pacing: beat's interval, shortened

    return run


def race(*, investors, assets, staff, seed: int, steps: int) -> Outcomes:
    outcomes = Outcomes()
    done = threading.Event()
    clients = [
        client(user=u, assets=assets, rnd=random.Random(seed * 100 + i), steps=steps, outcomes=outcomes)
        for i, u in enumerate(investors)
    ]

    remaining = [len(clients)]
    lock = threading.Lock()

    def counted(fn):
        def run():
            try:
                fn()
            finally:
                with lock:
                    remaining[0] -= 1
                    if remaining[0] == 0:
                        done.set()

        return run

    run_in_threads(
        [counted(c) for c in clients]
        + [
            staff_canceller(staff=staff, assets=assets, rnd=random.Random(seed), outcomes=outcomes, done=done),
            beat(outcomes=outcomes, done=done),
        ],
        timeout=240,
    )
    return outcomes


def assert_sound(*, investors, assets, before, outcomes: Outcomes):
    assert not outcomes.unexpected, outcomes.unexpected[:10]
    trades = list(Trade.objects.filter(asset__in=assets))
    assert outcomes.counts and trades, outcomes.counts  # the race did trade

    # The proofs over the whole market and ledger (and the command says so too)
    market, ledger = market_verify(), ledger_verify()
    assert market.ok, market.problems
    assert ledger.ok, ledger.problems
    out = io.StringIO()
    call_command("market_check", stdout=out)
    assert "0 problem(s)" in out.getvalue()
    cash_invariants()  # deposits = Σ balances incl. fees, nothing negative

    # Cash per investor: before + net of sales − cost of purchases = after (available + held)
    cash_before, units_before = before
    cash_after, units_after = snapshot(investors, assets)
    delta: dict[int, int] = defaultdict(int)
    for t in trades:
        delta[t.seller_id] += t.seller_net_minor
        delta[t.buyer_id] -= t.buyer_cost_minor
    for u in investors:
        assert cash_after[u.pk] == cash_before[u.pk] + delta[u.pk], u.pk
    fees = LedgerAccount.objects.get(kind=A.PLATFORM_FEES, currency="EUR").balance
    assert fees == sum(t.buyer_fee_minor + t.seller_fee_minor for t in trades)
    assert sum(cash_after.values()) + fees == sum(cash_before.values())

    # Units: nothing settles here, so settled units are unchanged; what moved is pending
    assert units_after == units_before
    for asset in assets:
        bought: dict[int, int] = defaultdict(int)
        sold: dict[int, int] = defaultdict(int)
        for t in trades:
            if t.asset_id == asset.pk:
                bought[t.buyer_id] += t.quantity
                sold[t.seller_id] += t.quantity
        for h in Holding.objects.filter(asset=asset, investor__in=investors):
            assert (h.pending_quantity, h.pending_out_quantity) == (bought[h.investor_id], sold[h.investor_id]), h.pk
            assert h.available_to_sell >= 0 and h.locked_quantity >= 0, h.pk
        assert sum(bought.values()) == sum(sold.values())
    # No order traded more than it asked for, and every fill is accounted for by trades
    per_order: dict[int, int] = defaultdict(int)
    for t in trades:
        per_order[t.buy_order_id] += t.quantity
        per_order[t.sell_order_id] += t.quantity
    for order in TradeOrder.objects.filter(asset__in=assets):
        assert per_order[order.pk] == order.filled_quantity <= order.quantity, order.pk
        assert order.remaining_quantity >= 0
        if order.status != "open":
            assert order.reserved_minor == 0
    assert not LedgerAccount.objects.exclude(kind=A.BANK).filter(balance__lt=0).exists()
    assert Holding.objects.aggregate(s=Sum("quantity"))["s"] == sum(units_before.values())


def people(n, assets, staff, *, cash=400_000, units=40):
    from marketplace.services import deposit_record

    investors = [verified_investor() for _ in range(n)]
    for i, user in enumerate(investors):
        deposit_record(investor=user, amount_minor=cash, currency="EUR", bank_reference=f"C-{i}", actor=staff)
        for asset in assets:
            give_units(user, asset, units)
    return investors


@pytest.mark.parametrize("seed", [1, 2])
def test_many_clients_race_on_one_hot_book(seed):
    staff = StaffFactory()
    asset = OfferingFactory().asset
    investors = people(12, [asset], staff)
    before = snapshot(investors, [asset])
    outcomes = race(investors=investors, assets=[asset], staff=staff, seed=seed, steps=25)
    assert_sound(investors=investors, assets=[asset], before=before, outcomes=outcomes)
    counts = outcomes.counts
    assert counts["place-gtc:ok"] and counts["cancel:ok"] + counts["staff-cancel:ok"], counts
    # every kind of close happened under the race: fills, investor/staff cancels, expiries
    assert TradeOrder.objects.filter(status="filled").exists()
    assert TradeOrder.objects.filter(status="expired").exists(), counts


def test_books_in_parallel_share_their_investors_cash():
    staff = StaffFactory()
    assets = [OfferingFactory().asset for _ in range(3)]
    investors = people(10, assets, staff, cash=600_000, units=30)
    before = snapshot(investors, assets)
    outcomes = race(investors=investors, assets=assets, staff=staff, seed=9, steps=30)
    assert_sound(investors=investors, assets=assets, before=before, outcomes=outcomes)
    assert all(Trade.objects.filter(asset=a).exists() for a in assets)


def test_a_double_click_from_four_tabs_places_one_order_and_reserves_once():
    staff = StaffFactory()
    asset = OfferingFactory().asset
    (buyer,) = people(1, [asset], staff)

    def submit():
        return trade_order_place(
            investor=buyer,
            asset=asset,
            side="buy",
            quantity=3,
            limit_price_minor=10_001,
            time_in_force="gtc",
            idempotency_key="same-form",
        )

    results = run_in_threads([submit] * 4)
    assert all(isinstance(r, TradeOrder) for r in results), results
    assert len({r.pk for r in results}) == 1 and sum(not r.replayed for r in results) == 1
    order = TradeOrder.objects.get()
    held = LedgerAccount.objects.get(user=buyer, kind=A.INVESTOR_HELD).balance
    assert held == order.reserved_minor == 30_003 + 76
    books_sound()


def test_an_order_that_does_not_trade_never_waits_for_the_platform_fee_account():
    """Regression: every order entry locked the platform's fee account, so books of
    different assets serialised on that one row even when nothing traded. Now only an
    entry with a match takes it: with the row locked elsewhere, a resting order, a
    cancel and an expiry still go through at once."""
    from django.db import connection, transaction

    from marketplace.locks import ledger_accounts_lock

    staff = StaffFactory()
    asset = OfferingFactory().asset
    (buyer, seller) = people(2, [asset], staff)
    with transaction.atomic():
        ledger_accounts_lock(specs=[(A.PLATFORM_FEES, None, "EUR")])  # the row exists
    holding, release = threading.Event(), threading.Event()

    def hold_fee_account():
        with transaction.atomic():
            LedgerAccount.objects.select_for_update().get(kind=A.PLATFORM_FEES, currency="EUR")
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=lambda: (hold_fee_account(), connection.close()))
    holder.start()
    try:
        assert holding.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")
        try:
            bid = trade_order_place(
                investor=buyer,
                asset=asset,
                side="buy",
                quantity=2,
                limit_price_minor=9_000,
                time_in_force="gtc",
                idempotency_key="no-trade",
            )
            ask = trade_order_place(
                investor=seller,
                asset=asset,
                side="sell",
                quantity=2,
                limit_price_minor=11_000,
                time_in_force="gtd",
                expires_at=timezone.now() + datetime.timedelta(hours=1),
                idempotency_key="no-trade",
            )
            trade_order_cancel(order=bid, actor=buyer)
            assert trade_orders_expire(now=timezone.now() + datetime.timedelta(hours=2)) == 1
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = 0")
    finally:
        release.set()
        holder.join(30)
    bid.refresh_from_db()
    ask.refresh_from_db()
    assert (bid.status, ask.status) == ("cancelled", "expired")
    assert not Trade.objects.exists()
    books_sound()
