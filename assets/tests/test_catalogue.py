import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from assets.models import Asset
from assets.tests.factories import AssetFactory

pytestmark = pytest.mark.django_db


def _live(n, **kwargs):
    return AssetFactory.create_batch(n, status=Asset.Status.LIVE, asa_id=None, **kwargs)


def _make_live(assets):
    for asset in assets:
        Asset.objects.filter(pk=asset.pk).update(asa_id=1000 + asset.pk)


def _queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_catalogue_query_count_is_constant_from_1_to_200_assets(client):
    url = reverse("assets:catalogue")
    _make_live(_live(1))
    one = _queries(client, url)
    _make_live(_live(199))
    many = _queries(client, url)
    assert one == many


def test_only_live_assets_are_listed_and_filters_apply(client):
    live = _live(
        1,
        name="Gold bars lot 7",
        category=Asset.Category.COMMODITY,
        location="Zurich, CH",
        price_per_fraction_minor=5_000,
    )
    _live(1, name="Harbour offices", location="Rotterdam, NL", price_per_fraction_minor=25_000)
    AssetFactory(name="Draft villa", status=Asset.Status.DRAFT)
    url = reverse("assets:catalogue")
    body = client.get(url).content.decode()
    assert "Gold bars lot 7" in body and "Harbour offices" in body and "Draft villa" not in body
    body = client.get(url, {"category": "commodity"}).content.decode()
    assert "Gold bars lot 7" in body and "Harbour offices" not in body
    body = client.get(url, {"location": "rotterdam"}).content.decode()
    assert "Harbour offices" in body and "Gold bars" not in body
    body = client.get(url, {"price_min": "100", "price_max": "300"}).content.decode()
    assert "Harbour offices" in body and "Gold bars" not in body
    body = client.get(url, {"q": "gold"}).content.decode()
    assert "Gold bars lot 7" in body and "Harbour offices" not in body
    assert live[0].public_id


def test_htmx_request_gets_only_the_results_fragment(client):
    _live(1, name="Gold bars lot 7")
    response = client.get(reverse("assets:catalogue"), {"q": "gold"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert 'id="results"' in body and "<html" not in body and "Gold bars lot 7" in body


def test_bad_price_filter_explains_itself(client):
    body = client.get(reverse("assets:catalogue"), {"price_min": "abc"}).content.decode()
    assert "Enter the minimum price as a number" in body


def test_pagination(client):
    _live(30)
    first = client.get(reverse("assets:catalogue")).content.decode()
    assert "Page 1 of 3" in first
    third = client.get(reverse("assets:catalogue"), {"page": 3}).content.decode()
    assert "Page 3 of 3" in third


def test_results_are_served_from_the_cache_until_an_asset_changes(client):
    url = reverse("assets:catalogue")
    asset = _live(1, name="Harbour offices")[0]
    cold = _queries(client, url)
    warm = _queries(client, url)
    assert warm == cold - 3  # neither the count, the page nor the cards' market query runs again
    # Any save of an asset (service, admin) shows at once
    asset.name = "Harbour offices (renovated)"
    asset.save()
    assert "Harbour offices (renovated)" in client.get(url).content.decode()
    _live(1, name="Gold bars lot 7")
    body = client.get(url).content.decode()
    assert "Gold bars lot 7" in body and "2 assets" in body
    asset.delete()
    assert "Harbour offices" not in client.get(url).content.decode()


def test_pager_links_carry_only_the_known_filters(client):
    _live(30, category=Asset.Category.ART)
    body = client.get(reverse("assets:catalogue"), {"category": "art", "utm": "<x>", "page": "1"}).content.decode()
    pager = body[body.index("Page 1 of 3") :]
    assert 'href="?category=art&page=2"' in pager, pager[:600]
    assert "utm=" not in body and "%3Cx%3E" not in body


def test_the_verify_panel_is_rate_limited_per_visitor(client):
    """Each verification reads algod and re-hashes every document file."""
    asset = _live(1)[0]
    Asset.objects.filter(pk=asset.pk).update(asa_id=4321)
    url = reverse("assets:verify", args=[asset.public_id])
    statuses = [client.get(url, REMOTE_ADDR="203.0.113.7", HTTP_HX_REQUEST="true").status_code for _ in range(11)]
    assert statuses[:10] == [200] * 10 and statuses[10] == 429
    refused = client.get(url, REMOTE_ADDR="203.0.113.7", HTTP_HX_REQUEST="true").content.decode()
    assert "10 times a minute" in refused and 'id="verify' in refused
    assert client.get(url, REMOTE_ADDR="198.51.100.2", HTTP_HX_REQUEST="true").status_code == 200


def test_the_pager_counts_the_matching_assets_without_joining_their_offerings(client, settings):
    """The count is an index-only count of the matching live assets: counting the page's
    queryset joined every live asset's offering, and grew with the catalogue."""
    settings.CATALOGUE_CACHE_SECONDS = 0  # rendered, not served from the cache
    _make_live(_live(14, category=Asset.Category.ART))
    _make_live(_live(3, category=Asset.Category.COMMODITY))
    AssetFactory(category=Asset.Category.ART, status=Asset.Status.DRAFT)
    with CaptureQueriesContext(connection) as ctx:
        body = client.get(reverse("assets:catalogue"), {"category": "art"}).content.decode()
    counts = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT COUNT(*)")]
    assert len(counts) == 1 and "JOIN" not in counts[0]
    assert "14 assets" in body and "Page 1 of 2" in body
