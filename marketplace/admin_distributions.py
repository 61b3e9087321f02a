"""Back office of income distributions (marketplace/distributions.py): declare (the
same rules as the issuer's page), approve (four eyes: never the declarer or the issuer),
fund (a deposit with its bank reference, or the issuer's proceeds), pay now, cancel; and
the held payments compliance releases to the investor or returns to the issuer.

Nothing here edits a distribution or a payment: the pages are view-only and every button
calls a service, which checks the permission again, takes the locks and audits.
Registered by the last lines of marketplace/admin.py."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from config.backoffice import ReadOnlyAdmin, ServiceFormAdmin
from config.money import format_money

from . import distribution_selectors, distributions
from .distribution_forms import (
    DistributionDeclareAdminForm,
    DistributionFundForm,
    initial_declaration,
    service_errors,
    service_errors_onto,
)
from .models import Distribution, DistributionPayment, LedgerAccount

D = Distribution.Status
P = DistributionPayment.Status
ACTION_TEMPLATE = "admin/marketplace/distribution/action.html"


def _may(user, *permissions: str) -> bool:
    return bool(user.is_active and user.is_staff and any(user.has_perm(p) for p in permissions))


def _facts(d: Distribution) -> list[tuple[str, str]]:
    f = distribution_selectors.figures(d)
    return [
        ("Asset", str(d.asset)),
        ("Kind", d.get_kind_display()),
        ("Gross", format_money(d.gross_minor, d.currency)),
        ("Per fraction", f"{f.per_fraction} {d.currency} over {f.total_units:,} fractions"),
        ("Funded", format_money(d.funded_minor, d.currency)),
        ("Period", f"{d.period_start:%Y-%m-%d} – {d.period_end:%Y-%m-%d}"),
        ("Record date", f"{timezone.localtime(d.record_at):%Y-%m-%d %H:%M} {timezone.get_current_timezone_name()}"),
        ("Payment date", f"{d.payment_date:%Y-%m-%d}"),
        ("Declared by", f"{d.declared_by} on {timezone.localtime(d.declared_at):%Y-%m-%d %H:%M}"),
        ("Issuer", str(d.asset.issuer)),
        ("Status", d.get_status_display()),
        ("Note", d.note or "—"),
    ]


@admin.register(Distribution)
class DistributionAdmin(ServiceFormAdmin[Distribution]):
    change_form_template = "admin/marketplace/distribution/change_form.html"
    list_display = [
        "asset",
        "kind",
        "gross_minor",
        "funded_minor",
        "status",
        "payment_date",
        "record_at",
        "declared_by",
    ]
    list_filter = ["status", "kind", "currency"]
    search_fields = ["asset__name", "asset__unit_name", "=public_id"]
    list_select_related = ["asset", "declared_by"]
    date_hierarchy = "payment_date"
    fields = [
        "public_id",
        "asset",
        "kind",
        "gross_minor",
        "currency",
        "funded_minor",
        "payable_now",
        "total_units",
        "period_start",
        "period_end",
        "record_at",
        "payment_date",
        "note",
        "document",
        "status",
        "declared_by",
        "declared_at",
        "approved_by",
        "approved_at",
        "paying_started_at",
        "paid_by",
        "paid_at",
        "cancelled_by",
        "cancelled_at",
        "cancel_reason",
        "payments_summary",
    ]
    readonly_fields = cast(list[str], fields)  # names only, no groups
    service_submit_label = "Declare"

    # -- permissions: view-only pages; writes only through the buttons' services

    def has_view_permission(self, request: HttpRequest, obj: Distribution | None = None) -> bool:
        return _may(
            request.user,
            "marketplace.view_distribution",
            distributions.APPROVE_PERMISSION,
            distributions.PAY_PERMISSION,
            distributions.RELEASE_PERMISSION,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _may(request.user, distributions.APPROVE_PERMISSION, distributions.PAY_PERMISSION)

    def has_change_permission(self, request: HttpRequest, obj: Distribution | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Distribution | None = None) -> bool:
        return False

    # -- read-only fields

    @admin.display(description="payable now")
    def payable_now(self, obj: Distribution) -> str:
        return distributions.pay_refusal(obj) or "Yes: approved, fully funded, record date passed."

    @admin.display(description="payments")
    def payments_summary(self, obj: Distribution) -> str:
        rows = (
            DistributionPayment.objects.filter(distribution=obj)
            .values_list("status")
            .annotate(n=Count("pk"), gross=Sum("gross_minor"))
            .order_by("status")
        )
        if not rows:
            return "None yet: the shares are computed when paying starts."
        labels = dict(P.choices)
        url = reverse("admin:marketplace_distributionpayment_changelist") + f"?distribution__id__exact={obj.pk}"
        items = format_html_join(
            "",
            "<li>{}: {} ({})</li>",
            ((labels.get(status, status), n, format_money(gross, obj.currency)) for status, n, gross in rows),
        )
        return format_html('<ul>{}</ul><a href="{}">Every payment</a>', items, url)

    # -- declaring (the add page calls the same service as the issuer's page)

    def service_form(self, request: HttpRequest, obj: Distribution | None, data: QueryDict | None) -> forms.BaseForm:
        return DistributionDeclareAdminForm(data, initial=initial_declaration(timezone.localdate()))

    def service_intro(self, request: HttpRequest, obj: Distribution | None) -> str:
        return (
            "Declared for a live asset in its offering's currency, with the same rules as the issuer's page. "
            "The amounts cannot be changed afterwards (cancel and declare again); a second person approves it. "
            "Audited."
        )

    def service_perform(self, request: HttpRequest, obj: Distribution | None, form: forms.BaseForm) -> str:
        assert isinstance(form, DistributionDeclareAdminForm)
        try:
            d = distributions.distribution_declare(actor=request.user, **form.service_kwargs())
        except ValidationError as exc:
            raise service_errors(exc) from exc
        return (
            f"{d.get_kind_display()} of {d.asset} declared: {format_money(d.gross_minor, d.currency)}, "
            f"paid {d.payment_date:%Y-%m-%d}. Somebody else must approve it."
        )

    # -- the view page's buttons

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            extra_context = {**(extra_context or {}), "staff_actions": self._staff_actions(request, obj)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _staff_actions(self, request: HttpRequest, d: Distribution) -> list[tuple[str, str]]:
        user, actions = request.user, []
        if d.status == D.DECLARED and _may(user, distributions.APPROVE_PERMISSION):
            actions.append(("Approve", reverse("admin:marketplace_distribution_approve", args=[d.pk])))
        if d.status in (D.DECLARED, D.APPROVED) and _may(user, distributions.PAY_PERMISSION):
            if not d.is_fully_funded:
                actions.append(("Fund", reverse("admin:marketplace_distribution_fund", args=[d.pk])))
        if d.status in (D.APPROVED, D.PAYING) and _may(user, distributions.PAY_PERMISSION):
            actions.append(("Pay now", reverse("admin:marketplace_distribution_pay", args=[d.pk])))
        if d.status in (D.DECLARED, D.APPROVED) and _may(
            user, distributions.APPROVE_PERMISSION, distributions.PAY_PERMISSION
        ):
            actions.append(("Cancel", reverse("admin:marketplace_distribution_cancel", args=[d.pk])))
        return actions

    def get_urls(self) -> list[URLPattern]:
        def view(name: str, func) -> URLPattern:
            return path(f"<int:pk>/{name}/", self.admin_site.admin_view(func), name=f"marketplace_distribution_{name}")

        return [
            view("approve", self.approve_view),
            view("fund", self.fund_view),
            view("pay", self.pay_view),
            view("cancel", self.cancel_view),
            *super().get_urls(),
        ]

    def _get(self, pk: int) -> Distribution:
        return get_object_or_404(Distribution.objects.select_related("asset", "asset__issuer", "declared_by"), pk=pk)

    def _change_url(self, d: Distribution) -> str:
        return reverse("admin:marketplace_distribution_change", args=[d.pk])

    def _action_page(
        self,
        request: HttpRequest,
        d: Distribution,
        *,
        title: str,
        intro: str,
        buttons: list[tuple[str, str]],
        form: forms.BaseForm | None = None,
        refusal: str = "",
        status: int = 200,
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "intro": intro,
            "facts": _facts(d),
            "form": form,
            "buttons": buttons,
            "refusal": refusal,
            "back_url": self._change_url(d),
            "opts": self.model._meta,
            "original": d,
        }
        return TemplateResponse(request, ACTION_TEMPLATE, context, status=status)

    def approve_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not _may(request.user, distributions.APPROVE_PERMISSION):
            raise PermissionDenied
        d = self._get(pk)
        if request.method == "POST":
            try:
                distributions.distribution_approve(distribution=d, actor=request.user)
            except (ValidationError, PermissionDenied) as exc:
                _error(request, exc)
            else:
                messages.success(request, "Distribution approved. It is paid once fully funded, on its payment date.")
                return redirect(self._change_url(d))
        return self._action_page(
            request,
            d,
            title=f"Approve: {d}",
            intro="Check the declaration against its evidence. Four eyes: the declarer and the asset's issuer "
            "cannot approve it. Audited.",
            buttons=[("_approve", "Approve the distribution")] if d.status == D.DECLARED else [],
            refusal="" if d.status == D.DECLARED else f"It is {d.get_status_display().lower()}: nothing to approve.",
        )

    def fund_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not _may(request.user, distributions.PAY_PERMISSION):
            raise PermissionDenied
        d = self._get(pk)
        form = DistributionFundForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                d = distributions.distribution_fund(
                    distribution=d,
                    actor=request.user,
                    amount_minor=data["amount"],
                    source=data["source"],
                    bank_reference=data["bank_reference"],
                )
            except ValidationError as exc:
                service_errors_onto(form, exc)
            except PermissionDenied as exc:
                form.add_error(None, str(exc) or "You may not do this.")
            else:
                messages.success(
                    request,
                    f"Funded {format_money(data['amount'], d.currency)}: "
                    f"{format_money(d.funded_minor, d.currency)} of {format_money(d.gross_minor, d.currency)}.",
                )
                return redirect(self._change_url(d))
        proceeds = (
            LedgerAccount.objects.filter(
                kind=LedgerAccount.Kind.ISSUER_PROCEEDS, user_id=d.asset.issuer_id, currency=d.currency
            )
            .values_list("balance", flat=True)
            .first()
        )
        refusal = ""
        if d.status not in (D.DECLARED, D.APPROVED):
            refusal = f"A distribution that is {d.get_status_display().lower()} cannot be funded."
        elif d.is_fully_funded:
            refusal = "It is fully funded."
        return self._action_page(
            request,
            d,
            title=f"Fund: {d}",
            intro=f"Still to fund: {format_money(d.gross_minor - d.funded_minor, d.currency)}. The issuer's proceeds "
            f"account holds {format_money(proceeds or 0, d.currency)}. A deposit is booked from the bank account "
            "with its bank reference. Audited.",
            buttons=[] if refusal else [("_fund", "Fund")],
            form=form,
            refusal=refusal,
            status=400 if form.errors else 200,
        )

    def pay_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not _may(request.user, distributions.PAY_PERMISSION):
            raise PermissionDenied
        d = self._get(pk)
        refusal = "" if d.status == D.PAYING else distributions.pay_refusal(d)
        if request.method == "POST" and not refusal:
            try:
                report = distributions.distribution_pay(distribution=d, actor=request.user)
            except (ValidationError, PermissionDenied) as exc:
                _error(request, exc)
            else:
                if report.already_done:
                    messages.info(request, "It had been paid already; nothing was booked again.")
                else:
                    messages.success(
                        request,
                        f"Paid: {report.paid} share{'s' if report.paid != 1 else ''} paid, {report.held} held for "
                        "compliance. Held payments wait in the payments list.",
                    )
                return redirect(self._change_url(d))
        return self._action_page(
            request,
            d,
            title=f"Pay now: {d}",
            intro="Pays every holder at the record date their share now, instead of waiting for the daily run. "
            "Safe to repeat: a share is never paid twice. Holders compliance stops are held.",
            buttons=[] if refusal else [("_pay", "Pay now")],
            refusal=f"It cannot be paid now. {refusal}" if refusal else "",
        )

    def cancel_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not _may(request.user, distributions.APPROVE_PERMISSION, distributions.PAY_PERMISSION):
            raise PermissionDenied
        d = self._get(pk)
        from .admin import _decision_view  # marketplace.admin imports this module last

        def perform(action: str, text: str) -> str:
            distributions.distribution_cancel(distribution=d, actor=request.user, reason=text)
            return "Distribution cancelled; any funding went back to the issuer's proceeds."

        return _decision_view(
            self,
            request,
            d,
            title=f"Cancel: {d}",
            intro=f"{d.get_status_display()}, funded {format_money(d.funded_minor, d.currency)} of "
            f"{format_money(d.gross_minor, d.currency)}. Cancelling returns the funding to the issuer's proceeds. "
            "Audited.",
            label="Reason (required; the issuer sees it)",
            buttons=[("_cancel", "Cancel the distribution")],
            perform=perform,
        )


def _error(request: HttpRequest, exc: Exception) -> None:
    text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else (str(exc) or "You may not do this.")
    messages.error(request, text)


@admin.register(DistributionPayment)
class DistributionPaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "distribution",
        "investor",
        "treasury",
        "units",
        "gross",
        "withheld",
        "net",
        "status",
        "hold_reason",
        "decide_cell",
    ]
    list_filter = ["status", "treasury"]
    search_fields = ["investor__email", "distribution__asset__name", "=public_id"]
    list_select_related = ["distribution", "distribution__asset", "investor"]
    fields = [
        "public_id",
        "distribution",
        "investor",
        "treasury",
        "units",
        "gross",
        "withholding_rate",
        "withheld",
        "net",
        "status",
        "hold_codes",
        "hold_reason",
        "entry",
        "paid_at",
        "decided_by",
        "decided_at",
        "decide_cell",
    ]
    readonly_fields = cast(list[str], fields)  # names only, no groups

    def has_view_permission(self, request: HttpRequest, obj: DistributionPayment | None = None) -> bool:
        return _may(
            request.user,
            "marketplace.view_distributionpayment",
            distributions.RELEASE_PERMISSION,
            distributions.PAY_PERMISSION,
            distributions.APPROVE_PERMISSION,
        )

    # Amounts in the distribution's currency (the payment row has no currency of its own).
    @admin.display(description="gross", ordering="gross_minor")
    def gross(self, obj: DistributionPayment) -> str:
        return format_money(obj.gross_minor, obj.distribution.currency)

    @admin.display(description="withheld", ordering="withheld_minor")
    def withheld(self, obj: DistributionPayment) -> str:
        if obj.status not in DistributionPayment.PAID_OUT:
            return "—"
        return f"{format_money(obj.withheld_minor, obj.distribution.currency)} ({obj.withholding_rate_bps / 100:g} %)"

    @admin.display(description="net", ordering="net_minor")
    def net(self, obj: DistributionPayment) -> str:
        return (
            format_money(obj.net_minor, obj.distribution.currency)
            if obj.status in DistributionPayment.PAID_OUT
            else "—"
        )

    @admin.display(description="withholding rate")
    def withholding_rate(self, obj: DistributionPayment) -> str:
        return f"{obj.withholding_rate_bps / 100:g} %"

    @admin.display(description="compliance")
    def decide_cell(self, obj: DistributionPayment) -> str:
        if obj.status != P.HELD:
            return "—"
        return format_html(
            '<a class="button" href="{}">Release or return</a>',
            reverse("admin:marketplace_distributionpayment_decide", args=[obj.pk]),
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:pk>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="marketplace_distributionpayment_decide",
            ),
            *super().get_urls(),
        ]

    def decide_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not _may(request.user, distributions.RELEASE_PERMISSION):
            raise PermissionDenied
        payment = get_object_or_404(
            DistributionPayment.objects.select_related("distribution", "distribution__asset", "investor"), pk=pk
        )
        from .admin import _decision_view  # marketplace.admin imports this module last

        def perform(action: str, text: str) -> str:
            release = action == "_release"
            distributions.held_payment_decide(payment=payment, actor=request.user, release=release, reason=text)
            if release:
                return "Payment released: the investor is paid (tax withheld at their rate)."
            return "Payment returned to the issuer's proceeds."

        d = payment.distribution
        return _decision_view(
            self,
            request,
            payment,
            title=f"Held payment: {payment.investor}, {d}",
            intro=f"{payment.units:,} fractions, {format_money(payment.gross_minor, d.currency)} gross, held because: "
            f"{payment.hold_reason or payment.hold_codes or '(no reason recorded)'}. Release it once the investor "
            "may be paid again (checked again now), or return it to the issuer. Audited.",
            label="Reason (required)",
            buttons=[("_release", "Release: pay the investor"), ("_return", "Return to the issuer")],
            perform=perform,
        )
