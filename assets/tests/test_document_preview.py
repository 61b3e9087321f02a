"""PDF preview: a shared PDF shown in the browser (inline) under a sandbox CSP that runs
none of its scripts; the same readers as the download; only PDFs."""

import pytest
from django.urls import reverse

from accounts.tests.factories import UserFactory
from assets.models import Asset, AssetDocument
from compliance.tests.factories import KycApplicationFactory

from .factories import PNG_BYTES, AssetFactory, IssuerFactory, make_document

pytestmark = pytest.mark.django_db


def _verified_investor():
    user = UserFactory()
    KycApplicationFactory(user=user, approved=True)
    return user


def _get_as(client, user, url):
    client.logout()
    if user is not None:
        client.force_login(user)
    return client.get(url)


def _preview(doc):
    return reverse("assets:document_preview", args=[doc.public_id])


@pytest.fixture
def asset():
    return AssetFactory(status=Asset.Status.LIVE, asa_id=4343)


def test_preview_is_inline_with_a_sandbox_csp_and_nosniff(client, asset):
    doc = make_document(asset, title="Prospectus", public_to_investors=True)
    response = _get_as(client, _verified_investor(), _preview(doc))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("inline;")
    assert 'filename="Prospectus.pdf"' in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    directives = dict(
        (part.split(" ", 1) + [""])[:2] for part in (p.strip() for p in response["Content-Security-Policy"].split(";"))
    )
    # `sandbox` with no allow-* token: no script, no form, a unique origin.
    assert directives["sandbox"] == ""
    assert directives["default-src"] == "'none'" and directives["object-src"] == "'none'"
    assert "allow-scripts" not in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content).startswith(b"%PDF-")


def test_preview_has_the_downloads_readers(client, asset):
    shared = make_document(asset, title="Prospectus", public_to_investors=True)
    private = make_document(asset, title="Rent roll", kind=AssetDocument.Kind.FINANCIAL_STATEMENT)
    verified, unverified, other_issuer = _verified_investor(), UserFactory(), IssuerFactory()
    for user in (unverified, other_issuer, None):
        assert _get_as(client, user, _preview(shared)).status_code == 404
    for user in (verified, unverified, other_issuer, None):
        assert _get_as(client, user, _preview(private)).status_code == 404
    assert _get_as(client, verified, _preview(shared)).status_code == 200
    assert _get_as(client, asset.issuer, _preview(private)).status_code == 200


def test_private_document_of_an_unpublished_asset_has_no_preview_for_another_investor(client):
    asset = AssetFactory(status=Asset.Status.SUBMITTED)
    doc = make_document(asset, public_to_investors=True)
    assert _get_as(client, _verified_investor(), _preview(doc)).status_code == 404
    assert _get_as(client, None, _preview(doc)).status_code == 404


def test_no_preview_for_a_non_pdf(client, asset):
    photo = make_document(
        asset, content=PNG_BYTES, kind=AssetDocument.Kind.OTHER, title="Front", public_to_investors=True
    )
    investor = _verified_investor()
    assert _get_as(client, investor, _preview(photo)).status_code == 404
    # The download itself still works, as an attachment.
    download = _get_as(client, investor, reverse("assets:document", args=[photo.public_id]))
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment;")


def test_detail_page_offers_preview_only_next_to_a_readable_pdf(client, asset):
    pdf = make_document(asset, title="Prospectus", public_to_investors=True)
    photo = make_document(
        asset, content=PNG_BYTES, kind=AssetDocument.Kind.OTHER, title="Front", public_to_investors=True
    )
    private = make_document(asset, title="Rent roll", kind=AssetDocument.Kind.FINANCIAL_STATEMENT)
    body = _get_as(client, _verified_investor(), reverse("assets:detail", args=[asset.public_id])).content.decode()
    assert _preview(pdf) in body
    assert _preview(photo) not in body and _preview(private) not in body
    body = _get_as(client, None, reverse("assets:detail", args=[asset.public_id])).content.decode()
    assert _preview(pdf) not in body
