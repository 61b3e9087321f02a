"""The price chart, drawn on the server as SVG (docs/market-integrity.md).

Why SVG from the server: no JavaScript library to vendor, pin and update; nothing runs in
the browser, so the Content-Security-Policy (script-src 'self', style-src 'self': no
inline scripts, no style attributes) needs no exception; the chart is a few kilobytes,
arrives with the page or an HTMX swap, scales with its container (viewBox, width 100%)
and reads on a phone. Colours come from classes in static/css/app.css, with presentation
attributes as a fallback (they are not inline styles).

What it draws for a range: the daily closes as a line (a dot per trading day), the units
traded per day as bars below, and the published valuation per fraction as a dashed step
line over the same days, so a reader sees when the market trades far from the appraisal.
The `<title>`/`<desc>` and the aria-label carry the figures; the page adds a table."""

from __future__ import annotations

import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from config.money import format_money

from .market_data import Series

WIDTH, HEIGHT = 480, 300
LEFT, RIGHT = 8, 472
PRICE_TOP, PRICE_BOTTOM = 28, 200
VOLUME_TOP, VOLUME_BOTTOM = 214, 262
AXIS_Y = 284


def _amount(minor: int, currency: str) -> str:
    return format_money(minor, currency)


def _n(value: float) -> str:
    """A coordinate with one decimal, no trailing zero."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


class _Scale:
    def __init__(self, series: Series):
        self.start = series.start
        self.days = max(1, (series.end - series.start).days + 1)
        values = [c.close_minor for c in series.candles] + [v.value_per_fraction_minor for v in series.valuations]
        low, high = (min(values), max(values)) if values else (0, 1)
        pad = max(1, (high - low) // 10) if high > low else max(1, high // 10)
        self.low, self.high = max(0, low - pad), high + pad
        self.max_volume = max((c.volume for c in series.candles), default=0)

    def x(self, day: datetime.date) -> float:
        """The centre of the day's slot."""
        index = (day - self.start).days
        return LEFT + (index + 0.5) * (RIGHT - LEFT) / self.days

    def x_edge(self, day: datetime.date) -> float:
        """The left edge of the day's slot (where a valuation takes effect)."""
        index = max(0, min(self.days, (day - self.start).days))
        return LEFT + index * (RIGHT - LEFT) / self.days

    def y(self, minor: int) -> float:
        return PRICE_BOTTOM - (minor - self.low) * (PRICE_BOTTOM - PRICE_TOP) / (self.high - self.low)

    def bar(self, volume: int) -> float:
        if not self.max_volume:
            return 0
        return max(1.0, volume * (VOLUME_BOTTOM - VOLUME_TOP) / self.max_volume)


def chart_summary(series: Series, *, name: str) -> str:
    """One sentence with the figures (aria-label and <desc>)."""
    currency = series.currency
    parts = [f"{name}: daily closing price per fraction from {series.start:%d %b %Y} to {series.end:%d %b %Y}."]
    candles = series.candles
    if candles:
        first, last = candles[0], candles[-1]
        high = max(c.high_minor for c in candles)
        low = min(c.low_minor for c in candles)
        units = sum(c.volume for c in candles)
        days = "1 trading day" if len(candles) == 1 else f"{len(candles)} trading days"
        parts.append(
            f"{days}; first close {_amount(first.close_minor, currency)} on {first.day:%d %b}, "
            f"last close {_amount(last.close_minor, currency)} on {last.day:%d %b}; "
            f"high {_amount(high, currency)}, low {_amount(low, currency)}; {units:,} units traded."
        )
    else:
        parts.append("No trades in this range.")
    if series.valuations:
        latest = series.valuations[-1]
        parts.append(
            f"Valuation {_amount(latest.value_per_fraction_minor, latest.currency)} per fraction "
            f"as of {latest.as_of:%d %b %Y}."
        )
    else:
        parts.append("No published valuation.")
    return " ".join(parts)


