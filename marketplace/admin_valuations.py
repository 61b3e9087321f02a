"""Back office of valuations (docs/market-integrity.md): staff with
`marketplace.publish_valuation` publish a valuation at once (add page: the evidence is
uploaded through the asset-document service with the data room's validation, or an
existing document of the asset is named), and approve or reject an issuer's pending one
(four eyes: never their own). Every write goes through `marketplace.valuations`, which
checks the permission again and audits. Registered by the last line of
marketplace/admin.py."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from assets.forms import DocumentUploadForm
from assets.models import Asset, AssetDocument
from config.admin_money import MoneyAdminMixin
from config.backoffice import LargeTableAdminMixin, form_errors_from
from config.money import format_money, parse_major_to_minor

from . import valuations
from .models import Valuation


class ValuationPublishForm(DocumentUploadForm):
    """Staff: the valuation, and its evidence as a new upload (validated like the data
    room's) or the id of a document already in the asset's data room."""

    asset = forms.ModelChoiceField(queryset=Asset.objects.filter(status=Asset.Status.LIVE).order_by("name"))
    value_per_fraction = forms.CharField(
        label="Value per fraction", max_length=32, help_text="In the asset's offering currency, e.g. 101.50"
    )
    as_of = forms.DateField(label="Valuation date", widget=forms.DateInput(attrs={"type": "date"}))
    note = forms.CharField(max_length=valuations.NOTE_MAX, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    existing_document = forms.UUIDField(
        required=False,
        label="Or: id of a document already in the asset's data room",
        help_text="Leave the upload empty when you name an existing document.",
    )

    field_order = [
        "asset",
        "value_per_fraction",
        "as_of",
        "note",
        "existing_document",
        "kind",
        "title",
        "file",
        "public_to_investors",
    ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].required = False
        self.fields["title"].required = False

    def clean_value_per_fraction(self) -> int:
        return parse_major_to_minor(self.cleaned_data["value_per_fraction"], field="value per fraction")

    def clean_as_of(self):
        as_of = self.cleaned_data["as_of"]
        failures = valuations.valuation_input_failures(value_per_fraction_minor=1, as_of=as_of, note="")
        if "as_of" in failures:
            raise ValidationError(failures["as_of"])
        return as_of

    def clean(self):
        data = super().clean()
        existing, upload = data.get("existing_document"), data.get("file")
        if existing and upload:
            raise ValidationError("Upload a document or name an existing one, not both.")
        if not existing and not upload and "file" not in self.errors:
            self.add_error("file", "Upload the document that supports the valuation (or name an existing one).")
        if upload and not (data.get("title") or "").strip():
            self.add_error("title", "Give the document a title.")
        return data


@admin.register(Valuation)
class ValuationAdmin(LargeTableAdminMixin, MoneyAdminMixin, admin.ModelAdmin):
    list_display = ["asset", "value", "as_of", "status", "submitted_by", "decided_by", "decided_at", "actions_cell"]
    list_filter = ["status", "currency"]
    search_fields = ["asset__name", "asset__unit_name", "public_id"]
    list_select_related = ["asset", "submitted_by", "decided_by"]
    date_hierarchy = "as_of"
    readonly_fields = (
        "public_id",
        "asset",
        "value_per_fraction_minor",
        "currency",
        "as_of",
        "document",
        "note",
        "status",
        "submitted_by",
        "decided_by",
        "decided_at",
        "decision_reason",
        "created_at",
    )
    fields = readonly_fields

    @admin.display(description="value per fraction", ordering="value_per_fraction_minor")
    def value(self, obj: Valuation) -> str:
        return format_money(obj.value_per_fraction_minor, obj.currency)

    @admin.display(description="staff actions")
    def actions_cell(self, obj: Valuation) -> str:
        if obj.status != Valuation.Status.PENDING:
            return "—"
        return format_html(
            '<a class="button" href="{}">Approve or reject</a>',
            reverse("admin:marketplace_valuation_decide", args=[obj.pk]),
        )

    def has_view_permission(self, request: HttpRequest, obj: Valuation | None = None) -> bool:
        user = request.user
        return user.is_staff and (user.has_perm("marketplace.view_valuation") or valuations.can_publish(user))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return valuations.can_publish(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Valuation | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Valuation | None = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        return [
            path("<int:pk>/decide/", self.admin_site.admin_view(self.decide_view), name="marketplace_valuation_decide"),
            *super().get_urls(),
        ]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        """Publish a valuation at once (its own page: the form uploads a file)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ValuationPublishForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                valuation = self._publish(request, form)
            except ValidationError as exc:
                form_errors_from(form, exc)
            except PermissionDenied as exc:
                form.add_error(None, str(exc) or "You may not do this.")
            else:
                messages.success(
                    request,
                    f"Valuation of {valuation.asset} published: "
                    f"{format_money(valuation.value_per_fraction_minor, valuation.currency)} per fraction "
                    f"as of {valuation.as_of:%Y-%m-%d}.",
                )
                return redirect(reverse("admin:marketplace_valuation_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Publish a valuation",
            "form": form,
            "opts": self.model._meta,
            "intro": "Published at once and shown on the asset's page; the latest one is the reference price "
            "when the book has not traded lately. Audited.",
        }
        return TemplateResponse(
            request, "admin/marketplace/valuation_publish.html", context, status=400 if form.errors else 200
        )

    def _publish(self, request: HttpRequest, form: ValuationPublishForm) -> Valuation:
        data = form.cleaned_data
        asset: Asset = data["asset"]
        # Who may publish, checked before anything is stored (the service checks again).
        if not valuations.can_publish(request.user):
            raise PermissionDenied("Only staff with the valuation permission can publish a valuation.")
        if asset.issuer_id == request.user.pk:
            raise PermissionDenied("Four eyes: the issuer of an asset cannot publish its valuation.")
        failures = valuations.valuation_input_failures(
            value_per_fraction_minor=data["value_per_fraction"], as_of=data["as_of"], note=data["note"]
        )
        if failures:
            raise ValidationError(failures)
        document: AssetDocument | None
        existing: uuid.UUID | None = data.get("existing_document")
        if existing:
            document = AssetDocument.objects.filter(public_id=existing, asset=asset).first()
            if document is None:
                raise ValidationError({"existing_document": ["No document with this id in the asset's data room."]})
        else:
            document = valuations.valuation_document(asset=asset, actor=request.user, data=data)
        return valuations.valuation_publish(
            asset=asset,
            actor=request.user,
            value_per_fraction_minor=data["value_per_fraction"],
            as_of=data["as_of"],
            document=document,
            note=data["note"],
        )

    def decide_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not valuations.can_publish(request.user):
            raise PermissionDenied
        valuation = get_object_or_404(Valuation.objects.select_related("asset", "document", "submitted_by"), pk=pk)
        from .admin import _decision_view  # marketplace.admin imports this module last

        def perform(action: str, text: str) -> str:
            approve = action == "_approve"
            valuations.valuation_decide(valuation=valuation, actor=request.user, approve=approve, reason=text)
            return "Valuation published." if approve else "Valuation rejected; the issuer sees the reason."

        return _decision_view(
            self,
            request,
            valuation,
            title=f"Valuation of {valuation.asset} as of {valuation.as_of:%Y-%m-%d}",
            intro=f"{valuation.submitted_by} proposes {format_money(valuation.value_per_fraction_minor, valuation.currency)} "
            f"per fraction, supported by “{valuation.document.title}” ({valuation.document.get_kind_display()}, "
            f"sha256 {valuation.document.sha256[:16]}…). Note: {valuation.note or '(none)'}. "
            "Approving publishes it on the asset's page; rejecting needs a reason. Audited.",
            label="Reason (required to reject; the issuer sees it)",
            buttons=[("_approve", "Approve and publish"), ("_reject", "Reject")],
            perform=perform,
        )
