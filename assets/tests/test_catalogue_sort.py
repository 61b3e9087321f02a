"""Catalogue sorting (a fixed list of orders; anything else is the default, newest
first) and the cards' "% funded" (fractions sold of fractions offered, rounded down)."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from assets import catalogue_cache
from assets.models import Asset
from marketplace.models import Offering
from marketplace.tests.factories import LiveAssetFactory, OfferingFactory

pytestmark = pytest.mark.django_db


def _asset(name, *, price, days_ago, sold=None, offered=1_000):
    asset = LiveAssetFactory(name=name, price_per_fraction_minor=price)
    Asset.objects.filter(pk=asset.pk).update(live_at=timezone.now() - timedelta(days=days_ago))
    if sold is not None:
        offering = OfferingFactory(asset=asset, fractions_for_sale=offered, price_per_fraction_minor=price)
        # fractions_sold is not editable through the form; the purchase path updates it so.
        Offering.objects.filter(pk=offering.pk).update(fractions_sold=sold)
    return asset


@pytest.fixture
def assets():
    return {
        "Alpha": _asset("Alpha", price=30_000, days_ago=3, sold=500),  # 50 %
        "Bravo": _asset("Bravo", price=10_000, days_ago=1, sold=999),  # 99.9 % -> 99
        "Charlie": _asset("Charlie", price=20_000, days_ago=2, sold=0),  # 0 %
        "Delta": _asset("Delta", price=5_000, days_ago=4),  # no offering
    }


def _names(client, **params):
    response = client.get(reverse("assets:catalogue"), params)
    assert response.status_code == 200
    body = response.content.decode()
    return [n for n in re.findall(r">(Alpha|Bravo|Charlie|Delta)</a>", body)], body


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("", ["Bravo", "Charlie", "Alpha", "Delta"]),
        ("newest", ["Bravo", "Charlie", "Alpha", "Delta"]),
        ("price_asc", ["Delta", "Bravo", "Charlie", "Alpha"]),
        ("price_desc", ["Alpha", "Charlie", "Bravo", "Delta"]),
        ("funded", ["Bravo", "Alpha", "Charlie", "Delta"]),
    ],
)
def test_each_sort_orders_the_cards(client, assets, sort, expected):
    names, _ = _names(client, sort=sort)
    assert names == expected


@pytest.mark.parametrize(
    "hostile",
    ["x" * 10_000, "price_asc\x00", "\x00", "prïce_asc", "日本語", "-live_at", "price_per_fraction_minor", "funded "],
)
def test_unknown_sort_gives_the_default_order_not_an_error(client, assets, hostile):
    names, _ = _names(client, sort=hostile)
    # "funded " is stripped like every parameter, so it is the known "funded".
    expected = (
        ["Bravo", "Alpha", "Charlie", "Delta"] if hostile == "funded " else ["Bravo", "Charlie", "Alpha", "Delta"]
    )
    assert names == expected


def test_cards_show_percent_funded_as_a_progress_element_without_inline_style(client, assets):
    _, body = _names(client)
    assert 'value="50"' in body and 'value="99"' in body and 'value="0"' in body
    assert "<progress" in body and "style=" not in body
    # Delta has no offering: no bar at all.
    assert body.count("<progress") == 3


def test_pager_links_keep_the_sort(client, settings):
    for i in range(14):
        _asset(f"Lot {i}", price=1_000 + i, days_ago=i)
    body = client.get(reverse("assets:catalogue"), {"sort": "price_desc"}).content.decode()
    assert "?sort=price_desc&page=2" in body
    body = client.get(reverse("assets:catalogue"), {"sort": "nonsense"}).content.decode()
    assert "sort=" not in re.search(r'<nav aria-label="Pages".*?</nav>', body, re.S).group(0)


def test_cache_key_includes_the_sort(client, assets, settings):
    settings.CATALOGUE_CACHE_SECONDS = 60
    base = {"q": "", "category": "", "location": "", "price_min": "", "price_max": "", "page": ""}
    assert catalogue_cache.results_key({**base, "sort": ""}) != catalogue_cache.results_key(
        {**base, "sort": "price_asc"}
    )
    # Cached: the second sort is not served the first one's page.
    first, _ = _names(client)
    second, _ = _names(client, sort="price_asc")
    assert first != second and second == ["Delta", "Bravo", "Charlie", "Alpha"]


@pytest.mark.parametrize("sort", ["newest", "price_asc", "price_desc", "funded"])
def test_query_count_is_constant_per_sort(client, sort, settings):
    settings.CATALOGUE_CACHE_SECONDS = 0

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("assets:catalogue"), {"sort": sort}).status_code == 200
        return len(ctx.captured_queries)

    _asset("One", price=1_000, days_ago=1, sold=1)
    one = count()
    for i in range(30):
        _asset(f"Many {i}", price=2_000 + i, days_ago=i, sold=i if i % 2 else None)
    assert count() == one
