"""Income distributions: declaring, four eyes, funding, entitlement from the unit
history, largest-remainder shares, withholding, held payouts, idempotent paying, proofs."""

import datetime
import threading
import uuid
from fractions import Fraction

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.tests.factories import UserFactory
from compliance.models import KycApplication, TaxProfile
from compliance.withholding import default_rate_bps
from marketplace import distributions as dist
from marketplace.distribution_proofs import distribution_verify
from marketplace.ledger_proofs import ledger_verify
from marketplace.models import Distribution, DistributionPayment, LedgerAccount, PrimaryOrder
from marketplace.services import order_place

from .factories import StaffFactory, verified_investor
from .trading_helpers import give_units, place

K = LedgerAccount.Kind
P = DistributionPayment.Status


# allocate: pure -------------------------------------------------------------------------


def test_largest_remainder_by_hand():
    # 100.00 over 1:1:1 → 33.33 each and one cent left: ties go to the lower investor id.
    shares = dist.allocate(gross_minor=10_000, holders=[(7, False, 1), (3, False, 1), (5, False, 1)], total_units=3)
    assert {s.investor_id: s.gross_minor for s in shares} == {3: 3334, 5: 3333, 7: 3333}
    # 10.00 over 1:2 of 3 units... remainders 1/3 and 2/3: the larger remainder gets the cent.
    shares = dist.allocate(gross_minor=1_000, holders=[(1, False, 1), (2, False, 2)], total_units=3)
    assert [s.gross_minor for s in shares] == [333, 667]
    # A tie between a holder and the treasury with the same units goes to the holder.
    shares = dist.allocate(gross_minor=1, holders=[(9, True, 1), (10, False, 1)], total_units=2)
    assert {(s.investor_id, s.treasury): s.gross_minor for s in shares} == {(9, True): 0, (10, False): 1}


def test_allocate_refuses_units_that_do_not_add_up():
    with pytest.raises(ValueError):
        dist.allocate(gross_minor=100, holders=[(1, False, 2)], total_units=3)


@settings(max_examples=300, deadline=None)
@given(
    gross=st.integers(min_value=1, max_value=10**12),
    units=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=40),
)
def test_allocate_sums_to_gross_and_stays_within_one_unit_of_exact(gross, units):
    holders = [(i + 1, False, u) for i, u in enumerate(units)]
    total = sum(units)
    shares = dist.allocate(gross_minor=gross, holders=holders, total_units=total)
    assert sum(s.gross_minor for s in shares) == gross
    for s in shares:
        exact = Fraction(gross * s.units, total)
        assert exact - 1 < s.gross_minor < exact + 1
    # More units never get less.
    for a in shares:
        for b in shares:
            if a.units < b.units:
                assert a.gross_minor <= b.gross_minor


# fixtures -------------------------------------------------------------------------------


@pytest.fixture
def approver(db):
    return StaffFactory()


@pytest.fixture
def payer(db):
    return StaffFactory()


def buy(investor, offering, quantity, fund):
    fund(investor, 10_000_000)
    return order_place(investor=investor, offering_id=offering.pk, quantity=quantity, idempotency_key=uuid.uuid4().hex)


def declare(asset, actor, gross=100_000, record_at=None, **kwargs):
    today = timezone.localdate()
    fields = dict(
        asset=asset,
        actor=actor,
        kind=Distribution.Kind.RENT,
        gross_minor=gross,
        currency="EUR",
        period_start=today - datetime.timedelta(days=30),
        period_end=today,
        record_at=record_at or timezone.now(),
        payment_date=today,
    )
    fields.update(kwargs)
    return dist.distribution_declare(**fields)


def ready(distribution, approver, payer):
    """Approved by a second person and fully funded by a deposit."""
    dist.distribution_approve(distribution=distribution, actor=approver)
    return dist.distribution_fund(
        distribution=distribution,
        actor=payer,
        amount_minor=distribution.gross_minor,
        source=dist.FUND_BY_DEPOSIT,
        bank_reference="RENT-NOV",
    )


