"""Reads of the primary market. Every page's queries are a constant number, whatever the
number of orders, holdings or postings (tests assert it)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.db import connection
from django.db.models import Case, Count, F, Max, OuterRef, Q, QuerySet, Subquery, Sum, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.http import Http404

from assets.catalogue_cache import VERSION_KEY as CATALOGUE_VERSION
from assets.models import Asset
from compliance.eligibility import (
    Direction,
    EligibilityResult,
    RuleFailure,
    TransferQuestion,
    transfer_check,
    transfer_check_many,
)
from config import fragment_cache

from .ledger import fee_for
from .locks import db_values
from .models import Holding, LedgerAccount, Offering, Posting, PrimaryOrder, Valuation, Withdrawal

if TYPE_CHECKING:
    from .market_data import PortfolioTotal

A = LedgerAccount.Kind
OS = PrimaryOrder.Status


@dataclass(frozen=True)
class Quote:
    quantity: int
    gross_minor: int
    fee_minor: int
    total_minor: int
    currency: str
    fee_bps: int


def order_quote(*, offering: Offering, quantity: int) -> Quote:
    """What `quantity` fractions cost with the fee; the same arithmetic as order_place."""
    gross = quantity * offering.price_per_fraction_minor
    fee = fee_for(gross_minor=gross, fee_bps=offering.fee_bps)
    return Quote(quantity, gross, fee, gross + fee, offering.currency, offering.fee_bps)


def offering_get_for_asset(*, asset_public_id) -> Offering:
    """The offering of a live asset, or 404."""
    # No issuer join: none of the offering views shows the issuer (bench/purchase: the
    # join cost the offering page about a quarter of its CPU).
    offering = (
        Offering.objects.select_related("asset").filter(asset__public_id=asset_public_id, asset__status="live").first()
    )
    if offering is None:
        raise Http404("No offering for this asset.")
    return offering


# What purchases change on an offering (every one, by a raw UPDATE that bypasses save()),
# whether its asset is still live, and what its status on the page is computed from (the
# window): read on every view of the page. Written out: one indexed lookup by the asset's
# public id, a tenth of the ORM's cost for the same statement (bench/purchase).
_OFFERING_LIVE = {"fractions_sold", "status", "fractions_for_sale", "opens_at", "closes_at"}
_OFFERING_LIVE_FIELDS = [  # in the model's order, as Model.from_db takes them
    f for f in Offering._meta.concrete_fields if f.attname in {"id", "asset_id", *_OFFERING_LIVE}
]
_OFFERING_LIVE_SQL = (
    f"SELECT {', '.join(f'o.{f.column}' for f in _OFFERING_LIVE_FIELDS)} FROM marketplace_offering o "
    "JOIN assets_asset a ON a.id = o.asset_id WHERE a.public_id = %s AND a.status = %s"
)
_OFFERING_LIVE_NAMES = [f.attname for f in _OFFERING_LIVE_FIELDS]


def offering_live(*, asset_public_id) -> Offering:
    """The live figures of a live asset's offering (404 otherwise), read from the database
    every time: an `Offering` with only the fields above loaded (as `.only()` would), enough
    for `remaining` and `current_status()` (`offering_get_for_page` adds the terms from
    the cache)."""
    with connection.cursor() as cursor:
        public_id = Asset._meta.get_field("public_id").get_db_prep_value(asset_public_id, connection)
        cursor.execute(_OFFERING_LIVE_SQL, [public_id, Asset.Status.LIVE])
        row = cursor.fetchone()
    if row is None:
        raise Http404("No offering for this asset.")
    values = db_values(row, _OFFERING_LIVE_FIELDS, key="offering-live")
    return Offering.from_db(connection.alias, _OFFERING_LIVE_NAMES, values)


def offering_sold_version_key(asset_id: int) -> str:
    """The version (config/fragment_cache.py) of what purchases change on an asset's
    offering: the fractions sold and the sold-out status. Every other write of an offering
    or its asset goes through save() and replaces the catalogue's version."""
    return f"marketplace:offering:{asset_id}:sold"


