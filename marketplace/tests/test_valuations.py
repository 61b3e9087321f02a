"""Valuations (marketplace/valuations.py, the issuer's page, the back office): who may
publish, submit and decide (four eyes), audit and the market event, the data room's upload
validation reused, hostile input (4xx with a message), CSRF."""

import datetime
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from assets.models import AssetDocument
from assets.tests.factories import PDF_BYTES, PNG_BYTES, IssuerFactory, make_document
from compliance.models import AuditEntry
from marketplace import trading
from marketplace.models import MarketEvent, Valuation
from marketplace.valuations import valuation_decide, valuation_publish, valuation_submit

from .factories import OfferingFactory, verified_investor

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


def valuer(**kwargs):
    user = UserFactory(is_staff=True, **kwargs)
    user.user_permissions.add(Permission.objects.get(codename="publish_valuation"))
    return user


@pytest.fixture
def asset(platform_accounts):
    return OfferingFactory(asset__issuer=IssuerFactory()).asset


@pytest.fixture
def document(asset):
    return make_document(asset, title="Appraisal 2026")


def test_staff_publish_at_once_audited_with_a_market_event(asset, document):
    trading.market_open(asset=asset)
    staff = valuer()
    v = valuation_publish(asset=asset, actor=staff, value_per_fraction_minor=12_345, as_of=TODAY, document=document)
    assert (v.status, v.currency, v.decided_by) == ("published", "EUR", staff)
    assert AuditEntry.objects.filter(action="valuation.published", target_id=str(v.pk)).count() == 1
    event = MarketEvent.objects.get(kind=MarketEvent.Kind.VALUATION_PUBLISHED)
    assert event.data["value_per_fraction_minor"] == 12_345 and "123.45 EUR" in event.message


def test_currency_is_the_offering_currency(platform_accounts):
    asset = OfferingFactory(currency="CHF").asset  # the asset row says EUR
    v = valuation_publish(
        asset=asset, actor=valuer(), value_per_fraction_minor=1, as_of=TODAY, document=make_document(asset)
    )
    assert v.currency == "CHF"


def test_issuer_submits_staff_approves_four_eyes(asset, document):
    v = valuation_submit(
        asset=asset, actor=asset.issuer, value_per_fraction_minor=9_000, as_of=TODAY, document=document
    )
    assert v.status == "pending" and not MarketEvent.objects.exists()
    with pytest.raises(PermissionDenied):
        valuation_decide(valuation=v, actor=asset.issuer, approve=True)
    staff_no_perm = UserFactory(is_staff=True)
    with pytest.raises(PermissionDenied):
        valuation_decide(valuation=v, actor=staff_no_perm, approve=True)
    with pytest.raises(ValidationError, match="reason"):
        valuation_decide(valuation=v, actor=valuer(), approve=False, reason="  ")
    decided = valuation_decide(valuation=v, actor=valuer(), approve=True)
    assert decided.status == "published"
    with pytest.raises(ValidationError, match="pending"):
        valuation_decide(valuation=v, actor=valuer(), approve=False, reason="late")
    actions = list(
        AuditEntry.objects.filter(target_id=str(v.pk), action__startswith="valuation.").values_list("action", flat=True)
    )
    assert sorted(actions) == ["valuation.approved", "valuation.submitted"]


def test_a_staff_submitter_cannot_approve_their_own(asset, document):
    staff = valuer()
    # A staff member who issued the asset cannot publish it directly either.
    asset.issuer = staff
    asset.save(update_fields=["issuer"])
    with pytest.raises(PermissionDenied, match="Four eyes"):
        valuation_publish(asset=asset, actor=staff, value_per_fraction_minor=1, as_of=TODAY, document=document)
    v = valuation_submit(asset=asset, actor=staff, value_per_fraction_minor=1, as_of=TODAY, document=document)
    with pytest.raises(PermissionDenied, match="Four eyes"):
        valuation_decide(valuation=v, actor=staff, approve=True)


def test_reject_keeps_the_reason(asset, document):
    v = valuation_submit(
        asset=asset, actor=asset.issuer, value_per_fraction_minor=9_000, as_of=TODAY, document=document
    )
    valuation_decide(valuation=v, actor=valuer(), approve=False, reason="The appraisal is two years old.")
    v.refresh_from_db()
    assert (v.status, v.decision_reason) == ("rejected", "The appraisal is two years old.")
    assert AuditEntry.objects.get(action="valuation.rejected").reason == "The appraisal is two years old."


