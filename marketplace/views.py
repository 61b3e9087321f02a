import csv
import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from chain.gateway import AlgodError, asset_amount
from chain.selectors import investor_account_for_user
from compliance.eligibility import RECEIVE
from config import shared_pages
from config.http import HtmxHttpRequest
from config.money import minor_to_major_text
from config.ratelimit import client_key, give_back, order_rate, take

from . import market_data_views, selectors, services
from .dashboard import investor_dashboard
from .forms import PurchaseForm, WithdrawalForm, parse_quantity
from .market_data import DEFAULT_RANGE
from .models import Offering, PrimaryOrder
from .payouts import usable_payout_accounts
from .trading_page_selectors import open_buy_reservations
from .trading_selectors import trade_orders_for, trades_for

LIST_LIMIT = 50


def _errors(exc: ValidationError) -> list[str]:
    return list(exc.messages)


def _offering_context(
    request: HttpRequest, offering: Offering, form: PurchaseForm | None = None, errors: list[str] | None = None
) -> dict[str, Any]:
    user = request.user
    quantity = offering.min_purchase
    if form is not None and form.is_bound:
        try:
            quantity = parse_quantity(form.data.get("quantity"))
        except ValidationError:
            pass
    context: dict[str, Any] = {
        "offering": offering,
        "asset": offering.asset,
        "status": offering.current_status(),
        "form": form
        or PurchaseForm(initial={"idempotency_key": PurchaseForm.new_key(), "quantity": offering.min_purchase}),
        "errors": errors or [],
        "quote": selectors.order_quote(offering=offering, quantity=quantity),
        "progress_pct": (offering.fractions_sold * 100) // offering.fractions_for_sale,
        "eligibility": None,
        "available_minor": None,
        "review_needed": False,
        "risk_acknowledged": False,
    }
    if user.is_authenticated:
        context["eligibility"] = selectors.eligibility_check(
            investor=user, asset=offering.asset, quantity=offering.min_purchase, direction=RECEIVE
        )
        context["available_minor"] = selectors.available_cash(user=user, currency=offering.currency)
        context["review_needed"] = selectors.purchase_review_needed(user=user, asset=offering.asset)
        context["risk_acknowledged"] = bool(form is not None and form.is_bound and form.data.get("risk_acknowledged"))
    return context


@login_required
@require_GET
def dashboard(request: HtmxHttpRequest) -> HttpResponse:
    """The investor's page: KYC status and next step, holdings, and what they may buy or
    sell, each button with the eligibility engine's reasons."""
    context = investor_dashboard(user=request.user)
    template = "marketplace/dashboard.html#kyc_status" if request.htmx else "marketplace/dashboard.html"
    return render(request, template, context)


@require_GET
def offering_detail(request: HttpRequest, asset_public_id: uuid.UUID) -> HttpResponse:
    def content(offering: Offering) -> str:
        context = _offering_context(request, offering)
        # Market data (docs/market-integrity.md): the valuation history and the price chart.
        context.update(
            market_data_views.market_panel_context(
                asset=offering.asset, user=request.user, range_key=DEFAULT_RANGE, currency=offering.currency
            )
        )
        return render_to_string("marketplace/offering.html#content", context, request=request)

    if shared_pages.shareable(request):
        # Every anonymous visitor sees the same page (docs/marketplace.md, "Offering page"),
        # with each visitor's own CSRF token, until a purchase (the offering's sold
        # version), a write of the asset or offering (the catalogue's) or new market data
        # replaces a version, or the window opens or closes. A hit is one cache round trip
        # and no query.
        asset_id = selectors.asset_id_for(asset_public_id=asset_public_id)

        def shared() -> tuple[str, Any]:
            offering = selectors.offering_get_for_page(asset_public_id=asset_public_id)
            html = shared_pages.render_shared(
                request, "marketplace/offering.html", _page_context(offering, content(offering))
            )
            return html, offering.window_changes_at()

        html, _ = market_data_views.cached_for_asset(
            asset_id,
            "offering-page",
            shared,
            versions=(selectors.offering_sold_version_key(asset_id),),
            fresh=lambda entry: entry[1] is None or timezone.now() < entry[1],
        )
        return shared_pages.personalised(request, html)
    offering = selectors.offering_get_for_page(asset_public_id=asset_public_id)
    return _offering_page(request, offering, content(offering))