def cash(user):
    account = LedgerAccount.objects.filter(kind=K.INVESTOR_AVAILABLE, user=user, currency="EUR").first()
    return account.balance if account else 0


def proceeds(issuer):
    account = LedgerAccount.objects.filter(kind=K.ISSUER_PROCEEDS, user=issuer, currency="EUR").first()
    return account.balance if account else 0


def platform(kind):
    account = LedgerAccount.objects.filter(kind=kind, user__isnull=True, currency="EUR").first()
    return account.balance if account else 0


def proofs_hold():
    assert ledger_verify().problems == []
    assert distribution_verify().problems == []


# entitlement from the unit history --------------------------------------------------------


@pytest.mark.django_db
def test_units_at_follows_purchases_refunds_and_trades(offering, fund, staff):
    asset = offering.asset
    a, b = verified_investor(), verified_investor()
    buy(a, offering, 60, fund)
    t0 = timezone.now()
    order_b = buy(b, offering, 10, fund)
    assert dist.units_at(asset_id=asset.pk, at=t0) == {a.pk: 60}
    t1 = timezone.now()
    assert dist.units_at(asset_id=asset.pk, at=t1) == {a.pk: 60, b.pk: 10}
    # A refund after the record date changes nothing for that record date; before, it does.
    PrimaryOrder.objects.filter(pk=order_b.pk).update(status=PrimaryOrder.Status.REFUNDED, refunded_at=timezone.now())
    assert dist.units_at(asset_id=asset.pk, at=t1) == {a.pk: 60, b.pk: 10}
    assert dist.units_at(asset_id=asset.pk, at=timezone.now()) == {a.pk: 60}
    # A trade moves units from the match on, settled or not; locked sell units stay the seller's.
    give_units(a, asset, 60)  # settled (no chain in this test)
    c = verified_investor()
    fund(c, 10_000_000)
    place(a, asset, "sell", 20, 10_000)
    t2 = timezone.now()
    assert dist.units_at(asset_id=asset.pk, at=t2) == {a.pk: 60}  # resting sell: still a's
    place(c, asset, "buy", 15, 10_000)
    t3 = timezone.now()
    assert dist.units_at(asset_id=asset.pk, at=t3) == {a.pk: 45, c.pk: 15}
    assert dist.units_at(asset_id=asset.pk, at=t2) == {a.pk: 60}  # the trade after t2 changes nothing


# the whole life of a distribution -------------------------------------------------------


