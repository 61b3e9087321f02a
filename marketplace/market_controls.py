"""Market controls (issue 14, docs/trading.md "Market controls"): halting and resuming
one book or the whole market, and a book's price band, trading mode, trading hours, time
zone and auction times. Staff only, each checked here against its permission, each under
the book's lock (so it never lands in the middle of a match: a trade either committed
before the change or sees it), each recorded as a MarketEvent (the trade page and
market_check read them) and in the audit log.

Lock order (marketplace/locks.py): the whole market's row (2a) before any book (2), the
audit head last. Times are taken after the locks, so every trade stamped before a halt
committed before it, and no trade is stamped inside a halt interval."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from compliance.audit import audit_record, model_snapshot

from .locks import market_lock, market_wide_control_lock
from .market_hours import auction_times_clean, hours_clean, next_auction_time, next_session_open, session_is_open, zone
from .models import Market, MarketEvent, MarketWideControl

HALT_PERMISSION = "marketplace.halt_market"
CONTROLS_PERMISSION = "marketplace.change_market_controls"
CONTROL_FIELDS = ("band_pct", "trading_mode", "time_zone", "trading_hours", "auction_times")
HALT_FIELDS = ("halted", "halt_reason", "halted_at", "next_auction_at", "auction_reason")
REASON_MAX = 500
Mode = Market.TradingMode
Kind = MarketEvent.Kind


def _require(actor, perm: str) -> None:
    if not (actor is not None and actor.is_active and actor.is_staff and actor.has_perm(perm)):
        raise PermissionDenied("Only staff with the right permission can do this.")


def reason_clean(reason) -> str:
    """The reason investors are shown: text, required, at most 500 characters, no NUL."""

    def refuse(message: str, code: str) -> ValidationError:
        return ValidationError({"reason": ValidationError(message, code=code)})

    if reason is None:
        reason = ""
    if not isinstance(reason, str):
        raise refuse("The reason must be text.", "invalid_reason")
    if "\x00" in reason:
        raise refuse("The reason contains a NUL character.", "invalid_reason")
    reason = reason.strip()
    if not reason:
        raise refuse("Say why; investors see the reason.", "reason_required")
    if len(reason) > REASON_MAX:
        raise refuse(f"Keep the reason to {REASON_MAX} characters (it has {len(reason):,}).", "reason_too_long")
    return reason


def _call_reopening(market: Market, now) -> bool:
    """A continuous book reopens with an auction (an auction called for later stays)."""
    if market.trading_mode != Mode.CONTINUOUS:
        return False
    at = now + timedelta(seconds=settings.MARKETPLACE_REOPENING_AUCTION_SECONDS)
    if market.next_auction_at is not None and market.next_auction_at >= at:
        return False
    market.next_auction_at, market.auction_reason = at, "reopening"
    return True


def _auction_event(market: Market, *, actor, now, message: str) -> MarketEvent:
    return MarketEvent(
        market=market,
        kind=Kind.AUCTION_CALLED,
        at=now,
        actor=actor,
        message=message,
        data={
            "reason": market.auction_reason,
            "auction_at": market.next_auction_at.isoformat() if market.next_auction_at else None,
        },
    )


# -- one book ----------------------------------------------------------------------------


@transaction.atomic(durable=True)
def market_halt(*, market: Market, actor, reason: str) -> Market:
    """Halt trading in one asset (marketplace.halt_market): no new orders, no matching;
    open orders stay and can be cancelled. Raises PermissionDenied or ValidationError
    (reason_required, reason_too_long, invalid_reason, already_halted)."""
    _require(actor, HALT_PERMISSION)
    reason = reason_clean(reason)
    market = market_lock(pk=market.pk)
    if market.halted:
        raise ValidationError("Trading in this asset is already halted.", code="already_halted")
    now = timezone.now()
    before = model_snapshot(market, HALT_FIELDS)
    market.halted, market.halt_reason, market.halted_at = True, reason, now
    market.save(update_fields=["halted", "halt_reason", "halted_at", "updated_at"])
    MarketEvent.objects.create(market=market, kind=Kind.HALTED, at=now, actor=actor, message=reason)
    audit_record(
        actor=actor,
        action="market.halted",
        target=market,
        before=before,
        after=model_snapshot(market, HALT_FIELDS),
        reason=reason,
    )
    return market


@transaction.atomic(durable=True)
def market_resume(*, market: Market, actor, reason: str) -> Market:
    """Resume trading in one asset (marketplace.halt_market). A continuous book reopens
    with an auction in MARKETPLACE_REOPENING_AUCTION_SECONDS (orders collect until then);
    a book in auction mode keeps its schedule. Raises PermissionDenied or ValidationError
    (reason_*, not_halted)."""
    _require(actor, HALT_PERMISSION)
    reason = reason_clean(reason)
    market = market_lock(pk=market.pk)
    if not market.halted:
        raise ValidationError("Trading in this asset is not halted.", code="not_halted")
    now = timezone.now()
    before = model_snapshot(market, HALT_FIELDS)
    market.halted, market.halt_reason, market.halted_at = False, "", None
    reopening = _call_reopening(market, now)
    market.save(update_fields=[*HALT_FIELDS, "updated_at"])
    events = [MarketEvent(market=market, kind=Kind.RESUMED, at=now, actor=actor, message=reason)]
    if reopening:
        events.append(_auction_event(market, actor=actor, now=now, message="Reopening auction after the halt."))
    MarketEvent.objects.bulk_create(events)
    audit_record(
        actor=actor,
        action="market.resumed",
        target=market,
        before=before,
        after=model_snapshot(market, HALT_FIELDS),
        reason=reason,
    )
    return market


# -- the whole market --------------------------------------------------------------------


def _lock_every_book() -> list[Market]:
    """Every book FOR NO KEY UPDATE in pk order: a match in flight finishes first, and
    none commits after the caller."""
    return list(Market.objects.select_for_update(of=("self",), no_key=True).order_by("pk"))


@transaction.atomic(durable=True)
def market_wide_halt(*, actor, reason: str) -> MarketWideControl:
    """Halt trading on the whole market (marketplace.halt_market). Locks the market-wide
    row, then every book (so matching in flight finishes first and none commits after
    this); a book created meanwhile waits for it (trading.market_open). Raises
    PermissionDenied or ValidationError (reason_*, already_halted)."""
    _require(actor, HALT_PERMISSION)
    reason = reason_clean(reason)
    control = market_wide_control_lock()
    if control.halted:
        raise ValidationError("The whole market is already halted.", code="already_halted")
    _lock_every_book()
    now = timezone.now()
    before = model_snapshot(control, ("halted", "reason", "changed_at"))
    control.halted, control.reason, control.changed_at, control.changed_by = True, reason, now, actor
    control.save()
    MarketEvent.objects.create(market=None, kind=Kind.HALTED, at=now, actor=actor, message=reason)
    audit_record(
        actor=actor,
        action="market.wide_halted",
        target=control,
        before=before,
        after=model_snapshot(control, ("halted", "reason", "changed_at")),
        reason=reason,
    )
    return control


@transaction.atomic(durable=True)
def market_wide_resume(*, actor, reason: str) -> MarketWideControl:
    """Resume trading on the whole market (marketplace.halt_market): every continuous
    book that is not halted on its own reopens with an auction. Raises PermissionDenied
    or ValidationError (reason_*, not_halted)."""
    _require(actor, HALT_PERMISSION)
    reason = reason_clean(reason)
    control = market_wide_control_lock()
    if not control.halted:
        raise ValidationError("The whole market is not halted.", code="not_halted")
    books = _lock_every_book()
    now = timezone.now()
    before = model_snapshot(control, ("halted", "reason", "changed_at"))
    control.halted, control.reason, control.changed_at, control.changed_by = False, "", now, actor
    control.save()
    events = [MarketEvent(market=None, kind=Kind.RESUMED, at=now, actor=actor, message=reason)]
    reopened = []
    for book in books:
        if not book.halted and _call_reopening(book, now):
            reopened.append(book)
            events.append(_auction_event(book, actor=actor, now=now, message="Reopening auction after the halt."))
    if reopened:
        Market.objects.bulk_update(reopened, ["next_auction_at", "auction_reason", "updated_at"])
    MarketEvent.objects.bulk_create(events)
    audit_record(
        actor=actor,
        action="market.wide_resumed",
        target=control,
        before=before,
        after={**model_snapshot(control, ("halted", "reason", "changed_at")), "reopening_auctions": len(reopened)},
        reason=reason,
    )
    return control


# -- band, mode, hours -------------------------------------------------------------------


def controls_clean(fields: dict) -> dict:
    """The control fields, validated: band_pct (whole 1..1000, or None for the default),
    trading_mode, time_zone (IANA), trading_hours, auction_times (market_hours)."""
    unknown = set(fields) - set(CONTROL_FIELDS)
    if unknown:
        raise ValidationError(
            f"These fields cannot be changed here: {', '.join(sorted(str(u)[:40] for u in unknown))}.",
            code="unknown_field",
        )
    clean: dict = {}
    errors: dict[str, list[ValidationError]] = {}

    def check(name, fn):
        try:
            clean[name] = fn(fields[name])
        except ValidationError as exc:
            errors.setdefault(name, []).extend(exc.error_list)

    def band(value):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
            raise ValidationError("The price band is a whole percentage from 1 to 1000.", code="invalid_band")
        return value

    def mode(value):
        if value not in Mode.values:
            raise ValidationError("Choose continuous trading or periodic call auctions.", code="invalid_mode")
        return value

    def time_zone(value):
        zone(value)
        return value

    for name, fn in (
        ("band_pct", band),
        ("trading_mode", mode),
        ("time_zone", time_zone),
        ("trading_hours", hours_clean),
        ("auction_times", auction_times_clean),
    ):
        if name in fields:
            check(name, fn)
    if errors:
        raise ValidationError(errors)
    return clean


@transaction.atomic(durable=True)
def market_controls_update(*, market: Market, actor, fields: dict, reason: str) -> Market:
    """Change a book's price band, trading mode, time zone, trading hours or auction
    times (marketplace.change_market_controls), under the book's lock.

    - To auction mode (or a new schedule in auction mode): the next auction is the next
      of its auction times (`scheduled`); auction mode needs at least one.
    - To continuous: a scheduled auction is cleared (a reopening or band auction stays).
    - A continuous book with trading hours, outside its session now: the session opens
      with an auction (`session_open`).
    Raises PermissionDenied or ValidationError (per field; reason_*; auction_times_required)."""
    _require(actor, CONTROLS_PERMISSION)
    reason = reason_clean(reason)
    clean = controls_clean(fields)
    market = market_lock(pk=market.pk)
    changed = {name: value for name, value in clean.items() if getattr(market, name) != value}
    if not changed:
        return market
    now = timezone.now()
    watched = (*CONTROL_FIELDS, "next_auction_at", "auction_reason")
    before = model_snapshot(market, watched)
    for name, value in changed.items():
        setattr(market, name, value)
    if market.trading_mode == Mode.AUCTION and not market.auction_times:
        raise ValidationError(
            {"auction_times": 'Auction mode needs at least one auction time, e.g. ["15:00"].'},
            code="auction_times_required",
        )
    auction_before = (market.next_auction_at, market.auction_reason)
    schedule_changed = bool({"trading_mode", "time_zone", "trading_hours", "auction_times"} & set(changed))
    if market.trading_mode == Mode.AUCTION:
        if schedule_changed:
            market.next_auction_at, market.auction_reason = next_auction_time(market, now), "scheduled"
    else:
        if "trading_mode" in changed and market.auction_reason == "scheduled":
            market.next_auction_at, market.auction_reason = None, ""
        if market.trading_hours and schedule_changed and not session_is_open(market, now):
            opens = next_session_open(market, now)
            if opens is not None and (market.next_auction_at is None or market.next_auction_at < opens):
                market.next_auction_at, market.auction_reason = opens, "session_open"
    if market.next_auction_at is None:
        market.auction_reason = ""
    market.save(update_fields=[*changed, "next_auction_at", "auction_reason", "updated_at"])

    events = []
    if "band_pct" in changed:
        pct = market.band_pct or settings.MARKETPLACE_PRICE_BAND_PCT
        events.append(
            MarketEvent(
                market=market,
                kind=Kind.BAND_CHANGED,
                at=now,
                actor=actor,
                message=f"Price band ±{pct} % around the reference price. {reason}",
                data={"band_pct": market.band_pct},
            )
        )
    if "trading_mode" in changed:
        events.append(
            MarketEvent(
                market=market,
                kind=Kind.MODE_CHANGED,
                at=now,
                actor=actor,
                message=f"{market.get_trading_mode_display()}. {reason}",
                data={"trading_mode": market.trading_mode},
            )
        )
    if {"time_zone", "trading_hours", "auction_times"} & set(changed):
        events.append(
            MarketEvent(
                market=market,
                kind=Kind.HOURS_CHANGED,
                at=now,
                actor=actor,
                message=reason,
                data={name: getattr(market, name) for name in ("time_zone", "trading_hours", "auction_times")},
            )
        )
    if market.next_auction_at is not None and (market.next_auction_at, market.auction_reason) != auction_before:
        events.append(_auction_event(market, actor=actor, now=now, message=f"Auction ({market.auction_reason})."))
    for event in events:
        event.message = event.message[:1000]
    MarketEvent.objects.bulk_create(events)
    audit_record(
        actor=actor,
        action="market.controls_changed",
        target=market,
        before=before,
        after=model_snapshot(market, watched),
        reason=reason,
    )
    return market
