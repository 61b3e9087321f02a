"""The public REST API, version 1 (/api/v1; docs/api.md). Thin: read the request, call
the same selectors and services as the pages (marketplace.selectors,
marketplace.trading_selectors, marketplace.distribution_selectors, marketplace.trading,
compliance.eligibility through marketplace.selectors.eligibility_check), shape the
answer. Published operations are frozen: a change that breaks a client is v2's."""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal
from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from ninja import Header, NinjaAPI, Query, Status
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.docs import DocsBase

from assets.models import Asset
from assets.selectors import catalogue_assets
from compliance.eligibility import RECEIVE, SEND
from config.ratelimit import hit
from marketplace import (
    distribution_selectors,
    selectors,
    services,
    statement_views,
    statements,
    statements_pdf,
    trading,
    trading_selectors,
)
from marketplace.models import LedgerAccount, Trade, TradeOrder

from . import errors, limits, schemas
from .auth import READ, TRADE, token_user
from .pagination import Key, Keyset, paginate

BOOK_DEPTH = 10
P4 = {401: schemas.Problem, 403: schemas.Problem, 429: schemas.Problem}  # every authenticated operation
PAGE_ERRORS = {422: schemas.Problem}
PUBLIC_ERRORS = {429: schemas.Problem}

ASSETS = Keyset("assets", Key("pk", "int"))
MARKET_TRADES = Keyset("market_trades", Key("created_at", "datetime"), Key("pk", "int"))
CASH = Keyset("cash", Key("entry__created_at", "datetime"), Key("pk", "int"))
ORDERS = Keyset("orders", Key("created_at", "datetime"), Key("pk", "int"))
TRADE_ORDERS = Keyset("trade_orders", Key("created_at", "datetime"), Key("pk", "int"))
TRADES = Keyset("trades", Key("created_at", "datetime"), Key("pk", "int"))
DISTRIBUTIONS = Keyset(
    "distributions", Key("distribution__payment_date", "date"), Key("distribution_id", "int"), Key("pk", "int")
)

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        description="Your unique key for this order (1-64 printable ASCII characters). Sending the same key "
        "with the same body again answers the first order (200) instead of placing another; with another "
        "body, 409.",
        min_length=1,
        max_length=64,
        pattern=r"^[\x21-\x7e]+$",
    ),
]


class LocalSwagger(DocsBase):
    """Swagger UI from our own static files (static/vendor/swagger-ui, copied from the
    django-ninja wheel's pinned copy): the site's CSP allows only 'self'."""

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        settings = {"url": self.get_openapi_url(api, kwargs), "layout": "BaseLayout", "deepLinking": True}
        return render(request, "api/docs.html", {"api": api, "swagger_settings": settings})


class ProblemAPI(NinjaAPI):
    """NinjaAPI whose errors are problem+json (api/errors.py), whose answers carry the
    RateLimit-* headers, and whose OpenAPI document says so."""

    def create_response(self, request, data, *, status=None, temporal_response=None) -> HttpResponse:
        response = super().create_response(request, data, status=status, temporal_response=temporal_response)
        state = getattr(request, "api_rate_limit", None)
        if state is not None:
            state.apply(response)
        location = getattr(request, "api_location", None)
        if location and response.status_code == 201:
            response["Location"] = request.build_absolute_uri(location)
        return response

    def get_openapi_operation_id(self, operation) -> str:
        return operation.view_func.__name__

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for code, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if int(code) >= 400 and "application/json" in content:
                        response["content"] = {errors.CONTENT_TYPE: content["application/json"]}
        return schema


api = ProblemAPI(
    title="RWA Marketplace API",
    version="1.0.0",
    description=(
        "Tokenized real-world assets: the catalogue, order books and trades (public), and with a personal "
        "access token your portfolio, cash, orders, trades and distributions (scope `read`) and secondary-"
        "market orders (scope `trade`). Money is integer minor units with its currency. Errors are RFC 9457 "
        "problem details. Lists are newest first, cursor-paginated: follow `next`."
    ),
    urls_namespace="api-v1",
    docs=LocalSwagger(),
    docs_url="/docs",
    openapi_url="/openapi.json",
    throttle=limits.PUBLIC,
)
errors.install(api)


# -- shaping -------------------------------------------------------------------------------