@pytest.mark.django_db
def test_declare_approve_fund_pay_with_withholding_treasury_and_a_held_payout(
    offering, fund, approver, payer, mailoutbox
):
    asset = offering.asset  # 1,000 fractions for sale of the asset's supply
    a, b, lapsed = verified_investor(), verified_investor(), verified_investor()
    TaxProfile.objects.create(user=b, tax_residence="DE", treaty_form_on_file=True)
    buy(a, offering, 100, fund)
    buy(b, offering, 50, fund)
    buy(lapsed, offering, 25, fund)
    KycApplication.objects.filter(user=lapsed).update(expires_at=timezone.localdate() - datetime.timedelta(days=1))
    before = {u.pk: cash(u) for u in (a, b, lapsed)}
    proceeds_before = proceeds(asset.issuer)

    d = declare(asset, asset.issuer, gross=123_457)
    with pytest.raises(ValidationError, match="waits for approval"):
        dist.distribution_pay(distribution=d, actor=payer)
    with pytest.raises(PermissionDenied):
        dist.distribution_approve(distribution=d, actor=asset.issuer)
    dist.distribution_approve(distribution=d, actor=approver)
    with pytest.raises(ValidationError, match="not fully funded"):
        dist.distribution_pay(distribution=d, actor=payer)
    dist.distribution_fund(
        distribution=d, actor=payer, amount_minor=100_000, source=dist.FUND_BY_DEPOSIT, bank_reference="R1"
    )
    with pytest.raises(ValidationError, match="still to be funded"):
        dist.distribution_fund(
            distribution=d, actor=payer, amount_minor=50_000, source=dist.FUND_BY_DEPOSIT, bank_reference="R2"
        )
    dist.distribution_fund(
        distribution=d, actor=payer, amount_minor=23_457, source=dist.FUND_BY_DEPOSIT, bank_reference="R2"
    )

    report = dist.distribution_pay(distribution=d, actor=payer)
    d.refresh_from_db()
    assert d.status == Distribution.Status.PAID
    assert (report.paid, report.held) == (3, 1)  # a, b, the treasury; lapsed held
    supply = asset.total_fractions
    shares = {(p.investor_id, p.treasury): p for p in d.payments.all()}
    assert sum(p.gross_minor for p in shares.values()) == 123_457
    pa, pb, pl = shares[(a.pk, False)], shares[(b.pk, False)], shares[(lapsed.pk, False)]
    treasury = shares[(asset.issuer_id, True)]
    assert (pa.units, pb.units, pl.units, treasury.units) == (100, 50, 25, supply - 175)
    for p in (pa, pb, pl, treasury):
        assert abs(Fraction(123_457 * p.units, supply) - p.gross_minor) < 1
    # a: GB resident by KYC, 0 % by the table; b: DE with a treaty form.
    assert pa.withheld_minor == 0 and pa.net_minor == pa.gross_minor
    assert pb.withholding_rate_bps == default_rate_bps("DE", True) == 1500
    assert pb.withheld_minor == pb.gross_minor * 1500 // 10_000
    assert pb.net_minor == pb.gross_minor - pb.withheld_minor
    assert pl.status == P.HELD and "kyc_expired" in pl.hold_codes and "renew" in pl.hold_reason
    assert cash(a) - before[a.pk] == pa.net_minor
    assert cash(b) - before[b.pk] == pb.net_minor
    assert cash(lapsed) == before[lapsed.pk]
    assert proceeds(asset.issuer) - proceeds_before == treasury.gross_minor
    assert platform(K.WITHHOLDING_TAX) == pb.withheld_minor
    assert platform(K.DISTRIBUTION_SUSPENSE) == pl.gross_minor
    assert platform(K.DISTRIBUTION_FUNDS) == 0
    proofs_hold()
    assert sorted(m.to[0] for m in mailoutbox) == []  # mails go through the worker's task
    assert dist.distribution_mails([pa.pk, pb.pk, pl.pk, treasury.pk]) == 2
    assert sorted(m.to[0] for m in mailoutbox) == sorted([a.email, b.email])
    assert "after" in next(m.body for m in mailoutbox if m.to == [b.email])  # says what was withheld

    # Compliance cannot release while the KYC is still lapsed; after renewal it can.
    officer = StaffFactory()
    with pytest.raises(ValidationError, match="still cannot be paid"):
        dist.held_payment_decide(payment=pl, actor=officer, release=True, reason="renewed?")
    KycApplication.objects.filter(user=lapsed).update(expires_at=timezone.localdate() + datetime.timedelta(days=300))
    dist.held_payment_decide(payment=pl, actor=officer, release=True, reason="KYC renewed")
    pl.refresh_from_db()
    assert pl.status == P.RELEASED and cash(lapsed) - before[lapsed.pk] == pl.net_minor
    assert platform(K.DISTRIBUTION_SUSPENSE) == 0
    with pytest.raises(ValidationError, match="Only a held payment"):
        dist.held_payment_decide(payment=pl, actor=officer, release=True, reason="again")
    proofs_hold()


