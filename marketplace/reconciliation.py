"""Books versus chain. For every asset with an ASA id:
- each investor's settled Holding.quantity equals the units their custodial account holds;
- a custodial account holding units has a Holding row saying so;
- the treasury holds total_fractions − the sum of settled holdings.
Assets with settlements still in flight are reported as skipped, not as mismatches:
their Holding rows move when the on_confirmed callback runs.

The question is the marketplace's (its holdings, the assets' supply); chain/ answers
only what it knows: accounts, unfinished outbox rows, and balances read through
`chain.gateway`.

At scale (docs/marketplace.md, "The whole-book checks at scale"): every account is read once, whatever the number of assets —
algod answers an account's balances of all its assets in one call
(`gateway.asset_holdings`) — the custodial accounts in keyset batches with their
holders' holdings, so statements grow with the batches and memory stays one batch.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Sum

from assets.models import Asset
from chain import gateway
from chain.models import ChainAccount
from chain.selectors import asset_transfers_in_flight, investor_accounts, platform_account

from .models import Holding

logger = logging.getLogger("marketplace.reconcile")

# Custodial accounts per batch: one query for their holdings and one algod read each.
ACCOUNTS_PER_BATCH = 500
# algod reads in flight at once: the wait is the node's and the network's, not ours.
READ_THREADS = 4


@dataclass(frozen=True)
class _Asset:
    pk: int
    label: str
    total_fractions: int


@dataclass(frozen=True)
class Mismatch:
    asa_id: int
    asset: str
    address: str
    who: str
    expected: int
    on_chain: int

    def __str__(self) -> str:
        return (
            f"ASA {self.asa_id} ({self.asset}): {self.who} {self.address} books {self.expected} "
            f"on chain {self.on_chain} (diff {self.on_chain - self.expected:+d})"
        )


@dataclass
class ReconciliationReport:
    assets_checked: int = 0
    accounts_checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def log(self) -> None:
        for m in self.mismatches:
            logger.error("reconciliation mismatch: %s", m)
        logger.info(
            "reconciliation: %d assets, %d accounts, %d mismatches, %d skipped",
            self.assets_checked,
            self.accounts_checked,
            len(self.mismatches),
            len(self.skipped),
        )


def reconcile(*, batch_size: int = ACCOUNTS_PER_BATCH) -> ReconciliationReport:
    """Reads each account once: the treasury, then the custodial accounts in batches of
    `batch_size` (keyset order), each batch one query for its holders' holdings and one
    algod account read per account (all its assets in one answer). Statements: a constant
    few, one per asset for the in-flight test, and two per batch; memory: one batch."""
    report = ReconciliationReport()
    treasury = platform_account(ChainAccount.Role.TREASURY)
    checked: dict[int, _Asset] = {}
    for pk, asa_id, asset_name, name, total in (
        Asset.objects.filter(asa_id__isnull=False)
        .order_by("pk")
        .values_list("pk", "asa_id", "asset_name", "name", "total_fractions")
    ):
        assert asa_id is not None, "filtered on asa_id__isnull=False"
        label = str(asset_name or name)
        if asset_transfers_in_flight(asset_id=asa_id).exists():
            report.skipped.append(f"ASA {asa_id} ({label}): settlements in flight")
            continue
        checked[asa_id] = _Asset(pk, label, total)
    report.assets_checked = len(checked)
    if not checked:
        return report
    asa_of = {a.pk: asa_id for asa_id, a in checked.items()}
    holdings = Holding.objects.filter(asset_id__in=asa_of)
    mismatches: list[Mismatch] = []

    settled = dict(holdings.values_list("asset_id").annotate(total=Sum("quantity")).order_by())
    on_chain = gateway.asset_holdings(treasury.address)
    report.accounts_checked += 1
    for asa_id, a in checked.items():
        expected, actual = a.total_fractions - settled.get(a.pk, 0), on_chain.get(asa_id, 0)
        if actual != expected:
            mismatches.append(Mismatch(asa_id, a.label, treasury.address, "treasury", expected, actual))

    for user_id, asset_id, quantity in (
        holdings.exclude(quantity=0)
        .filter(~Exists(investor_accounts().filter(user_id=OuterRef("investor_id"))))
        .order_by("asset_id", "investor_id")
        .values_list("investor_id", "asset_id", "quantity")
    ):
        asa_id = asa_of[asset_id]
        mismatches.append(
            Mismatch(asa_id, checked[asa_id].label, "-", f"investor #{user_id} (no custodial account)", quantity, 0)
        )

    with ThreadPoolExecutor(READ_THREADS) as pool:
        after = 0
        while True:
            batch = list(
                investor_accounts()
                .filter(pk__gt=after)
                .order_by("pk")
                .values_list("pk", "user_id", "address")[:batch_size]
            )
            if not batch:
                break
            after = batch[-1][0]
            books: dict[int, dict[int, int]] = defaultdict(dict)
            for user_id, asset_id, quantity in holdings.filter(
                investor_id__in=[user_id for _, user_id, _ in batch]
            ).values_list("investor_id", "asset_id", "quantity"):
                books[user_id][asa_of[asset_id]] = quantity
            for (_, user_id, address), units in zip(
                batch, pool.map(gateway.asset_holdings, [address for _, _, address in batch]), strict=True
            ):
                mismatches.extend(_account_mismatches(checked, address, user_id, books.get(user_id, {}), units))
            report.accounts_checked += len(batch)
            if len(batch) < batch_size:
                break
    mismatches.sort(key=lambda m: (m.asa_id, m.who == "treasury"))
    report.mismatches = mismatches
    return report


def _account_mismatches(
    checked: dict[int, _Asset], address: str, user_id: int, books: dict[int, int], units: dict[int, int]
) -> list[Mismatch]:
    """One custodial account against its owner's holdings, over the checked assets it has
    a holding row for or units of (not every asset: O(what it holds))."""
    found = []
    for asa_id in sorted(books.keys() | (units.keys() & checked.keys())):
        actual = units.get(asa_id, 0)
        if asa_id in books:
            if actual != books[asa_id]:
                who = f"investor #{user_id}"
                found.append(Mismatch(asa_id, checked[asa_id].label, address, who, books[asa_id], actual))
        elif actual:
            who = f"investor #{user_id} (no holding row)"
            found.append(Mismatch(asa_id, checked[asa_id].label, address, who, 0, actual))
    return found
