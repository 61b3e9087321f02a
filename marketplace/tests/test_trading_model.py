"""The secondary market against a reference model: a small in-memory matcher written only
for these tests (docs/trading.md's rules, nothing imported from the engine), and
hypothesis generating random command logs (place, cancel, modify, expire, an order
falling due) across four investors, a handful of prices and every time in force.

Each log is replayed through the real services on PostgreSQL; after every command the
database's orders (status, fills, reservation, cancel code), book (open orders in
priority order and the aggregated levels), trades (price, quantity, buyer, seller, maker
side, fees), cash and holdings must equal the model's exactly, and `market_check` and
`ledger_check` must be clean after each log. No settlement (trades stay matched): the
outbox rows are written and never sent (on-commit callbacks do not run in a TestCase).

Deterministic in CI (derandomize); TRADING_MODEL_EXAMPLES=500 runs a longer search.
"""

from __future__ import annotations

import copy
import datetime
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from marketplace.models import Holding, LedgerAccount, Market, Trade, TradeOrder
from marketplace.trading import trade_order_cancel, trade_order_modify, trade_order_place, trade_orders_expire
from marketplace.trading_selectors import order_book

from .factories import OfferingFactory, StaffFactory, verified_investor
from .trading_helpers import books_sound, give_units

A = LedgerAccount.Kind
MAKER_BPS, TAKER_BPS = 10, 25
CASH = 150_000  # 1,500.00 EUR each: two or three resting bids, so cash refusals happen
UNITS = 15  # settled units each: sells of up to 6 run out now and then
PRICES = [9_997, 9_999, 10_000, 10_001, 10_003]  # odd prices make the fee rounding visible
INVESTORS = 4
EXAMPLES = int(os.environ.get("TRADING_MODEL_EXAMPLES", "40"))


# -- the reference model ----------------------------------------------------------------------