@pytest.mark.django_db
def test_a_held_payout_can_be_returned_to_the_issuer(offering, fund, approver, payer):
    asset = offering.asset
    frozen = verified_investor()
    buy(frozen, offering, 10, fund)
    from compliance.models import InvestorProfile

    InvestorProfile.objects.update_or_create(user=frozen, defaults={"frozen": True})
    d = ready(declare(asset, payer, gross=50_000), approver, payer)
    dist.distribution_pay(distribution=d, actor=payer)
    held = d.payments.get(investor=frozen, treasury=False)
    assert held.status == P.HELD and held.hold_codes == "account_frozen"
    frozen.is_staff = frozen.is_superuser = True  # even with every permission
    frozen.save(update_fields=["is_staff", "is_superuser"])
    with pytest.raises(PermissionDenied, match="Four eyes"):
        dist.held_payment_decide(payment=held, actor=frozen, release=True, reason="mine")
    dist.held_payment_decide(payment=held, actor=approver, release=False, reason="account closed")
    held.refresh_from_db()
    assert held.status == P.RETURNED
    proofs_hold()


# refusals ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"gross": 0}, "gross_minor", "greater than zero"),
        ({"gross": -5}, "gross_minor", "greater than zero"),
        ({"gross": 10**19}, "gross_minor", "too large"),
        ({"gross": 1.5}, "gross_minor", "whole number"),
        ({"currency": "USD"}, "currency", "paid in EUR"),
        ({"payment_date_offset": -1}, "payment_date", "cannot be in the past"),
        ({"record_days_after_payment": 2}, "record_at", "on or before the payment date"),
        ({"note": "x" * 1001}, "note", "at most 1,000"),
        ({"note": "a\x00b"}, "note", "NUL"),
        ({"kind": "bonus"}, "kind", "Choose the kind"),
    ],
)
def test_bad_declarations_are_refused_with_a_message(offering, staff, fields, field, message):
    today = timezone.localdate()
    kwargs = {}
    if "gross" in fields:
        kwargs["gross"] = fields["gross"]
    if "currency" in fields:
        kwargs["currency"] = fields["currency"]
    if "payment_date_offset" in fields:
        kwargs["payment_date"] = today + datetime.timedelta(days=fields["payment_date_offset"])
    if "record_days_after_payment" in fields:
        kwargs["payment_date"] = today + datetime.timedelta(days=1)
        kwargs["record_at"] = timezone.now() + datetime.timedelta(days=1 + fields["record_days_after_payment"])
    for key in ("note", "kind"):
        if key in fields:
            kwargs[key] = fields[key]
    with pytest.raises(ValidationError) as exc:
        declare(offering.asset, staff, **kwargs)
    assert message in " ".join(exc.value.message_dict[field])
    assert not Distribution.objects.exists()


@pytest.mark.django_db
def test_only_live_assets_and_their_issuer_or_staff_declare(offering, staff):
    stranger = UserFactory()
    with pytest.raises(PermissionDenied):
        declare(offering.asset, stranger)
    asset = offering.asset
    asset.status = asset.Status.SUSPENDED if hasattr(asset.Status, "SUSPENDED") else asset.Status.APPROVED
    asset.save(update_fields=["status"])
    with pytest.raises(ValidationError, match="Only a live asset"):
        declare(asset, staff)


@pytest.mark.django_db
def test_approving_twice_and_cancelling_after_payment_are_refused(offering, fund, approver, payer):
    buy(verified_investor(), offering, 5, fund)
    d = declare(offering.asset, payer, gross=999)
    dist.distribution_approve(distribution=d, actor=approver)
    with pytest.raises(ValidationError, match="Only a declared distribution"):
        dist.distribution_approve(distribution=d, actor=StaffFactory())
    with pytest.raises(PermissionDenied):  # the declarer never approves, even staff
        dist.distribution_approve(distribution=declare(offering.asset, payer), actor=payer)
    dist.distribution_fund(
        distribution=d, actor=payer, amount_minor=999, source=dist.FUND_BY_DEPOSIT, bank_reference="X"
    )
    dist.distribution_pay(distribution=d, actor=payer)
    with pytest.raises(ValidationError, match="cannot be cancelled"):
        dist.distribution_cancel(distribution=d, actor=payer, reason="too late")
    again = dist.distribution_pay(distribution=d, actor=payer)
    assert again.already_done and again.paid == 0
    assert DistributionPayment.objects.filter(distribution=d).count() == 2  # holder + treasury, once
    proofs_hold()


