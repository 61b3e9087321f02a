"""What the trade page shows of a book's controls (marketplace/market_controls.py): halts
(the asset's and the whole market's) with their reasons, an auction called (until when,
why), trading hours (open now, next opening), the price band and its reference price.
One call, at most two queries whatever the book (the whole market's row; the latest
valuation only when the book has not traded lately)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.utils import timezone

from .market_hours import next_session_open, session_is_open
from .models import Market
from .trading_selectors import (
    AUCTION_REASON_TEXT,
    Band,
    local_time_text,
    market_wide_control,
    matching_paused,
    price_band,
    reference_source_text,
)


@dataclass(frozen=True)
class ControlsState:
    market: Market
    wide_halted: bool
    wide_reason: str
    halted: bool
    halt_reason: str
    halted_at: datetime | None
    auction_mode: bool
    auction_at: datetime | None
    auction_at_text: str
    auction_why: str
    hours: dict
    session_open: bool
    next_open_text: str
    paused: str | None
    band: Band | None
    reference_text: str

    @property
    def trading(self) -> bool:
        """Continuous matching now: not halted and not paused."""
        return not (self.wide_halted or self.halted or self.paused)


def market_controls_state(*, market: Market | None, now: datetime | None = None) -> ControlsState | None:
    """The controls of a book as the trade page shows them (None before the book opens)."""
    if market is None:
        return None
    now = now or timezone.now()
    control = market_wide_control()
    try:
        open_now = session_is_open(market, now)
        opens = None if open_now else next_session_open(market, now)
    except ValidationError:
        open_now, opens = True, None
    band = price_band(market=market, now=now)
    return ControlsState(
        market=market,
        wide_halted=control.halted,
        wide_reason=control.reason,
        halted=market.halted,
        halt_reason=market.halt_reason,
        halted_at=market.halted_at,
        auction_mode=market.trading_mode == Market.TradingMode.AUCTION,
        auction_at=market.next_auction_at,
        auction_at_text=local_time_text(market, market.next_auction_at) if market.next_auction_at else "",
        auction_why=AUCTION_REASON_TEXT.get(market.auction_reason, market.auction_reason),
        hours=market.trading_hours or {},
        session_open=open_now,
        next_open_text=local_time_text(market, opens) if opens else "",
        paused=matching_paused(market, now),
        band=band,
        reference_text=reference_source_text(band.reference) if band else "",
    )
