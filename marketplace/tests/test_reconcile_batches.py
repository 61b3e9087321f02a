"""`reconcile` at scale: one algod read per account whatever the number of assets, and
statements that grow with the batches of custodial accounts, not with the holdings;
each kind of mismatch still named. The chain here is a table in memory standing in for
`gateway.asset_holdings` (test_reconciliation.py runs the same check on devnet)."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import UserFactory
from assets.tests.factories import AssetFactory
from chain import gateway
from chain.models import ChainTransaction
from chain.services import investor_account_get_or_create
from marketplace.models import Holding
from marketplace.reconciliation import reconcile

pytestmark = pytest.mark.django_db

TOTAL = 1_000


@pytest.fixture
def chain(monkeypatch, platform_accounts):
    """{address: {asa id: units}}, read through a counting stand-in for algod."""
    balances: dict[str, dict[int, int]] = {}
    reads: list[str] = []

    def asset_holdings(address: str) -> dict[int, int]:
        reads.append(address)
        return dict(balances.get(address, {}))

    monkeypatch.setattr(gateway, "asset_holdings", asset_holdings)
    return {"balances": balances, "reads": reads, "treasury": platform_accounts["treasury"].address}


def books(chain, *, investors, assets):
    """`assets` ASAs, each investor holding 1 + i units of each, books and chain agreeing."""
    made = [
        AssetFactory(total_fractions=TOTAL, fractions_for_sale=TOTAL, asa_id=9_000 + a, status="live")
        for a in range(assets)
    ]
    accounts = [investor_account_get_or_create(user=UserFactory()) for _ in range(investors)]
    for i, account in enumerate(accounts):
        for asset in made:
            Holding.objects.create(investor=account.user, asset=asset, quantity=1 + i)
            chain["balances"].setdefault(account.address, {})[asset.asa_id] = 1 + i
    held = sum(1 + i for i in range(investors))
    chain["balances"][chain["treasury"]] = {asset.asa_id: TOTAL - held for asset in made}
    return made, accounts


def test_books_that_agree_reconcile_with_one_read_per_account(chain):
    made, accounts = books(chain, investors=3, assets=4)
    report = reconcile()
    assert report.mismatches == [] and report.skipped == []
    assert (report.assets_checked, report.accounts_checked) == (4, 4)
    assert sorted(chain["reads"]) == sorted([chain["treasury"], *(a.address for a in accounts)])


def _statements(batch_size: int) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert reconcile(batch_size=batch_size).ok
    return len(ctx.captured_queries)


def test_statements_grow_with_the_batches_not_the_holdings_and_reads_with_the_accounts(chain):
    made, accounts = books(chain, investors=2, assets=3)
    one_batch = _statements(batch_size=100)
    two_per_batch = _statements(batch_size=2)  # one full batch, then an empty page
    assert two_per_batch == one_batch + 1

    more = [investor_account_get_or_create(user=UserFactory()) for _ in range(4)]
    for account in more:
        for asset in made:
            Holding.objects.create(investor=account.user, asset=asset, quantity=1)
            chain["balances"][account.address] = {**chain["balances"].get(account.address, {}), asset.asa_id: 1}
    chain["balances"][chain["treasury"]] = {asset.asa_id: TOTAL - 3 - len(more) for asset in made}
    chain["reads"].clear()
    # Three times the holdings: the same statements in one batch, two more per extra batch.
    assert _statements(batch_size=100) == one_batch
    assert _statements(batch_size=2) == one_batch + 2 * 2 + 1
    assert len(chain["reads"]) == 2 * (1 + len(accounts) + len(more))  # two runs, one read per account each


def _units_off(chain, made, accounts):
    Holding.objects.filter(investor=accounts[1].user, asset=made[0]).update(quantity=5)
    return f"ASA {made[0].asa_id} ({made[0].asset_name}): investor #{accounts[1].user_id} {accounts[1].address} books 5 on chain 2 (diff -3)"


def _no_holding_row(chain, made, accounts):
    Holding.objects.filter(investor=accounts[0].user, asset=made[1]).delete()
    return f"investor #{accounts[0].user_id} (no holding row) {accounts[0].address} books 0 on chain 1 (diff +1)"


def _no_custodial_account(chain, made, accounts):
    user = UserFactory()
    Holding.objects.create(investor=user, asset=made[0], quantity=7)
    return f"ASA {made[0].asa_id} ({made[0].asset_name}): investor #{user.pk} (no custodial account) - books 7 on chain 0 (diff -7)"


def _treasury(chain, made, accounts):
    chain["balances"][chain["treasury"]][made[1].asa_id] -= 4
    return f"ASA {made[1].asa_id} ({made[1].asset_name}): treasury {chain['treasury']} books {TOTAL - 3} on chain {TOTAL - 7} (diff -4)"


@pytest.mark.parametrize(
    "plant", [_units_off, _no_holding_row, _no_custodial_account, _treasury], ids=lambda f: f.__name__.strip("_")
)
@pytest.mark.parametrize("batch_size", [1, 500])
def test_each_mismatch_is_named_whatever_the_batch(chain, plant, batch_size):
    made, accounts = books(chain, investors=2, assets=2)
    assert reconcile(batch_size=batch_size).ok
    expected = plant(chain, made, accounts)
    found = [str(m) for m in reconcile(batch_size=batch_size).mismatches]
    assert any(expected in line for line in found), found


def test_an_asset_with_transfers_in_flight_is_skipped_and_its_accounts_still_read_once(chain):
    made, accounts = books(chain, investors=2, assets=2)
    ChainTransaction.objects.create(
        kind=ChainTransaction.Kind.ASSET_TRANSFER,
        payload={"asset_id": made[0].asa_id},
        idempotency_key=uuid.uuid4().hex,
        status=ChainTransaction.Status.SUBMITTED,
    )
    Holding.objects.filter(asset=made[0]).update(quantity=99)  # moving: not a mismatch yet
    report = reconcile()
    assert report.ok and report.assets_checked == 1
    assert report.skipped == [f"ASA {made[0].asa_id} ({made[0].asset_name}): settlements in flight"]
    assert len(chain["reads"]) == 3