def offering_sold_changed(asset_id: int) -> None:
    """A purchase took fractions, under the offering's row lock: a new version once it
    commits (no network call while the lock is held)."""
    fragment_cache.bump_after_commit(offering_sold_version_key(asset_id))


# An asset's public id → its primary key, in this process: neither ever changes, so the
# offering page finds its cache entry's versions without a query. Bounded: cleared when full.
_ASSET_IDS: dict[Any, int] = {}
_ASSET_IDS_MAX = 10_000


def asset_id_for(*, asset_public_id) -> int:
    """The primary key of the asset with this public id, whatever its status (404 if there
    is none); a query the first time this process is asked only."""
    pk = _ASSET_IDS.get(asset_public_id)
    if pk is None:
        pk = Asset.objects.filter(public_id=asset_public_id).values_list("pk", flat=True).first()
        if pk is None:
            raise Http404("No offering for this asset.")
        if len(_ASSET_IDS) >= _ASSET_IDS_MAX:
            _ASSET_IDS.clear()
        _ASSET_IDS[asset_public_id] = pk
    return pk


def offering_get_for_page(*, asset_public_id) -> Offering:
    """`offering_get_for_asset` for the pages that show an offering to anyone (the
    offering page, its quote): the terms and the asset from the cache, valid while no
    asset or offering has been saved since (the catalogue's version: every write of them
    but a purchase's goes through save()); what purchases change, the fractions sold and
    the status, and whether the asset is still live, read from the database every time
    (`offering_live`)."""
    live = offering_live(asset_public_id=asset_public_id)
    offering = fragment_cache.get_or_compute(
        f"marketplace:offering:{asset_public_id}",
        [CATALOGUE_VERSION],
        lambda: _offering_or_none(asset_public_id),
        settings.CATALOGUE_CACHE_SECONDS,
    )
    if offering is None or offering.pk != live.pk:
        raise Http404("No offering for this asset.")
    for name in _OFFERING_LIVE:
        setattr(offering, name, getattr(live, name))
    return offering


def _offering_or_none(asset_public_id) -> Offering | None:
    try:
        return offering_get_for_asset(asset_public_id=asset_public_id)
    except Http404:
        return None


def purchase_review_needed(*, user, asset) -> bool:
    """Whether buying `asset` is the investor's first purchase of it, which they review and
    confirm (what, how many, price, fee, total, and that the asset is illiquid and can lose
    value) before the order is placed: no primary order of it and no units of it yet."""
    if not user.is_authenticated:
        return True
    bought = PrimaryOrder.objects.filter(investor=user, asset=asset)
    held = Holding.objects.filter(user_holdings_q(user), asset=asset)
    return not (bought.exists() or held.exists())


def offering_for_asset(*, asset) -> Offering | None:
    return Offering.objects.filter(asset=asset).first()


def offering_refusal(*, offering: Offering, status: str) -> RuleFailure | None:
    """How a buyer is told that the offering sells nothing in `status` (from
    `Offering.current_status`, or `window_status` where only the window matters)."""
    if status == Offering.Status.SOLD_OUT:
        return RuleFailure("sold_out", "This offering is sold out.")
    if status == Offering.Status.CLOSED:
        return RuleFailure("offering_closed", "This offering is closed.")
    if status == Offering.Status.UPCOMING:
        when = f" on {offering.opens_at:%d %b %Y %H:%M} UTC" if offering.opens_at else ""
        return RuleFailure("offering_not_open", f"This offering opens{when}.")
    return None


def purchase_limit_failures(*, offering: Offering, quantity: int) -> list[RuleFailure]:
    """What stops buying `quantity` fractions of this offering: supply, then the minimum
    and the maximum per purchase. The quote warns with all of them as the buyer types;
    order_place refuses with the first."""
    failures = []
    if quantity > offering.remaining:
        failures.append(
            RuleFailure(
                "insufficient_supply", f"Only {offering.remaining:,} fractions are left; you asked for {quantity:,}."
            )
        )
    if quantity < offering.min_purchase:
        failures.append(
            RuleFailure("below_min_purchase", f"The minimum purchase is {offering.min_purchase:,} fractions.")
        )
    if offering.max_purchase is not None and quantity > offering.max_purchase:
        failures.append(
            RuleFailure("above_max_purchase", f"The maximum purchase is {offering.max_purchase:,} fractions.")
        )
    return failures


