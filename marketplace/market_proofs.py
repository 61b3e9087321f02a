"""Proofs about the secondary market over the whole book (used by `manage.py market_check`
and the tests), each naming the rows that break it:

1. no book is crossed at rest: best open bid < best open ask, per market;
2. every open buy holds exactly limit × remaining + the maximum fee on it (rounded up),
   closed and sell orders hold nothing, and every investor's held cash equals what its
   purposes add up to: open buy orders, unsettled trade proceeds as a seller, primary
   orders not settled or refunded, requested withdrawals;
3. every holding's locked units equal its open sell orders' remaining quantity, its
   settling-out units its unsettled trades as a seller, and its pending units its
   unsettled trades as a buyer plus its primary orders not settled or refunded;
4. filled + remaining = original for every order, and filled = Σ its trades;
5. trades conserve cash and units: gross = price × quantity at the maker's limit (an
   auction's trade: at its auction's clearing price, proof 7) within both limits, the
   trade's journal entry moves exactly the buyer's cost, the seller's net and the fees;
   per asset, units bought = units sold;
6. fees are the configured rates: each side's rate is the maker or taker rate recorded on
   the trade for its role (the buyer's capped by what its order held for), the fee is
   that rate on the gross rounded down, and the maker is the order that rested first;
7. auctions: every trade of an auction prints at that auction's clearing price, the
   auction's matched quantity = Σ its trades' quantity (none for an auction that did not
   uncross), and an uncrossed auction's clearing price lies within its recorded band.
   (A book collecting orders for an auction, proof 1 aside, may rest crossed.)
8. no trade while halted: no trade is stamped inside a halt of its book or of the whole
   market (the intervals between the MarketEvents `halted` and `resumed`; a halt not yet
   resumed runs to now);
9. no trade outside its band: a trade that records the band in force at its time
   (band_low_minor / band_high_minor) printed within it, and records both edges or none.

At scale (docs/marketplace.md, "The whole-book checks at scale"): the proofs over every row (held cash, holdings,
fills) are each one grouped statement that returns only the rows that disagree; the
trades are read in keyset batches of TRADES_PER_BATCH with their journal postings, as
tuples; open buy orders are streamed. Statements grow with the trade batches only, and
memory is a batch whatever the size of the book.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from django.db import connection
from django.db.models import BigIntegerField, Case, F, Max, Min, Q, QuerySet, Sum, Value, When

from .ledger import trade_fee
from .models import Holding, LedgerAccount, Market, Posting, PrimaryOrder, Trade, TradeOrder, Withdrawal
from .trading_selectors import buy_reservation

A = LedgerAccount.Kind
OS = TradeOrder.Status
Side = TradeOrder.Side
TRADES_PER_BATCH = 5_000
ZERO = Value(0, output_field=BigIntegerField())


def _disagreements(parts: list[QuerySet], *, keys: int, having: str) -> list[tuple]:
    """Sum the columns of `parts` per key in the database and return (key…, sums…) where
    `having` holds, ordered by key: one statement, only the rows that disagree come back.
    Each part is `.values(name=expression, …)` with the same names in the same order, the
    first `keys` of them the key; `having` is SQL with `{name}` standing for that column's
    sum."""
    first, *rest = (part.order_by() for part in parts)
    sql, params = first.union(*rest, all=True).query.sql_with_params()
    qn = connection.ops.quote_name
    names = list(first.query.annotation_select)
    key_cols = ", ".join(qn(n) for n in names[:keys])
    sums = {n: f"SUM({qn(n)})" for n in names[keys:]}
    statement = (
        f"SELECT {key_cols}, {', '.join(sums.values())} FROM ({sql}) AS parts "
        f"GROUP BY {key_cols} HAVING {having.format(**sums)} ORDER BY {key_cols}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return [(*row[:keys], *(int(v) for v in row[keys:])) for row in cursor.fetchall()]


@dataclass
class MarketReport:
    markets: int = 0
    orders: int = 0
    trades: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def market_verify() -> MarketReport:
    report = MarketReport(
        markets=Market.objects.count(), orders=TradeOrder.objects.count(), trades=Trade.objects.count()
    )
    _books(report)
    _reservations(report)
    _held_cash(report)
    _holdings(report)
    _fills(report)
    _trades(report)
    _auctions(report)
    _halts(report)
    _bands(report)
    return report


def _books(report: MarketReport) -> None:
    # A book collecting orders for an auction (auction mode, or one called) rests crossed.
    for market in (
        Market.objects.filter(~Q(trading_mode=Market.TradingMode.AUCTION), next_auction_at__isnull=True)
        .annotate(
            bid=Max("orders__limit_price_minor", filter=Q(orders__status=OS.OPEN, orders__side=Side.BUY)),
            ask=Min("orders__limit_price_minor", filter=Q(orders__status=OS.OPEN, orders__side=Side.SELL)),
        )
        .order_by("pk")
    ):
        if market.bid is not None and market.ask is not None and market.bid >= market.ask:
            crossing = TradeOrder.objects.filter(market=market, status=OS.OPEN).filter(
                Q(side=Side.BUY, limit_price_minor__gte=market.ask)
                | Q(side=Side.SELL, limit_price_minor__lte=market.bid)
            )
            report.problems.append(
                f"market #{market.pk} ({market.asset_id}) is crossed at rest: best bid {market.bid} >= best ask "
                f"{market.ask} (orders {sorted(crossing.values_list('pk', flat=True))})"
            )


def _reservations(report: MarketReport) -> None:
    for pk, limit, remaining, fee_bps, reserved in (
        TradeOrder.objects.filter(status=OS.OPEN, side=Side.BUY)
        .order_by("pk")
        .values_list("pk", "limit_price_minor", "remaining_quantity", "fee_bps_reserved", "reserved_minor")
        .iterator(chunk_size=TRADES_PER_BATCH)
    ):
        expected = buy_reservation(limit_price_minor=limit, quantity=remaining, fee_bps=fee_bps)
        if reserved != expected:
            report.problems.append(
                f"trade order #{pk} (open buy) holds {reserved}, its remaining "
                f"{remaining} × {limit} + max fee need {expected}"
            )
    for pk, reserved in (
        TradeOrder.objects.filter(Q(reserved_minor__gt=0) & (~Q(status=OS.OPEN) | Q(side=Side.SELL)))
        .order_by("pk")
        .values_list("pk", "reserved_minor")
    ):
        report.problems.append(f"trade order #{pk} (closed or a sell) still holds {reserved}")


def _held_cash(report: MarketReport) -> None:
    UNSETTLED_PRIMARY = [PrimaryOrder.Status.RESERVED, PrimaryOrder.Status.FAILED]

    def purpose(rows: QuerySet, user: str, amount) -> QuerySet:
        return rows.values(holder=F(user), currency_=F("currency"), held=ZERO, expected=amount)

    parts = [
        purpose(TradeOrder.objects.filter(status=OS.OPEN, side=Side.BUY), "investor_id", F("reserved_minor")),
        purpose(
            Trade.objects.filter(status__in=Trade.UNSETTLED), "seller_id", F("gross_minor") - F("seller_fee_minor")
        ),
        purpose(PrimaryOrder.objects.filter(status__in=UNSETTLED_PRIMARY), "investor_id", F("total_minor")),
        purpose(Withdrawal.objects.filter(status=Withdrawal.Status.REQUESTED), "investor_id", F("amount_minor")),
        LedgerAccount.objects.filter(kind=A.INVESTOR_HELD).values(
            holder=F("user_id"), currency_=F("currency"), held=F("balance"), expected=ZERO
        ),
    ]
    for user_id, currency, balance, expected in _disagreements(parts, keys=2, having="{held} <> {expected}"):
        report.problems.append(
            f"investor #{user_id} held {currency} is {balance}, its open buy orders, unsettled sales, "
            f"primary orders and withdrawals add up to {expected}"
        )


def _holdings(report: MarketReport) -> None:
    """Per (investor, asset): the holding's locked, settling-out and pending units against
    what its open sells, unsettled trades and primary orders say."""
    UNSETTLED_PRIMARY = [PrimaryOrder.Status.RESERVED, PrimaryOrder.Status.FAILED]
    columns = ("holding", "rows", "locked", "out", "pending", "want_locked", "want_out", "want_pending")

    def part(source: QuerySet, investor: str, **sums) -> QuerySet:
        return source.values(investor_=F(investor), asset_=F("asset_id"), **{c: sums.get(c, ZERO) for c in columns})

    parts = [
        part(
            Holding.objects.all(),
            "investor_id",
            holding=F("pk"),  # at most one holding per (investor, asset): its sum is its id
            rows=Value(1, output_field=BigIntegerField()),
            locked=F("locked_quantity"),
            out=F("pending_out_quantity"),
            pending=F("pending_quantity"),
        ),
        part(
            TradeOrder.objects.filter(status=OS.OPEN, side=Side.SELL),
            "investor_id",
            want_locked=F("remaining_quantity"),
        ),
        part(Trade.objects.filter(status__in=Trade.UNSETTLED), "seller_id", want_out=F("quantity")),
        part(Trade.objects.filter(status__in=Trade.UNSETTLED), "buyer_id", want_pending=F("quantity")),
        part(PrimaryOrder.objects.filter(status__in=UNSETTLED_PRIMARY), "investor_id", want_pending=F("quantity")),
    ]
    rows = _disagreements(
        parts,
        keys=2,
        having="{rows} = 0 OR {locked} <> {want_locked} OR {out} <> {want_out} OR {pending} <> {want_pending}",
    )
    missing = []
    for investor_id, asset_id, holding_id, n, locked, out, pending, want_locked, want_out, want_pending in sorted(
        rows, key=lambda row: row[2]
    ):
        if not n:
            missing.append((investor_id, asset_id))
            continue
        for label, actual, wanted in (
            ("locked", locked, want_locked),
            ("settling out", out, want_out),
            ("pending", pending, want_pending),
        ):
            if actual != wanted:
                report.problems.append(
                    f"holding #{holding_id} (investor #{investor_id}, asset #{asset_id}) has {actual} units {label}, "
                    f"its orders and trades say {wanted}"
                )
    for investor_id, asset_id in sorted(missing):
        report.problems.append(f"investor #{investor_id} has orders or trades in asset #{asset_id} but no holding row")


def _fills(report: MarketReport) -> None:
    is_buy = Case(When(side=Side.BUY, then=Value(1)), default=Value(0), output_field=BigIntegerField())
    orders = TradeOrder.objects.values(
        order=F("pk"),
        quantity_=F("quantity"),
        filled=F("filled_quantity"),
        remaining=F("remaining_quantity"),
        buy=is_buy,
        bought=ZERO,
        sold=ZERO,
    )
    trades = Trade.objects.all()
    as_buy = trades.values(
        order=F("buy_order_id"), quantity_=ZERO, filled=ZERO, remaining=ZERO, buy=ZERO, bought=F("quantity"), sold=ZERO
    )
    as_sell = trades.values(
        order=F("sell_order_id"), quantity_=ZERO, filled=ZERO, remaining=ZERO, buy=ZERO, bought=ZERO, sold=F("quantity")
    )
    for pk, quantity, filled, remaining, buy, bought, sold in _disagreements(
        [orders, as_buy, as_sell],
        keys=1,
        having="{filled} + {remaining} <> {quantity_} OR {filled} <> CASE WHEN {buy} = 1 THEN {bought} ELSE {sold} END",
    ):
        if filled + remaining != quantity:
            report.problems.append(f"trade order #{pk}: filled {filled} + remaining {remaining} != original {quantity}")
        traded = bought if buy else sold
        if traded != filled:
            report.problems.append(f"trade order #{pk}: filled {filled} but its trades sum to {traded}")


def _trades(report: MarketReport) -> None:
    units: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for row in TradeOrder.objects.values("asset_id", "side").annotate(s=Sum("filled_quantity")):
        units[row["asset_id"]][0 if row["side"] == Side.BUY else 1] += row["s"] or 0
    for asset_id, (bought, sold) in sorted(units.items()):
        if bought != sold:
            report.problems.append(f"asset #{asset_id}: {bought} units bought but {sold} sold")

    for batch, postings in _trade_batches():
        for t, buy, sell in batch:
            _trade(report, t, buy, sell, postings.get(t.pk, {}))


class _Order(NamedTuple):
    pk: int
    side: str
    priority: int
    limit_price_minor: int
    investor_id: int
    fee_bps_reserved: int


class _Trade(NamedTuple):
    pk: int
    quantity: int
    price_minor: int
    gross_minor: int
    maker_side: str
    auction_id: int | None
    buyer_id: int
    seller_id: int
    maker_fee_bps: int
    taker_fee_bps: int
    buyer_fee_bps: int
    seller_fee_bps: int
    buyer_fee_minor: int
    seller_fee_minor: int


def _trade_batches():
    """(trades with their two orders, {trade id: {(account kind, user id): amount}} of
    their trade_match entries), TRADES_PER_BATCH trades at a time in pk order: two
    statements a batch, tuples rather than model instances."""
    columns = [
        *_Trade._fields,
        *(f"buy_order__{f}" for f in _Order._fields),
        *(f"sell_order__{f}" for f in _Order._fields),
    ]
    n, m = len(_Trade._fields), len(_Order._fields)
    after = 0
    while True:
        rows = list(Trade.objects.filter(pk__gt=after).order_by("pk").values_list(*columns)[:TRADES_PER_BATCH])
        if not rows:
            return
        first, after = rows[0][0], rows[-1][0]
        postings: dict[int, dict[tuple[str, int | None], int]] = defaultdict(lambda: defaultdict(int))
        for trade_id, kind, user_id, amount in (
            Posting.objects.filter(entry__kind="trade_match", entry__trade__gte=first, entry__trade__lte=after)
            .order_by()
            .values_list("entry__trade_id", "account__kind", "account__user_id", "amount_minor")
        ):
            postings[trade_id][(kind, user_id)] += amount
        yield [(_Trade(*r[:n]), _Order(*r[n : n + m]), _Order(*r[n + m :])) for r in rows], postings
        if len(rows) < TRADES_PER_BATCH:
            return


def _trade(report: MarketReport, t: _Trade, buy: _Order, sell: _Order, moved: dict) -> None:
    name = f"trade #{t.pk}"
    maker, taker = (buy, sell) if buy.priority < sell.priority else (sell, buy)
    if t.gross_minor != t.quantity * t.price_minor:
        report.problems.append(f"{name}: gross {t.gross_minor} != {t.quantity} × {t.price_minor}")
    if not (sell.limit_price_minor <= t.price_minor <= buy.limit_price_minor):
        report.problems.append(
            f"{name}: price {t.price_minor} outside the limits (sell {sell.limit_price_minor}, buy {buy.limit_price_minor})"
        )
    at_maker = t.auction_id is not None or t.price_minor == maker.limit_price_minor  # auctions: proof 7
    if t.maker_side != maker.side or not at_maker:
        report.problems.append(
            f"{name}: the maker is order #{maker.pk} ({maker.side} at {maker.limit_price_minor}), the trade says "
            f"{t.maker_side} at {t.price_minor}"
        )
    if buy.investor_id != t.buyer_id or sell.investor_id != t.seller_id or t.buyer_id == t.seller_id:
        report.problems.append(f"{name}: buyer/seller do not match its orders")
    rate = {maker.side: t.maker_fee_bps, taker.side: t.taker_fee_bps}
    buyer_bps = min(rate[Side.BUY], buy.fee_bps_reserved)
    if t.buyer_fee_bps != buyer_bps or t.seller_fee_bps != rate[Side.SELL]:
        report.problems.append(
            f"{name}: fee rates buyer {t.buyer_fee_bps} / seller {t.seller_fee_bps} bps, configured "
            f"{buyer_bps} / {rate[Side.SELL]}"
        )
    for who, fee, bps in (
        ("buyer", t.buyer_fee_minor, t.buyer_fee_bps),
        ("seller", t.seller_fee_minor, t.seller_fee_bps),
    ):
        if fee != trade_fee(gross_minor=t.gross_minor, fee_bps=bps):
            report.problems.append(
                f"{name}: {who} fee {fee} != {bps} bps of {t.gross_minor} = {trade_fee(gross_minor=t.gross_minor, fee_bps=bps)}"
            )
    # The buyer's cost and the seller's net, recomputed from the row (Trade.buyer_cost_minor,
    # Trade.seller_net_minor): the proof does not take the model's word for them.
    wanted = {
        (A.INVESTOR_HELD, t.buyer_id): -(t.gross_minor + t.buyer_fee_minor),
        (A.INVESTOR_HELD, t.seller_id): t.gross_minor - t.seller_fee_minor,
        (A.PLATFORM_FEES, None): t.buyer_fee_minor + t.seller_fee_minor,
    }
    if {k: v for k, v in moved.items() if v} != {k: v for k, v in wanted.items() if v}:
        report.problems.append(f"{name}: its journal entry moved {dict(moved)}, the trade says {wanted}")


def _auctions(report: MarketReport) -> None:
    """Proof 7: each auction's fills all at its clearing price, adding up to its matched
    quantity, the clearing price within the auction's band."""
    from .models import Auction

    sums = dict(
        Trade.objects.filter(auction__isnull=False)
        .values("auction_id")
        .annotate(s=Sum("quantity"))
        .values_list("auction_id", "s")
    )
    for auction in Auction.objects.order_by("pk"):
        name = f"auction #{auction.pk}"
        traded = sums.get(auction.pk, 0)
        if traded != auction.matched_quantity:
            report.problems.append(
                f"{name}: matched {auction.matched_quantity} but its trades sum to {traded} ({auction.status})"
            )
        if auction.status == Auction.Status.UNCROSSED:
            low, high, price = auction.band_low_minor, auction.band_high_minor, auction.clearing_price_minor
            if price is None or (low is not None and price < low) or (high is not None and price > high):
                report.problems.append(f"{name}: clearing price {price} outside its band {low} – {high}")
    for pk, price, auction_id, clearing in (
        Trade.objects.filter(auction__isnull=False)
        .exclude(price_minor=F("auction__clearing_price_minor"))
        .order_by("pk")
        .values_list("pk", "price_minor", "auction_id", "auction__clearing_price_minor")
    ):
        report.problems.append(f"trade #{pk}: printed at {price}, its auction #{auction_id} cleared at {clearing}")


