"""What the API reads and answers (pydantic models through django-ninja). Money is always
integer minor units with its ISO 4217 currency, never a float; quantities are whole
fractions; times are ISO 8601 in UTC."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from django.core.exceptions import ValidationError as DjangoValidationError
from ninja import Schema
from pydantic import AwareDatetime, BeforeValidator, Field, StrictInt

from config.numbers import MAX_BIGINT, parse_whole_number

from .pagination import DEFAULT_LIMIT, MAX_LIMIT


def _whole(raw: Any) -> Any:
    """A whole number from a query string, read as config.numbers reads every number
    typed on the site (ASCII digits only, no exponent, bounded before int())."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if not isinstance(raw, str):
        raise ValueError("Enter a whole number.")
    try:
        return parse_whole_number(raw, label="number", minimum=-MAX_BIGINT - 1, maximum=MAX_BIGINT)
    except DjangoValidationError as exc:
        raise ValueError(exc.messages[0]) from None


WholeNumber = Annotated[int, BeforeValidator(_whole)]


# -- errors --------------------------------------------------------------------------------


class FieldError(Schema):
    location: Literal["query", "path", "header", "body"] = Field(description="Where the field is.")
    field: str = Field(description="The field's path, dotted (e.g. `quantity`).")
    code: str
    message: str


class Problem(Schema):
    """RFC 9457 problem details (media type application/problem+json)."""

    type: str = Field(description="A URN naming the kind of problem, e.g. urn:rwa:problem:validation.")
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldError] | None = None
    reason_codes: list[str] | None = Field(
        default=None, description="The refusal's codes, the eligibility engine's among them."
    )


# -- queries -------------------------------------------------------------------------------


