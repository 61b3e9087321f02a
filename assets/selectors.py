from django.db.models import BigIntegerField, ExpressionWrapper, F, Q, QuerySet
from django.http import Http404

from accounts.roles import ISSUER, user_has_role
from compliance.kyc_state import KycState
from compliance.selectors import kyc_standing_for

from .models import Asset, AssetDocument, AssetImage

# The catalogue's sort orders (the `sort` query parameter): a fixed list, the pk last so
# that pages never overlap or skip an asset between equal values.
DEFAULT_SORT = "newest"
CATALOGUE_SORTS: dict[str, tuple] = {
    "newest": ("-live_at", "-pk"),
    "price_asc": ("price_per_fraction_minor", "-live_at", "-pk"),
    "price_desc": ("-price_per_fraction_minor", "-live_at", "-pk"),
    "funded": (F("funded_pct").desc(nulls_last=True), "-live_at", "-pk"),
}
SORT_LABELS = {
    "newest": "Newest",
    "price_asc": "Price: low to high",
    "price_desc": "Price: high to low",
    "funded": "% funded",
}


def catalogue_matching(
    *,
    category: str = "",
    location: str = "",
    q: str = "",
    price_min_minor: int | None = None,
    price_max_minor: int | None = None,
) -> QuerySet[Asset]:
    """Live assets matching the catalogue's filters, no more: what its pager counts (an
    index-only count over the live assets' partial index; counting `catalogue_assets`
    joined every live asset's offering: bench/scaling's growth from 50 to 50,000)."""
    qs = Asset.objects.filter(status=Asset.Status.LIVE)
    if category:
        qs = qs.filter(category=category)
    if location:
        qs = qs.filter(location__icontains=location)
    if q:
        qs = qs.filter(
            Q(name__icontains=q) | Q(description__icontains=q) | Q(location__icontains=q) | Q(unit_name__iexact=q)
        )
    if price_min_minor is not None:
        qs = qs.filter(price_per_fraction_minor__gte=price_min_minor)
    if price_max_minor is not None:
        qs = qs.filter(price_per_fraction_minor__lte=price_max_minor)
    return qs


def catalogue_assets(*, sort: str = DEFAULT_SORT, **filters) -> QuerySet[Asset]:
    """Live assets for the public catalogue (`catalogue_matching`'s filters); a constant
    number of queries per page.

    Each asset carries `funded_pct`: fractions sold of fractions offered in its primary
    offering, in whole percent (integer division in the database, rounded down), or None
    without an offering. `sort` is one of CATALOGUE_SORTS; anything else sorts newest first."""
    # No issuer join: the cards do not show the issuer (bench/purchase: the join cost
    # the page about 7% of its CPU).
    # The offering for the card's "Sold out" badge (a one-to-one: the same number of queries).
    return (
        catalogue_matching(**filters)
        .select_related("offering")
        .annotate(
            funded_pct=ExpressionWrapper(
                F("offering__fractions_sold") * 100 / F("offering__fractions_for_sale"),
                output_field=BigIntegerField(),
            )
        )
        .order_by(*CATALOGUE_SORTS.get(sort, CATALOGUE_SORTS[DEFAULT_SORT]))
    )


def user_can_review(user) -> bool:
    return user.is_authenticated and user.is_staff and user.has_perm("assets.review_asset")


def investor_is_verified(user) -> bool:
    """KYC approved and not expired (the compliance app decides)."""
    if not user.is_authenticated:
        return False
    return kyc_standing_for(user).state == KycState.APPROVED


def asset_visible_to(*, asset: Asset, user) -> bool:
    """Who sees an asset's page (and its photo gallery): everyone once it is live; before
    that its issuer and reviewers only."""
    return (
        asset.status == Asset.Status.LIVE
        or (user.is_authenticated and asset.issuer_id == user.pk)
        or user_can_review(user)
    )


def asset_get_for_viewer(*, public_id, user) -> Asset:
    """Live assets are public; anything else only to its issuer and reviewers (else 404)."""
    try:
        # The offering (if any) for its window, in the same query.
        asset = Asset.objects.select_related("issuer", "reviewed_by", "offering").get(public_id=public_id)
    except (Asset.DoesNotExist, ValueError):
        raise Http404 from None
    if asset_visible_to(asset=asset, user=user):
        return asset
    raise Http404


def asset_image_get_for_viewer(*, public_id, user) -> AssetImage:
    """A gallery photo for whoever may see its asset's page (else 404, as for the page)."""
    try:
        image = AssetImage.objects.select_related("asset").get(public_id=public_id)
    except (AssetImage.DoesNotExist, ValueError):
        raise Http404 from None
    if not asset_visible_to(asset=image.asset, user=user):
        raise Http404
    return image


def asset_images(*, asset: Asset) -> QuerySet[AssetImage]:
    """The asset's gallery in its order; one query however many photos."""
    return asset.images.all()


def asset_get_for_issuer(*, public_id, user) -> Asset:
    if not user_has_role(user, ISSUER):
        raise Http404
    try:
        return Asset.objects.get(public_id=public_id, issuer=user)
    except (Asset.DoesNotExist, ValueError):
        raise Http404 from None


def issuer_assets(*, user) -> QuerySet[Asset]:
    return Asset.objects.filter(issuer=user).prefetch_related("documents").order_by("-updated_at")


def documents_visible_to(*, asset: Asset, user) -> QuerySet[AssetDocument]:
    docs = asset.documents.all()
    if user.is_authenticated and (asset.issuer_id == user.pk or user_can_review(user)):
        return docs
    if asset.status == Asset.Status.LIVE and investor_is_verified(user):
        return docs.filter(public_to_investors=True)
    return docs.none()


def document_get_for_user(*, public_id, user) -> AssetDocument:
    try:
        document = AssetDocument.objects.select_related("asset").get(public_id=public_id)
    except (AssetDocument.DoesNotExist, ValueError):
        raise Http404 from None
    if not documents_visible_to(asset=document.asset, user=user).filter(pk=document.pk).exists():
        raise Http404
    return document


def document_listing(*, asset: Asset) -> QuerySet[AssetDocument]:
    """Names, kinds and hashes of every document are public for a live asset: they are
    what the on-chain metadata hash commits to. The files themselves are not."""
    return asset.documents.all()