def _asset_out(asset: Asset) -> dict[str, Any]:
    offering = getattr(asset, "offering", None)
    market = getattr(asset, "market", None)
    return {
        "public_id": asset.public_id,
        "name": asset.name,
        "category": asset.category,
        "description": asset.description,
        "location": asset.location,
        "country": str(asset.country or ""),
        "currency": offering.currency if offering else asset.currency,
        "total_fractions": asset.total_fractions,
        "unit_name": asset.unit_name,
        "asa_id": asset.asa_id,
        "live_at": asset.live_at,
        "funded_pct": getattr(asset, "funded_pct", None),
        "offering": None
        if offering is None
        else {
            "price_per_fraction_minor": offering.price_per_fraction_minor,
            "currency": offering.currency,
            "fractions_for_sale": offering.fractions_for_sale,
            "fractions_sold": offering.fractions_sold,
            "remaining": offering.remaining,
            "min_purchase": offering.min_purchase,
            "max_purchase": offering.max_purchase,
            "fee_bps": offering.fee_bps,
            "opens_at": offering.opens_at,
            "closes_at": offering.closes_at,
            "status": offering.current_status(),
        },
        "market": None
        if market is None
        else {
            "currency": market.currency,
            "trading_mode": market.trading_mode,
            "halted": market.halted,
            "last_price_minor": market.last_price_minor,
            "last_trade_at": market.last_trade_at,
            "maker_fee_bps": market.maker_fee_bps,
            "taker_fee_bps": market.taker_fee_bps,
        },
    }


def _trade_order_out(order: TradeOrder) -> dict[str, Any]:
    return {
        "public_id": order.public_id,
        "asset": order.asset.public_id,
        "side": order.side,
        "quantity": order.quantity,
        "filled_quantity": order.filled_quantity,
        "remaining_quantity": order.remaining_quantity,
        "limit_price_minor": order.limit_price_minor,
        "currency": order.currency,
        "time_in_force": order.time_in_force,
        "expires_at": order.expires_at,
        "status": order.status,
        "reserved_minor": order.reserved_minor,
        "cancel_code": order.cancel_code,
        "cancel_reason": order.cancel_reason,
        "created_at": order.created_at,
        "closed_at": order.closed_at,
    }


def _primary_order_out(o) -> dict[str, Any]:
    return {
        "public_id": o.public_id,
        "asset": o.asset.public_id,
        "quantity": o.quantity,
        "price_per_fraction_minor": o.price_per_fraction_minor,
        "gross_minor": o.gross_minor,
        "fee_minor": o.fee_minor,
        "total_minor": o.total_minor,
        "currency": o.currency,
        "status": o.status,
        "created_at": o.created_at,
        "settled_at": o.settled_at,
        "txid": _txid(o),
    }


def _txid(row) -> str | None:
    chain_tx = row.chain_tx
    return (chain_tx.txid or None) if chain_tx is not None else None


def _live_asset(public_id: UUID) -> Asset:
    """A live asset of the catalogue (the same selector as the catalogue page), or 404."""
    asset = catalogue_assets().select_related("market").filter(public_id=public_id).first()
    if asset is None:
        raise Http404
    return asset


def _own_trade_order(request: HttpRequest, public_id: UUID) -> TradeOrder:
    """The token owner's own trade order; anyone else's is a 404, staff's too (a token
    carries no back-office rights)."""
    user = token_user(request)
    order = trading_selectors.trade_order_get_for_user(public_id=public_id, user=user)
    if order.investor_id != user.pk:
        raise Http404
    return order


# -- public --------------------------------------------------------------------------------


@api.get(
    "/assets", response={200: schemas.AssetPage, **PAGE_ERRORS, **PUBLIC_ERRORS}, tags=["public"], summary="Live assets"
)
def assets_list(request: HttpRequest, page: Query[schemas.PageQuery]):
    """Live assets with their offering terms and market, most recently registered first."""
    qs = catalogue_assets().select_related("market")
    result = paginate(request, qs, ASSETS, limit=page.limit, cursor=page.cursor)
    return {"items": [_asset_out(a) for a in result.items], "next": result.next}


@api.get(
    "/assets/{uuid:public_id}", response={200: schemas.AssetOut, 404: schemas.Problem, **PUBLIC_ERRORS}, tags=["public"]
)
def asset_detail(request: HttpRequest, public_id: UUID):
    """One live asset."""
    return _asset_out(_live_asset(public_id))


