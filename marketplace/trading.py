"""Writes of the secondary market (docs/trading.md): limit orders, matching, settlement of
each trade through the chain outbox, and the staff's retry and reversal.

Every public service owns one durable transaction. A change to a book takes the book's
lock first (the Market row, `locks.market_lock`), then holdings and ledger accounts in
pk order (locks.py's lock order); no network call happens under any lock (mails go on
commit, the chain is reached by the worker through the outbox row).

Refusals are `django.core.exceptions.ValidationError`s whose `error_list` carry codes
(and `params["field"]` for a bad input); nothing is reserved when an order is refused.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.notifications import notify
from chain.models import ChainTransaction
from chain.selectors import investor_accounts
from chain.services import SigningRefused, investor_account_get_or_create, outbox_request, outbox_retry
from compliance.audit import audit_record
from compliance.eligibility import RECEIVE, SEND, RuleFailure, settlement_check
from config.money import format_money
from webhooks.models import EventKind

from . import webhook_events
from .ledger import Leg, ledger_post, trade_fee
from .locks import (
    chain_transaction_lock,
    holdings_lock,
    ledger_accounts_lock,
    market_lock,
    market_lock_for_asset,
    market_wide_control_lock,
    offering_lock,
    trade_lock,
)
from .market_hours import next_session_open
from .models import Holding, JournalEntry, LedgerAccount, Market, MarketEvent, Offering, Trade, TradeOrder
from .selectors import eligibility_check, holder_count
from .trading_selectors import (
    Band,
    asset_not_tradable,
    buy_reservation,
    insufficient_cash,
    local_time_text,
    market_entry_failures,
    market_refusal,
    matching_paused,
    order_input_failures,
    price_band,
    sell_failures,
    sell_view,
)

logger = logging.getLogger("marketplace.trading")

A = LedgerAccount.Kind
Side = TradeOrder.Side
TIF = TradeOrder.TimeInForce
OS = TradeOrder.Status
TS = Trade.Status

SETTLEMENT_KEY_PREFIX = "trade:"

# Why an order stopped being open (TradeOrder.cancel_code); an ineligible resting order
# carries the eligibility engine's first code instead.
CANCELLED_BY_INVESTOR = "cancelled_by_investor"
CANCELLED_BY_STAFF = "cancelled_by_staff"
REPLACED = "replaced"
EXPIRED = "expired"
SELF_TRADE = "self_trade"
IOC_REMAINDER = "ioc_remainder"
FOK_NOT_FILLED = "fok_not_filled"
BAND_AUCTION = "band_auction"


def _refuse(failures) -> ValidationError:
    return ValidationError(
        [
            ValidationError(f.message, code=f.code, params={"field": f.field} if getattr(f, "field", "") else None)
            for f in failures
        ]
    )


def _key_clean(idempotency_key) -> str:
    key = (idempotency_key or "").strip() if isinstance(idempotency_key, str) else ""
    if not key or len(key) > 64:
        raise ValidationError("The form expired; reload the page and try again.", code="idempotency_key")
    return key


def _require_staff(actor, perm: str, *, not_users=()) -> None:
    if not (actor is not None and actor.is_active and actor.is_staff and actor.has_perm(perm)):
        raise PermissionDenied("Only staff with the right permission can do this.")
    if any(actor.pk == user.pk for user in not_users):
        raise PermissionDenied("Four eyes: staff cannot act on their own order or trade.")


def _portfolio_path() -> str:
    return reverse("marketplace:portfolio")


# -- markets ------------------------------------------------------------------------------


@transaction.atomic
def market_open(*, asset) -> Market:
    """The asset's market, opened on first use with the defaults of settings (fees) in
    the currency of its offering. Only a live asset on chain with an offering trades.
    Idempotent; runs inside the caller's transaction or its own."""
    market = Market.objects.filter(asset=asset).first()
    if market is not None:
        return market
    refusal = asset_not_tradable(asset=asset)
    if refusal is not None:
        raise _refuse([refusal])
    offering = Offering.objects.get(asset=asset)
    # A market-wide halt locks its row, then every book: a book created meanwhile waits
    # here until the halt commits (and the order is then refused), or the halt waits.
    market_wide_control_lock(share=True)
    Market.objects.bulk_create([Market(asset=asset, currency=offering.currency)], ignore_conflicts=True)
    return Market.objects.get(asset=asset)


# -- placing and matching -----------------------------------------------------------------


@dataclass
class _Match:
    resting: TradeOrder
    quantity: int


@transaction.atomic(durable=True)
def trade_order_place(
    *,
    investor,
    asset,
    side: str,
    quantity: int,
    limit_price_minor: int,
    time_in_force: str,
    expires_at=None,
    idempotency_key: str,
) -> TradeOrder:
    """Place a limit order and match it at once against the book (price-time priority,
    at the resting orders' prices), in one transaction under the book's lock. A buy holds
    limit × quantity + the maximum fee of the investor's available cash; a sell locks the
    units. The unfilled rest rests (gtc, gtd), or is cancelled (ioc); a fok order fills
    completely or is cancelled without a trade. An order meeting its owner's own resting
    order stops there and its rest is cancelled (`self_trade`).

    Returns the order as it stands after matching (`.replayed` is True when the same
    idempotency key was used before: the first order is returned, nothing changes).
    Raises ValidationError with codes: idempotency_key, idempotency_conflict, the input's
    (invalid_side, not_integer, not_positive, too_large, invalid_time_in_force,
    expiry_required, invalid_expiry, expiry_in_past, expiry_too_far, expiry_not_allowed),
    market_unavailable, market_wide_halt / market_halted, no_continuous_matching (ioc or
    fok while matching is paused: auction mode, an auction called, outside trading
    hours), outside_band, a price check's code,
    too_many_open_orders, rate_limited, the eligibility engine's codes, insufficient_units,
    insufficient_cash."""
    key = _key_clean(idempotency_key)
    now = timezone.now()
    failures = order_input_failures(
        asset=asset,
        side=side,
        quantity=quantity,
        limit_price_minor=limit_price_minor,
        time_in_force=time_in_force,
        expires_at=expires_at,
        now=now,
    )
    market = market_lock_for_asset(asset_id=asset.pk) or market_lock(pk=market_open(asset=asset).pk)
    # Times are taken under the book's lock, so they follow the order of the book's
    # changes: no trade is stamped before a halt that came first (market_check).
    now = timezone.now()
    existing = _replay(investor=investor, key=key)
    if existing is not None:
        same = (existing.market_id, existing.side, existing.limit_price_minor, existing.time_in_force) == (
            market.pk,
            side,
            limit_price_minor,
            time_in_force,
        ) and existing.quantity == quantity
        if not same:
            raise ValidationError(
                "This form was already used for another order; reload the page.", code="idempotency_conflict"
            )
        return existing
    if failures:
        raise _refuse(failures)
    _limits_check(investor=investor, market=market, now=now)
    return _place(
        investor=investor,
        market=market,
        side=side,
        quantity=quantity,
        limit_price_minor=limit_price_minor,
        time_in_force=time_in_force,
        expires_at=expires_at,
        key=key,
        now=now,
    )


