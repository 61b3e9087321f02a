"""The price chart (marketplace/charts.py) and its endpoints: SVG for 0, 1 and many
points, CSP-safe markup, accessible figures, ranges validated (400, never 500), the JSON
series, who may see them, and constant queries."""

import datetime
import json
import re
from datetime import UTC, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from assets.models import Asset
from assets.tests.factories import AssetFactory, make_document
from marketplace.charts import price_chart_svg
from marketplace.market_data import Candle, Series
from marketplace.models import Valuation

from .factories import OfferingFactory, StaffFactory
from .test_market_data import TODAY, trade
from .test_market_data import rates as market_rates  # noqa: F401 - the autouse settings fixture
from .trading_helpers import give_units

pytestmark = pytest.mark.django_db


@pytest.fixture
def asset(platform_accounts):
    return OfferingFactory().asset


@pytest.fixture
def parties(asset, fund):
    from .factories import verified_investor

    buyer, seller = verified_investor(), verified_investor()
    fund(buyer, 100_000_000)
    give_units(seller, asset, 5_000)
    return buyer, seller


def series(n: int, valuations=()) -> Series:
    start = datetime.date(2026, 1, 1)
    candles = [
        Candle(start + timedelta(days=i), 100 + i, 110 + i, 90 + i, 105 + i, i + 1, (i + 1) * 105) for i in range(n)
    ]
    return Series("1m", "EUR", start, start + timedelta(days=29), candles, list(valuations))


def _valuation(value, day):
    return Valuation(value_per_fraction_minor=value, currency="EUR", as_of=day)


@pytest.mark.parametrize("n", [0, 1, 2, 30])
def test_svg_renders_for_zero_one_and_many_points(n):
    svg = price_chart_svg(series(n, [_valuation(120, datetime.date(2025, 12, 1))]), name="Tower <b>", element_id="c")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert 'viewBox="0 0 480 300"' in svg and 'width="100%"' in svg and 'role="img"' in svg
    assert "<title" in svg and "<desc" in svg and "Tower &lt;b&gt;" in svg and "<b>" not in svg
    assert svg.count('class="chart-point"') == n
    assert svg.count('class="chart-volume"') == n
    assert ('class="chart-price"' in svg) == (n > 1)
    assert ("No trades in this range" in svg) == (n == 0)
    assert 'class="chart-valuation"' in svg
    # CSP: style-src 'self' forbids style attributes; no script either.
    assert "style=" not in svg and "<script" not in svg and "on" + "load" not in svg
    assert not re.search(r"nan|inf", svg.lower().replace("information", ""))


def test_valuation_step_line_steps_at_each_valuation():
    vals = [_valuation(100, datetime.date(2025, 12, 1)), _valuation(150, datetime.date(2026, 1, 16))]
    svg = price_chart_svg(series(3, vals), name="A", element_id="c")
    points = re.search(r'class="chart-valuation" points="([^"]+)"', svg).group(1).split()
    assert len(points) == 4  # start, step up at 16 Jan (two points), end
    assert points[1].split(",")[0] == points[2].split(",")[0]  # vertical step
    assert float(points[2].split(",")[1]) < float(points[1].split(",")[1])  # higher value: higher up


def test_summary_has_the_figures():
    svg = price_chart_svg(series(2, [_valuation(120, datetime.date(2025, 12, 1))]), name="A", element_id="c")
    assert "first close 1.05 EUR" in svg and "last close 1.06 EUR" in svg and "3 units traded" in svg
    assert "Valuation 1.20 EUR per fraction" in svg


def test_chart_endpoint_is_public_for_a_live_asset_and_swaps_ranges(client, asset, parties):
    trade(asset, parties, 2, 10_000, TODAY - timedelta(days=40))
    trade(asset, parties, 3, 10_500, TODAY)
    url = reverse("marketplace:asset_chart", args=[asset.public_id])
    one_month = client.get(url)
    assert one_month.status_code == 200
    html = one_month.content.decode()
    assert html.count('class="chart-point"') == 1 and 'hx-get="' in html and "?range=1y" in html
    assert client.get(url + "?range=1y").content.decode().count('class="chart-point"') == 2
    assert client.get(url + "?range=all").status_code == 200
    assert client.get(url + "?range=1w").status_code == 200


