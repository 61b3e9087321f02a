"""Back office of payouts (docs/funding.md, "Payouts"): the review queue of payout
accounts whose holder's name differs from the verified KYC name, and payout batches
(export a SEPA pain.001 file, mark it sent, cancel it). Every write goes through
marketplace.payouts, which checks the permission again, takes the locks and audits.
Registered by the last lines of marketplace/admin.py."""

from __future__ import annotations

from typing import cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from config.backoffice import CurrencyFilter, ReadOnlyAdmin
from config.money import format_money

from . import payouts
from .models import PayoutAccount, PayoutBatch, Withdrawal


@admin.register(PayoutAccount)
class PayoutAccountAdmin(ReadOnlyAdmin):
    list_display = [
        "holder_name",
        "investor",
        "iban_masked",
        "status",
        "name_matches_kyc",
        "usable_from",
        "created_at",
        "review_cell",
    ]
    list_filter = ["status", "name_matches_kyc"]
    search_fields = ["investor__email", "holder_name", "=iban"]
    list_select_related = ["investor", "reviewed_by"]
    fields = [
        "public_id",
        "investor",
        "kyc_name",
        "holder_name",
        "label",
        "iban",
        "bic",
        "status",
        "name_matches_kyc",
        "usable_from",
        "reviewed_by",
        "reviewed_at",
        "review_reason",
        "created_at",
        "review_cell",
    ]
    readonly_fields = cast(list[str], fields)  # names only, no groups

    @admin.display(description="IBAN")
    def iban_masked(self, obj: PayoutAccount) -> str:
        return payouts.mask_iban(obj.iban)

    @admin.display(description="verified KYC name")
    def kyc_name(self, obj: PayoutAccount) -> str:
        return payouts.verified_legal_name(obj.investor) or "(no approved KYC)"

    @admin.display(description="review")
    def review_cell(self, obj: PayoutAccount) -> str:
        if obj.status != PayoutAccount.Status.REVIEW:
            return "—"
        return format_html(
            '<a class="button" href="{}">Clear or reject</a>',
            reverse("admin:marketplace_payoutaccount_review", args=[obj.pk]),
        )

    def has_view_permission(self, request: HttpRequest, obj: PayoutAccount | None = None) -> bool:
        user = request.user
        return user.is_staff and (
            user.has_perm("marketplace.view_payoutaccount") or user.has_perm(payouts.REVIEW_PERMISSION)
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:pk>/review/",
                self.admin_site.admin_view(self.review_view),
                name="marketplace_payoutaccount_review",
            ),
            *super().get_urls(),
        ]

    def review_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm(payouts.REVIEW_PERMISSION):
            raise PermissionDenied
        account = get_object_or_404(PayoutAccount.objects.select_related("investor"), pk=pk)
        from .admin import _decision_view  # marketplace.admin imports this module last

        def perform(action: str, text: str) -> str:
            clear = action == "_clear"
            payouts.payout_account_review(account=account, actor=request.user, clear=clear, reason=text)
            return "Account cleared; the investor is told." if clear else "Account rejected; the investor is told."

        kyc = payouts.verified_legal_name(account.investor) or "(no approved KYC)"
        return _decision_view(
            self,
            request,
            account,
            title=f"Payout account of {account.investor}",
            intro=f"Holder's name on the account: “{account.holder_name}”. Verified KYC legal name: “{kyc}”. "
            f"IBAN {account.iban}{' / BIC ' + account.bic if account.bic else ''}. Clear it only when the account "
            "is the investor's own (e.g. a married name, a joint account); four eyes: not your own. Audited.",
            label="Reason (required to reject; the investor reads it)",
            buttons=[("_clear", "Clear: the account is the investor's"), ("_reject", "Reject")],
            perform=perform,
        )


class BatchWithdrawalInline(admin.TabularInline):
    model = Withdrawal
    fk_name = "batch"
    fields = ["short_id", "investor", "amount", "status", "pay_to", "bank_reference"]
    readonly_fields = cast(list[str], fields)  # names only, no groups
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="withdrawal")
    def short_id(self, obj: Withdrawal) -> str:
        return obj.public_id.hex[:8]

    @admin.display(description="amount")
    def amount(self, obj: Withdrawal) -> str:
        return format_money(obj.amount_minor, obj.currency)

    @admin.display(description="pay to")
    def pay_to(self, obj: Withdrawal) -> str:
        account = obj.payout_account
        return f"{account.holder_name}, {account.iban}" if account else "—"


