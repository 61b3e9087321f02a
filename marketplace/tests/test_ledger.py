import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction

from accounts.tests.factories import UserFactory
from compliance.models import AuditEntry
from marketplace.ledger import LedgerError, Leg, fee_for, ledger_post
from marketplace.ledger_proofs import ledger_verify
from marketplace.locks import ledger_accounts_lock
from marketplace.models import JournalEntry, LedgerAccount, Withdrawal
from marketplace.services import deposit_record, withdrawal_approve, withdrawal_reject, withdrawal_request

from .factories import usable_payout_account

pytestmark = pytest.mark.django_db
A = LedgerAccount.Kind


def _accounts(user, currency="EUR"):
    return ledger_accounts_lock(specs=[(A.INVESTOR_AVAILABLE, user, currency), (A.BANK, None, currency)])


def test_ledger_post_moves_balances_and_records_balanced_postings():
    user = UserFactory()
    with transaction.atomic():
        available, bank = _accounts(user)
        entry = ledger_post(kind="deposit", legs=[Leg(bank, -12_345), Leg(available, 12_345)])
    assert sorted(p.amount_minor for p in entry.postings.all()) == [-12_345, 12_345]
    assert LedgerAccount.objects.get(pk=available.pk).balance == 12_345
    assert LedgerAccount.objects.get(pk=bank.pk).balance == -12_345
    assert ledger_verify().ok


@pytest.mark.parametrize("amounts", [(100, -99), (0, 0), (1.5, -1.5), (True, -1)])
def test_ledger_post_refuses_unbalanced_zero_and_non_integer_amounts(amounts):
    user = UserFactory()
    with transaction.atomic():
        available, bank = _accounts(user)
        with pytest.raises(LedgerError):
            ledger_post(kind="deposit", legs=[Leg(available, amounts[0]), Leg(bank, amounts[1])])
    assert not JournalEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_ledger_post_refuses_to_run_outside_a_transaction():
    user = UserFactory()
    with transaction.atomic():
        available, bank = _accounts(user)
    with pytest.raises(LedgerError):
        ledger_post(kind="deposit", legs=[Leg(bank, -1), Leg(available, 1)])


def test_database_refuses_a_negative_investor_balance():
    user = UserFactory()
    with transaction.atomic():
        available, bank = _accounts(user)
    with pytest.raises(IntegrityError), transaction.atomic():
        ledger_post(kind="deposit", legs=[Leg(bank, 1), Leg(available, -1)])


def test_fee_is_basis_points_rounded_half_up_in_integers():
    assert fee_for(gross_minor=10_000, fee_bps=150) == 150
    assert fee_for(gross_minor=333, fee_bps=150) == 5  # 4.995 -> 5
    assert fee_for(gross_minor=100, fee_bps=0) == 0


def test_deposit_credits_available_cash_once_per_bank_reference_and_is_audited(staff):
    investor = UserFactory()
    deposit_record(investor=investor, amount_minor=50_000, currency="eur", bank_reference="BANK-1", actor=staff)
    with pytest.raises(ValidationError, match="already recorded"):
        deposit_record(investor=investor, amount_minor=50_000, currency="EUR", bank_reference="BANK-1", actor=staff)
    assert LedgerAccount.objects.get(user=investor, kind=A.INVESTOR_AVAILABLE, currency="EUR").balance == 50_000
    assert AuditEntry.objects.filter(action="cash.deposit_recorded").count() == 1
    assert ledger_verify().ok


def test_deposit_needs_staff_and_four_eyes(staff):
    investor = UserFactory()
    with pytest.raises(PermissionDenied):
        deposit_record(investor=investor, amount_minor=1, currency="EUR", bank_reference="X", actor=investor)
    with pytest.raises(PermissionDenied):
        deposit_record(investor=staff, amount_minor=1, currency="EUR", bank_reference="X", actor=staff)


@pytest.mark.parametrize("amount", [0, -5, 2.5, "100"])
def test_deposit_refuses_bad_amounts(staff, amount):
    with pytest.raises(ValidationError):
        deposit_record(investor=UserFactory(), amount_minor=amount, currency="EUR", bank_reference="R", actor=staff)
    assert not JournalEntry.objects.exists()


@pytest.mark.parametrize("currency", ["JPY", "XYZ", "", "EURO"])
def test_cash_moves_only_in_currencies_the_platform_settles(staff, currency):
    investor = UserFactory()
    with pytest.raises(ValidationError, match="We settle in"):
        deposit_record(investor=investor, amount_minor=100, currency=currency, bank_reference="R", actor=staff)
    with pytest.raises(ValidationError, match="We settle in"):
        withdrawal_request(investor=investor, amount_minor=100, currency=currency)
    assert not JournalEntry.objects.exists() and not LedgerAccount.objects.exists()


def test_withdrawal_holds_cash_then_staff_pay_it(staff, fund):
    investor = UserFactory()
    fund(investor, 10_000)
    withdrawal = withdrawal_request(
        investor=investor, amount_minor=4_000, currency="EUR", payout_account=usable_payout_account(investor)
    )
    balances = {a.kind: a.balance for a in LedgerAccount.objects.filter(user=investor)}
    assert balances == {A.INVESTOR_AVAILABLE: 6_000, A.INVESTOR_HELD: 4_000}
    withdrawal_approve(withdrawal=withdrawal, actor=staff, bank_reference="OUT-1")
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PAID
    assert LedgerAccount.objects.get(user=investor, kind=A.INVESTOR_HELD).balance == 0
    assert LedgerAccount.objects.get(kind=A.BANK, currency="EUR").balance == -6_000
    with pytest.raises(ValidationError, match="already paid"):
        withdrawal_reject(withdrawal=withdrawal, actor=staff, reason="late")
    assert ledger_verify().ok


def test_rejected_withdrawal_releases_the_cash(staff, fund):
    investor = UserFactory()
    fund(investor, 10_000)
    withdrawal = withdrawal_request(
        investor=investor, amount_minor=10_000, currency="EUR", payout_account=usable_payout_account(investor)
    )
    withdrawal_reject(withdrawal=withdrawal, actor=staff, reason="Account details do not match")
    assert LedgerAccount.objects.get(user=investor, kind=A.INVESTOR_AVAILABLE).balance == 10_000
    assert AuditEntry.objects.filter(action="cash.withdrawal_rejected").exists()


def test_withdrawal_of_more_than_available_is_refused_and_nothing_is_posted(fund):
    investor = UserFactory()
    fund(investor, 1_000)
    before = JournalEntry.objects.count()
    with pytest.raises(ValidationError, match="available"):
        withdrawal_request(
            investor=investor, amount_minor=1_001, currency="EUR", payout_account=usable_payout_account(investor)
        )
    assert JournalEntry.objects.count() == before


def test_ledger_check_passes_on_a_sound_book_and_fails_on_a_tampered_one(fund, capsys):
    investor = UserFactory()
    fund(investor, 7_000)
    call_command("ledger_check")
    assert "0 problem(s)" in capsys.readouterr().out
    LedgerAccount.objects.filter(user=investor).update(balance=7_001)
    with pytest.raises(SystemExit) as exit_info:
        call_command("ledger_check")
    assert exit_info.value.code == 1
    assert "balance 7001 != postings 7000" in capsys.readouterr().out