@api.get(
    "/assets/{uuid:public_id}/book",
    response={200: schemas.BookOut, 404: schemas.Problem, **PUBLIC_ERRORS},
    tags=["public"],
)
def asset_book(request: HttpRequest, public_id: UUID):
    """The order book aggregated by price level, ten levels a side (the trade page's)."""
    offering = selectors.offering_get_for_asset(asset_public_id=public_id)
    market = trading_selectors.market_for_asset(asset=offering.asset)
    if market is None:  # opened by the first order
        return {
            "asset": public_id,
            "currency": offering.currency,
            "bids": [],
            "asks": [],
            "best_bid_minor": None,
            "best_ask_minor": None,
            "spread_minor": None,
            "last_price_minor": None,
            "halted": False,
        }
    book = trading_selectors.order_book(market=market, depth=BOOK_DEPTH)
    return {
        "asset": public_id,
        "currency": market.currency,
        "bids": [vars(level) for level in book.bids],
        "asks": [vars(level) for level in book.asks],
        "best_bid_minor": book.best_bid,
        "best_ask_minor": book.best_ask,
        "spread_minor": book.spread_minor,
        "last_price_minor": trading_selectors.last_price(market=market),
        "halted": market.halted,
    }


@api.get(
    "/assets/{uuid:public_id}/trades",
    response={200: schemas.PublicTradePage, 404: schemas.Problem, **PAGE_ERRORS, **PUBLIC_ERRORS},
    tags=["public"],
)
def asset_trades(request: HttpRequest, public_id: UUID, page: Query[schemas.PageQuery]):
    """The asset's trades, newest first (price, quantity, time; never the parties)."""
    offering = selectors.offering_get_for_asset(asset_public_id=public_id)
    # trading_selectors.market_trades answers a fixed number of rows; a cursor needs the query.
    qs = Trade.objects.filter(asset_id=offering.asset_id)
    result = paginate(request, qs, MARKET_TRADES, limit=page.limit, cursor=page.cursor)
    items = [
        {
            "public_id": t.public_id,
            "quantity": t.quantity,
            "price_minor": t.price_minor,
            "currency": t.currency,
            "status": t.status,
            "created_at": t.created_at,
        }
        for t in result.items
    ]
    return {"items": items, "next": result.next}


# -- read: the token owner's own data --------------------------------------------------------


@api.get(
    "/me/portfolio", response={200: schemas.PortfolioOut, **P4}, auth=READ, throttle=limits.AUTHENTICATED, tags=["read"]
)
def my_portfolio(request: HttpRequest):
    """Holdings (settled, pending, locked in sell orders, settling out, available to sell;
    the portfolio page's split) and cash available and held per currency."""
    user = token_user(request)
    holdings = [
        {
            "asset": line.holding.asset.public_id,
            "asset_name": line.holding.asset.name,
            "settled": line.settled,
            "pending": line.pending,
            "locked_in_orders": line.locked_in_orders,
            "settling_out": line.settling_out,
            "available_to_sell": line.available_to_sell,
            "cost_basis_minor": line.cost_basis_minor,
            "last_price_minor": line.last_price_minor,
            "value_minor": line.value_minor,
            "valuation_minor": line.valuation_minor,
            "valuation_as_of": line.valuation_as_of,
            "currency": line.currency,
        }
        for line in selectors.portfolio_lines(user=user)
    ]
    cash = [vars(balance) for balance in selectors.cash_balances(user=user)]
    return {"holdings": holdings, "cash": cash}


@api.get(
    "/me/cash-movements",
    response={200: schemas.CashMovementPage, **P4, **PAGE_ERRORS},
    auth=READ,
    throttle=limits.AUTHENTICATED,
    tags=["read"],
)
def my_cash_movements(request: HttpRequest, page: Query[schemas.PageQuery]):
    """Every posting on your cash accounts (available and held), newest first."""
    qs = selectors.movements_for(user=token_user(request))
    result = paginate(request, qs, CASH, limit=page.limit, cursor=page.cursor)
    items = [
        {
            "at": p.entry.created_at,
            "kind": p.entry.kind,
            "memo": p.entry.memo,
            "account": "held" if p.account.kind == LedgerAccount.Kind.INVESTOR_HELD else "available",
            "amount_minor": p.amount_minor,
            "currency": p.account.currency,
            "order": p.entry.order.public_id if p.entry.order is not None else None,
        }
        for p in result.items
    ]
    return {"items": items, "next": result.next}


