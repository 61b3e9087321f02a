"""Security audit of the assets app's views, beside test_permissions.py: data-room files
of a live asset, document deletion across assets, the verify panel of an unpublished
asset, POST-only and CSRF-protected changes, reflected catalogue input."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import UserFactory
from assets.models import Asset, AssetDocument
from compliance.tests.factories import KycApplicationFactory, OfficerFactory

from .factories import AssetFactory, IssuerFactory, make_document

pytestmark = pytest.mark.django_db


def _get_as(client, user, url):
    client.logout()
    if user is not None:
        client.force_login(user)
    return client.get(url)


def _verified_investor():
    user = UserFactory()
    KycApplicationFactory(user=user, approved=True)
    return user


# Data room of a live asset ------------------------------------------------------------


def test_live_asset_files_go_only_to_verified_investors_and_only_when_shared(client):
    asset = AssetFactory(status=Asset.Status.LIVE, asa_id=4242)
    shared = make_document(asset, title="Prospectus", public_to_investors=True)
    private = make_document(asset, title="Rent roll", kind=AssetDocument.Kind.FINANCIAL_STATEMENT)
    verified, unverified, other_issuer = _verified_investor(), UserFactory(), IssuerFactory()
    url = lambda doc: reverse("assets:document", args=[doc.public_id])  # noqa: E731

    assert _get_as(client, verified, url(shared)).status_code == 200
    for user in (verified, unverified, other_issuer, None):
        assert _get_as(client, user, url(private)).status_code == 404
    for user in (unverified, other_issuer, None):
        assert _get_as(client, user, url(shared)).status_code == 404
    assert _get_as(client, asset.issuer, url(private)).status_code == 200


def test_shared_files_of_an_unpublished_asset_stay_private(client):
    asset = AssetFactory(status=Asset.Status.MINTING)
    shared = make_document(asset, public_to_investors=True)
    response = _get_as(client, _verified_investor(), reverse("assets:document", args=[shared.public_id]))
    assert response.status_code == 404


def test_verify_panel_of_an_unpublished_asset_is_hidden_from_outsiders(client):
    # Minting failed after the ASA id was recorded: not live, so not public. (No algod in
    # this test: the issuer's panel answers 200 saying algod could not be read.)
    asset = AssetFactory(status=Asset.Status.FAILED, asa_id=777)
    make_document(asset)
    url = reverse("assets:verify", args=[asset.public_id])
    for user in (IssuerFactory(), _verified_investor(), None):
        assert _get_as(client, user, url).status_code == 404
    assert _get_as(client, asset.issuer, url).status_code == 200


# Issuer pages ------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["other issuer", "investor", "anonymous"])
def test_outsiders_cannot_delete_a_document(client, who):
    asset = AssetFactory()
    doc = make_document(asset)
    user = {"other issuer": IssuerFactory(), "investor": UserFactory(), "anonymous": None}[who]
    if user:
        client.force_login(user)
    response = client.post(reverse("assets:document_delete", args=[asset.public_id, doc.public_id]))
    if user is None:
        assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    else:
        assert response.status_code == 404
    assert AssetDocument.objects.filter(pk=doc.pk).exists()


def test_issuer_cannot_delete_another_assets_document_through_their_own_asset(client):
    mine, theirs = AssetFactory(), AssetFactory()
    doc = make_document(theirs)
    client.force_login(mine.issuer)
    response = client.post(reverse("assets:document_delete", args=[mine.public_id, doc.public_id]))
    assert response.status_code == 404
    assert AssetDocument.objects.filter(pk=doc.pk).exists()


def test_issuer_dashboard_lists_only_the_issuers_own_assets(client):
    mine, theirs = AssetFactory(name="Mine Tower"), AssetFactory(name="Theirs Tower")
    body = _get_as(client, mine.issuer, reverse("assets:issuer_dashboard")).content.decode()
    assert mine.name in body and theirs.name not in body


def test_a_non_issuer_cannot_create_an_asset(client):
    client.force_login(UserFactory())
    response = client.post(reverse("assets:create"), {"name": "Sneaky"})
    assert response.status_code == 403
    assert not Asset.objects.exists()


def test_document_upload_delete_and_submit_refuse_get(client):
    asset = AssetFactory()
    doc = make_document(asset)
    client.force_login(asset.issuer)
    for url in (
        reverse("assets:document_upload", args=[asset.public_id]),
        reverse("assets:document_delete", args=[asset.public_id, doc.public_id]),
        reverse("assets:submit", args=[asset.public_id]),
    ):
        assert client.get(url).status_code == 405, url
    asset.refresh_from_db()
    assert asset.status == Asset.Status.DRAFT and AssetDocument.objects.filter(pk=doc.pk).exists()


def test_issuer_changes_refuse_a_post_without_csrf_token():
    asset = AssetFactory()
    doc = make_document(asset)
    client = Client(enforce_csrf_checks=True)
    client.force_login(asset.issuer)
    for url, data in (
        (reverse("assets:document_delete", args=[asset.public_id, doc.public_id]), {}),
        (reverse("assets:submit", args=[asset.public_id]), {}),
        (reverse("assets:edit", args=[asset.public_id]), {"name": "Hijacked"}),
    ):
        assert client.post(url, data).status_code == 403, url
    asset.refresh_from_db()
    assert (asset.status, asset.name) == (Asset.Status.DRAFT, asset.name) and asset.name != "Hijacked"
    assert AssetDocument.objects.filter(pk=doc.pk).exists()


# Public pages ------------------------------------------------------------------------


def test_catalogue_escapes_what_the_visitor_typed(client):
    payload = '"><script>alert(1)</script>'
    response = client.get(reverse("assets:catalogue"), {"q": payload, "location": payload, "price_min": payload})
    body = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in body
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_arc3_metadata_of_an_unapproved_asset_is_a_404(client):
    asset = AssetFactory(status=Asset.Status.SUBMITTED)
    assert client.get(reverse("assets:arc3", args=[asset.public_id.hex])).status_code == 404


def test_back_office_review_does_not_reveal_which_assets_exist_to_staff_without_the_permission(client):
    client.force_login(OfficerFactory())
    asset = AssetFactory(status=Asset.Status.SUBMITTED)
    existing = client.get(reverse("admin:assets_asset_review", args=[asset.pk]))
    missing = client.get(reverse("admin:assets_asset_review", args=[asset.pk + 10_000]))
    assert existing.status_code == missing.status_code == 403
