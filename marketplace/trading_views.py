"""Pages of the secondary market (docs/trading.md): the trade page of an asset (the book,
the last price, the order form with its live quote, the investor's open orders and
trades, the asset's recent trades), and the pages of one trade order and one trade with
their settlement progress. Thin: bind a form, call one engine service, render."""

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from config.http import HtmxHttpRequest
from config.money import format_money, minor_to_major_text

from . import auction, market_data, selectors, trading, trading_selectors
from .models import Offering, Trade, TradeOrder
from .trading_forms import TradeOrderForm, TradeOrderModifyForm, new_key
from .trading_page_selectors import available_to_sell, open_trade_orders_on, trades_of_order, trades_on

Side = TradeOrder.Side
TIF = TradeOrder.TimeInForce
OS = TradeOrder.Status

BOOK_DEPTH = 10
RECENT = 20
# Polled fragments refresh on this event too, sent with every answer that changes the book.
CHANGED = "trade-changed"
SELF_TRADE_RULE = (
    "Self-trade prevention: your order never trades with your own resting order on the other side. "
    "When matching reaches one, it stops there: what traded before stays, the rest of your new order is "
    "cancelled, and your resting order is left as it was."
)


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    """The refusal's sentences with their codes (the eligibility engine's among them),
    so the page shows both."""
    if not hasattr(exc, "error_list"):
        return [{"code": "", "message": m} for m in exc.messages]
    return [
        {"code": e.code or "", "message": m}
        for e in exc.error_list
        for m in (e.messages if hasattr(e, "messages") else [str(e)])
    ]


def _status_for(exc: ValidationError) -> int:
    codes = {getattr(e, "code", None) for e in exc.error_list} if hasattr(exc, "error_list") else set()
    return 429 if "rate_limited" in codes else 422


def trade_url(asset) -> str:
    return reverse("marketplace:asset_trade", args=[asset.public_id])


def trade_order_url(order: TradeOrder) -> str:
    return reverse("marketplace:trade_order", args=[order.public_id])


def _own_order(request: HttpRequest, public_id: uuid.UUID) -> TradeOrder:
    """The signed-in investor's own order; anyone else's is a 404 (staff read orders on
    the detail page, and act on them in the back office)."""
    order = trading_selectors.trade_order_get_for_user(public_id=public_id, user=request.user)
    if order.investor_id != request.user.pk:
        raise Http404
    return order


# -- the trade page ---------------------------------------------------------------------


def _market_context(offering: Offering) -> dict[str, Any]:
    market = trading_selectors.market_for_asset(asset=offering.asset)
    book = trading_selectors.order_book(market=market, depth=BOOK_DEPTH) if market else None
    return {
        "offering": offering,
        "asset": offering.asset,
        "market": market,
        "currency": market.currency if market else offering.currency,
        "book": book,
        # Market data (docs/market-integrity.md): change, 24-hour volume, bid/ask, valuation.
        "stats": market_data.stats_from_book(market=market, book=book) if market else None,
        "latest_valuation": market_data.latest_valuations(asset_ids=[offering.asset_id]).get(offering.asset_id),
        "last_price": trading_selectors.last_price(market=market) if market else None,
        "market_trades": trading_selectors.market_trades(market=market, limit=RECENT) if market else [],
        "refusal": trading_selectors.market_refusal(market=market) if market else None,
        # The call auction panel (marketplace/auction.py): indicative price, next and last auction.
        "auction": auction.auction_summary(market=market) if market else None,
    }


def _mine_context(request: HttpRequest, offering: Offering, market) -> dict[str, Any]:
    user = request.user
    currency = market.currency if market else offering.currency
    return {
        "asset": offering.asset,
        "open_orders": list(open_trade_orders_on(user=user, market=market)[:50]),
        "my_trades": list(trades_on(user=user, market=market)[:RECENT]),
        "available_minor": selectors.available_cash(user=user, currency=currency),
        "available_units": available_to_sell(user=user, asset=offering.asset),
        "currency": currency,
    }


def _entry_context(
    offering: Offering,
    form: TradeOrderForm,
    *,
    errors: list[dict[str, str]] | None = None,
    placed: TradeOrder | None = None,
) -> dict[str, Any]:
    return {
        "asset": offering.asset,
        "offering": offering,
        "form": form,
        "errors": errors or [],
        "placed": placed,
        "self_trade_rule": SELF_TRADE_RULE,
    }


def _fresh_form(offering: Offering, keep: dict[str, Any] | None = None) -> TradeOrderForm:
    initial = {"side": Side.BUY, "time_in_force": TIF.GTC, **(keep or {}), "idempotency_key": new_key()}
    return TradeOrderForm(initial=initial, asset=offering.asset)