def halt_intervals() -> dict[int | None, list[tuple]]:
    """{market id (None: the whole market): [(halted at, resumed at or None), ...]} from
    the MarketEvent timeline."""
    from .models import MarketEvent

    intervals: dict[int | None, list[tuple]] = defaultdict(list)
    started: dict[int | None, datetime] = {}
    for market_id, kind, at in (
        MarketEvent.objects.filter(kind__in=[MarketEvent.Kind.HALTED, MarketEvent.Kind.RESUMED])
        .order_by("at", "pk")
        .values_list("market_id", "kind", "at")
    ):
        if kind == MarketEvent.Kind.HALTED:
            started.setdefault(market_id, at)
        elif market_id in started:
            intervals[market_id].append((started.pop(market_id), at))
    for open_id, since in started.items():
        intervals[open_id].append((since, None))
    return intervals


def _halts(report: MarketReport) -> None:
    """Proof 8: no trade stamped strictly inside a halt of its book or of the whole market."""
    for market_id, spans in sorted(halt_intervals().items(), key=lambda item: (item[0] is not None, item[0] or 0)):
        where = "the whole market" if market_id is None else f"market #{market_id}"
        for start, end in spans:
            trades = Trade.objects.filter(created_at__gt=start)
            if end is not None:
                trades = trades.filter(created_at__lt=end)
            if market_id is not None:
                trades = trades.filter(market_id=market_id)
            for pk, at in trades.order_by("pk").values_list("pk", "created_at"):
                until = f"{end:%Y-%m-%d %H:%M:%S.%f}" if end is not None else "now"
                report.problems.append(
                    f"trade #{pk} at {at:%Y-%m-%d %H:%M:%S.%f} while {where} was halted "
                    f"({start:%Y-%m-%d %H:%M:%S.%f} to {until})"
                )


def _bands(report: MarketReport) -> None:
    """Proof 9: every trade that records a band printed within it."""
    outside = (
        Q(band_low_minor__isnull=True, band_high_minor__isnull=False)
        | Q(band_low_minor__isnull=False, band_high_minor__isnull=True)
        | Q(price_minor__lt=F("band_low_minor"))
        | Q(price_minor__gt=F("band_high_minor"))
    )
    for pk, price, low, high in (
        Trade.objects.filter(outside)
        .order_by("pk")
        .values_list("pk", "price_minor", "band_low_minor", "band_high_minor")
    ):
        report.problems.append(f"trade #{pk}: printed at {price}, outside the band in force {low} – {high}")
