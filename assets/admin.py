from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.defaultfilters import filesizeformat, pluralize
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django_countries import countries

from chain.templatetags.chain_links import asset_link, txid_link
from config.admin_money import MoneyAdminMixin
from config.backoffice import LargeTableAdminMixin
from config.numbers import WHOLE_NUMBER_FIELDS

from . import services
from .forms import ReviewDecisionForm
from .models import Asset, AssetDocument, AssetImage

ISSUER_FIELDS = (
    "issuer",
    "name",
    "category",
    "description",
    "location",
    "country",
    "valuation_minor",
    "valuation_date",
    "currency",
    "total_fractions",
    "unit_name",
    "asset_name",
    "price_per_fraction_minor",
    "fractions_for_sale",
    "min_purchase",
    "max_purchase",
    "offering_opens_at",
    "offering_closes_at",
)
WORKFLOW_FIELDS = (
    "status",
    "submitted_at",
    "reviewed_by",
    "reviewed_at",
    "review_comment",
    "failure_reason",
    "asa_id_link",
    "creation_txid_link",
    "creation_round",
    "metadata_hash",
    "live_at",
)


class AssetDocumentInline(admin.TabularInline):
    model = AssetDocument
    extra = 0
    can_delete = False
    fields = ("kind", "title", "download", "content_type", "size", "sha256", "public_to_investors", "uploaded_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Asset | None = None) -> bool:
        return False

    @admin.display(description="File")
    def download(self, obj: AssetDocument) -> str:
        return format_html('<a href="{}">{}</a>', reverse("assets:document", args=[obj.public_id]), obj.original_name)


class _ShownOnlyFormSet(BaseInlineFormSet):
    """A formset to show rows, never to edit them: it ignores the change form's POST, so
    saving the asset's other fields neither needs nor touches it."""

    def __init__(self, data=None, files=None, *args, **kwargs):
        super().__init__(None, None, *args, **kwargs)

    def is_valid(self) -> bool:
        return True

    def save(self, commit: bool = True) -> list:
        self.new_objects, self.changed_objects, self.deleted_objects = [], [], []
        return []


def _can_view_gallery(request: HttpRequest) -> bool:
    # Moderating an asset's public page belongs to staff who may view / change the asset
    # (the admin role), not to separate image permissions nobody is granted.
    return request.user.has_perm("assets.view_asset")


def _image_preview(obj: AssetImage) -> str:
    return format_html(
        '<a href="{}"><img src="{}" alt="{}" width="120" loading="lazy"></a>',
        reverse("assets:image", args=[obj.public_id]),
        reverse("assets:image_thumbnail", args=[obj.public_id]),
        obj.caption or f"Photo {obj.position}",
    )


class AssetImageInline(admin.TabularInline):
    """The public gallery on the asset's page, to look at. Photos are added by the issuer
    in the app and taken down from "Gallery photos" (AssetImageAdmin's action), never by
    this form: a removal button here would be the change form's default button (Enter)."""

    model = AssetImage
    formset = _ShownOnlyFormSet
    extra = 0
    can_delete = False
    fields = ("preview", "caption", "dimensions", "size", "uploaded_by", "created_at", "moderate")
    readonly_fields = fields
    verbose_name = "gallery photo"

    def has_view_permission(self, request: HttpRequest, obj: Asset | None = None) -> bool:
        return _can_view_gallery(request)

    def has_change_permission(self, request: HttpRequest, obj: Asset | None = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest, obj: Asset | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("uploaded_by")

    @admin.display(description="Photo")
    def preview(self, obj: AssetImage) -> str:
        return _image_preview(obj)

    @admin.display(description="Pixels")
    def dimensions(self, obj: AssetImage) -> str:
        return f"{obj.width} × {obj.height}"

    @admin.display(description="")
    def moderate(self, obj: AssetImage) -> str:
        url = reverse("admin:assets_assetimage_changelist") + f"?asset__id__exact={obj.asset_id}"
        return format_html('<a href="{}">Remove photos…</a>', url)


@admin.register(AssetImage)
class AssetImageAdmin(LargeTableAdminMixin, admin.ModelAdmin):
    """Every gallery photo, for staff to take one down: the action goes through
    services.asset_image_remove (audited; the files are deleted on commit)."""

    list_display = ("preview", "asset", "caption", "size_text", "uploaded_by", "created_at")
    list_filter = ("asset__status",)
    search_fields = ("asset__name", "caption", "uploaded_by__email")
    list_select_related = ("asset", "uploaded_by")
    fields = ("preview", "asset", "caption", "content_type", "size_text", "uploaded_by", "created_at")
    readonly_fields = fields
    actions = ["remove_from_gallery"]

    def has_view_permission(self, request: HttpRequest, obj: AssetImage | None = None) -> bool:
        return _can_view_gallery(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _can_view_gallery(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AssetImage | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AssetImage | None = None) -> bool:
        return False  # Django's own delete would leave the files and write no audit entry

    def has_remove_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(services.IMAGE_REMOVE_PERMISSION)

    @admin.display(description="Photo")
    def preview(self, obj: AssetImage) -> str:
        return _image_preview(obj)

    @admin.display(description="Size", ordering="size")
    def size_text(self, obj: AssetImage) -> str:
        return f"{obj.width} × {obj.height}, {filesizeformat(obj.size)}"

    @admin.action(description="Remove the selected photos from their galleries", permissions=["remove"])
    def remove_from_gallery(self, request: HttpRequest, queryset: QuerySet[AssetImage]) -> None:
        removed = 0
        for image in queryset.select_related("asset"):
            services.asset_image_remove(image=image, actor=request.user)
            removed += 1
        self.message_user(request, f"{removed} photo{pluralize(removed)} removed.", messages.SUCCESS)


class AssetAdminForm(forms.ModelForm):
    """Staff pick the allowed countries of residence from the ISO 3166-1 list (the model
    validates the stored list again)."""

    allowed_countries = forms.MultipleChoiceField(
        choices=countries,
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 12}),
        help_text="Investors resident in these countries may buy; none selected means any not blocked. "
        "Hold Ctrl (⌘ on a Mac) to select several.",
    )

    class Meta:
        model = Asset
        fields = [
            "allowed_countries",
            "accreditation_required",
            "min_holding",
            "max_holding",
            "max_holders",
            "lockup_days",
        ]


@admin.register(Asset)
class AssetAdmin(LargeTableAdminMixin, MoneyAdminMixin, admin.ModelAdmin):
    """The issuance review queue. Decisions go through services (four eyes, audit log,
    minting through the outbox); staff edit only the transfer restrictions here."""

    list_display = ("name", "issuer", "category", "status", "submitted_at", "total_fractions", "asa_id_link")
    # No date hierarchy: its year links are a DISTINCT over every row on every view.
    list_filter = ("status", "category", "currency", "submitted_at")
    search_fields = ("name", "issuer__email", "unit_name", "asset_name", "location")
    list_select_related = ("issuer",)
    inlines = [AssetDocumentInline, AssetImageInline]
    readonly_fields = ISSUER_FIELDS + WORKFLOW_FIELDS
    fieldsets = (
        ("Asset", {"fields": ISSUER_FIELDS}),
        (
            "Transfer restrictions (edited by staff)",
            {
                "fields": (
                    "allowed_countries",
                    "accreditation_required",
                    "min_holding",
                    "max_holding",
                    "max_holders",
                    "lockup_days",
                )
            },
        ),
        ("Review and minting", {"fields": WORKFLOW_FIELDS}),
    )
    form = AssetAdminForm
    change_form_template = "admin/assets/asset/change_form.html"
    formfield_overrides = WHOLE_NUMBER_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # issuers register assets in the app, not staff in admin

    @admin.display(description="ASA id", ordering="asa_id")
    def asa_id_link(self, obj: Asset) -> str:
        return asset_link(obj.asa_id) if obj.asa_id else "—"

    @admin.display(description="Creation txid")
    def creation_txid_link(self, obj: Asset) -> str:
        return txid_link(obj.creation_txid) if obj.creation_txid else "—"

    def has_delete_permission(self, request: HttpRequest, obj: Asset | None = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        return [
            path("<int:pk>/review/", self.admin_site.admin_view(self.review_view), name="assets_asset_review"),
            path("<int:pk>/retry-mint/", self.admin_site.admin_view(self.retry_view), name="assets_asset_retry"),
        ] + super().get_urls()

    def review_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm("assets.review_asset"):
            raise PermissionDenied  # before the lookup: no existence oracle for other staff
        asset = get_object_or_404(Asset.objects.select_related("issuer"), pk=pk)
        form = ReviewDecisionForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            decision = request.POST.get("decision", "")
            action = {
                "approve": services.asset_approve,
                "request_changes": services.asset_request_changes,
                "reject": services.asset_reject,
            }.get(decision)
            if action is None:
                form.add_error(None, "Choose approve, request changes or reject.")
            else:
                try:
                    action(asset=asset, reviewer=request.user, comment=form.cleaned_data["comment"])
                except (ValidationError, PermissionDenied) as exc:
                    form.add_error(None, " ".join(getattr(exc, "messages", [str(exc)])))
                else:
                    self.message_user(request, f"Decision recorded for “{asset}”.", messages.SUCCESS)
                    return redirect("admin:assets_asset_change", asset.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "asset": asset,
            "form": form,
            "documents": asset.documents.all(),
            "title": f"Review {asset}",
            "is_own": asset.issuer_id == request.user.pk,
        }
        return TemplateResponse(request, "admin/assets/asset/review.html", context)

    def retry_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST" or not request.user.has_perm("assets.review_asset"):
            raise PermissionDenied
        asset = get_object_or_404(Asset, pk=pk)
        try:
            services.asset_mint_retry(asset=asset, actor=request.user)
            self.message_user(request, "Minting queued again.", messages.SUCCESS)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
        return redirect("admin:assets_asset_change", asset.pk)
