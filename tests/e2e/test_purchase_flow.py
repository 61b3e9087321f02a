"""Primary purchase in a real browser, settled on devnet by a real Celery worker: a
verified investor with a deposit opens the offering from the asset page, sees the total
with fees as they type, buys 5 fractions, watches the order go reserved → confirmed in
round N with its txid, and finds them in the portfolio, checked against algod."""

import re

import pytest

from accounts.tests.factories import DEFAULT_PASSWORD
from marketplace.models import LedgerAccount, PrimaryOrder
from marketplace.services import deposit_record
from marketplace.tests.chain_helpers import mint_live_asset
from marketplace.tests.factories import StaffFactory, verified_investor

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_verified_investor_buys_five_fractions_and_sees_them_on_chain(
    page, page_problems, chain_platform, celery_worker_process
):
    # Given a live asset at 250.00 EUR a fraction, minted on devnet, and a verified investor with 2,000.00 EUR
    asset = mint_live_asset(
        name="Harbour Lofts",
        total_fractions=1_000,
        fractions_for_sale=800,
        price_per_fraction_minor=25_000,
        max_purchase=50,
    )
    investor = verified_investor(email="ivy@example.com", full_name="Ivy Investor")
    deposit_record(
        investor=investor, amount_minor=200_000, currency="EUR", bank_reference="SEPA-0001", actor=StaffFactory()
    )

    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(investor.email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.get_by_role("heading", name="Your profile").wait_for()

    # When they open the offering from the asset page and type a quantity
    page.goto(f"/assets/{asset.public_id}/")
    page.locator("#buy-link", has_text="Buy fractions").click()
    page.get_by_role("heading", name="Buy fractions of Harbour Lofts").wait_for()
    assert page.locator("#cash-available").inner_text() == "2,000.00 EUR"
    quantity = page.get_by_label("Number of fractions")
    quantity.fill("9")
    page.locator("#quote-total").filter(has_text="2,272.50 EUR").wait_for()  # 2,250.00 + 1 % fee
    page.get_by_text("more than the cash you have available").wait_for()
    # ... a first purchase of the asset is reviewed: the risk, and a box to tick before buying
    review = page.locator("#purchase-review")
    assert "illiquid" in review.inner_text() and "can lose value" in review.inner_text()
    page.get_by_role("button", name="Buy fractions").click()
    page.locator("#order-errors").filter(has_text="tick the box").wait_for()
    assert not PrimaryOrder.objects.filter(investor=investor).exists()
    page.get_by_label("I have reviewed this order").check()
    # ... a refused order explains itself in place (the form answers 422 and htmx swaps it)
    page.get_by_role("button", name="Buy fractions").click()
    page.locator("#order-errors").filter(has_text="Not enough cash").wait_for()
    assert not PrimaryOrder.objects.filter(investor=investor).exists()
    assert page.get_by_label("I have reviewed this order").is_checked()  # the tick survives the 422
    quantity = page.get_by_label("Number of fractions")
    quantity.fill("5")
    page.locator("#quote-total").filter(has_text="1,262.50 EUR").wait_for()  # 1,250.00 + 12.50

    # ... and buy
    page.get_by_role("button", name="Buy fractions").click()

    # Then the order page follows settlement until it is confirmed in a round, with the txid
    page.wait_for_url(re.compile(r"/market/orders/"))
    page.locator("#order-status[data-status='settled']").wait_for(timeout=60_000)
    order = PrimaryOrder.objects.select_related("chain_tx").get(investor=investor)
    assert order.status == "settled" and order.quantity == 5
    assert page.locator("#confirmed-round").inner_text() == str(order.chain_tx.confirmed_round)
    assert page.locator("#order-txid").inner_text() == order.chain_tx.txid

    # ... and the portfolio shows 5 fractions, equal on chain, with the round and txid
    page.get_by_role("link", name="Portfolio").first.click()
    row = page.locator("#holdings tr[data-asset]", has_text="Harbour Lofts")
    assert row.locator(".holding-quantity").inner_text() == "5"
    row.get_by_role("button", name="Check on chain").click()
    row.get_by_text("✔ matches").wait_for()
    assert "On chain 5" in row.locator(".chain-check").inner_text()
    orders = page.locator("#orders")
    assert orders.locator(".order-round").first.inner_text() == str(order.chain_tx.confirmed_round)
    assert orders.locator(".order-txid").first.inner_text() == order.chain_tx.txid
    assert page.locator("#cash .cash-available").inner_text() == "737.50 EUR"
    assert LedgerAccount.objects.get(user=investor, kind="investor_held").balance == 0
    page_problems.assert_clean()
