import re
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any, Protocol

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten, flatten_fieldsets
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from config.backoffice import LargeTableAdminMixin, ReadOnlyAdmin, ServiceFormAdmin
from config.numbers import parse_id, refuse_foreign_digits
from config.uploads import private_file_response

from .audit import audit_record
from .models import AuditEntry, InvestorProfile, KycApplication, KycDocument, SanctionsEntry, TaxProfile
from .selectors import audit_entries_for
from .services import (
    REVIEW_PERMISSION,
    investor_freeze,
    investor_unfreeze,
    kyc_application_approve,
    kyc_application_reject,
    kyc_application_request_info,
)
from .withholding import COUNTRY_RATES, DEFAULT_RATES, default_rate_bps, rate_for_profile


class QueueFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("waiting", "Waiting for a decision"),
            ("flagged", "Sanctions match, waiting"),
            ("second", "Waiting for a second approval"),
            ("expired", "Approved but expired"),
            ("expiring", "Approval expires within 30 days"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[KycApplication]) -> QuerySet[KycApplication]:
        today = timezone.localdate()
        submitted = queryset.filter(status=KycApplication.Status.SUBMITTED)
        match self.value():
            case "waiting":
                return submitted
            case "flagged":
                return submitted.filter(screening_status=KycApplication.Screening.HIT)
            case "second":
                return submitted.filter(first_approval_by__isnull=False)
            case "expired":
                return queryset.filter(status=KycApplication.Status.APPROVED, expires_at__lt=today)
            case "expiring":
                return queryset.filter(
                    status=KycApplication.Status.APPROVED,
                    expires_at__gte=today,
                    expires_at__lte=today + timedelta(days=30),
                )
        return queryset


class KycDocumentInline(admin.TabularInline):
    model = KycDocument
    extra = 0
    can_delete = False
    fields = ["kind", "document_link", "content_type", "size", "sha256", "uploaded_at"]
    readonly_fields = flatten(fields)

    def has_add_permission(self, request: HttpRequest, obj: KycApplication | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: KycApplication | None = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: KycApplication | None = None) -> bool:
        return request.user.has_perm("compliance.view_kycapplication")

    @admin.display(description="File")
    def document_link(self, doc: KycDocument) -> str:
        url = reverse("admin:compliance_kycapplication_document", args=[doc.public_id])
        return format_html('<a href="{}" download>Download {}</a>', url, doc.original_name)


class KycDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("reject", "Reject"), ("request_info", "Ask for more information")]
    )
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


class KycDecision(Protocol):
    def __call__(self, *, application: KycApplication, reviewer: Any, reason: str) -> KycApplication: ...


DECISIONS: dict[str, tuple[KycDecision, str]] = {
    "approve": (kyc_application_approve, "approved"),
    "reject": (kyc_application_reject, "rejected"),
    "request_info": (kyc_application_request_info, "sent back for more information"),
}


