import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import UserFactory
from chain.gateway import AlgodRetryable
from marketplace.models import PrimaryOrder
from marketplace.services import order_place

from .factories import OfferingFactory, usable_payout_account, verified_investor
from .test_orders import confirm

pytestmark = pytest.mark.django_db


def offering_url(offering, name="offering"):
    return reverse(f"marketplace:{name}", args=[offering.asset.public_id])


ACK = {"risk_acknowledged": "on"}  # the review of a first purchase, ticked


def htmx(client, method, url, data=None):
    return getattr(client, method)(url, data or {}, HTTP_HX_REQUEST="true")


def test_offering_page_shows_terms_form_and_idempotency_key(client, offering, investor, fund):
    fund(investor, 100_000)
    client.force_login(investor)
    response = client.get(offering_url(offering))
    body = response.content.decode()
    assert response.status_code == 200
    assert "100.00 EUR" in body and "1.50%" in body and 'name="idempotency_key"' in body
    assert "1,000.00 EUR" in body  # cash available
    assert "Buy fractions" in body and "disabled" not in body.split("Buy fractions")[0][-40:]


def test_anonymous_visitors_are_asked_to_sign_in(client, offering):
    assert "Sign in to buy" in client.get(offering_url(offering)).content.decode()


def test_unverified_investor_sees_the_engines_reasons_and_a_disabled_button(client, offering):
    client.force_login(UserFactory())
    body = client.get(offering_url(offering)).content.decode()
    assert 'id="eligibility-reasons"' in body and "Verify your identity (KYC) before buying." in body
    assert "disabled>Buy fractions" in body


def test_quote_shows_total_with_fee_as_the_investor_types(client, offering, investor):
    client.force_login(investor)
    response = htmx(client, "get", offering_url(offering, "quote") + "?quantity=7")
    body = response.content.decode()
    assert 'id="quote-total"' in body and "710.50 EUR" in body  # 700.00 + 1.5 %
    assert "more than the cash you have" in body
    body = htmx(client, "get", offering_url(offering, "quote") + "?quantity=1.5").content.decode()
    assert "whole number" in body


def test_submitting_places_the_order_and_redirects_to_its_page(client, offering, investor, fund):
    fund(investor, 100_000)
    client.force_login(investor)
    data = {"quantity": "5", "idempotency_key": "abc123", "risk_acknowledged": "on"}
    response = htmx(client, "post", offering_url(offering, "order_place"), data)
    order = PrimaryOrder.objects.get()
    assert response.status_code == 200 and response["HX-Redirect"] == reverse(
        "marketplace:order", args=[order.public_id]
    )
    # A double click posts the same key: same order, no second one
    response = client.post(offering_url(offering, "order_place"), data)
    assert response.status_code == 302 and PrimaryOrder.objects.count() == 1


@pytest.mark.parametrize(
    "quantity, message",
    [
        ("0", "at least 1"),
        ("-2", "at least 1"),
        ("2.5", "whole number"),
        ("abc", "whole number"),
        ("101", "maximum purchase is 100"),
        ("1001", "Only 1,000 fractions are left"),
        ("50", "Not enough cash"),
    ],
)
def test_bad_input_is_answered_in_the_form_and_nothing_is_placed(client, offering, investor, fund, quantity, message):
    fund(investor, 100_000)
    client.force_login(investor)
    response = htmx(
        client,
        "post",
        offering_url(offering, "order_place"),
        {"quantity": quantity, "idempotency_key": "k", "risk_acknowledged": "on"},
    )
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not PrimaryOrder.objects.exists()


def test_order_placement_is_rate_limited_with_a_clear_429(client, offering, investor, fund, settings):
    settings.MARKETPLACE_ORDER_RATE_LIMIT = (2, 60)
    fund(investor, 1_000_000)
    client.force_login(investor)
    for i in range(2):
        client.post(offering_url(offering, "order_place"), {"quantity": "1", "idempotency_key": f"k{i}", **ACK})
    response = client.post(offering_url(offering, "order_place"), {"quantity": "1", "idempotency_key": "k9", **ACK})
    assert response.status_code == 429
    assert "Too many orders" in response.content.decode()
    assert PrimaryOrder.objects.count() == 2
    response = htmx(
        client, "post", offering_url(offering, "order_place"), {"quantity": "1", "idempotency_key": "k10", **ACK}
    )
    assert response.status_code == 429 and 'id="order-errors"' in response.content.decode()


def test_order_page_polls_until_final_and_shows_round_and_txid(client, offering, investor, fund):
    fund(investor, 100_000)
    order = order_place(investor=investor, offering_id=offering.pk, quantity=2, idempotency_key="k")
    client.force_login(investor)
    url = reverse("marketplace:order", args=[order.public_id])
    body = htmx(client, "get", url).content.decode()
    assert 'hx-trigger="every 1s"' in body and 'data-status="reserved"' in body
    confirm(order, round_=314, txid="A" * 52)
    body = htmx(client, "get", url).content.decode()
    assert "hx-trigger" not in body and 'data-status="settled"' in body
    assert '<span id="confirmed-round">314</span>' in body and "A" * 52 in body


