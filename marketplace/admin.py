"""Back office of the primary market. Every change goes through a service (which owns a
durable transaction and writes the audit entry); nothing here edits a balance, a
posting or an order directly."""

from collections.abc import Callable
from typing import cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from chain.templatetags.chain_links import txid_link
from config.admin_money import MoneyAdminMixin
from config.backoffice import CurrencyFilter, ReadOnlyAdmin, ServiceFormAdmin
from config.money import format_money
from config.numbers import WHOLE_NUMBER_FIELDS

from . import market_controls_admin, services, trading
from .forms import DecisionForm, DepositForm
from .models import (
    Deposit,
    Holding,
    JournalEntry,
    LedgerAccount,
    Market,
    Offering,
    Posting,
    PrimaryOrder,
    Trade,
    TradeOrder,
    Withdrawal,
)
from .trading_backoffice import MARKET_EDITABLE, market_update


def _report(request: HttpRequest, exc: Exception) -> None:
    text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    messages.error(request, text)


def _decision_view(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    obj: models.Model,
    *,
    title: str,
    intro: str,
    label: str,
    buttons: list[tuple[str, str]],
    perform: Callable[[str, str], str],
) -> HttpResponse:
    """A small form page: one text (reason or bank reference) and one or more buttons."""
    form = DecisionForm(request.POST or None)
    form.fields["text"].label = label
    if request.method == "POST" and form.is_valid():
        action = next((name for name, _ in buttons if name in request.POST), None)
        if action is None:
            messages.error(request, "Choose an action.")
        else:
            try:
                message = perform(action, form.cleaned_data["text"])
            except (ValidationError, PermissionDenied) as exc:
                _report(request, exc)
            else:
                messages.success(request, message)
                return redirect(reverse(f"admin:marketplace_{obj._meta.model_name}_change", args=[obj.pk]))
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "form": form,
        "buttons": buttons,
        "object": obj,
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/marketplace/decision.html", context)


def settlement_cell(tx) -> str:
    """An outbox row's state for a list column: its round and txid once confirmed."""
    if tx is None:
        return "—"
    if tx.confirmed_round:
        return format_html("round {} · {}", tx.confirmed_round, txid_link(tx.txid))
    return tx.get_status_display() + (f": {tx.last_error[:80]}" if tx.last_error else "")


@admin.register(Offering)
class OfferingAdmin(ServiceFormAdmin[Offering]):
    list_display = ["asset", "status_now", "price", "sold", "fee_bps", "opens_at", "closes_at"]
    list_filter = ["status", "currency"]
    search_fields = ["asset__name", "asset__unit_name"]
    list_select_related = ["asset"]
    fields = [
        "asset",
        "currency",
        "price_per_fraction_minor",
        "fractions_for_sale",
        "fractions_sold",
        "min_purchase",
        "max_purchase",
        "fee_bps",
        "opens_at",
        "closes_at",
        "status",
    ]
    readonly_fields = ["asset", "currency", "fractions_sold"]
    formfield_overrides = WHOLE_NUMBER_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # opened by the marketplace when the asset's mint confirms

    def has_delete_permission(self, request: HttpRequest, obj: Offering | None = None) -> bool:
        return False

    @admin.display(description="status now")
    def status_now(self, obj: Offering) -> str:
        return obj.current_status_label()

    @admin.display(description="price")
    def price(self, obj: Offering) -> str:
        return format_money(obj.price_per_fraction_minor, obj.currency)

    @admin.display(description="sold / offered")
    def sold(self, obj: Offering) -> str:
        return f"{obj.fractions_sold:,} / {obj.fractions_for_sale:,}"

    service_submit_label = "Save the offering"

    def service_form(self, request: HttpRequest, obj: Offering | None, data: QueryDict | None) -> forms.BaseForm:
        return self.get_form(request, obj, change=True)(data, instance=obj)

    def service_intro(self, request: HttpRequest, obj: Offering | None) -> str:
        assert obj is not None, "offerings are never added here, only changed"
        return (
            f"{obj.asset} in {obj.currency}: {obj.fractions_sold:,} of {obj.fractions_for_sale:,} fractions sold "
            "or reserved. The change is checked and audited by the marketplace."
        )

    def service_perform(self, request: HttpRequest, obj: Offering | None, form: forms.BaseForm) -> str:
        assert obj is not None, "offerings are never added here, only changed"
        fields = {name: form.cleaned_data[name] for name in form.changed_data if name in services.OFFERING_EDITABLE}
        if fields:
            services.offering_update(offering=obj, actor=request.user, fields=fields)
        return f"Offering of {obj.asset} saved." if fields else "Nothing changed."


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "user", "currency", "balance_display"]
    list_filter = ["kind", CurrencyFilter]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    fields = ["kind", "user", "currency", "balance", "created_at"]
    money_extra_fields = ("balance",)

    @admin.display(description="balance", ordering="balance")
    def balance_display(self, obj: LedgerAccount) -> str:
        return format_money(obj.balance, obj.currency)