@api.get(
    "/me/orders",
    response={200: schemas.PrimaryOrderPage, **P4, **PAGE_ERRORS},
    auth=READ,
    throttle=limits.AUTHENTICATED,
    tags=["read"],
)
def my_orders(request: HttpRequest, page: Query[schemas.PageQuery]):
    """Your primary-market purchases, newest first."""
    result = paginate(
        request, selectors.orders_for(user=token_user(request)), ORDERS, limit=page.limit, cursor=page.cursor
    )
    return {"items": [_primary_order_out(o) for o in result.items], "next": result.next}


@api.get(
    "/me/trade-orders",
    response={200: schemas.TradeOrderPage, **P4, **PAGE_ERRORS},
    auth=READ,
    throttle=limits.AUTHENTICATED,
    tags=["read"],
)
def my_trade_orders(request: HttpRequest, page: Query[schemas.PageQuery]):
    """Your secondary-market orders, newest first."""
    qs = trading_selectors.trade_orders_for(user=token_user(request))
    result = paginate(request, qs, TRADE_ORDERS, limit=page.limit, cursor=page.cursor)
    return {"items": [_trade_order_out(o) for o in result.items], "next": result.next}


@api.get(
    "/me/trade-orders/{uuid:public_id}",
    response={200: schemas.TradeOrderOut, 404: schemas.Problem, **P4},
    auth=READ,
    throttle=limits.AUTHENTICATED,
    tags=["read"],
    url_name="my_trade_order",
)
def my_trade_order(request: HttpRequest, public_id: UUID):
    """One of your secondary-market orders."""
    return _trade_order_out(_own_trade_order(request, public_id))


@api.get(
    "/me/trades",
    response={200: schemas.MyTradePage, **P4, **PAGE_ERRORS},
    auth=READ,
    throttle=limits.AUTHENTICATED,
    tags=["read"],
)
def my_trades(request: HttpRequest, page: Query[schemas.PageQuery]):
    """Trades you bought or sold in, newest first, with your side and fee."""
    user = token_user(request)
    result = paginate(request, trading_selectors.trades_for(user=user), TRADES, limit=page.limit, cursor=page.cursor)
    items = []
    for t in result.items:
        bought = t.buyer_id == user.pk
        items.append(
            {
                "public_id": t.public_id,
                "asset": t.asset.public_id,
                "side": "buy" if bought else "sell",
                "quantity": t.quantity,
                "price_minor": t.price_minor,
                "gross_minor": t.gross_minor,
                "fee_minor": t.buyer_fee_minor if bought else t.seller_fee_minor,
                "currency": t.currency,
                "status": t.status,
                "created_at": t.created_at,
                "settled_at": t.settled_at,
                "txid": _txid(t),
            }
        )
    return {"items": items, "next": result.next}


@api.get(
    "/me/distributions",
    response={200: schemas.DistributionPaymentPage, **P4, **PAGE_ERRORS},
    auth=READ,
    throttle=limits.AUTHENTICATED,
    tags=["read"],
)
def my_distributions(request: HttpRequest, page: Query[schemas.PageQuery]):
    """Your shares of income distributions, the latest payment date first."""
    qs = distribution_selectors.payments_for_investor(user=token_user(request))
    result = paginate(request, qs, DISTRIBUTIONS, limit=page.limit, cursor=page.cursor)
    items = [
        {
            "public_id": p.public_id,
            "distribution": p.distribution.public_id,
            "asset": p.distribution.asset.public_id,
            "units": p.units,
            "gross_minor": p.gross_minor,
            "withheld_minor": p.withheld_minor,
            "net_minor": p.net_minor,
            "currency": p.distribution.currency,
            "status": p.status,
            "payment_date": p.distribution.payment_date,
            "paid_at": p.paid_at,
            "hold_codes": [code for code in p.hold_codes.split(",") if code],
        }
        for p in result.items
    ]
    return {"items": items, "next": result.next}


@api.get(
    "/me/eligibility",
    response={200: schemas.EligibilityOut, 404: schemas.Problem, **P4, 422: schemas.Problem},
    auth=READ,
    throttle=limits.AUTHENTICATED,
    tags=["read"],
)
def my_eligibility(request: HttpRequest, question: Query[schemas.EligibilityQuery]):
    """Whether the eligibility engine lets you receive (buy) or send (sell) this many
    units of the asset now, and every reason it would not (KYC, sanctions, freeze,
    country, accreditation, holding limits, holders, lock-up). Cash, units free to sell
    and the market's own checks are judged when an order is placed."""
    asset = _live_asset(question.asset)
    result = selectors.eligibility_check(
        investor=token_user(request),
        asset=asset,
        quantity=question.quantity,
        direction=RECEIVE if question.side == "buy" else SEND,
    )
    return {
        "allowed": result.allowed,
        "reason_codes": result.codes,
        "reasons": [{"code": f.code, "message": f.message} for f in result.failures],
    }


