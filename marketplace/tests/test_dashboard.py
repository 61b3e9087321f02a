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
    assert 'disabled aria-describedby="why-buy"' in html
    assert "Verify your identity (KYC) before buying." in html


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

    assert f'id="why-{closed.asset.pk}-buy" data-codes="offering_closed"' in html
    assert "This offering is closed." in html
    assert f'id="why-{upcoming.asset.pk}-buy" data-codes="offering_not_open"' in html
    assert "This offering opens on 05 Jan 2099 09:00 UTC." in html
    assert f'id="why-{open_one.asset.pk}-buy"' not in html
