"""The periodic call auction (docs/market-integrity.md, "Periodic call auction").

A book in auction mode collects orders without matching; at its scheduled times (and a
continuous book when it reopens after a halt or at the opening of its trading session)
it uncrosses at ONE price for everyone:

1. the price that executes the most units (candidates: the limit prices in the book);
2. ties: the smallest imbalance (units left on the heavier side at that price);
3. ties: the price closest to the reference price (`trading_selectors.reference_price`);
4. still tied (no reference price, or two candidates equally far from it): the LOWER
   price.

Fills: every bid at or above the clearing price and every ask at or below it is eligible;
better-priced orders fill first, time priority (`priority`) within a price level; the
lighter side fills completely, the last order reached on the heavier side is partially
filled, the rest stays on the book. Fills are paired into trades by walking both sides
in that order; each trade prints at the clearing price through `trading._execute`, the
maker (whose rate it pays) being the order with the earlier priority.

Self-trade rule: an investor never buys and sells in the same auction. While some
investor's orders would fill on both sides, that investor's LATEST such order (highest
priority number) is cancelled (`self_trade`, as continuous matching cancels the later,
incoming order) and the book uncrosses again.

`uncross` is pure (no Django): sort once, cumulative sums, O(n log n).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min, Q, Subquery
from django.utils import timezone

if TYPE_CHECKING:
    from .models import TradeOrder as TradeOrderModel

# -- the pure uncrossing ------------------------------------------------------------------


@dataclass(frozen=True)
class Uncross:
    """The outcome of an uncrossing. `price_minor` None: nothing crosses (then volume 0).
    `imbalance` = |demand − supply| at the price, `imbalance_side` the heavier side
    ("buy", "sell" or "" when balanced). Fills and trades refer to the indices of the
    input lists: `bid_fills`/`ask_fills` (index, quantity) in fill order; `trades`
    (bid index, ask index, quantity)."""

    price_minor: int | None
    volume: int = 0
    imbalance: int = 0
    imbalance_side: str = ""
    bid_fills: tuple[tuple[int, int], ...] = ()
    ask_fills: tuple[tuple[int, int], ...] = ()
    trades: tuple[tuple[int, int, int], ...] = ()

    @property
    def crossed(self) -> bool:
        return self.price_minor is not None and self.volume > 0


NO_CROSS = Uncross(None)

# (price, quantity, priority)
OrderTuple = tuple[int, int, int]


def uncross(bids: list[OrderTuple], asks: list[OrderTuple], reference_price_minor: int | None) -> Uncross:
    """The clearing price, volume, imbalance and fills of a book of bids and asks given
    as (limit price, quantity, priority). See the module docstring for the rules."""
    if not bids or not asks:
        return NO_CROSS
    bid_order = sorted(range(len(bids)), key=lambda i: (-bids[i][0], bids[i][2], i))
    ask_order = sorted(range(len(asks)), key=lambda i: (asks[i][0], asks[i][2], i))
    if bids[bid_order[0]][0] < asks[ask_order[0]][0]:
        return NO_CROSS
    candidates = sorted({b[0] for b in bids} | {a[0] for a in asks})
    # supply(p) = Σ asks priced <= p, ascending; demand(p) = Σ bids priced >= p, descending.
    supply = [0] * len(candidates)
    running, j = 0, 0
    for k, price in enumerate(candidates):
        while j < len(ask_order) and asks[ask_order[j]][0] <= price:
            running += asks[ask_order[j]][1]
            j += 1
        supply[k] = running
    demand = [0] * len(candidates)
    running, j = 0, 0
    for k in range(len(candidates) - 1, -1, -1):
        price = candidates[k]
        while j < len(bid_order) and bids[bid_order[j]][0] >= price:
            running += bids[bid_order[j]][1]
            j += 1
        demand[k] = running
    best = None
    best_key = None
    for k, price in enumerate(candidates):
        volume = min(demand[k], supply[k])
        if volume <= 0:
            continue
        distance = abs(price - reference_price_minor) if reference_price_minor is not None else 0
        key = (-volume, abs(demand[k] - supply[k]), distance, price)
        if best_key is None or key < best_key:
            best, best_key = k, key
    if best is None:
        return NO_CROSS
    price = candidates[best]
    volume = min(demand[best], supply[best])
    imbalance = demand[best] - supply[best]
    bid_fills = _fills(bids, bid_order, volume, lambda p: p >= price)
    ask_fills = _fills(asks, ask_order, volume, lambda p: p <= price)
    return Uncross(
        price_minor=price,
        volume=volume,
        imbalance=abs(imbalance),
        imbalance_side="buy" if imbalance > 0 else "sell" if imbalance < 0 else "",
        bid_fills=bid_fills,
        ask_fills=ask_fills,
        trades=_pair(bid_fills, ask_fills),
    )


def _fills(orders, ordering, volume: int, eligible) -> tuple[tuple[int, int], ...]:
    fills = []
    left = volume
    for i in ordering:
        if left == 0 or not eligible(orders[i][0]):
            break
        take = min(left, orders[i][1])
        if take > 0:
            fills.append((i, take))
            left -= take
    return tuple(fills)


def _pair(bid_fills, ask_fills) -> tuple[tuple[int, int, int], ...]:
    """Walk both sides' fills in fill order: at most len(bids) + len(asks) − 1 trades."""
    trades = []
    b = a = 0
    bid_left = bid_fills[0][1] if bid_fills else 0
    ask_left = ask_fills[0][1] if ask_fills else 0
    while b < len(bid_fills) and a < len(ask_fills):
        quantity = min(bid_left, ask_left)
        trades.append((bid_fills[b][0], ask_fills[a][0], quantity))
        bid_left -= quantity
        ask_left -= quantity
        if bid_left == 0:
            b += 1
            bid_left = bid_fills[b][1] if b < len(bid_fills) else 0
        if ask_left == 0:
            a += 1
            ask_left = ask_fills[a][1] if a < len(ask_fills) else 0
    return tuple(trades)


