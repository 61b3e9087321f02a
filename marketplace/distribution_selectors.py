"""Reads of income distributions for the pages (marketplace/distribution_views.py, the
asset page's section, the back office): what an investor received and can expect, what
the public sees of an asset's distributions, and the figures shown beside each one.

Per-fraction amount and yield are display figures computed from integers: the gross over
the units entitled (the asset's supply), as Decimal with an explicit quantize; never float.
Every selector runs a constant number of queries, whatever the number of rows."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404
from django_countries import countries

from assets.models import Asset
from compliance.models import TaxProfile
from compliance.withholding import WithholdingRate, withholding_rates_for_many
from config.money import MINOR_PER_MAJOR

from .distributions import can_declare, pay_refusal
from .models import Distribution, DistributionPayment, Holding
from .selectors import user_holdings_q

D = Distribution.Status
P = DistributionPayment.Status
# What anybody may see of an asset's distributions: never one still waiting for its
# second pair of eyes, never a cancelled one.
PUBLIC_STATUSES = (D.APPROVED, D.PAYING, D.PAID)
PER_FRACTION_PLACES = Decimal("0.0001")
PERCENT_PLACES = Decimal("0.01")
DAYS_PER_YEAR = 365
PAGE_SIZE = 25
ASSET_SECTION_LIMIT = 20


# Figures --------------------------------------------------------------------------------


def per_fraction_major(gross_minor: int, total_units: int) -> Decimal:
    """Gross over the units, in the currency's units to 4 places: 123457 / 1000 → 1.2346."""
    return (Decimal(gross_minor) / Decimal(total_units * MINOR_PER_MAJOR)).quantize(
        PER_FRACTION_PLACES, rounding=ROUND_HALF_UP
    )


