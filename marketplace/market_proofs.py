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
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import F, Max, Min, Q, Sum

from .ledger import trade_fee
from .models import Holding, LedgerAccount, Market, Posting, PrimaryOrder, Trade, TradeOrder, Withdrawal
from .trading_selectors import buy_reservation

A = LedgerAccount.Kind
OS = TradeOrder.Status
Side = TradeOrder.Side


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
    for order in TradeOrder.objects.filter(status=OS.OPEN, side=Side.BUY).order_by("pk"):
        expected = buy_reservation(
            limit_price_minor=order.limit_price_minor, quantity=order.remaining_quantity, fee_bps=order.fee_bps_reserved
        )
        if order.reserved_minor != expected:
            report.problems.append(
                f"trade order #{order.pk} (open buy) holds {order.reserved_minor}, its remaining "
                f"{order.remaining_quantity} × {order.limit_price_minor} + max fee need {expected}"
            )
    for pk, reserved in (
        TradeOrder.objects.filter(Q(reserved_minor__gt=0) & (~Q(status=OS.OPEN) | Q(side=Side.SELL)))
        .order_by("pk")
        .values_list("pk", "reserved_minor")
    ):
        report.problems.append(f"trade order #{pk} (closed or a sell) still holds {reserved}")


def _held_cash(report: MarketReport) -> None:
    expected: dict[tuple[int | None, str], int] = defaultdict(int)

    def add(rows, user_key: str, amount_key: str = "s") -> None:
        for row in rows:
            expected[(row[user_key], row["currency"])] += row[amount_key] or 0

    add(
        TradeOrder.objects.filter(status=OS.OPEN, side=Side.BUY)
        .values("investor_id", "currency")
        .annotate(s=Sum("reserved_minor")),
        "investor_id",
    )
    for row in (
        Trade.objects.filter(status__in=Trade.UNSETTLED)
        .values("seller_id", "currency")
        .annotate(g=Sum("gross_minor"), f=Sum("seller_fee_minor"))
    ):
        expected[(row["seller_id"], row["currency"])] += row["g"] - row["f"]
    add(
        PrimaryOrder.objects.filter(status__in=[PrimaryOrder.Status.RESERVED, PrimaryOrder.Status.FAILED])
        .values("investor_id", "currency")
        .annotate(s=Sum("total_minor")),
        "investor_id",
    )
    add(
        Withdrawal.objects.filter(status=Withdrawal.Status.REQUESTED)
        .values("investor_id", "currency")
        .annotate(s=Sum("amount_minor")),
        "investor_id",
    )
    held = {
        (a.user_id, a.currency): a for a in LedgerAccount.objects.filter(kind=A.INVESTOR_HELD).select_related("user")
    }
    for key in sorted(set(held) | set(expected), key=lambda k: (k[0] or 0, k[1])):
        balance = held[key].balance if key in held else 0
        if balance != expected.get(key, 0):
            report.problems.append(
                f"investor #{key[0]} held {key[1]} is {balance}, its open buy orders, unsettled sales, "
                f"primary orders and withdrawals add up to {expected.get(key, 0)}"
            )


def _holdings(report: MarketReport) -> None:
    locked = {
        (r[0], r[1]): r[2]
        for r in TradeOrder.objects.filter(status=OS.OPEN, side=Side.SELL)
        .values("investor_id", "asset_id")
        .annotate(s=Sum("remaining_quantity"))
        .values_list("investor_id", "asset_id", "s")
    }
    out = {
        (r[0], r[1]): r[2]
        for r in Trade.objects.filter(status__in=Trade.UNSETTLED)
        .values("seller_id", "asset_id")
        .annotate(s=Sum("quantity"))
        .values_list("seller_id", "asset_id", "s")
    }
    pending: dict[tuple[int, int], int] = defaultdict(int)
    for investor_id, asset_id, s in (
        Trade.objects.filter(status__in=Trade.UNSETTLED)
        .values("buyer_id", "asset_id")
        .annotate(s=Sum("quantity"))
        .values_list("buyer_id", "asset_id", "s")
    ):
        pending[(investor_id, asset_id)] += s
    for investor_id, asset_id, s in (
        PrimaryOrder.objects.filter(status__in=[PrimaryOrder.Status.RESERVED, PrimaryOrder.Status.FAILED])
        .values("investor_id", "asset_id")
        .annotate(s=Sum("quantity"))
        .values_list("investor_id", "asset_id", "s")
    ):
        pending[(investor_id, asset_id)] += s
    seen = set()
    for h in Holding.objects.order_by("pk"):
        key = (h.investor_id, h.asset_id)
        seen.add(key)
        for label, actual, wanted in (
            ("locked", h.locked_quantity, locked.get(key, 0)),
            ("settling out", h.pending_out_quantity, out.get(key, 0)),
            ("pending", h.pending_quantity, pending.get(key, 0)),
        ):
            if actual != wanted:
                report.problems.append(
                    f"holding #{h.pk} (investor #{h.investor_id}, asset #{h.asset_id}) has {actual} units {label}, "
                    f"its orders and trades say {wanted}"
                )
    for key in sorted((set(locked) | set(out) | set(pending)) - seen):
        report.problems.append(f"investor #{key[0]} has orders or trades in asset #{key[1]} but no holding row")


def _fills(report: MarketReport) -> None:
    bought = dict(Trade.objects.values("buy_order_id").annotate(s=Sum("quantity")).values_list("buy_order_id", "s"))
    sold = dict(Trade.objects.values("sell_order_id").annotate(s=Sum("quantity")).values_list("sell_order_id", "s"))
    for order in TradeOrder.objects.order_by("pk").only(
        "pk", "side", "quantity", "filled_quantity", "remaining_quantity"
    ):
        if order.filled_quantity + order.remaining_quantity != order.quantity:
            report.problems.append(
                f"trade order #{order.pk}: filled {order.filled_quantity} + remaining {order.remaining_quantity} "
                f"!= original {order.quantity}"
            )
        traded = (bought if order.side == Side.BUY else sold).get(order.pk, 0)
        if traded != order.filled_quantity:
            report.problems.append(
                f"trade order #{order.pk}: filled {order.filled_quantity} but its trades sum to {traded}"
            )


def _trades(report: MarketReport) -> None:
    units: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for row in TradeOrder.objects.values("asset_id", "side").annotate(s=Sum("filled_quantity")):
        units[row["asset_id"]][0 if row["side"] == Side.BUY else 1] += row["s"] or 0
    for asset_id, (bought, sold) in sorted(units.items()):
        if bought != sold:
            report.problems.append(f"asset #{asset_id}: {bought} units bought but {sold} sold")

    postings: dict[int, dict[tuple[str, int | None], int]] = defaultdict(lambda: defaultdict(int))
    for trade_id, kind, user_id, amount in Posting.objects.filter(entry__kind="trade_match").values_list(
        "entry__trade_id", "account__kind", "account__user_id", "amount_minor"
    ):
        postings[trade_id][(kind, user_id)] += amount

    for t in Trade.objects.select_related("buy_order", "sell_order").order_by("pk"):
        name = f"trade #{t.pk}"
        buy, sell = t.buy_order, t.sell_order
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
        moved = postings.get(t.pk, {})
        wanted = {
            (A.INVESTOR_HELD, t.buyer_id): -t.buyer_cost_minor,
            (A.INVESTOR_HELD, t.seller_id): t.seller_net_minor,
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