# Written out: asked on every placement and almost always empty (the ORM's statement was
# a tenth of a resting order's Python, bench/trading). At most one row: unique
# (investor, idempotency_key).
_ORDER_FOR_KEY_SQL = "SELECT * FROM marketplace_tradeorder WHERE investor_id = %s AND idempotency_key = %s"


def _replay(*, investor, key: str) -> TradeOrder | None:
    existing = next(iter(TradeOrder.objects.raw(_ORDER_FOR_KEY_SQL, [investor.pk, key])), None)
    if existing is not None:
        existing.replayed = True
    return existing


# The investor's open orders on this book and orders in the rate window, in one read:
# written out, since the ORM's aggregate (two filtered counts) was a tenth of a resting
# order's Python (bench/trading). SUM(CASE ...) rather than FILTER: SQLite too.
_LIMITS_SQL = (
    "SELECT SUM(CASE WHEN market_id = %(market)s AND status = %(open)s THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN created_at >= %(since)s THEN 1 ELSE 0 END) FROM marketplace_tradeorder "
    "WHERE investor_id = %(investor)s AND ((market_id = %(market)s AND status = %(open)s) OR created_at >= %(since)s)"
)


def _limits_check(*, investor, market: Market, now, replacing: bool = False) -> None:
    """Per-investor limits, counted in the database (deterministic, behind the book lock
    for the open orders of this book)."""
    limit = settings.MARKETPLACE_MAX_OPEN_ORDERS_PER_ASSET
    count, seconds = settings.MARKETPLACE_TRADE_ORDER_RATE
    since = connection.ops.adapt_datetimefield_value(now - timedelta(seconds=seconds))
    with connection.cursor() as cursor:
        cursor.execute(
            _LIMITS_SQL, {"investor": investor.pk, "market": market.pk, "open": OS.OPEN.value, "since": since}
        )
        open_here, recent = cursor.fetchone()
    counted = {"open": open_here or 0, "recent": recent or 0}
    if not replacing and counted["open"] >= limit:
        raise ValidationError(
            f"You already have {limit:,} open orders on this asset, the most allowed; cancel one first.",
            code="too_many_open_orders",
        )
    if counted["recent"] >= count:
        raise ValidationError(
            f"You can place at most {count:,} orders every {seconds:,} seconds; wait a moment and try again.",
            code="rate_limited",
        )


def _receive_failures(*, investor, asset, quantity: int, holding: Holding, holders: int, now) -> list[RuleFailure]:
    return eligibility_check(
        investor=investor,
        asset=asset,
        quantity=quantity,
        direction=RECEIVE,
        at=now,
        holding=holding,
        holder_count=holders,
    ).failures


def _send_failures(*, investor, asset, quantity: int, holding: Holding | None, units: int, now) -> list[RuleFailure]:
    return eligibility_check(
        investor=investor,
        asset=asset,
        quantity=quantity,
        direction=SEND,
        at=now,
        holding=sell_view(holding, units),
        holder_count=0,
    ).failures


class _Receivers:
    """The receiving side's holdings as matching proceeds: pending units added in memory
    as each fill is judged, and the holder count kept current, so a buyer met twice, or
    two new holders of a capped asset, are judged on what the earlier fills did."""

    def __init__(self, *, asset, holdings: dict, holders: int):
        self.asset, self.holdings, self.holders = asset, holdings, holders

    def holding(self, investor_id: int) -> Holding:
        holding = self.holdings.get((investor_id, self.asset.pk))
        if holding is None:
            holding = Holding(investor_id=investor_id, asset=self.asset)
            self.holdings[(investor_id, self.asset.pk)] = holding
        return holding

    def failures(self, *, investor, quantity: int, now) -> list[RuleFailure]:
        holding = self.holding(investor.pk)
        found = _receive_failures(
            investor=investor, asset=self.asset, quantity=quantity, holding=holding, holders=self.holders, now=now
        )
        if not found:
            self.receive(investor.pk, quantity)
        return found

    def receive(self, investor_id: int, quantity: int) -> None:
        holding = self.holding(investor_id)
        if not (holding.quantity or holding.pending_quantity):
            self.holders += 1
        holding.pending_quantity += quantity


def _pages(queryset, size: int = 50, before=None):
    """The rows of an ordered queryset, read `size` at a time with LIMIT/OFFSET (the
    book cannot change under its lock): a walk that stops early, as almost every walk
    does, costs one plain SELECT instead of a server-side cursor's three statements.
    `before(page)` is called with each page that has rows, before its rows are walked."""
    start = 0
    while True:
        page = list(queryset[start : start + size])
        if page and before is not None:
            before(page)
        yield from page
        if len(page) < size:
            return
        start += size


def _plan(
    *,
    market: Market,
    investor,
    side: str,
    quantity: int,
    limit: int,
    now,
    receivers: _Receivers,
    band: Band | None,
) -> tuple[list[_Match], list[tuple[TradeOrder, list[RuleFailure]]], bool, TradeOrder | None]:
    """Walk the opposite side of the book in priority order (best price, then time) while
    quantity is left: an owner's own order stops the walk (self-trade), an order whose
    owner may no longer trade is set aside to be cancelled, an order priced outside the
    band in force stops the walk (it would print outside the band: the caller calls an
    auction), the rest are matched. The owners' holdings are read a page of orders at a
    time, only for the orders the walk can reach (none when the order does not cross).
    Returns (matches, ineligible, stopped_by_self_trade, stopped_at_band)."""
    asset = market.asset
    opposite = TradeOrder.objects.filter(market=market, status=OS.OPEN).select_related("investor")
    if side == Side.BUY:
        opposite = opposite.filter(side=Side.SELL, limit_price_minor__lte=limit).order_by(
            "limit_price_minor", "priority"
        )
    else:
        opposite = opposite.filter(side=Side.BUY, limit_price_minor__gte=limit).order_by(
            "-limit_price_minor", "priority"
        )
    sellers: dict[int, Holding] = {}

    def read_holdings(page: list[TradeOrder]) -> None:
        for holding in Holding.objects.filter(asset=asset, investor_id__in={o.investor_id for o in page}):
            receivers.holdings.setdefault((holding.investor_id, asset.pk), holding)
            sellers.setdefault(holding.investor_id, holding)

    matches: list[_Match] = []
    ineligible: list[tuple[TradeOrder, list[RuleFailure]]] = []
    need = quantity
    for resting in _pages(opposite, before=read_holdings):
        if need == 0:
            break
        resting.asset = asset  # the book's own, not read again with every order
        if resting.investor_id == investor.pk:
            return matches, ineligible, True, None
        if resting.time_in_force == TIF.GTD and resting.expires_at is not None and resting.expires_at <= now:
            # Due but not swept by beat yet: it expires now instead of trading.
            ineligible.append((resting, [RuleFailure(EXPIRED, "Its good-till-date time has come.")]))
            continue
        if band is not None and not band.holds(resting.limit_price_minor):
            return matches, ineligible, False, resting
        fill = min(need, resting.remaining_quantity)
        if side == Side.BUY:  # the resting order sells: may its owner still send?
            failures = _send_failures(
                investor=resting.investor,
                asset=asset,
                quantity=fill,
                holding=sellers.get(resting.investor_id),
                units=resting.remaining_quantity,
                now=now,
            )
        else:  # the resting order buys: may its owner receive this much now?
            failures = receivers.failures(investor=resting.investor, quantity=fill, now=now)
        if failures:
            ineligible.append((resting, failures))
            continue
        matches.append(_Match(resting, fill))
        need -= fill
    return matches, ineligible, False, None


