"""The investor dashboard (moved here from compliance: it joins KYC, the engine, holdings
and offerings). KYC form and documents stay in compliance/tests/test_views.py."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from assets.models import Asset
from assets.tests.factories import AssetFactory
from compliance.models import KycApplication
from compliance.tests.factories import KycApplicationFactory
from marketplace.models import Holding

from .factories import OfferingFactory

pytestmark = pytest.mark.django_db


def test_dashboard_needs_login(client):
    response = client.get(reverse("marketplace:dashboard"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_new_investor_sees_what_to_do_next_and_disabled_buttons(client):
    client.force_login(UserFactory())

    response = client.get(reverse("marketplace:dashboard"))

    html = response.content.decode()
    assert "Not verified" in html and "Start verification" in html
    # Browsing needs no KYC: a working link to the catalogue, with what buying needs below it
    assert 'href="/assets/" role="button" class="small" id="browse-offerings"' in html
    assert 'disabled aria-describedby="why-buy"' not in html
    assert 'id="why-buy"' in html
    assert "Verify your identity (KYC) before buying." in html
    # ... and selling is not offered as "allowed" when there is nothing to sell
    assert "You hold no fractions yet" in html and 'id="sell-link"' not in html


def test_dashboard_htmx_returns_only_the_status_card(client):
    client.force_login(KycApplicationFactory(submitted=True).user)

    response = client.get(reverse("marketplace:dashboard"), HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert html.lstrip().startswith('<article id="kyc-status"') and "<html" not in html


def test_verified_investor_sees_verified_and_exit_only_after_expiry(client):
    app = KycApplicationFactory(approved=True)
    client.force_login(app.user)
    assert "Verified" in client.get(reverse("marketplace:dashboard")).content.decode()

    KycApplication.objects.filter(pk=app.pk).update(expires_at=datetime.date.today() - datetime.timedelta(days=1))
    html = client.get(reverse("marketplace:dashboard")).content.decode()

    assert "Expired (exit-only)" in html and "Renew verification" in html
    assert 'data-codes="kyc_expired"' in html


def test_dashboard_query_count_is_constant_as_holdings_and_offerings_grow(client):
    app = KycApplicationFactory(approved=True)
    client.force_login(app.user)

    def grow(n):
        for _ in range(n):
            asset = AssetFactory(status=Asset.Status.LIVE)
            Holding.objects.create(investor=app.user, asset=asset, quantity=3)

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            html = client.get(reverse("marketplace:dashboard")).content.decode()
        return len(ctx.captured_queries), html.count('class="muted sell-open"')

    grow(1)
    few, sells = queries()
    grow(6)
    many, more_sells = queries()
    assert (sells, more_sells) == (1, 7)
    assert many == few


def test_read_only_dashboard_refuses_other_methods(client):
    client.force_login(KycApplicationFactory().user)
    assert client.post(reverse("marketplace:dashboard")).status_code == 405


def test_a_shut_offering_window_disables_buy_with_the_offering_pages_words(client):
    """The window is the offering's (one source, one check: Offering.window_status); the
    dashboard says what the order form says, where the engine used to word it again."""
    client.force_login(KycApplicationFactory(approved=True).user)
    now = timezone.now()
    closed = OfferingFactory(closes_at=now - datetime.timedelta(days=1))
    upcoming = OfferingFactory(opens_at=datetime.datetime(2099, 1, 5, 9, 0, tzinfo=datetime.UTC))
    open_one = OfferingFactory(closes_at=now + datetime.timedelta(days=1))

    html = client.get(reverse("marketplace:dashboard")).content.decode()

    # A closed offering is not an open one: not listed (issue 15, defect 5)
    assert closed.asset.name not in html and f'id="why-{closed.asset.pk}-buy"' not in html
    assert f'id="why-{upcoming.asset.pk}-buy" data-codes="offering_not_open"' in html
    assert "This offering opens on 05 Jan 2099 09:00 UTC." in html
    assert f'id="why-{open_one.asset.pk}-buy"' not in html


def test_a_sold_out_offering_is_not_listed_as_open_and_has_no_buy_button(client):
    client.force_login(KycApplicationFactory(approved=True).user)
    sold_out = OfferingFactory(asset__name="Sold Out Tower", fractions_for_sale=10, fractions_sold=10)
    marked = OfferingFactory(
        asset__name="Marked Sold Mill", fractions_for_sale=10, fractions_sold=10, status="sold_out"
    )
    open_one = OfferingFactory(asset__name="Open Lofts", fractions_for_sale=10, fractions_sold=9)

    html = client.get(reverse("marketplace:dashboard")).content.decode()

    assert "Sold Out Tower" not in html and "Marked Sold Mill" not in html
    assert f'href="/assets/{sold_out.asset.public_id}/" role="button"' not in html
    assert f'href="/assets/{marked.asset.public_id}/" role="button"' not in html
    assert "Open Lofts" in html and f'href="/assets/{open_one.asset.public_id}/" role="button"' in html


def test_sell_links_to_the_trade_page_with_one_holding_and_the_portfolio_with_several(client):
    app = KycApplicationFactory(approved=True)
    client.force_login(app.user)
    first = AssetFactory(status=Asset.Status.LIVE)
    Holding.objects.create(investor=app.user, asset=first, quantity=3)

    html = client.get(reverse("marketplace:dashboard")).content.decode()
    trade = reverse("marketplace:asset_trade", args=[first.public_id])
    assert f'<a href="{trade}" role="button" class="small" id="sell-link">' in html
    assert 'badge-ok">allowed' not in html and ">allowed<" not in html

    Holding.objects.create(investor=app.user, asset=AssetFactory(status=Asset.Status.LIVE), quantity=1)
    html = client.get(reverse("marketplace:dashboard")).content.decode()
    portfolio = reverse("marketplace:portfolio")
    assert f'<a href="{portfolio}" role="button" class="small" id="sell-link">' in html
