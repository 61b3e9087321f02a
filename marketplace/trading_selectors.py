"""Reads of the secondary market (docs/trading.md): the book, prices, an investor's orders
and trades, the quote a form shows before the button, and the checks every order entry
shares with `marketplace.trading` (input, trading mode, price checks), so each rule is
written once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone
from django.utils.module_loading import import_string

from assets.models import Asset
from compliance.eligibility import RECEIVE, SEND, EligibilityResult, RuleFailure
from config.money import MAX_MINOR, format_money

from .ledger import trade_fee, trade_fee_ceiling
from .market_hours import next_session_open, session_is_open, zone
from .models import Holding, LedgerAccount, Market, MarketWideControl, Offering, Trade, TradeOrder, Valuation
from .selectors import eligibility_check

Side = TradeOrder.Side
TIF = TradeOrder.TimeInForce
OS = TradeOrder.Status

# A good-till-date order may live this long at most.
MAX_ORDER_LIFETIME = timedelta(days=365)


# -- the checks of an order entry ------------------------------------------------------


@dataclass(frozen=True)
class FieldFailure(RuleFailure):
    """A RuleFailure about one input of the order form (`field`: side, quantity,
    limit_price_minor, time_in_force, expires_at)."""

    field: str = ""


def _whole(value, *, field_name: str, label: str, maximum: int, too_large: str) -> FieldFailure | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return FieldFailure("not_integer", f"The {label} must be a whole number.", field_name)
    if value <= 0:
        return FieldFailure("not_positive", f"The {label} must be at least 1.", field_name)
    if value > maximum:
        return FieldFailure("too_large", too_large, field_name)
    return None


def order_input_failures(
    *, asset, side, quantity, limit_price_minor, time_in_force, expires_at, now: datetime | None = None
) -> list[FieldFailure]:
    """What is wrong with the typed order itself (no database read): side, quantity
    (whole, ≥ 1, ≤ the asset's supply), limit price (whole minor units, ≥ 1), the total,
    time in force, and the expiry (required for good-till-date only, in the future, at
    most a year ahead). Empty when the order is well formed."""
    now = now or timezone.now()
    failures: list[FieldFailure] = []
    if side not in Side.values:
        failures.append(FieldFailure("invalid_side", "Choose buy or sell.", "side"))
    total = asset.total_fractions
    quantity_failure = _whole(
        quantity,
        field_name="quantity",
        label="quantity",
        maximum=total,
        too_large=f"The asset has only {total:,} fractions.",
    )
    if quantity_failure:
        failures.append(quantity_failure)
    price_failure = _whole(
        limit_price_minor,
        field_name="limit_price_minor",
        label="limit price",
        maximum=MAX_MINOR,
        too_large="The limit price is too large.",
    )
    if price_failure:
        failures.append(price_failure)
    if not quantity_failure and not price_failure:
        gross = quantity * limit_price_minor
        if gross + trade_fee_ceiling(gross_minor=gross, fee_bps=10_000) > MAX_MINOR:
            failures.append(FieldFailure("too_large", "The order's total is too large.", "limit_price_minor"))
    if time_in_force not in TIF.values:
        failures.append(
            FieldFailure(
                "invalid_time_in_force",
                "Choose how long the order lives: good till cancelled, good till date, immediate or cancel, or fill or kill.",
                "time_in_force",
            )
        )
    elif time_in_force == TIF.GTD:
        if expires_at is None:
            failures.append(FieldFailure("expiry_required", "Give the date and time the order expires.", "expires_at"))
        elif not isinstance(expires_at, datetime) or timezone.is_naive(expires_at):
            failures.append(FieldFailure("invalid_expiry", "The expiry must be a date and time.", "expires_at"))
        elif expires_at <= now:
            failures.append(FieldFailure("expiry_in_past", "The expiry must be in the future.", "expires_at"))
        elif expires_at > now + MAX_ORDER_LIFETIME:
            failures.append(FieldFailure("expiry_too_far", "An order can live at most one year.", "expires_at"))
    elif expires_at is not None:
        failures.append(
            FieldFailure("expiry_not_allowed", "Only a good-till-date order has an expiry date.", "expires_at")
        )
    return failures


def market_wide_control() -> MarketWideControl:
    """The whole market's halt row (created on first read)."""
    control, _ = MarketWideControl.objects.get_or_create(pk=1)
    return control


def market_refusal(*, market: Market, control: MarketWideControl | None = None) -> RuleFailure | None:
    """Whether the book takes new orders now: not while the asset or the whole market
    is halted (cancels still work). In auction mode, outside trading hours and while a
    reopening auction is called, orders are taken and rest without matching
    (`matching_paused`)."""
    control = control if control is not None else market_wide_control()
    if control.halted:
        why = f" Reason: {control.reason}" if control.reason else ""
        return RuleFailure(
            "market_wide_halt", f"Trading is halted on the whole market; you can still cancel your orders.{why}"
        )
    if market.halted:
        why = f" Reason: {market.halt_reason}" if market.halt_reason else ""
        return RuleFailure("market_halted", f"Trading in this asset is halted; you can still cancel your orders.{why}")
    return None


@dataclass(frozen=True)
class Reference:
    """The reference price of a book and where it comes from: the last trade when the
    book traded within MARKETPLACE_REFERENCE_TRADE_DAYS, else the latest published
    valuation per fraction, else none (no band applies)."""

    price_minor: int | None
    source: str  # "last_trade", "valuation" or ""
    at: datetime | None = None


def reference_price(*, market: Market, now: datetime | None = None) -> Reference:
    now = now or timezone.now()
    recent = now - timedelta(days=settings.MARKETPLACE_REFERENCE_TRADE_DAYS)
    if market.last_price_minor and market.last_trade_at and market.last_trade_at >= recent:
        return Reference(market.last_price_minor, "last_trade", market.last_trade_at)
    valuation = (
        Valuation.objects.filter(asset_id=market.asset_id, status=Valuation.Status.PUBLISHED, currency=market.currency)
        .order_by("-as_of", "-pk")
        .only("value_per_fraction_minor", "as_of")
        .first()
    )
    if valuation is not None:
        at = timezone.make_aware(datetime.combine(valuation.as_of, datetime.min.time()))
        return Reference(valuation.value_per_fraction_minor, "valuation", at)
    return Reference(None, "")


@dataclass(frozen=True)
class Band:
    low_minor: int
    high_minor: int
    pct: int
    reference: Reference

    def holds(self, price_minor: int) -> bool:
        return self.low_minor <= price_minor <= self.high_minor


def price_band(*, market: Market, reference: Reference | None = None, now: datetime | None = None) -> Band | None:
    """The band in force: reference ± band % (the market's, else
    MARKETPLACE_PRICE_BAND_PCT), in whole minor units, rounded inwards (the low edge
    up, the high edge down, never below 1). None without a reference price."""
    reference = reference or reference_price(market=market, now=now)
    if reference.price_minor is None:
        return None
    pct = market.band_pct or settings.MARKETPLACE_PRICE_BAND_PCT
    ref = reference.price_minor
    low = max(1, -((-ref * (100 - pct)) // 100)) if pct < 100 else 1
    high = (ref * (100 + pct)) // 100
    return Band(low, high, pct, reference)


def reference_source_text(reference: Reference) -> str:
    """Where the reference price comes from, in words ("the last trade", "the valuation as of 3 Mar 2025")."""
    if reference.source == "last_trade":
        return "the last trade"
    if reference.source == "valuation" and reference.at is not None:
        return f"the valuation as of {reference.at.day} {reference.at:%b %Y}"
    return "none"


def band_failure(*, band: Band | None, limit_price_minor: int, currency: str) -> RuleFailure | None:
    """`outside_band` when the limit price lies outside the band in force (none without a
    reference price), naming the band, its width and its reference."""
    if band is None or band.holds(limit_price_minor):
        return None

    def bare(minor: int) -> str:
        return format_money(minor, currency).removesuffix(f" {currency}")

    return RuleFailure(
        "outside_band",
        f"Your limit of {format_money(limit_price_minor, currency)} is outside this asset's price band, "
        f"{bare(band.low_minor)}–{bare(band.high_minor)} {currency} (±{band.pct} % around the reference price of "
        f"{format_money(band.reference.price_minor, currency)}, {reference_source_text(band.reference)}).",
    )


AUCTION_REASON_TEXT = {
    "scheduled": "a scheduled auction",
    "reopening": "the reopening auction after a halt",
    "session_open": "the auction that opens the trading session",
    "band": "a trade would have printed outside the price band",
}


def local_time_text(market: Market, at: datetime) -> str:
    """A moment in the book's own time zone, e.g. "14 Mar 2025 15:00 Europe/Zurich"."""
    try:
        tz_name, tz = market.time_zone, zone(market.time_zone)
    except DjangoValidationError:
        tz_name, tz = "UTC", zone("UTC")
    local = at.astimezone(tz)
    return f"{local.day} {local:%b %Y %H:%M} {tz_name}"


def matching_paused(market: Market, now: datetime | None = None) -> str | None:
    """A sentence when orders on this book rest without matching (None: continuous
    matching): auction mode, an auction called (reopening, session open, band breach),
    or outside the book's trading hours. Halts are `market_refusal`'s. No database read."""
    now = now or timezone.now()
    if market.trading_mode == Market.TradingMode.AUCTION:
        when = (
            f" The next auction is at {local_time_text(market, market.next_auction_at)}."
            if market.next_auction_at
            else " No auction is scheduled yet."
        )
        return (
            "This asset trades in periodic call auctions: orders collect without matching and the book "
            f"uncrosses at one price for everyone.{when}"
        )
    if market.next_auction_at is not None:
        why = AUCTION_REASON_TEXT.get(market.auction_reason, market.auction_reason or "an auction")
        return (
            f"An auction is called ({why}): orders rest without matching until the book uncrosses at "
            f"{local_time_text(market, market.next_auction_at)}."
        )
    try:
        open_now = session_is_open(market, now)
    except DjangoValidationError:
        open_now = True  # a malformed schedule never stops the market (the controls service refuses one)
    if not open_now:
        opens = next_session_open(market, now)
        when = f" on {local_time_text(market, opens)}" if opens else ""
        return f"Outside trading hours: orders rest without matching until the session opens{when} with an auction."
    return None


NO_CONTINUOUS_MATCHING = "no_continuous_matching"


def market_entry_failures(
    *, market: Market, side: str, time_in_force: str, limit_price_minor: int, band: Band | None, paused: str | None
) -> list[RuleFailure]:
    """The market's checks of a well-formed order after `market_refusal` (halts): while
    matching is paused only orders that can rest are taken (`no_continuous_matching` for
    ioc and fok); a limit outside the band in force is refused (`outside_band`); then the
    extra checks of MARKETPLACE_PRICE_CHECKS. The engine and the quote share it."""
    failures: list[RuleFailure] = []
    if paused and time_in_force in (TIF.IOC, TIF.FOK):
        failures.append(
            RuleFailure(
                NO_CONTINUOUS_MATCHING,
                f"{paused} Immediate-or-cancel and fill-or-kill orders need continuous matching; "
                "place a good-till-cancelled or good-till-date order to take part.",
            )
        )
    outside = band_failure(band=band, limit_price_minor=limit_price_minor, currency=market.currency)
    if outside is not None:
        failures.append(outside)
    failures.extend(price_check_failures(market=market, side=side, limit_price_minor=limit_price_minor))
    return failures


def price_check_failures(*, market: Market, side: str, limit_price_minor: int) -> list[RuleFailure]:
    """The price checks of settings.MARKETPLACE_PRICE_CHECKS (dotted paths of callables
    (market, side, limit_price_minor) -> RuleFailure | None), in order. None by default;
    price bands plug in here."""
    failures = []
    for path in settings.MARKETPLACE_PRICE_CHECKS:
        outcome = import_string(path)(market, side, limit_price_minor)
        if outcome is not None:
            failures.append(outcome)
    return failures


def buy_reservation(*, limit_price_minor: int, quantity: int, fee_bps: int) -> int:
    """Cash a buy order holds for `quantity` open units: limit × quantity + the maximum
    fee on it (rounded up). The one formula: placement, every fill and market_check."""
    gross = limit_price_minor * quantity
    return gross + trade_fee_ceiling(gross_minor=gross, fee_bps=fee_bps)


# -- markets and the book ----------------------------------------------------------------


def asset_not_tradable(*, asset) -> RuleFailure | None:
    """Only a live asset on chain with a primary offering has a market."""
    if asset.status != Asset.Status.LIVE or asset.asa_id is None or not Offering.objects.filter(asset=asset).exists():
        return RuleFailure("market_unavailable", "This asset is not traded.")
    return None


def market_for_asset(*, asset) -> Market | None:
    """The asset's market, or None before it was opened (`trading.market_open`)."""
    return Market.objects.filter(asset=asset).select_related("asset").first()


@dataclass(frozen=True)
class PriceLevel:
    price_minor: int
    quantity: int
    orders: int


@dataclass(frozen=True)
class OrderBook:
    market: Market
    bids: list[PriceLevel]  # best (highest) first
    asks: list[PriceLevel]  # best (lowest) first

    @property
    def best_bid(self) -> int | None:
        return self.bids[0].price_minor if self.bids else None

    @property
    def best_ask(self) -> int | None:
        return self.asks[0].price_minor if self.asks else None

    @property
    def spread_minor(self) -> int | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return self.best_ask - self.best_bid


def order_book(*, market: Market, depth: int = 10) -> OrderBook:
    """The open orders aggregated by price level, `depth` levels a side (two queries)."""

    def levels(side: str, ordering: str) -> list[PriceLevel]:
        rows = (
            TradeOrder.objects.filter(market=market, side=side, status=OS.OPEN)
            .values("limit_price_minor")
            .annotate(quantity=Sum("remaining_quantity"), orders=Count("pk"))
            .order_by(ordering)[:depth]
        )
        return [PriceLevel(r["limit_price_minor"], r["quantity"], r["orders"]) for r in rows]

    return OrderBook(market, levels(Side.BUY, "-limit_price_minor"), levels(Side.SELL, "limit_price_minor"))


def last_price(*, market: Market) -> int | None:
    """The price of the market's latest trade (None before the first)."""
    return market.last_price_minor


def market_trades(*, market: Market, limit: int = 50) -> list[Trade]:
    return list(Trade.objects.filter(market=market).select_related("chain_tx").order_by("-created_at", "-pk")[:limit])


# -- an investor's orders and trades -------------------------------------------------------


def trade_orders_for(*, user, market: Market | None = None) -> QuerySet[TradeOrder]:
    qs = TradeOrder.objects.filter(investor=user).select_related("asset", "market")
    if market is not None:
        qs = qs.filter(market=market)
    return qs.order_by("-created_at", "-pk")


def trades_for(*, user) -> QuerySet[Trade]:
    """Trades where the user bought or sold, newest first (with the settlement row)."""
    return (
        Trade.objects.filter(Q(buyer=user) | Q(seller=user))
        .select_related("asset", "chain_tx")
        .order_by("-created_at", "-pk")
    )


def trade_order_get_for_user(*, public_id, user) -> TradeOrder:
    """The user's own trade order (staff with marketplace.view_tradeorder see any); 404
    for anybody else."""
    try:
        order = TradeOrder.objects.select_related("asset", "market").get(public_id=public_id)
    except (TradeOrder.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
    if order.investor_id != user.pk and not (user.is_staff and user.has_perm("marketplace.view_tradeorder")):
        raise Http404
    return order


def trade_get_for_user(*, public_id, user) -> Trade:
    """A trade the user bought or sold in (staff with marketplace.view_trade see any); 404
    for anybody else."""
    try:
        trade = Trade.objects.select_related("asset", "market", "chain_tx").get(public_id=public_id)
    except (Trade.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
    if user.pk not in (trade.buyer_id, trade.seller_id) and not (
        user.is_staff and user.has_perm("marketplace.view_trade")
    ):
        raise Http404
    return trade


# -- the quote ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TradeQuote:
    """What an order would mean, before the button: at the limit price (fills at better
    resting prices cost less). A buy holds `reserve_minor` (gross + the maximum fee); a
    sell locks `units_locked` and receives at least `total_minor` (gross − the maximum
    fee). `failures` lists every reason it would be refused now (input, market, price
    checks, the eligibility engine, cash or units), `eligibility` the engine's answer."""

    side: str
    quantity: int
    limit_price_minor: int
    currency: str
    maker_fee_bps: int
    taker_fee_bps: int
    gross_minor: int
    max_fee_minor: int
    total_minor: int
    reserve_minor: int
    units_locked: int
    available_cash_minor: int
    available_units: int
    eligibility: EligibilityResult | None
    failures: list[RuleFailure] = field(default_factory=list)
    # Why an order placed now would rest without matching (auction, hours), or None.
    paused: str | None = None

    @property
    def allowed(self) -> bool:
        return not self.failures

    def total_text(self) -> str:
        return format_money(self.total_minor, self.currency)


def trade_quote(
    *,
    investor,
    asset,
    side,
    quantity,
    limit_price_minor,
    time_in_force=TIF.GTC,
    expires_at=None,
    market: Market | None = None,
) -> TradeQuote:
    """The live quote of the order form: the same checks and arithmetic as
    trade_order_place, read without locks (so placement may still refuse when the
    books move in between)."""
    market = market or market_for_asset(asset=asset)
    maker = market.maker_fee_bps if market else settings.MARKETPLACE_MAKER_FEE_BPS
    taker = market.taker_fee_bps if market else settings.MARKETPLACE_TAKER_FEE_BPS
    max_bps = max(maker, taker)
    currency = market.currency if market else getattr(getattr(asset, "offering", None), "currency", asset.currency)
    failures: list[RuleFailure] = list(
        order_input_failures(
            asset=asset,
            side=side,
            quantity=quantity,
            limit_price_minor=limit_price_minor,
            time_in_force=time_in_force,
            expires_at=expires_at,
        )
    )
    holding = Holding.objects.filter(investor=investor, asset=asset).first()
    available_units = holding.available_to_sell if holding else 0
    cash = LedgerAccount.objects.filter(
        user=investor, kind=LedgerAccount.Kind.INVESTOR_AVAILABLE, currency=currency
    ).first()
    available_cash = cash.balance if cash else 0
    well_formed = not failures
    q = quantity if well_formed else 0
    price = limit_price_minor if well_formed else 0
    gross = q * price
    eligibility = None
    paused: str | None = None
    reserve = units = 0
    if side == Side.BUY:
        max_fee = trade_fee_ceiling(gross_minor=gross, fee_bps=max_bps)
        total = reserve = gross + max_fee
    else:
        max_fee = trade_fee(gross_minor=gross, fee_bps=max_bps)
        total = gross - max_fee
        units = q
    if market is None:  # opened by the first order, if the asset trades at all
        failures.extend(filter(None, [asset_not_tradable(asset=asset)]))
    else:
        refusal = market_refusal(market=market)
        if refusal:
            failures.append(refusal)
        else:
            paused = matching_paused(market)
            if well_formed:
                failures.extend(
                    market_entry_failures(
                        market=market,
                        side=side,
                        time_in_force=time_in_force,
                        limit_price_minor=price,
                        band=price_band(market=market),
                        paused=paused,
                    )
                )
    if well_formed:
        if side == Side.BUY:
            eligibility = eligibility_check(
                investor=investor, asset=asset, quantity=q, direction=RECEIVE, holding=holding
            )
        else:
            eligibility = eligibility_check(
                investor=investor, asset=asset, quantity=q, direction=SEND, holding=sell_view(holding, available_units)
            )
        if side == Side.SELL:
            failures.extend(sell_failures(eligibility.failures, available=available_units, wanted=q))
        else:
            failures.extend(eligibility.failures)
        if side == Side.BUY and reserve > available_cash:
            failures.append(insufficient_cash(reserve, available_cash, currency))
    return TradeQuote(
        side=side,
        quantity=q,
        limit_price_minor=price,
        currency=currency,
        maker_fee_bps=maker,
        taker_fee_bps=taker,
        gross_minor=gross,
        max_fee_minor=max_fee,
        total_minor=total,
        reserve_minor=reserve,
        units_locked=units,
        available_cash_minor=available_cash,
        available_units=available_units,
        eligibility=eligibility,
        failures=failures,
        paused=paused,
    )


@dataclass(frozen=True)
class SellView:
    """What the eligibility engine is shown of a seller's holding: only the units this
    sale may draw on (available to sell, or the units an order locked), so its holding
    rules (enough units, the minimum kept) judge them; lock-up from the holding's start."""

    quantity: int
    first_acquired_at: datetime | None
    pending_quantity: int = 0


def sell_view(holding: Holding | None, units: int) -> SellView:
    return SellView(units, holding.first_acquired_at if holding else None)


def insufficient_units(available: int, wanted: int) -> RuleFailure:
    return RuleFailure(
        "insufficient_units",
        f"You can sell {available:,} units (settled, not locked in other orders or settling); you asked for {wanted:,}.",
    )


def sell_failures(eligibility_failures: list[RuleFailure], *, available: int, wanted: int) -> list[RuleFailure]:
    """A sell order's refusals: too few units to sell (in our words: settled, not locked
    and not settling, instead of the engine's plain holding count) and every other
    reason the engine gives, so an investor who lacks units and may not send either
    learns both at once."""
    if wanted <= available:
        return eligibility_failures
    return [insufficient_units(available, wanted)] + [
        f for f in eligibility_failures if f.code != "insufficient_holding"
    ]


def insufficient_cash(total: int, available: int, currency: str) -> RuleFailure:
    return RuleFailure(
        "insufficient_cash",
        f"Not enough cash: the order holds {format_money(total, currency)} (price × quantity + the maximum fee) "
        f"and you have {format_money(available, currency)} available.",
    )