def _place(
    *,
    investor,
    market: Market,
    side: str,
    quantity: int,
    limit_price_minor: int,
    time_in_force: str,
    expires_at,
    key: str,
    now,
    replaces: TradeOrder | None = None,
) -> TradeOrder:
    """The order entry under the book lock the caller holds: checks, reservation,
    matching, the rest by time in force. The market's state is read here, after the
    lock: the whole market's halt row (one query; the book's own controls came with the
    locked row), the band once (no query while the last trade is the reference)."""
    asset = market.asset
    refusal = market_refusal(market=market)
    if refusal is not None:
        raise _refuse([refusal])
    paused = matching_paused(market, now)
    band = price_band(market=market, now=now)
    entry_failures = market_entry_failures(
        market=market,
        side=side,
        time_in_force=time_in_force,
        limit_price_minor=limit_price_minor,
        band=band,
        paused=paused,
    )
    if entry_failures:
        raise _refuse(entry_failures)
    buy = side == Side.BUY
    capped = asset.max_holders is not None
    market_fields = ["order_sequence", "updated_at"]

    # 1. Plan against the book (reads; every order of this book changes only under its lock).
    # While matching is paused (auction mode, an auction called, outside hours) the order
    # only rests: no plan.
    matches: list[_Match] = []
    ineligible: list[tuple[TradeOrder, list[RuleFailure]]] = []
    self_trade, band_stop = False, None
    if paused is None:
        receivers = _Receivers(asset=asset, holdings={}, holders=holder_count(asset=asset) if capped else 0)
        matches, ineligible, self_trade, band_stop = _plan(
            market=market,
            investor=investor,
            side=side,
            quantity=quantity,
            limit=limit_price_minor,
            now=now,
            receivers=receivers,
            band=band,
        )

    # 2. Lock the rows the plan touches, in the lock order: holdings, accounts, (offering).
    participants = {investor.pk: investor}
    for m in matches:
        participants[m.resting.investor_id] = m.resting.investor
    for order, _ in ineligible:
        participants[order.investor_id] = order.investor
    holdings = holdings_lock(pairs=[(pk, asset.pk) for pk in participants])
    specs: list[tuple[str, User | None, str]] = []
    for user in sorted(participants.values(), key=lambda u: u.pk):
        specs += [(A.INVESTOR_AVAILABLE, user, market.currency), (A.INVESTOR_HELD, user, market.currency)]
    if matches:  # only a trade pays fees: orders that only rest never wait on that one row
        specs.append((A.PLATFORM_FEES, None, market.currency))
    locked_accounts = ledger_accounts_lock(specs=specs)
    accounts = {(a.kind, a.user_id): a for a in locked_accounts}
    receiving = [investor.pk] if buy else [m.resting.investor_id for m in matches]
    new_holder = any(
        not (holdings[(pk, asset.pk)].quantity or holdings[(pk, asset.pk)].pending_quantity) for pk in receiving
    )
    if capped and new_holder:
        offering = Offering.objects.filter(asset=asset).only("pk").first()
        if offering is not None:
            offering_lock(pk=offering.pk)  # primary purchases of new holders count under it too
    receivers = _Receivers(asset=asset, holdings=holdings, holders=holder_count(asset=asset) if capped else 0)
    own = holdings[(investor.pk, asset.pk)]
    available = accounts[(A.INVESTOR_AVAILABLE, investor.pk)]
    if replaces is not None:  # modify: the old order gives back what it holds first
        _close(
            replaces,
            status=OS.CANCELLED,
            code=REPLACED,
            reason="Replaced by a changed order.",
            actor=investor,
            holdings=holdings,
            accounts=accounts,
            now=now,
        )
        if replaces.side == Side.SELL:
            own.locked_quantity -= replaces.remaining_quantity

    # 3. The incoming order's own checks, on the locked rows (only a replaced order was
    # written before; a refusal rolls everything back).
    reserve = 0
    if buy:
        failures = receivers.failures(investor=investor, quantity=quantity, now=now)
        if failures:
            raise _refuse(failures)
        reserve = buy_reservation(limit_price_minor=limit_price_minor, quantity=quantity, fee_bps=market.max_fee_bps)
        if available.balance < reserve:
            raise _refuse([insufficient_cash(reserve, available.balance, market.currency)])
    else:
        failures = sell_failures(
            _send_failures(
                investor=investor, asset=asset, quantity=quantity, holding=own, units=own.available_to_sell, now=now
            ),
            available=own.available_to_sell,
            wanted=quantity,
        )
        if failures:
            raise _refuse(failures)

    # 4. The plan again on the locked rows: a resting buyer's room may have changed.
    confirmed: list[_Match] = []
    need = quantity
    for m in matches:
        if need == 0:
            break
        fill = min(need, m.resting.remaining_quantity)
        if not buy:
            failures = receivers.failures(investor=m.resting.investor, quantity=fill, now=now)
            if failures:
                ineligible.append((m.resting, failures))
                continue
        confirmed.append(_Match(m.resting, fill))
        need -= fill
    filled = quantity - need

    # 5. Write: the auction the book switches to, the order and its reservation, the
    # cancellations, the trades.
    if band_stop is not None and band is not None:
        market_fields += _call_band_auction(market=market, band=band, price_minor=band_stop.limit_price_minor, now=now)
    elif paused is not None:
        market_fields += _call_session_auction(market=market, now=now)
    market.order_sequence += 1
    order = TradeOrder(
        public_id=uuid.uuid4(),
        market=market,
        asset=asset,
        investor=investor,
        idempotency_key=key,
        side=side,
        quantity=quantity,
        filled_quantity=0,
        remaining_quantity=quantity,
        limit_price_minor=limit_price_minor,
        currency=market.currency,
        time_in_force=time_in_force,
        expires_at=expires_at if time_in_force == TIF.GTD else None,
        priority=market.order_sequence,
        fee_bps_reserved=market.max_fee_bps if buy else 0,
        reserved_minor=0,
        replaces=replaces,
        created_at=now,
    )
    for resting, reasons in ineligible:
        expired = reasons[0].code == EXPIRED
        _close(
            resting,
            status=OS.EXPIRED if expired else OS.CANCELLED,
            code=reasons[0].code,
            reason=" ".join(f.message for f in reasons),
            actor=None,
            holdings=holdings,
            accounts=accounts,
            now=now,
        )
        _notify_closed(
            resting,
            why="its good-till-date time has come"
            if expired
            else "it can no longer trade: " + " ".join(f.message for f in reasons),
        )

    if time_in_force == TIF.FOK and filled < quantity:
        order.status, order.closed_at = OS.CANCELLED, now
        if self_trade:
            order.cancel_code = SELF_TRADE
            order.cancel_reason = "Fill or kill: your own resting order stood in the way, so nothing was traded."
        elif band_stop is not None:
            order.cancel_code = BAND_AUCTION
            order.cancel_reason = "Fill or kill: " + _band_stop_text(market, band_stop) + " Nothing was traded."
        else:
            order.cancel_code = FOK_NOT_FILLED
            order.cancel_reason = (
                f"Fill or kill: only {filled:,} of {quantity:,} could be filled at once, so nothing was traded."
            )
        _insert(order)
        market.save(update_fields=market_fields)
        order.replayed = False
        return order

    order.reserved_minor = reserve
    _insert(order)
    if buy:
        ledger_post(
            kind=JournalEntry.Kind.TRADE_RESERVE,
            legs=[Leg(available, -reserve), Leg(accounts[(A.INVESTOR_HELD, investor.pk)], reserve)],
            memo=f"Buy {quantity} × {asset.unit_name} at {format_money(limit_price_minor, market.currency)}",
            created_by=investor,
            trade_order=order,
        )
    else:
        Holding.objects.filter(pk=own.pk).update(locked_quantity=F("locked_quantity") + quantity, updated_at=now)

    if confirmed:
        chain_accounts = {a.user_id: a for a in investor_accounts().filter(user_id__in=list(participants))}
        for m in confirmed:
            _execute(
                market=market,
                incoming=order,
                resting=m.resting,
                quantity=m.quantity,
                holdings=holdings,
                accounts=accounts,
                chain_accounts=chain_accounts,
                now=now,
                band=band,
            )

    if order.status == OS.OPEN:
        if self_trade:
            _close_incoming(
                order,
                code=SELF_TRADE,
                holdings=holdings,
                accounts=accounts,
                now=now,
                reason="Stopped at your own resting order on the other side (self-trade prevention): "
                f"the unfilled {order.remaining_quantity:,} were cancelled.",
            )
        elif band_stop is not None and time_in_force in (TIF.IOC, TIF.FOK):
            _close_incoming(
                order,
                code=BAND_AUCTION,
                holdings=holdings,
                accounts=accounts,
                now=now,
                reason=f"Immediate or cancel: {_band_stop_text(market, band_stop)} "
                f"The unfilled {order.remaining_quantity:,} were cancelled.",
            )
        elif time_in_force in (TIF.IOC, TIF.FOK):
            _close_incoming(
                order,
                code=IOC_REMAINDER,
                holdings=holdings,
                accounts=accounts,
                now=now,
                reason=f"Immediate or cancel: the unfilled {order.remaining_quantity:,} were cancelled.",
            )
    market.save(update_fields=[*market_fields, "last_price_minor", "last_trade_at"])
    order.replayed = False
    return order


