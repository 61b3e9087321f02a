"""Another issuer, an investor and an anonymous user can't read a private document,
edit someone else's asset, or approve anything."""

import pytest
from django.urls import reverse

from accounts.tests.factories import UserFactory
from assets.models import Asset
from assets.tests.factories import AssetFactory, IssuerFactory, make_document

pytestmark = pytest.mark.django_db


@pytest.fixture
def asset():
    asset = AssetFactory(status=Asset.Status.SUBMITTED)
    asset.doc = make_document(asset)
    return asset


def _outsiders():
    return {"other issuer": IssuerFactory(), "investor": UserFactory(), "anonymous": None}


@pytest.mark.parametrize("who", ["other issuer", "investor", "anonymous"])
def test_outsiders_cannot_read_private_document(client, asset, who):
    user = _outsiders()[who]
    if user:
        client.force_login(user)
    assert client.get(reverse("assets:document", args=[asset.doc.public_id])).status_code == 404


def test_issuer_can_read_own_document(client, asset):
    client.force_login(asset.issuer)
    response = client.get(reverse("assets:document", args=[asset.doc.public_id]))
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content).startswith(b"%PDF-")


@pytest.mark.parametrize("who", ["other issuer", "investor", "anonymous"])
@pytest.mark.parametrize("view", ["manage", "edit", "document_upload", "submit"])
def test_outsiders_cannot_touch_someone_elses_asset(client, who, view):
    asset = AssetFactory()  # a draft: editable by its issuer only
    user = _outsiders()[who]
    if user:
        client.force_login(user)
    response = client.post(reverse(f"assets:{view}", args=[asset.public_id]), {"name": "hijacked"})
    assert response.status_code in (302, 403, 404)
    if response.status_code == 302:
        assert reverse("account_login") in response["Location"]
    asset.refresh_from_db()
    assert (asset.status, asset.name) == ("draft", asset.name) and asset.name != "hijacked"


@pytest.mark.parametrize("who", ["other issuer", "investor", "anonymous"])
def test_outsiders_cannot_approve(client, asset, who):
    user = _outsiders()[who]
    if user:
        client.force_login(user)
    response = client.post(reverse("admin:assets_asset_review", args=[asset.pk]), {"decision": "approve"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    asset.refresh_from_db()
    assert asset.status == Asset.Status.SUBMITTED


def test_non_issuer_cannot_open_issuer_dashboard(client):
    client.force_login(UserFactory())
    assert client.get(reverse("assets:issuer_dashboard")).status_code == 403


def test_unpublished_asset_page_is_hidden_from_public(client, asset):
    assert client.get(reverse("assets:detail", args=[asset.public_id])).status_code == 404
    client.force_login(asset.issuer)
    assert client.get(reverse("assets:detail", args=[asset.public_id])).status_code == 200
