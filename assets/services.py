"""Writes for the issuance workflow: draft → submitted → changes requested | approved |
rejected → minting → live (or failed). Every decision is audited; minting goes through
the chain outbox, never straight to algod."""

from dataclasses import dataclass
from io import BytesIO

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone
from PIL import Image, ImageOps

from accounts.notifications import notify
from chain.services import outbox_request, outbox_retry
from compliance.audit import audit_record, model_snapshot

from . import metadata
from .models import IMAGE_FORMATS, Asset, AssetDocument, AssetImage

S = Asset.Status
SNAPSHOT_FIELDS = ("status", "review_comment", "asa_id", "metadata_hash", "failure_reason")


def _locked(asset: Asset) -> Asset:
    return Asset.objects.select_for_update().get(pk=asset.pk)


def _require_editable(asset: Asset) -> None:
    if not asset.is_editable:
        raise ValidationError(f"This asset is {asset.get_status_display().lower()} and can no longer be edited.")


@transaction.atomic(durable=True)
def asset_create(*, issuer, fields: dict) -> Asset:
    asset = Asset(issuer=issuer, **fields)
    asset.full_clean()
    asset.save()
    audit_record(actor=issuer, action="asset.created", target=asset, after=model_snapshot(asset, SNAPSHOT_FIELDS))
    return asset


@transaction.atomic(durable=True)
def asset_update(*, asset: Asset, actor, fields: dict) -> Asset:
    asset = _locked(asset)
    _require_editable(asset)
    for name, value in fields.items():
        setattr(asset, name, value)
    asset.full_clean()
    asset.save()
    return asset


@transaction.atomic(durable=True)
def document_add(
    *, asset: Asset, actor, kind: str, title: str, upload, validated, public_to_investors: bool
) -> AssetDocument:
    asset = _locked(asset)
    _require_editable(asset)
    return _document_store(
        asset, actor=actor, kind=kind, title=title, upload=upload, validated=validated, public=public_to_investors
    )


@transaction.atomic(durable=True)
def document_add_after_listing(
    *, asset: Asset, actor, kind: str, title: str, upload, validated, public_to_investors: bool
) -> AssetDocument:
    """A document added to a live asset (the evidence of a new valuation): the same
    content validation (`validated` from DocumentUploadForm) and storage as the data
    room. It is not part of the ARC-3 metadata frozen at approval (the verify panel
    rebuilds that from the documents uploaded before the asset went live). The caller
    checks who may add it (marketplace.valuations: the issuer or valuation staff)."""
    asset = _locked(asset)
    if asset.status != S.LIVE:
        raise ValidationError("Documents are added after listing only to a live asset.")
    return _document_store(
        asset, actor=actor, kind=kind, title=title, upload=upload, validated=validated, public=public_to_investors
    )


def _document_store(asset: Asset, *, actor, kind: str, title: str, upload, validated, public: bool) -> AssetDocument:
    public_to_investors = public
    if asset.documents.filter(sha256=validated.sha256).exists():
        raise ValidationError("This exact file is already in the data room.")
    document = AssetDocument(
        asset=asset,
        kind=kind,
        title=title.strip(),
        original_name=validated.safe_name,
        content_type=validated.content_type,
        size=validated.size,
        sha256=validated.sha256,
        public_to_investors=public_to_investors,
        uploaded_by=actor,
    )
    document.file.save(validated.safe_name, upload, save=False)
    try:
        document.full_clean()
        document.save()
    except Exception:
        document.file.delete(save=False)  # no orphan file when the row is refused
        raise
    return document


@transaction.atomic(durable=True)
def document_delete(*, document: AssetDocument, actor) -> None:
    asset = _locked(document.asset)
    _require_editable(asset)
    storage, name = document.file.storage, document.file.name
    assert name, "a stored document always has a file"
    document.delete()
    transaction.on_commit(lambda: storage.delete(name))


# How the gallery stores a photo: the kind it came as, re-encoded by Pillow (nothing of
# the upload's bytes survives: no EXIF, GPS, XMP, ICC or comments); thumbnails are WebP.
IMAGE_ENCODERS: dict[str, tuple[str, dict]] = {
    "image/jpeg": ("JPEG", {"quality": 85, "optimize": True, "progressive": True}),
    "image/png": ("PNG", {}),
    "image/webp": ("WEBP", {"quality": 85, "method": 4}),
}
THUMBNAIL_ENCODER: tuple[str, dict] = ("WEBP", {"quality": 80, "method": 4})
# Staff who may change an asset may take its photos down (the back office's gallery inline).
IMAGE_REMOVE_PERMISSION = "assets.change_asset"
IMAGE_SNAPSHOT_FIELDS = ("public_id", "caption", "content_type", "width", "height", "uploaded_by", "created_at")