def test_someone_elses_order_is_a_404(client, offering, investor, fund):
    fund(investor, 100_000)
    order = order_place(investor=investor, offering_id=offering.pk, quantity=2, idempotency_key="k")
    client.force_login(UserFactory())
    assert client.get(reverse("marketplace:order", args=[order.public_id])).status_code == 404


def test_portfolio_shows_holdings_cash_orders_and_movements(client, offering, investor, fund):
    fund(investor, 100_000)
    order = order_place(investor=investor, offering_id=offering.pk, quantity=5, idempotency_key="k")
    confirm(order, round_=55, txid="B" * 52)
    client.force_login(investor)
    body = client.get(reverse("marketplace:portfolio")).content.decode()
    assert offering.asset.name in body
    assert '<td class="holding-quantity">5</td>' in body
    assert "500.00 EUR" in body  # cost basis and value
    assert '<td class="cash-available">492.50 EUR</td>' in body
    assert '<span class="order-round">55</span>' in body and "B" * 52 in body
    assert "Deposit" in body and "Purchase settled" in body


def test_on_chain_check_reads_algod_and_says_unavailable_when_it_cannot(client, offering, investor, fund, monkeypatch):
    fund(investor, 100_000)
    confirm(order_place(investor=investor, offering_id=offering.pk, quantity=5, idempotency_key="k"))
    holding = investor.holdings.get()
    client.force_login(investor)
    url = reverse("marketplace:holding_chain_check", args=[holding.pk])
    monkeypatch.setattr("marketplace.views.asset_amount", lambda address, asa_id: 5)
    assert "✔ matches" in htmx(client, "get", url).content.decode()

    def down(address, asa_id):
        raise AlgodRetryable("connection refused")

    monkeypatch.setattr("marketplace.views.asset_amount", down)
    assert "On chain: unavailable" in htmx(client, "get", url).content.decode()
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404


def test_csv_export_lists_every_movement_in_exact_amounts(client, offering, investor, fund):
    fund(investor, 100_005)
    confirm(order_place(investor=investor, offering_id=offering.pk, quantity=1, idempotency_key="k"), txid="C" * 52)
    client.force_login(investor)
    response = client.get(reverse("marketplace:portfolio_csv"))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["type"], r["account"], r["amount"]) for r in reversed(rows)] == [
        ("deposit", "investor_available", "1000.05"),
        ("purchase_reserve", "investor_available", "-101.50"),
        ("purchase_reserve", "investor_held", "101.50"),
        ("purchase_settle", "investor_held", "-101.50"),
    ]
    assert rows[0]["txid"] == "C" * 52


def test_withdrawal_request_from_the_portfolio(client, investor, fund):
    fund(investor, 10_000)
    account = str(usable_payout_account(investor).public_id)
    client.force_login(investor)
    response = client.post(
        reverse("marketplace:withdrawal_create"),
        {"amount": "40.00", "currency": "EUR", "payout_account": account},
        follow=True,
    )
    assert "Withdrawal requested" in response.content.decode()
    response = client.post(
        reverse("marketplace:withdrawal_create"),
        {"amount": "400.00", "currency": "EUR", "payout_account": account},
        follow=True,
    )
    assert "less than" in response.content.decode()


def test_asset_page_links_to_the_offering_and_issuer_sees_progress(client, offering, investor, fund):
    fund(investor, 100_000)
    confirm(order_place(investor=investor, offering_id=offering.pk, quantity=3, idempotency_key="k"))
    body = client.get(reverse("assets:detail", args=[offering.asset.public_id])).content.decode()
    assert "not available yet" not in body and offering_url(offering) in body and "Buy fractions" in body
    client.force_login(offering.asset.issuer)
    body = client.get(reverse("assets:manage", args=[offering.asset.public_id])).content.decode()
    assert '<dd id="holders">1</dd>' in body and "300.00 EUR" in body and "3 of 1,000" in body
    body = client.get(reverse("assets:issuer_dashboard")).content.decode()
    assert "3 of 1,000 sold, 300.00 EUR raised, 1 holder" in body


def test_investor_navigation_has_a_portfolio_link(client, investor):
    client.force_login(investor)
    assert reverse("marketplace:portfolio") in client.get(reverse("assets:catalogue")).content.decode()


def _queries(client, url) -> int:
    """Queries of a second view (a first one fills the page's caches)."""
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def _buyers(offering, fund, n):
    for _ in range(n):
        buyer = verified_investor()
        fund(buyer, 100_000)
        confirm(order_place(investor=buyer, offering_id=offering.pk, quantity=1, idempotency_key="k"))