# -- trade -----------------------------------------------------------------------------------


@api.post(
    "/me/trade-orders",
    response={200: schemas.TradeOrderOut, 201: schemas.TradeOrderOut, 409: schemas.Problem, **P4, 422: schemas.Problem},
    auth=TRADE,
    throttle=limits.PLACING,
    tags=["trade"],
)
def trade_order_place(request: HttpRequest, order: schemas.TradeOrderIn, idempotency_key: IdempotencyKey):
    """Place a limit order; it matches at once against the book (price-time priority).
    201 with the order as it stands after matching; 200 with the same order when the
    Idempotency-Key was used before with the same body; 409 with another body; 422
    with the reasons (`reason_codes`, the eligibility engine's among them) when refused;
    429 over the rate limits."""
    try:
        offering = selectors.offering_get_for_asset(asset_public_id=order.asset)
    except Http404:
        raise NinjaValidationError(
            [{"loc": ("body", "order", "asset"), "msg": "No live asset has this id.", "type": "unknown_asset"}]
        ) from None
    placed = trading.trade_order_place(
        investor=token_user(request),
        asset=offering.asset,
        side=order.side,
        quantity=order.quantity,
        limit_price_minor=order.limit_price_minor,
        time_in_force=order.time_in_force,
        expires_at=order.expires_at,
        idempotency_key=idempotency_key,
    )
    if placed.replayed:
        # The service compares the terms that define the order; the expiry is part of the body too.
        if placed.expires_at != order.expires_at:
            return errors.problem(
                request,
                status=409,
                slug="conflict",
                detail="This Idempotency-Key was already used for another order.",
                reason_codes=["idempotency_conflict"],
            )
        return Status(200, _trade_order_out(placed))
    request.api_location = reverse("api-v1:my_trade_order", kwargs={"public_id": placed.public_id})  # type: ignore[attr-defined]
    return Status(201, _trade_order_out(placed))


@api.post(
    "/me/trade-orders/{uuid:public_id}/cancel",
    response={200: schemas.TradeOrderOut, 404: schemas.Problem, 409: schemas.Problem, **P4},
    auth=TRADE,
    throttle=limits.AUTHENTICATED,
    tags=["trade"],
)
def trade_order_cancel(request: HttpRequest, public_id: UUID):
    """Cancel your open order (also while trading is halted); 409 when it is no longer open."""
    order = _own_trade_order(request, public_id)
    return _trade_order_out(trading.trade_order_cancel(order=order, actor=token_user(request)))


@api.post(
    "/me/orders",
    response={
        200: schemas.PrimaryOrderOut,
        201: schemas.PrimaryOrderOut,
        409: schemas.Problem,
        **P4,
        422: schemas.Problem,
    },
    auth=TRADE,
    throttle=limits.PLACING,
    tags=["trade"],
)
def primary_order_place(request: HttpRequest, order: schemas.PrimaryOrderIn, idempotency_key: IdempotencyKey):
    """Buy fractions in an asset's open primary offering at its price, plus the fee: the
    cash is held at once and the purchase settles on chain (follow it in GET /me/orders).
    201 with the order; 200 with the same order when the Idempotency-Key was used before
    with the same body; 409 with another body; 422 with the reasons when refused (supply,
    limits, cash, the eligibility engine's `reason_codes`)."""
    try:
        offering = selectors.offering_get_for_asset(asset_public_id=order.asset)
    except Http404:
        raise NinjaValidationError(
            [{"loc": ("body", "order", "asset"), "msg": "No live asset has this id.", "type": "unknown_asset"}]
        ) from None
    placed = services.order_place(
        investor=token_user(request), offering_id=offering.pk, quantity=order.quantity, idempotency_key=idempotency_key
    )
    if getattr(placed, "replayed", False):
        return Status(200, _primary_order_out(placed))
    return Status(201, _primary_order_out(placed))


