"""Back-office pages of the market controls (wired into MarketAdmin, marketplace/admin.py):
halt or resume a book, change its band, mode, hours, time zone and auction times, and
halt or resume the whole market. Each page checks its permission (403 without), binds a
form and calls one service of marketplace.market_controls, which checks the permission
again, takes the locks and writes the audit entry. A refused form answers 400 with the
message."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from config.backoffice import form_errors_from
from config.numbers import WholeNumberField

from . import market_controls
from .models import Market
from .trading_selectors import market_wide_control


class BoundedJSONField(forms.JSONField):
    """forms.JSONField whose typed text is limited in length before it is parsed (its
    max_length would check the parsed value, which need not have a length)."""

    def __init__(self, *, max_chars: int, **kwargs):
        self.max_chars = max_chars
        super().__init__(**kwargs)

    def to_python(self, value):
        if isinstance(value, str) and len(value) > self.max_chars:
            raise ValidationError(f"At most {self.max_chars:,} characters.", code="max_length")
        return super().to_python(value)


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=market_controls.REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown to investors on the trade page, and kept in the audit log.",
    )


class ControlsForm(ReasonForm):
    band_pct = WholeNumberField(
        required=False,
        min_value=1,
        max_value=1000,
        label="Price band (%)",
        help_text="Either side of the reference price. Empty: the platform default.",
    )
    trading_mode = forms.ChoiceField(choices=Market.TradingMode.choices)
    time_zone = forms.CharField(max_length=64, help_text="IANA name, e.g. Europe/Zurich.")
    trading_hours = BoundedJSONField(
        required=False,
        max_chars=2000,
        help_text='{"mon": ["09:00", "17:30"], ...}; a missing day is closed; empty: always open.',
    )
    auction_times = BoundedJSONField(
        required=False, max_chars=500, help_text='Daily uncrossing times in auction mode, e.g. ["15:00"].'
    )
    field_order = ["band_pct", "trading_mode", "time_zone", "trading_hours", "auction_times", "reason"]

    def clean_trading_hours(self):
        return self.cleaned_data.get("trading_hours") or {}

    def clean_auction_times(self):
        return self.cleaned_data.get("auction_times") or []


def _page(
    modeladmin: ModelAdmin, request: HttpRequest, *, title: str, intro: str, form, label: str, status: int = 200
) -> HttpResponse:
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "opts": modeladmin.model._meta,
        "intro": intro,
        "submit_label": label,
    }
    return TemplateResponse(request, "admin/service_form.html", context, status=status)


def _run(form, perform) -> str | None:
    """Call the service; its refusals land on the form. The success message, or None."""
    try:
        return perform()
    except ValidationError as exc:
        form_errors_from(form, exc)
    return None


def halt_view(modeladmin: ModelAdmin, request: HttpRequest, pk: int) -> HttpResponse:
    """Halt a trading book, or resume a halted one (marketplace.halt_market)."""
    if not request.user.has_perm(market_controls.HALT_PERMISSION):
        raise PermissionDenied
    market = get_object_or_404(Market.objects.select_related("asset"), pk=pk)
    resume = market.halted
    form = ReasonForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            service = market_controls.market_resume if resume else market_controls.market_halt

            def perform() -> str:
                service(market=market, actor=request.user, reason=form.cleaned_data["reason"])
                return f"Trading in {market.asset} {'resumed' if resume else 'halted'}."

            done = _run(form, perform)
            if done:
                messages.success(request, done)
                return redirect(reverse("admin:marketplace_market_change", args=[market.pk]))
    status = 400 if request.method == "POST" else 200
    if resume:
        intro = (
            f"Trading in {market.asset} is halted: {market.halt_reason}. Resuming takes new orders again; a "
            "continuous book reopens with an auction (orders collect until then). Audited."
        )
    else:
        intro = (
            f"Halt trading in {market.asset}: no new orders and no matching; open orders stay and investors can "
            "still cancel them. Investors see the reason. Audited."
        )
    return _page(
        modeladmin,
        request,
        title=f"{'Resume' if resume else 'Halt'} trading in {market.asset}",
        intro=intro,
        form=form,
        label="Resume trading" if resume else "Halt trading",
        status=status,
    )


def controls_view(modeladmin: ModelAdmin, request: HttpRequest, pk: int) -> HttpResponse:
    """A book's band, mode, time zone, hours and auction times
    (marketplace.change_market_controls)."""
    if not request.user.has_perm(market_controls.CONTROLS_PERMISSION):
        raise PermissionDenied
    market = get_object_or_404(Market.objects.select_related("asset"), pk=pk)
    initial = {
        "band_pct": market.band_pct,
        "trading_mode": market.trading_mode,
        "time_zone": market.time_zone,
        "trading_hours": market.trading_hours,
        "auction_times": market.auction_times,
    }
    form = ControlsForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            fields = {name: form.cleaned_data[name] for name in market_controls.CONTROL_FIELDS}

            def perform() -> str:
                market_controls.market_controls_update(
                    market=market, actor=request.user, fields=fields, reason=form.cleaned_data["reason"]
                )
                return f"Controls of {market.asset} saved."

            done = _run(form, perform)
            if done:
                messages.success(request, done)
                return redirect(reverse("admin:marketplace_market_change", args=[market.pk]))
    return _page(
        modeladmin,
        request,
        title=f"Controls of {market.asset}",
        intro=(
            "Price band: an order priced outside reference ± band is refused, and a trade that would print outside "
            "it calls an auction. Auction mode collects orders and uncrosses at the auction times. Outside trading "
            "hours orders rest and the session opens with an auction. Investors see the reason. Audited."
        ),
        form=form,
        label="Save the controls",
        status=400 if request.method == "POST" else 200,
    )


def wide_halt_view(modeladmin: ModelAdmin, request: HttpRequest) -> HttpResponse:
    """Halt or resume the whole market (marketplace.halt_market)."""
    if not request.user.has_perm(market_controls.HALT_PERMISSION):
        raise PermissionDenied
    control = market_wide_control()
    resume = control.halted
    form = ReasonForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            service = market_controls.market_wide_resume if resume else market_controls.market_wide_halt

            def perform() -> str:
                service(actor=request.user, reason=form.cleaned_data["reason"])
                return f"Trading on the whole market {'resumed' if resume else 'halted'}."

            done = _run(form, perform)
            if done:
                messages.success(request, done)
                return redirect(reverse("admin:marketplace_market_changelist"))
    return _page(
        modeladmin,
        request,
        title="Resume the whole market" if resume else "Halt the whole market",
        intro=(
            f"The whole market is halted: {control.reason}. Resuming reopens every continuous book that is not "
            "halted on its own with an auction. Audited."
            if resume
            else "Halt trading on every asset at once: no new orders and no matching anywhere; open orders stay "
            "and investors can still cancel them. Investors see the reason. Audited."
        ),
        form=form,
        label="Resume the whole market" if resume else "Halt the whole market",
        status=400 if request.method == "POST" else 200,
    )


def controls_summary(market: Market) -> str:
    """The change page's plain-text summary of the controls."""
    band = f"±{market.band_pct} %" if market.band_pct else "platform default"
    auction = (
        f"; next auction {market.next_auction_at:%Y-%m-%d %H:%M} UTC ({market.auction_reason})"
        if (market.next_auction_at)
        else ""
    )
    halted = f"HALTED: {market.halt_reason}" if market.halted else "trading"
    return (
        f"{halted} · {market.get_trading_mode_display()} · band {band} · {market.time_zone} · "
        f"hours {json.dumps(market.trading_hours) if market.trading_hours else 'always open'} · "
        f"auction times {', '.join(market.auction_times) or 'none'}{auction}"
    )
