"""Market data of the secondary market (docs/market-integrity.md, "Valuations and market
data"): per asset the last price, the change against the previous day's close, the
24-hour volume, the best bid and ask and the spread (from the book), daily candles, the
valuation history; the same figures for many assets at once (catalogue cards, the
portfolio) in a constant number of queries.

Money stays integer minor units; the change in basis points is integer arithmetic
(truncated toward zero) and is formatted only for display. Days are UTC calendar days
(settings.TIME_ZONE). A reversed trade never happened for market data: it is left out of
candles, closes and volume. The last price is the book's (`Market.last_price_minor`, the
same figure the price band and the portfolio use)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from datetime import UTC, timedelta

from django.contrib.postgres.aggregates import ArrayAgg
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import BigIntegerField, Func, Max, Min, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from .models import Market, Offering, Trade, Valuation
from .trading_selectors import OrderBook, order_book

REVERSED = Trade.Status.REVERSED

# The chart's ranges: query parameter value -> (label, days back; None: everything).
RANGES: dict[str, tuple[str, int | None]] = {
    "1w": ("1 week", 7),
    "1m": ("1 month", 30),
    "1y": ("1 year", 365),
    "all": ("All", None),
}
DEFAULT_RANGE = "1m"


def parse_range(raw: str | None) -> str:
    """The range of a request (`?range=`), the default when absent; anything else is a
    ValidationError with a message (the views answer 400)."""
    if raw is None or raw == "":
        return DEFAULT_RANGE
    if raw not in RANGES:
        shown = raw[:20].encode("unicode_escape").decode("ascii")
        raise ValidationError(
            f"Unknown range “{shown}”: use one of {', '.join(RANGES)}.",
            code="invalid_range",
        )
    return raw


def bps_change(change_minor: int, base_minor: int) -> int:
    """change / base in basis points, integer arithmetic truncated toward zero."""
    magnitude = (abs(change_minor) * 10_000) // base_minor
    return -magnitude if change_minor < 0 else magnitude


def format_bps_as_percent(bps: int) -> str:
    """1234 -> '+12.34 %', -5 -> '−0.05 %' (integers only)."""
    sign = "+" if bps > 0 else "−" if bps < 0 else ""
    whole, hundredths = divmod(abs(bps), 100)
    return f"{sign}{whole}.{hundredths:02d} %"


@dataclass(frozen=True)
class MarketStats:
    """One asset's figures. `previous_close_minor`: the price of the last trade before
    today (UTC). `volume_24h` / `gross_24h_minor`: units and price × units traded in the
    24 hours before `at`."""

    asset_id: int
    currency: str
    last_price_minor: int | None = None
    last_trade_at: datetime.datetime | None = None
    previous_close_minor: int | None = None
    volume_24h: int = 0
    gross_24h_minor: int = 0
    book: OrderBook | None = field(default=None, compare=False)

    @property
    def change_minor(self) -> int | None:
        if self.last_price_minor is None or self.previous_close_minor is None:
            return None
        return self.last_price_minor - self.previous_close_minor

    @property
    def change_bps(self) -> int | None:
        change = self.change_minor
        if change is None or not self.previous_close_minor:
            return None
        return bps_change(change, self.previous_close_minor)

    @property
    def change_pct_text(self) -> str:
        bps = self.change_bps
        return "" if bps is None else format_bps_as_percent(bps)

    @property
    def direction(self) -> str:
        """'up', 'down' or 'flat' (for the CSS class), '' without a change."""
        change = self.change_minor
        if change is None:
            return ""
        return "up" if change > 0 else "down" if change < 0 else "flat"

    @property
    def best_bid_minor(self) -> int | None:
        return self.book.best_bid if self.book else None

    @property
    def best_ask_minor(self) -> int | None:
        return self.book.best_ask if self.book else None

    @property
    def spread_minor(self) -> int | None:
        return self.book.spread_minor if self.book else None

    @property
    def spread_bps(self) -> int | None:
        """The spread against the mid price, in basis points (integer)."""
        bid, ask = self.best_bid_minor, self.best_ask_minor
        if bid is None or ask is None or bid + ask <= 0:
            return None
        return bps_change((ask - bid) * 2, bid + ask)


def _day_start(at: datetime.datetime) -> datetime.datetime:
    return at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def market_stats_many(*, asset_ids, at: datetime.datetime | None = None) -> dict[int, MarketStats]:
    """{asset id: MarketStats} for these assets (without the book), in at most three
    queries whatever their number: the markets, the previous closes (DISTINCT ON), the
    24-hour volumes. An asset without a book gets empty figures."""
    at = at or timezone.now()
    ids = list(dict.fromkeys(asset_ids))
    if not ids:
        return {}
    markets = Market.objects.filter(asset_id__in=ids).values_list(
        "pk", "asset_id", "currency", "last_price_minor", "last_trade_at"
    )
    by_market = {pk: (asset_id, currency, price, when) for pk, asset_id, currency, price, when in markets}
    stats = {asset_id: MarketStats(asset_id, "") for asset_id in ids}
    stats.update(_figures(by_market, at))
    return stats


def _figures(by_market: dict, at: datetime.datetime) -> dict[int, MarketStats]:
    """The previous closes and 24-hour volumes of these books (two queries)."""
    closes: dict[int, int] = {}
    volumes: dict[int, tuple[int, int]] = {}
    if by_market:
        traded = Trade.objects.filter(market_id__in=list(by_market)).exclude(status=REVERSED)
        before = traded.filter(created_at__lt=_day_start(at)).order_by("market_id", "-created_at", "-pk")
        if connection.features.can_distinct_on_fields:
            closes = dict(before.distinct("market_id").values_list("market_id", "price_minor"))
        else:  # SQLite (`make run`): the first row per book, read in Python
            for market_id, price in before.values_list("market_id", "price_minor"):
                closes.setdefault(market_id, price)
        volumes = {
            market_id: (units or 0, gross or 0)
            for market_id, units, gross in traded.filter(created_at__gt=at - timedelta(hours=24), created_at__lte=at)
            .values("market_id")
            .annotate(units=Sum("quantity"), gross=Sum("gross_minor"))
            .values_list("market_id", "units", "gross")
        }
    stats = {}
    for market_id, (asset_id, currency, price, when) in by_market.items():
        units, gross = volumes.get(market_id, (0, 0))
        stats[asset_id] = MarketStats(asset_id, currency, price, when, closes.get(market_id), units, gross)
    return stats


def market_stats(*, asset, market: Market | None = None, depth: int = 10, at=None) -> MarketStats:
    """One asset's figures with its book (best bid and ask, spread): at most five queries."""
    stats = market_stats_many(asset_ids=[asset.pk], at=at)[asset.pk]
    if market is None:
        market = Market.objects.filter(asset_id=asset.pk).first()
    if market is None:
        return stats
    book = order_book(market=market, depth=depth)
    return MarketStats(
        stats.asset_id,
        stats.currency,
        stats.last_price_minor,
        stats.last_trade_at,
        stats.previous_close_minor,
        stats.volume_24h,
        stats.gross_24h_minor,
        book,
    )