def price_chart_svg(series: Series, *, name: str, element_id: str) -> SafeString:
    """The chart as one <svg> element (every text escaped)."""
    scale = _Scale(series)
    summary = chart_summary(series, name=name)
    title_id, desc_id = f"{element_id}-title", f"{element_id}-desc"
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'preserveAspectRatio="xMidYMid meet" role="img" class="price-chart" id="{escape(element_id)}" '
        f'aria-labelledby="{escape(title_id)} {escape(desc_id)}">',
        f'<title id="{escape(title_id)}">{escape(name)}: price and valuation, {escape(series.range_label)}</title>',
        f'<desc id="{escape(desc_id)}">{escape(summary)}</desc>',
    ]
    # Frame: the price panel's top and bottom lines and the volume baseline.
    for y in (PRICE_TOP, PRICE_BOTTOM, VOLUME_BOTTOM):
        out.append(f'<line class="chart-grid" x1="{LEFT}" x2="{RIGHT}" y1="{y}" y2="{y}" stroke="#ccd" />')
    currency = series.currency
    out.append(
        f'<text class="chart-label" x="{LEFT}" y="{PRICE_TOP - 8}" font-size="13" fill="#555">'
        f"{escape(_amount(scale.high, currency))}</text>"
    )
    out.append(
        f'<text class="chart-label" x="{LEFT}" y="{PRICE_BOTTOM - 6}" font-size="13" fill="#555">'
        f"{escape(_amount(scale.low, currency))}</text>"
    )
    # Volume bars.
    slot = (RIGHT - LEFT) / scale.days
    width = max(1.0, slot * 0.7)
    for candle in series.candles:
        height = scale.bar(candle.volume)
        out.append(
            f'<rect class="chart-volume" x="{_n(scale.x(candle.day) - width / 2)}" y="{_n(VOLUME_BOTTOM - height)}" '
            f'width="{_n(width)}" height="{_n(height)}" fill="#9ab" />'
        )
    # Valuation: a step line from the start (or its date) to the end.
    if series.valuations:
        steps: list[tuple[float, float]] = []
        for index, valuation in enumerate(series.valuations):
            x0: float = scale.x_edge(valuation.as_of) if index else float(LEFT)
            y_value = scale.y(valuation.value_per_fraction_minor)
            if steps:
                steps.append((x0, steps[-1][1]))  # the previous value up to this date
            steps.append((x0, y_value))
        steps.append((RIGHT, steps[-1][1]))
        points = [f"{_n(x)},{_n(y)}" for x, y in steps]
        out.append(
            f'<polyline class="chart-valuation" points="{" ".join(points)}" fill="none" stroke="#b60" '
            f'stroke-width="2" stroke-dasharray="6 4" />'
        )
    # Closing prices.
    if len(series.candles) > 1:
        points = [f"{_n(scale.x(c.day))},{_n(scale.y(c.close_minor))}" for c in series.candles]
        out.append(
            f'<polyline class="chart-price" points="{" ".join(points)}" fill="none" stroke="#1d4ed8" stroke-width="2" />'
        )
    for candle in series.candles:
        out.append(
            f'<circle class="chart-point" cx="{_n(scale.x(candle.day))}" cy="{_n(scale.y(candle.close_minor))}" '
            f'r="3" fill="#1d4ed8" />'
        )
    if not series.candles:
        out.append(
            f'<text class="chart-empty" x="{WIDTH // 2}" y="{(PRICE_TOP + PRICE_BOTTOM) // 2}" text-anchor="middle" '
            f'font-size="15" fill="#555">No trades in this range</text>'
        )
    # Date axis: the first and last day.
    out.append(
        f'<text class="chart-label" x="{LEFT}" y="{AXIS_Y}" font-size="13" fill="#555">{series.start:%d %b %Y}</text>'
    )
    out.append(
        f'<text class="chart-label" x="{RIGHT}" y="{AXIS_Y}" text-anchor="end" font-size="13" fill="#555">'
        f"{series.end:%d %b %Y}</text>"
    )
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above is escaped
