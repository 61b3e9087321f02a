"""Buying in the primary market, issue 15: the review of a first purchase (defect 11), the
order rate limit counting orders placed (defect 6) and sold-out offerings (defect 5)."""

import pytest
from django.urls import reverse

from marketplace.models import PrimaryOrder
from marketplace.services import order_place
from marketplace.views import REVIEW_REQUIRED

from .factories import OfferingFactory

pytestmark = pytest.mark.django_db

ACK = {"risk_acknowledged": "on"}


def buy_url(offering):
    return reverse("marketplace:order_place", args=[offering.asset.public_id])


def page_url(offering):
    return reverse("marketplace:offering", args=[offering.asset.public_id])


def post(client, offering, quantity, key, **extra):
    return client.post(buy_url(offering), {"quantity": str(quantity), "idempotency_key": key, **extra})


# -- defect 11: the review of a first purchase ---------------------------------------------


def test_the_first_purchase_page_shows_the_review_with_the_risk_and_a_checkbox(client, offering, investor, fund):
    fund(investor, 100_000)
    client.force_login(investor)
    html = client.get(page_url(offering)).content.decode()
    review = html.split('id="purchase-review"')[1].split("</fieldset>")[0]
    assert f"Review your first purchase of {offering.asset.name}" in review
    assert "illiquid" in review and "can lose value" in review
    assert 'type="checkbox" name="risk_acknowledged"' in review
    # what, how many, price, fee and total: the quote beside it
    quote = html.split('id="quote"')[1]
    assert f"of {offering.asset.name}" in quote and "Fee (1.50%)" in quote and 'id="quote-total"' in quote


def test_a_first_purchase_without_the_tick_is_refused_with_a_clear_message(client, offering, investor, fund):
    fund(investor, 100_000)
    client.force_login(investor)
    response = client.post(buy_url(offering), {"quantity": "3", "idempotency_key": "first-key"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 422 and REVIEW_REQUIRED in html
    assert 'value="first-key"' in html  # the same idempotency key: a retry is still the same order
    assert not PrimaryOrder.objects.exists()

    response = client.post(
        buy_url(offering), {"quantity": "3", "idempotency_key": "first-key", **ACK}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "HX-Redirect" in response
    assert PrimaryOrder.objects.get().quantity == 3


def test_later_purchases_of_the_same_asset_skip_the_review(client, offering, investor, fund):
    fund(investor, 100_000)
    client.force_login(investor)
    assert post(client, offering, 2, "a", **ACK).status_code == 302
    assert 'id="purchase-review"' not in client.get(page_url(offering)).content.decode()
    assert post(client, offering, 2, "b").status_code == 302
    assert PrimaryOrder.objects.count() == 2

    # ... but another asset is a first purchase again
    other = OfferingFactory()
    assert 'id="purchase-review"' in client.get(page_url(other)).content.decode()
    response = post(client, other, 1, "c")
    assert response.status_code == 422 and REVIEW_REQUIRED in response.content.decode()


# -- defect 6: the order limit counts orders placed -----------------------------------------


def test_refused_attempts_do_not_use_up_the_order_limit(client, offering, investor, fund, settings):
    settings.MARKETPLACE_ORDER_RATE_LIMIT = (3, 60)
    fund(investor, 50_000)  # 500.00 EUR: 4 fractions with the fee, not 5
    client.force_login(investor)
    for i in range(10):  # ten refusals: not enough cash, too many, not a number, not reviewed
        quantity, extra = [(5, ACK), (101, ACK), ("x", ACK), (1, {})][i % 4]
        assert post(client, offering, quantity, f"refused-{i}", **extra).status_code == 422
    # then the real orders, up to the limit
    assert post(client, offering, 1, "real-1", **ACK).status_code == 302
    assert post(client, offering, 1, "real-2").status_code == 302
    assert post(client, offering, 1, "real-2").status_code == 302  # a replay places nothing, counts nothing
    assert post(client, offering, 1, "real-3").status_code == 302
    assert PrimaryOrder.objects.count() == 3
    # ... and the limit still holds for orders actually placed
    response = post(client, offering, 1, "real-4")
    assert response.status_code == 429 and "Too many orders" in response.content.decode()
    assert PrimaryOrder.objects.count() == 3


# -- defect 5: sold out -----------------------------------------------------------------------


def test_a_sold_out_offering_page_says_so_and_has_no_buy_button(client, investor, fund, platform_accounts):
    offering = OfferingFactory(fractions_for_sale=4, max_purchase=None)
    fund(investor, 100_000)
    order_place(investor=investor, offering_id=offering.pk, quantity=4, idempotency_key="all")
    client.force_login(investor)
    html = client.get(page_url(offering)).content.decode()
    assert '<span class="badge badge-err" id="offering-status">Sold out</span>' in html
    assert "This offering is sold out." in html and "Buy fractions</button>" not in html


def test_the_catalogue_card_shows_sold_out_as_soon_as_the_last_fractions_are_sold(
    client, investor, fund, platform_accounts, settings
):
    settings.CATALOGUE_CACHE_SECONDS = 300
    offering = OfferingFactory(fractions_for_sale=4, max_purchase=None)
    still_open = OfferingFactory(fractions_for_sale=4)
    catalogue = reverse("assets:catalogue")
    assert "card-sold-out" not in client.get(catalogue).content.decode()  # rendered and cached

    fund(investor, 100_000)
    order_place(investor=investor, offering_id=offering.pk, quantity=4, idempotency_key="all")

    html = client.get(catalogue).content.decode()
    assert html.count("card-sold-out") == 1
    card = html.split(offering.asset.name)[0].rsplit('<article class="asset-card">', 1)[1]
    assert 'class="badge badge-err card-sold-out">Sold out</span>' in card
    assert still_open.asset.name in html