@admin.register(KycApplication)
class KycApplicationAdmin(ReadOnlyAdmin):
    change_form_template = "admin/compliance/kycapplication/change_form.html"
    list_display = [
        "legal_name",
        "user",
        "status",
        "screening_badge",
        "investor_category",
        "country_of_residence",
        "submitted_at",
        "first_approval_by",
        "expires_at",
    ]
    # No date hierarchy: its year links are a DISTINCT over every row on every view.
    list_filter = [
        QueueFilter,
        "status",
        "screening_status",
        "investor_category",
        "country_of_residence",
        "submitted_at",
    ]
    search_fields = ["legal_name", "user__email", "=public_id"]
    ordering = ["submitted_at", "pk"]
    list_select_related = ["user", "first_approval_by"]
    inlines = [KycDocumentInline]
    fieldsets = [
        (
            "Applicant",
            {
                "fields": [
                    "public_id",
                    "user",
                    "legal_name",
                    "date_of_birth",
                    "nationality",
                    "country_of_residence",
                    "address",
                ]
            },
        ),
        ("Investor category", {"fields": ["investor_category", "self_certified"]}),
        ("Sanctions screening", {"fields": ["screening_status", "screening_score", "screening_result", "screened_at"]}),
        (
            "Decision",
            {
                "fields": [
                    "status",
                    "submitted_at",
                    "first_approval_by",
                    "first_approval_at",
                    "first_approval_reason",
                    "decided_by",
                    "decided_at",
                    "decision_reason",
                    "expires_at",
                ]
            },
        ),
        ("History", {"fields": ["audit_trail"]}),
    ]
    readonly_fields = flatten_fieldsets(fieldsets)

    @admin.display(description="Screening", ordering="screening_status")
    def screening_badge(self, app: KycApplication) -> str:
        if app.screening_status == KycApplication.Screening.HIT:
            return format_html("<strong>MATCH {}</strong>", f"{app.screening_score:.0f}")
        return app.get_screening_status_display()

    @admin.display(description="Matched entries")
    def screening_result(self, app: KycApplication) -> str:
        if not app.screening_matches:
            return "No entry at or above the match threshold."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>#{}</td><td>{}</td><td>{}</td></tr>",
            (
                (m["name"], m.get("program", ""), m["ent_num"], "alias" if m.get("is_alias") else "primary", m["score"])
                for m in app.screening_matches
            ),
        )
        return format_html(
            "<table><thead><tr><th>Listed name</th><th>Program</th><th>Entry</th><th>Name type</th><th>Score</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Audit trail")
    def audit_trail(self, app: KycApplication) -> str:
        entries = audit_entries_for(app)
        if not entries:
            return "-"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} · {} · <code>{}</code> {}</li>",
                ((e.created_at.strftime("%Y-%m-%d %H:%M"), e.actor_label, e.action, e.reason) for e in entries),
            ),
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="compliance_kycapplication_decide",
            ),
            path(
                "document/<uuid:public_id>/",
                self.admin_site.admin_view(self.document_view),
                name="compliance_kycapplication_document",
            ),
        ] + super().get_urls()

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        app = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if app is not None:
            extra_context.update(
                decision_form=KycDecisionForm(),
                can_decide=app.status == KycApplication.Status.SUBMITTED and request.user.has_perm(REVIEW_PERMISSION),
                needs_second_approval=app.is_flagged and app.first_approval_by_id is not None,
                application=app,
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def decide_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm(REVIEW_PERMISSION):
            raise PermissionDenied
        pk = parse_id(object_id)
        if pk is None:
            raise Http404("No such KYC application.")
        app = get_object_or_404(KycApplication, pk=pk)
        change_url = reverse("admin:compliance_kycapplication_change", args=[app.pk])
        form = KycDecisionForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose a decision.")
            return redirect(change_url)
        decision, reason = form.cleaned_data["decision"], form.cleaned_data["reason"]
        service, verb = DECISIONS[decision]
        try:
            app = service(application=app, reviewer=request.user, reason=reason)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(change_url)
        if decision == "approve" and app.status != KycApplication.Status.APPROVED:
            messages.warning(
                request, "First approval recorded. A different staff member must give the second approval."
            )
        else:
            messages.success(request, f"The application of {app.legal_name} was {verb}.")
        self.log_change(request, app, f"KYC decision: {decision}" + (f" ({reason})" if reason else ""))
        return redirect(change_url)

    def document_view(self, request: HttpRequest, public_id: uuid.UUID) -> FileResponse:
        if not request.user.has_perm("compliance.view_kycapplication"):
            raise PermissionDenied
        doc = get_object_or_404(KycDocument, public_id=public_id)
        return private_file_response(doc.file, filename=doc.original_name, content_type=doc.content_type)


class InvestorProfileForm(forms.ModelForm):
    class Meta:
        model = InvestorProfile
        fields = ["user", "frozen", "frozen_reason"]

    def clean(self):
        data = super().clean()
        if data.get("frozen") and not (data.get("frozen_reason") or "").strip():
            self.add_error("frozen_reason", "Give a reason for the freeze.")
        return data


@admin.register(InvestorProfile)
class InvestorProfileAdmin(ServiceFormAdmin[InvestorProfile]):
    form = InvestorProfileForm
    service_submit_label = "Save the freeze"
    list_display = ["user", "frozen", "frozen_reason", "frozen_at", "frozen_by"]
    list_filter = ["frozen"]
    search_fields = ["user__email", "user__full_name"]
    autocomplete_fields = ["user"]
    readonly_fields = ["frozen_at", "frozen_by"]
    list_select_related = ["user", "frozen_by"]

    def get_readonly_fields(self, request: HttpRequest, obj: InvestorProfile | None = None) -> list[str]:
        return [*self.readonly_fields, *(["user"] if obj else [])]

    def has_delete_permission(self, request: HttpRequest, obj: InvestorProfile | None = None) -> bool:
        return False

    def service_form(self, request: HttpRequest, obj: InvestorProfile | None, data: QueryDict | None) -> forms.BaseForm:
        return self.get_form(request, obj, change=obj is not None)(data, instance=obj)

    def service_intro(self, request: HttpRequest, obj: InvestorProfile | None) -> str:
        return "A frozen account can neither buy nor sell. Each freeze and unfreeze is checked and audited."

    def service_perform(self, request: HttpRequest, obj: InvestorProfile | None, form: forms.BaseForm) -> str:
        # Freezes go through the services so that each one is checked and audited.
        data = form.cleaned_data
        user = data.get("user")
        if not user:
            assert obj is not None, "only the change page, with its profile, has the user read-only"
            user = obj.user
        if data["frozen"]:
            investor_freeze(user=user, actor=request.user, reason=data["frozen_reason"])
            return f"{user} is frozen."
        investor_unfreeze(user=user, actor=request.user, reason="Unfrozen in the back office")
        return f"{user} is not frozen."


@admin.register(SanctionsEntry)
class SanctionsEntryAdmin(ReadOnlyAdmin):
    list_display = ["name", "ent_num", "is_alias", "sdn_type", "program", "source", "imported_at"]
    list_filter = ["source", "is_alias", "sdn_type", "program"]
    search_fields = ["name", "normalized_name", "=ent_num"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["seq", "created_at", "actor_label", "action", "target_type", "target_repr", "reason"]
    list_filter = ["action", "target_type", "created_at"]
    search_fields = ["actor_label", "target_repr", "target_id", "action"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]


# Tax profiles (withholding on income distributions, compliance/withholding.py) -----------

_PERCENT = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,2})?")