# -- the eligibility engine, with our books handed in ------------------------------------


def _holder_rows(asset_ids) -> QuerySet[Holding]:
    """Holding rows that count as holders: settled or reserved units."""
    return Holding.objects.filter(asset_id__in=list(asset_ids)).filter(Q(quantity__gt=0) | Q(pending_quantity__gt=0))


def holder_count(*, asset) -> int:
    return _holder_rows([asset.pk]).count()


_holder_count = holder_count  # eligibility_check's parameter of the same name shadows it


def holder_counts(*, asset_ids) -> dict[int, int]:
    """{asset_id: number of holders}; assets nobody holds are left out."""
    return dict(_holder_rows(asset_ids).values("asset_id").annotate(n=Count("pk")).values_list("asset_id", "n"))


_READ = object()


def eligibility_check(
    *, investor, asset, quantity: int, direction: Direction, at=None, holding=_READ, holder_count: int | None = None
) -> EligibilityResult:
    """`compliance.eligibility.transfer_check` with the facts from our books: the
    investor's holding (pass the row when the caller has just locked it; read here
    otherwise) and the asset's holder count (pass it when the caller counted under its
    locks and keeps it current, as matching does; counted here otherwise, and only for an
    asset that caps its holders: for any other the count decides nothing)."""
    if holding is _READ:
        holding = Holding.objects.filter(investor=investor, asset=asset).first()
    if holder_count is None:
        holder_count = _holder_count(asset=asset) if asset.max_holders is not None else 0
    return transfer_check(
        investor=investor,
        asset=asset,
        quantity=quantity,
        direction=direction,
        at=at,
        holding=holding,
        holder_count=holder_count,
    )


def eligibility_check_many(*, investor, questions: list[TransferQuestion], at=None) -> list[EligibilityResult]:
    """`eligibility_check` for many assets in four queries whatever their number (the
    investor's holdings in them, the holder counts, the investor's standing): for pages
    that explain a button per asset. Answers in the order of `questions`."""
    if not questions:
        return []
    # compliance types a question's asset as `object` (it does not import assets); ours are Assets.
    asset_ids = {cast(Asset, q.asset).pk for q in questions}
    holdings = {h.asset_id: h for h in Holding.objects.filter(investor=investor, asset_id__in=list(asset_ids))}
    counts = holder_counts(asset_ids=asset_ids)
    return transfer_check_many(
        investor=investor,
        at=at,
        questions=[
            replace(
                q,
                holding=holdings.get(cast(Asset, q.asset).pk),
                holder_count=counts.get(cast(Asset, q.asset).pk, 0),
            )
            for q in questions
        ],
    )


@dataclass(frozen=True)
class OfferingStats:
    offering: Offering
    raised_minor: int  # settled
    reserved_minor: int  # placed, not settled yet
    fractions_settled: int
    holders: int


def offering_stats(*, asset_ids) -> dict[int, OfferingStats]:
    """Progress of the offerings of `asset_ids` (issuer views), in three queries."""
    offerings = {o.asset_id: o for o in Offering.objects.filter(asset_id__in=list(asset_ids))}
    if not offerings:
        return {}
    money = {
        row["asset_id"]: row
        for row in PrimaryOrder.objects.filter(asset_id__in=offerings)
        .values("asset_id")
        .annotate(
            raised=Sum("gross_minor", filter=Q(status=OS.SETTLED)),
            reserved=Sum("gross_minor", filter=Q(status__in=[OS.RESERVED, OS.FAILED])),
            settled_units=Sum("quantity", filter=Q(status=OS.SETTLED)),
        )
    }
    holders = holder_counts(asset_ids=offerings)
    result = {}
    for asset_id, offering in offerings.items():
        row: Mapping[str, Any] = money.get(asset_id, {})
        result[asset_id] = OfferingStats(
            offering,
            row.get("raised") or 0,
            row.get("reserved") or 0,
            row.get("settled_units") or 0,
            holders.get(asset_id, 0),
        )
    return result