def test_offering_page_query_count_is_constant_as_orders_grow(client, offering, investor, fund):
    client.force_login(investor)
    _buyers(offering, fund, 2)
    few = _queries(client, offering_url(offering))
    _buyers(offering, fund, 6)
    assert _queries(client, offering_url(offering)) == few


def test_portfolio_query_count_is_constant_as_holdings_and_orders_grow(client, investor, fund, platform_accounts):
    client.force_login(investor)
    fund(investor, 10_000_000)

    def buy(n):
        for _ in range(n):
            offering = OfferingFactory()
            for q in (1, 2):
                confirm(
                    order_place(
                        investor=investor, offering_id=offering.pk, quantity=q, idempotency_key=f"{offering.pk}-{q}"
                    )
                )

    buy(1)
    client.get(reverse("marketplace:portfolio"))  # the first visit creates the payment reference (once)
    few = _queries(client, reverse("marketplace:portfolio"))
    buy(4)
    assert _queries(client, reverse("marketplace:portfolio")) == few


def test_anonymous_offering_page_is_cached_until_a_purchase_commits(
    client, offering, fund, settings, django_capture_on_commit_callbacks
):
    """Anonymous visitors get the rendered page from the cache, without a query; a
    purchase shows as soon as it commits (the offering's sold version); the CSRF token (in
    the frame) is per visitor."""
    import re

    from django.test import Client

    settings.CATALOGUE_CACHE_SECONDS = 300
    url = offering_url(offering)
    first = client.get(url).content.decode()
    assert '<dd id="offering-remaining">1,000</dd>' in first and "Sign in to buy" in first
    with CaptureQueriesContext(connection) as ctx:
        again = client.get(url).content.decode()
    assert len(ctx.captured_queries) == 0
    buyer = verified_investor()
    fund(buyer, 100_000)
    with django_capture_on_commit_callbacks() as callbacks:
        order_place(investor=buyer, offering_id=offering.pk, quantity=7, idempotency_key="live")
    assert '<dd id="offering-remaining">1,000</dd>' in client.get(url).content.decode()  # not committed yet
    for callback in callbacks:
        callback()
    after = client.get(url).content.decode()
    assert '<dd id="offering-remaining">993</dd>' in after and "csrfmiddlewaretoken" not in after

    def token(html: str) -> str:
        found = re.search(r'"X-CSRFToken": "([^"]+)"', html)
        assert found is not None
        return found.group(1)

    assert token(first) != token(Client().get(url).content.decode())
    assert again.count("offering-remaining") == 1


def test_anonymous_offering_page_hit_is_no_query_and_one_cache_round_trip(client, offering, settings, monkeypatch):
    """A shared page served from the cache: one MGET (the versions and the page), no
    query (the asset's id is known to the process after the first view)."""
    from django.core.cache import caches

    settings.CATALOGUE_CACHE_SECONDS = 300
    url = offering_url(offering)
    client.get(url)
    backend, calls = caches["default"], []
    for name in ("get", "get_many", "get_or_set", "set", "set_many"):
        original = getattr(backend, name)
        monkeypatch.setattr(
            backend, name, lambda *a, _name=name, _original=original, **k: (calls.append(_name), _original(*a, **k))[1]
        )
    with CaptureQueriesContext(connection) as ctx:
        html = client.get(url).content.decode()
    assert calls == ["get_many"] and len(ctx.captured_queries) == 0
    assert '<dd id="offering-remaining">1,000</dd>' in html


def test_anonymous_offering_page_follows_the_window_and_the_asset_live(client, platform_accounts, settings):
    """An upcoming offering opens on time on a cached page (the entry holds only until the
    window changes), and an asset no longer live (saved, as every write of an asset is)
    is a 404 at once."""
    import datetime

    import time_machine
    from django.utils import timezone

    from assets.models import Asset

    settings.CATALOGUE_CACHE_SECONDS = 300
    opens = timezone.now() + datetime.timedelta(hours=1)
    offering = OfferingFactory(opens_at=opens)
    url = offering_url(offering)
    assert 'id="offering-status">Upcoming' in client.get(url).content.decode()
    with time_machine.travel(opens + datetime.timedelta(minutes=1)):
        assert 'id="offering-status">Open' in client.get(url).content.decode()
    with time_machine.travel(opens + datetime.timedelta(minutes=2)):
        assert 'id="offering-status">Open' in client.get(url).content.decode()  # from the cache
    asset = Asset.objects.get(pk=offering.asset_id)
    asset.status = Asset.Status.APPROVED
    asset.save(update_fields=["status"])
    assert client.get(url).status_code == 404


def test_signed_in_offering_page_is_rendered_for_the_visitor(client, offering, investor, fund, settings):
    settings.CATALOGUE_CACHE_SECONDS = 300
    client.get(offering_url(offering))  # fills the anonymous cache
    fund(investor, 12_345)
    client.force_login(investor)
    html = client.get(offering_url(offering)).content.decode()
    assert 'id="cash-available">123.45 EUR' in html and "csrfmiddlewaretoken" in html and "Sign in to buy" not in html