@admin.register(PayoutBatch)
class PayoutBatchAdmin(ReadOnlyAdmin):
    list_display = ["message_id", "currency", "status", "count", "total", "created_by", "created_at", "sent_at"]
    list_filter = ["status", CurrencyFilter]
    search_fields = ["message_id", "=file_sha256"]
    list_select_related = ["created_by", "sent_by"]
    fields = [
        "message_id",
        "currency",
        "status",
        "count",
        "total",
        "file_sha256",
        "created_by",
        "created_at",
        "sent_by",
        "sent_at",
        "decide_cell",
    ]
    readonly_fields = cast(list[str], fields)  # names only, no groups
    inlines = [BatchWithdrawalInline]

    @admin.display(description="total", ordering="total_minor")
    def total(self, obj: PayoutBatch) -> str:
        return format_money(obj.total_minor, obj.currency)

    @admin.display(description="staff actions")
    def decide_cell(self, obj: PayoutBatch) -> str:
        if obj.status != PayoutBatch.Status.EXPORTED:
            return "—"
        return format_html(
            '<a class="button" href="{}">Mark sent or cancel</a>',
            reverse("admin:marketplace_payoutbatch_decide", args=[obj.pk]),
        )

    def has_view_permission(self, request: HttpRequest, obj: PayoutBatch | None = None) -> bool:
        user = request.user
        return user.is_staff and (
            user.has_perm("marketplace.view_payoutbatch") or user.has_perm(payouts.PAY_PERMISSION)
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path("export/", self.admin_site.admin_view(self.export_view), name="marketplace_payoutbatch_export"),
            path(
                "<int:pk>/decide/", self.admin_site.admin_view(self.decide_view), name="marketplace_payoutbatch_decide"
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {**(extra_context or {}), "can_pay": request.user.has_perm(payouts.PAY_PERMISSION)}
        return super().changelist_view(request, extra_context)

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """GET: the withdrawals waiting for a payout file; POST: export the ticked ones and
        download the pain.001 file."""
        if not request.user.has_perm(payouts.PAY_PERMISSION):
            raise PermissionDenied
        currency = payouts.SEPA_CURRENCY
        if request.method == "POST":
            raw_ids = request.POST.getlist("withdrawal")
            ids = [int(i) for i in raw_ids if i.isascii() and i.isdigit() and len(i) < 19]
            try:
                if not ids:
                    raise ValidationError("Tick the withdrawals to pay.")
                batch, xml = payouts.payout_batch_export(currency=currency, actor=request.user, withdrawal_ids=ids)
            except (ValidationError, PermissionDenied) as exc:
                messages.error(request, "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc))
            else:
                response = HttpResponse(xml, content_type="application/xml")
                response["Content-Disposition"] = f'attachment; filename="payout-{batch.message_id}.xml"'
                return response
        queue = list(
            payouts.payable_withdrawals(currency=currency)
            .exclude(investor_id=request.user.pk)
            .select_related("investor", "payout_account")
            .order_by("pk")
        )
        total = (
            payouts.payable_withdrawals(currency=currency)
            .exclude(investor_id=request.user.pk)
            .aggregate(s=Sum("amount_minor"))["s"]
        )
        rows = format_html_join(
            "",
            '<tr><td><input type="checkbox" name="withdrawal" value="{}" checked aria-label="Pay {}"></td>'
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    w.pk,
                    w.public_id.hex[:8],
                    w.public_id.hex[:8],
                    w.investor,
                    format_money(w.amount_minor, w.currency),
                    w.payout_account.holder_name if w.payout_account else "",
                    w.payout_account.iban if w.payout_account else "",
                )
                for w in queue
            ),
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Export a SEPA payout file",
            "opts": self.model._meta,
            "rows": rows,
            "count": len(queue),
            "total": format_money(total or 0, currency),
            "debtor": self._debtor_text(),
        }
        return TemplateResponse(request, "admin/marketplace/payout_export.html", context)

    @staticmethod
    def _debtor_text() -> str:
        try:
            debtor = payouts.debtor_account()
        except ValidationError as exc:
            return "not configured: " + "; ".join(exc.messages)
        return f"{debtor['name']}, {debtor['IBAN']}{' / ' + debtor['BIC'] if debtor['BIC'] else ''}"

    def decide_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm(payouts.PAY_PERMISSION):
            raise PermissionDenied
        batch = get_object_or_404(PayoutBatch, pk=pk)
        from .admin import _decision_view  # marketplace.admin imports this module last

        def perform(action: str, text: str) -> str:
            if action == "_sent":
                payouts.payout_batch_mark_sent(batch=batch, actor=request.user)
                return f"Batch marked sent: {payouts.batch_summary(batch)} paid; the investors are told."
            payouts.payout_batch_cancel(batch=batch, actor=request.user, reason=text)
            return "Batch cancelled; its withdrawals are back in the queue. Do not send its file."

        return _decision_view(
            self,
            request,
            batch,
            title=f"Payout batch {batch.message_id}",
            intro=f"{payouts.batch_summary(batch)}. Mark it sent once the bank accepted the file: every withdrawal "
            "in it becomes paid (once, however often this is clicked). Cancel it if the file will not be sent: "
            "the withdrawals go back to the queue. Audited.",
            label="Note (optional, kept in the audit log when cancelling)",
            buttons=[("_sent", "Mark sent: the bank accepted the file"), ("_cancel", "Cancel the batch")],
            perform=perform,
        )