@pytest.mark.django_db
def test_cancelling_a_funded_distribution_returns_the_money_to_the_issuer(offering, fund, approver, payer):
    asset = offering.asset
    buy(verified_investor(), offering, 5, fund)
    d = ready(declare(asset, payer, gross=5_000), approver, payer)
    before = proceeds(asset.issuer)
    with pytest.raises(ValidationError, match="reason"):
        dist.distribution_cancel(distribution=d, actor=payer, reason="  ")
    dist.distribution_cancel(distribution=d, actor=payer, reason="tenant did not pay")
    d.refresh_from_db()
    assert d.status == Distribution.Status.CANCELLED and d.funded_minor == 0
    assert proceeds(asset.issuer) - before == 5_000
    assert platform(K.DISTRIBUTION_FUNDS) == 0
    with pytest.raises(ValidationError, match="waits|cancelled"):
        dist.distribution_pay(distribution=d, actor=payer)
    proofs_hold()


@pytest.mark.django_db
def test_funding_from_the_issuers_proceeds_needs_the_money(offering, approver, payer):
    d = declare(offering.asset, payer, gross=5_000)
    with pytest.raises(ValidationError, match="issuer's proceeds are"):
        dist.distribution_fund(distribution=d, actor=payer, amount_minor=5_000, source=dist.FUND_FROM_PROCEEDS)
    with pytest.raises(PermissionDenied):
        dist.distribution_fund(
            distribution=d, actor=offering.asset.issuer, amount_minor=5_000, source=dist.FUND_BY_DEPOSIT
        )


# idempotency, crash, parallel, scale ---------------------------------------------------------


@pytest.mark.django_db
def test_a_run_that_stopped_half_way_resumes_without_paying_anyone_twice(offering, fund, approver, payer):
    holders = [verified_investor() for _ in range(7)]
    for i, h in enumerate(holders):
        buy(h, offering, i + 1, fund)
    d = ready(declare(offering.asset, payer, gross=77_777), approver, payer)
    now = timezone.now()
    dist._start(d.pk, payer, now)
    assert dist._pay_batch(d.pk, payer, now, 3) == (3, 0)  # then the worker "crashed"
    assert d.payments.filter(status=P.PENDING).count() == 5
    paid_so_far = {h.pk: cash(h) for h in holders}
    report = dist.distribution_pay(distribution=d, actor=payer, batch_size=2)
    assert report.paid == 5 and report.batches == 3
    d.refresh_from_db()
    assert d.status == Distribution.Status.PAID
    assert sum(cash(h) - paid_so_far[h.pk] for h in holders) + sum(
        p.net_minor for p in d.payments.filter(pk__in=d.payments.order_by("pk").values("pk")[:3])
    ) == sum(p.net_minor for p in d.payments.exclude(treasury=True))
    proofs_hold()


@pytest.mark.django_db(transaction=True)
def test_paying_twice_in_parallel_pays_each_holder_once(platform_accounts, fund, approver, payer):
    from .factories import OfferingFactory

    offering = OfferingFactory()
    holders = [verified_investor() for _ in range(6)]
    for i, h in enumerate(holders):
        buy(h, offering, 2 + i, fund)
    d = ready(declare(offering.asset, payer, gross=60_001), approver, payer)
    before = {h.pk: cash(h) for h in holders}
    errors = []

    def run():
        try:
            dist.distribution_pay(distribution=d, actor=payer, batch_size=2)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    d.refresh_from_db()
    assert d.status == Distribution.Status.PAID
    assert sum(cash(h) - before[h.pk] for h in holders) == sum(p.net_minor for p in d.payments.filter(treasury=False))
    assert d.payments.count() == len(holders) + 1
    proofs_hold()


