import hashlib
import uuid
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.cache import get_conditional_response
from django.utils.functional import cached_property
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from accounts.roles import ISSUER, user_has_role
from config import shared_pages
from config.http import HtmxHttpRequest
from config.money import parse_major_to_minor
from config.numbers import parse_whole_number
from config.ratelimit import client_key, hit
from config.uploads import PDF, pdf_preview_response, private_file_response

from . import catalogue_cache, metadata, selectors, services
from .forms import AssetForm, AssetImageUploadForm, DocumentUploadForm
from .models import Asset, AssetDocument, AssetImage

PAGE_SIZE = 12
VERIFY_RATE = (10, 60)  # verifications per client per minute
# Each photo is decoded and re-encoded (seconds of CPU for a large one): bounded per issuer.
IMAGE_UPLOAD_RATE = (20, 60)
# A live asset's photos are public and never change under their URL (a new photo gets a
# new id); a day keeps a photo staff took down from lingering long in shared caches.
PUBLIC_IMAGE_CACHE = "public, max-age=86400"
# A photo opened on its own: no script and a unique origin as for any user file
# (config/uploads.py DOWNLOAD_CSP), but the browser's image viewer may style itself
# (Chromium's inline styles would otherwise be reported as violations) and show the image.
IMAGE_CSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"


def _issuer_required(request: HttpRequest) -> None:
    if not user_has_role(request.user, ISSUER):
        raise PermissionDenied("Only issuers can register assets. Ask our team to grant you the issuer role.")


def _price_filter(raw: str, errors: list[str], label: str) -> int | None:
    if not raw:
        return None
    try:
        return parse_major_to_minor(raw, field=label)
    except ValidationError as exc:
        errors.extend(exc.messages)
        return None


def _text_filter(raw: str, errors: list[str], label: str) -> str:
    # PostgreSQL cannot compare text with a NUL character (Django raises ValueError).
    if "\x00" in raw:
        errors.append(f"The {label} cannot contain a NUL character.")
        return ""
    return raw


def _page_number(raw: str, errors: list[str]) -> int:
    if not raw:
        return 1
    try:
        return parse_whole_number(raw, label="page number")
    except ValidationError as exc:
        errors.extend(exc.messages)
        return 1


CATALOGUE_PARAMS = ("q", "category", "location", "price_min", "price_max", "sort")


def _sort_param(raw: str) -> str:
    """A known sort order or "" (the default, newest first): an unknown value is not an
    error, and every unknown value shares the default's cache entry."""
    return raw if raw in selectors.CATALOGUE_SORTS and raw != selectors.DEFAULT_SORT else ""


class _CataloguePaginator(Paginator):
    """Pages of the catalogue, counted from the matching assets alone (the page's join to
    their offerings, a one-to-one, does not change the number and made the count grow
    with the catalogue)."""

    def __init__(self, assets, matching):
        super().__init__(assets, PAGE_SIZE)
        self.matching = matching

    @cached_property
    def count(self) -> int:
        return self.matching.count()


def _catalogue_results(raw: dict[str, str]) -> str:
    """The results fragment (count, cards, pager) for these filters. The same for every
    visitor, so it needs no request and can be cached (assets/catalogue_cache.py)."""
    errors: list[str] = []
    filters: dict[str, Any] = dict(
        category=raw["category"] if raw["category"] in Asset.Category.values else "",
        location=_text_filter(raw["location"], errors, "location"),
        q=_text_filter(raw["q"], errors, "search"),
        price_min_minor=_price_filter(raw["price_min"], errors, "minimum price"),
        price_max_minor=_price_filter(raw["price_max"], errors, "maximum price"),
    )
    assets = selectors.catalogue_assets(sort=raw["sort"] or selectors.DEFAULT_SORT, **filters)
    page = _CataloguePaginator(assets, selectors.catalogue_matching(**filters)).get_page(
        _page_number(raw["page"], errors)
    )
    # Last price and change per card: a constant number of queries (marketplace.market_data).
    from marketplace.market_data import market_stats_many

    page.object_list = list(page.object_list)
    stats = market_stats_many(asset_ids=[a.pk for a in page.object_list])
    for card in page.object_list:
        card.market_stats = stats.get(card.pk)  # type: ignore[attr-defined]
    # Pager links carry only the known filters, never arbitrary parameters of the request.
    querystring = urlencode([(name, raw[name]) for name in CATALOGUE_PARAMS if raw[name]])
    return render_to_string(
        "assets/catalogue.html#results", {"page": page, "errors": errors, "querystring": querystring}
    )