@dataclass(frozen=True)
class _EncodedImage:
    content_type: str
    data: bytes
    size: tuple[int, int]
    thumbnail: bytes
    thumbnail_size: tuple[int, int]


def _encode(picture: Image.Image, encoder: tuple[str, dict]) -> bytes:
    picture.info = {}  # resize and convert copy the source's metadata along; none is written
    buffer = BytesIO()
    picture.save(buffer, encoder[0], **encoder[1])
    return buffer.getvalue()


def _image_encode(picture: Image.Image) -> _EncodedImage:
    """The photo upright (EXIF orientation applied first, since the tag goes), in a mode
    its format stores, at most AssetImage.MAX_SIDE on its long side, and its thumbnail."""
    content_type = IMAGE_FORMATS.get(picture.format or "")
    if content_type is None:
        raise ValidationError("This file is not a JPEG, PNG or WebP image.", code="bad_type")
    if picture.width * picture.height > settings.ASSET_IMAGE_MAX_PIXELS:
        raise ValidationError("This image has too many pixels.", code="too_many_pixels")
    try:
        upright = ImageOps.exif_transpose(picture)
    except Exception:  # unreadable EXIF: the photo is kept as decoded (the tags are dropped anyway)
        upright = picture
    alpha = upright.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in upright.info
    if content_type == "image/jpeg":
        mode = "L" if upright.mode == "L" else "RGB"
    else:
        mode = "RGBA" if alpha else "RGB"
    clean = upright.convert(mode)
    if max(clean.size) > AssetImage.MAX_SIDE:
        clean = ImageOps.contain(clean, (AssetImage.MAX_SIDE, AssetImage.MAX_SIDE), Image.Resampling.LANCZOS)
    thumbnail = clean.copy()
    thumbnail.thumbnail(AssetImage.THUMBNAIL_BOX, Image.Resampling.LANCZOS)
    return _EncodedImage(
        content_type=content_type,
        data=_encode(clean, IMAGE_ENCODERS[content_type]),
        size=clean.size,
        thumbnail=_encode(thumbnail, THUMBNAIL_ENCODER),
        thumbnail_size=thumbnail.size,
    )


def _require_gallery_room(asset: Asset) -> None:
    limit = settings.ASSET_IMAGES_PER_ASSET
    if asset.images.count() >= limit:
        raise ValidationError(f"An asset can have at most {limit} photos; remove one before adding another.")


def asset_image_add(*, asset: Asset, actor, picture: Image.Image, caption: str = "") -> AssetImage:
    """Add a photo to the asset's public gallery: its issuer (the caller checked), while
    the asset is editable, up to ASSET_IMAGES_PER_ASSET. `picture` is the decoded upload
    (AssetImageUploadForm: content, bytes and pixels checked). The encoding (CPU) and the
    files (storage I/O) come before the transaction that takes the asset's lock; a row
    refused there deletes its files again."""
    _require_editable(asset)  # cheap refusals first; both are checked again under the lock
    _require_gallery_room(asset)
    encoded = _image_encode(picture)
    image = AssetImage(
        asset=asset,
        content_type=encoded.content_type,
        width=encoded.size[0],
        height=encoded.size[1],
        size=len(encoded.data),
        thumbnail_width=encoded.thumbnail_size[0],
        thumbnail_height=encoded.thumbnail_size[1],
        caption=caption.strip(),
        uploaded_by=actor,
    )
    image.image.save("image", ContentFile(encoded.data), save=False)  # named by upload_to, not by us here
    image.thumbnail.save("thumbnail", ContentFile(encoded.thumbnail), save=False)
    try:
        return _asset_image_insert(image)
    except BaseException:
        _image_files_delete(image)
        raise


@transaction.atomic(durable=True)
def _asset_image_insert(image: AssetImage) -> AssetImage:
    asset = _locked(image.asset)
    _require_editable(asset)
    _require_gallery_room(asset)
    image.position = (asset.images.aggregate(last=Max("position"))["last"] or 0) + 1
    image.full_clean()
    image.save()
    return image


def _files_delete(storage, names: list[str | None]) -> None:
    for name in names:
        if name:
            storage.delete(name)


