"""Monthly statements and the annual tax summary of an investor (docs/statements.md).

Reads only. Every figure comes from the books: positions from the history of unit
movements at the date (`investor_units_at`, the rule of `distributions.units_at`), cash
from the ledger's postings (the portfolio's `selectors.cash_events_for`, one line per
business event), purchases, trades and distribution payments from their rows. Money is
integer minor units throughout; the PDF (`statements_pdf`) and the CSV only format it.

Realised gains are first in, first out per asset (`fifo_realised`, pure): a lot's cost
includes its fees, and a lot sold in parts gives its first n units of U the cost
floor(C × n / U), so each slice costs the difference of two such floors and the lot's whole
cost C is used exactly when its last unit is sold."""

from __future__ import annotations

import csv
import datetime
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Min, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from assets.models import Asset
from config.money import minor_to_major_text

from .models import Distribution, DistributionPayment, LedgerAccount, Posting, PrimaryOrder, Trade, Valuation
from .selectors import CashEvent, cash_events_for
from .templatetags.marketplace import SETTLEMENT_WORDS
from .views import _cell

A = LedgerAccount.Kind
P = DistributionPayment.Status
K = Distribution.Kind

PLATFORM_NAME = "RWA Marketplace"
FIRST_YEAR = 2000  # no statement before this year (the path takes any integer)
# Kinds of distribution that give capital back rather than pay income: listed apart.
CAPITAL_KINDS = (K.RETURN_OF_CAPITAL, K.FINAL_REDEMPTION)
# cash_events_for returns the latest `limit` events; a statement needs all of them.
EVERY_EVENT = 10**12
ONE_TICK = datetime.timedelta(microseconds=1)


# -- first in, first out (pure) ------------------------------------------------------------


@dataclass(frozen=True)
class Acquisition:
    """A lot: `units` acquired at `at` for `cost_minor` in all (price plus fees)."""

    at: datetime.datetime
    units: int
    cost_minor: int
    ref: str = ""
    seq: int = 0  # order among acquisitions at the same instant


@dataclass(frozen=True)
class Disposal:
    """A sale: `units` sold at `at` for `proceeds_minor` (gross minus the seller's fee)."""

    at: datetime.datetime
    units: int
    proceeds_minor: int
    ref: str = ""
    seq: int = 0


@dataclass(frozen=True)
class LotSlice:
    ref: str
    units: int
    cost_minor: int


@dataclass(frozen=True)
class Realised:
    """One disposal matched against its lots. `uncovered_units` were sold without a
    recorded acquisition before the sale (never, if the books are sound): their cost is
    unknown and counted as zero."""

    disposal: Disposal
    cost_minor: int
    lots: tuple[LotSlice, ...]
    uncovered_units: int = 0

    @property
    def units(self) -> int:
        return self.disposal.units

    @property
    def proceeds_minor(self) -> int:
        return self.disposal.proceeds_minor

    @property
    def gain_minor(self) -> int:
        return self.disposal.proceeds_minor - self.cost_minor


def slice_cost(*, cost_minor: int, units: int, taken_before: int, taking: int) -> int:
    """The cost of units taken_before+1 … taken_before+taking of a lot of `units` costing
    `cost_minor`: floor(C·(b+t)/U) − floor(C·b/U). Within one minor unit of the exact pro
    rata cost; the slices of a whole lot add up to C exactly."""
    return (cost_minor * (taken_before + taking)) // units - (cost_minor * taken_before) // units


def fifo_realised(acquisitions: Iterable[Acquisition], disposals: Iterable[Disposal]) -> list[Realised]:
    """Match each disposal (of one asset) against the earliest lots not yet used that were
    acquired at or before it. Rows in the order of the disposals (by time)."""
    lots = sorted(acquisitions, key=lambda a: (a.at, a.seq))
    for lot in lots:
        if lot.units <= 0 or lot.cost_minor < 0:
            raise ValueError(f"a lot needs units > 0 and a cost ≥ 0: {lot}")
    queue: list[list[Any]] = []  # [lot, units already taken]
    next_lot = 0
    rows = []
    for sale in sorted(disposals, key=lambda d: (d.at, d.seq)):
        if sale.units <= 0:
            raise ValueError(f"a disposal needs units > 0: {sale}")
        while next_lot < len(lots) and lots[next_lot].at <= sale.at:
            queue.append([lots[next_lot], 0])
            next_lot += 1
        need, cost, used = sale.units, 0, []
        while need and queue:
            lot, taken = queue[0]
            taking = min(need, lot.units - taken)
            piece = slice_cost(cost_minor=lot.cost_minor, units=lot.units, taken_before=taken, taking=taking)
            used.append(LotSlice(lot.ref, taking, piece))
            cost += piece
            need -= taking
            if taken + taking == lot.units:
                queue.pop(0)
            else:
                queue[0][1] = taken + taking
        rows.append(Realised(sale, cost, tuple(used), uncovered_units=need))
    return rows


