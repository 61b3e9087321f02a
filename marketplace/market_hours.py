"""Trading hours and auction times of a book (docs/market-integrity.md), in the book's
own time zone. Pure functions of a Market's fields and a moment: no database access.

- `trading_hours`: {"mon": ["09:00", "17:30"], ...}; a day that is missing is closed; an
  empty schedule means always open.
- `auction_times`: ["15:00", ...]: the daily uncrossing times in auction mode.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.core.exceptions import ValidationError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def _time(text, *, what: str) -> time:
    if not isinstance(text, str) or not _HHMM.match(text):
        raise ValidationError(f"{what} must be a time as HH:MM (00:00 to 23:59).", code="invalid_time")
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def zone(name) -> ZoneInfo:
    """The IANA time zone of that name, or a ValidationError."""
    if not isinstance(name, str) or not name or len(name) > 64 or "\x00" in name:
        raise ValidationError("Give a time zone such as Europe/Zurich.", code="invalid_time_zone")
    try:
        if name not in _zones():
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"Unknown time zone {name[:64]!r}; give one such as Europe/Zurich.", code="invalid_time_zone"
        ) from None


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
        _ZONES.add("UTC")
    return _ZONES


def hours_clean(value) -> dict[str, list[str]]:
    """A validated weekly schedule: known day keys, each [open, close] with open < close."""
    if value in (None, "", {}):
        return {}
    if not isinstance(value, dict):
        raise ValidationError('Trading hours are {"mon": ["09:00", "17:30"], ...}.', code="invalid_hours")
    clean = {}
    for day, span in value.items():
        if day not in DAYS:
            raise ValidationError(f"Unknown day {str(day)[:10]!r}; use {', '.join(DAYS)}.", code="invalid_hours")
        if not (isinstance(span, (list, tuple)) and len(span) == 2):
            raise ValidationError(f'{day}: give [open, close], e.g. ["09:00", "17:30"].', code="invalid_hours")
        opens, closes = _time(span[0], what=f"{day} open"), _time(span[1], what=f"{day} close")
        if opens >= closes:
            raise ValidationError(f"{day}: the session must open before it closes.", code="invalid_hours")
        clean[day] = [span[0], span[1]]
    return {day: clean[day] for day in DAYS if day in clean}


def auction_times_clean(value) -> list[str]:
    """Validated, sorted, distinct HH:MM auction times (at most 24)."""
    if value in (None, "", []):
        return []
    if not isinstance(value, (list, tuple)) or len(value) > 24:
        raise ValidationError('Auction times are a list such as ["15:00"] (at most 24).', code="invalid_auction_times")
    for item in value:
        _time(item, what="An auction time")
    return sorted(set(value))


def _session(market, day: date) -> tuple[datetime, datetime] | None:
    span = (market.trading_hours or {}).get(DAYS[day.weekday()])
    if not span:
        return None
    tz = zone(market.time_zone)
    opens = datetime.combine(day, _time(span[0], what="open"), tz)
    closes = datetime.combine(day, _time(span[1], what="close"), tz)
    return opens, closes


def session_is_open(market, now: datetime) -> bool:
    """Whether the book's trading session is open at `now` (always, without hours)."""
    if not market.trading_hours:
        return True
    local = now.astimezone(zone(market.time_zone))
    session = _session(market, local.date())
    return session is not None and session[0] <= now < session[1]


def next_session_open(market, now: datetime) -> datetime | None:
    """The next session opening strictly after `now` (None without hours)."""
    if not market.trading_hours:
        return None
    local = now.astimezone(zone(market.time_zone))
    for offset in range(0, 8):
        session = _session(market, local.date() + timedelta(days=offset))
        if session is not None and session[0] > now:
            return session[0]
    return None


def next_auction_time(market, now: datetime) -> datetime | None:
    """The next of the book's daily auction times strictly after `now` (on a trading day
    within its session when it has trading hours); None without auction times."""
    times = auction_times_clean(market.auction_times)
    if not times:
        return None
    tz = zone(market.time_zone)
    local = now.astimezone(tz)
    for offset in range(0, 8):
        day = local.date() + timedelta(days=offset)
        session = _session(market, day) if market.trading_hours else None
        if market.trading_hours and session is None:
            continue
        for text in times:
            at = datetime.combine(day, _time(text, what="auction time"), tz)
            if at <= now:
                continue
            if session is not None and not (session[0] <= at <= session[1]):
                continue
            return at
    return None