def _image_files_delete(image: AssetImage) -> None:
    _files_delete(image.image.storage, [image.image.name, image.thumbnail.name])


def _image_delete(image: AssetImage) -> None:
    storage, names = image.image.storage, [image.image.name, image.thumbnail.name]
    image.delete()
    transaction.on_commit(lambda: _files_delete(storage, names))


@transaction.atomic(durable=True)
def asset_image_delete(*, image: AssetImage, actor) -> None:
    """The issuer removes a photo from the gallery while the asset is editable (the caller
    checked the asset is theirs)."""
    asset = _locked(image.asset)
    _require_editable(asset)
    _image_delete(image)


@transaction.atomic(durable=True)
def asset_image_remove(*, image: AssetImage, actor) -> None:
    """Staff take a photo down from the public gallery at any stage (the back office),
    with an audit entry."""
    if not (actor.is_active and actor.is_staff and actor.has_perm(IMAGE_REMOVE_PERMISSION)):
        raise PermissionDenied("Only staff who may change assets can remove a photo.")
    asset = _locked(image.asset)
    audit_record(
        actor=actor, action="asset.image_removed", target=asset, before=model_snapshot(image, IMAGE_SNAPSHOT_FIELDS)
    )
    _image_delete(image)


@transaction.atomic(durable=True)
def asset_submit(*, asset: Asset, actor) -> Asset:
    asset = _locked(asset)
    _require_editable(asset)
    if not asset.documents.exists():
        raise ValidationError("Upload at least one document before submitting for review.")
    if asset.offering_closes_at and asset.offering_closes_at <= timezone.now():
        raise ValidationError("The offering's closing date has passed; edit the asset and choose a later one.")
    before = model_snapshot(asset, SNAPSHOT_FIELDS)
    asset.status, asset.submitted_at = S.SUBMITTED, timezone.now()
    asset.save(update_fields=["status", "submitted_at", "updated_at"])
    audit_record(
        actor=actor, action="asset.submitted", target=asset, before=before, after=model_snapshot(asset, SNAPSHOT_FIELDS)
    )
    return asset


def _require_reviewer(asset: Asset, reviewer) -> None:
    if not (reviewer.is_active and reviewer.is_staff and reviewer.has_perm("assets.review_asset")):
        raise PermissionDenied("Only staff with the review permission can decide on an issuance.")
    if reviewer.pk == asset.issuer_id:
        raise PermissionDenied("Four eyes: the issuer of an asset cannot review it.")


def _decide(asset: Asset, reviewer, *, status: str, comment: str, action: str, require_comment: bool) -> Asset:
    asset = _locked(asset)
    _require_reviewer(asset, reviewer)
    if asset.status != S.SUBMITTED:
        raise ValidationError(
            f"Only submitted assets can be reviewed; this one is {asset.get_status_display().lower()}."
        )
    if require_comment and not comment.strip():
        raise ValidationError("Give the issuer a reason.")
    before = model_snapshot(asset, SNAPSHOT_FIELDS)
    asset.status, asset.review_comment = status, comment.strip()
    asset.reviewed_by, asset.reviewed_at = reviewer, timezone.now()
    asset.save(update_fields=["status", "review_comment", "reviewed_by", "reviewed_at", "updated_at"])
    audit_record(
        actor=reviewer,
        action=action,
        target=asset,
        before=before,
        after=model_snapshot(asset, SNAPSHOT_FIELDS),
        reason=comment,
    )
    return asset


DECISION_MAIL: dict[str, tuple[str, str]] = {  # keyed by Asset.Status (a str)
    S.CHANGES_REQUESTED: (
        "Changes requested for {name}",
        "Our reviewers asked for changes to {name} before it can be approved:\n\n{comment}\n\nEdit the asset and submit it again.",
    ),
    S.REJECTED: ("{name} was not approved", "Our reviewers rejected the issuance of {name}:\n\n{comment}"),
    S.MINTING: (
        "{name} is approved",
        "{name} was approved. Its token is being created on Algorand; the listing goes live as soon as the transaction is confirmed.",
    ),
}


def _tell_issuer(asset: Asset) -> None:
    subject, body = DECISION_MAIL[asset.status]
    notify(
        user=asset.issuer,
        subject=subject.format(name=asset.name),
        body=body.format(name=asset.name, comment=asset.review_comment),
        path=reverse("assets:manage", args=[asset.public_id]),
    )


