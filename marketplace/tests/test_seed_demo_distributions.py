"""`manage.py seed_demo_distributions`: one paid distribution with a held payout for the
holder whose KYC lapsed, one upcoming; a second run changes nothing; the proofs hold."""

import io

import pytest
from django.core.management import call_command

from accounts.models import User
from marketplace.distribution_proofs import distribution_verify
from marketplace.ledger_proofs import ledger_verify
from marketplace.management.commands.seed_demo_distributions import GOLD_NOTE, RENT_NOTE
from marketplace.models import Distribution, DistributionPayment, JournalEntry

from .factories import LiveAssetFactory, OfferingFactory


@pytest.mark.django_db
def test_seeds_a_paid_distribution_with_a_held_payout_and_an_upcoming_one(platform_accounts):
    call_command("seed_demo", stdout=io.StringIO())
    issuer = User.objects.get(email="issuer@demo.rwa")
    OfferingFactory(asset=LiveAssetFactory(name="Harbourfront Offices, Rotterdam", issuer=issuer, currency="EUR"))
    OfferingFactory(asset=LiveAssetFactory(name="LBMA Gold Lot 4471", issuer=issuer, currency="USD"), currency="USD")
    out = io.StringIO()
    call_command("seed_demo_distributions", "--wait", "1", stdout=out)
    assert "0 problem(s)" in out.getvalue()

    rent = Distribution.objects.get(note=RENT_NOTE)
    assert rent.status == Distribution.Status.PAID
    held = rent.payments.get(status=DistributionPayment.Status.HELD)
    assert held.investor.email == "lena@demo.rwa" and "kyc_expired" in held.hold_codes
    assert rent.payments.filter(treasury=True, status=DistributionPayment.Status.PAID).count() == 1
    gold = Distribution.objects.get(note=GOLD_NOTE)
    assert gold.status == Distribution.Status.APPROVED and gold.is_fully_funded

    entries = JournalEntry.objects.count()
    call_command("seed_demo_distributions", "--wait", "1", stdout=io.StringIO())
    assert JournalEntry.objects.count() == entries
    assert Distribution.objects.count() == 2
    assert ledger_verify().ok and distribution_verify().ok