def _band_stop_text(market: Market, resting: TradeOrder) -> str:
    return (
        f"the next resting order, at {format_money(resting.limit_price_minor, market.currency)}, lies outside the "
        f"price band, so no trade printed there and an auction was called for "
        f"{local_time_text(market, market.next_auction_at) if market.next_auction_at else 'later'}."
    )


def _call_band_auction(*, market: Market, band: Band, price_minor: int, now) -> list[str]:
    """A trade would print outside the band: the book switches to an auction in
    MARKETPLACE_BAND_AUCTION_SECONDS (an auction already called stays as it is).
    Returns the Market fields changed."""
    if market.next_auction_at is not None:
        return []
    market.next_auction_at = now + timedelta(seconds=settings.MARKETPLACE_BAND_AUCTION_SECONDS)
    market.auction_reason = "band"
    MarketEvent.objects.create(
        market=market,
        kind=MarketEvent.Kind.AUCTION_CALLED,
        at=now,
        message=f"A trade at {format_money(price_minor, market.currency)} would have printed outside the price "
        f"band ({format_money(band.low_minor, market.currency)} to {format_money(band.high_minor, market.currency)}).",
        data={
            "reason": "band",
            "price_minor": price_minor,
            "band_low_minor": band.low_minor,
            "band_high_minor": band.high_minor,
            "auction_at": market.next_auction_at.isoformat(),
        },
    )
    return ["next_auction_at", "auction_reason"]


def _call_session_auction(*, market: Market, now) -> list[str]:
    """An order reaching a continuous book outside its trading hours with no auction
    called yet: the session opens with an auction (the orders collected meanwhile may
    cross). Once per closed period; returns the Market fields changed."""
    if market.trading_mode != Market.TradingMode.CONTINUOUS or market.next_auction_at is not None:
        return []
    opens = next_session_open(market, now)
    if opens is None:
        return []
    market.next_auction_at, market.auction_reason = opens, "session_open"
    MarketEvent.objects.create(
        market=market,
        kind=MarketEvent.Kind.AUCTION_CALLED,
        at=now,
        message="Outside trading hours: the session opens with an auction.",
        data={"reason": "session_open", "auction_at": opens.isoformat()},
    )
    return ["next_auction_at", "auction_reason"]


def _insert(order: TradeOrder) -> None:
    # No savepoint: a refused insert refuses the whole placement, whose transaction rolls back.
    try:
        with transaction.atomic(savepoint=False):
            order.save(force_insert=True)
    except IntegrityError:  # the same key on another book in a concurrent transaction
        raise ValidationError(
            "This form was already used for another order; reload the page.", code="idempotency_conflict"
        ) from None
    webhook_events.trade_order_event(order, EventKind.ORDER_ACCEPTED)
    if order.status == OS.CANCELLED:  # fill or kill that could not fill: inserted closed
        webhook_events.trade_order_event(order, EventKind.ORDER_CANCELLED)


def _close_incoming(order: TradeOrder, *, code: str, reason: str, holdings, accounts, now) -> None:
    _close(
        order, status=OS.CANCELLED, code=code, reason=reason, actor=None, holdings=holdings, accounts=accounts, now=now
    )


