"""Bad input is refused with a clear message and nothing is stored."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from assets.models import Asset, AssetDocument
from assets.tests.factories import PDF_BYTES, AssetFactory, IssuerFactory

pytestmark = pytest.mark.django_db

VALID = {
    "name": "Harbour Building",
    "category": "real_estate",
    "description": "Offices.",
    "location": "Rotterdam, NL",
    "country": "NL",
    "valuation": "2500000.00",
    "valuation_date": "2026-06-30",
    "currency": "EUR",
    "total_fractions": "10000",
    "unit_name": "HARB",
    "asset_name": "Harbour Building",
    "price_per_fraction": "250.00",
    "fractions_for_sale": "8000",
    "min_purchase": "1",
    "max_purchase": "",
}


@pytest.fixture
def issuer_client(client):
    issuer = IssuerFactory()
    client.force_login(issuer)
    client.issuer = issuer
    return client


def test_valid_asset_is_created_as_draft_in_minor_units(issuer_client):
    response = issuer_client.post(reverse("assets:create"), VALID)
    assert response.status_code == 302
    asset = Asset.objects.get()
    assert (asset.status, asset.valuation_minor, asset.price_per_fraction_minor) == ("draft", 250_000_000, 25_000)
    assert asset.issuer == issuer_client.issuer


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("unit_name", "NINEBYTES", "unit name is 9 bytes"),
        ("unit_name", "ÄÄÄÄÄ", "unit name is 10 bytes"),
        ("asset_name", "x" * 33, "token name is 33 bytes"),
        ("total_fractions", "0", "must be at least 1"),
        ("total_fractions", "-5", "must be at least 1"),
        ("total_fractions", "1.5", "must be a whole number"),
        ("total_fractions", str(2**64), "more than an Algorand asset can hold"),
        ("total_fractions", str(2**63), "limit of 9,223,372,036,854,775,807"),
        ("fractions_for_sale", "20000", "cannot offer more fractions than exist"),
        ("price_per_fraction", "0", "greater than zero"),
        ("price_per_fraction", "1.005", "at most two decimal places"),
        ("price_per_fraction", "abc", "as a number"),
        ("currency", "EURO", "Select a valid choice"),
        ("currency", "JPY", "Select a valid choice"),
        ("valuation", "Infinity", "as a number"),
    ],
)
def test_bad_asset_input_is_refused_and_nothing_stored(issuer_client, field, value, message):
    response = issuer_client.post(reverse("assets:create"), {**VALID, field: value})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Asset.objects.count() == 0


def _upload(client, asset, name, content, **extra):
    data = {"kind": "appraisal", "title": "Appraisal", "file": SimpleUploadedFile(name, content), **extra}
    return client.post(reverse("assets:document_upload", args=[asset.public_id]), data)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("setup.pdf", b"MZ\x90\x00\x03" + b"\x00" * 200, "not an accepted type"),
        ("script.pdf", b"#!/bin/sh\nrm -rf /\n", "not an accepted type"),
        ("empty.pdf", b"", "empty"),
    ],
)
def test_bad_uploads_are_refused_and_nothing_stored(issuer_client, name, content, message, settings, tmp_path):
    asset = AssetFactory(issuer=issuer_client.issuer)
    response = _upload(issuer_client, asset, name, content)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert AssetDocument.objects.count() == 0
    assert not any((tmp_path / "private").rglob("*"))


def test_oversize_upload_is_refused(issuer_client, settings, tmp_path):
    asset = AssetFactory(issuer=issuer_client.issuer)
    response = _upload(issuer_client, asset, "big.pdf", PDF_BYTES + b"0" * 11 * 1024 * 1024)
    assert response.status_code == 422
    assert "the limit is 10.0" in response.content.decode()
    assert AssetDocument.objects.count() == 0


def test_valid_pdf_is_stored_with_hash_and_sanitised_name(issuer_client, settings, tmp_path):
    asset = AssetFactory(issuer=issuer_client.issuer)
    response = _upload(issuer_client, asset, "../../etc/Appraisal <2026>.exe", PDF_BYTES)
    assert response.status_code == 200
    document = AssetDocument.objects.get()
    import hashlib

    assert document.sha256 == hashlib.sha256(PDF_BYTES).hexdigest()
    assert document.original_name == "Appraisal _2026.pdf"
    assert document.content_type == "application/pdf"
    assert document.file.path.startswith(str(tmp_path / "private"))


def test_submitted_asset_cannot_be_edited(issuer_client):
    asset = AssetFactory(issuer=issuer_client.issuer, status="submitted")
    response = issuer_client.post(reverse("assets:edit", args=[asset.public_id]), {**VALID, "name": "Changed"})
    assert response.status_code == 302
    asset.refresh_from_db()
    assert asset.name != "Changed"
