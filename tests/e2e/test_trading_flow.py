"""The secondary market in a real browser, settled on devnet by a real Celery worker: an
investor who bought in the primary offering offers 4 fractions on the asset's trade page;
another investor sees the ask in the book, buys it, and follows the trade to "confirmed
in round N" with its txid; both portfolios change, and the books equal the chain."""

import re

import pytest

from marketplace.models import Offering, PrimaryOrder, Trade
from marketplace.reconciliation import reconcile
from marketplace.services import deposit_record, order_place
from marketplace.tests.chain_helpers import mint_live_asset, wait_until
from marketplace.tests.factories import StaffFactory, verified_investor

from .flows import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _trade_form(page, *, side, quantity, price):
    form = page.locator("#trade-form")
    form.locator(f"input[name=side][value={side}]").check()
    form.locator("input[name=quantity]").fill(quantity)
    form.locator("input[name=limit_price]").fill(price)
    return form


def test_two_investors_trade_on_the_trade_page_and_it_confirms_on_devnet(
    page, page_problems, chain_platform, celery_worker_process, settings
):
    settings.MARKETPLACE_MAKER_FEE_BPS = 10
    settings.MARKETPLACE_TAKER_FEE_BPS = 25
    # Given a live asset at 100.00 EUR, a seller who bought 10 fractions (settled on chain) and a funded buyer
    asset = mint_live_asset(
        name="Quay Warehouse", total_fractions=100, fractions_for_sale=60, price_per_fraction_minor=10_000
    )
    staff = StaffFactory()
    seller = verified_investor(email="sam@example.com", full_name="Sam Seller")
    buyer = verified_investor(email="bea@example.com", full_name="Bea Buyer")
    deposit_record(investor=seller, amount_minor=200_000, currency="EUR", bank_reference="S-1", actor=staff)
    deposit_record(investor=buyer, amount_minor=100_000, currency="EUR", bank_reference="B-1", actor=staff)
    bought = order_place(
        investor=seller, offering_id=Offering.objects.get(asset=asset).pk, quantity=10, idempotency_key="p"
    )

    def settled():
        return PrimaryOrder.objects.get(pk=bought.pk).status == "settled"

    wait_until(settled, 60, message="the seller's purchase to settle")

    # When the seller offers 4 at 105.00 from the asset page's trade link
    sign_in(page, seller.email)
    page.goto(f"/assets/{asset.public_id}/")
    page.locator("#trade-link").click()
    page.get_by_role("heading", name="Trade Quay Warehouse").wait_for()
    assert page.locator("#units-available").inner_text() == "10"
    _trade_form(page, side="sell", quantity="4", price="105.00")
    page.locator("#quote-verdict[data-allowed='yes']").wait_for()
    assert page.locator("#quote-units").inner_text().startswith("4")
    page.get_by_role("button", name="Place order").click()
    page.locator("#trade-result", has_text="4 rest on the book at 105.00 EUR").wait_for()
    page.locator("#open-orders tr[data-order]").first.wait_for()
    page.locator("#units-available", has_text="6").wait_for()
    page.get_by_role("button", name="Sign out").click()

    # ... and the buyer sees the ask in the book, types a bid, reads the quote, and buys
    sign_in(page, buyer.email)
    page.goto(f"/market/assets/{asset.public_id}/trade/")
    ask = page.locator("#asks tr.level[data-price='10500']")
    assert ask.locator(".level-quantity").inner_text() == "4"
    _trade_form(page, side="buy", quantity="4", price="105.00")
    # 420.00 + the taker fee 0.25 % rounded up: 1.05
    page.locator("#quote-total", has_text="421.05 EUR").wait_for()
    page.locator("#quote-verdict[data-allowed='yes']").wait_for()
    page.get_by_role("button", name="Place order").click()
    page.locator("#trade-result[data-status='filled']").wait_for()
    page.locator("#asks", has_text="No asks.").wait_for()  # the book refreshed itself
    page.locator("#last-price", has_text="105.00 EUR").wait_for()

    # Then the trade's page follows settlement to confirmed in round N, with the txid
    page.locator("#my-trades a").first.click()
    page.wait_for_url(re.compile(r"/market/trades/"))
    page.locator("#trade-status[data-status='confirmed']").wait_for(timeout=60_000)
    trade = Trade.objects.select_related("chain_tx").get()
    assert trade.status == "confirmed" and trade.quantity == 4 and trade.price_minor == 10_500
    assert page.locator("#confirmed-round").inner_text() == str(trade.chain_tx.confirmed_round)
    assert page.locator("#trade-txid").inner_text() == trade.chain_tx.txid
    assert page.locator("#trade-cost").inner_text() == "421.05 EUR"

    # ... the buyer's portfolio holds 4, settled, the cash paid
    page.goto("/market/portfolio/")
    row = page.locator("#holdings tr[data-asset]", has_text="Quay Warehouse")
    assert row.locator(".holding-quantity").inner_text() == "4"
    assert row.locator(".holding-available").inner_text() == "4"
    assert page.locator("#cash .cash-available").inner_text() == "578.95 EUR"
    assert page.locator("#trades .trade-round").first.inner_text() == str(trade.chain_tx.confirmed_round)
    page.get_by_role("button", name="Sign out").click()

    # ... and the seller's holds 6, nothing locked, the proceeds (420.00 less the 0.10 % maker fee) available
    sign_in(page, seller.email)
    page.goto("/market/portfolio/")
    row = page.locator("#holdings tr[data-asset]", has_text="Quay Warehouse")
    assert row.locator(".holding-quantity").inner_text() == "6"
    assert row.locator(".holding-locked").inner_text() == "0"
    assert row.locator(".holding-available").inner_text() == "6"
    seller_cash = 200_000 - bought.total_minor + 42_000 - 42
    assert page.locator("#cash .cash-available").inner_text() == f"{seller_cash // 100:,}.{seller_cash % 100:02d} EUR"
    report = reconcile()
    assert report.ok and report.assets_checked == 1, (report.mismatches, report.skipped)
    page_problems.assert_clean()
