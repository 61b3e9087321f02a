"""Issue 15, "Checks": the whole money journey of a new investor in real browsers, with
nobody typing an amount for them. A KYC-verified investor without cash (on a phone,
390 × 844) reads the platform's bank details and their payment reference on "Add
funds"; a back-office operator uploads the bank's camt.053 statement carrying that
reference; the deposit is booked from the statement line. The investor buys fractions of
a live offering (settled on devnet by a real Celery worker), saves a payout account,
withdraws to it once the cooling-off period is over; the operator exports the SEPA
payout file and marks it sent; the withdrawal is paid. The books prove it: the ledger
balances and the investor's cash is deposit − purchase − withdrawal to the cent.

No console error, no page error and no Content-Security-Policy violation on any page of
either browser (page_problems, and the phone page's securitypolicyviolation listener)."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.roles import ADMIN
from accounts.tests.factories import UserFactory
from marketplace.ledger_proofs import ledger_verify
from marketplace.models import (
    BankStatement,
    BankStatementLine,
    Deposit,
    LedgerAccount,
    PayoutAccount,
    PayoutBatch,
    PrimaryOrder,
    Withdrawal,
)
from marketplace.tests.chain_helpers import mint_live_asset
from marketplace.tests.factories import verified_investor

from .flows import sign_in
from .test_mobile_and_console import phone_page  # noqa: F401  (the 390 × 844 page of the phone tests, reused)

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"
DEPOSIT = "2000.00"  # what the investor's bank sends; the only amount the bank statement states
ENTRY_REFERENCE = "BANK-E2E-0001"  # the bank's reference of the credit (AcctSvcrRef)
PAYOUT_IBAN = "DE89 3704 0044 0532 0130 00"


def camt053_with_one_credit(*, account_iban: str, amount: str, remittance: str, remitter: str) -> bytes:
    """A camt.053.001.02 statement of the platform's account with one booked credit."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>MSG-E2E-1</MsgId><CreDtTm>2026-05-04T18:00:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>STMT-E2E-1</Id>
      <CreDtTm>2026-05-04T18:00:00</CreDtTm>
      <Acct><Id><IBAN>{account_iban}</IBAN></Id><Ccy>EUR</Ccy></Acct>
      <Ntry>
        <Amt Ccy="EUR">{amount}</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><Dt>2026-05-04</Dt></BookgDt>
        <ValDt><Dt>2026-05-04</Dt></ValDt>
        <AcctSvcrRef>{ENTRY_REFERENCE}</AcctSvcrRef>
        <NtryDtls><TxDtls>
          <AmtDtls><TxAmt><Amt Ccy="EUR">{amount}</Amt></TxAmt></AmtDtls>
          <RltdPties>
            <Dbtr><Nm>{remitter}</Nm></Dbtr>
            <DbtrAcct><Id><IBAN>{PAYOUT_IBAN.replace(" ", "")}</IBAN></Id></DbtrAcct>
          </RltdPties>
          <RmtInf><Ustrd>{remittance}</Ustrd></RmtInf>
        </TxDtls></NtryDtls>
      </Ntry>
    </Stmt>
  </BkToCstmrStmt>