def _page_context(offering: Offering, content: str) -> dict[str, Any]:
    return {"asset": offering.asset, "content": mark_safe(content)}  # noqa: S308 (rendered by the template)


def _offering_page(request: HttpRequest, offering: Offering, content: str, *, status: int = 200) -> HttpResponse:
    """The offering page around its rendered content (the #content partial)."""
    return render(request, "marketplace/offering.html", _page_context(offering, content), status=status)


@require_GET
def offering_quote(request: HttpRequest, asset_public_id: uuid.UUID) -> HttpResponse:
    """HTMX: the total with fees for the quantity being typed."""
    offering = selectors.offering_get_for_page(asset_public_id=asset_public_id)
    context: dict[str, Any] = {"offering": offering, "quote": None, "quote_errors": [], "warnings": []}
    try:
        quantity = parse_quantity(request.GET.get("quantity"))
    except ValidationError as exc:
        context["quote_errors"] = _errors(exc)
    else:
        quote = selectors.order_quote(offering=offering, quantity=quantity)
        context["quote"] = quote
        context["warnings"] = [
            f.message for f in selectors.purchase_limit_failures(offering=offering, quantity=quantity)
        ]
        if request.user.is_authenticated:
            available = selectors.available_cash(user=request.user, currency=offering.currency)
            if quote.total_minor > available:
                context["warnings"].append("This is more than the cash you have available.")
    return render(request, "marketplace/offering.html#quote", context)


@login_required
@require_POST
def order_place(request: HtmxHttpRequest, asset_public_id: uuid.UUID) -> HttpResponse:
    offering = selectors.offering_get_for_asset(asset_public_id=asset_public_id)
    # The limit counts orders placed (what it protects: the settlement outbox and the chain
    # behind it, and order spam), so every attempt that places none is given back: a
    # refused order, a replayed idempotency key, an attempt over the limit.
    limit, window = order_rate()
    allowed, counted = take(action="order_place", who=client_key(request), limit=limit, window=window)
    placed = False
    try:
        if not allowed:
            message = (
                f"Too many orders: you can place at most {limit} orders every {window} seconds. "
                "Wait a minute and try again."
            )
            if request.htmx:
                return render(request, "marketplace/offering.html#rate_limited", {"message": message}, status=429)
            return render(
                request, "marketplace/rate_limited.html", {"message": message, "offering": offering}, status=429
            )
        form = PurchaseForm(request.POST)
        errors: list[str] = []
        if form.is_valid():
            if not form.cleaned_data["risk_acknowledged"] and selectors.purchase_review_needed(
                user=request.user, asset=offering.asset
            ):
                errors = [REVIEW_REQUIRED]
            else:
                try:
                    order = services.order_place(
                        investor=request.user,
                        offering_id=offering.pk,
                        quantity=form.cleaned_data["quantity"],
                        idempotency_key=form.cleaned_data["idempotency_key"],
                    )
                except ValidationError as exc:
                    errors = _errors(exc)
                else:
                    placed = not order.replayed
                    url = order_url(order)
                    if not order.replayed:
                        messages.success(request, f"Order placed: {order.quantity:,} fractions reserved for you.")
                    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
        offering.refresh_from_db()
        context = _offering_context(request, offering, form=form, errors=errors)
        if request.htmx:
            return render(request, "marketplace/offering.html#purchase", context, status=422)
        content = render_to_string("marketplace/offering.html#content", context, request=request)
        return _offering_page(request, offering, content, status=422)
    finally:
        if not placed:
            give_back(counted)


REVIEW_REQUIRED = (
    "Review your first purchase of this asset: check the order and tick the box to confirm that you "
    "understand the asset is illiquid and can lose value."
)


def order_url(order: PrimaryOrder) -> str:
    return reverse("marketplace:order", args=[order.public_id])


def _settlement_step(order: PrimaryOrder) -> str:
    if order.status in (PrimaryOrder.Status.SETTLED, PrimaryOrder.Status.FAILED, PrimaryOrder.Status.REFUNDED):
        return order.status
    chain_tx = order.chain_tx
    if chain_tx is not None and (chain_tx.txid or chain_tx.status != chain_tx.Status.PENDING):
        return "submitted"
    return "reserved"


@login_required
@require_GET
def order_detail(request: HtmxHttpRequest, public_id: uuid.UUID) -> HttpResponse:
    order = selectors.order_get_for_user(public_id=public_id, user=request.user)
    context = {"order": order, "step": _settlement_step(order)}
    template = "marketplace/order_detail.html#progress" if request.htmx else "marketplace/order_detail.html"
    return render(request, template, context)