def order_get_for_user(*, public_id, user) -> PrimaryOrder:
    """The investor's own order (staff with the back office's order permission see any);
    anybody else's is a 404."""
    qs = PrimaryOrder.objects.select_related("asset", "offering", "chain_tx")
    try:
        order = qs.get(public_id=public_id)
    except (PrimaryOrder.DoesNotExist, ValueError):
        raise Http404 from None
    if order.investor_id != user.pk and not (user.is_staff and user.has_perm("marketplace.view_primaryorder")):
        raise Http404
    return order


@dataclass(frozen=True)
class CashBalance:
    currency: str
    available_minor: int
    held_minor: int


def cash_balances(*, user) -> list[CashBalance]:
    rows: dict[str, dict] = {}
    for account in LedgerAccount.objects.filter(user=user, kind__in=[A.INVESTOR_AVAILABLE, A.INVESTOR_HELD]):
        rows.setdefault(account.currency, {})[account.kind] = account.balance
    return [CashBalance(c, r.get(A.INVESTOR_AVAILABLE, 0), r.get(A.INVESTOR_HELD, 0)) for c, r in sorted(rows.items())]


def available_cash(*, user, currency: str) -> int:
    account = LedgerAccount.objects.filter(user=user, kind=A.INVESTOR_AVAILABLE, currency=currency).first()
    return account.balance if account else 0


@dataclass(frozen=True)
class PortfolioLine:
    holding: Holding
    cost_basis_minor: int
    last_price_minor: int | None
    value_minor: int | None
    currency: str
    # The latest published valuation per fraction (None: never valued), shown beside the last price.
    valuation_minor: int | None = None
    valuation_as_of: datetime.date | None = None

    # The units of the holding, as the portfolio shows them (Holding says what each means).
    @property
    def settled(self) -> int:
        return self.holding.quantity

    @property
    def pending(self) -> int:
        """Bought, paid for, not delivered on chain yet (primary orders and trades)."""
        return self.holding.pending_quantity

    @property
    def locked_in_orders(self) -> int:
        return self.holding.locked_quantity

    @property
    def settling_out(self) -> int:
        """Sold in trades whose delivery has not confirmed yet."""
        return self.holding.pending_out_quantity

    @property
    def available_to_sell(self) -> int:
        return self.holding.available_to_sell


# Holdings per page of the portfolio: the page renders one row per holding, so an
# investor with thousands of them would pay for thousands of rows (bench/scaling).
HOLDINGS_PER_PAGE = 50


def portfolio_holdings(*, user) -> QuerySet[Holding]:
    """The holdings the portfolio lists (settled or pending units), in the order their
    assets were listed: a page of them is read from the (investor, asset) index, where
    ordering by the asset's name would join and sort all of them on every view."""
    return (
        Holding.objects.filter(user_holdings_q(user))
        .select_related("asset", "asset__offering", "asset__market")
        .order_by("asset_id")
    )


def portfolio_lines(*, user, holdings=None) -> list[PortfolioLine]:
    """Holdings with settled or pending units (`holdings`, a page of `portfolio_holdings`;
    all of them when None), their split (settled, pending, locked in
    sell orders, settling out, available to sell), cost basis (what was paid for settled
    units in primary purchases: price plus the platform fee) and value at the last price (the last
    secondary-market trade, else the offering price)."""
    holdings = list(portfolio_holdings(user=user) if holdings is None else holdings)
    costs = dict(
        PrimaryOrder.objects.filter(
            investor=user, status=OS.SETTLED, asset_id__in=sorted({h.asset_id for h in holdings})
        )
        .values("asset_id")
        .annotate(cost=Sum("total_minor"))
        .values_list("asset_id", "cost")
    )
    from .market_data import latest_valuations  # market_data reads trading_selectors, which reads this module

    valued = latest_valuations(asset_ids=[h.asset_id for h in holdings])
    lines = []
    for h in holdings:
        valuation = valued.get(h.asset_id)
        offering = getattr(h.asset, "offering", None)
        market = getattr(h.asset, "market", None)
        if market is not None and market.last_price_minor is not None:
            price: int | None = market.last_price_minor
        else:
            price = offering.price_per_fraction_minor if offering else None
        lines.append(
            PortfolioLine(
                h,
                costs.get(h.asset_id, 0),
                price,
                price * h.quantity if price is not None else None,
                offering.currency if offering else h.asset.currency,
                valuation.value_per_fraction_minor if valuation else None,
                valuation.as_of if valuation else None,
            )
        )
    return lines