# -- periods ---------------------------------------------------------------------------------


class PeriodError(ValueError):
    """A year or month the statements do not cover (the message says why)."""


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC; `end` is now for the current month or year (to date)."""

    start: datetime.datetime
    end: datetime.datetime
    label: str
    to_date: bool = False

    @property
    def opening_at(self) -> datetime.datetime:
        """The last instant before the period: movements at or before it are the opening."""
        return self.start - ONE_TICK

    @property
    def closing_at(self) -> datetime.datetime:
        return self.end - ONE_TICK

    @property
    def last_day(self) -> datetime.date:
        return self.closing_at.date()

    def contains(self, at: datetime.datetime | None) -> bool:
        return at is not None and self.start <= at < self.end


def _utc(year: int, month: int, day: int = 1) -> datetime.datetime:
    return datetime.datetime(year, month, day, tzinfo=datetime.UTC)


def _check_year(year: int, now: datetime.datetime) -> None:
    if not FIRST_YEAR <= year <= now.year:
        raise PeriodError(f"Statements cover {FIRST_YEAR} to {now.year}.")


def month_period(*, year: int, month: int, now: datetime.datetime | None = None) -> Period:
    now = now or timezone.now()
    _check_year(year, now)
    if not 1 <= month <= 12:
        raise PeriodError("A month is 1 to 12.")
    start = _utc(year, month)
    if start > now:
        raise PeriodError("That month has not started yet.")
    end = _utc(year + 1, 1) if month == 12 else _utc(year, month + 1)
    label = f"{start:%B %Y}"
    if end > now:
        return Period(start, now, f"{label} (to {now:%d %B %Y %H:%M} UTC)", to_date=True)
    return Period(start, end, label)


def year_period(*, year: int, now: datetime.datetime | None = None) -> Period:
    now = now or timezone.now()
    _check_year(year, now)
    start, end = _utc(year, 1), _utc(year + 1, 1)
    if end > now:
        return Period(start, now, f"{year} (to {now:%d %B %Y %H:%M} UTC)", to_date=True)
    return Period(start, end, str(year))


def first_activity_at(*, user) -> datetime.datetime | None:
    """The earliest cash movement, purchase, trade or distribution payment of the investor."""
    candidates = [
        Posting.objects.filter(account__user=user, account__kind__in=[A.INVESTOR_AVAILABLE, A.INVESTOR_HELD])
        .aggregate(at=Min("entry__created_at"))
        .get("at"),
        PrimaryOrder.objects.filter(investor=user).aggregate(at=Min("created_at")).get("at"),
        Trade.objects.filter(Q(buyer=user) | Q(seller=user)).aggregate(at=Min("created_at")).get("at"),
        DistributionPayment.objects.filter(investor=user, treasury=False).aggregate(at=Min("paid_at")).get("at"),
    ]
    found = [c for c in candidates if c is not None]
    return min(found) if found else None


def months_available(*, user, now: datetime.datetime | None = None) -> list[tuple[int, int]]:
    """(year, month) from the investor's first activity to the current month, newest first;
    empty before any activity."""
    now = now or timezone.now()
    first = first_activity_at(user=user)
    if first is None:
        return []
    first = max(first, _utc(FIRST_YEAR, 1))
    months = []
    year, month = now.year, now.month
    while (year, month) >= (first.year, first.month):
        months.append((year, month))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return months


# -- positions at a date --------------------------------------------------------------------


def investor_units_at(*, investor_id: int, at: datetime.datetime) -> dict[int, int]:
    """Units of each asset the investor owned at `at`: `distributions.units_at` for one
    investor, the same rule (a primary purchase counts from its order unless refunded by
    `at`, a trade moves units from its match unless reversed by `at`). Zeros left out."""
    units: dict[int, int] = defaultdict(int)
    bought = (
        PrimaryOrder.objects.filter(investor_id=investor_id, created_at__lte=at)
        .exclude(refunded_at__lte=at)
        .values_list("asset_id")
        .annotate(n=Sum("quantity"))
        .order_by()
    )
    for asset_id, n in bought:
        units[asset_id] += n
    trades = Trade.objects.filter(created_at__lte=at).exclude(reversed_at__lte=at)
    for asset_id, n in (
        trades.filter(buyer_id=investor_id).values_list("asset_id").annotate(n=Sum("quantity")).order_by()
    ):
        units[asset_id] += n
    for asset_id, n in (
        trades.filter(seller_id=investor_id).values_list("asset_id").annotate(n=Sum("quantity")).order_by()
    ):
        units[asset_id] -= n
    negative = {i: n for i, n in units.items() if n < 0}
    if negative:  # the books never let anyone sell what they did not own
        raise AssertionError(f"negative unit history of investor {investor_id} at {at.isoformat()}: {negative}")
    return {i: n for i, n in units.items() if n > 0}


@dataclass(frozen=True)
class Position:
    asset: Asset
    currency: str
    units: int
    price_minor: int | None
    price_basis: str  # "last trade", "valuation as of …", "offering price", "no price"
    value_minor: int | None


def asset_currency(asset: Asset) -> str:
    """The currency the asset is bought, traded and paid in: its offering's (else its market's)."""
    offering = getattr(asset, "offering", None)
    if offering is not None:
        return offering.currency
    market = getattr(asset, "market", None)
    return market.currency if market is not None else asset.currency


def _assets_priced_at(asset_ids: Iterable[int], at: datetime.datetime) -> dict[int, Asset]:
    """The assets with the price rule's inputs as they were at `at`: the last trade's price
    (what Market.last_price_minor said then; reversals do not change it) and the latest
    published valuation dated on or before that day."""
    last_trade = Trade.objects.filter(asset_id=OuterRef("pk"), created_at__lte=at).order_by("-created_at", "-pk")
    valuation = (
        Valuation.objects.filter(asset_id=OuterRef("pk"), status=Valuation.Status.PUBLISHED, as_of__lte=at.date())
        .filter(Q(decided_at__lte=at) | Q(decided_at__isnull=True, created_at__lte=at))
        .order_by("-as_of", "-pk")
    )
    assets = (
        Asset.objects.filter(pk__in=list(asset_ids))
        .select_related("offering", "market")
        .annotate(
            statement_trade_price=Subquery(last_trade.values("price_minor")[:1]),
            statement_valuation=Subquery(valuation.values("value_per_fraction_minor")[:1]),
            statement_valuation_as_of=Subquery(valuation.values("as_of")[:1]),
        )
    )
    return {a.pk: a for a in assets}


def price_of(asset: Any) -> tuple[int | None, str]:
    """The price rule: the last trade, else the latest published valuation per fraction,
    else the offering price (an asset from `_assets_priced_at`)."""
    if asset.statement_trade_price is not None:
        return asset.statement_trade_price, "last trade"
    if asset.statement_valuation is not None:
        return asset.statement_valuation, f"valuation as of {asset.statement_valuation_as_of:%d %b %Y}"
    offering = getattr(asset, "offering", None)
    if offering is not None:
        return offering.price_per_fraction_minor, "offering price"
    return None, "no price"


def positions_at(*, user, at: datetime.datetime) -> list[Position]:
    units = investor_units_at(investor_id=user.pk, at=at)
    assets = _assets_priced_at(units, at)
    lines = []
    for asset_id, n in units.items():
        asset = assets[asset_id]
        price, basis = price_of(asset)
        lines.append(Position(asset, asset_currency(asset), n, price, basis, price * n if price is not None else None))
    return sorted(lines, key=lambda p: (p.asset.name.casefold(), p.asset.pk))


# -- the monthly statement -------------------------------------------------------------------


@dataclass(frozen=True)
class Cash:
    available_minor: int = 0
    held_minor: int = 0

    @property
    def total_minor(self) -> int:
        return self.available_minor + self.held_minor


def cash_at(*, user, at: datetime.datetime) -> dict[str, Cash]:
    """{currency: the investor's available and held cash after every entry up to `at`}."""
    rows = (
        Posting.objects.filter(
            account__user=user,
            account__kind__in=[A.INVESTOR_AVAILABLE, A.INVESTOR_HELD],
            entry__created_at__lte=at,
        )
        .values_list("account__currency", "account__kind")
        .annotate(total=Sum("amount_minor"))
        .order_by()
    )
    found: dict[str, dict[str, int]] = defaultdict(dict)
    for currency, kind, total in rows:
        found[currency][kind] = total or 0
    return {c: Cash(k.get(A.INVESTOR_AVAILABLE, 0), k.get(A.INVESTOR_HELD, 0)) for c, k in found.items()}


@dataclass(frozen=True)
class CashLine:
    """One business event's part of the period (dated by its first entry in it): what it
    changed in the cash available and in the cash held, and the balance (available + held)
    after it."""

    at: datetime.datetime
    kind: str
    description: str
    available_minor: int
    held_minor: int
    balance_minor: int
    entries: tuple[int, ...]
    detail: str = ""  # the ledger's words for the entries inside the period

    @property
    def change_minor(self) -> int:
        return self.available_minor + self.held_minor


def _event_description(event: CashEvent, distributions: dict[int, Distribution]) -> str:
    entry = event.entry
    if event.kind == "purchase":
        order = entry.order
        return f"Purchase of {order.quantity:,} {order.asset.name}"
    if event.kind in ("trade_bought", "trade_sold"):
        trade = entry.trade
        verb = "Bought" if event.kind == "trade_bought" else "Sold"
        return f"{verb} {trade.quantity:,} {trade.asset.name} at {minor_to_major_text(trade.price_minor)}"
    if event.kind == "buy_order":
        order = entry.trade_order
        return f"Buy order for {order.quantity:,} {order.asset.name}"
    if event.kind == "withdrawal":
        return "Withdrawal to your bank account"
    if event.kind == "deposit":
        return f"Deposit (bank reference {entry.deposit.bank_reference})"
    distribution = distributions.get(entry.distribution_id) if entry.distribution_id else None
    if distribution is not None:
        return f"{distribution.get_kind_display()} from {distribution.asset.name}"
    return entry.get_kind_display()


def cash_lines(*, user, period: Period, opening: dict[str, Cash]) -> dict[str, list[CashLine]]:
    """{currency: the period's cash lines, oldest first}: the portfolio's cash events, each
    reduced to its ledger lines inside the period, with a running balance from `opening`."""
    events = cash_events_for(user=user, limit=EVERY_EVENT)
    distribution_ids = {p.entry.distribution_id for e in events for p in e.postings if p.entry.distribution_id}
    distributions = Distribution.objects.select_related("asset").in_bulk(list(distribution_ids))
    parts: list[tuple[datetime.datetime, int, CashEvent, list[Posting]]] = []
    for event in events:
        inside = [p for p in event.postings if period.contains(p.entry.created_at)]
        if inside:
            first = min(inside, key=lambda p: (p.entry.created_at, p.entry_id))
            parts.append((first.entry.created_at, first.entry_id, event, inside))
    lines: dict[str, list[CashLine]] = defaultdict(list)
    balance = {c: cash.total_minor for c, cash in opening.items()}
    for _, _, event, inside in sorted(parts, key=lambda part: (part[0], part[1])):
        ordered = sorted(inside, key=lambda p: (p.entry.created_at, p.entry_id))
        available = sum(p.amount_minor for p in inside if p.account.kind == A.INVESTOR_AVAILABLE)
        held = sum(p.amount_minor for p in inside if p.account.kind == A.INVESTOR_HELD)
        balance[event.currency] = balance.get(event.currency, 0) + available + held
        lines[event.currency].append(
            CashLine(
                at=ordered[0].entry.created_at,
                kind=event.kind,
                description=_event_description(event, distributions),
                available_minor=available,
                held_minor=held,
                balance_minor=balance[event.currency],
                entries=tuple(sorted({p.entry_id for p in inside})),
                detail="; ".join(dict.fromkeys(p.entry.get_kind_display() for p in ordered)),
            )
        )
    return dict(lines)


@dataclass(frozen=True)
class TradeLine:
    trade: Trade
    side: str  # bought | sold
    fee_minor: int
    cash_minor: int  # bought: −(gross + fee); sold: gross − fee
    reversed: bool

    @property
    def status(self) -> str:
        return "Reversed" if self.reversed else SETTLEMENT_WORDS.get(self.trade.status, self.trade.status)


@dataclass(frozen=True)
class PurchaseLine:
    order: PrimaryOrder
    refunded: bool

    @property
    def status(self) -> str:
        return "Refunded" if self.refunded else SETTLEMENT_WORDS.get(self.order.status, self.order.status)


def received_at(payment: DistributionPayment) -> datetime.datetime | None:
    """When the payment reached the investor's cash: the pay run, or the release of a held one."""
    if payment.status == P.RELEASED:
        return payment.decided_at
    if payment.status == P.PAID:
        return payment.paid_at
    return None


def _received_in(*, user, period: Period):
    return (
        DistributionPayment.objects.filter(investor=user, treasury=False)
        .filter(
            Q(status=P.PAID, paid_at__gte=period.start, paid_at__lt=period.end)
            | Q(status=P.RELEASED, decided_at__gte=period.start, decided_at__lt=period.end)
        )
        .select_related("distribution", "distribution__asset")
    )


def _held_at(*, user, at: datetime.datetime):
    """Payments held (compliance stopped them) at `at`: held then and not yet released or returned."""
    return (
        DistributionPayment.objects.filter(investor=user, treasury=False, paid_at__lte=at)
        .filter(Q(status=P.HELD) | Q(status__in=[P.RELEASED, P.RETURNED], decided_at__gt=at))
        .select_related("distribution", "distribution__asset")
        .order_by("paid_at", "pk")
    )


@dataclass
class StatementSection:
    """Everything of one currency."""

    currency: str
    opening_cash: Cash = field(default_factory=Cash)
    closing_cash: Cash = field(default_factory=Cash)
    cash_lines: list[CashLine] = field(default_factory=list)
    opening_positions: list[Position] = field(default_factory=list)
    closing_positions: list[Position] = field(default_factory=list)
    purchases: list[PurchaseLine] = field(default_factory=list)
    trades: list[TradeLine] = field(default_factory=list)
    distributions: list[DistributionPayment] = field(default_factory=list)
    held_payouts: list[DistributionPayment] = field(default_factory=list)

    @property
    def money_in_minor(self) -> int:
        return sum(line.change_minor for line in self.cash_lines if line.change_minor > 0)

    @property
    def money_out_minor(self) -> int:
        return sum(line.change_minor for line in self.cash_lines if line.change_minor < 0)

    @staticmethod
    def _value(positions: list[Position]) -> int:
        return sum(p.value_minor or 0 for p in positions)

    @property
    def opening_value_minor(self) -> int:
        return self._value(self.opening_positions)

    @property
    def closing_value_minor(self) -> int:
        return self._value(self.closing_positions)

    @property
    def purchase_fees_minor(self) -> int:
        return sum(p.order.fee_minor for p in self.purchases if not p.refunded)

    @property
    def trading_fees_minor(self) -> int:
        return sum(t.fee_minor for t in self.trades if not t.reversed)

    @property
    def fees_minor(self) -> int:
        return self.purchase_fees_minor + self.trading_fees_minor

    def distribution_total(self, name: str) -> int:
        return sum(getattr(p, name) for p in self.distributions)

    @property
    def is_empty(self) -> bool:
        return not (
            self.opening_cash.total_minor
            or self.closing_cash.total_minor
            or self.cash_lines
            or self.opening_positions
            or self.closing_positions
            or self.purchases
            or self.trades
            or self.distributions
            or self.held_payouts
        )


@dataclass
class MonthlyStatement:
    investor: Any
    period: Period
    generated_at: datetime.datetime
    sections: list[StatementSection]


def monthly_statement(*, user, year: int, month: int, now: datetime.datetime | None = None) -> MonthlyStatement:
    """The investor's statement of the month (to date, for the current month). Raises
    PeriodError for a month outside the statements' range."""
    now = now or timezone.now()
    period = month_period(year=year, month=month, now=now)
    sections: dict[str, StatementSection] = {}

    def section(currency: str) -> StatementSection:
        if currency not in sections:
            sections[currency] = StatementSection(currency)
        return sections[currency]

    opening = cash_at(user=user, at=period.opening_at)
    for currency, cash in opening.items():
        section(currency).opening_cash = cash
    for currency, cash in cash_at(user=user, at=period.closing_at).items():
        section(currency).closing_cash = cash
    for currency, lines in cash_lines(user=user, period=period, opening=opening).items():
        section(currency).cash_lines = lines
    for position in positions_at(user=user, at=period.opening_at):
        section(position.currency).opening_positions.append(position)
    for position in positions_at(user=user, at=period.closing_at):
        section(position.currency).closing_positions.append(position)
    orders = (
        PrimaryOrder.objects.filter(investor=user, created_at__gte=period.start, created_at__lt=period.end)
        .select_related("asset")
        .order_by("created_at", "pk")
    )
    for order in orders:
        refunded = order.refunded_at is not None and order.refunded_at <= period.closing_at
        section(order.currency).purchases.append(PurchaseLine(order, refunded))
    trades = (
        Trade.objects.filter(Q(buyer=user) | Q(seller=user))
        .filter(created_at__gte=period.start, created_at__lt=period.end)
        .select_related("asset")
        .order_by("created_at", "pk")
    )
    for trade in trades:
        reversed_ = trade.reversed_at is not None and trade.reversed_at <= period.closing_at
        if trade.buyer_id == user.pk:
            line = TradeLine(trade, "bought", trade.buyer_fee_minor, -trade.buyer_cost_minor, reversed_)
        else:
            line = TradeLine(trade, "sold", trade.seller_fee_minor, trade.seller_net_minor, reversed_)
        section(trade.currency).trades.append(line)
    received = sorted(_received_in(user=user, period=period), key=lambda p: (received_at(p), p.pk))
    for payment in received:
        section(payment.distribution.currency).distributions.append(payment)
    for payment in _held_at(user=user, at=period.closing_at):
        section(payment.distribution.currency).held_payouts.append(payment)
    kept = [sections[c] for c in sorted(sections) if not sections[c].is_empty]
    return MonthlyStatement(user, period, now, kept)


# -- the annual tax summary ------------------------------------------------------------------


@dataclass(frozen=True)
class IncomeLine:
    """Distribution payments of one asset and kind received in the year."""

    asset: Asset
    kind: str
    kind_label: str
    payments: int
    gross_minor: int
    withheld_minor: int
    net_minor: int


@dataclass(frozen=True)
class RealisedLine:
    asset: Asset
    trade: Trade
    realised: Realised

    @property
    def at(self) -> datetime.datetime:
        return self.realised.disposal.at


@dataclass
class TaxSection:
    currency: str
    income: list[IncomeLine] = field(default_factory=list)
    capital: list[IncomeLine] = field(default_factory=list)
    realised: list[RealisedLine] = field(default_factory=list)

    @staticmethod
    def _sum(lines: Sequence[IncomeLine], name: str) -> int:
        return sum(getattr(line, name) for line in lines)

    def income_total(self, name: str) -> int:
        return self._sum(self.income, name)

    def capital_total(self, name: str) -> int:
        return self._sum(self.capital, name)

    @property
    def withheld_minor(self) -> int:
        return self.income_total("withheld_minor") + self.capital_total("withheld_minor")

    @property
    def proceeds_minor(self) -> int:
        return sum(r.realised.proceeds_minor for r in self.realised)

    @property
    def cost_minor(self) -> int:
        return sum(r.realised.cost_minor for r in self.realised)

    @property
    def gain_minor(self) -> int:
        return sum(r.realised.gain_minor for r in self.realised)

    @property
    def gains_minor(self) -> int:
        return sum(r.realised.gain_minor for r in self.realised if r.realised.gain_minor > 0)

    @property
    def losses_minor(self) -> int:
        return sum(r.realised.gain_minor for r in self.realised if r.realised.gain_minor < 0)


@dataclass
class TaxSummary:
    investor: Any
    year: int
    period: Period
    generated_at: datetime.datetime
    sections: list[TaxSection]


def _income_lines(payments: Iterable[DistributionPayment]) -> tuple[list[IncomeLine], list[IncomeLine]]:
    grouped: dict[tuple[int, str], list[DistributionPayment]] = defaultdict(list)
    for p in payments:
        grouped[(p.distribution.asset_id, p.distribution.kind)].append(p)
    income: list[IncomeLine] = []
    capital: list[IncomeLine] = []
    for group in grouped.values():
        d = group[0].distribution
        line = IncomeLine(
            d.asset,
            d.kind,
            d.get_kind_display(),
            len(group),
            sum(p.gross_minor for p in group),
            sum(p.withheld_minor for p in group),
            sum(p.net_minor for p in group),
        )
        (capital if d.kind in CAPITAL_KINDS else income).append(line)
    order = [k for k, _ in K.choices]

    def key(line: IncomeLine):
        return (line.asset.name.casefold(), line.asset.pk, order.index(line.kind))

    return sorted(income, key=key), sorted(capital, key=key)


def realised_for(*, user, until: datetime.datetime) -> list[tuple[Asset, Trade, Realised]]:
    """Every sale of the investor up to `until` (reversed trades left out) matched first in,
    first out against their acquisitions: primary purchases not refunded (cost: gross +
    fee) and trades bought not reversed (cost: gross + the buyer's fee)."""
    lots: dict[int, list[Acquisition]] = defaultdict(list)
    orders = PrimaryOrder.objects.filter(investor=user, created_at__lte=until, refunded_at__isnull=True).exclude(
        status=PrimaryOrder.Status.REFUNDED
    )
    for order in orders.order_by("created_at", "pk"):
        lots[order.asset_id].append(
            Acquisition(order.created_at, order.quantity, order.gross_minor + order.fee_minor, f"order {order.pk}", 0)
        )
    trades = Trade.objects.filter(created_at__lte=until, reversed_at__isnull=True).exclude(status=Trade.Status.REVERSED)
    for trade in trades.filter(buyer=user).order_by("created_at", "pk"):
        lots[trade.asset_id].append(
            Acquisition(trade.created_at, trade.quantity, trade.buyer_cost_minor, f"trade {trade.pk}", 1)
        )
    sales = list(trades.filter(seller=user).select_related("asset", "asset__offering", "asset__market"))
    by_asset: dict[int, list[Trade]] = defaultdict(list)
    for trade in sales:
        by_asset[trade.asset_id].append(trade)
    rows = []
    for asset_id, asset_sales in by_asset.items():
        trades_by_ref = {f"trade {t.pk}": t for t in asset_sales}
        disposals = [Disposal(t.created_at, t.quantity, t.seller_net_minor, f"trade {t.pk}", t.pk) for t in asset_sales]
        for realised in fifo_realised(lots[asset_id], disposals):
            trade = trades_by_ref[realised.disposal.ref]
            rows.append((trade.asset, trade, realised))
    return rows


def tax_summary(*, user, year: int, now: datetime.datetime | None = None) -> TaxSummary:
    """Income received in the year by asset and kind (capital returned apart), withholding
    totals, and gains and losses realised by the year's sales. Raises PeriodError for a year
    outside the statements' range."""
    now = now or timezone.now()
    period = year_period(year=year, now=now)
    sections: dict[str, TaxSection] = {}
    payments: dict[str, list[DistributionPayment]] = defaultdict(list)
    for payment in _received_in(user=user, period=period):
        payments[payment.distribution.currency].append(payment)
    for currency, group in payments.items():
        section = sections.setdefault(currency, TaxSection(currency))
        section.income, section.capital = _income_lines(group)
    for asset, trade, realised in realised_for(user=user, until=period.closing_at):
        if period.contains(trade.created_at):
            currency = trade.currency
            sections.setdefault(currency, TaxSection(currency)).realised.append(RealisedLine(asset, trade, realised))
    for section in sections.values():
        section.realised.sort(key=lambda r: (r.at, r.trade.pk))
    return TaxSummary(user, year, period, now, [sections[c] for c in sorted(sections)])


# -- CSV ---------------------------------------------------------------------------------------

MONTHLY_CSV_HEADER = [
    "section",
    "date",
    "currency",
    "asset",
    "unit_name",
    "description",
    "side_or_kind",
    "quantity",
    "price",
    "price_basis",
    "gross",
    "fee",
    "withheld",
    "net",
    "available_change",
    "held_change",
    "amount",
    "balance",
    "status",
    "reference",
]
TAX_CSV_HEADER = [
    "section",
    "date",
    "currency",
    "asset",
    "unit_name",
    "kind",
    "quantity",
    "payments",
    "gross",
    "withheld",
    "net",
    "proceeds",
    "cost_basis_incl_fees",
    "gain_or_loss",
    "uncovered_units",
    "reference",
]


def _money(minor: int | None) -> str:
    return "" if minor is None else minor_to_major_text(minor)


def _row(header: list[str], **values) -> list[str]:
    """A CSV row in the header's order; text that came from people (asset names, reasons)
    goes through the portfolio CSV's formula guard."""
    unknown = set(values) - set(header)
    if unknown:
        raise KeyError(unknown)
    for name in ("asset", "unit_name", "description", "reference"):
        if name in values:
            values[name] = _cell(values[name])
    return ["" if values.get(name) is None else str(values[name]) for name in header]


def write_monthly_csv(statement: MonthlyStatement, out) -> None:
    writer = csv.writer(out)
    h = MONTHLY_CSV_HEADER
    writer.writerow(h)
    period = statement.period
    opening_day, closing_day = period.start.date().isoformat(), period.last_day.isoformat()
    for s in statement.sections:
        c = s.currency
        for day, name, positions in (
            (opening_day, "position_opening", s.opening_positions),
            (closing_day, "position_closing", s.closing_positions),
        ):
            for p in positions:
                writer.writerow(
                    _row(
                        h,
                        section=name,
                        date=day,
                        currency=c,
                        asset=p.asset.name,
                        unit_name=p.asset.unit_name,
                        quantity=p.units,
                        price=_money(p.price_minor),
                        price_basis=p.price_basis,
                        amount=_money(p.value_minor),
                    )
                )
        writer.writerow(
            _row(
                h,
                section="cash_opening",
                date=opening_day,
                currency=c,
                available_change=_money(s.opening_cash.available_minor),
                held_change=_money(s.opening_cash.held_minor),
                balance=_money(s.opening_cash.total_minor),
            )
        )
        for line in s.cash_lines:
            writer.writerow(
                _row(
                    h,
                    section="cash_movement",
                    date=line.at.isoformat(),
                    currency=c,
                    description=f"{line.description} ({line.detail})" if line.detail else line.description,
                    side_or_kind=line.kind,
                    available_change=_money(line.available_minor),
                    held_change=_money(line.held_minor),
                    amount=_money(line.change_minor),
                    balance=_money(line.balance_minor),
                    reference=" ".join(f"entry {e}" for e in line.entries),
                )
            )
        writer.writerow(
            _row(
                h,
                section="cash_closing",
                date=closing_day,
                currency=c,
                available_change=_money(s.closing_cash.available_minor),
                held_change=_money(s.closing_cash.held_minor),
                balance=_money(s.closing_cash.total_minor),
            )
        )
        for pl in s.purchases:
            o = pl.order
            writer.writerow(
                _row(
                    h,
                    section="purchase",
                    date=o.created_at.isoformat(),
                    currency=c,
                    asset=o.asset.name,
                    unit_name=o.asset.unit_name,
                    side_or_kind="bought",
                    quantity=o.quantity,
                    price=_money(o.price_per_fraction_minor),
                    gross=_money(o.gross_minor),
                    fee=_money(o.fee_minor),
                    amount=_money(-o.total_minor),
                    status=pl.status,
                    reference=str(o.public_id),
                )
            )
        for tl in s.trades:
            t = tl.trade
            writer.writerow(
                _row(
                    h,
                    section="trade",
                    date=t.created_at.isoformat(),
                    currency=c,
                    asset=t.asset.name,
                    unit_name=t.asset.unit_name,
                    side_or_kind=tl.side,
                    quantity=t.quantity,
                    price=_money(t.price_minor),
                    gross=_money(t.gross_minor),
                    fee=_money(tl.fee_minor),
                    amount=_money(tl.cash_minor),
                    status=tl.status,
                    reference=str(t.public_id),
                )
            )
        for name, amount in (
            ("fees_purchases", s.purchase_fees_minor),
            ("fees_trading", s.trading_fees_minor),
            ("fees_total", s.fees_minor),
        ):
            writer.writerow(_row(h, section=name, date=closing_day, currency=c, fee=_money(amount)))
        for payment in s.distributions:
            d = payment.distribution
            when = received_at(payment)
            writer.writerow(
                _row(
                    h,
                    section="distribution",
                    date=when.isoformat() if when else "",
                    currency=c,
                    asset=d.asset.name,
                    unit_name=d.asset.unit_name,
                    side_or_kind=d.kind,
                    quantity=payment.units,
                    gross=_money(payment.gross_minor),
                    withheld=_money(payment.withheld_minor),
                    net=_money(payment.net_minor),
                    status=payment.get_status_display(),
                    reference=str(payment.public_id),
                )
            )
        for payment in s.held_payouts:
            d = payment.distribution
            writer.writerow(
                _row(
                    h,
                    section="held_payout",
                    date=payment.paid_at.isoformat() if payment.paid_at else "",
                    currency=c,
                    asset=d.asset.name,
                    unit_name=d.asset.unit_name,
                    side_or_kind=d.kind,
                    quantity=payment.units,
                    gross=_money(payment.gross_minor),
                    description=payment.hold_reason,
                    status="Held",
                    reference=str(payment.public_id),
                )
            )


def write_tax_csv(summary: TaxSummary, out) -> None:
    writer = csv.writer(out)
    h = TAX_CSV_HEADER
    writer.writerow(h)
    last_day = summary.period.last_day.isoformat()
    for s in summary.sections:
        c = s.currency
        for name, lines in (("income", s.income), ("capital_returned", s.capital)):
            for line in lines:
                writer.writerow(
                    _row(
                        h,
                        section=name,
                        date=last_day,
                        currency=c,
                        asset=line.asset.name,
                        unit_name=line.asset.unit_name,
                        kind=line.kind,
                        payments=line.payments,
                        gross=_money(line.gross_minor),
                        withheld=_money(line.withheld_minor),
                        net=_money(line.net_minor),
                    )
                )
        writer.writerow(
            _row(h, section="withholding_total", date=last_day, currency=c, withheld=_money(s.withheld_minor))
        )
        for r in s.realised:
            writer.writerow(
                _row(
                    h,
                    section="realised",
                    date=r.at.isoformat(),
                    currency=c,
                    asset=r.asset.name,
                    unit_name=r.asset.unit_name,
                    quantity=r.realised.units,
                    proceeds=_money(r.realised.proceeds_minor),
                    cost_basis_incl_fees=_money(r.realised.cost_minor),
                    gain_or_loss=_money(r.realised.gain_minor),
                    uncovered_units=r.realised.uncovered_units or "",
                    reference=str(r.trade.public_id),
                )
            )
        writer.writerow(
            _row(
                h,
                section="realised_total",
                date=last_day,
                currency=c,
                proceeds=_money(s.proceeds_minor),
                cost_basis_incl_fees=_money(s.cost_minor),
                gain_or_loss=_money(s.gain_minor),
            )
        )
