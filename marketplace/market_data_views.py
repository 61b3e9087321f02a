"""Market data pages (docs/market-integrity.md): the price chart of an asset (an HTML
fragment with server-side SVG, swapped by HTMX between ranges), the same series as JSON,
and the issuer's valuation page (upload the evidence through the asset-document service,
then submit the valuation for staff approval).

Who sees the chart and the JSON: whoever may see the asset in the catalogue
(`assets.selectors.asset_get_for_viewer`: a live asset is public, login not required;
anything else only to its issuer and reviewers, else 404) — the offering page's rule."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods

from assets import selectors as asset_selectors
from assets.catalogue_cache import VERSION_KEY as CATALOGUE_VERSION
from assets.forms import DocumentUploadForm
from assets.models import AssetDocument
from config import fragment_cache
from config.money import parse_major_to_minor

from . import market_data, valuations
from .charts import price_chart_svg
from .models import Valuation

TABLE_ROWS = 31  # the chart's table fallback shows the latest days


def chart_context(*, asset, range_key: str, currency: str = "") -> dict[str, Any]:
    """The chart panel's context (two queries: candles and valuations)."""
    series = market_data.chart_series(asset=asset, range_key=range_key, currency=currency)
    element_id = f"price-chart-{asset.public_id.hex[:12]}"
    return {
        "asset": asset,
        "series": series,
        "chart_svg": price_chart_svg(series, name=asset.name, element_id=element_id),
        "chart_id": element_id,
        "ranges": [(key, label) for key, (label, _) in market_data.RANGES.items()],
        "range_key": range_key,
        "table_candles": list(reversed(series.candles[-TABLE_ROWS:])),
    }


def market_version_key(asset_id: int) -> str:
    """The version of one asset's market data (config/fragment_cache.py): its trades and
    published valuations, and the documents those link to."""
    return f"marketplace:market:{asset_id}:version"


def market_data_changed(asset_id: int, *, after_commit: bool = False) -> None:
    key = market_version_key(asset_id)
    fragment_cache.bump_after_commit(key) if after_commit else fragment_cache.bump(key)


def cached_for_asset(asset_id: int, name: str, compute, *, versions: tuple[str, ...] = (), fresh=None):
    """`compute()` cached while the asset, its offering (the catalogue's version), its
    market data and any further `versions` are unchanged, and for today (UTC) only: ranges
    end today. A hit is one round trip to the cache (config/fragment_cache.py)."""
    today = timezone.now().astimezone(datetime.UTC).date().isoformat()
    key = f"marketplace:market:{asset_id}:{name}:{today}:{translation.get_language()}"
    versions = (CATALOGUE_VERSION, market_version_key(asset_id), *versions)
    return fragment_cache.get_or_compute(key, versions, compute, settings.CATALOGUE_CACHE_SECONDS, fresh)


def chart_html(*, asset, range_key: str, currency: str = "") -> str:
    """The chart panel of a range, rendered (the same for every visitor), from the cache."""
    return cached_for_asset(asset.pk, f"chart:{range_key}:{currency}", lambda: _chart_html(asset, range_key, currency))


def _chart_html(asset, range_key: str, currency: str) -> str:
    context = chart_context(asset=asset, range_key=range_key, currency=currency)
    return mark_safe(render_to_string("marketplace/market/_chart.html", context))  # noqa: S308


def market_panel_context(*, asset, user, range_key: str, currency: str) -> dict[str, Any]:
    """The offering page's market data: the chart of a range and the published valuations,
    both from one cache entry (one round trip), with a document link for those who may
    read it (the visibility check, one query, only when there is a valuation)."""
    chart, history = cached_for_asset(
        asset.pk,
        f"panel:{range_key}:{currency}",
        lambda: (_chart_html(asset, range_key, currency), market_data.valuation_history(asset=asset)),
    )
    return {"chart_html": mark_safe(chart), **_valuations_context(asset, user, history)}  # noqa: S308


def _valuations_context(asset, user, history) -> dict[str, Any]:
    readable: set[int] = set()
    if history:
        readable = set(
            asset_selectors.documents_visible_to(asset=asset, user=user)
            .filter(pk__in=[v.document_id for v in history])
            .values_list("pk", flat=True)
        )
    return {"valuations": history, "readable_document_ids": readable}


def _bad_range(request: HttpRequest, exc: ValidationError, *, json: bool) -> HttpResponse:
    message = " ".join(exc.messages)
    if json:
        return JsonResponse({"error": message, "code": "invalid_range"}, status=400)
    return render(request, "marketplace/market/_chart_error.html", {"message": message}, status=400)