def _execute(
    *,
    market: Market,
    incoming: TradeOrder,
    resting: TradeOrder,
    quantity: int,
    holdings,
    accounts,
    chain_accounts,
    now,
    price: int | None = None,
    auction=None,
    band=None,
) -> Trade:
    """One trade at the resting order's price: the cash (buyer's held → seller's held,
    less the fees, fees to the platform), the units (seller's locked → settling out,
    buyer's pending in), the buy order's reservation cut to what its rest needs, and the
    one outbox row that delivers the units on chain.

    An auction (marketplace/auction.py) passes `price` (its clearing price, within both
    limits), `auction` (linked on the trade) and `band` (recorded on the trade: an object
    with low_minor/high_minor, or None); `resting` is then the order with the earlier
    priority (the maker)."""
    asset = market.asset
    buy_order, sell_order = (incoming, resting) if incoming.side == Side.BUY else (resting, incoming)
    price = resting.limit_price_minor if price is None else price
    gross = price * quantity
    maker_side = resting.side
    buyer_rate = market.maker_fee_bps if maker_side == Side.BUY else market.taker_fee_bps
    # Never more than the buy order holds for (a fee raised after it was placed).
    buyer_bps = min(buyer_rate, buy_order.fee_bps_reserved)
    seller_bps = market.maker_fee_bps if maker_side == Side.SELL else market.taker_fee_bps
    buyer_fee = trade_fee(gross_minor=gross, fee_bps=buyer_bps)
    seller_fee = trade_fee(gross_minor=gross, fee_bps=seller_bps)
    buyer_id, seller_id = buy_order.investor_id, sell_order.investor_id

    sender = chain_accounts.get(seller_id)
    if sender is None:  # settled units always came through a custodial account
        raise LookupError(f"seller #{seller_id} has units but no custodial account")
    receiver = chain_accounts.get(buyer_id)
    if receiver is None:
        receiver = chain_accounts[buyer_id] = investor_account_get_or_create(user=buy_order.investor)

    trade = Trade(
        public_id=uuid.uuid4(),
        market=market,
        asset=asset,
        buy_order=buy_order,
        sell_order=sell_order,
        buyer_id=buyer_id,
        seller_id=seller_id,
        quantity=quantity,
        price_minor=price,
        gross_minor=gross,
        currency=market.currency,
        maker_side=maker_side,
        maker_fee_bps=market.maker_fee_bps,
        taker_fee_bps=market.taker_fee_bps,
        buyer_fee_bps=buyer_bps,
        seller_fee_bps=seller_bps,
        buyer_fee_minor=buyer_fee,
        seller_fee_minor=seller_fee,
        auction=auction,
        band_low_minor=band.low_minor if band is not None else None,
        band_high_minor=band.high_minor if band is not None else None,
        created_at=now,
    )
    # The buyer's funding and opt-in join the clawback in one atomic group when the buyer
    # never held the asset: chain/builder.py decides that from the account, as for primary orders.
    trade.chain_tx = outbox_request(
        kind=ChainTransaction.Kind.ASSET_TRANSFER,
        payload={"asset_id": asset.asa_id, "sender": sender.address, "receiver": receiver.address, "amount": quantity},
        idempotency_key=f"{SETTLEMENT_KEY_PREFIX}{trade.public_id}",
        on_confirmed="marketplace.trading.trade_settlement_confirmed",
        on_failed="marketplace.trading.trade_settlement_failed",
        before_sign="marketplace.trading.trade_settlement_guard",
        accounts=(sender, receiver),
    )
    trade.save(force_insert=True)
    legs = [
        Leg(accounts[(A.INVESTOR_HELD, buyer_id)], -(gross + buyer_fee)),
        Leg(accounts[(A.INVESTOR_HELD, seller_id)], gross - seller_fee),
        Leg(accounts[(A.PLATFORM_FEES, None)], buyer_fee + seller_fee),
    ]
    ledger_post(
        kind=JournalEntry.Kind.TRADE_MATCH,
        legs=[leg for leg in legs if leg.amount_minor],
        memo=f"{quantity} × {asset.unit_name} at {format_money(price, market.currency)}",
        trade=trade,
    )

    # The buy order keeps exactly what its rest needs; the difference goes back.
    rest = buy_order.remaining_quantity - quantity
    needed = buy_reservation(
        limit_price_minor=buy_order.limit_price_minor, quantity=rest, fee_bps=buy_order.fee_bps_reserved
    )
    release = buy_order.reserved_minor - (gross + buyer_fee) - needed
    if release < 0:
        raise AssertionError(f"buy order {buy_order.pk}: reservation short by {-release}")
    if release:
        ledger_post(
            kind=JournalEntry.Kind.TRADE_RELEASE,
            legs=[
                Leg(accounts[(A.INVESTOR_HELD, buyer_id)], -release),
                Leg(accounts[(A.INVESTOR_AVAILABLE, buyer_id)], release),
            ],
            memo="Filled at a better price or fee than held for",
            trade_order=buy_order,
        )
    buy_order.reserved_minor = needed

    seller_holding = holdings[(seller_id, asset.pk)]
    Holding.objects.filter(pk=seller_holding.pk).update(
        locked_quantity=F("locked_quantity") - quantity,
        pending_out_quantity=F("pending_out_quantity") + quantity,
        updated_at=now,
    )
    Holding.objects.filter(pk=holdings[(buyer_id, asset.pk)].pk).update(
        pending_quantity=F("pending_quantity") + quantity, updated_at=now
    )

    for order in (buy_order, sell_order):
        order.filled_quantity += quantity
        order.remaining_quantity -= quantity
        if order.remaining_quantity == 0:
            order.status, order.closed_at = OS.FILLED, now
            _notify_filled(order)
            webhook_events.trade_order_event(order, EventKind.ORDER_FILLED)
        if order is resting:
            order.save(
                update_fields=[
                    "filled_quantity",
                    "remaining_quantity",
                    "status",
                    "closed_at",
                    "reserved_minor",
                    "updated_at",
                ]
            )
    if incoming.pk is not None:
        incoming.save(
            update_fields=[
                "filled_quantity",
                "remaining_quantity",
                "status",
                "closed_at",
                "reserved_minor",
                "updated_at",
            ]
        )
    market.last_price_minor, market.last_trade_at = price, now
    return trade