def yield_pct(gross_minor: int, total_units: int, price_minor: int | None, *, days: int = 0) -> Decimal | None:
    """Per-fraction amount over the price, in %: for the period, or annualised over a
    period of `days` (× 365 / days). One division of two integers; None without a price."""
    if not price_minor or price_minor <= 0 or total_units <= 0:
        return None
    numerator, denominator = gross_minor * 100, total_units * price_minor
    if days:
        numerator, denominator = numerator * DAYS_PER_YEAR, denominator * days
    return (Decimal(numerator) / Decimal(denominator)).quantize(PERCENT_PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Figures:
    """A distribution's per-fraction amount and the yields it implies."""

    distribution: Distribution
    total_units: int
    per_fraction: Decimal
    period_days: int
    offering_price_minor: int | None
    offering_yield_pct: Decimal | None
    offering_yield_annual_pct: Decimal | None
    last_price_minor: int | None
    last_yield_pct: Decimal | None
    last_yield_annual_pct: Decimal | None

    @property
    def currency(self) -> str:
        return self.distribution.currency


def figures(distribution: Distribution) -> Figures:
    """From the distribution and its asset's offering and market, which the caller has
    loaded with select_related("asset__offering", "asset__market") (no query here)."""
    asset = distribution.asset
    total = distribution.total_units or asset.total_fractions
    offering = getattr(asset, "offering", None)
    market = getattr(asset, "market", None)
    price = offering.price_per_fraction_minor if offering is not None else None
    last = market.last_price_minor if market is not None else None
    days = (distribution.period_end - distribution.period_start).days + 1
    gross = distribution.gross_minor
    return Figures(
        distribution=distribution,
        total_units=total,
        per_fraction=per_fraction_major(gross, total),
        period_days=days,
        offering_price_minor=price,
        offering_yield_pct=yield_pct(gross, total, price),
        offering_yield_annual_pct=yield_pct(gross, total, price, days=days),
        last_price_minor=last,
        last_yield_pct=yield_pct(gross, total, last),
        last_yield_annual_pct=yield_pct(gross, total, last, days=days),
    )


def _with_prices(queryset: QuerySet[Distribution]) -> QuerySet[Distribution]:
    return queryset.select_related("asset", "asset__offering", "asset__market")


# The asset page ---------------------------------------------------------------------------


def asset_distributions_public(*, asset: Asset, limit: int = ASSET_SECTION_LIMIT) -> list[Figures]:
    """Approved, paying and paid distributions of the asset, the latest payment date
    first (one query)."""
    rows = _with_prices(Distribution.objects.filter(asset_id=asset.pk, status__in=PUBLIC_STATUSES)).order_by(
        "-payment_date", "-pk"
    )[:limit]
    return [figures(d) for d in rows]


# The issuer's page ------------------------------------------------------------------------


def asset_get_for_declarer(*, public_id, user) -> Asset:
    """The asset whose distributions `user` may declare (its issuer, or staff with the
    distribution permissions); 404 for anybody else."""
    asset = Asset.objects.filter(public_id=public_id).first()
    if asset is None or not can_declare(user, asset):
        raise Http404
    return asset


def distribution_get_for_declarer(*, public_id, user) -> Distribution:
    distribution = Distribution.objects.select_related("asset").filter(public_id=public_id).first()
    if distribution is None or not can_declare(user, distribution.asset):
        raise Http404
    return distribution


@dataclass(frozen=True)
class IssuerLine:
    figures: Figures
    refusal: str  # why it cannot be paid now ('' when it can)

    @property
    def distribution(self) -> Distribution:
        return self.figures.distribution

    @property
    def cancellable_by_issuer(self) -> bool:
        return self.distribution.status == D.DECLARED


def asset_distributions_for_issuer(*, asset: Asset, limit: int = 100) -> list[IssuerLine]:
    """Every distribution of the asset, whatever its status, with why it is not paid yet."""
    rows = _with_prices(Distribution.objects.filter(asset_id=asset.pk)).order_by("-declared_at", "-pk")[:limit]
    return [IssuerLine(figures(d), pay_refusal(d)) for d in rows]


# The investor's page ----------------------------------------------------------------------


@dataclass(frozen=True)
class UpcomingLine:
    figures: Figures
    units: int  # held now per the books: an estimate of the units at the record date
    estimated_gross_minor: int
    estimated_net_minor: int

    @property
    def distribution(self) -> Distribution:
        return self.figures.distribution


def upcoming_for_investor(*, user, rate_bps: int) -> list[UpcomingLine]:
    """Approved distributions of the assets the investor holds now (two queries). The
    units are today's (owned per the books: settled and pending, less units sold and still
    settling); the payment counts the units held at the record date."""
    owned: dict[int, int] = {}
    for asset_id, settled, pending, out in Holding.objects.filter(user_holdings_q(user)).values_list(
        "asset_id", "quantity", "pending_quantity", "pending_out_quantity"
    ):
        units = settled + pending - out
        if units > 0:
            owned[asset_id] = units
    if not owned:
        return []
    rows = _with_prices(Distribution.objects.filter(asset_id__in=owned, status=D.APPROVED)).order_by(
        "payment_date", "pk"
    )
    lines = []
    for d in rows:
        f = figures(d)
        units = owned[d.asset_id]
        gross = d.gross_minor * units // f.total_units
        lines.append(UpcomingLine(f, units, gross, gross - gross * rate_bps // 10_000))
    return lines


@dataclass(frozen=True)
class HoldAction:
    text: str
    url_name: str = ""  # a page of ours that resolves it, if any
    link_text: str = ""


HOLD_ACTIONS = {
    "kyc_expired": HoldAction(
        "Renew your identity verification; our compliance team then releases the payment to you.",
        "compliance:kyc_edit",
        "Renew your verification",
    ),
    "kyc_not_approved": HoldAction(
        "Complete your identity verification (KYC); our compliance team then releases the payment to you.",
        "compliance:kyc_edit",
        "Verify your identity",
    ),
    "sanctions_hit": HoldAction(
        "Nothing to do for now: our compliance team reviews the match and then releases the payment or returns "
        "it to the issuer. Contact support if you have questions."
    ),
    "account_frozen": HoldAction("Contact support: your account is frozen, so payments wait until it is not."),
}
HOLD_DEFAULT = HoldAction("Contact support to find out what is needed before the payment can be released.")


def hold_action(payment: DistributionPayment) -> HoldAction:
    for code in payment.hold_codes.split(","):
        if code in HOLD_ACTIONS:
            return HOLD_ACTIONS[code]
    return HOLD_DEFAULT


@dataclass(frozen=True)
class ReceivedLine:
    payment: DistributionPayment
    figures: Figures
    action: HoldAction | None  # for a held payment: what the investor can do

    @property
    def distribution(self) -> Distribution:
        return self.figures.distribution


def payments_for_investor(*, user) -> QuerySet[DistributionPayment]:
    """The investor's own shares (never the issuer's treasury share), the latest first."""
    return (
        DistributionPayment.objects.filter(investor=user, treasury=False)
        .select_related("distribution", "distribution__asset", "distribution__asset__offering")
        .select_related("distribution__asset__market")
        .order_by("-distribution__payment_date", "-distribution_id", "-pk")
    )


@dataclass(frozen=True)
class ReceivedPage:
    page: Page  # for the pager
    lines: list[ReceivedLine]


def received_page(*, user, page_number: int) -> ReceivedPage:
    """One page of the investor's payments (two queries: count, rows)."""
    page = Paginator(payments_for_investor(user=user), PAGE_SIZE).get_page(page_number)
    lines = [
        ReceivedLine(p, figures(p.distribution), hold_action(p) if p.status == P.HELD else None)
        for p in page.object_list
    ]
    return ReceivedPage(page, lines)


@dataclass(frozen=True)
class TaxSummary:
    residence: str  # country name, '' when unknown
    treaty_form_on_file: bool
    rate: WithholdingRate
    has_profile: bool


def tax_summary(*, user) -> TaxSummary:
    """The investor's tax residence and the withholding rate that applies (at most three
    queries)."""
    profile = TaxProfile.objects.filter(user=user).first()
    rate = withholding_rates_for_many([user.pk])[user.pk]
    code = str(profile.tax_residence or "") if profile is not None else ""
    return TaxSummary(
        residence=str(countries.name(code)) if code else "",
        treaty_form_on_file=bool(profile and profile.treaty_form_on_file),
        rate=rate,
        has_profile=profile is not None,
    )


@dataclass(frozen=True)
class ReinvestLine:
    asset: Asset
    currency: str
    instruction: Any  # ReinvestmentInstruction | None


def reinvestment_lines(*, user) -> list[ReinvestLine]:
    """Each asset the investor holds, with their reinvestment instruction if any (two
    queries whatever the number of holdings)."""
    from .models import ReinvestmentInstruction

    holdings = list(
        Holding.objects.filter(user_holdings_q(user)).select_related("asset", "asset__offering").order_by("asset__name")
    )
    instructions = {
        i.asset_id: i
        for i in ReinvestmentInstruction.objects.filter(investor=user, asset_id__in=[h.asset_id for h in holdings])
    }
    return [
        ReinvestLine(
            asset=h.asset,
            currency=getattr(getattr(h.asset, "offering", None), "currency", h.asset.currency),
            instruction=instructions.get(h.asset_id),
        )
        for h in holdings
    ]