@pytest.mark.parametrize(
    "value,as_of,note,field",
    [
        (0, TODAY, "", "value_per_fraction_minor"),
        (2**63, TODAY, "", "value_per_fraction_minor"),
        (1.5, TODAY, "", "value_per_fraction_minor"),
        (True, TODAY, "", "value_per_fraction_minor"),
        (100, TODAY + timedelta(days=1), "", "as_of"),
        (100, timezone.now(), "", "as_of"),
        (100, TODAY, "x" * 10_000, "note"),
        (100, TODAY, "a\x00b", "note"),
    ],
)
def test_service_refuses_bad_input(asset, document, value, as_of, note, field):
    with pytest.raises(ValidationError) as exc:
        valuation_publish(
            asset=asset, actor=valuer(), value_per_fraction_minor=value, as_of=as_of, document=document, note=note
        )
    assert field in exc.value.message_dict
    assert not Valuation.objects.exists()


def test_document_must_belong_to_the_asset(asset, platform_accounts):
    other = OfferingFactory().asset
    with pytest.raises(ValidationError, match="this asset"):
        valuation_publish(
            asset=asset, actor=valuer(), value_per_fraction_minor=1, as_of=TODAY, document=make_document(other)
        )
    with pytest.raises(ValidationError, match="Attach"):
        valuation_publish(asset=asset, actor=valuer(), value_per_fraction_minor=1, as_of=TODAY, document=None)


def test_published_valuation_is_the_reference_price_without_recent_trades(asset, document):
    from marketplace.trading_selectors import reference_price

    market = trading.market_open(asset=asset)
    valuation_publish(asset=asset, actor=valuer(), value_per_fraction_minor=7_777, as_of=TODAY, document=document)
    assert reference_price(market=market).price_minor == 7_777


# -- the issuer's page -------------------------------------------------------------------


def page(asset):
    return reverse("marketplace:valuation_submit", args=[asset.public_id])


def form_data(**overrides):
    data = {
        "value_per_fraction": "101.50",
        "as_of": TODAY.isoformat(),
        "note": "Annual appraisal",
        "kind": "appraisal",
        "title": "Appraisal by Knight & Co",
        "file": SimpleUploadedFile("appraisal.pdf", PDF_BYTES + b"% valuation\n", content_type="application/pdf"),
    }
    data.update(overrides)
    return data


def test_issuer_submits_through_the_page_with_an_uploaded_document(client, asset):
    client.force_login(asset.issuer)
    assert client.get(page(asset)).status_code == 200
    response = client.post(page(asset), form_data())
    assert response.status_code == 302
    v = Valuation.objects.get()
    assert (v.status, v.value_per_fraction_minor, v.document.asset_id) == ("pending", 10_150, asset.pk)
    assert v.document.sha256 and v.document.content_type == "application/pdf"
    assert "Waiting for approval" in client.get(page(asset)).content.decode()


def test_upload_is_validated_by_content_like_the_data_room(client, asset):
    client.force_login(asset.issuer)
    fake = SimpleUploadedFile("appraisal.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")
    response = client.post(page(asset), form_data(file=fake))
    assert response.status_code == 400 and "whatever its name says" in response.content.decode()
    active = SimpleUploadedFile(
        "a.pdf", b"%PDF-1.4\n1 0 obj<</JavaScript (app.alert(1))>>endobj\n%%EOF", content_type="application/pdf"
    )
    response = client.post(page(asset), form_data(file=active))
    assert response.status_code == 400 and "scripts" in response.content.decode()
    assert not Valuation.objects.exists() and not AssetDocument.objects.exists()