def _close(order: TradeOrder, *, status: str, code: str, reason: str, actor, holdings, accounts, now) -> None:
    """Take an open order off the book and release exactly what it still holds (a buy's
    reserved cash, a sell's locked units). The caller holds the book lock and the
    order's holding (sell) or cash accounts (buy)."""
    if order.side == Side.BUY and order.reserved_minor:
        ledger_post(
            kind=JournalEntry.Kind.TRADE_RELEASE,
            legs=[
                Leg(accounts[(A.INVESTOR_HELD, order.investor_id)], -order.reserved_minor),
                Leg(accounts[(A.INVESTOR_AVAILABLE, order.investor_id)], order.reserved_minor),
            ],
            memo=f"Order {status}: {code}",
            created_by=actor,
            trade_order=order,
        )
    elif order.side == Side.SELL and order.remaining_quantity:
        holding = holdings[(order.investor_id, order.asset_id)]
        Holding.objects.filter(pk=holding.pk).update(
            locked_quantity=F("locked_quantity") - order.remaining_quantity, updated_at=now
        )
    order.status, order.reserved_minor, order.closed_at = status, 0, now
    order.cancel_code, order.cancel_reason, order.cancelled_by = code, reason[:2000], actor
    order.save(
        update_fields=[
            "status",
            "reserved_minor",
            "closed_at",
            "cancel_code",
            "cancel_reason",
            "cancelled_by",
            "updated_at",
        ]
    )
    if status in (OS.CANCELLED, OS.EXPIRED):
        webhook_events.trade_order_event(
            order, EventKind.ORDER_CANCELLED if status == OS.CANCELLED else EventKind.ORDER_EXPIRED
        )


def _order_locks(*, orders: list[TradeOrder], currency: str):
    """Holdings of the sell orders' owners, then the cash accounts of the buy orders'
    owners, in the lock order."""
    holdings = holdings_lock(pairs=[(o.investor_id, o.asset_id) for o in orders if o.side == Side.SELL])
    users = {o.investor_id: o.investor for o in orders if o.side == Side.BUY}
    specs: list[tuple[str, User | None, str]] = []
    for user in sorted(users.values(), key=lambda u: u.pk):
        specs += [(A.INVESTOR_AVAILABLE, user, currency), (A.INVESTOR_HELD, user, currency)]
    accounts = {(a.kind, a.user_id): a for a in ledger_accounts_lock(specs=specs)} if specs else {}
    return holdings, accounts


# -- cancel, modify, expire --------------------------------------------------------------------


@transaction.atomic(durable=True)
def trade_order_cancel(*, order: TradeOrder, actor, reason: str = "") -> TradeOrder:
    """Take an open order off the book and release what it holds. The owner may always
    cancel (even while trading is halted). Staff need marketplace.cancel_any_tradeorder
    and a reason; their cancellation is audited and mailed to the owner.
    Raises PermissionDenied (neither the owner nor permitted staff) or ValidationError
    (`reason_required`, `not_open`)."""
    reason = (reason or "").strip()
    by_staff = actor is None or actor.pk != order.investor_id
    if by_staff:
        _require_staff(actor, "marketplace.cancel_any_tradeorder", not_users=[order.investor])
        if not reason:
            raise ValidationError(
                {"reason": "Say why the order is cancelled; the investor is told."}, code="reason_required"
            )
    market_lock(pk=order.market_id)
    order = TradeOrder.objects.select_related("investor", "asset").get(pk=order.pk)
    if order.status != OS.OPEN:
        raise ValidationError(f"This order is already {order.get_status_display().lower()}.", code="not_open")
    holdings, accounts = _order_locks(orders=[order], currency=order.currency)
    before = {
        "status": order.status,
        "remaining_quantity": order.remaining_quantity,
        "reserved_minor": order.reserved_minor,
    }
    _close(
        order,
        status=OS.CANCELLED,
        code=CANCELLED_BY_STAFF if by_staff else CANCELLED_BY_INVESTOR,
        reason=reason or "Cancelled by you.",
        actor=actor,
        holdings=holdings,
        accounts=accounts,
        now=timezone.now(),
    )
    if by_staff:
        audit_record(
            actor=actor,
            action="trade_order.cancelled_by_staff",
            target=order,
            before=before,
            after={
                "status": order.status,
                "released_minor": before["reserved_minor"],
                "released_units": order.remaining_quantity if order.side == Side.SELL else 0,
            },
            reason=reason,
        )
        _notify_closed(order, why=f"our staff cancelled it: {reason}")
    return order


@transaction.atomic(durable=True)
def trade_order_modify(
    *,
    order: TradeOrder,
    investor,
    quantity: int | None = None,
    limit_price_minor: int | None = None,
    idempotency_key: str,
) -> TradeOrder:
    """Change an open order. `quantity` is the new open (unfilled) quantity. Lowering only
    the quantity changes the order in place and keeps its time priority (the released
    cash or units go back at once); anything else cancels it (`replaced`) and places a
    new order with the new terms (same side, time in force and expiry), which loses
    priority and may match at once. Returns the order standing afterwards (the same one,
    or the new one with `.replaces` set); a repeated key returns the order that key made.
    Raises PermissionDenied (not the owner), ValidationError (`not_open`, the input and
    placement codes of trade_order_place).

    While the asset or the whole market is halted only a pure quantity decrease goes
    through (it only gives back cash or units, like a partial cancel); any other change is
    a new order and is refused with the halt's message (`market_halted` /
    `market_wide_halt`), the old order left as it was. A new price must lie in the band."""
    if investor is None or order.investor_id != investor.pk:
        raise PermissionDenied("Only the owner can change an order.")
    key = _key_clean(idempotency_key)
    market = market_lock(pk=order.market_id)
    now = timezone.now()
    existing = _replay(investor=investor, key=key)
    if existing is not None:
        return existing
    order = TradeOrder.objects.select_related("investor", "asset").get(pk=order.pk)
    if order.status != OS.OPEN:
        raise ValidationError(f"This order is already {order.get_status_display().lower()}.", code="not_open")
    new_quantity = order.remaining_quantity if quantity is None else quantity
    new_price = order.limit_price_minor if limit_price_minor is None else limit_price_minor
    failures = order_input_failures(
        asset=order.asset,
        side=order.side,
        quantity=new_quantity,
        limit_price_minor=new_price,
        time_in_force=order.time_in_force,
        expires_at=order.expires_at,
        now=now,
    )
    if failures:
        raise _refuse(failures)
    if new_price == order.limit_price_minor and new_quantity <= order.remaining_quantity:
        cut = order.remaining_quantity - new_quantity
        order.replayed = False
        if cut == 0:
            return order
        holdings, accounts = _order_locks(orders=[order], currency=order.currency)
        if order.side == Side.BUY:
            needed = buy_reservation(limit_price_minor=new_price, quantity=new_quantity, fee_bps=order.fee_bps_reserved)
            release = order.reserved_minor - needed
            ledger_post(
                kind=JournalEntry.Kind.TRADE_RELEASE,
                legs=[
                    Leg(accounts[(A.INVESTOR_HELD, investor.pk)], -release),
                    Leg(accounts[(A.INVESTOR_AVAILABLE, investor.pk)], release),
                ],
                memo=f"Order reduced by {cut}",
                created_by=investor,
                trade_order=order,
            )
            order.reserved_minor = needed
        else:
            holding = holdings[(investor.pk, order.asset_id)]
            Holding.objects.filter(pk=holding.pk).update(locked_quantity=F("locked_quantity") - cut, updated_at=now)
        order.quantity -= cut
        order.remaining_quantity = new_quantity
        order.save(update_fields=["quantity", "remaining_quantity", "reserved_minor", "updated_at"])
        return order
    _limits_check(investor=investor, market=market, now=now, replacing=True)
    return _place(
        investor=investor,
        market=market,
        side=order.side,
        quantity=new_quantity,
        limit_price_minor=new_price,
        time_in_force=order.time_in_force,
        expires_at=order.expires_at,
        key=key,
        now=now,
        replaces=order,
    )