@pytest.mark.django_db
def test_statements_per_batch_do_not_grow_with_the_batch(offering, fund, approver, payer):
    def statements_for(n_holders):
        from .factories import OfferingFactory

        o = OfferingFactory()
        for _ in range(n_holders):
            buy(verified_investor(), o, 1, fund)
        d = ready(declare(o.asset, payer, gross=10_000 + n_holders), approver, payer)
        now = timezone.now()
        dist._start(d.pk, payer, now)
        with CaptureQueriesContext(connection) as ctx:
            dist._pay_batch(d.pk, payer, now, 1000)
        return len(ctx.captured_queries)

    statements_for(2)  # the platform's accounts exist from here on
    small, large = statements_for(3), statements_for(30)
    assert small == large, (small, large)
    proofs_hold()


# the proof catches what it must ------------------------------------------------------------


@pytest.mark.django_db
def test_distribution_check_catches_a_wrong_entitlement_and_exits_non_zero(offering, fund, approver, payer):
    a, b = verified_investor(), verified_investor()
    buy(a, offering, 10, fund)
    buy(b, offering, 30, fund)
    d = ready(declare(offering.asset, payer, gross=40_000), approver, payer)
    dist.distribution_pay(distribution=d, actor=payer)
    call_command("distribution_check")  # clean
    pa = d.payments.get(investor=a, treasury=False)
    pb = d.payments.get(investor=b, treasury=False)
    DistributionPayment.objects.filter(pk=pa.pk).update(units=pa.units + 1)
    problems = distribution_verify().problems
    assert any("recomputed" in p for p in problems)
    DistributionPayment.objects.filter(pk=pa.pk).update(units=pa.units)
    DistributionPayment.objects.filter(pk=pb.pk).update(net_minor=pb.net_minor + 1, gross_minor=pb.gross_minor + 1)
    problems = distribution_verify().problems
    assert any("!= gross" in p for p in problems)
    with pytest.raises(SystemExit) as exc:
        call_command("distribution_check")
    assert exc.value.code == 1


# reinvestment ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reinvestment_buys_what_the_net_amount_pays_for_and_leaves_the_rest_as_cash(offering, fund, approver, payer):
    from marketplace.models import ReinvestmentInstruction

    asset = offering.asset  # 100.00 EUR a fraction, 1.5 % fee
    a, b, c = verified_investor(), verified_investor(), verified_investor()
    for h, q in ((a, 100), (b, 100), (c, 1)):
        buy(h, offering, q, fund)
    ReinvestmentInstruction.objects.create(investor=a, asset=asset, target="primary")
    ReinvestmentInstruction.objects.create(investor=c, asset=asset, target="primary")
    d = ready(declare(asset, payer, gross=asset.total_fractions * 1_000), approver, payer)  # 10.00 a fraction
    dist.distribution_pay(distribution=d, actor=payer)
    pa = d.payments.get(investor=a, treasury=False)
    pc = d.payments.get(investor=c, treasury=False)
    cash_a = cash(a)
    orders_a = PrimaryOrder.objects.filter(investor=a).count()
    assert dist.reinvest_payments([p.pk for p in d.payments.all()]) == 2
    pa.refresh_from_db()
    pc.refresh_from_db()
    # a's net (100 fractions × 10.00 = 1,000.00 EUR; GB: nothing withheld) buys 9 fractions at 101.50 each.
    assert pa.net_minor == 100_000
    order = PrimaryOrder.objects.filter(investor=a).latest("pk")
    assert order.quantity == 9 and order.total_minor == 9 * 10_150
    assert cash(a) == cash_a - order.total_minor
    assert pa.reinvestment == "Reinvested: bought 9 fractions in the offering."
    # c's 10.00 EUR buys no whole fraction: it stays as cash, and the share says so.
    assert "does not buy a whole fraction" in pc.reinvestment
    # Idempotent: a second run changes nothing.
    dist.reinvest_payments([pa.pk, pc.pk])
    assert PrimaryOrder.objects.filter(investor=a).count() == orders_a + 1
    # b asked for nothing.
    assert d.payments.get(investor=b, treasury=False).reinvestment == ""
    proofs_hold()
