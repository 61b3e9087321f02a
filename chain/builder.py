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

Several transfers for different receivers may share one group (`build_asset_transfers`):
the funding payment of the first member pays the fees of all, each further member adds
its own top-up and opt-in only when it needs them, then its clawback transfer with its
own row's lease. At most 16 transactions (the protocol's group size).

asset_create: funding → treasury top-up (+fees), then the acfg from the treasury
(creator and reserve) naming the platform manager/freeze/clawback accounts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from algosdk import transaction as algo_txn

MIN_BALANCE = 100_000
MIN_BALANCE_PER_ASSET = 100_000
MIN_FEE = 1000


def lease_for(idempotency_key: str, generation: int) -> bytes:
    """32-byte lease derived from the outbox row: while one signed version of a row is
    alive, no other transaction from the same sender with this lease can confirm."""
    return hashlib.sha256(f"rwa-outbox|{idempotency_key}|{generation}".encode()).digest()


MAX_GROUP_SIZE = 16


@dataclass
class BuiltGroup:
    txns: list[algo_txn.Transaction]
    signers: list  # ChainAccount per transaction, same order
    member_indexes: list[int]  # per requested transfer (or the creation): its leased transaction

    @property
    def main_index(self) -> int:
        return self.member_indexes[0]

    @property
    def main(self) -> algo_txn.Transaction:
        return self.txns[self.main_index]


@dataclass(frozen=True)
class Transfer:
    """One member of a settlement group. `receiver_info` is the receiver's account as algod
    reported it, or None when the books know the receiver holds the asset already (opted
    in, minimum balance paid): no opt-in, no top-up."""

    asset_id: int
    amount: int
    sender: Any  # ChainAccount (the builder reads .address only; it imports no models)
    receiver: Any
    lease: bytes
    receiver_info: dict | None = None


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


def _finish(txns, signers, member_indexes) -> BuiltGroup:
    if len(txns) > MAX_GROUP_SIZE:
        raise ValueError(f"a group holds at most {MAX_GROUP_SIZE} transactions, not {len(txns)}")
    if len(txns) > 1:
        algo_txn.assign_group_id(txns)
    return BuiltGroup(txns=txns, signers=signers, member_indexes=member_indexes)


def _needs(transfer: Transfer) -> tuple[bool, int]:
    """(opt in?, microAlgos the receiver is short of its new minimum balance)."""
    info = transfer.receiver_info
    if info is None:
        return False, 0
    opt_in = not holds_asset(info, transfer.asset_id)
    required = required_min_balance(info, extra_holdings=1 if opt_in else 0)
    return opt_in, max(0, required - int(info.get("amount") or 0))


def transfer_size(transfer: Transfer, *, first: bool) -> int:
    """Transactions this member adds to a group (the first member carries the fee payer)."""
    opt_in, top_up = _needs(transfer)
    return (1 if first or top_up else 0) + (1 if opt_in else 0) + 1


def build_asset_transfers(
    *, sp: algo_txn.SuggestedParams, validity_rounds: int, transfers: list[Transfer], funding, clawback
) -> BuiltGroup:
    """One atomic group moving every transfer of `transfers` (distinct receivers)."""
    if len({t.receiver.address for t in transfers}) != len(transfers):
        raise ValueError("one receiver per group: a second opt-in or top-up would be counted twice")
    plan = [(t, *_needs(t)) for t in transfers]
    n = sum(transfer_size(t, first=i == 0) for i, t in enumerate(transfers))
    min_fee = max(MIN_FEE, sp.min_fee or 0)
    free = _params(sp, fee=0, validity_rounds=validity_rounds)
    txns: list[algo_txn.Transaction] = []
    signers: list = []
    members: list[int] = []
    for i, (t, opt_in, top_up) in enumerate(plan):
        if i == 0 or top_up:
            fee = min_fee * n if i == 0 else 0
            params = _params(sp, fee=fee, validity_rounds=validity_rounds)
            txns.append(algo_txn.PaymentTxn(funding.address, params, t.receiver.address, top_up))
            signers.append(funding)
        if opt_in:
            txns.append(algo_txn.AssetTransferTxn(t.receiver.address, free, t.receiver.address, 0, t.asset_id))
            signers.append(t.receiver)
        txns.append(
            algo_txn.AssetTransferTxn(
                clawback.address,
                free,
                t.receiver.address,
                t.amount,
                t.asset_id,
                revocation_target=t.sender.address,
                lease=t.lease,
            )
        )
        signers.append(clawback)
        members.append(len(txns) - 1)
    return _finish(txns, signers, members)


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
    receiver_info: dict | None,
) -> BuiltGroup:
    transfer = Transfer(asset_id, amount, sender, receiver, lease, receiver_info)
    return build_asset_transfers(
        sp=sp, validity_rounds=validity_rounds, transfers=[transfer], funding=funding, clawback=clawback
    )


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
    return _finish([pay, create], [funding, treasury], [1])
