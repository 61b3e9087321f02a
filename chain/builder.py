"""Settlement builder: the one place that turns a business request into the atomic group
of DESIGN.md. Pure: it reads nothing from the network itself; the caller passes the
suggested params and the account state it fetched.

asset_transfer ("move N units of asset A from X to Y"), in one group, all or nothing:
  0. funding → Y payment: tops Y up to its new minimum balance (0 when not needed) and
     pays the whole group's fees (fee pooling), so no other account ever pays a fee
  1. Y → Y 0-unit transfer of A (opt-in), signed by Y's custodial key, only if Y does
     not hold A yet
  2. clawback transfer of N units of A from X to Y, signed by the transfer agent and
     carrying the row's lease (lx)

asset_create: funding → treasury top-up (+fees), then the acfg from the treasury
(creator and reserve) naming the platform manager/freeze/clawback accounts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from algosdk import transaction as algo_txn

MIN_BALANCE = 100_000
MIN_BALANCE_PER_ASSET = 100_000
MIN_FEE = 1000


def lease_for(idempotency_key: str, generation: int) -> bytes:
    """32-byte lease derived from the outbox row: while one signed version of a row is
    alive, no other transaction from the same sender with this lease can confirm."""
    return hashlib.sha256(f"rwa-outbox|{idempotency_key}|{generation}".encode()).digest()


@dataclass
class BuiltGroup:
    txns: list[algo_txn.Transaction]
    signers: list  # ChainAccount per transaction, same order
    main_index: int

    @property
    def main(self) -> algo_txn.Transaction:
        return self.txns[self.main_index]


def required_min_balance(info: dict, *, extra_holdings: int = 0) -> int:
    holdings = len(info.get("assets", []) or [])
    computed = MIN_BALANCE + MIN_BALANCE_PER_ASSET * holdings
    return max(int(info.get("min-balance") or 0), computed) + MIN_BALANCE_PER_ASSET * extra_holdings


def holds_asset(info: dict, asset_id: int) -> bool:
    return any(h.get("asset-id") == asset_id for h in info.get("assets", []) or [])


def _params(sp: algo_txn.SuggestedParams, *, fee: int, validity_rounds: int) -> algo_txn.SuggestedParams:
    return algo_txn.SuggestedParams(
        fee, sp.first, sp.first + validity_rounds, sp.gh, sp.gen, flat_fee=True, min_fee=sp.min_fee
    )


def _finish(txns, signers, main_index) -> BuiltGroup:
    if len(txns) > 1:
        algo_txn.assign_group_id(txns)
    return BuiltGroup(txns=txns, signers=signers, main_index=main_index)


def build_asset_transfer(
    *,
    sp: algo_txn.SuggestedParams,
    validity_rounds: int,
    lease: bytes,
    asset_id: int,
    amount: int,
    sender,
    receiver,
    funding,
    clawback,
    receiver_info: dict,
) -> BuiltGroup:
    opt_in = not holds_asset(receiver_info, asset_id)
    required = required_min_balance(receiver_info, extra_holdings=1 if opt_in else 0)
    top_up = max(0, required - int(receiver_info.get("amount") or 0))
    n = 2 + (1 if opt_in else 0)
    min_fee = max(MIN_FEE, sp.min_fee or 0)

    txns: list[algo_txn.Transaction] = []
    signers: list = []
    txns.append(
        algo_txn.PaymentTxn(
            funding.address, _params(sp, fee=min_fee * n, validity_rounds=validity_rounds), receiver.address, top_up
        )
    )
    signers.append(funding)
    free = _params(sp, fee=0, validity_rounds=validity_rounds)
    if opt_in:
        txns.append(algo_txn.AssetTransferTxn(receiver.address, free, receiver.address, 0, asset_id))
        signers.append(receiver)
    txns.append(
        algo_txn.AssetTransferTxn(
            clawback.address, free, receiver.address, amount, asset_id, revocation_target=sender.address, lease=lease
        )
    )
    signers.append(clawback)
    return _finish(txns, signers, len(txns) - 1)


def build_asset_create(
    *,
    sp: algo_txn.SuggestedParams,
    validity_rounds: int,
    lease: bytes,
    payload: dict,
    treasury,
    manager,
    freeze,
    clawback,
    funding,
    treasury_info: dict,
) -> BuiltGroup:
    required = required_min_balance(treasury_info, extra_holdings=1)
    top_up = max(0, required - int(treasury_info.get("amount") or 0))
    min_fee = max(MIN_FEE, sp.min_fee or 0)
    metadata_hash = bytes.fromhex(payload["metadata_hash"]) if payload.get("metadata_hash") else None
    pay = algo_txn.PaymentTxn(
        funding.address, _params(sp, fee=min_fee * 2, validity_rounds=validity_rounds), treasury.address, top_up
    )
    create = algo_txn.AssetCreateTxn(
        treasury.address,
        _params(sp, fee=0, validity_rounds=validity_rounds),
        total=int(payload["total"]),
        decimals=int(payload.get("decimals", 0)),
        default_frozen=bool(payload.get("default_frozen", True)),
        manager=manager.address,
        reserve=treasury.address,
        freeze=freeze.address,
        clawback=clawback.address,
        unit_name=payload["unit_name"],
        asset_name=payload["asset_name"],
        url=payload.get("url", ""),
        metadata_hash=metadata_hash,
        lease=lease,
    )
    return _finish([pay, create], [funding, treasury], 1)