@transaction.atomic(durable=True)
def asset_request_changes(*, asset: Asset, reviewer, comment: str) -> Asset:
    asset = _decide(
        asset,
        reviewer,
        status=S.CHANGES_REQUESTED,
        comment=comment,
        action="asset.changes_requested",
        require_comment=True,
    )
    _tell_issuer(asset)
    return asset


@transaction.atomic(durable=True)
def asset_reject(*, asset: Asset, reviewer, comment: str) -> Asset:
    asset = _decide(asset, reviewer, status=S.REJECTED, comment=comment, action="asset.rejected", require_comment=True)
    _tell_issuer(asset)
    return asset


@transaction.atomic(durable=True)
def asset_approve(*, asset: Asset, reviewer, comment: str = "") -> Asset:
    """Approve, freeze the ARC-3 metadata, and queue the mint in the same transaction."""
    asset = _decide(asset, reviewer, status=S.APPROVED, comment=comment, action="asset.approved", require_comment=False)
    doc = metadata.metadata_document(asset, list(asset.documents.all()))
    data = metadata.metadata_bytes(doc)
    asset.metadata_json = data.decode("utf-8")
    asset.metadata_hash = metadata.metadata_hash(data)
    asset.status = S.MINTING
    asset.save(update_fields=["metadata_json", "metadata_hash", "status", "updated_at"])
    outbox_request(
        kind="asset_create",
        payload={
            "asset_name": asset.asset_name,
            "unit_name": asset.unit_name,
            "total": asset.total_fractions,
            "decimals": 0,
            "default_frozen": True,
            "url": metadata.metadata_url(asset),
            "metadata_hash": asset.metadata_hash,
        },
        idempotency_key=f"asset-mint:{asset.public_id}",
        on_confirmed="assets.services.asset_mint_confirmed",
        on_failed="assets.services.asset_mint_failed",
    )
    _tell_issuer(asset)
    return asset


def _asset_for_mint(chain_tx) -> Asset:
    public_id = chain_tx.idempotency_key.split(":", 1)[1]
    return Asset.objects.select_for_update().get(public_id=public_id)


def asset_mint_confirmed(chain_tx) -> None:
    """Outbox callback, run in the transaction that marks the chain row confirmed."""
    asset = _asset_for_mint(chain_tx)
    before = model_snapshot(asset, SNAPSHOT_FIELDS)
    asset.status, asset.asa_id = S.LIVE, chain_tx.asset_id
    asset.creation_txid, asset.creation_round = chain_tx.txid, chain_tx.confirmed_round
    asset.live_at, asset.failure_reason = timezone.now(), ""
    asset.save()
    audit_record(
        actor=None, action="asset.minted", target=asset, before=before, after=model_snapshot(asset, SNAPSHOT_FIELDS)
    )
    from marketplace.services import offering_open_for_asset

    offering_open_for_asset(asset=asset)  # the primary offering opens with the listing
    notify(
        user=asset.issuer,
        subject=f"{asset.name} is live",
        body=f"{asset.name} is live in the catalogue as Algorand asset {asset.asa_id} "
        f"(created in round {asset.creation_round}, transaction {asset.creation_txid}). Its primary offering is open.",
        path=reverse("assets:detail", args=[asset.public_id]),
    )


def asset_mint_failed(chain_tx) -> None:
    asset = _asset_for_mint(chain_tx)
    before = model_snapshot(asset, SNAPSHOT_FIELDS)
    asset.status, asset.failure_reason = S.FAILED, chain_tx.last_error or "unknown error"
    asset.save(update_fields=["status", "failure_reason", "updated_at"])
    audit_record(
        actor=None,
        action="asset.mint_failed",
        target=asset,
        before=before,
        after=model_snapshot(asset, SNAPSHOT_FIELDS),
    )


@transaction.atomic(durable=True)
def asset_mint_retry(*, asset: Asset, actor) -> Asset:
    from chain.models import ChainTransaction

    asset = _locked(asset)
    if asset.status != S.FAILED:
        raise ValidationError("Only a failed mint can be retried.")
    chain_tx = ChainTransaction.objects.get(idempotency_key=f"asset-mint:{asset.public_id}")
    outbox_retry(chain_tx=chain_tx, actor=actor)
    before = model_snapshot(asset, SNAPSHOT_FIELDS)
    asset.status, asset.failure_reason = S.MINTING, ""
    asset.save(update_fields=["status", "failure_reason", "updated_at"])
    audit_record(
        actor=actor,
        action="asset.mint_retried",
        target=asset,
        before=before,
        after=model_snapshot(asset, SNAPSHOT_FIELDS),
    )
    return asset