# -- the service ------------------------------------------------------------------------------

logger = logging.getLogger("marketplace.auction")


def _models():
    from . import models

    return models


def schedule_next_auction(market, now: datetime) -> datetime | None:
    """Set (and save) the book's next auction: in auction mode its next daily auction
    time; a continuous book none, unless it is outside its trading session, then the
    next session opening (reason "session_open"). The caller holds the book's lock (or
    the row is new). Returns the time set."""
    from .market_hours import next_auction_time, next_session_open, session_is_open

    Market = _models().Market
    Reason = _models().Auction.Reason
    if market.trading_mode == Market.TradingMode.AUCTION:
        at = next_auction_time(market, now)
        reason = Reason.SCHEDULED if at else ""
    elif market.trading_hours and not session_is_open(market, now):
        at = next_session_open(market, now)
        reason = Reason.SESSION_OPEN if at else ""
    else:
        at, reason = None, ""
    market.next_auction_at, market.auction_reason = at, reason
    market.save(update_fields=["next_auction_at", "auction_reason", "updated_at"])
    return at


def _money(amount: int | None, currency: str) -> str:
    from config.money import format_money

    return format_money(amount, currency) if amount is not None else "—"


def _local(market, at: datetime) -> str:
    from .trading_selectors import local_time_text

    return local_time_text(market, at)


@dataclass
class _Book:
    """The open orders taking part, as the pure uncrossing sees them."""

    bids: list = field(default_factory=list)  # TradeOrder
    asks: list = field(default_factory=list)

    def run(self, reference: int | None) -> Uncross:
        return uncross(
            [(o.limit_price_minor, o.remaining_quantity, o.priority) for o in self.bids],
            [(o.limit_price_minor, o.remaining_quantity, o.priority) for o in self.asks],
            reference,
        )

    def remove(self, order) -> None:
        (self.bids if order.side == "buy" else self.asks).remove(order)


def _extensions(market, Auction) -> int:
    """Consecutive EXTENDED auctions of the book since its last other outcome."""
    count = 0
    for status in (
        Auction.objects.filter(market=market)
        .order_by("-scheduled_at")
        .values_list("status", flat=True)[: settings.MARKETPLACE_AUCTION_MAX_EXTENSIONS + 1]
    ):
        if status != Auction.Status.EXTENDED:
            break
        count += 1
    return count