def trade_orders_expire(*, now=None) -> int:
    """Expire every open good-till-date order whose time has come (beat runs it), one
    durable transaction per book; each owner is mailed. Returns how many expired."""
    now = now or timezone.now()
    due = (
        TradeOrder.objects.filter(status=OS.OPEN, time_in_force=TIF.GTD, expires_at__lte=now)
        .values_list("market_id", flat=True)
        .distinct()
    )
    return sum(_expire_book(market_id=market_id, now=now) for market_id in sorted(set(due)))


@transaction.atomic(durable=True)
def _expire_book(*, market_id: int, now) -> int:
    market = market_lock(pk=market_id)
    orders = list(
        TradeOrder.objects.filter(market=market, status=OS.OPEN, time_in_force=TIF.GTD, expires_at__lte=now)
        .select_related("investor", "asset")
        .order_by("pk")
    )
    if not orders:
        return 0
    holdings, accounts = _order_locks(orders=orders, currency=market.currency)
    for order in orders:
        _close(
            order,
            status=OS.EXPIRED,
            code=EXPIRED,
            reason=f"Good till {order.expires_at:%d %b %Y %H:%M} UTC: the unfilled {order.remaining_quantity:,} expired.",
            actor=None,
            holdings=holdings,
            accounts=accounts,
            now=now,
        )
        _notify_closed(order, why="its good-till-date time has come")
    return len(orders)


# -- settlement: the outbox's hooks ------------------------------------------------------------


def trade_settlement_guard(chain_tx: ChainTransaction) -> None:
    """Outbox before_sign hook (worker): the compliance engine's last look at both sides
    (settlement_check: the buyer may still receive, the seller still send), and no
    delivery for a reversed trade. Raises SigningRefused with the reasons."""
    trade = Trade.objects.select_related("buyer", "seller", "asset").get(chain_tx_id=chain_tx.pk)
    if trade.status == TS.REVERSED:
        raise SigningRefused("the trade was reversed; its units are no longer owed")
    reasons = []
    checks = (
        (
            "buyer",
            settlement_check(investor=trade.buyer, asset=trade.asset, quantity=trade.quantity, direction=RECEIVE),
        ),
        ("seller", settlement_check(investor=trade.seller, asset=trade.asset, quantity=trade.quantity, direction=SEND)),
    )
    for who, check in checks:
        if not check.allowed:
            reasons.append(f"{who}: {check.reason}")
    if reasons:
        raise SigningRefused("compliance check before settlement failed: " + " ".join(reasons))


def trade_settlement_confirmed(chain_tx: ChainTransaction) -> None:
    """Outbox callback, in the transaction that marks the delivery confirmed: the units
    moved on chain, so the books follow (seller's settled and settling-out units down,
    buyer's settled up and pending down) and the seller's proceeds become available.
    Claimed by a conditional update: a second delivery of the callback does nothing."""
    trade = Trade.objects.select_related("buyer", "seller", "asset").get(chain_tx_id=chain_tx.pk)
    holdings = holdings_lock(pairs=[(trade.buyer_id, trade.asset_id), (trade.seller_id, trade.asset_id)])
    seller_available, seller_held = ledger_accounts_lock(
        specs=[(A.INVESTOR_AVAILABLE, trade.seller, trade.currency), (A.INVESTOR_HELD, trade.seller, trade.currency)]
    )
    now = timezone.now()
    claimed = Trade.objects.filter(pk=trade.pk, status__in=Trade.UNSETTLED).update(
        status=TS.CONFIRMED, settled_at=now, failure_reason=""
    )
    buyer_holding, seller_holding = (
        holdings[(trade.buyer_id, trade.asset_id)],
        holdings[(trade.seller_id, trade.asset_id)],
    )
    if not claimed:
        trade.refresh_from_db()
        if trade.status == TS.REVERSED:
            # Cannot happen through the guard; should it anyway, the books follow the chain.
            Holding.objects.filter(pk=seller_holding.pk).update(quantity=F("quantity") - trade.quantity, updated_at=now)
            Holding.objects.filter(pk=buyer_holding.pk).update(quantity=F("quantity") + trade.quantity, updated_at=now)
            logger.error("trade %s delivered on chain after it was reversed", trade.public_id)
            audit_record(
                actor=None,
                action="trade.delivered_after_reversal",
                target=trade,
                after={"quantity": trade.quantity, "txid": chain_tx.txid},
                reason="Delivery confirmed after reversal: recover the cash or the units.",
            )
        return
    net = trade.seller_net_minor
    if net:
        ledger_post(
            kind=JournalEntry.Kind.TRADE_SETTLE,
            legs=[Leg(seller_held, -net), Leg(seller_available, net)],
            memo=f"Delivered in round {chain_tx.confirmed_round}, txid {chain_tx.txid}",
            trade=trade,
        )
    Holding.objects.filter(pk=seller_holding.pk).update(
        quantity=F("quantity") - trade.quantity,
        pending_out_quantity=F("pending_out_quantity") - trade.quantity,
        updated_at=now,
    )
    Holding.objects.filter(pk=buyer_holding.pk).update(
        quantity=F("quantity") + trade.quantity,
        pending_quantity=F("pending_quantity") - trade.quantity,
        first_acquired_at=Coalesce(F("first_acquired_at"), now),
        updated_at=now,
    )
    webhook_events.trade_settled(trade)


def trade_settlement_failed(chain_tx: ChainTransaction) -> None:
    """Outbox callback: the delivery was refused for good. Nothing moves: the buyer's
    cash stays with the trade (the seller's proceeds held, the fees booked), the units
    stay settling; both sides are told, and staff retry it or reverse it exactly."""
    reason = chain_tx.last_error or "settlement rejected"
    updated = Trade.objects.filter(chain_tx_id=chain_tx.pk, status=TS.MATCHED).update(
        status=TS.FAILED, failure_reason=reason[:2000]
    )
    if not updated:
        return
    trade = Trade.objects.select_related("buyer", "seller", "asset").get(chain_tx_id=chain_tx.pk)
    logger.error("trade %s settlement failed: %s", trade.public_id, reason)
    audit_record(
        actor=None,
        action="trade.settlement_failed",
        target=trade,
        before={"status": TS.MATCHED},
        after={"status": TS.FAILED},
        reason=reason,
    )
    for user, role in ((trade.buyer, "bought"), (trade.seller, "sold")):
        notify(
            user=user,
            subject="Your trade could not be settled yet",
            body=f"The delivery of the {trade.quantity:,} fractions of {trade.asset.name} you {role} at "
            f"{format_money(trade.price_minor, trade.currency)} did not go through. The cash and the units stay "
            f"reserved for this trade and nothing is lost: our team will send it again or reverse it, and you "
            f"will hear from us either way.",
            path=_portfolio_path(),
        )