@admin.register(Holding)
class HoldingAdmin(ReadOnlyAdmin):
    """Units per investor and asset, as the books hold them (read only: orders, trades
    and distributions change them through their services)."""

    list_display = [
        "id",
        "investor",
        "asset",
        "quantity",
        "pending_quantity",
        "locked_quantity",
        "pending_out_quantity",
        "updated_at",
    ]
    list_select_related = ["investor", "asset"]
    # Exact matches only: an investor's or an asset's holdings by an indexed lookup.
    search_fields = ["=investor__email", "=asset__unit_name"]
    raw_id_fields = ["investor", "asset"]
    ordering = ["-pk"]


class PostingInline(MoneyAdminMixin, admin.TabularInline):
    model = Posting
    fields = ["account", "amount_minor"]
    readonly_fields = cast(list[str], fields)  # names only, no groups
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "memo", "order", "created_by", "created_at"]
    # No date hierarchy: its year links are a DISTINCT over every row on every view.
    list_filter = ["kind", "created_at"]
    ordering = ["-pk"]  # newest first by the primary key: no sort of the whole ledger
    list_select_related = ["order", "order__asset", "created_by"]  # the order's name shows its asset
    fields = ["kind", "memo", "order", "deposit", "withdrawal", "created_by", "created_at"]
    inlines = [PostingInline]

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: JournalEntry | None = None) -> bool:
        return request.user.has_perm("marketplace.view_journalentry")


