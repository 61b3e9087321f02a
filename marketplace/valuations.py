"""Valuations of an asset (docs/market-integrity.md, "Valuations and market data").

A valuation is a value per fraction in the asset's offering currency, as of a date that is
not in the future, backed by a document of that asset's data room (uploaded through the
asset-document service, `assets.services.document_add_after_listing`, which reuses the
data room's content validation). Staff with `marketplace.publish_valuation` publish one at
once; the asset's issuer submits one that waits for a decision by staff with the
permission who did not submit it (four eyes). Each step is audited; a published valuation
of an asset with a book adds a VALUATION_PUBLISHED event to its timeline. The latest
published valuation is the reference price when the book has not traded lately
(`trading_selectors.reference_price`)."""

from __future__ import annotations

import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from assets.models import Asset, AssetDocument
from compliance.audit import audit_record, model_snapshot
from config.money import MAX_MINOR, format_money

from .models import Market, MarketEvent, Offering, Valuation

PERMISSION = "marketplace.publish_valuation"
NOTE_MAX = 1000
REASON_MAX = 1000
SNAPSHOT = ("status", "value_per_fraction_minor", "currency", "as_of", "document", "decided_by", "decision_reason")
S = Valuation.Status


def can_publish(user) -> bool:
    """Staff with the permission (active)."""
    return bool(user.is_authenticated and user.is_active and user.is_staff and user.has_perm(PERMISSION))


def _text(value, *, label: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"The {label} must be text.", code="invalid")
    if "\x00" in value:
        raise ValidationError(f"The {label} cannot contain a NUL character.", code="nul")
    value = value.strip()
    if len(value) > limit:
        raise ValidationError(f"The {label} can be at most {limit:,} characters.", code="too_long")
    return value


def valuation_input_failures(
    *, value_per_fraction_minor, as_of, note, today: datetime.date | None = None
) -> dict[str, list[str]]:
    """What is wrong with the typed valuation itself (no database read), per field:
    a whole number of minor units ≥ 1 that fits a bigint, a date not in the future, a
    note of at most 1,000 characters without NUL. Empty when well formed."""
    today = today or timezone.localdate()
    failures: dict[str, list[str]] = {}
    value = value_per_fraction_minor
    if isinstance(value, bool) or not isinstance(value, int):
        failures["value_per_fraction_minor"] = ["The value per fraction must be a whole number of minor units."]
    elif value < 1:
        failures["value_per_fraction_minor"] = ["The value per fraction must be greater than zero."]
    elif value > MAX_MINOR:
        failures["value_per_fraction_minor"] = ["The value per fraction is too large."]
    if isinstance(as_of, datetime.datetime) or not isinstance(as_of, datetime.date):
        failures["as_of"] = ["Give the date the valuation is as of."]
    elif as_of > today:
        failures["as_of"] = [f"The valuation date cannot be in the future (today is {today:%Y-%m-%d})."]
    try:
        _text(note, label="note", limit=NOTE_MAX)
    except ValidationError as exc:
        failures["note"] = list(exc.messages)
    return failures


def _offering_currency(asset: Asset) -> str:
    currency = Offering.objects.filter(asset_id=asset.pk).values_list("currency", flat=True).first()
    if currency is None:
        raise ValidationError("This asset has no offering, so it has no currency to value it in.", code="no_offering")
    return currency


def _check(*, asset: Asset, value_per_fraction_minor, as_of, document, note) -> tuple[str, str]:
    """Every rule of a new valuation; returns (currency, clean note)."""
    failures = valuation_input_failures(value_per_fraction_minor=value_per_fraction_minor, as_of=as_of, note=note)
    if not isinstance(document, AssetDocument):
        failures.setdefault("document", []).append("Attach the document that supports the valuation.")
    elif document.asset_id != asset.pk:
        failures.setdefault("document", []).append("The document must belong to this asset's data room.")
    if asset.status != Asset.Status.LIVE:
        failures.setdefault("__all__", []).append("Only a live asset can be valued.")
    if failures:
        raise ValidationError(failures)
    return _offering_currency(asset), note.strip()


def _published_event(valuation: Valuation, actor) -> None:
    market = Market.objects.filter(asset_id=valuation.asset_id).first()
    if market is None:
        return
    MarketEvent.objects.create(
        market=market,
        kind=MarketEvent.Kind.VALUATION_PUBLISHED,
        actor=actor,
        message=(
            f"Valuation published: {format_money(valuation.value_per_fraction_minor, valuation.currency)} "
            f"per fraction as of {valuation.as_of:%Y-%m-%d}."
        ),
        data={
            "valuation": str(valuation.public_id),
            "value_per_fraction_minor": valuation.value_per_fraction_minor,
            "currency": valuation.currency,
            "as_of": valuation.as_of.isoformat(),
        },
    )