@login_required
@require_GET
def trade_page(request: HttpRequest, asset_public_id: uuid.UUID) -> HttpResponse:
    offering = selectors.offering_get_for_asset(asset_public_id=asset_public_id)
    context = _market_context(offering)
    context.update(_mine_context(request, offering, context["market"]))
    context.update(_entry_context(offering, _fresh_form(offering)))
    return render(request, "marketplace/trade/trade.html", context)


@login_required
@require_GET
def trade_market_data(request: HttpRequest, asset_public_id: uuid.UUID) -> HttpResponse:
    """HTMX (polled): the book, the last price and the asset's recent trades."""
    offering = selectors.offering_get_for_asset(asset_public_id=asset_public_id)
    return render(request, "marketplace/trade/trade.html#market_data", _market_context(offering))


@login_required
@require_GET
def trade_mine(request: HttpRequest, asset_public_id: uuid.UUID) -> HttpResponse:
    """HTMX (polled): the investor's open orders, recent trades and what they can use."""
    offering = selectors.offering_get_for_asset(asset_public_id=asset_public_id)
    market = trading_selectors.market_for_asset(asset=offering.asset)
    return render(request, "marketplace/trade/trade.html#mine", _mine_context(request, offering, market))


@login_required
@require_GET
def trade_quote(request: HttpRequest, asset_public_id: uuid.UUID) -> HttpResponse:
    """HTMX: what the order being typed would hold or lock, its fee, and whether the
    engine would take it (every reason it would not)."""
    offering = selectors.offering_get_for_asset(asset_public_id=asset_public_id)
    form = TradeOrderForm(request.GET, asset=offering.asset)
    form.fields["idempotency_key"].required = False
    context: dict[str, Any] = {"quote": None, "quote_errors": [], "asset": offering.asset}
    if not (request.GET.get("quantity") or "").strip() or not (request.GET.get("limit_price") or "").strip():
        context["prompt"] = True
    elif form.is_valid():
        context["quote"] = trading_selectors.trade_quote(
            investor=request.user, asset=offering.asset, **form.order_terms()
        )
    else:
        context["quote_errors"] = [e for errors in form.errors.values() for e in errors]
    return render(request, "marketplace/trade/trade.html#quote", context)


def _placed_message(order: TradeOrder) -> str:
    verb = "bought" if order.side == Side.BUY else "sold"
    price = format_money(order.limit_price_minor, order.currency)
    if order.replayed:
        return "This order was already placed (the form was sent twice); nothing else was done."
    if order.status == OS.FILLED:
        return f"Filled: you {verb} {order.filled_quantity:,} fractions (limit {price}). Delivery on Algorand follows."
    if order.status == OS.OPEN:
        done = f"{order.filled_quantity:,} traded at once; " if order.filled_quantity else ""
        return f"Order placed: {done}{order.remaining_quantity:,} rest on the book at {price}."
    traded = f"{order.filled_quantity:,} traded. " if order.filled_quantity else "Nothing traded. "
    return traded + order.cancel_reason


@login_required
@require_POST
def trade_order_place(request: HtmxHttpRequest, asset_public_id: uuid.UUID) -> HttpResponse:
    offering = selectors.offering_get_for_asset(asset_public_id=asset_public_id)
    form = TradeOrderForm(request.POST, asset=offering.asset)
    errors: list[dict[str, str]] = []
    status = 422
    if form.is_valid():
        try:
            order = trading.trade_order_place(
                investor=request.user,
                asset=offering.asset,
                idempotency_key=form.cleaned_data["idempotency_key"],
                **form.order_terms(),
            )
        except ValidationError as exc:
            errors, status = _errors(exc), _status_for(exc)
        else:
            message = _placed_message(order)
            if not request.htmx:
                messages.success(request, message)
                return redirect(trade_url(offering.asset))
            keep = {
                "side": order.side,
                "limit_price": minor_to_major_text(order.limit_price_minor),
                "time_in_force": order.time_in_force,
            }
            context = _entry_context(offering, _fresh_form(offering, keep), placed=order)
            context["placed_message"] = message
            response = render(request, "marketplace/trade/trade.html#entry", context)
            return trigger_client_event(response, CHANGED)
    context = _entry_context(offering, form, errors=errors)
    if request.htmx:
        return render(request, "marketplace/trade/trade.html#entry", context, status=status)
    context.update(_market_context(offering))
    context.update(_mine_context(request, offering, context["market"]))
    return render(request, "marketplace/trade/trade.html", context, status=status)