@require_GET
def catalogue(request: HtmxHttpRequest) -> HttpResponse:
    params = request.GET
    raw = {name: params.get(name, "").strip()[:100] for name in (*CATALOGUE_PARAMS, "page")}
    raw["sort"] = _sort_param(raw["sort"])
    if request.htmx:
        return HttpResponse(catalogue_cache.results_get_or_render(raw, lambda: _catalogue_results(raw)))

    # The whole content (filter form and results) is the same for every visitor with these
    # parameters: cached, so a page view renders only the site's frame around it; for an
    # anonymous visitor the frame too (config/shared_pages.py).
    def page() -> dict:
        content = catalogue_cache.results_get_or_render(raw, lambda: _catalogue_content(raw), part="content")
        return {"content": mark_safe(content)}  # noqa: S308

    if shared_pages.shareable(request):
        html = catalogue_cache.results_get_or_render(
            raw, lambda: shared_pages.render_shared(request, "assets/catalogue.html", page()), part="page"
        )
        return shared_pages.personalised(request, html)
    return render(request, "assets/catalogue.html", page())


def _catalogue_content(raw: dict[str, str]) -> str:
    results = catalogue_cache.results_get_or_render(raw, lambda: _catalogue_results(raw))
    return render_to_string(
        "assets/catalogue.html#content",
        {
            "params": raw,
            "categories": Asset.Category.choices,
            "sorts": selectors.SORT_LABELS.items(),
            "results": mark_safe(results),  # noqa: S308
        },
    )


@require_GET
def asset_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    asset = selectors.asset_get_for_viewer(public_id=public_id, user=request.user)
    visible = selectors.documents_visible_to(asset=asset, user=request.user)
    return render(
        request,
        "assets/detail.html",
        {
            "asset": asset,
            "documents": selectors.document_listing(asset=asset),
            "visible_ids": set(visible.values_list("pk", flat=True)),
            "photos": [d for d in visible if d.is_image],
            "images": selectors.asset_images(asset=asset),
            "metadata_url": metadata.metadata_url(asset) if asset.metadata_hash else "",
            "is_issuer": request.user.is_authenticated and asset.issuer_id == request.user.pk,
        },
    )