class Refused(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def reservation(price: int, quantity: int) -> int:
    gross = price * quantity
    return gross + ceil_div(gross * max(MAKER_BPS, TAKER_BPS), 10_000)


@dataclass
class MOrder:
    key: str
    investor: int
    side: str
    quantity: int
    price: int
    tif: str
    expires: int | None  # minutes after the log's start; negative = already due in real time
    priority: int
    filled: int = 0
    remaining: int = 0
    status: str = "open"
    code: str = ""
    reserved: int = 0
    replaces: str | None = None


@dataclass
class MTrade:
    buy_key: str
    sell_key: str
    buyer: int
    seller: int
    price: int
    quantity: int
    maker_side: str
    buyer_fee: int
    seller_fee: int


@dataclass
class Model:
    seq: int = 0
    orders: list[MOrder] = field(default_factory=list)
    trades: list[MTrade] = field(default_factory=list)
    available: list[int] = field(default_factory=lambda: [CASH] * INVESTORS)
    held: list[int] = field(default_factory=lambda: [0] * INVESTORS)
    fees: int = 0
    settled: list[int] = field(default_factory=lambda: [UNITS] * INVESTORS)
    locked: list[int] = field(default_factory=lambda: [0] * INVESTORS)
    pending: list[int] = field(default_factory=lambda: [0] * INVESTORS)
    out: list[int] = field(default_factory=lambda: [0] * INVESTORS)
    last_price: int | None = None

    def by_key(self, key: str) -> MOrder:
        return next(o for o in self.orders if o.key == key)

    def open_orders(self) -> list[MOrder]:
        return [o for o in self.orders if o.status == "open"]

    def side_in_priority(self, side: str) -> list[MOrder]:
        sign = -1 if side == "buy" else 1
        return sorted(
            (o for o in self.orders if o.status == "open" and o.side == side),
            key=lambda o: (sign * o.price, o.priority),
        )

    # every command runs all-or-nothing, as the services' transactions do
    def atomic(self, fn, *args, **kwargs):
        saved = copy.deepcopy(self.__dict__)
        try:
            return fn(*args, **kwargs)
        except Refused:
            self.__dict__.update(saved)
            raise

    def _close(self, order: MOrder, status: str, code: str) -> None:
        if order.side == "buy":
            self.held[order.investor] -= order.reserved
            self.available[order.investor] += order.reserved
            order.reserved = 0
        else:
            self.locked[order.investor] -= order.remaining
        order.status, order.code = status, code

    def _execute(self, incoming: MOrder, resting: MOrder, quantity: int) -> None:
        buy, sell = (incoming, resting) if incoming.side == "buy" else (resting, incoming)
        price = resting.price
        gross = price * quantity
        maker = resting.side
        buyer_bps = min(MAKER_BPS if maker == "buy" else TAKER_BPS, max(MAKER_BPS, TAKER_BPS))
        seller_bps = MAKER_BPS if maker == "sell" else TAKER_BPS
        buyer_fee, seller_fee = gross * buyer_bps // 10_000, gross * seller_bps // 10_000
        self.trades.append(
            MTrade(buy.key, sell.key, buy.investor, sell.investor, price, quantity, maker, buyer_fee, seller_fee)
        )
        self.held[buy.investor] -= gross + buyer_fee
        self.held[sell.investor] += gross - seller_fee
        self.fees += buyer_fee + seller_fee
        needed = reservation(buy.price, buy.remaining - quantity)
        release = buy.reserved - (gross + buyer_fee) - needed
        assert release >= 0, "model: a buy reserved too little"
        self.held[buy.investor] -= release
        self.available[buy.investor] += release
        buy.reserved = needed
        self.locked[sell.investor] -= quantity
        self.out[sell.investor] += quantity
        self.pending[buy.investor] += quantity
        for order in (buy, sell):
            order.filled += quantity
            order.remaining -= quantity
            if order.remaining == 0:
                order.status = "filled"
        self.last_price = price

    def place(self, *, investor, side, quantity, price, tif, expires, key, replaces: MOrder | None = None) -> MOrder:
        return self.atomic(self._place, investor, side, quantity, price, tif, expires, key, replaces)

    def _place(self, investor, side, quantity, price, tif, expires, key, replaces) -> MOrder:
        buy = side == "buy"
        opposite = self.side_in_priority("sell" if buy else "buy")
        crossing = [o for o in opposite if (o.price <= price if buy else o.price >= price)]
        matches: list[tuple[MOrder, int]] = []
        due: list[MOrder] = []
        self_trade = False
        need = quantity
        for resting in crossing:
            if need == 0:
                break
            if resting.investor == investor:
                self_trade = True
                break
            if resting.tif == "gtd" and resting.expires is not None and resting.expires < 0:
                due.append(resting)
                continue
            fill = min(need, resting.remaining)
            matches.append((resting, fill))
            need -= fill
        if replaces is not None:
            self._close(replaces, "cancelled", "replaced")
        reserve = 0
        if buy:
            reserve = reservation(price, quantity)
            if self.available[investor] < reserve:
                raise Refused("insufficient_cash")
        elif quantity > self.settled[investor] - self.locked[investor] - self.out[investor]:
            raise Refused("insufficient_units")
        self.seq += 1
        order = MOrder(
            key, investor, side, quantity, price, tif, expires if tif == "gtd" else None, self.seq, 0, quantity
        )
        order.replaces = replaces.key if replaces else None
        self.orders.append(order)
        for resting in due:
            self._close(resting, "expired", "expired")
        filled = quantity - need
        if tif == "fok" and filled < quantity:
            order.status, order.code = "cancelled", "self_trade" if self_trade else "fok_not_filled"
            return order
        if buy:
            order.reserved = reserve
            self.available[investor] -= reserve
            self.held[investor] += reserve
        else:
            self.locked[investor] += quantity
        for resting, fill in matches:
            self._execute(order, resting, fill)
        if order.status == "open":
            if self_trade:
                self._close(order, "cancelled", "self_trade")
            elif tif in ("ioc", "fok"):
                self._close(order, "cancelled", "ioc_remainder")
        return order

    def cancel(self, order: MOrder) -> MOrder:
        if order.status != "open":
            raise Refused("not_open")
        self._close(order, "cancelled", "cancelled_by_investor")
        return order

    def modify(self, order: MOrder, *, quantity, price, key) -> MOrder:
        if order.status != "open":
            raise Refused("not_open")
        new_quantity = order.remaining if quantity is None else quantity
        new_price = order.price if price is None else price
        if order.tif == "gtd" and order.expires is not None and order.expires < 0:
            raise Refused("expiry_in_past")
        if new_price == order.price and new_quantity <= order.remaining:
            cut = order.remaining - new_quantity
            if order.side == "buy":
                needed = reservation(new_price, new_quantity)
                self.held[order.investor] -= order.reserved - needed
                self.available[order.investor] += order.reserved - needed
                order.reserved = needed
            else:
                self.locked[order.investor] -= cut
            order.quantity -= cut
            order.remaining = new_quantity
            return order
        return self.place(
            investor=order.investor,
            side=order.side,
            quantity=new_quantity,
            price=new_price,
            tif=order.tif,
            expires=order.expires,
            key=key,
            replaces=order,
        )

    def expire(self, minutes: int) -> int:
        due = [o for o in self.open_orders() if o.tif == "gtd" and o.expires is not None and o.expires <= minutes]
        for order in due:
            self._close(order, "expired", "expired")
        return len(due)

    def fall_due(self, order: MOrder) -> None:
        order.expires = -1


# -- command logs ----------------------------------------------------------------------------

investor_st = st.integers(0, INVESTORS - 1)
price_st = st.sampled_from(PRICES)
quantity_st = st.integers(1, 6)
ref_st = st.integers(0, 10_000)  # which order: modulo the open orders (or all, with `any_order`)

place_st = st.tuples(
    st.just("place"),
    investor_st,
    st.sampled_from(["buy", "sell"]),
    quantity_st,
    price_st,
    st.sampled_from(["gtc", "gtc", "gtd", "ioc", "fok"]),
    st.integers(1, 5),  # a gtd order's expiry, in hours from the start
)
cancel_st = st.tuples(st.just("cancel"), ref_st, st.booleans())
modify_st = st.tuples(st.just("modify"), ref_st, st.booleans(), st.none() | quantity_st, st.none() | price_st)
expire_st = st.tuples(st.just("expire"), st.integers(0, 6))  # beat runs at start + N hours
due_st = st.tuples(st.just("due"), ref_st)  # an open gtd order's time comes before beat sweeps it
COMMANDS = {"place": place_st, "cancel": cancel_st, "modify": modify_st, "expire": expire_st, "due": due_st}
# st.one_of would not weight by repetition: draw the kind first (places are half the log)
command_st = st.sampled_from(["place"] * 6 + ["cancel", "modify", "modify", "modify", "expire", "due"]).flatmap(
    COMMANDS.__getitem__
)
log_st = st.lists(command_st, min_size=10, max_size=40)


# -- replay and comparison ---------------------------------------------------------------------


@override_settings(
    MARKETPLACE_MAKER_FEE_BPS=MAKER_BPS,
    MARKETPLACE_TAKER_FEE_BPS=TAKER_BPS,
    MARKETPLACE_TRADE_ORDER_RATE=(100_000, 60),
    MARKETPLACE_MAX_OPEN_ORDERS_PER_ASSET=1_000,
    MARKETPLACE_PRICE_CHECKS=[],
)
class TradingModelTests(TestCase):
    asset: Any
    investors: list[Any]

    @classmethod
    def setUpTestData(cls):
        from marketplace.services import deposit_record

        staff = StaffFactory()
        cls.asset = OfferingFactory().asset
        cls.investors = [verified_investor() for _ in range(INVESTORS)]
        for i, user in enumerate(cls.investors):
            deposit_record(investor=user, amount_minor=CASH, currency="EUR", bank_reference=f"M-{i}", actor=staff)
            give_units(user, cls.asset, UNITS)

    # the database's state in the model's terms
    def db_state(self, keys: dict[int, str]):
        index = {u.pk: i for i, u in enumerate(self.investors)}
        market = Market.objects.filter(asset=self.asset).first()
        if market is None:
            return None
        orders = list(TradeOrder.objects.filter(market=market).select_related("replaces").order_by("priority"))
        for o in orders:
            keys[o.pk] = o.idempotency_key
        book = {
            side: [
                (o.idempotency_key, o.remaining_quantity)
                for o in sorted(
                    (o for o in orders if o.status == "open" and o.side == side),
                    key=lambda o: ((-1 if side == "buy" else 1) * o.limit_price_minor, o.priority),
                )
            ]
            for side in ("buy", "sell")
        }
        levels = order_book(market=market, depth=100)
        cash = {
            (a.kind, a.user_id): a.balance
            for a in LedgerAccount.objects.filter(currency="EUR", kind__in=[A.INVESTOR_AVAILABLE, A.INVESTOR_HELD])
        }
        fees = LedgerAccount.objects.filter(currency="EUR", kind=A.PLATFORM_FEES).first()
        holdings = {h.investor_id: h for h in Holding.objects.filter(asset=self.asset)}
        return {
            "orders": [
                (
                    o.idempotency_key,
                    index[o.investor_id],
                    o.side,
                    o.quantity,
                    o.filled_quantity,
                    o.remaining_quantity,
                    o.limit_price_minor,
                    o.time_in_force,
                    o.status,
                    o.cancel_code,
                    o.reserved_minor,
                    o.replaces.idempotency_key if o.replaces else None,
                )
                for o in orders
            ],
            "book": book,
            "levels": (
                [(lvl.price_minor, lvl.quantity, lvl.orders) for lvl in levels.bids],
                [(lvl.price_minor, lvl.quantity, lvl.orders) for lvl in levels.asks],
            ),
            "trades": [
                (
                    keys[t.buy_order_id],
                    keys[t.sell_order_id],
                    index[t.buyer_id],
                    index[t.seller_id],
                    t.price_minor,
                    t.quantity,
                    t.maker_side,
                    t.buyer_fee_minor,
                    t.seller_fee_minor,
                )
                for t in Trade.objects.filter(market=market).order_by("pk")
            ],
            "cash": [
                (cash.get((A.INVESTOR_AVAILABLE, u.pk), 0), cash.get((A.INVESTOR_HELD, u.pk), 0))
                for u in self.investors
            ],
            "fees": fees.balance if fees else 0,
            "units": [
                (
                    holdings[u.pk].quantity,
                    holdings[u.pk].pending_quantity,
                    holdings[u.pk].locked_quantity,
                    holdings[u.pk].pending_out_quantity,
                )
                for u in self.investors
            ],
            "last_price": market.last_price_minor,
        }

    @staticmethod
    def model_state(model: Model):
        def levels(side):
            out: dict[int, list[int]] = {}
            for o in model.side_in_priority(side):
                level = out.setdefault(o.price, [0, 0])
                level[0] += o.remaining
                level[1] += 1
            return [(price, q, n) for price, (q, n) in out.items()]

        return {
            "orders": [
                (
                    o.key,
                    o.investor,
                    o.side,
                    o.quantity,
                    o.filled,
                    o.remaining,
                    o.price,
                    o.tif,
                    o.status,
                    o.code,
                    o.reserved,
                    o.replaces,
                )
                for o in sorted(model.orders, key=lambda o: o.priority)
            ],
            "book": {side: [(o.key, o.remaining) for o in model.side_in_priority(side)] for side in ("buy", "sell")},
            "levels": (levels("buy"), levels("sell")),
            "trades": [
                (t.buy_key, t.sell_key, t.buyer, t.seller, t.price, t.quantity, t.maker_side, t.buyer_fee, t.seller_fee)
                for t in model.trades
            ],
            "cash": list(zip(model.available, model.held, strict=True)),
            "fees": model.fees,
            "units": list(zip(model.settled, model.pending, model.locked, model.out, strict=True)),
            "last_price": model.last_price,
        }

    def pick(self, model: Model, ref: int, any_order: bool) -> MOrder | None:
        candidates = model.orders if any_order or not model.open_orders() else model.open_orders()
        return candidates[ref % len(candidates)] if candidates else None

    def run_log(self, log):
        model = Model()
        start = timezone.now()
        keys: dict[int, str] = {}
        users = self.investors

        def expiry(minutes):
            return start + datetime.timedelta(minutes=minutes)

        def db_order(m: MOrder) -> TradeOrder:
            return TradeOrder.objects.get(investor=users[m.investor], idempotency_key=m.key)

        for step, command in enumerate(log):
            kind = command[0]
            key = uuid.uuid4().hex
            expected = real = None
            expect: Callable[[], Any]
            act: Callable[[], Any]
            if kind == "place":
                _, who, side, quantity, price, tif, hours = command
                expires = hours * 60 if tif == "gtd" else None
                expect = partial(
                    model.place,
                    investor=who,
                    side=side,
                    quantity=quantity,
                    price=price,
                    tif=tif,
                    expires=expires,
                    key=key,
                )
                act = partial(
                    trade_order_place,
                    investor=users[who],
                    asset=self.asset,
                    side=side,
                    quantity=quantity,
                    limit_price_minor=price,
                    time_in_force=tif,
                    expires_at=expiry(expires) if expires is not None else None,
                    idempotency_key=key,
                )
            elif kind in ("cancel", "modify", "due"):
                target = self.pick(model, command[1], command[2] if kind != "due" else False)
                if target is None:
                    continue
                row = db_order(target)
                if kind == "due":
                    if target.status != "open" or target.tif != "gtd":
                        continue
                    model.fall_due(target)
                    TradeOrder.objects.filter(pk=row.pk).update(expires_at=expiry(-1))
                    continue
                if kind == "cancel":
                    expect = partial(model.cancel, target)
                    act = partial(trade_order_cancel, order=row, actor=users[target.investor])
                else:
                    _, _, _, quantity, price = command
                    expect = partial(model.modify, target, quantity=quantity, price=price, key=key)
                    act = partial(
                        trade_order_modify,
                        order=row,
                        investor=users[target.investor],
                        quantity=quantity,
                        limit_price_minor=price,
                        idempotency_key=key,
                    )
            else:  # expire
                minutes = command[1] * 60
                expect = partial(model.expire, minutes)
                act = partial(trade_orders_expire, now=expiry(minutes))

            try:
                expected = expect()
            except Refused as exc:
                expected = exc
            try:
                real = act()
            except ValidationError as exc:
                real = exc
            where = f"step {step}: {command}"
            outcome = expected.code if isinstance(expected, Refused) else getattr(expected, "code", "") or "ok"
            event(f"{kind}: {outcome}")
            if isinstance(expected, Refused):
                assert isinstance(real, ValidationError), (
                    f"{where}: the model refuses {expected.code}, the engine {real}"
                )
                assert [e.code for e in real.error_list][0] == expected.code, f"{where}: {real.error_list}"
            else:
                assert not isinstance(real, ValidationError), f"{where}: the engine refused {real.error_list}"
                if isinstance(expected, MOrder):
                    assert real.idempotency_key == expected.key and real.status == expected.status, where
                else:
                    assert real == expected, f"{where}: {real} expired, the model says {expected}"
            db, mine = self.db_state(keys), self.model_state(model)
            if db is None:  # no order reached the book yet (the market opens with the first one)
                assert not model.orders, where
                continue
            for part in mine:
                assert db[part] == mine[part], f"{where}: {part} differ\n db   : {db[part]}\n model: {mine[part]}"
        books_sound()
        event(f"trades in the log: {min(len(model.trades), 10)}{'+' if len(model.trades) >= 10 else ''}")
        return model

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @example(  # priority: lowering only the quantity keeps it, a price change loses it
        log=[
            ("place", 0, "sell", 3, 10_000, "gtc", 1),
            ("place", 1, "sell", 3, 10_000, "gtc", 1),
            ("modify", 0, False, 2, None),  # investor 0's ask: 3 → 2, stays first
            ("place", 2, "buy", 2, 10_000, "gtc", 1),  # takes investor 0's
            ("modify", 0, False, None, 9_999),  # investor 1's ask to 99.99, re-enters
            ("place", 3, "sell", 2, 9_999, "gtc", 1),  # behind it at 99.99
            ("place", 2, "buy", 5, 10_003, "fok", 1),  # only 5 there? 3 + 2: fills
        ]
    )
    @example(  # self-trade stops the walk; fok with self-trade records nothing traded
        log=[
            ("place", 0, "sell", 2, 9_999, "gtc", 1),
            ("place", 1, "sell", 2, 10_000, "gtc", 1),
            ("place", 1, "buy", 4, 10_001, "fok", 1),
            ("place", 1, "buy", 4, 10_001, "ioc", 1),
            ("place", 0, "buy", 5, 10_003, "gtc", 1),
        ]
    )
    @example(  # a due gtd order is expired by the walk, beat expires the rest
        log=[
            ("place", 0, "buy", 2, 10_003, "gtd", 1),
            ("place", 1, "buy", 2, 10_001, "gtd", 3),
            ("due", 0),
            ("modify", 0, True, 1, None),  # the due order cannot be modified
            ("place", 2, "sell", 3, 9_997, "gtc", 1),
            ("expire", 4),
        ]
    )
    @given(log=log_st)
    def test_random_command_logs_match_the_reference_model(self, log):
        self.run_log(log)