@login_required
@require_GET
def portfolio(request: HttpRequest) -> HttpResponse:
    user = request.user
    balances = selectors.cash_balances(user=user)
    holdings = Paginator(selectors.portfolio_holdings(user=user), selectors.HOLDINGS_PER_PAGE).get_page(
        request.GET.get("holdings")
    )
    lines = selectors.portfolio_lines(user=user, holdings=holdings.object_list)
    payout_accounts = list(usable_payout_accounts(user=user))
    return render(
        request,
        "marketplace/portfolio.html",
        {
            "lines": lines,
            "holdings_page": holdings,
            "totals": selectors.portfolio_totals(user=user),
            "balances": balances,
            "orders": list(selectors.orders_for(user=user)[:LIST_LIMIT]),
            "trade_orders": list(trade_orders_for(user=user)[:LIST_LIMIT]),
            "trades": list(trades_for(user=user)[:LIST_LIMIT]),
            "held_for_orders": open_buy_reservations(user=user),
            "cash_events": selectors.cash_events_for(user=user, limit=LIST_LIMIT),
            "withdrawals": list(selectors.withdrawals_for(user=user)[:20]),
            "withdrawal_form": WithdrawalForm(currencies=[b.currency for b in balances], accounts=payout_accounts),
            "payout_accounts": payout_accounts,
            "list_limit": LIST_LIMIT,
        },
    )


@login_required
@require_GET
def holding_chain_check(request: HttpRequest, pk: int) -> HttpResponse:
    """HTMX: the holding's balance read from algod beside the books' figure."""
    holding = selectors.holding_get_for_user(pk=pk, user=request.user)
    context: dict[str, Any] = {"holding": holding, "on_chain": None, "error": ""}
    account = investor_account_for_user(request.user)
    if account is None or holding.asset.asa_id is None:
        context["error"] = "No on-chain account yet."
    else:
        try:
            context["on_chain"] = asset_amount(account.address, holding.asset.asa_id) or 0
        except AlgodError:
            context["error"] = "unavailable"
    return render(request, "marketplace/portfolio.html#chain_check", context)


@login_required
@require_POST
def withdrawal_create(request: HttpRequest) -> HttpResponse:
    balances = selectors.cash_balances(user=request.user)
    accounts = list(usable_payout_accounts(user=request.user))
    form = WithdrawalForm(request.POST, currencies=[b.currency for b in balances], accounts=accounts)
    if form.is_valid():
        try:
            services.withdrawal_request(
                investor=request.user,
                amount_minor=form.cleaned_data["amount"],
                currency=form.cleaned_data["currency"],
                payout_account=form.cleaned_data["payout_account"],
            )
        except ValidationError as exc:
            for message in _errors(exc):
                messages.error(request, message)
        else:
            messages.success(request, "Withdrawal requested; the cash is held until our team pays it out.")
    else:
        for errors in form.errors.values():
            for error in errors:
                # django-stubs: iterating an ErrorList yields message strings (its __getitem__
                # unpacks each ValidationError), not the stored ValidationErrors.
                messages.error(request, error)  # type: ignore[arg-type]
    return redirect("marketplace:portfolio")


def _cell(value: object) -> str:
    """No spreadsheet formulas from user-controlled text."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@login_required
@require_GET
def portfolio_csv(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="rwa-transactions-{stamp}.csv"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "date",
            "entry",
            "type",
            "account",
            "amount",
            "currency",
            "asset",
            "quantity",
            "order",
            "order_status",
            "txid",
            "round",
            "memo",
        ]
    )
    for p in selectors.movements_for(user=request.user).iterator(chunk_size=500):
        order = p.entry.order
        chain_tx = order.chain_tx if order else None
        writer.writerow(
            [
                p.entry.created_at.isoformat(),
                p.entry_id,
                p.entry.kind,
                p.account.kind,
                minor_to_major_text(p.amount_minor),
                p.account.currency,
                _cell(order.asset.unit_name if order else ""),
                order.quantity if order else "",
                order.public_id if order else "",
                order.status if order else "",
                chain_tx.txid if order and chain_tx and order.status == PrimaryOrder.Status.SETTLED else "",
                chain_tx.confirmed_round if chain_tx and chain_tx.confirmed_round else "",
                _cell(p.entry.memo),
            ]
        )
    return response