@admin.register(Deposit)
class DepositAdmin(ServiceFormAdmin[Deposit]):
    list_display = ["bank_reference", "investor", "amount", "recorded_by", "created_at"]
    search_fields = ["bank_reference", "investor__email"]
    list_select_related = ["investor", "recorded_by"]
    fields = ["investor", "amount_minor", "currency", "bank_reference", "recorded_by", "created_at"]
    readonly_fields = cast(list[str], fields)  # names only, no groups

    def has_change_permission(self, request: HttpRequest, obj: Deposit | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Deposit | None = None) -> bool:
        return False

    @admin.display(description="amount")
    def amount(self, obj: Deposit) -> str:
        return format_money(obj.amount_minor, obj.currency)

    service_submit_label = "Record deposit"

    def service_form(self, request: HttpRequest, obj: Deposit | None, data: QueryDict | None) -> forms.BaseForm:
        return DepositForm(data)

    def service_intro(self, request: HttpRequest, obj: Deposit | None) -> str:
        return "Cash received in the platform's bank account. Each bank reference is recorded once."

    def service_perform(self, request: HttpRequest, obj: Deposit | None, form: forms.BaseForm) -> str:
        data = form.cleaned_data
        deposit = services.deposit_record(
            investor=data["investor"],
            amount_minor=data["amount"],
            currency=data["currency"],
            bank_reference=data["bank_reference"],
            actor=request.user,
        )
        return (
            f"Deposit recorded: {format_money(deposit.amount_minor, deposit.currency)} "
            f"for {deposit.investor} ({deposit.bank_reference})."
        )


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyAdmin):
    list_display = ["short_id", "investor", "amount", "status", "bank_reference", "decided_by", "created_at"]
    list_filter = ["status", CurrencyFilter]
    search_fields = ["investor__email", "bank_reference"]
    list_select_related = ["investor", "decided_by"]
    fields = [
        "investor",
        "amount_minor",
        "currency",
        "status",
        "bank_reference",
        "reason",
        "payout_account",
        "batch",
        "decided_by",
        "created_at",
        "decided_at",
        "decide_link",
    ]

    @admin.display(description="withdrawal")
    def short_id(self, obj: Withdrawal) -> str:
        return obj.public_id.hex[:8]

    @admin.display(description="amount")
    def amount(self, obj: Withdrawal) -> str:
        return format_money(obj.amount_minor, obj.currency)

    @admin.display(description="decision")
    def decide_link(self, obj: Withdrawal) -> str:
        if obj.status != Withdrawal.Status.REQUESTED:
            return "—"
        if obj.batch_id is not None:
            return "In a payout batch: mark the batch sent or cancel it"
        return format_html(
            '<a class="button" href="{}">Pay or reject</a>',
            reverse("admin:marketplace_withdrawal_decide", args=[obj.pk]),
        )

    def has_view_permission(self, request: HttpRequest, obj: Withdrawal | None = None) -> bool:
        return request.user.has_perm("marketplace.view_withdrawal") or request.user.has_perm(
            "marketplace.change_withdrawal"
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:pk>/decide/", self.admin_site.admin_view(self.decide_view), name="marketplace_withdrawal_decide"
            ),
            *super().get_urls(),
        ]

    def decide_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm("marketplace.change_withdrawal"):
            raise PermissionDenied
        withdrawal = get_object_or_404(Withdrawal.objects.select_related("investor"), pk=pk)

        def perform(action: str, text: str) -> str:
            if action == "_pay":
                services.withdrawal_approve(withdrawal=withdrawal, actor=request.user, bank_reference=text)
                return "Withdrawal marked as paid."
            services.withdrawal_reject(withdrawal=withdrawal, actor=request.user, reason=text)
            return "Withdrawal rejected; the cash is available to the investor again."

        return _decision_view(
            self,
            request,
            withdrawal,
            title=f"Withdrawal of {format_money(withdrawal.amount_minor, withdrawal.currency)} "
            f"for {withdrawal.investor}",
            intro="Pay it (give the outgoing bank reference) or reject it (give the reason the investor will see).",
            label="Bank reference (pay) or reason (reject)",
            buttons=[("_pay", "Mark as paid"), ("_reject", "Reject")],
            perform=perform,
        )


@admin.register(PrimaryOrder)
class PrimaryOrderAdmin(ReadOnlyAdmin):
    list_display = ["short_id", "investor", "asset", "quantity", "total", "status", "settlement", "created_at"]
    list_filter = ["status", CurrencyFilter, "created_at"]
    search_fields = ["investor__email", "asset__name", "chain_tx__txid", "=public_id"]
    list_select_related = ["investor", "asset", "chain_tx"]
    ordering = ["-pk"]
    fields = [
        "public_id",
        "investor",
        "asset",
        "offering",
        "quantity",
        "price_per_fraction_minor",
        "gross_minor",
        "fee_minor",
        "total_minor",
        "currency",
        "status",
        "failure_reason",
        "chain_tx",
        "idempotency_key",
        "created_at",
        "settled_at",
        "refunded_at",
        "staff_actions",
    ]
    actions = ["retry_settlement"]

    @admin.display(description="order")
    def short_id(self, obj: PrimaryOrder) -> str:
        return obj.public_id.hex[:8]

    @admin.display(description="total")
    def total(self, obj: PrimaryOrder) -> str:
        return format_money(obj.total_minor, obj.currency)

    @admin.display(description="settlement")
    def settlement(self, obj: PrimaryOrder) -> str:
        return settlement_cell(obj.chain_tx)

    @admin.display(description="staff actions")
    def staff_actions(self, obj: PrimaryOrder) -> str:
        if obj.status != PrimaryOrder.Status.FAILED:
            return "—"
        return format_html(
            '<a class="button" href="{}">Retry or refund</a>',
            reverse("admin:marketplace_primaryorder_resolve", args=[obj.pk]),
        )

    def has_view_permission(self, request: HttpRequest, obj: PrimaryOrder | None = None) -> bool:
        return request.user.has_perm("marketplace.view_primaryorder") or request.user.has_perm(
            "marketplace.change_primaryorder"
        )

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("marketplace.change_primaryorder")

    @admin.action(description="Retry the settlement of the selected failed orders", permissions=["retry"])
    def retry_settlement(self, request: HttpRequest, queryset: QuerySet[PrimaryOrder]) -> None:
        done = 0
        for order in queryset.filter(status=PrimaryOrder.Status.FAILED):
            try:
                services.order_settlement_retry(order=order, actor=request.user)
                done += 1
            except (ValidationError, PermissionDenied) as exc:
                _report(request, exc)
        messages.success(request, f"{done} settlement(s) queued again.")

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:pk>/resolve/",
                self.admin_site.admin_view(self.resolve_view),
                name="marketplace_primaryorder_resolve",
            ),
            *super().get_urls(),
        ]

    def resolve_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm("marketplace.change_primaryorder"):
            raise PermissionDenied
        order = get_object_or_404(PrimaryOrder.objects.select_related("investor", "asset", "chain_tx"), pk=pk)

        def perform(action: str, text: str) -> str:
            if action == "_retry":
                services.order_settlement_retry(order=order, actor=request.user)
                return "Settlement queued again."
            services.order_compensate(order=order, actor=request.user, reason=text)
            return "Order refunded and its fractions released to the offering."

        return _decision_view(
            self,
            request,
            order,
            title=f"Failed settlement of {order.quantity:,} × {order.asset}",
            intro=f"Algod refused the settlement: {order.failure_reason or '(no reason)'}. Retry it, or refund the "
            f"investor ({format_money(order.total_minor, order.currency)}) and release the fractions. Both are audited.",
            label="Note (required to refund)",
            buttons=[("_retry", "Retry settlement"), ("_refund", "Refund and release")],
            perform=perform,
        )