def _settlement_lock(trade: Trade) -> ChainTransaction:
    if trade.chain_tx_id is None:
        raise ChainTransaction.DoesNotExist("the trade has no settlement transaction")
    return chain_transaction_lock(pk=trade.chain_tx_id)


@transaction.atomic(durable=True)
def trade_settlement_retry(*, trade: Trade, actor) -> Trade:
    """Staff (marketplace.retry_trade): send a failed delivery again (a new generation of
    the same outbox row; the cash and units stay as they are). Audited.
    Raises PermissionDenied or ValidationError (`not_failed`)."""
    _require_staff(actor, "marketplace.retry_trade", not_users=[trade.buyer, trade.seller])
    chain_tx = _settlement_lock(trade)
    trade = trade_lock(pk=trade.pk)
    if trade.status != TS.FAILED or chain_tx.status != ChainTransaction.Status.FAILED:
        raise ValidationError("Only a trade whose settlement failed can be retried.", code="not_failed")
    outbox_retry(chain_tx=chain_tx, actor=actor)
    previous = trade.failure_reason
    trade.status, trade.failure_reason = TS.MATCHED, ""
    trade.save(update_fields=["status", "failure_reason"])
    audit_record(
        actor=actor,
        action="trade.settlement_retried",
        target=trade,
        before={"status": TS.FAILED},
        after={"status": TS.MATCHED},
        reason=previous,
    )
    return trade


@transaction.atomic(durable=True)
def trade_reverse(*, trade: Trade, actor, reason: str) -> Trade:
    """Staff (marketplace.reverse_trade): give up on a failed delivery and undo the trade
    exactly: the buyer gets back all they paid (price × quantity + fee: the seller's held
    proceeds and the fees return), the seller's units are free again, the buyer's
    pending units go. Audited and mailed to both. The orders' fills stay as history.
    Raises PermissionDenied or ValidationError (`reason_required`, `not_failed`)."""
    _require_staff(actor, "marketplace.reverse_trade", not_users=[trade.buyer, trade.seller])
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the trade is reversed instead of retried."}, code="reason_required")
    chain_tx = _settlement_lock(trade)
    if chain_tx.status != ChainTransaction.Status.FAILED:
        raise ValidationError("Only a trade whose settlement failed can be reversed.", code="not_failed")
    holdings = holdings_lock(pairs=[(trade.buyer_id, trade.asset_id), (trade.seller_id, trade.asset_id)])
    buyer_available, seller_held, fees = ledger_accounts_lock(
        specs=[
            (A.INVESTOR_AVAILABLE, trade.buyer, trade.currency),
            (A.INVESTOR_HELD, trade.seller, trade.currency),
            (A.PLATFORM_FEES, None, trade.currency),
        ]
    )
    trade = trade_lock(pk=trade.pk)
    if trade.status != TS.FAILED:
        raise ValidationError("Only a trade whose settlement failed can be reversed.", code="not_failed")
    now = timezone.now()
    legs = [
        Leg(seller_held, -trade.seller_net_minor),
        Leg(fees, -(trade.buyer_fee_minor + trade.seller_fee_minor)),
        Leg(buyer_available, trade.buyer_cost_minor),
    ]
    ledger_post(
        kind=JournalEntry.Kind.TRADE_REVERSE,
        legs=[leg for leg in legs if leg.amount_minor],
        memo=f"Reversal: {reason}",
        created_by=actor,
        trade=trade,
    )
    Holding.objects.filter(pk=holdings[(trade.seller_id, trade.asset_id)].pk).update(
        pending_out_quantity=F("pending_out_quantity") - trade.quantity, updated_at=now
    )
    Holding.objects.filter(pk=holdings[(trade.buyer_id, trade.asset_id)].pk).update(
        pending_quantity=F("pending_quantity") - trade.quantity, updated_at=now
    )
    trade.status, trade.reversed_at = TS.REVERSED, now
    trade.save(update_fields=["status", "reversed_at"])
    audit_record(
        actor=actor,
        action="trade.reversed",
        target=trade,
        before={"status": TS.FAILED},
        after={
            "status": TS.REVERSED,
            "refund_minor": trade.buyer_cost_minor,
            "currency": trade.currency,
            "released_units": trade.quantity,
        },
        reason=reason,
    )
    notify(
        user=trade.buyer,
        subject=f"Trade reversed: {format_money(trade.buyer_cost_minor, trade.currency)} refunded",
        body=f"We reversed your purchase of {trade.quantity:,} fractions of {trade.asset.name}: "
        f"{format_money(trade.buyer_cost_minor, trade.currency)} is available in your account again.\n\n{reason}",
        path=_portfolio_path(),
    )
    notify(
        user=trade.seller,
        subject=f"Trade reversed: your {trade.quantity:,} {trade.asset.unit_name} are yours again",
        body=f"We reversed your sale of {trade.quantity:,} fractions of {trade.asset.name}: the units are "
        f"available to sell again and the sale's proceeds were returned to the buyer.\n\n{reason}",
        path=_portfolio_path(),
    )
    return trade


# -- mails ------------------------------------------------------------------------------------


def _notify_filled(order: TradeOrder) -> None:
    verb = "bought" if order.side == Side.BUY else "sold"
    notify(
        user=order.investor,
        subject=f"Order filled: {verb} {order.filled_quantity:,} {order.asset.unit_name}",
        body=f"Your {order.get_side_display().lower()} order for {order.filled_quantity:,} fractions of "
        f"{order.asset.name} (limit {format_money(order.limit_price_minor, order.currency)}) is filled. "
        f"Delivery on Algorand follows; your portfolio shows its progress.",
        path=_portfolio_path(),
    )


def _notify_closed(order: TradeOrder, *, why: str) -> None:
    state = order.get_status_display().lower()
    filled = f" {order.filled_quantity:,} were filled before." if order.filled_quantity else ""
    notify(
        user=order.investor,
        subject=f"Order {state}: {order.get_side_display().lower()} {order.asset.unit_name}",
        body=f"Your {order.get_side_display().lower()} order for {order.quantity:,} fractions of {order.asset.name} "
        f"(limit {format_money(order.limit_price_minor, order.currency)}) is {state} because {why}.{filled} "
        f"The unfilled {order.remaining_quantity:,} no longer hold any of your cash or units.",
        path=_portfolio_path(),
    )