@api.post(
    "/me/trade-orders/{uuid:public_id}/modify",
    response={200: schemas.TradeOrderOut, 404: schemas.Problem, 409: schemas.Problem, **P4, 422: schemas.Problem},
    auth=TRADE,
    throttle=limits.PLACING,
    tags=["trade"],
)
def trade_order_modify(
    request: HttpRequest, public_id: UUID, change: schemas.TradeOrderChangeIn, idempotency_key: IdempotencyKey
):
    """Change your open order: a new open quantity and/or limit price. Lowering only the
    quantity keeps its time priority; anything else cancels it and places a new order
    (returned, with the new id), which loses priority and may match at once. 409 when it is
    no longer open."""
    if change.quantity is None and change.limit_price_minor is None:
        raise NinjaValidationError(
            [{"loc": ("body", "change"), "msg": "Give a new quantity or limit price.", "type": "missing"}]
        )
    order = _own_trade_order(request, public_id)
    changed = trading.trade_order_modify(
        order=order,
        investor=token_user(request),
        quantity=change.quantity,
        limit_price_minor=change.limit_price_minor,
        idempotency_key=idempotency_key,
    )
    return _trade_order_out(changed)


STATEMENT_FORMATS = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8"}
StatementFormat = Annotated[Literal["csv", "pdf"], Query(description="csv or pdf")]


@api.get(
    "/me/statements",
    response={200: schemas.StatementsOut, **P4},
    auth=READ,
    throttle=limits.AUTHENTICATED,
    tags=["read"],
)
def my_statements(request: HttpRequest):
    """Your monthly statements (from your first activity to this month, to date) and annual
    tax summaries, with the API paths to download each as CSV or PDF."""
    months = statements.months_available(user=token_user(request))
    base = "/api/v1/me"
    return {
        "months": [
            {
                "year": y,
                "month": m,
                "csv": f"{base}/statements/{y}/{m}?format=csv",
                "pdf": f"{base}/statements/{y}/{m}?format=pdf",
            }
            for y, m in months
        ],
        "years": [
            {"year": y, "csv": f"{base}/tax/{y}?format=csv", "pdf": f"{base}/tax/{y}?format=pdf"}
            for y in sorted({y for y, _ in months}, reverse=True)
        ],
    }


def _document(request: HttpRequest, fmt: str, filename: str, build, to_pdf, to_csv) -> HttpResponse:
    """The same documents as the statements page (marketplace/statements.py), as a file."""
    if fmt == "pdf":
        limit, window = statement_views.PDF_RATE
        if not hit(action="statement_pdf", who=f"user:{token_user(request).pk}", limit=limit, window=window):
            return errors.problem(
                request, status=429, slug="rate-limited", detail="Too many PDFs; try again in a minute."
            )
    try:
        document = build()
    except statements.PeriodError as exc:
        return errors.problem(request, status=404, slug="not-found", detail=str(exc))
    if fmt == "pdf":
        body: bytes | str = to_pdf(document)
    else:
        out = io.StringIO()
        to_csv(document, out)
        body = out.getvalue()
    response = HttpResponse(body, content_type=STATEMENT_FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="rwa-{filename}.{fmt}"'
    response["Cache-Control"] = "private, no-store"
    return response


@api.get(
    "/me/statements/{int:year}/{int:month}",
    response={200: None, 404: schemas.Problem, **P4},
    auth=READ,
    throttle=limits.AUTHENTICATED,
    tags=["read"],
)
def my_statement(request: HttpRequest, year: int, month: int, format: StatementFormat = "csv"):  # noqa: A002
    """One month's statement (the same document as the statements page), CSV or PDF."""
    user = token_user(request)
    return _document(
        request,
        format,
        f"statement-{year:04d}-{month:02d}",
        lambda: statements.monthly_statement(user=user, year=year, month=month),
        statements_pdf.monthly_statement_pdf,
        statements.write_monthly_csv,
    )


@api.get(
    "/me/tax/{int:year}",
    response={200: None, 404: schemas.Problem, **P4},
    auth=READ,
    throttle=limits.AUTHENTICATED,
    tags=["read"],
)
def my_tax_summary(request: HttpRequest, year: int, format: StatementFormat = "csv"):  # noqa: A002
    """One year's tax summary: income by asset and kind, withholding, realised gains (FIFO,
    fees in the cost), CSV or PDF."""
    user = token_user(request)
    return _document(
        request,
        format,
        f"tax-summary-{year:04d}",
        lambda: statements.tax_summary(user=user, year=year),
        statements_pdf.tax_summary_pdf,
        statements.write_tax_csv,
    )