class PageQuery(Schema):
    limit: Annotated[WholeNumber, Field(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: Annotated[str, Field(max_length=300)] | None = Field(
        default=None, description="The `next` link's cursor; opaque."
    )


class EligibilityQuery(Schema):
    asset: UUID
    side: Literal["buy", "sell"]
    quantity: Annotated[WholeNumber, Field(ge=1, le=MAX_BIGINT)]


# -- public --------------------------------------------------------------------------------


class OfferingOut(Schema):
    price_per_fraction_minor: int
    currency: str
    fractions_for_sale: int
    fractions_sold: int
    remaining: int
    min_purchase: int
    max_purchase: int | None
    fee_bps: int
    opens_at: datetime | None
    closes_at: datetime | None
    status: Literal["upcoming", "open", "closed", "sold_out"]


class MarketOut(Schema):
    currency: str
    trading_mode: str
    halted: bool
    last_price_minor: int | None
    last_trade_at: datetime | None
    maker_fee_bps: int
    taker_fee_bps: int


class AssetOut(Schema):
    public_id: UUID
    name: str
    category: str
    description: str
    location: str
    country: str
    currency: str
    total_fractions: int
    unit_name: str
    asa_id: int | None
    live_at: datetime | None
    funded_pct: int | None
    offering: OfferingOut | None
    market: MarketOut | None


class AssetPage(Schema):
    items: list[AssetOut]
    next: str | None


class LevelOut(Schema):
    price_minor: int
    quantity: int
    orders: int


class BookOut(Schema):
    asset: UUID
    currency: str
    bids: list[LevelOut] = Field(description="Best (highest) first.")
    asks: list[LevelOut] = Field(description="Best (lowest) first.")
    best_bid_minor: int | None
    best_ask_minor: int | None
    spread_minor: int | None
    last_price_minor: int | None
    halted: bool


class PublicTradeOut(Schema):
    public_id: UUID
    quantity: int
    price_minor: int
    currency: str
    status: str
    created_at: datetime


class PublicTradePage(Schema):
    items: list[PublicTradeOut]
    next: str | None


# -- the token's owner ---------------------------------------------------------------------


class HoldingOut(Schema):
    asset: UUID
    asset_name: str
    settled: int
    pending: int
    locked_in_orders: int
    settling_out: int
    available_to_sell: int
    cost_basis_minor: int
    last_price_minor: int | None
    value_minor: int | None
    valuation_minor: int | None
    valuation_as_of: date | None
    currency: str


class CashOut(Schema):
    currency: str
    available_minor: int
    held_minor: int


class PortfolioOut(Schema):
    holdings: list[HoldingOut]
    cash: list[CashOut]


class CashMovementOut(Schema):
    at: datetime
    kind: str
    memo: str
    account: Literal["available", "held"]
    amount_minor: int
    currency: str
    order: UUID | None = Field(description="The primary order it belongs to, if any.")


class CashMovementPage(Schema):
    items: list[CashMovementOut]
    next: str | None


class PrimaryOrderOut(Schema):
    public_id: UUID
    asset: UUID
    quantity: int
    price_per_fraction_minor: int
    gross_minor: int
    fee_minor: int
    total_minor: int
    currency: str
    status: str
    created_at: datetime
    settled_at: datetime | None
    txid: str | None


class PrimaryOrderPage(Schema):
    items: list[PrimaryOrderOut]
    next: str | None


class TradeOrderOut(Schema):
    public_id: UUID
    asset: UUID
    side: Literal["buy", "sell"]
    quantity: int
    filled_quantity: int
    remaining_quantity: int
    limit_price_minor: int
    currency: str
    time_in_force: Literal["gtc", "gtd", "ioc", "fok"]
    expires_at: datetime | None
    status: Literal["open", "filled", "cancelled", "expired"]
    reserved_minor: int
    cancel_code: str
    cancel_reason: str
    created_at: datetime
    closed_at: datetime | None


class TradeOrderPage(Schema):
    items: list[TradeOrderOut]
    next: str | None


class TradeOrderIn(Schema):
    asset: UUID
    side: Literal["buy", "sell"]
    quantity: StrictInt
    limit_price_minor: StrictInt = Field(description="Limit price per fraction, in minor units.")
    time_in_force: Literal["gtc", "gtd", "ioc", "fok"] = "gtc"
    expires_at: AwareDatetime | None = Field(default=None, description="Good-till-date orders only.")


class PrimaryOrderIn(Schema):
    asset: UUID
    quantity: StrictInt = Field(description="Whole fractions to buy at the offering's price.")


class TradeOrderChangeIn(Schema):
    quantity: StrictInt | None = Field(default=None, description="The new open (unfilled) quantity.")
    limit_price_minor: StrictInt | None = Field(default=None, description="The new limit price, in minor units.")


class MyTradeOut(Schema):
    public_id: UUID
    asset: UUID
    side: Literal["buy", "sell"] = Field(description="Your side of the trade.")
    quantity: int
    price_minor: int
    gross_minor: int
    fee_minor: int = Field(description="Your fee.")
    currency: str
    status: str
    created_at: datetime
    settled_at: datetime | None
    txid: str | None


class MyTradePage(Schema):
    items: list[MyTradeOut]
    next: str | None


class DistributionPaymentOut(Schema):
    public_id: UUID
    distribution: UUID
    asset: UUID
    units: int
    gross_minor: int
    withheld_minor: int
    net_minor: int
    currency: str
    status: str
    payment_date: date
    paid_at: datetime | None
    hold_codes: list[str]


class DistributionPaymentPage(Schema):
    items: list[DistributionPaymentOut]
    next: str | None


class ReasonOut(Schema):
    code: str
    message: str


class EligibilityOut(Schema):
    allowed: bool
    reason_codes: list[str]
    reasons: list[ReasonOut]


class StatementMonthOut(Schema):
    year: int
    month: int
    csv: str = Field(description="API path of the month's statement as CSV.")
    pdf: str = Field(description="API path of the month's statement as PDF.")


class TaxYearOut(Schema):
    year: int
    csv: str
    pdf: str


class StatementsOut(Schema):
    months: list[StatementMonthOut]
    years: list[TaxYearOut]