@transaction.atomic(durable=True)
def auction_run(*, market_id: int, now: datetime | None = None):
    """Uncross the book if its auction is due, in one transaction under the book's lock
    (then holdings and ledger accounts of every owner of an order that could fill, in
    the lock order). Returns the Auction row written, or None when nothing was due,
    it already ran, or trading is halted (the auction stays scheduled).

    Outcomes: UNCROSSED (trades at the clearing price), NO_CROSS, EXTENDED (the clearing
    price lies outside the price band: next_auction_at += MARKETPLACE_AUCTION_EXTENSION_SECONDS,
    at most MARKETPLACE_AUCTION_MAX_EXTENSIONS times in a row), SKIPPED (then the orders
    stay and the next auction is scheduled). Each writes an Auction row and a MarketEvent."""
    from accounts.models import User
    from chain.selectors import investor_accounts

    from . import trading
    from .locks import holdings_lock, ledger_accounts_lock, market_lock, offering_lock
    from .selectors import holder_count
    from .trading_selectors import market_wide_control, price_band, reference_price

    m = _models()
    Auction, MarketEvent, TradeOrder, A = m.Auction, m.MarketEvent, m.TradeOrder, m.LedgerAccount.Kind
    Market = m.Market
    OS, TIF = TradeOrder.Status, TradeOrder.TimeInForce
    now = now or timezone.now()
    market = market_lock(pk=market_id)
    scheduled = market.next_auction_at
    if scheduled is None or scheduled > now:
        return None
    if market.halted or market_wide_control().halted:
        return None  # stays scheduled: it runs once trading resumes
    if Auction.objects.filter(market=market, scheduled_at=scheduled).exists():
        return None
    asset = market.asset
    reason = market.auction_reason if market.auction_reason in Auction.Reason.values else Auction.Reason.SCHEDULED

    # 1. The book: open orders that could take part (a bid at or above the lowest ask,
    # an ask at or below the highest bid), and gtd orders whose time has come.
    bounds = TradeOrder.objects.filter(market=market, status=OS.OPEN).aggregate(
        bid=Max("limit_price_minor", filter=Q(side="buy")), ask=Min("limit_price_minor", filter=Q(side="sell"))
    )
    due_q = Q(time_in_force=TIF.GTD, expires_at__lte=now)
    crossing_q = Q(pk__in=[])
    if bounds["bid"] is not None and bounds["ask"] is not None and bounds["bid"] >= bounds["ask"]:
        crossing_q = Q(side="buy", limit_price_minor__gte=bounds["ask"]) | Q(
            side="sell", limit_price_minor__lte=bounds["bid"]
        )
    orders = list(
        TradeOrder.objects.filter(market=market, status=OS.OPEN)
        .filter(crossing_q | due_q)
        .select_related("investor", "asset")
        .order_by("priority")
    )
    expired = [o for o in orders if o.time_in_force == TIF.GTD and o.expires_at is not None and o.expires_at <= now]
    book = _Book()
    expired_pks = {o.pk for o in expired}
    for o in orders:
        if o.pk not in expired_pks:
            (book.bids if o.side == "buy" else book.asks).append(o)

    # 2. Lock every owner's holding, then cash accounts (+ the fee account), in the lock order.
    participants = {o.investor_id: o.investor for o in orders}
    holdings = holdings_lock(pairs=[(pk, asset.pk) for pk in participants])
    specs: list[tuple[str, User | None, str]] = []
    for user in sorted(participants.values(), key=lambda u: u.pk):
        specs += [(A.INVESTOR_AVAILABLE, user, market.currency), (A.INVESTOR_HELD, user, market.currency)]
    if book.bids and book.asks:
        specs.append((A.PLATFORM_FEES, None, market.currency))
    accounts = {(a.kind, a.user_id): a for a in ledger_accounts_lock(specs=specs)} if specs else {}
    capped = asset.max_holders is not None
    if capped and book.bids:
        offering = m.Offering.objects.filter(asset=asset).only("pk").first()
        if offering is not None:
            offering_lock(pk=offering.pk)
    holders = holder_count(asset=asset) if capped else 0

    # 3. Uncross; every order that would fill is checked again with the engine, and an
    # investor filling on both sides loses their latest order; uncross again until stable.
    reference = reference_price(market=market, now=now)
    band = price_band(market=market, reference=reference, now=now)
    ineligible: list[tuple[TradeOrderModel, list]] = []
    self_trades: list[TradeOrderModel] = []
    while True:
        result = book.run(reference.price_minor)
        if not result.crossed:
            break
        receivers = trading._Receivers(
            asset=asset, holdings={k: copy.copy(h) for k, h in holdings.items()}, holders=holders
        )
        removed = []
        sides: dict[int, dict[str, list]] = {}
        for index, quantity in result.bid_fills:
            order = book.bids[index]
            failures = receivers.failures(investor=order.investor, quantity=quantity, now=now)
            if failures:
                removed.append(order)
                ineligible.append((order, failures))
            sides.setdefault(order.investor_id, {}).setdefault("buy", []).append(order)
        for index, quantity in result.ask_fills:
            order = book.asks[index]
            failures = trading._send_failures(
                investor=order.investor,
                asset=asset,
                quantity=quantity,
                holding=holdings.get((order.investor_id, asset.pk)),
                units=order.remaining_quantity,
                now=now,
            )
            if failures:
                removed.append(order)
                ineligible.append((order, failures))
            sides.setdefault(order.investor_id, {}).setdefault("sell", []).append(order)
        for both in sides.values():
            if len(both) == 2:
                latest = max(both["buy"] + both["sell"], key=lambda o: o.priority)
                if latest not in removed:
                    removed.append(latest)
                    self_trades.append(latest)
        if not removed:
            break
        for order in removed:
            book.remove(order)

    # 4. The outcome.
    currency = market.currency
    price = result.price_minor if result.crossed else None
    in_band = price is None or band is None or band.holds(price)
    when = _local(market, scheduled)
    band_text = (
        f"the band {_money(band.low_minor, currency)} – {_money(band.high_minor, currency)}" if band else "no band"
    )
    if not result.crossed:
        status, kind = Auction.Status.NO_CROSS, MarketEvent.Kind.AUCTION_UNCROSSED
        message = f"Auction of {when}: no bid met an ask, nothing traded."
    elif in_band:
        status, kind = Auction.Status.UNCROSSED, MarketEvent.Kind.AUCTION_UNCROSSED
        message = f"Auction of {when}: {result.volume:,} units traded at {_money(price, currency)} for everyone" + (
            f"; {result.imbalance:,} units left on the {result.imbalance_side} side."
            if result.imbalance
            else "; the book balanced."
        )
    elif _extensions(market, Auction) < settings.MARKETPLACE_AUCTION_MAX_EXTENSIONS:
        status, kind = Auction.Status.EXTENDED, MarketEvent.Kind.AUCTION_EXTENDED
        later = scheduled + timedelta(seconds=settings.MARKETPLACE_AUCTION_EXTENSION_SECONDS)
        message = (
            f"Auction of {when} not used: it would have cleared {result.volume:,} units at "
            f"{_money(price, currency)}, outside {band_text}. Extended to {_local(market, later)}."
        )
    else:
        status, kind = Auction.Status.SKIPPED, MarketEvent.Kind.AUCTION_SKIPPED
        message = (
            f"Auction of {when} skipped: the clearing price {_money(price, currency)} stayed outside {band_text} "
            f"after {settings.MARKETPLACE_AUCTION_MAX_EXTENSIONS} extensions. The orders stay on the book."
        )
        if market.trading_mode != Market.TradingMode.AUCTION:
            # A continuous book whose orders still cross must not go back to continuous
            # matching (it never matches two resting orders, so the book would rest
            # crossed): it stays in its call and tries again.
            recall = now + timedelta(seconds=settings.MARKETPLACE_AUCTION_EXTENSION_SECONDS)
            message += f" Continuous trading resumes only once the book uncrosses: next try {_local(market, recall)}."
    uncrossed = status == Auction.Status.UNCROSSED
    auction = Auction.objects.create(
        market=market,
        reason=reason,
        scheduled_at=scheduled,
        ran_at=now,
        status=status,
        clearing_price_minor=price,
        matched_quantity=result.volume if uncrossed else 0,
        imbalance=result.imbalance if result.crossed else 0,
        reference_price_minor=reference.price_minor,
        band_low_minor=band.low_minor if band else None,
        band_high_minor=band.high_minor if band else None,
        message=message[:1000],
    )

    # 5. Writes: expiries always; cancellations and trades only when the auction uncrosses.
    for order in expired:
        trading._close(
            order,
            status=OS.EXPIRED,
            code=trading.EXPIRED,
            reason=f"Good till {order.expires_at:%d %b %Y %H:%M} UTC: the unfilled {order.remaining_quantity:,} expired.",
            actor=None,
            holdings=holdings,
            accounts=accounts,
            now=now,
        )
        trading._notify_closed(order, why="its good-till-date time has come")
    if uncrossed:
        for order, failures in ineligible:
            trading._close(
                order,
                status=OS.CANCELLED,
                code=failures[0].code,
                reason=" ".join(f.message for f in failures),
                actor=None,
                holdings=holdings,
                accounts=accounts,
                now=now,
            )
            trading._notify_closed(order, why="it can no longer trade: " + " ".join(f.message for f in failures))
        for order in self_trades:
            trading._close(
                order,
                status=OS.CANCELLED,
                code=trading.SELF_TRADE,
                reason="Your own order on the other side would have filled in the same auction "
                "(self-trade prevention): this later order was cancelled.",
                actor=None,
                holdings=holdings,
                accounts=accounts,
                now=now,
            )
            trading._notify_closed(order, why="your own order on the other side would have filled in the same auction")
        chain_accounts = {a.user_id: a for a in investor_accounts().filter(user_id__in=list(participants))}
        for bid_index, ask_index, quantity in result.trades:
            bid, ask = book.bids[bid_index], book.asks[ask_index]
            maker, taker = (bid, ask) if bid.priority < ask.priority else (ask, bid)
            trading._execute(
                market=market,
                incoming=taker,
                resting=maker,
                quantity=quantity,
                holdings=holdings,
                accounts=accounts,
                chain_accounts=chain_accounts,
                now=now,
                price=price,
                auction=auction,
                band=band,
            )
        market.save(update_fields=["last_price_minor", "last_trade_at", "updated_at"])

    MarketEvent.objects.create(
        market=market,
        kind=kind,
        at=now,
        message=message[:1000],
        data={
            "auction": str(auction.public_id),
            "status": status,
            "reason": reason,
            "scheduled_at": scheduled.isoformat(),
            "clearing_price_minor": price,
            "volume": result.volume,
            "imbalance": result.imbalance,
        },
    )
    if status == Auction.Status.EXTENDED:
        market.next_auction_at = scheduled + timedelta(seconds=settings.MARKETPLACE_AUCTION_EXTENSION_SECONDS)
        market.save(update_fields=["next_auction_at", "updated_at"])
    elif status == Auction.Status.SKIPPED and market.trading_mode != Market.TradingMode.AUCTION:
        market.next_auction_at = now + timedelta(seconds=settings.MARKETPLACE_AUCTION_EXTENSION_SECONDS)
        market.save(update_fields=["next_auction_at", "updated_at"])
    else:
        schedule_next_auction(market, now)
    logger.info("auction %s of market #%s: %s", auction.public_id, market.pk, message)
    return auction