def portfolio_totals(*, user) -> list[PortfolioTotal]:
    """Totals per currency of all the investor's holdings (every page of them), each valued
    as `portfolio_lines` values it: at the last price, else the offering price; and at the
    latest published valuation (`unvalued`: holdings without one, left out of that
    total). One query, summed in the database."""
    from .market_data import PortfolioTotal  # market_data reads trading_selectors, which reads this module

    latest = (
        Valuation.objects.filter(asset_id=OuterRef("asset_id"), status=Valuation.Status.PUBLISHED)
        .order_by("-as_of", "-pk")
        .values("value_per_fraction_minor")[:1]
    )
    rows = (
        Holding.objects.filter(user_holdings_q(user))
        .annotate(
            line_currency=Coalesce("asset__offering__currency", "asset__currency"),
            price=Coalesce("asset__market__last_price_minor", "asset__offering__price_per_fraction_minor"),
            valuation=Subquery(latest),
        )
        .values("line_currency")
        .annotate(
            value=Coalesce(Sum(F("price") * F("quantity")), 0),
            valued=Coalesce(Sum(F("valuation") * F("quantity")), 0),
            unvalued=Count("pk", filter=Q(valuation__isnull=True)),
        )
        .order_by("line_currency")
    )
    return [PortfolioTotal(r["line_currency"], r["value"], r["valued"], r["unvalued"]) for r in rows]


def user_holdings_q(user) -> Q:
    return Q(investor=user) & (Q(quantity__gt=0) | Q(pending_quantity__gt=0))


def holding_get_for_user(*, pk: int, user) -> Holding:
    holding = Holding.objects.select_related("asset").filter(pk=pk, investor=user).first()
    if holding is None:
        raise Http404
    return holding


def orders_for(*, user) -> QuerySet[PrimaryOrder]:
    return PrimaryOrder.objects.filter(investor=user).select_related("asset", "chain_tx").order_by("-created_at", "-pk")


def movements_for(*, user) -> QuerySet[Posting]:
    """The investor's ledger postings (available and held), newest first."""
    return (
        Posting.objects.filter(account__user=user, account__kind__in=[A.INVESTOR_AVAILABLE, A.INVESTOR_HELD])
        .select_related("entry", "entry__order", "entry__order__asset", "entry__order__chain_tx", "account")
        .order_by("-entry__created_at", "-pk")
    )


# The business event a journal entry belongs to: its purchase, trade, buy order,
# withdrawal or deposit (each entry names at most one of them).
_EVENT_FIELDS = ("order_id", "trade_id", "trade_order_id", "withdrawal_id", "deposit_id")


@dataclass
class CashEvent:
    """One business event in the investor's cash (a deposit, a purchase, a trade, a buy
    order, a withdrawal), summing its ledger lines: `available_minor` is what it changed in
    the cash available, `held_minor` what it still holds (negative: paid from held cash)."""

    kind: str  # deposit, purchase, trade_bought, trade_sold, buy_order, withdrawal, other
    currency: str
    postings: list[Posting]
    available_minor: int = 0
    held_minor: int = 0

    @property
    def entry(self):
        """The event's latest entry (postings are newest first)."""
        return self.postings[0].entry

    @property
    def first_at(self):
        return self.postings[-1].entry.created_at

    @property
    def last_at(self):
        return self.postings[0].entry.created_at


def _event_key(entry) -> tuple:
    for name in _EVENT_FIELDS:
        value = getattr(entry, name)
        if value is not None:
            return (name, value)
    return ("entry_id", entry.pk)


def _event_kind(entry, user) -> str:
    if entry.order_id is not None:
        return "purchase"
    if entry.trade_id is not None:
        return "trade_bought" if entry.trade.buyer_id == user.pk else "trade_sold"
    if entry.trade_order_id is not None:
        return "buy_order"
    if entry.withdrawal_id is not None:
        return "withdrawal"
    if entry.deposit_id is not None:
        return "deposit"
    return "other"