def _tax_snapshot(profile: TaxProfile) -> dict[str, Any]:
    return {
        "tax_residence": str(profile.tax_residence or ""),
        "treaty_form_on_file": profile.treaty_form_on_file,
        "withholding_rate_bps": profile.withholding_rate_bps,
    }


def _pct(bps: int) -> str:
    return f"{bps // 100}.{bps % 100:02d} %"


def parse_rate_percent(raw: str) -> int | None:
    """'26.38' -> 2638 basis points; '' -> None (the country's default applies)."""
    text = (raw or "").strip().rstrip("%").strip()
    if not text:
        return None
    refuse_foreign_digits(text)
    if not _PERCENT.fullmatch(text):
        raise ValidationError("Enter the rate in percent with at most two decimals, e.g. 15 or 26.38.")
    bps = int(Decimal(text).scaleb(2))
    if bps > 10_000:
        raise ValidationError("The rate cannot be more than 100 %.")
    return bps


class TaxProfileForm(forms.ModelForm):
    withholding_rate = forms.CharField(
        label="Withholding rate (%)",
        required=False,
        max_length=8,
        help_text="Set only to override the default, e.g. 15 or 26.38. Empty: the default for the country of tax "
        "residence applies (with the treaty rate when a treaty form is on file).",
    )
    acting_user_id: int | None = None  # the staff member saving (TaxProfileAdmin.get_form)

    class Meta:
        model = TaxProfile
        fields = ["user", "tax_residence", "treaty_form_on_file"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.withholding_rate_bps is not None:
            bps = self.instance.withholding_rate_bps
            self.initial["withholding_rate"] = f"{bps // 100}.{bps % 100:02d}"

    def clean_withholding_rate(self) -> int | None:
        return parse_rate_percent(self.cleaned_data["withholding_rate"])

    def clean(self):
        data = super().clean()
        user = data.get("user") or (self.instance.user if self.instance.user_id else None)
        if user is not None and user.pk == self.acting_user_id:
            raise ValidationError("Nobody sets their own tax profile: ask another compliance officer.")
        return data


def _default_rates_text() -> str:
    rates = ", ".join(
        f"{country} {_pct(without)}" + (f" ({_pct(treaty)} with a treaty form)" if treaty != without else "")
        for country, (without, treaty) in sorted(COUNTRY_RATES.items())
    )
    return f"Defaults: {rates}; any other country, or none known, {_pct(DEFAULT_RATES[0])}."


@admin.register(TaxProfile)
class TaxProfileAdmin(LargeTableAdminMixin, admin.ModelAdmin):
    """Compliance sets an investor's tax residence, treaty form and, if needed, a rate that
    overrides the default. Every save is audited with the values before and after."""

    form = TaxProfileForm
    list_display = [
        "user",
        "tax_residence",
        "treaty_form_on_file",
        "rate_set",
        "rate_in_force",
        "updated_by",
        "updated_at",
    ]
    list_filter = ["treaty_form_on_file", "tax_residence"]
    search_fields = ["user__email", "user__full_name"]
    autocomplete_fields = ["user"]
    list_select_related = ["user", "updated_by"]
    readonly_fields = ["default_rate", "rate_in_force", "updated_by", "updated_at"]

    def get_fieldsets(self, request: HttpRequest, obj: TaxProfile | None = None) -> Any:
        return [
            (None, {"fields": ["user", "tax_residence", "treaty_form_on_file"]}),
            (
                "Withholding",
                {"fields": ["withholding_rate", "default_rate", "rate_in_force"], "description": _default_rates_text()},
            ),
            ("Changed", {"fields": ["updated_by", "updated_at"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: TaxProfile | None = None) -> list[str]:
        return [*self.readonly_fields, *(["user"] if obj else [])]

    def get_form(self, request: HttpRequest, obj: TaxProfile | None = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change, **kwargs)
        return type("TaxProfileFormFor", (form,), {"acting_user_id": request.user.pk})

    def has_delete_permission(self, request: HttpRequest, obj: TaxProfile | None = None) -> bool:
        return False

    @admin.display(description="rate set by compliance")
    def rate_set(self, obj: TaxProfile) -> str:
        return _pct(obj.withholding_rate_bps) if obj.withholding_rate_bps is not None else "—"

    @admin.display(description="default for the country")
    def default_rate(self, obj: TaxProfile) -> str:
        country = str(obj.tax_residence or "")
        treaty = " with a treaty form" if obj.treaty_form_on_file else ""
        return f"{_pct(default_rate_bps(country, obj.treaty_form_on_file))} (default for {country or 'an unknown country'}{treaty})"

    @admin.display(description="rate in force")
    def rate_in_force(self, obj: TaxProfile) -> str:
        rate = rate_for_profile(obj if obj.pk else None)
        return f"{_pct(rate.rate_bps)} ({rate.source})"

    def save_model(self, request: HttpRequest, obj: TaxProfile, form: forms.ModelForm, change: bool) -> None:
        before = _tax_snapshot(TaxProfile.objects.get(pk=obj.pk)) if change else None
        obj.withholding_rate_bps = form.cleaned_data["withholding_rate"]
        obj.updated_by_id = request.user.pk
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action="tax_profile.changed" if change else "tax_profile.created",
            target=obj,
            before=before,
            after=_tax_snapshot(obj),
        )