# -- the beat --------------------------------------------------------------------------------


def auctions_run(*, now: datetime | None = None) -> int:
    """Beat: run every due auction (its own transaction per book), and call a
    session-open auction for each continuous book with trading hours that is outside its
    session with none scheduled (and the next auction of an auction-mode book that has
    auction times but none scheduled). Returns how many auctions ran."""
    from .market_hours import session_is_open

    Market = _models().Market
    now = now or timezone.now()
    ran = 0
    due = Market.objects.filter(next_auction_at__lte=now, halted=False).order_by("pk").values_list("pk", flat=True)
    for market_id in list(due):
        try:
            if auction_run(market_id=market_id, now=now) is not None:
                ran += 1
        except Exception:  # one broken book must not stop the others
            logger.exception("auction of market #%s failed", market_id)
    unscheduled = Market.objects.filter(next_auction_at__isnull=True).filter(
        (Q(trading_mode=Market.TradingMode.CONTINUOUS) & ~Q(trading_hours={}))
        | (Q(trading_mode=Market.TradingMode.AUCTION) & ~Q(auction_times=[]))
    )
    for market in unscheduled.order_by("pk"):
        if market.trading_mode == Market.TradingMode.CONTINUOUS and session_is_open(market, now):
            continue
        _schedule(market_id=market.pk, now=now)
    return ran