def stats_from_book(*, market: Market, book: OrderBook | None, at=None) -> MarketStats:
    """The figures of a book already read (the trade page reads the book for its depth
    table): two more queries, the previous close and the 24-hour volume."""
    at = at or timezone.now()
    row = (market.asset_id, market.currency, market.last_price_minor, market.last_trade_at)
    stats = _figures({market.pk: row}, at)[market.asset_id]
    return MarketStats(
        stats.asset_id,
        stats.currency,
        stats.last_price_minor,
        stats.last_trade_at,
        stats.previous_close_minor,
        stats.volume_24h,
        stats.gross_24h_minor,
        book,
    )


# -- candles ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Candle:
    day: datetime.date
    open_minor: int
    high_minor: int
    low_minor: int
    close_minor: int
    volume: int
    gross_minor: int


def _first_of(expression: str, ordering: tuple[str, ...]) -> Func:
    """PostgreSQL: (ARRAY_AGG(x ORDER BY …))[1], the first value of the group in that
    order (open: oldest first, close: newest first)."""
    return Func(
        ArrayAgg(expression, order_by=ordering),
        template="(%(expressions)s)[1]",
        output_field=BigIntegerField(),
    )


def daily_candles(*, asset, since: datetime.date | None = None, until: datetime.date | None = None) -> list[Candle]:
    """Open, high, low, close, units and gross per UTC day with trades, oldest first, in
    one aggregate query (date truncation and first/last in SQL)."""
    qs = Trade.objects.filter(asset_id=asset.pk).exclude(status=REVERSED)
    if since is not None:
        qs = qs.filter(created_at__gte=datetime.datetime.combine(since, datetime.time.min, tzinfo=UTC))
    if until is not None:
        qs = qs.filter(
            created_at__lt=datetime.datetime.combine(until + timedelta(days=1), datetime.time.min, tzinfo=UTC)
        )
    if connection.vendor != "postgresql":
        return _candles_in_python(qs)
    rows = (
        qs.annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day")
        .annotate(
            open=_first_of("price_minor", ("created_at", "pk")),
            close=_first_of("price_minor", ("-created_at", "-pk")),
            high=Max("price_minor"),
            low=Min("price_minor"),
            units=Sum("quantity"),
            gross=Sum("gross_minor"),
        )
        .order_by("day")
    )
    return [Candle(r["day"], r["open"], r["high"], r["low"], r["close"], r["units"], r["gross"]) for r in rows]


def _candles_in_python(qs) -> list[Candle]:
    """SQLite (`make run`, no ARRAY_AGG): the same candles from the trades in time order."""
    days: dict[datetime.date, list[int]] = {}
    for at, price, quantity, gross in qs.order_by("created_at", "pk").values_list(
        "created_at", "price_minor", "quantity", "gross_minor"
    ):
        day = at.astimezone(UTC).date()
        c = days.get(day)
        if c is None:
            days[day] = [price, price, price, price, quantity, gross]
        else:
            c[1], c[2], c[3] = max(c[1], price), min(c[2], price), price
            c[4] += quantity
            c[5] += gross
    return [Candle(day, o, h, lo, c, u, g) for day, (o, h, lo, c, u, g) in days.items()]