@pytest.mark.parametrize("bad", ["5y", "1e309", "１m", "x" * 10_000, "1m\x00", "<script>"])
def test_unknown_range_is_400_with_a_message(client, asset, bad):
    for name in ("asset_chart", "asset_market_data_json"):
        response = client.get(reverse(f"marketplace:{name}", args=[asset.public_id]), {"range": bad})
        assert response.status_code == 400
        text = response.content.decode()
        assert "Unknown range" in text and "1w, 1m, 1y, all" in text
        if name == "asset_chart":
            assert "<script>" not in text  # escaped in the HTML fragment


def test_json_series_matches_the_candles(client, asset, parties):
    trade(asset, parties, 2, 10_000, TODAY - timedelta(days=1))
    trade(asset, parties, 3, 10_500, TODAY)
    data = json.loads(client.get(reverse("marketplace:asset_market_data_json", args=[asset.public_id])).content)
    assert data["range"] == "1m" and data["currency"] == "EUR"
    assert [c["close_minor"] for c in data["candles"]] == [10_000, 10_500]
    assert data["candles"][1]["gross_minor"] == 31_500
    assert data["stats"]["last_price_minor"] == 10_500 and data["stats"]["implied_yield_bps"] is None


def test_chart_of_an_unpublished_asset_is_404_to_outsiders(client, platform_accounts):
    draft = AssetFactory(status=Asset.Status.SUBMITTED)
    for name in ("asset_chart", "asset_market_data_json"):
        assert client.get(reverse(f"marketplace:{name}", args=[draft.public_id])).status_code == 404
    client.force_login(draft.issuer)
    assert client.get(reverse("marketplace:asset_chart", args=[draft.public_id])).status_code == 200


def test_chart_queries_do_not_grow_with_trades(client, asset, parties, settings):
    settings.CATALOGUE_CACHE_SECONDS = 0  # the computation itself, not the cache
    url = reverse("marketplace:asset_chart", args=[asset.public_id]) + "?range=all"
    trade(asset, parties, 1, 10_000, TODAY - timedelta(days=100))

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    few = count()
    for i in range(8):
        trade(asset, parties, 1, 10_000 + i, TODAY - timedelta(days=i * 9))
    assert count() == few


def test_offering_page_serves_the_chart_from_the_cache_until_a_trade_commits(
    client, asset, parties, settings, django_capture_on_commit_callbacks
):
    """Cached: the page, its chart and valuations cost no query on a second view; a
    committed trade replaces the chart at once."""
    settings.CATALOGUE_CACHE_SECONDS = 300
    url = reverse("marketplace:offering", args=[asset.public_id])
    assert "12.35 EUR" not in client.get(url).content.decode()
    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    assert ctx.captured_queries == []
    with django_capture_on_commit_callbacks(execute=True):
        trade(asset, parties, 1, 1_235, TODAY)
    html = client.get(url).content.decode()
    assert f'data-day="{TODAY.date().isoformat()}"' in html and "12.35 EUR" in html


def test_offering_page_shows_chart_and_valuation_history_with_document_links(client, asset):
    from compliance.tests.factories import KycApplicationFactory
    from marketplace.valuations import valuation_publish

    staff = StaffFactory()
    hidden = make_document(asset, title="Private appraisal")
    public = make_document(asset, title="Public appraisal", public_to_investors=True)
    today = timezone.now().astimezone(UTC).date()
    valuation_publish(
        asset=asset, actor=staff, value_per_fraction_minor=11_111, as_of=today - timedelta(days=40), document=hidden
    )
    valuation_publish(asset=asset, actor=staff, value_per_fraction_minor=12_222, as_of=today, document=public)
    url = reverse("marketplace:offering", args=[asset.public_id])
    anonymous = client.get(url).content.decode()
    assert "111.11 EUR" in anonymous and "122.22 EUR" in anonymous and 'class="price-chart"' in anonymous
    assert "valuation-document" not in anonymous
    client.force_login(KycApplicationFactory(approved=True).user)
    verified = client.get(url).content.decode()
    assert verified.count('class="valuation-document"') == 1 and "Public appraisal" in verified
    client.force_login(staff)
    assert client.get(url).content.decode().count('class="valuation-document"') == 2
