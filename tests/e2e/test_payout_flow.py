"""Payout accounts in a real browser on a phone-sized screen (390 × 844): an investor
adds a bank account, sees its cooling-off period, and once it is usable withdraws to it
from the portfolio. The payout accounts page does not scroll sideways; no console error
or CSP violation."""

from datetime import timedelta

import pytest

from marketplace.models import PayoutAccount, Withdrawal
from marketplace.payouts import verified_legal_name
from marketplace.services import deposit_record
from marketplace.tests.factories import StaffFactory, verified_investor

from .flows import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


def test_investor_adds_a_payout_account_and_withdraws_to_it_on_a_phone(page, page_problems):
    investor = verified_investor(email="pia@example.com", full_name="Pia Payout")
    deposit_record(investor=investor, amount_minor=50_000, currency="EUR", bank_reference="IN-1", actor=StaffFactory())
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, investor.email)

    page.goto("/market/portfolio/")
    assert page.locator("#no-payout-account").is_visible()
    # (The portfolio's own width at 390 px is issue 15's defect 4, checked by its own test.)
    page.get_by_role("link", name="Add a payout account").click()
    page.get_by_role("heading", name="Payout accounts").wait_for()
    page.get_by_label("Account holder").fill(verified_legal_name(investor))
    page.get_by_label("IBAN").fill("de89 3704 0044 0532 0130 00")
    page.get_by_role("button", name="Save account").click()
    page.get_by_text("Account saved").wait_for()
    assert page.locator(".payout-account-cooling-off").is_visible()
    assert page.locator("code.iban").inner_text() == "DE89370400440532013000"
    assert page.evaluate(NO_SIDEWAYS_SCROLL)

    # The cooling-off period passes.
    account = PayoutAccount.objects.get(investor=investor)
    PayoutAccount.objects.filter(pk=account.pk).update(usable_from=account.usable_from - timedelta(days=2))
    page.goto("/market/portfolio/")
    page.get_by_label("Amount").fill("120.50")
    page.get_by_label("Pay to").select_option(str(account.public_id))
    page.get_by_role("button", name="Request withdrawal").click()
    page.locator(".flash-success", has_text="Withdrawal requested").wait_for()
    withdrawal = Withdrawal.objects.get()
    assert withdrawal.amount_minor == 12_050 and withdrawal.payout_account == account
    page_problems.assert_clean()