# -- the secondary market (docs/trading.md) ------------------------------------------------


@admin.register(Market)
class MarketAdmin(ServiceFormAdmin[Market]):
    list_display = [
        "asset",
        "halted",
        "trading_mode",
        "band_pct",
        "next_auction_at",
        "maker_fee_bps",
        "taker_fee_bps",
        "last_price",
        "last_trade_at",
    ]
    list_filter = ["halted", "trading_mode", "currency"]
    search_fields = ["asset__name", "asset__unit_name"]
    list_select_related = ["asset"]
    # The change form edits the fees only (trading_backoffice.market_update); halts and
    # the other controls change on their own pages through marketplace.market_controls.
    CONTROLS = [
        "halted",
        "halt_reason",
        "halted_at",
        "trading_mode",
        "band_pct",
        "time_zone",
        "trading_hours",
        "auction_times",
        "next_auction_at",
        "auction_reason",
        "control_pages",
    ]
    fields = [
        "asset",
        "currency",
        "maker_fee_bps",
        "taker_fee_bps",
        "last_price_minor",
        "last_trade_at",
        *CONTROLS,
    ]
    readonly_fields = ["asset", "currency", "last_price_minor", "last_trade_at", *CONTROLS]
    formfield_overrides = WHOLE_NUMBER_FIELDS
    change_list_template = "admin/marketplace/market/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        def wrap(view):
            return self.admin_site.admin_view(lambda request, **kw: view(self, request, **kw))

        return [
            path("<int:pk>/halt/", wrap(market_controls_admin.halt_view), name="marketplace_market_halt"),
            path("<int:pk>/controls/", wrap(market_controls_admin.controls_view), name="marketplace_market_controls"),
            path("wide-halt/", wrap(market_controls_admin.wide_halt_view), name="marketplace_market_wide_halt"),
            *super().get_urls(),
        ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # opened by the first order (trading.market_open)

    def has_delete_permission(self, request: HttpRequest, obj: Market | None = None) -> bool:
        return False

    @admin.display(description="last price")
    def last_price(self, obj: Market) -> str:
        return format_money(obj.last_price_minor, obj.currency)

    @admin.display(description="controls")
    def control_pages(self, obj: Market) -> str:
        return format_html(
            '<a class="button" href="{}">{}</a> <a class="button" href="{}">Band, mode and hours</a>',
            reverse("admin:marketplace_market_halt", args=[obj.pk]),
            "Resume trading" if obj.halted else "Halt trading",
            reverse("admin:marketplace_market_controls", args=[obj.pk]),
        )

    service_submit_label = "Save the market"

    def service_form(self, request: HttpRequest, obj: Market | None, data: QueryDict | None) -> forms.BaseForm:
        return self.get_form(request, obj, change=True)(data, instance=obj)

    def service_intro(self, request: HttpRequest, obj: Market | None) -> str:
        assert obj is not None, "markets are never added here, only changed"
        return format_html(
            'The order book of {} in {}: {}. <a href="{}">{}</a> · <a href="{}">Band, mode and hours</a>. '
            "Here: the fees, basis points of price × quantity, the maker's for the resting order, the taker's "
            "for the incoming one. Orders resting now never pay more than the fee their reservation covers. "
            "Every change is audited.",
            obj.asset,
            obj.currency,
            market_controls_admin.controls_summary(obj),
            reverse("admin:marketplace_market_halt", args=[obj.pk]),
            "Resume trading" if obj.halted else "Halt trading",
            reverse("admin:marketplace_market_controls", args=[obj.pk]),
        )

    def service_perform(self, request: HttpRequest, obj: Market | None, form: forms.BaseForm) -> str:
        assert obj is not None, "markets are never added here, only changed"
        fields = {name: form.cleaned_data[name] for name in form.changed_data if name in MARKET_EDITABLE}
        if fields:
            market_update(market=obj, actor=request.user, fields=fields)
        return f"Market of {obj.asset} saved." if fields else "Nothing changed."


@admin.register(TradeOrder)
class TradeOrderAdmin(ReadOnlyAdmin):
    list_display = [
        "short_id",
        "investor",
        "asset",
        "side",
        "quantity",
        "filled_quantity",
        "remaining_quantity",
        "limit_price",
        "time_in_force",
        "status",
        "created_at",
    ]
    list_filter = ["status", "side", "time_in_force", CurrencyFilter, "created_at"]
    search_fields = ["investor__email", "asset__name", "asset__unit_name", "=public_id"]
    list_select_related = ["investor", "asset"]
    ordering = ["-pk"]
    fields = [
        "public_id",
        "investor",
        "asset",
        "market",
        "side",
        "quantity",
        "filled_quantity",
        "remaining_quantity",
        "limit_price_minor",
        "currency",
        "time_in_force",
        "expires_at",
        "status",
        "priority",
        "reserved_minor",
        "fee_bps_reserved",
        "cancel_code",
        "cancel_reason",
        "cancelled_by",
        "replaces",
        "idempotency_key",
        "created_at",
        "closed_at",
        "staff_actions",
    ]

    @admin.display(description="order")
    def short_id(self, obj: TradeOrder) -> str:
        return obj.public_id.hex[:8]

    @admin.display(description="limit", ordering="limit_price_minor")
    def limit_price(self, obj: TradeOrder) -> str:
        return format_money(obj.limit_price_minor, obj.currency)

    @admin.display(description="staff actions")
    def staff_actions(self, obj: TradeOrder) -> str:
        if not obj.is_open:
            return "—"
        return format_html(
            '<a class="button" href="{}">Cancel with a reason</a>',
            reverse("admin:marketplace_tradeorder_cancel", args=[obj.pk]),
        )

    def has_view_permission(self, request: HttpRequest, obj: TradeOrder | None = None) -> bool:
        return request.user.has_perm("marketplace.view_tradeorder")

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:pk>/cancel/", self.admin_site.admin_view(self.cancel_view), name="marketplace_tradeorder_cancel"
            ),
            *super().get_urls(),
        ]

    def cancel_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm("marketplace.cancel_any_tradeorder"):
            raise PermissionDenied
        order = get_object_or_404(TradeOrder.objects.select_related("investor", "asset"), pk=pk)

        def perform(action: str, text: str) -> str:
            if order.investor_id == request.user.pk:
                # The engine would take it as the owner's own cancel; here staff act on others' orders only.
                raise PermissionDenied("Four eyes: cancel your own orders on the trade page, not in the back office.")
            trading.trade_order_cancel(order=order, actor=request.user, reason=text)
            return "Order cancelled; what it held is released and the investor is told why."

        return _decision_view(
            self,
            request,
            order,
            title=f"Cancel {order.get_side_display().lower()} order {order.public_id.hex[:8]} of {order.investor}",
            intro=f"{order.remaining_quantity:,} of {order.quantity:,} fractions of {order.asset} open at "
            f"{format_money(order.limit_price_minor, order.currency)}. Cancelling releases what the order holds; "
            "the reason is audited and mailed to the investor.",
            label="Reason (required; the investor is told)",
            buttons=[("_cancel", "Cancel the order")],
            perform=perform,
        )


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdmin):
    list_display = ["short_id", "asset", "buyer", "seller", "quantity", "price", "status", "settlement", "created_at"]
    list_filter = ["status", CurrencyFilter, "created_at"]
    search_fields = ["buyer__email", "seller__email", "asset__name", "chain_tx__txid", "=public_id"]
    list_select_related = ["asset", "buyer", "seller", "chain_tx"]
    ordering = ["-pk"]
    fields = [
        "public_id",
        "asset",
        "market",
        "buy_order",
        "sell_order",
        "buyer",
        "seller",
        "quantity",
        "price_minor",
        "gross_minor",
        "currency",
        "maker_side",
        "maker_fee_bps",
        "taker_fee_bps",
        "buyer_fee_bps",
        "buyer_fee_minor",
        "seller_fee_bps",
        "seller_fee_minor",
        "status",
        "failure_reason",
        "chain_tx",
        "created_at",
        "settled_at",
        "reversed_at",
        "staff_actions",
    ]

    @admin.display(description="trade")
    def short_id(self, obj: Trade) -> str:
        return obj.public_id.hex[:8]

    @admin.display(description="price", ordering="price_minor")
    def price(self, obj: Trade) -> str:
        return format_money(obj.price_minor, obj.currency)

    @admin.display(description="settlement")
    def settlement(self, obj: Trade) -> str:
        return settlement_cell(obj.chain_tx)

    @admin.display(description="staff actions")
    def staff_actions(self, obj: Trade) -> str:
        if obj.status != Trade.Status.FAILED:
            return "—"
        return format_html(
            '<a class="button" href="{}">Retry or reverse</a>',
            reverse("admin:marketplace_trade_resolve", args=[obj.pk]),
        )

    def has_view_permission(self, request: HttpRequest, obj: Trade | None = None) -> bool:
        return request.user.has_perm("marketplace.view_trade")

    def get_urls(self) -> list[URLPattern]:
        return [
            path("<int:pk>/resolve/", self.admin_site.admin_view(self.resolve_view), name="marketplace_trade_resolve"),
            *super().get_urls(),
        ]

    def resolve_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        can_retry = request.user.has_perm("marketplace.retry_trade")
        can_reverse = request.user.has_perm("marketplace.reverse_trade")
        if not (can_retry or can_reverse):
            raise PermissionDenied
        trade = get_object_or_404(Trade.objects.select_related("asset", "buyer", "seller", "chain_tx"), pk=pk)
        buttons = [("_retry", "Retry settlement")] if can_retry else []
        buttons += [("_reverse", "Reverse the trade")] if can_reverse else []

        def perform(action: str, text: str) -> str:
            # The engine checks each permission again (and that staff never act on their own trade).
            if action == "_retry":
                trading.trade_settlement_retry(trade=trade, actor=request.user)
                return "Settlement queued again."
            trading.trade_reverse(trade=trade, actor=request.user, reason=text)
            return "Trade reversed: the buyer is refunded, the seller's units are free again; both are told."

        return _decision_view(
            self,
            request,
            trade,
            title=f"Failed settlement of trade {trade.public_id.hex[:8]}: {trade.quantity:,} × {trade.asset}",
            intro=f"The delivery from {trade.seller} to {trade.buyer} failed: {trade.failure_reason or '(no reason)'}. "
            f"Retry it, or reverse the trade: the buyer gets back "
            f"{format_money(trade.buyer_cost_minor, trade.currency)} and the seller's units are free to sell again. "
            "Both are audited.",
            label="Reason (required to reverse; both investors are told)",
            buttons=buttons,
            perform=perform,
        )


from . import (  # noqa: E402  (registers the back office of these modules)
    admin_distributions,  # noqa: E402, F401  (income distributions and held payments)
    admin_funding,  # noqa: E402, F401  (bank statement import and the review queue of unmatched lines)
    admin_payouts,  # noqa: E402, F401  (payout accounts review and SEPA payout batches)
    admin_valuations,  # noqa: E402, F401  (valuations: ModelAdmin and decision views)
)
