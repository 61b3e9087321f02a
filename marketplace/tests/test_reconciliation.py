"""`manage.py reconcile`: the books (holdings, the treasury's remainder) against the
chain, on the session devnet."""

import datetime
import hashlib
import io
import uuid

import pytest
from django.core.management import call_command
from django.db import transaction

from accounts.tests.factories import UserFactory
from assets.models import Asset
from chain.services import investor_account_get_or_create, outbox_request
from chain.worker import outbox_process
from marketplace.models import Holding

from .chain_helpers import transfer_processed

pytestmark = pytest.mark.django_db


@pytest.fixture
def minted_asset(chain_platform):
    """A confirmed ASA of 1,000 units held by the treasury. Returns its asset id."""
    with transaction.atomic():
        row = outbox_request(
            kind="asset_create",
            idempotency_key=uuid.uuid4().hex,
            payload={
                "asset_name": "Harbour Building",
                "unit_name": "HRB",
                "total": 1_000,
                "decimals": 0,
                "default_frozen": True,
                "url": "https://rwa.example/assets/1/metadata.json#arc3",
                "metadata_hash": hashlib.sha256(b"{}").hexdigest(),
            },
        )
    outbox_process(chain_tx_id=row.pk)
    row.refresh_from_db()
    assert row.status == "confirmed", row.last_error
    return row.asset_id


@pytest.fixture
def investor_account(db):
    return investor_account_get_or_create(user=UserFactory())


def test_reconcile_reports_zero_mismatches_when_books_match_and_names_the_mismatch_otherwise(
    chain_platform, minted_asset, investor_account
):
    asset = Asset.objects.create(
        issuer=UserFactory(),
        name="Harbour Building",
        category="real_estate",
        description="Offices.",
        location="Rotterdam, NL",
        valuation_minor=1_000_000,
        valuation_date=datetime.date(2026, 1, 1),
        total_fractions=1_000,
        unit_name="HRB",
        asset_name="Harbour Building",
        price_per_fraction_minor=100,
        fractions_for_sale=800,
        status="live",
        asa_id=minted_asset,
    )
    assert (
        transfer_processed(
            asset_id=minted_asset,
            sender=chain_platform["treasury"].address,
            receiver=investor_account.address,
            amount=40,
        ).status
        == "confirmed"
    )
    holding = Holding.objects.create(investor=investor_account.user, asset=asset, quantity=40)

    out = io.StringIO()
    call_command("reconcile", stdout=out)
    assert "0 mismatch(es)" in out.getvalue()

    holding.quantity = 41
    holding.save()
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("reconcile", stdout=out)
    assert exit_info.value.code == 1
    text = out.getvalue()
    assert f"ASA {minted_asset}" in text and investor_account.address in text and "books 41 on chain 40" in text
    assert "treasury" in text  # 1000 - 41 expected, 960 on chain
