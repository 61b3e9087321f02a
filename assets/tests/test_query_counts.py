"""Pages of the assets app keep a constant number of queries as their data grows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from assets.models import Asset, AssetDocument, AssetImage
from compliance.tests.factories import KycApplicationFactory

from .factories import AssetFactory, IssuerFactory, make_document, make_image

pytestmark = pytest.mark.django_db


def _queries(client, url) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode()


def test_issuer_dashboard_is_constant_in_assets_and_documents(client):
    issuer = IssuerFactory()
    client.force_login(issuer)

    def add(n):
        for _ in range(n):
            asset = AssetFactory(issuer=issuer)
            make_document(asset)
            make_document(asset, title="Deed")

    add(1)
    few, _ = _queries(client, reverse("assets:issuer_dashboard"))
    add(5)
    many, html = _queries(client, reverse("assets:issuer_dashboard"))
    assert html.count("2 documents") == 6
    assert many == few


@pytest.mark.parametrize("viewer", ["anonymous", "verified investor", "issuer"])
def test_asset_page_is_constant_in_documents(client, viewer):
    asset = AssetFactory(status=Asset.Status.LIVE, asa_id=1234)
    if viewer == "issuer":
        client.force_login(asset.issuer)
    elif viewer == "verified investor":
        client.force_login(KycApplicationFactory(approved=True).user)

    def add(n):
        for _ in range(n):
            make_document(asset, title=f"Appraisal {AssetDocument.objects.count()}", public_to_investors=True)

    add(1)
    url = reverse("assets:detail", args=[asset.public_id])
    few, _ = _queries(client, url)
    add(6)
    many, html = _queries(client, url)
    assert AssetDocument.objects.filter(asset=asset).count() == 7 and html.count("Appraisal ") >= 7
    assert many == few


@pytest.mark.parametrize("viewer", ["anonymous", "verified investor", "issuer"])
def test_asset_page_is_constant_in_gallery_photos(client, viewer):
    asset = AssetFactory(status=Asset.Status.LIVE, asa_id=1235)
    if viewer == "issuer":
        client.force_login(asset.issuer)
    elif viewer == "verified investor":
        client.force_login(KycApplicationFactory(approved=True).user)
    url = reverse("assets:detail", args=[asset.public_id])

    make_image(asset, caption="Photo 1")
    few, _ = _queries(client, url)
    for n in range(2, 9):
        make_image(asset, caption=f"Photo {n}")
    many, html = _queries(client, url)

    assert AssetImage.objects.filter(asset=asset).count() == 8 and html.count('alt="Photo ') == 8
    assert many == few


def test_manage_page_is_constant_in_gallery_photos(client):
    asset = AssetFactory()
    client.force_login(asset.issuer)
    url = reverse("assets:manage", args=[asset.public_id])

    make_image(asset)
    few, _ = _queries(client, url)
    for _ in range(6):
        make_image(asset)
    many, html = _queries(client, url)

    assert "7 of 20 photos" in html
    assert many == few