@require_GET
def asset_chart(request: HttpRequest, asset_public_id: uuid.UUID) -> HttpResponse:
    """The chart panel of a range (`?range=1w|1m|1y|all`); an unknown range is a 400."""
    asset = asset_selectors.asset_get_for_viewer(public_id=asset_public_id, user=request.user)
    try:
        range_key = market_data.parse_range(request.GET.get("range"))
    except ValidationError as exc:
        return _bad_range(request, exc, json=False)
    return HttpResponse(chart_html(asset=asset, range_key=range_key))


@require_GET
def asset_market_data_json(request: HttpRequest, asset_public_id: uuid.UUID) -> HttpResponse:
    """The chart's series and the asset's figures as JSON (integer minor units)."""
    asset = asset_selectors.asset_get_for_viewer(public_id=asset_public_id, user=request.user)
    try:
        range_key = market_data.parse_range(request.GET.get("range"))
    except ValidationError as exc:
        return _bad_range(request, exc, json=True)
    series = market_data.chart_series(asset=asset, range_key=range_key)
    stats = market_data.market_stats(asset=asset)
    data = {"asset": str(asset.public_id), **market_data.series_json(series, stats=stats)}
    response = JsonResponse(data)
    response["Cache-Control"] = "private, max-age=30"
    return response


# -- the issuer's valuation ---------------------------------------------------------------


class ValuationSubmitForm(DocumentUploadForm):
    """The valuation and its evidence. The file goes through the data room's own
    validation (DocumentUploadForm → config.uploads.validate_upload: content type by
    magic bytes, size, no active PDF content)."""

    EVIDENCE_KINDS = (AssetDocument.Kind.APPRAISAL, AssetDocument.Kind.FINANCIAL_STATEMENT, AssetDocument.Kind.OTHER)

    value_per_fraction = forms.CharField(
        label="Value per fraction", max_length=32, help_text="In the asset's currency, e.g. 101.50"
    )
    as_of = forms.DateField(
        label="Valuation date", widget=forms.DateInput(attrs={"type": "date"}), help_text="Not in the future."
    )
    note = forms.CharField(
        label="Note", max_length=valuations.NOTE_MAX, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    field_order = ["value_per_fraction", "as_of", "note", "kind", "title", "file", "public_to_investors"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [(k.value, k.label) for k in self.EVIDENCE_KINDS]
        self.fields["kind"].initial = AssetDocument.Kind.APPRAISAL
        self.fields["title"].label = "Document title"
        self.fields["file"].label = "Supporting document"

    def clean_value_per_fraction(self) -> int:
        return parse_major_to_minor(self.cleaned_data["value_per_fraction"], field="value per fraction")

    def clean_as_of(self) -> datetime.date:
        as_of = self.cleaned_data["as_of"]
        failures = valuations.valuation_input_failures(value_per_fraction_minor=1, as_of=as_of, note="")
        if "as_of" in failures:
            raise ValidationError(failures["as_of"])
        return as_of


def _issuer_context(asset, form) -> dict[str, Any]:
    return {
        "asset": asset,
        "form": form,
        "mine": list(Valuation.objects.filter(asset=asset).select_related("document").order_by("-created_at")[:50]),
    }


@login_required
@require_http_methods(["GET", "POST"])
def valuation_submit(request: HttpRequest, asset_public_id: uuid.UUID) -> HttpResponse:
    """The issuer's page for one of their assets (404 for anybody else): their
    valuations with the decisions, and the form to submit a new one."""
    asset = asset_selectors.asset_get_for_issuer(public_id=asset_public_id, user=request.user)
    if request.method == "GET":
        return render(request, "marketplace/valuations/submit.html", _issuer_context(asset, ValuationSubmitForm()))
    form = ValuationSubmitForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        try:
            document = valuations.valuation_document(asset=asset, actor=request.user, data=data)
            valuations.valuation_submit(
                asset=asset,
                actor=request.user,
                value_per_fraction_minor=data["value_per_fraction"],
                as_of=data["as_of"],
                document=document,
                note=data["note"],
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for name, errors in exc.message_dict.items():
                    form.add_error(name if name in form.fields else None, errors)
            else:
                form.add_error(None, exc.messages)
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Valuation submitted; our staff review it before it is published.")
            return redirect("marketplace:valuation_submit", asset_public_id=asset.public_id)
    return render(request, "marketplace/valuations/submit.html", _issuer_context(asset, form), status=400)