def test_an_image_is_accepted_and_a_repeated_file_reuses_the_document(client, asset):
    client.force_login(asset.issuer)
    png = PNG_BYTES + b"valuation"
    assert client.post(page(asset), form_data(file=SimpleUploadedFile("a.png", png))).status_code == 302
    assert client.post(page(asset), form_data(file=SimpleUploadedFile("b.png", png))).status_code == 302
    assert AssetDocument.objects.count() == 1 and Valuation.objects.count() == 2


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"value_per_fraction": "1e309"}, "as a number"),
        ({"value_per_fraction": "١٠٠"}, "digits"),
        ({"value_per_fraction": "9" * 10_000}, "at most 32 characters"),
        ({"value_per_fraction": "10\x00"}, "Null characters"),
        ({"value_per_fraction": "-5"}, "greater than zero"),
        ({"as_of": (TODAY + timedelta(days=1)).isoformat()}, "cannot be in the future"),
        ({"as_of": "99999-01-01"}, "valid date"),
        ({"note": "n" * 10_000}, "at most 1000 characters"),
        ({"note": "a\x00b"}, "Null characters"),
        ({"title": "t\x00"}, "Null characters"),
    ],
)
def test_hostile_form_values_are_4xx_with_a_message(client, asset, overrides, message):
    client.force_login(asset.issuer)
    response = client.post(page(asset), form_data(**overrides))
    assert response.status_code == 400
    assert message.lower() in response.content.decode().lower().replace("&#x27;", "'")
    assert not Valuation.objects.exists()


def test_object_level_permission_404_for_other_issuers_and_investors(client, asset, platform_accounts):
    other_issuer = OfferingFactory(asset__issuer=IssuerFactory()).asset.issuer
    for user in (other_issuer, verified_investor()):
        client.force_login(user)
        assert client.get(page(asset)).status_code == 404
        assert client.post(page(asset), form_data()).status_code == 404
    assert not Valuation.objects.exists()
    client.logout()
    assert client.get(page(asset)).status_code == 302  # to login


def test_csrf_is_required(asset):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(asset.issuer)
    assert csrf_client.post(page(asset), form_data()).status_code == 403
    assert not Valuation.objects.exists()


# -- the back office ---------------------------------------------------------------------


def test_admin_publish_and_decide(client, asset, document):
    staff = valuer()
    client.force_login(staff)
    add = reverse("admin:marketplace_valuation_add")
    assert client.get(add).status_code == 200
    data = {
        "asset": asset.pk,
        "value_per_fraction": "88.00",
        "as_of": TODAY.isoformat(),
        "note": "",
        "existing_document": str(document.public_id),
        "kind": "appraisal",
        "title": "",
    }
    assert client.post(add, data).status_code == 302
    assert Valuation.objects.get().status == "published"

    pending = valuation_submit(
        asset=asset, actor=asset.issuer, value_per_fraction_minor=9_000, as_of=TODAY, document=document
    )
    decide = reverse("admin:marketplace_valuation_decide", args=[pending.pk])
    assert client.post(decide, {"text": "", "_reject": "1"}).status_code == 200  # reason required: shown again
    pending.refresh_from_db()
    assert pending.status == "pending"
    assert client.post(decide, {"text": "", "_approve": "1"}).status_code == 302
    pending.refresh_from_db()
    assert pending.status == "published"


def test_admin_refuses_staff_without_the_permission_and_hostile_input(client, asset, document):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(reverse("admin:marketplace_valuation_add")).status_code == 403
    pending = valuation_submit(
        asset=asset, actor=asset.issuer, value_per_fraction_minor=9_000, as_of=TODAY, document=document
    )
    assert (
        client.post(reverse("admin:marketplace_valuation_decide", args=[pending.pk]), {"_approve": "1"}).status_code
        == 403
    )
    client.force_login(valuer())
    data = {
        "asset": asset.pk,
        "value_per_fraction": "1e309",
        "as_of": (TODAY + timedelta(days=3)).isoformat(),
        "existing_document": str(document.public_id),
        "kind": "appraisal",
    }
    response = client.post(reverse("admin:marketplace_valuation_add"), data)
    assert response.status_code == 400
    text = response.content.decode()
    assert "as a number" in text and "future" in text
    assert Valuation.objects.filter(status="published").count() == 0


def test_verify_panel_ignores_documents_added_after_listing(asset):
    """The ARC-3 rebuild uses the documents frozen at approval, not a valuation's evidence."""
    asset.live_at = timezone.now() - datetime.timedelta(days=1)
    asset.save(update_fields=["live_at"])
    from assets.views import metadata

    before = [d for d in asset.documents.all()]
    make_document(asset, title="Later appraisal")
    frozen = [d for d in asset.documents.all() if d.uploaded_at <= asset.live_at]
    assert frozen == before
    assert metadata.metadata_document(asset, frozen) == metadata.metadata_document(asset, before)