@login_required
@require_POST
def trade_order_cancel(request: HtmxHttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The owner cancels an open order. From the trade page (HTMX) the answer is the
    refreshed list of their orders; otherwise back to the order's page."""
    order = _own_order(request, public_id)
    try:
        trading.trade_order_cancel(order=order, actor=request.user)
    except (ValidationError, PermissionDenied) as exc:
        text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        notice, ok = text, False
    else:
        notice, ok = f"Order cancelled: the unfilled {order.remaining_quantity:,} no longer hold anything.", True
    if request.htmx:
        offering = selectors.offering_get_for_asset(asset_public_id=order.asset.public_id)
        market = trading_selectors.market_for_asset(asset=order.asset)
        context = {**_mine_context(request, offering, market), "notice": notice, "notice_ok": ok}
        response = render(request, "marketplace/trade/trade.html#mine", context, status=200 if ok else 422)
        return trigger_client_event(response, CHANGED) if ok else response
    (messages.success if ok else messages.error)(request, notice)
    return redirect(trade_order_url(order))


def _modify_context(order: TradeOrder, form: TradeOrderModifyForm, *, on: str, errors=None, notice="") -> dict:
    return {"order": order, "modify_form": form, "modify_errors": errors or [], "on": on, "modify_notice": notice}


def _modify_form(order: TradeOrder) -> TradeOrderModifyForm:
    return TradeOrderModifyForm(
        initial={
            "quantity": order.remaining_quantity,
            "limit_price": minor_to_major_text(order.limit_price_minor),
            "idempotency_key": new_key(),
        }
    )


@login_required
@require_http_methods(["GET", "POST"])
def trade_order_modify(request: HtmxHttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """GET (HTMX): the modify form of an open order, for the trade page's panel.
    POST: a new open quantity and price. Lowering only the quantity keeps the order's
    time priority; any other change replaces it with a new order."""
    order = _own_order(request, public_id)
    on = "trade" if (request.POST.get("on") or request.GET.get("on")) == "trade" else "detail"
    template = "marketplace/trade/order_detail.html#modify"
    if request.method == "GET":
        return render(request, template, _modify_context(order, _modify_form(order), on=on))
    form = TradeOrderModifyForm(request.POST)
    errors: list[dict[str, str]] = []
    status = 422
    if form.is_valid():
        try:
            standing = trading.trade_order_modify(
                order=order,
                investor=request.user,
                quantity=form.cleaned_data["quantity"],
                limit_price_minor=form.cleaned_data["limit_price"],
                idempotency_key=form.cleaned_data["idempotency_key"],
            )
        except ValidationError as exc:
            errors, status = _errors(exc), _status_for(exc)
        except PermissionDenied:
            raise Http404 from None
        else:
            if standing.pk == order.pk:
                notice = f"Order changed in place: {standing.remaining_quantity:,} open, time priority kept."
            else:
                notice = "Order replaced by a new one with the new terms; it lost its time priority."
            if request.htmx and on == "trade":
                response = render(request, template, {"modify_notice": notice, "on": on, "order": None})
                return trigger_client_event(response, CHANGED)
            messages.success(request, notice)
            url = trade_order_url(standing)
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    order.refresh_from_db()
    context = _modify_context(order, form, on=on, errors=errors)
    if request.htmx:
        return render(request, template, context, status=status)
    return render(request, "marketplace/trade/order_detail.html", {**_order_context(order), **context}, status=status)


# -- one order, one trade ------------------------------------------------------------------


def _order_context(order: TradeOrder) -> dict[str, Any]:
    trades = list(trades_of_order(order=order))
    unsettled = any(t.status in Trade.UNSETTLED for t in trades)
    return {
        "order": order,
        "trades": trades,
        "poll": order.is_open or unsettled,
        "poll_slow": not order.is_open and any(t.status == Trade.Status.FAILED for t in trades),
    }


@login_required
@require_GET
def trade_order_detail(request: HtmxHttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """A trade order with its fills and the settlement of each, live while it is open or
    a fill is settling. The owner's, or any with marketplace.view_tradeorder."""
    order = trading_selectors.trade_order_get_for_user(public_id=public_id, user=request.user)
    context = _order_context(order)
    if request.htmx:
        return render(request, "marketplace/trade/order_detail.html#progress", context)
    context["is_owner"] = order.investor_id == request.user.pk
    if context["is_owner"] and order.is_open:
        context.update(_modify_context(order, _modify_form(order), on="detail"))
    return render(request, "marketplace/trade/order_detail.html", context)


@login_required
@require_GET
def trade_detail(request: HtmxHttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """One trade's settlement: matched → submitted → confirmed in round N (txid), live;
    to the buyer, the seller, and staff with marketplace.view_trade."""
    trade = trading_selectors.trade_get_for_user(public_id=public_id, user=request.user)
    role = "buyer" if trade.buyer_id == request.user.pk else "seller" if trade.seller_id == request.user.pk else ""
    context = {"trade": trade, "step": trade.settlement_status, "role": role}
    template = "marketplace/trade/trade_detail.html#progress" if request.htmx else "marketplace/trade/trade_detail.html"
    return render(request, template, context)