# Postings a portfolio view groups into its latest cash events (at least 20 per event).
EVENT_WINDOW_POSTINGS = 1_000


# Per cash account of the investor, its latest postings from the (account, entry) index;
# the newest `n` of them all. The ORM's one ORDER BY over both accounts walks the whole
# posting table backwards when the investor's postings are old (bench/scaling).
_RECENT_ENTRIES_SQL = (
    "SELECT r.id FROM marketplace_ledgeraccount a CROSS JOIN LATERAL (SELECT p.id, p.entry_id "
    "FROM marketplace_posting p WHERE p.account_id = a.id ORDER BY p.entry_id DESC LIMIT %s) r "
    "WHERE a.user_id = %s AND a.kind IN (%s, %s) ORDER BY r.entry_id DESC LIMIT %s"
)


def _recent_posting_ids(user, mine: QuerySet[Posting], n: int) -> Any:
    """The investor's latest `n` postings (`mine`, by entry), for `pk__in`: by primary key,
    so the database reads those postings rather than all of the investor's."""
    if connection.vendor != "postgresql":  # SQLite (`make run`) has no LATERAL; demo-sized
        return mine.order_by("-entry_id").values("pk")[:n]
    return RawSQL(_RECENT_ENTRIES_SQL, (n, user.pk, A.INVESTOR_AVAILABLE, A.INVESTOR_HELD, n))


def cash_events_for(*, user, limit: int = 50) -> list[CashEvent]:
    """The investor's latest `limit` cash events, newest first, each with its ledger lines
    (for the portfolio: one line per event, the lines on demand). Three queries whatever
    the number of events or lines."""
    mine = Posting.objects.filter(account__user=user, account__kind__in=[A.INVESTOR_AVAILABLE, A.INVESTOR_HELD])
    # The latest events: entries grouped by the event they belong to, by their latest entry,
    # among the investor's latest postings only (by entry id, the order they were written
    # in), so a page view never reads all of a long history (bench/scaling).
    recent = _recent_posting_ids(user, mine, max(limit * 20, EVENT_WINDOW_POSTINGS))
    whole = Q(**{f"entry__{name[:-3]}__isnull": True for name in _EVENT_FIELDS})
    latest = list(
        mine.filter(pk__in=recent)
        .annotate(own=Case(When(whole, then=F("entry_id")), default=None))
        .values(*(f"entry__{name}" for name in _EVENT_FIELDS), "own")
        .annotate(last=Max("entry__created_at"), last_pk=Max("entry_id"))
        .order_by("-last", "-last_pk")[:limit]
    )
    if not latest:
        return []
    wanted = Q(pk__in=[])
    for name in _EVENT_FIELDS:
        ids = [row[f"entry__{name}"] for row in latest if row[f"entry__{name}"] is not None]
        if ids:
            wanted |= Q(**{f"entry__{name}__in": ids})
    own = [row["own"] for row in latest if row["own"] is not None]
    if own:
        wanted |= Q(entry_id__in=own)
    postings = (
        mine.filter(wanted)
        .select_related("entry", "entry__order", "entry__order__asset", "entry__trade", "entry__trade__asset")
        .select_related("entry__trade__chain_tx")
        .select_related("entry__trade_order", "entry__trade_order__asset", "entry__withdrawal", "entry__deposit")
        .select_related("account")
        .order_by("-entry__created_at", "-entry_id", "-pk")
    )
    events: dict[tuple, CashEvent] = {}
    for p in postings:
        key = _event_key(p.entry)
        event = events.get(key)
        if event is None:
            event = events[key] = CashEvent(_event_kind(p.entry, user), p.account.currency, [])
        event.postings.append(p)
        if p.account.kind == A.INVESTOR_HELD:
            event.held_minor += p.amount_minor
        else:
            event.available_minor += p.amount_minor
    return list(events.values())


def withdrawals_for(*, user) -> QuerySet[Withdrawal]:
    return Withdrawal.objects.filter(investor=user).order_by("-created_at", "-pk")