</Document>
""".encode()


def _phone_page_is_clean(page, what: str) -> None:
    """The phone page fits 390 px and its securitypolicyviolation listener caught nothing."""
    page.wait_for_load_state("load")
    assert page.evaluate(NO_SIDEWAYS_SCROLL), f"{what} scrolls sideways on a phone"
    assert page.evaluate("window.__problems || []") == [], what


def _flash(page):
    return page.locator("ul.messagelist li.success")


def test_new_investor_funds_by_statement_import_buys_and_withdraws_to_a_saved_account(
    phone_page,  # noqa: F811
    page,
    page_problems,
    chain_platform,
    celery_worker_process,
):
    investor_page, office = phone_page, page
    asset = mint_live_asset(
        name="Quayside Warehouse",
        total_fractions=1_000,
        fractions_for_sale=800,
        price_per_fraction_minor=12_500,  # 125.00 EUR, platform fee 1 %
        max_purchase=50,
    )
    investor = verified_investor(email="nina.new@example.com", full_name="Nina Newcomer")
    # A back-office operator: staff with the administrator role (operations permissions:
    # import statements, pay withdrawals), not a superuser.
    operator = UserFactory(email="olga.ops@example.com", full_name="Olga Ops", roles=[ADMIN], is_staff=True)
    assert operator.has_perm("marketplace.import_bankstatement") and operator.has_perm("marketplace.pay_withdrawals")
    assert not operator.is_superuser

    # 1. The investor, with no cash yet, opens "Add funds" and reads where to pay and with which reference.
    sign_in(investor_page, investor.email)
    investor_page.goto("/market/portfolio/")
    assert "No cash yet" in investor_page.locator("#cash").inner_text()
    investor_page.goto("/market/dashboard/")
    investor_page.locator("#add-funds").click()
    investor_page.get_by_role("heading", name="Add funds").wait_for()
    _phone_page_is_clean(investor_page, "Add funds")
    printed_reference = investor_page.locator("#payment-reference-value").inner_text()
    eur = investor_page.locator(".deposit-instruction[data-currency='EUR']")
    platform_iban = eur.locator("code.iban + button.copy-button").get_attribute("data-copy")
    assert platform_iban and eur.locator("code.iban").inner_text().replace(" ", "") == platform_iban
    assert re.fullmatch(r"RF\d\d( [0-9A-Z]{4}){3}", printed_reference), printed_reference

    # 2. Their bank's credit arrives on the platform's account; an operator imports the camt.053
    #    statement in the back office through the upload form.
    statement = camt053_with_one_credit(
        account_iban=platform_iban,
        amount=DEPOSIT,
        remittance=f"Deposit {printed_reference}",  # as the investor typed it in their bank: printed, with spaces
        remitter=investor.full_name,
    )
    sign_in(office, operator.email)
    office.goto("/backoffice/marketplace/bankstatement/")
    office.get_by_role("link", name=re.compile(r"^Add bank statement")).click()
    office.get_by_role("heading", name="Import a bank statement").wait_for()
    office.get_by_label("Statement file").set_input_files(
        {"name": "camt053-2026-05-04.xml", "mimeType": "application/xml", "buffer": statement}
    )
    office.get_by_role("button", name="Import statement").click()
    _flash(office).wait_for()
    assert "1 booked as deposits, 0 to review, 0 skipped" in _flash(office).inner_text()
    assert office.locator(".field-lines_total .readonly").inner_text() == "1"
    assert office.locator(".field-lines_matched .readonly").inner_text() == "1"
    assert office.locator(".field-lines_review .readonly").inner_text() == "0"

    # ... and the investor's portfolio shows the cash, from the bank's entry
    investor_page.goto("/market/portfolio/")
    assert investor_page.locator("#cash .cash-available").inner_text() == "2,000.00 EUR"
    deposit_row = investor_page.locator("#movements tr.cash-event[data-kind='deposit']")
    assert ENTRY_REFERENCE in deposit_row.inner_text()

    # 3. The investor buys 3 fractions (first purchase of the asset: the review box) and the
    #    order settles on devnet.
    investor_page.goto(f"/assets/{asset.public_id}/")
    investor_page.locator("#buy-link", has_text="Buy fractions").click()
    investor_page.get_by_role("heading", name="Buy fractions of Quayside Warehouse").wait_for()
    assert investor_page.locator("#cash-available").inner_text() == "2,000.00 EUR"
    investor_page.get_by_label("Number of fractions").fill("3")
    investor_page.locator("#quote-total").filter(has_text="378.75 EUR").wait_for()  # 375.00 + 1 % fee
    _phone_page_is_clean(investor_page, "the offering")
    investor_page.get_by_label("I have reviewed this order").check()
    investor_page.get_by_role("button", name="Buy fractions").click()
    investor_page.wait_for_url(re.compile(r"/market/orders/"))
    investor_page.locator("#order-status[data-status='settled']").wait_for(timeout=60_000)
    _phone_page_is_clean(investor_page, "the order page")
    order = PrimaryOrder.objects.select_related("chain_tx").get(investor=investor)
    assert order.status == "settled" and order.quantity == 3 and order.total_minor == 37_875

    # 4. The investor saves a payout account; it is in its cooling-off period ...
    investor_page.goto("/market/portfolio/")
    assert investor_page.locator("#cash .cash-available").inner_text() == "1,621.25 EUR"
    assert investor_page.locator("#no-payout-account").is_visible()
    investor_page.get_by_role("link", name="Add a payout account").click()
    investor_page.get_by_role("heading", name="Payout accounts").wait_for()
    verified_name = investor_page.locator("#add-payout-account p.muted strong").inner_text()
    investor_page.get_by_label("Account holder").fill(verified_name)
    investor_page.get_by_label("IBAN").fill(PAYOUT_IBAN)
    investor_page.get_by_role("button", name="Save account").click()
    investor_page.get_by_text("Account saved").wait_for()
    assert investor_page.locator(".payout-account-cooling-off").is_visible()
    assert investor_page.locator(".payout-account").get_attribute("data-usable") == "no"
    _phone_page_is_clean(investor_page, "Payout accounts")
    investor_page.goto("/market/portfolio/")
    assert investor_page.locator("#no-payout-account").is_visible()  # not usable yet

    # ... which passes. Test setup standing in for the clock: PAYOUT_ACCOUNT_COOLING_OFF_HOURS is
    # whole hours, and travelling the live server's clock a day ahead would also end the
    # 30-minute sessions. So the account is dated back by exactly the cooling-off period:
    # usable_from becomes its creation time, as if the period had elapsed.
    account = PayoutAccount.objects.get(investor=investor)
    assert account.status == PayoutAccount.Status.ACTIVE and account.usable_from > timezone.now()
    cooling_off = timedelta(hours=settings.PAYOUT_ACCOUNT_COOLING_OFF_HOURS)
    PayoutAccount.objects.filter(pk=account.pk).update(
        usable_from=account.usable_from - cooling_off, created_at=account.created_at - cooling_off
    )
    investor_page.goto("/market/payout-accounts/")
    assert investor_page.locator(".payout-account").get_attribute("data-usable") == "yes"

    # ... and withdraws 500.00 EUR to it.
    investor_page.goto("/market/portfolio/")
    investor_page.get_by_label("Amount").fill("500.00")
    investor_page.get_by_label("Pay to").select_option(str(account.public_id))
    investor_page.get_by_role("button", name="Request withdrawal").click()
    investor_page.locator(".flash-success", has_text="Withdrawal requested").wait_for()
    assert investor_page.locator("#cash .cash-available").inner_text() == "1,121.25 EUR"
    assert investor_page.locator("#cash .cash-held").inner_text() == "500.00 EUR"
    withdrawal = Withdrawal.objects.get(investor=investor)
    assert withdrawal.status == "requested" and withdrawal.payout_account == account

    # 5. The operator exports the SEPA payout file and, once the bank has it, marks the batch sent.
    office.goto("/backoffice/marketplace/payoutbatch/")
    office.locator("#payout-export-link").click()
    queue = office.locator("#payout-queue tbody tr")
    assert queue.count() == 1
    assert "500.00 EUR" in queue.inner_text() and account.iban in queue.inner_text()
    assert queue.locator("input[name='withdrawal']").is_checked()
    with office.expect_download() as download_info:
        office.get_by_role("button", name="Export and download the file").click()
    pain001 = download_info.value.path().read_text()
    assert "pain.001.001.03" in pain001 and f"<IBAN>{account.iban}</IBAN>" in pain001
    assert '<InstdAmt Ccy="EUR">500.00</InstdAmt>' in pain001
    batch = PayoutBatch.objects.get()
    assert batch.status == PayoutBatch.Status.EXPORTED and batch.total_minor == 50_000
    office.goto("/backoffice/marketplace/payoutbatch/")
    office.get_by_role("link", name=batch.message_id).click()
    office.get_by_role("link", name="Mark sent or cancel").click()
    office.get_by_role("button", name="Mark sent: the bank accepted the file").click()
    _flash(office).filter(has_text="Batch marked sent").wait_for()

    # ... and the investor sees the withdrawal paid.
    investor_page.goto("/market/portfolio/")
    withdrawals = investor_page.locator("article", has=investor_page.get_by_text("Request withdrawal"))
    assert "Paid" in withdrawals.locator("table tbody tr").first.inner_text()
    assert investor_page.locator("#cash .cash-available").inner_text() == "1,121.25 EUR"
    assert investor_page.locator("#cash .cash-held").inner_text() == "0.00 EUR"

    # 6. The books: the ledger proofs hold; cash = deposit − purchase − withdrawal, to the cent;
    #    the one deposit was booked from the statement line, not typed in.
    report = ledger_verify()
    assert report.ok, report.problems
    deposit = Deposit.objects.get()
    line = BankStatementLine.objects.get()
    assert line.status == BankStatementLine.Status.MATCHED and line.deposit == deposit
    assert (deposit.investor, deposit.amount_minor, deposit.bank_reference) == (investor, 200_000, ENTRY_REFERENCE)
    assert deposit.recorded_by == operator and BankStatement.objects.get().imported_by == operator
    withdrawal.refresh_from_db()
    assert withdrawal.status == "paid" and withdrawal.batch == batch
    available = LedgerAccount.objects.get(user=investor, kind="investor_available", currency="EUR").balance
    assert available == deposit.amount_minor - order.total_minor - withdrawal.amount_minor == 112_125
    assert LedgerAccount.objects.get(user=investor, kind="investor_held", currency="EUR").balance == 0

    page_problems.assert_clean()
    assert page_problems.console_errors == []
