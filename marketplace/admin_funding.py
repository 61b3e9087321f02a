"""Back office of funding (docs/funding.md): staff upload bank statements (camt.053 or
CSV) and work the review queue of lines no payment reference matched: assign a line to
an investor (booked as a deposit; four eyes: never to themselves) or mark it returned.
Every write goes through `marketplace.funding`, which checks the permissions again and
audits. Registered by one line at the end of marketplace/admin.py."""

from __future__ import annotations

from typing import cast

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from accounts.models import User
from config.backoffice import CurrencyFilter, ReadOnlyAdmin, form_errors_from
from config.money import format_money
from config.numbers import IdChoiceField

from . import funding
from .models import BankStatement, BankStatementLine

LS = BankStatementLine.Status
STATEMENT_EXTENSIONS = (".xml", ".csv")


class StatementUploadForm(forms.Form):
    file = forms.FileField(
        label="Statement file",
        help_text="ISO 20022 camt.053 (.xml) or the CSV format of docs/funding.md (.csv).",
        widget=forms.ClearableFileInput(attrs={"accept": ".xml,.csv,text/xml,application/xml,text/csv"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        name = (upload.name or "").lower()
        if not name.endswith(STATEMENT_EXTENSIONS):
            raise ValidationError("Upload a camt.053 .xml file or a .csv statement.")
        if upload.size > settings.BANK_STATEMENT_MAX_BYTES:
            raise ValidationError(f"The file is larger than {settings.BANK_STATEMENT_MAX_BYTES:,} bytes.")
        content = upload.read(settings.BANK_STATEMENT_MAX_BYTES + 1)
        if len(content) > settings.BANK_STATEMENT_MAX_BYTES:
            raise ValidationError(f"The file is larger than {settings.BANK_STATEMENT_MAX_BYTES:,} bytes.")
        head = content[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
        is_xml = head.startswith(b"<")
        if name.endswith(".xml") != is_xml:
            raise ValidationError("The content does not match the extension: .xml must be XML, .csv must be CSV text.")
        if b"\x00" in content:
            raise ValidationError("The file is binary, not a statement.")
        return upload.name, content


class LineAssignForm(forms.Form):
    investor = IdChoiceField(
        queryset=User.objects.none(), help_text="Whose money it is (by their email). Never your own account."
    )
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why this investor, e.g. “remitter name and amount match the investor's call of 3 May”. Audited.",
    )

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["investor"]
        assert isinstance(field, IdChoiceField)
        field.queryset = User.objects.filter(is_active=True).exclude(pk=actor.pk).order_by("email")


class LineReturnForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why it goes back to the sender. Make the transfer back in the bank; this records the decision.",
    )


def _can(request: HttpRequest, perm: str) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and user.has_perm(perm))


@admin.register(BankStatement)
class BankStatementAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "file_name",
        "account_iban",
        "imported_by",
        "imported_at",
        "lines_total",
        "lines_matched",
        "lines_review",
        "lines_skipped",
        "lines_link",
    ]
    list_filter = ["format"]
    search_fields = ["file_name", "statement_id", "file_sha256", "account_iban"]
    list_select_related = ["imported_by"]
    fields = [
        "format",
        "file_name",
        "file_sha256",
        "statement_id",
        "account_iban",
        "imported_by",
        "imported_at",
        "lines_total",
        "lines_matched",
        "lines_review",
        "lines_skipped",
        "lines_link",
    ]
    readonly_fields = cast(list[str], fields)  # names only, no groups

    @admin.display(description="lines")
    def lines_link(self, obj: BankStatement) -> str:
        url = reverse("admin:marketplace_bankstatementline_changelist")
        return format_html(
            '<a href="{}?status=all&amp;statement__id__exact={}">Lines of this statement</a>', url, obj.pk
        )

    def has_view_permission(self, request: HttpRequest, obj: BankStatement | None = None) -> bool:
        return _can(request, "marketplace.view_bankstatement") or _can(request, funding.IMPORT_PERMISSION)

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return _can(request, funding.IMPORT_PERMISSION)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        """Upload a statement (its own page: the form sends a file)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = StatementUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            file_name, content = form.cleaned_data["file"]
            try:
                statement = funding.statement_import(file_name=file_name, content=content, actor=request.user)
            except ValidationError as exc:
                form_errors_from(form, exc)
            except PermissionDenied as exc:
                form.add_error(None, str(exc) or "You may not do this.")
            else:
                messages.success(
                    request,
                    f"Imported {statement.file_name}: {statement.lines_total} "
                    f"{'entry' if statement.lines_total == 1 else 'entries'}, {statement.lines_matched} "
                    f"booked as deposits, {statement.lines_review} to review, {statement.lines_skipped} skipped.",
                )
                return redirect(reverse("admin:marketplace_bankstatement_change", args=[statement.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Import a bank statement",
            "form": form,
            "opts": self.model._meta,
            "max_bytes": settings.BANK_STATEMENT_MAX_BYTES,
            "intro": "Credits whose remittance information holds one valid payment reference of a known investor are "
            "booked as deposits at once (by you: your own reference is left for another staff member); the others "
            "wait in the review queue with the reason. The same file, or an entry already imported from another "
            "file, is never booked twice. Audited.",
        }
        return TemplateResponse(
            request, "admin/marketplace/statement_upload.html", context, status=400 if form.errors else 200
        )


class ReviewQueueFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("all", "All"), *LS.choices]

    def choices(self, changelist):
        # "Waiting for review" is the default view: the queue.
        value = self.value() or LS.REVIEW
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        value = self.value() or LS.REVIEW
        return queryset if value == "all" else queryset.filter(status=value)


@admin.register(BankStatementLine)
class BankStatementLineAdmin(ReadOnlyAdmin):
    list_display = [
        "entry_reference",
        "booking_date",
        "amount",
        "remitter_name",
        "payment_reference",
        "status",
        "reason",
        "investor",
        "review_link",
    ]
    list_filter = [ReviewQueueFilter, CurrencyFilter, "statement"]
    search_fields = ["entry_reference", "payment_reference", "remitter_name", "remitter_iban", "remittance_info"]
    list_select_related = ["investor", "statement"]
    fields = [
        "statement",
        "entry_reference",
        "amount",
        "booking_date",
        "remitter_name",
        "remitter_iban",
        "remittance_info",
        "payment_reference",
        "status",
        "reason",
        "investor",
        "deposit",
        "decided_by",
        "decided_at",
        "created_at",
        "review_link",
    ]
    readonly_fields = cast(list[str], fields)  # names only, no groups

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, obj: BankStatementLine) -> str:
        return format_money(obj.amount_minor, obj.currency)

    @admin.display(description="decision")
    def review_link(self, obj: BankStatementLine) -> str:
        if obj.status != LS.REVIEW:
            return "—"
        return format_html(
            '<a class="button" href="{}">Assign or return</a>',
            reverse("admin:marketplace_bankstatementline_review", args=[obj.pk]),
        )

    def has_view_permission(self, request: HttpRequest, obj: BankStatementLine | None = None) -> bool:
        return _can(request, "marketplace.view_bankstatementline") or _can(request, funding.REVIEW_PERMISSION)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:pk>/review/",
                self.admin_site.admin_view(self.review_view),
                name="marketplace_bankstatementline_review",
            ),
            *super().get_urls(),
        ]

    def review_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not _can(request, funding.REVIEW_PERMISSION):
            raise PermissionDenied
        line = get_object_or_404(BankStatementLine.objects.select_related("statement"), pk=pk)
        assign_form = LineAssignForm(
            request.POST if "_assign" in request.POST else None, actor=request.user, prefix="assign"
        )
        return_form = LineReturnForm(request.POST if "_return" in request.POST else None, prefix="return")
        if request.method == "POST":
            form: forms.Form = assign_form if "_assign" in request.POST else return_form
            if form.is_valid():
                try:
                    if form is assign_form:
                        investor = assign_form.cleaned_data["investor"]
                        funding.statement_line_assign(
                            line=line, investor=investor, actor=request.user, reason=form.cleaned_data["reason"]
                        )
                        message = (
                            f"Booked {format_money(line.amount_minor, line.currency)} as a deposit for {investor}."
                        )
                    else:
                        funding.statement_line_return(line=line, actor=request.user, reason=form.cleaned_data["reason"])
                        message = "Marked as returned. Make the transfer back to the sender in the bank."
                except ValidationError as exc:
                    form_errors_from(form, exc)
                except PermissionDenied as exc:
                    form.add_error(None, str(exc) or "You may not do this.")
                else:
                    messages.success(request, message)
                    return redirect(reverse("admin:marketplace_bankstatementline_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Review {format_money(line.amount_minor, line.currency)} from {line.remitter_name or 'an unknown sender'}",
            "line": line,
            "amount": format_money(line.amount_minor, line.currency),
            "assign_form": assign_form,
            "return_form": return_form,
            "opts": self.model._meta,
            "decided": line.status != LS.REVIEW,
        }
        status = 400 if (assign_form.errors or return_form.errors) else 200
        return TemplateResponse(request, "admin/marketplace/statement_line_review.html", context, status=status)
