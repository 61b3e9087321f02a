"""Platform role accounts: create them (idempotent) and fund them.

On devnet the dispenser in DEVNET_DATA_DIR/genesis.json pays; its key is the devnet's
own test material and is used here only, never stored. On any other network the
operator funds the printed addresses and `chain_bootstrap` checks the balances.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from algosdk import encoding, mnemonic
from algosdk import transaction as algo_txn
from algosdk.atomic_transaction_composer import AccountTransactionSigner, sign_transaction_with_signer
from django.conf import settings

from . import gateway
from .models import ChainAccount
from .services import platform_accounts_ensure

ALGO = 1_000_000
# What each role should hold. Funding pays every minimum balance and fee, so the role
# accounts that only sign need their own minimum balance and nothing more.
TARGET_BALANCES: dict[str, int] = {
    ChainAccount.Role.FUNDING: 1_000 * ALGO,
    ChainAccount.Role.TREASURY: 1 * ALGO,
    ChainAccount.Role.MANAGER: ALGO // 5,
    ChainAccount.Role.FREEZE: ALGO // 5,
    ChainAccount.Role.CLAWBACK: ALGO // 5,
}
DEVNET_FUNDING_BALANCE = 100_000 * ALGO


@dataclass
class AccountState:
    account: ChainAccount
    created: bool
    balance: int
    target: int
    funded: int = 0

    @property
    def ok(self) -> bool:
        return self.balance >= self.target


def devnet_genesis(genesis_id: str) -> dict | None:
    """The devnet genesis document when algod is the devnet whose data dir we know."""
    if not settings.DEVNET_DATA_DIR or not genesis_id.startswith(gateway.DEVNET_GENESIS_PREFIX):
        return None
    path = Path(settings.DEVNET_DATA_DIR) / "genesis.json"
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    return doc if doc.get("genesis_id") == genesis_id else None


def _pay_from_dispenser(genesis: dict, address: str, amount: int) -> None:
    sender = genesis["dispenser"]["address"]
    sp = gateway.suggested_params(max_age=0)
    sp.fee = max(1000, sp.min_fee or 0)  # flat fee: the dispenser pays its own
    txn = algo_txn.PaymentTxn(sender, sp, address, amount)
    signer = AccountTransactionSigner(mnemonic.to_private_key(genesis["dispenser"]["mnemonic"]))
    signed = sign_transaction_with_signer(txn, signer)
    txid = gateway.submit(base64.b64decode(encoding.msgpack_encode(signed)))
    if not gateway.wait_for_confirmation(txid, rounds=4):
        raise gateway.AlgodRetryable(f"funding payment {txid} not confirmed")


def chain_bootstrap(*, fund: bool = True) -> tuple[str, list[AccountState]]:
    """Ensure the role accounts exist; on devnet top them up. Returns (genesis id, states)."""
    ensured = platform_accounts_ensure()
    params = gateway.suggested_params(max_age=0)
    genesis = devnet_genesis(params.gen) if fund else None
    states = []
    for account, created in ensured:
        target = TARGET_BALANCES[account.role]
        if genesis and account.role == ChainAccount.Role.FUNDING:
            target = DEVNET_FUNDING_BALANCE
        balance = int(gateway.account_info(account.address).get("amount", 0))
        state = AccountState(account=account, created=created, balance=balance, target=target)
        if genesis and not state.ok:
            _pay_from_dispenser(genesis, account.address, target - balance)
            state.funded = target - balance
            state.balance = int(gateway.account_info(account.address).get("amount", 0))
        states.append(state)
    return params.gen, states
