"""Races on the locked paths, with real threads on PostgreSQL: each thread has its own
connection (closed when it ends) and commits for real."""

import random
import threading
import time
from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Sum

from marketplace.ledger_proofs import ledger_verify
from marketplace.models import Deposit, Holding, LedgerAccount, Offering, PrimaryOrder, Withdrawal
from marketplace.services import (
    deposit_record,
    order_place,
    withdrawal_approve,
    withdrawal_reject,
    withdrawal_request,
)

from .factories import OfferingFactory, StaffFactory, usable_payout_account, verified_investor

pytestmark = pytest.mark.django_db(transaction=True)
A = LedgerAccount.Kind


def run_in_threads(functions, *, timeout=120):
    """Start every function at the same moment (a barrier); return their results or
    exceptions in order."""
    barrier = threading.Barrier(len(functions))
    results = [None] * len(functions)

    def runner(i, fn):
        try:
            barrier.wait(timeout=30)
            results[i] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i, fn)) for i, fn in enumerate(functions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    return results


def cash_invariants(currency="EUR"):
    """deposited − withdrawn = investors' balances + issuer proceeds + fees; nothing negative;
    every journal balances and every balance equals its postings."""
    deposited = Deposit.objects.filter(currency=currency).aggregate(s=Sum("amount_minor"))["s"] or 0
    withdrawn = Withdrawal.objects.filter(currency=currency, status="paid").aggregate(s=Sum("amount_minor"))["s"] or 0
    inside = LedgerAccount.objects.filter(currency=currency).exclude(kind=A.BANK).aggregate(s=Sum("balance"))["s"] or 0
    fees = LedgerAccount.objects.filter(currency=currency, kind=A.PLATFORM_FEES).aggregate(s=Sum("balance"))["s"] or 0
    investors_and_issuers = inside - fees
    assert deposited - withdrawn == investors_and_issuers + fees
    assert LedgerAccount.objects.exclude(kind=A.BANK).filter(balance__lt=0).count() == 0
    report = ledger_verify()
    assert report.ok, report.problems


def supply_invariants(offering):
    offering.refresh_from_db()
    live = PrimaryOrder.objects.filter(offering=offering).exclude(status="refunded")
    sold = live.aggregate(s=Sum("quantity"))["s"] or 0
    assert offering.fractions_sold == sold
    assert 0 <= offering.fractions_sold <= offering.fractions_for_sale
    held = Holding.objects.filter(asset=offering.asset).aggregate(q=Sum("quantity"), p=Sum("pending_quantity"))
    assert (held["q"] or 0) + (held["p"] or 0) == sold
    unsold = offering.asset.total_fractions - sold
    assert sold + unsold == offering.asset.total_fractions


def test_fifty_buyers_race_for_the_last_ten_fractions(platform_accounts):
    # Given an offering with 10 fractions left and 50 funded, verified buyers
    staff = StaffFactory()
    offering = OfferingFactory(fractions_for_sale=10, max_purchase=None)
    buyers = [verified_investor() for _ in range(50)]
    for i, buyer in enumerate(buyers):
        deposit_record(investor=buyer, amount_minor=100_000, currency="EUR", bank_reference=f"R{i}", actor=staff)

    # When they all press "buy 1" at the same moment
    def buy(buyer):
        return lambda: order_place(investor=buyer, offering_id=offering.pk, quantity=1, idempotency_key="k")

    results = run_in_threads([buy(b) for b in buyers])

    # Then exactly 10 are sold and everyone else is told it is sold out
    orders = [r for r in results if isinstance(r, PrimaryOrder)]
    refusals = [r for r in results if isinstance(r, ValidationError)]
    unexpected = [r for r in results if not isinstance(r, (PrimaryOrder, ValidationError))]
    assert not unexpected, unexpected
    assert len(orders) == 10 and len(refusals) == 40
    assert {e.error_list[0].code for e in refusals} == {"sold_out"}
    assert {e.messages[0] for e in refusals} == {"This offering is sold out."}
    offering.refresh_from_db()
    assert offering.fractions_sold == 10 and offering.status == Offering.Status.SOLD_OUT
    assert PrimaryOrder.objects.count() == 10
    # ... and cash is conserved: winners hold 101.50, losers keep everything
    held = LedgerAccount.objects.filter(kind=A.INVESTOR_HELD).aggregate(s=Sum("balance"))["s"]
    assert held == 10 * 10_150
    cash_invariants()
    supply_invariants(offering)


def test_a_double_click_from_two_tabs_places_one_order(platform_accounts):
    staff = StaffFactory()
    offering = OfferingFactory()
    buyer = verified_investor()
    deposit_record(investor=buyer, amount_minor=100_000, currency="EUR", bank_reference="R", actor=staff)
    results = run_in_threads(
        [lambda: order_place(investor=buyer, offering_id=offering.pk, quantity=2, idempotency_key="same-key")] * 4
    )
    assert all(isinstance(r, PrimaryOrder) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert PrimaryOrder.objects.count() == 1
    cash_invariants()


def test_concurrent_withdrawals_never_overdraw(platform_accounts):
    staff = StaffFactory()
    investor = verified_investor()
    deposit_record(investor=investor, amount_minor=10_000, currency="EUR", bank_reference="R", actor=staff)
    account = usable_payout_account(investor)
    results = run_in_threads(
        [lambda: withdrawal_request(investor=investor, amount_minor=3_000, currency="EUR", payout_account=account)] * 6
    )
    assert sum(isinstance(r, Withdrawal) for r in results) == 3
    assert all(isinstance(r, (Withdrawal, ValidationError)) for r in results), results
    cash_invariants()


def random_operations(*, offering, investors, staff, seed, steps_per_thread=12):
    """Each investor's thread deposits, buys and withdraws at random; staff decide
    withdrawals from another thread at the same time. Returns outcome counts."""
    outcomes = Counter()
    lock = threading.Lock()
    accounts = {investor.pk: usable_payout_account(investor) for investor in investors}

    def note(name):
        with lock:
            outcomes[name] += 1

    def investor_thread(index, investor):
        rnd = random.Random(seed * 1000 + index)

        def run():
            for step in range(steps_per_thread):
                op = rnd.choice(["deposit", "buy", "buy", "buy", "withdraw"])
                try:
                    if op == "deposit":
                        deposit_record(
                            investor=investor,
                            amount_minor=rnd.randint(1, 50_000),
                            currency="EUR",
                            bank_reference=f"S{seed}-{index}-{step}",
                            actor=staff,
                        )
                    elif op == "buy":
                        order_place(
                            investor=investor,
                            offering_id=offering.pk,
                            quantity=rnd.randint(1, 6),
                            idempotency_key=f"{seed}-{step}",
                        )
                    else:
                        withdrawal_request(
                            investor=investor,
                            amount_minor=rnd.randint(1, 30_000),
                            currency="EUR",
                            payout_account=accounts[investor.pk],
                        )
                    note(f"{op}:ok")
                except ValidationError as exc:
                    note(f"{op}:{exc.error_list[0].code}")

        return run

    def staff_thread():
        rnd = random.Random(seed)
        deadline = time.monotonic() + 20

        def run():
            while time.monotonic() < deadline:
                pending = list(Withdrawal.objects.filter(status="requested").order_by("pk")[:5])
                if not pending and outcomes.total() >= len(investors) * steps_per_thread:
                    return
                for w in pending:
                    try:
                        if rnd.random() < 0.7:
                            withdrawal_approve(withdrawal=w, actor=staff, bank_reference=f"OUT-{w.pk}")
                            note("approve:ok")
                        else:
                            withdrawal_reject(withdrawal=w, actor=staff, reason="random")
                            note("reject:ok")
                    except ValidationError:
                        note("decide:raced")
                time.sleep(0.01)

        return run

    run_in_threads([investor_thread(i, inv) for i, inv in enumerate(investors)] + [staff_thread()])
    return outcomes


@pytest.mark.parametrize("seed", [1, 2])
def test_randomized_deposits_purchases_and_withdrawals_keep_the_invariants(platform_accounts, seed):
    staff = StaffFactory()
    offering = OfferingFactory(
        fractions_for_sale=60, max_purchase=None, asset__total_fractions=100, asset__fractions_for_sale=60
    )
    investors = [verified_investor() for _ in range(6)]
    for i, investor in enumerate(investors):
        deposit_record(
            investor=investor,
            amount_minor=random.Random(seed + i).randint(0, 3) * 20_000 + 1,
            currency="EUR",
            bank_reference=f"INIT-{seed}-{i}",
            actor=staff,
        )
    outcomes = random_operations(offering=offering, investors=investors, staff=staff, seed=seed)
    assert outcomes["buy:ok"] > 0, outcomes
    cash_invariants()
    supply_invariants(offering)


def test_buyers_race_staff_editing_and_refunding_on_one_hot_offering(platform_accounts):
    """Every path that locks an offering at once (purchases, staff terms edits, refunds of
    failed settlements, by the same investors): the lock order in locks.py holds, so
    nothing deadlocks, nothing is oversold and the books balance."""
    from chain.models import ChainTransaction
    from marketplace.services import offering_update, order_compensate, order_settlement_failed

    staff = StaffFactory()
    offering = OfferingFactory(fractions_for_sale=200, max_purchase=None)
    buyers = [verified_investor() for _ in range(8)]
    for i, buyer in enumerate(buyers):
        deposit_record(investor=buyer, amount_minor=1_000_000, currency="EUR", bank_reference=f"R{i}", actor=staff)
    failed = []
    for i, buyer in enumerate(buyers[:4]):
        order = order_place(investor=buyer, offering_id=offering.pk, quantity=5, idempotency_key=f"first-{i}")
        ChainTransaction.objects.filter(pk=order.chain_tx_id).update(status="failed", last_error="rejected")
        order_settlement_failed(ChainTransaction.objects.get(pk=order.chain_tx_id))
        failed.append(order)

    def buy(buyer, i):
        def run():
            outcomes = []
            for n in range(8):
                try:
                    order_place(
                        investor=buyer, offering_id=offering.pk, quantity=1 + (i + n) % 6, idempotency_key=f"{i}-{n}"
                    )
                    outcomes.append("ok")
                except ValidationError as exc:
                    outcomes.append(exc.error_list[0].code)
            return outcomes

        return run

    def refund(order):
        return lambda: order_compensate(order=order, actor=staff, reason="race")

    def edit():
        def run():
            for n in range(6):
                offering_update(offering=offering, actor=staff, fields={"max_purchase": 6 if n % 2 else 50})
            return "edited"

        return run

    results = run_in_threads([buy(b, i) for i, b in enumerate(buyers)] + [refund(o) for o in failed] + [edit()])
    unexpected = [r for r in results if isinstance(r, BaseException)]
    assert not unexpected, unexpected
    codes = Counter(code for r in results if isinstance(r, list) for code in r)
    assert set(codes) <= {"ok", "offering_changed", "sold_out", "insufficient_supply"}, codes
    assert codes["ok"] > 0
    assert PrimaryOrder.objects.filter(status="refunded").count() == len(failed)
    cash_invariants()
    supply_invariants(offering)


def test_newcomers_race_for_the_last_holder_places_of_a_capped_asset(platform_accounts):
    """The exception to "the offering lock comes last": a new holder of an asset with
    max_holders takes it before counting holders, so the cap is exact under a race."""
    staff = StaffFactory()
    offering = OfferingFactory(asset__max_holders=3)
    buyers = [verified_investor() for _ in range(8)]
    for i, buyer in enumerate(buyers):
        deposit_record(investor=buyer, amount_minor=100_000, currency="EUR", bank_reference=f"R{i}", actor=staff)

    def buy(buyer):
        return lambda: order_place(investor=buyer, offering_id=offering.pk, quantity=1, idempotency_key="k")

    results = run_in_threads([buy(b) for b in buyers])
    orders = [r for r in results if isinstance(r, PrimaryOrder)]
    refusals = [r for r in results if isinstance(r, ValidationError)]
    assert len(orders) == 3 and len(refusals) == 5, results
    assert {e.error_list[0].code for e in refusals} == {"max_holders_reached"}
    cash_invariants()
    supply_invariants(offering)