@require_GET
def asset_verify(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Read the ASA from algod and recompute the metadata hash from the documents."""
    asset = selectors.asset_get_for_viewer(public_id=public_id, user=request.user)
    if asset.asa_id is None:
        raise Http404
    from chain.gateway import AlgodError, asset_params

    # Each check reads algod and re-hashes every document file: bounded per visitor.
    limit, window = VERIFY_RATE
    if not hit(action="asset_verify", who=client_key(request), limit=limit, window=window):
        return render(
            request,
            "assets/detail.html#verify",
            {
                "asset": asset,
                "checks": [],
                "error": f"You can run the verification {limit} times a minute; wait a minute and try again.",
            },
            status=429,
        )

    result: dict[str, Any] = {"asset": asset, "checks": [], "error": ""}  # the template context
    try:
        params = asset_params(asset.asa_id)
    except AlgodError as exc:
        result["error"] = f"Could not read asset {asset.asa_id} from algod: {exc}"
        return render(request, "assets/detail.html#verify", result)
    chain_hash = params.metadata_hash
    # Documents added after listing (a valuation's evidence) are not in the frozen metadata.
    frozen = [d for d in asset.documents.all() if asset.live_at is None or d.uploaded_at <= asset.live_at]
    rebuilt = metadata.metadata_hash(metadata.metadata_bytes(metadata.metadata_document(asset, frozen)))
    stored_bytes_hash = hashlib.sha256(asset.metadata_json.encode("utf-8")).hexdigest()
    files_ok = all(_file_sha256(d) == d.sha256 for d in asset.documents.all())
    result["checks"] = [
        ("Metadata hash on chain equals the hash of the published ARC-3 JSON", chain_hash == stored_bytes_hash),
        ("ARC-3 JSON rebuilt from the documents' hashes gives the same hash", rebuilt == chain_hash),
        ("Every stored document file still has its recorded SHA-256", files_ok),
        ("Total supply on chain equals the number of fractions", params.total == asset.total_fractions),
        ("Holdings are frozen by default (transfers only through the transfer agent)", params.default_frozen),
    ]
    from chain.selectors import platform_accounts

    platform = {a.role: a.address for a in platform_accounts()}
    expected_roles = {
        "creator": platform.get("treasury"),
        "reserve": platform.get("treasury"),
        "manager": platform.get("manager"),
        "freeze": platform.get("freeze"),
        "clawback": platform.get("clawback"),
    }
    result["roles"] = [(name, getattr(params, name) or "") for name in expected_roles]
    result["checks"].append(
        (
            "Creator, reserve, manager, freeze and clawback are the platform's role accounts",
            all(getattr(params, name) == address for name, address in expected_roles.items()),
        )
    )
    result["chain_hash"], result["all_ok"] = chain_hash, all(ok for _, ok in result["checks"])
    return render(request, "assets/detail.html#verify", result)


def _file_sha256(document: AssetDocument) -> str:
    digest = hashlib.sha256()
    with document.file.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@require_GET
def arc3_metadata(request: HttpRequest, public_hex: str) -> HttpResponse:
    try:
        # isascii: uuid.UUID() would read other scripts' digits as hex digits.
        public_id = uuid.UUID(public_hex) if public_hex.isascii() else None
    except ValueError:
        public_id = None
    asset = Asset.objects.only("metadata_json", "status").filter(public_id=public_id).first() if public_id else None
    if asset is None or not asset.metadata_json:
        raise Http404
    response = HttpResponse(asset.metadata_json.encode("utf-8"), content_type="application/json")
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
def document_download(request: HttpRequest, public_id: uuid.UUID) -> HttpResponseBase:
    document = selectors.document_get_for_user(public_id=public_id, user=request.user)
    return private_file_response(document.file, filename=document.original_name, content_type=document.content_type)


@require_GET
def document_preview(request: HttpRequest, public_id: uuid.UUID) -> HttpResponseBase:
    """A PDF shown in the browser's viewer, for whoever may download it (the same check),
    without running the document's scripts (config/uploads.py PREVIEW_CSP). Other types: 404."""
    document = selectors.document_get_for_user(public_id=public_id, user=request.user)
    if document.content_type != PDF:
        raise Http404
    return pdf_preview_response(document.file, filename=document.original_name)


def _image_response(request: HttpRequest, image: AssetImage, *, thumbnail: bool) -> HttpResponseBase:
    """A gallery photo (or its thumbnail) shown in the page, after the caller applied the
    page's visibility rule. The file is ours (re-encoded at upload), its type stored; the
    browser is told not to guess it. Cached publicly only for a live asset."""
    field, content_type = (
        (image.thumbnail, AssetImage.THUMBNAIL_CONTENT_TYPE) if thumbnail else (image.image, image.content_type)
    )
    etag = f'"{image.public_id.hex}{"-thumbnail" if thumbnail else ""}"'
    response: HttpResponseBase | None = get_conditional_response(request, etag=etag)
    if response is None:
        try:
            response = FileResponse(field.open("rb"), content_type=content_type)
        except OSError:  # the file is gone from storage: as if the photo did not exist
            raise Http404 from None
    response["ETag"] = etag
    response["Cache-Control"] = PUBLIC_IMAGE_CACHE if image.asset.status == Asset.Status.LIVE else "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = IMAGE_CSP
    return response


@require_safe
def asset_image(request: HttpRequest, public_id: uuid.UUID) -> HttpResponseBase:
    image = selectors.asset_image_get_for_viewer(public_id=public_id, user=request.user)
    return _image_response(request, image, thumbnail=False)


@require_safe
def asset_image_thumbnail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponseBase:
    image = selectors.asset_image_get_for_viewer(public_id=public_id, user=request.user)
    return _image_response(request, image, thumbnail=True)


@login_required
def issuer_dashboard(request: HttpRequest) -> HttpResponse:
    _issuer_required(request)
    return render(request, "assets/issuer_dashboard.html", {"assets": selectors.issuer_assets(user=request.user)})


@login_required
def asset_create(request: HttpRequest) -> HttpResponse:
    _issuer_required(request)
    form = AssetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            asset = services.asset_create(issuer=request.user, fields=form.asset_fields())
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Draft saved. Now add the documents investors and reviewers need.")
            return redirect("assets:manage", public_id=asset.public_id)
    return render(request, "assets/asset_form.html", {"form": form, "asset": None})


@login_required
def asset_edit(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    asset = selectors.asset_get_for_issuer(public_id=public_id, user=request.user)
    if not asset.is_editable:
        messages.info(request, "This asset is under review or live and can no longer be edited.")
        return redirect("assets:manage", public_id=asset.public_id)
    form = AssetForm(request.POST or None, instance=asset)
    if request.method == "POST" and form.is_valid():
        try:
            services.asset_update(asset=asset, actor=request.user, fields=form.asset_fields())
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Changes saved.")
            return redirect("assets:manage", public_id=asset.public_id)
    return render(request, "assets/asset_form.html", {"form": form, "asset": asset})


def _manage_context(asset: Asset, **forms: Any) -> dict[str, Any]:
    return {
        "asset": asset,
        "documents": asset.documents.all(),
        "upload_form": DocumentUploadForm(),
        "images": selectors.asset_images(asset=asset),
        "image_form": AssetImageUploadForm(),
        "images_max": settings.ASSET_IMAGES_PER_ASSET,
        **forms,
    }


@login_required
def asset_manage(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    asset = selectors.asset_get_for_issuer(public_id=public_id, user=request.user)
    return render(request, "assets/manage.html", _manage_context(asset))


@login_required
@require_POST
def document_upload(request: HtmxHttpRequest, public_id: uuid.UUID) -> HttpResponse:
    asset = selectors.asset_get_for_issuer(public_id=public_id, user=request.user)
    form = DocumentUploadForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.document_add(
                asset=asset,
                actor=request.user,
                kind=data["kind"],
                title=data["title"],
                upload=data["file"],
                validated=data["validated"],
                public_to_investors=data["public_to_investors"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"“{data['title']}” uploaded.")
            form = DocumentUploadForm()
    context = _manage_context(asset, upload_form=form)
    template = "assets/manage.html#dataroom" if request.htmx else "assets/manage.html"
    return render(request, template, context, status=200 if form.is_bound is False or not form.errors else 422)


@login_required
@require_POST
def document_delete(request: HttpRequest, public_id: uuid.UUID, document_id: uuid.UUID) -> HttpResponse:
    asset = selectors.asset_get_for_issuer(public_id=public_id, user=request.user)
    document = asset.documents.filter(public_id=document_id).first()
    if document is None:
        raise Http404
    try:
        services.document_delete(document=document, actor=request.user)
        messages.success(request, "Document removed.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("assets:manage", public_id=asset.public_id)


@login_required
@require_POST
def asset_image_upload(request: HtmxHttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Add a photo to the gallery (the asset's issuer). A refusal comes back as the gallery
    with the form's errors or the service's reason, 422 (HTMX swaps it in:
    static/js/htmx-status.js), or 429 over the rate limit."""
    asset = selectors.asset_get_for_issuer(public_id=public_id, user=request.user)
    limit, window = IMAGE_UPLOAD_RATE
    form = AssetImageUploadForm()
    status, error = 200, ""
    if not hit(action="asset_image_upload", who=client_key(request), limit=limit, window=window):
        status, error = 429, f"You can add {limit} photos a minute; wait a minute and try again."  # not decoded
    elif not (form := AssetImageUploadForm(request.POST, request.FILES)).is_valid():
        status = 422
    else:
        try:
            services.asset_image_add(
                asset=asset,
                actor=request.user,
                picture=form.cleaned_data["image"],
                caption=form.cleaned_data["caption"],
            )
        except ValidationError as exc:
            # Shown above the form, which is gone when the asset is locked or the gallery full.
            status, error = 422, " ".join(exc.messages)
        else:
            messages.success(request, "Photo added to the gallery.")
            form = AssetImageUploadForm()
    template = "assets/manage.html#gallery" if request.htmx else "assets/manage.html"
    return render(request, template, _manage_context(asset, image_form=form, gallery_error=error), status=status)


@login_required
@require_POST
def asset_image_delete(request: HttpRequest, public_id: uuid.UUID, image_id: uuid.UUID) -> HttpResponse:
    asset = selectors.asset_get_for_issuer(public_id=public_id, user=request.user)
    image = asset.images.filter(public_id=image_id).first()
    if image is None:
        raise Http404
    try:
        services.asset_image_delete(image=image, actor=request.user)
        messages.success(request, "Photo removed.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("assets:manage", public_id=asset.public_id)


@login_required
@require_POST
def asset_submit(request: HtmxHttpRequest, public_id: uuid.UUID) -> HttpResponse:
    asset = selectors.asset_get_for_issuer(public_id=public_id, user=request.user)
    try:
        services.asset_submit(asset=asset, actor=request.user)
        messages.success(request, "Submitted for review. We will tell you here when a reviewer decides.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    if request.htmx:
        return HttpResponseClientRedirect(request.build_absolute_uri(f"/assets/issuer/{asset.public_id}/"))
    return redirect("assets:manage", public_id=asset.public_id)