@transaction.atomic(durable=True)
def _schedule(*, market_id: int, now: datetime) -> None:
    from .locks import market_lock

    market = market_lock(pk=market_id)
    if market.next_auction_at is None:
        at = schedule_next_auction(market, now)
        if at is not None:
            MarketEvent = _models().MarketEvent
            MarketEvent.objects.create(
                market=market,
                kind=MarketEvent.Kind.AUCTION_CALLED,
                at=now,
                message=f"Auction called for {_local(market, at)} "
                f"({_models().Auction.Reason(market.auction_reason).label.lower()}).",
                data={"scheduled_at": at.isoformat(), "reason": market.auction_reason},
            )


# -- the page ----------------------------------------------------------------------------------


def indicative_auction(market, *, now: datetime | None = None, reference: int | None = None) -> Uncross:
    """The uncrossing the book would have now (read-only, no lock, two queries): the
    open orders that could take part (bids at or above the lowest ask, asks at or below
    the highest bid; gtd orders past their time left out) uncrossed with the reference
    price. No eligibility or self-trade checks: indicative only."""
    from .trading_selectors import reference_price

    TradeOrder = _models().TradeOrder
    OS = TradeOrder.Status
    now = now or timezone.now()
    live = TradeOrder.objects.filter(market=market, status=OS.OPEN).exclude(
        time_in_force=TradeOrder.TimeInForce.GTD, expires_at__lte=now
    )
    lowest_ask = live.filter(side="sell").order_by("limit_price_minor").values("limit_price_minor")[:1]
    highest_bid = live.filter(side="buy").order_by("-limit_price_minor").values("limit_price_minor")[:1]
    rows = list(
        live.filter(
            Q(side="buy", limit_price_minor__gte=Subquery(lowest_ask))
            | Q(side="sell", limit_price_minor__lte=Subquery(highest_bid))
        ).values_list("side", "limit_price_minor", "remaining_quantity", "priority")
    )
    bids = [(p, q, r) for side, p, q, r in rows if side == "buy"]
    asks = [(p, q, r) for side, p, q, r in rows if side == "sell"]
    if not (bids and asks):
        return NO_CROSS
    if reference is None:
        reference = reference_price(market=market, now=now).price_minor
    return uncross(bids, asks, reference)