# -- valuations --------------------------------------------------------------------------


def valuation_history(*, asset) -> list[Valuation]:
    """Published valuations of the asset, newest first, with their documents (one query)."""
    return list(
        Valuation.objects.filter(asset_id=asset.pk, status=Valuation.Status.PUBLISHED)
        .select_related("document")
        .order_by("-as_of", "-pk")
    )


def latest_valuations(*, asset_ids) -> dict[int, Valuation]:
    """{asset id: its latest published valuation} (one query, DISTINCT ON)."""
    ids = list(asset_ids)
    if not ids:
        return {}
    rows = Valuation.objects.filter(asset_id__in=ids, status=Valuation.Status.PUBLISHED).order_by(
        "asset_id", "-as_of", "-pk"
    )
    if not connection.features.can_distinct_on_fields:  # SQLite (`make run`): first per asset in Python
        latest: dict[int, Valuation] = {}
        for v in rows:
            latest.setdefault(v.asset_id, v)
        return latest
    return {v.asset_id: v for v in rows.distinct("asset_id")}


def implied_yield(asset, price_minor: int | None) -> None:
    """The income yield implied at `price_minor` (declared income per fraction ÷ price).

    A hook: assets declare no income until the distributions issue lands, so this returns
    None and the pages show nothing. When it lands, return basis points (integer) from the
    declared annual distribution per fraction and the price; the trade page and the chart
    JSON already pass it through."""
    return None


# -- the chart's series ------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """What the chart and the JSON endpoint show for one range: the daily candles from
    `start` to `end` (UTC days) and the published valuations in force over it (the one
    in force at `start` first, then each that took effect inside the range), oldest
    first."""

    range_key: str
    currency: str
    start: datetime.date
    end: datetime.date
    candles: list[Candle]
    valuations: list[Valuation]

    @property
    def range_label(self) -> str:
        return RANGES[self.range_key][0]


def chart_series(*, asset, range_key: str, currency: str = "", today: datetime.date | None = None) -> Series:
    """Two queries: the candles of the range and the published valuations."""
    today = today or timezone.now().astimezone(UTC).date()
    days = RANGES[range_key][1]
    since = today - timedelta(days=days - 1) if days is not None else None
    candles = daily_candles(asset=asset, since=since, until=today)
    published = sorted(
        Valuation.objects.filter(asset_id=asset.pk, status=Valuation.Status.PUBLISHED, as_of__lte=today),
        key=lambda v: (v.as_of, v.pk),
    )
    if since is None:
        firsts = [c.day for c in candles[:1]] + [v.as_of for v in published[:1]]
        start = min(firsts) if firsts else today
    else:
        start = since
    before = [v for v in published if v.as_of <= start]
    inside = [v for v in published if v.as_of > start]
    shown = before[-1:] + inside
    if not currency:
        currency = (
            Offering.objects.filter(asset_id=asset.pk).values_list("currency", flat=True).first() or asset.currency
        )
    return Series(range_key, currency, start, today, candles, shown)


def series_json(series: Series, *, stats: MarketStats | None = None) -> dict:
    """The JSON of the chart (integer minor units, ISO dates), for the public API."""
    data: dict = {
        "range": series.range_key,
        "currency": series.currency,
        "start": series.start.isoformat(),
        "end": series.end.isoformat(),
        "candles": [
            {
                "day": c.day.isoformat(),
                "open_minor": c.open_minor,
                "high_minor": c.high_minor,
                "low_minor": c.low_minor,
                "close_minor": c.close_minor,
                "volume": c.volume,
                "gross_minor": c.gross_minor,
            }
            for c in series.candles
        ],
        "valuations": [
            {
                "as_of": v.as_of.isoformat(),
                "value_per_fraction_minor": v.value_per_fraction_minor,
                "currency": v.currency,
            }
            for v in series.valuations
        ],
    }
    if stats is not None:
        data["stats"] = {
            "last_price_minor": stats.last_price_minor,
            "last_trade_at": stats.last_trade_at.isoformat() if stats.last_trade_at else None,
            "previous_close_minor": stats.previous_close_minor,
            "change_minor": stats.change_minor,
            "change_bps": stats.change_bps,
            "volume_24h": stats.volume_24h,
            "gross_24h_minor": stats.gross_24h_minor,
            "best_bid_minor": stats.best_bid_minor,
            "best_ask_minor": stats.best_ask_minor,
            "spread_minor": stats.spread_minor,
            "implied_yield_bps": None,
        }
    return data


@dataclass(frozen=True)
class PortfolioTotal:
    """The settled holdings of one currency valued at the last price and at the latest
    valuation (`unvalued`: holdings without a valuation, left out of that total)."""

    currency: str
    value_minor: int
    valuation_value_minor: int
    unvalued: int