def valuation_document(*, asset: Asset, actor, data: dict) -> AssetDocument:
    """The evidence of a valuation from a validated upload form's cleaned data (kind,
    title, file, validated, public_to_investors): the asset's document with the same
    content when it is already in the data room, else added to the live asset through
    the assets pipeline (content validated by DocumentUploadForm)."""
    from assets import services as asset_services

    document = asset.documents.filter(sha256=data["validated"].sha256).first()
    if document is not None:
        return document
    return asset_services.document_add_after_listing(
        asset=asset,
        actor=actor,
        kind=data["kind"],
        title=data["title"],
        upload=data["file"],
        validated=data["validated"],
        public_to_investors=data["public_to_investors"],
    )


def _locked_asset(asset: Asset) -> Asset:
    return Asset.objects.select_for_update().get(pk=asset.pk)


@transaction.atomic(durable=True)
def valuation_publish(
    *, asset: Asset, actor, value_per_fraction_minor, as_of, document: AssetDocument | None, note: str = ""
) -> Valuation:
    """Staff with the permission publish a valuation at once (never for an asset they
    issued: that one goes through `valuation_submit` and another person's approval)."""
    if not can_publish(actor):
        raise PermissionDenied("Only staff with the valuation permission can publish a valuation.")
    asset = _locked_asset(asset)
    if asset.issuer_id == actor.pk:
        raise PermissionDenied("Four eyes: the issuer of an asset cannot publish its valuation.")
    currency, note = _check(
        asset=asset, value_per_fraction_minor=value_per_fraction_minor, as_of=as_of, document=document, note=note
    )
    assert document is not None  # _check refused a missing document
    now = timezone.now()
    valuation = Valuation.objects.create(
        asset=asset,
        value_per_fraction_minor=value_per_fraction_minor,
        currency=currency,
        as_of=as_of,
        document=document,
        note=note,
        status=S.PUBLISHED,
        submitted_by=actor,
        decided_by=actor,
        decided_at=now,
    )
    _published_event(valuation, actor)
    audit_record(actor=actor, action="valuation.published", target=valuation, after=model_snapshot(valuation, SNAPSHOT))
    return valuation


@transaction.atomic(durable=True)
def valuation_submit(
    *, asset: Asset, actor, value_per_fraction_minor, as_of, document: AssetDocument | None, note: str = ""
) -> Valuation:
    """The asset's issuer proposes a valuation; it waits for staff approval."""
    if not (actor.is_authenticated and actor.is_active and actor.pk == asset.issuer_id):
        raise PermissionDenied("Only the issuer of this asset can submit its valuation.")
    asset = _locked_asset(asset)
    currency, note = _check(
        asset=asset, value_per_fraction_minor=value_per_fraction_minor, as_of=as_of, document=document, note=note
    )
    assert document is not None  # _check refused a missing document
    valuation = Valuation.objects.create(
        asset=asset,
        value_per_fraction_minor=value_per_fraction_minor,
        currency=currency,
        as_of=as_of,
        document=document,
        note=note,
        status=S.PENDING,
        submitted_by=actor,
    )
    audit_record(actor=actor, action="valuation.submitted", target=valuation, after=model_snapshot(valuation, SNAPSHOT))
    return valuation


@transaction.atomic(durable=True)
def valuation_decide(*, valuation: Valuation, actor, approve: bool, reason: str = "") -> Valuation:
    """Staff with the permission approve (publish) or reject (with a reason) a pending
    valuation that somebody else submitted, for an asset they did not issue."""
    if not can_publish(actor):
        raise PermissionDenied("Only staff with the valuation permission can decide on a valuation.")
    reason = _text(reason, label="reason", limit=REASON_MAX)
    valuation = Valuation.objects.select_for_update().select_related("asset").get(pk=valuation.pk)
    if actor.pk in (valuation.submitted_by_id, valuation.asset.issuer_id):
        raise PermissionDenied("Four eyes: a valuation is decided by somebody other than its submitter and issuer.")
    if valuation.status != S.PENDING:
        raise ValidationError(
            f"Only a pending valuation can be decided; this one is {valuation.get_status_display().lower()}.",
            code="not_pending",
        )
    if not approve and not reason:
        raise ValidationError("Give the issuer a reason for the rejection.", code="reason_required")
    if approve and valuation.as_of > timezone.localdate():
        raise ValidationError("The valuation date is in the future.", code="future")
    before = model_snapshot(valuation, SNAPSHOT)
    valuation.status = S.PUBLISHED if approve else S.REJECTED
    valuation.decided_by, valuation.decided_at, valuation.decision_reason = actor, timezone.now(), reason
    valuation.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
    if approve:
        _published_event(valuation, actor)
    audit_record(
        actor=actor,
        action="valuation.approved" if approve else "valuation.rejected",
        target=valuation,
        before=before,
        after=model_snapshot(valuation, SNAPSHOT),
        reason=reason,
    )
    return valuation