@dataclass(frozen=True)
class AuctionSummary:
    """What the trade page shows of a book's auctions: the indicative uncrossing now,
    whether its price lies within the band (None: no cross or no band), the next
    auction in the book's time zone and why, the last auction's outcome."""

    shown: bool
    auction_mode: bool
    indicative: Uncross
    reference_price_minor: int | None
    band_low_minor: int | None
    band_high_minor: int | None
    in_band: bool | None
    next_at: datetime | None
    next_at_text: str
    reason_text: str
    last: object | None  # Auction


def auction_summary(*, market, now: datetime | None = None) -> AuctionSummary:
    """The trade page's auction panel (read-only, at most five queries whatever the
    book's size: the reference price (two at most), the orders that could cross, the
    last auction)."""
    from .trading_selectors import AUCTION_REASON_TEXT, local_time_text, price_band, reference_price

    Market, Auction = _models().Market, _models().Auction
    now = now or timezone.now()
    last = Auction.objects.filter(market=market).order_by("-scheduled_at", "-pk").first()
    auction_mode = market.trading_mode == Market.TradingMode.AUCTION
    shown = auction_mode or market.next_auction_at is not None or last is not None
    if not shown:
        return AuctionSummary(False, False, NO_CROSS, None, None, None, None, None, "", "", None)
    reference = reference_price(market=market, now=now)
    band = price_band(market=market, reference=reference, now=now)
    indicative = indicative_auction(market, now=now, reference=reference.price_minor)
    in_band = None
    if indicative.price_minor is not None and band is not None:
        in_band = band.holds(indicative.price_minor)
    at = market.next_auction_at
    return AuctionSummary(
        shown=True,
        auction_mode=auction_mode,
        indicative=indicative,
        reference_price_minor=reference.price_minor,
        band_low_minor=band.low_minor if band else None,
        band_high_minor=band.high_minor if band else None,
        in_band=in_band,
        next_at=at,
        next_at_text=local_time_text(market, at) if at else "",
        reason_text=AUCTION_REASON_TEXT.get(market.auction_reason, market.auction_reason) if at else "",
        last=last,
    )
