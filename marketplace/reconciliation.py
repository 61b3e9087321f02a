"""Books versus chain. For every asset with an ASA id:
- each investor's settled Holding.quantity equals the units their custodial account holds;
- a custodial account holding units has a Holding row saying so;
- the treasury holds total_fractions − the sum of settled holdings.
Assets with settlements still in flight are reported as skipped, not as mismatches:
their Holding rows move when the on_confirmed callback runs.

The question is the marketplace's (its holdings, the assets' supply); chain/ answers
only what it knows: accounts, unfinished outbox rows, and balances read through
`chain.gateway`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db.models import Sum

from assets.models import Asset
from chain import gateway
from chain.models import ChainAccount
from chain.selectors import asset_transfers_in_flight, investor_accounts, platform_account

from .models import Holding

logger = logging.getLogger("marketplace.reconcile")


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


def reconcile() -> ReconciliationReport:
    report = ReconciliationReport()
    treasury = platform_account(ChainAccount.Role.TREASURY)
    custodial = {a.user_id: a for a in investor_accounts()}
    balances: dict[str, dict[int, int]] = {}

    def units(address: str, asa_id: int) -> int:
        if address not in balances:
            balances[address] = gateway.asset_holdings(address)
        return balances[address].get(asa_id, 0)

    for asset in Asset.objects.filter(asa_id__isnull=False).order_by("pk"):
        asa_id, label = asset.asa_id, str(asset.asset_name or asset.name)
        assert asa_id is not None, "filtered on asa_id__isnull=False"
        if asset_transfers_in_flight(asset_id=asa_id).exists():
            report.skipped.append(f"ASA {asa_id} ({label}): settlements in flight")
            continue
        report.assets_checked += 1
        holdings = {h.investor_id: h.quantity for h in Holding.objects.filter(asset=asset)}
        for user_id, quantity in holdings.items():
            account = custodial.get(user_id)
            if account is None:
                if quantity:
                    report.mismatches.append(
                        Mismatch(asa_id, label, "-", f"investor #{user_id} (no custodial account)", quantity, 0)
                    )
                continue
            actual = units(account.address, asa_id)
            if actual != quantity:
                report.mismatches.append(
                    Mismatch(asa_id, label, account.address, f"investor #{user_id}", quantity, actual)
                )
        for owner_id, account in custodial.items():
            if owner_id not in holdings:
                actual = units(account.address, asa_id)
                if actual:
                    report.mismatches.append(
                        Mismatch(asa_id, label, account.address, f"investor #{owner_id} (no holding row)", 0, actual)
                    )
        settled = Holding.objects.filter(asset=asset).aggregate(total=Sum("quantity"))["total"] or 0
        expected = asset.total_fractions - settled
        actual = units(treasury.address, asa_id)
        if actual != expected:
            report.mismatches.append(Mismatch(asa_id, label, treasury.address, "treasury", expected, actual))
    report.accounts_checked = len(balances)
    return report
