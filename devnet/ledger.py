"""Ledger state and the rules for payments and Algorand Standard Assets.

No HTTP here. A submission goes through two stages:

* ``prepare_group`` (no lock, no state): decode, well-formedness, group id, pooled
  fees, ed25519 signatures. This is the CPU-heavy part and runs concurrently.
* ``Ledger.submit`` (under the ledger lock): evaluate the group in order on an
  overlay of the state at round ``last_round + 1``; if every transaction passes, the
  journal callback persists the group and only then is the overlay merged. Any error
  leaves the state untouched, so a group is applied completely or not at all.

Error texts reuse go-algorand's wording so code matching substrings works on both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from devnet import codec
from devnet.codec import encode_address as addr_str

MIN_FEE = 1000
MIN_BALANCE = 100_000
ASSET_MIN_BALANCE = 100_000
MAX_GROUP_SIZE = 16
MAX_TXN_LIFE = 1000
MAX_NOTE_BYTES = 1024
MAX_ASSET_NAME_BYTES = 32
MAX_UNIT_NAME_BYTES = 8
MAX_URL_BYTES = 96
MAX_DECIMALS = 19
SUPPORTED_TYPES = ("pay", "axfer", "acfg", "afrz")
HEADER_FIELDS = {"type", "snd", "fee", "fv", "lv", "gen", "gh", "grp", "lx", "note", "rekey"}
TYPE_FIELDS = {
    "pay": {"rcv", "amt", "close"},
    "axfer": {"xaid", "aamt", "arcv", "asnd", "aclose"},
    "afrz": {"faid", "fadd", "afrz"},
    "acfg": {"caid", "apar"},
}
ZERO_ADDRESS = bytes(32)


class TxnRejected(Exception):
    """A submission the ledger refuses; ``str(exc)`` is the algod-style message."""


def unsupported_type_message(txn_type: str) -> str:
    return f"devnet: transaction type {txn_type} is not supported; use AlgoKit LocalNet or TestNet"


# --- stateless stage ---------------------------------------------------------------


@dataclass(slots=True)
class PreparedTxn:
    stxn: dict
    txn: dict
    txid: str
    sender: bytes
    signer: bytes  # the key that signed: sgnr, or the sender itself


def _wellformed(txn: dict, txid: str) -> None:
    txn_type = txn.get("type", "")
    if txn_type not in SUPPORTED_TYPES:
        if not txn_type:
            raise TxnRejected(f"transaction {txid} invalid : unknown tx type")
        raise TxnRejected(unsupported_type_message(txn_type))
    allowed = HEADER_FIELDS | TYPE_FIELDS[txn_type]
    for key in txn:
        if key not in allowed and txn[key]:
            raise TxnRejected(f"transaction {txid} invalid : transaction of type {txn_type} has non-zero field {key}")
    if not txn.get("snd"):
        raise TxnRejected(f"transaction {txid} invalid : transaction cannot have zero sender")
    fv, lv = txn.get("fv", 0), txn.get("lv", 0)
    if lv < fv:
        raise TxnRejected(f"transaction {txid} invalid : transaction invalid range ({fv}--{lv})")
    if lv - fv > MAX_TXN_LIFE:
        raise TxnRejected(f"transaction {txid} invalid : transaction window size excessive")
    note = txn.get("note", b"")
    if len(note) > MAX_NOTE_BYTES:
        raise TxnRejected(f"transaction {txid} invalid : transaction note too big: {len(note)} > {MAX_NOTE_BYTES}")
    if txn_type == "pay":
        if txn.get("close") and txn["close"] == txn["snd"]:
            raise TxnRejected(
                f"transaction {txid} invalid : transaction cannot close account to its sender {addr_str(txn['snd'])}"
            )
    elif txn_type == "axfer":
        if txn.get("asnd") and txn.get("aclose"):
            raise TxnRejected(f"transaction {txid} invalid : cannot close asset by clawback")
    elif txn_type == "acfg":
        apar = txn.get("apar") or {}
        for key, limit, label in (
            ("an", MAX_ASSET_NAME_BYTES, "name"),
            ("un", MAX_UNIT_NAME_BYTES, "unit name"),
            ("au", MAX_URL_BYTES, "url"),
        ):
            size = len(apar.get(key, "").encode())
            if size > limit:
                raise TxnRejected(f"transaction {txid} invalid : transaction asset {label} too big: {size} > {limit}")
        if apar.get("dc", 0) > MAX_DECIMALS:
            raise TxnRejected(
                f"transaction {txid} invalid : transaction asset decimals is too high (max is {MAX_DECIMALS})"
            )


def _check_group(txns: list[dict]) -> None:
    n = len(txns)
    if n == 1:
        if txns[0].get("grp"):
            expected = codec.group_id(txns)
            raise TxnRejected(
                f"incomplete group: {codec.b64(expected)} != "
                f"{codec.b64(txns[0]['grp'])} (a grouped transaction was "
                "submitted alone)"
            )
        return
    first: bytes = txns[0].get("grp") or b""  # an empty Group is refused at [0] below
    for i, txn in enumerate(txns):
        grp = txn.get("grp")
        if not grp:
            raise TxnRejected(
                f"transactionGroup: incomplete group: [{i}] had zero Group but was submitted in a group of {n}"
            )
        if grp != first:
            raise TxnRejected(f"inconsistent group values: {codec.b64(grp)} != {codec.b64(first)}")
    expected = codec.group_id(txns)
    if expected != first:
        raise TxnRejected(f"incomplete group: {codec.b64(expected)} != {codec.b64(first)}")


def _check_signature_kind(stxn: dict, txid: str) -> None:
    kinds = [k for k in ("sig", "msig", "lsig") if stxn.get(k)]
    if not kinds:
        raise TxnRejected(f"transaction {txid} invalid : signedtxn has no sig")
    if len(kinds) > 1:
        raise TxnRejected(f"transaction {txid} invalid : signedtxn should only have one of Sig or Msig or LogicSig")
    if kinds[0] != "sig":
        label = "multisig" if kinds[0] == "msig" else "logic signature"
        raise TxnRejected(f"devnet: {label} transactions are not supported; use AlgoKit LocalNet or TestNet")


def prepare_group(stxns: list[dict], *, verify: bool = True) -> list[PreparedTxn]:
    """Stateless checks of a decoded submission, in algod's order. Raises TxnRejected."""
    if not stxns:
        raise TxnRejected("empty txgroup")
    if len(stxns) > MAX_GROUP_SIZE:
        raise TxnRejected(f"max group size is {MAX_GROUP_SIZE}")
    prepared: list[PreparedTxn] = []
    messages: list[bytes] = []
    for stxn in stxns:
        txn = stxn["txn"]
        msg = b"TX" + codec.canonical_bytes(txn)
        txid = codec.txid_str(codec.checksum(msg))
        _wellformed(txn, txid)
        _check_signature_kind(stxn, txid)
        sender = txn["snd"]
        signer = stxn.get("sgnr") or sender
        if "sgnr" in stxn and stxn["sgnr"] == sender:
            raise TxnRejected(f"transaction {txid} invalid : AuthAddr must be different from Sender")
        prepared.append(PreparedTxn(stxn, txn, txid, sender, signer))
        messages.append(msg)
    txns = [p.txn for p in prepared]
    _check_group(txns)
    fees = sum(t.get("fee", 0) for t in txns)
    if fees < MIN_FEE * len(txns):
        raise TxnRejected(f"txgroup had {fees} in fees, which is less than the minimum {len(txns)} * {MIN_FEE}")
    if verify:
        for p, msg in zip(prepared, messages, strict=True):
            try:
                crypto_sign_open(p.stxn["sig"] + msg, p.signer)
            except BadSignatureError:
                raise TxnRejected("At least one signature didn't pass verification") from None
    return prepared


# --- state -------------------------------------------------------------------------


@dataclass(slots=True)
class Account:
    amount: int = 0
    auth: bytes | None = None
    # asset id -> (amount, frozen); tuples so a shallow dict copy isolates overlays
    holdings: dict[int, tuple[int, bool]] = field(default_factory=dict)
    created: set[int] = field(default_factory=set)

    def copy(self) -> Account:
        return Account(self.amount, self.auth, dict(self.holdings), set(self.created))

    def is_empty(self) -> bool:
        return not (self.amount or self.auth or self.holdings or self.created)

    def min_balance(self) -> int:
        return MIN_BALANCE + ASSET_MIN_BALANCE * len(self.holdings)


@dataclass(frozen=True, slots=True)
class Asset:
    index: int
    creator: bytes
    total: int
    decimals: int = 0
    default_frozen: bool = False
    unit_name: str = ""
    name: str = ""
    url: str = ""
    metadata_hash: bytes = b""
    manager: bytes = b""
    reserve: bytes = b""
    freeze: bytes = b""
    clawback: bytes = b""


@dataclass(slots=True)
class Confirmed:
    round: int
    stxn: dict
    apply: dict  # asset-index / closing-amount / asset-closing-amount


@dataclass
class GenesisState:
    genesis_id: str
    genesis_hash: bytes
    fee_sink: bytes
    allocations: dict[bytes, int]
    first_round: int = 1
    txn_counter: int = 1000  # asset ids are counter + 1, so they start above 1000


class _Overlay:
    """Copy-on-write view of the ledger for evaluating one group."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self.accounts: dict[bytes, Account] = {}
        self.assets: dict[int, Asset | None] = {}
        self.txids: set[str] = set()
        self.leases: dict[tuple[bytes, bytes], int] = {}
        self.counter = ledger.txn_counter
        self.touched: dict[bytes, None] = {}  # insertion-ordered set

    def account(self, addr: bytes) -> Account:
        acct = self.accounts.get(addr)
        if acct is None:
            base = self.ledger.accounts.get(addr)
            acct = base.copy() if base is not None else Account()
            self.accounts[addr] = acct
        self.touched[addr] = None
        return acct

    def asset(self, aid: int) -> Asset | None:
        if aid in self.assets:
            return self.assets[aid]
        return self.ledger.assets.get(aid)

    def move(self, src: bytes, dst: bytes, amount: int) -> None:
        sender = self.account(src)
        if sender.amount < amount:
            raise TxnRejected(
                f"overspend (account {addr_str(src)}, data {{MicroAlgos:"
                f"{sender.amount} TotalAssets:{len(sender.holdings)}}}, "
                f"tried to spend {{{amount}}})"
            )
        sender.amount -= amount
        self.account(dst).amount += amount


class Ledger:
    def __init__(self, genesis: GenesisState):
        self.genesis = genesis
        self.lock = threading.Lock()
        self.new_round = threading.Condition(self.lock)
        self.accounts: dict[bytes, Account] = {addr: Account(amount) for addr, amount in genesis.allocations.items()}
        self.assets: dict[int, Asset] = {}
        self.confirmed: dict[str, Confirmed] = {}
        self.leases: dict[tuple[bytes, bytes], int] = {}
        self.last_round = genesis.first_round
        self.txn_counter = genesis.txn_counter
        self.last_round_time = time.monotonic()

    # -- writes --------------------------------------------------------------------

    def submit(
        self,
        group: list[PreparedTxn],
        journal: Callable[[int], None] | None = None,
        *,
        expected_round: int | None = None,
    ) -> int:
        """Evaluate and commit a prepared group as the next round; returns that round.

        ``journal(round)`` runs after evaluation succeeded and before the state changes;
        if it raises, nothing is applied.
        """
        with self.lock:
            rnd = self.last_round + 1
            if expected_round is not None and expected_round != rnd:
                raise RuntimeError(f"journal out of order: expected round {rnd}, record says {expected_round}")
            overlay = _Overlay(self)
            applied = [self._eval_txn(overlay, p, rnd) for p in group]
            if journal is not None:
                journal(rnd)
            self._commit(overlay, group, applied, rnd)
            return rnd

    def advance(self, rounds: int, journal: Callable[[int], None] | None = None) -> int:
        """Close ``rounds`` empty blocks (devnet admin route); returns the new last round."""
        with self.lock:
            target = self.last_round + rounds
            if journal is not None:
                journal(target)
            self.last_round = target
            self.last_round_time = time.monotonic()
            self.new_round.notify_all()
            return target

    def _commit(self, overlay: _Overlay, group, applied, rnd: int) -> None:
        for addr, acct in overlay.accounts.items():
            if acct.is_empty():
                self.accounts.pop(addr, None)
            else:
                self.accounts[addr] = acct
        for aid, asset in overlay.assets.items():
            if asset is None:
                self.assets.pop(aid, None)
            else:
                self.assets[aid] = asset
        self.leases.update(overlay.leases)
        for p, apply_data in zip(group, applied, strict=True):
            self.confirmed[p.txid] = Confirmed(rnd, p.stxn, apply_data)
        self.txn_counter = overlay.counter
        self.last_round = rnd
        self.last_round_time = time.monotonic()
        if rnd % 1000 == 0:
            self.leases = {k: lv for k, lv in self.leases.items() if lv >= rnd}
        self.new_round.notify_all()

    # -- evaluation ----------------------------------------------------------------

    def _eval_txn(self, ov: _Overlay, p: PreparedTxn, rnd: int) -> dict:
        txn, txid = p.txn, p.txid
        try:
            self._alive(txn, rnd)
            if p.txid in self.confirmed or p.txid in ov.txids:
                raise TxnRejected(f"transaction already in ledger: {txid}")
            lease = txn.get("lx")
            if lease:
                key = (p.sender, lease)
                held = ov.leases.get(key, self.leases.get(key))
                if held is not None and held >= rnd:
                    raise TxnRejected(
                        f"transaction {txid} using an overlapping lease (sender, lease):"
                        f"({addr_str(p.sender)}, {codec.b64(lease)})"
                    )
                ov.leases[key] = txn["lv"]
            ov.txids.add(txid)

            sender = ov.account(p.sender)
            authorizer = sender.auth or p.sender
            if p.signer != authorizer:
                raise TxnRejected(
                    f"should have been authorized by {addr_str(authorizer)} "
                    f"but was actually authorized by {addr_str(p.signer)}"
                )
            ov.move(p.sender, self.genesis.fee_sink, txn.get("fee", 0))
            if "rekey" in txn:
                sender = ov.account(p.sender)
                sender.auth = None if txn["rekey"] == p.sender else txn["rekey"]

            kind = txn["type"]
            if kind == "pay":
                applied = self._pay(ov, txn)
            elif kind == "axfer":
                applied = self._asset_transfer(ov, txn)
            elif kind == "acfg":
                applied = self._asset_config(ov, txn)
            else:
                applied = self._asset_freeze(ov, txn)
            ov.counter += 1
            self._check_min_balances(ov)
            return applied
        except TxnRejected as exc:
            raise TxnRejected(f"TransactionPool.Remember: transaction {txid}: {exc}") from None

    def _alive(self, txn: dict, rnd: int) -> None:
        fv, lv = txn.get("fv", 0), txn.get("lv", 0)
        if not fv <= rnd <= lv:
            raise TxnRejected(f"txn dead: round {rnd} outside of {fv}--{lv}")
        gen = txn.get("gen", "")
        if gen and gen != self.genesis.genesis_id:
            raise TxnRejected(
                f"genesis id mismatch: tx.GenesisID <{gen}> does not match expected <{self.genesis.genesis_id}>"
            )
        gh = txn.get("gh")
        if not gh:
            raise TxnRejected("genesis hash missing: required tx.GenesisHash is missing")
        if gh != self.genesis.genesis_hash:
            raise TxnRejected(
                f"genesis hash mismatch: tx.GenesisHash <{codec.b64(gh)}> does "
                f"not match expected <{codec.b64(self.genesis.genesis_hash)}>"
            )

    def _check_min_balances(self, ov: _Overlay) -> None:
        for addr in ov.touched:
            if addr == self.genesis.fee_sink:
                continue
            acct = ov.accounts[addr]
            if acct.is_empty():
                continue
            minimum = acct.min_balance()
            if acct.amount < minimum:
                raise TxnRejected(
                    f"account {addr_str(addr)} balance {acct.amount} below min {minimum} ({len(acct.holdings)} assets)"
                )

    def _pay(self, ov: _Overlay, txn: dict) -> dict:
        snd = txn["snd"]
        ov.move(snd, txn.get("rcv", ZERO_ADDRESS), txn.get("amt", 0))
        close_to = txn.get("close")
        if not close_to:
            return {}
        acct = ov.account(snd)
        if acct.holdings:
            raise TxnRejected(f"cannot close: {len(acct.holdings)} outstanding assets")
        if acct.created:
            raise TxnRejected(f"cannot close: {len(acct.created)} outstanding created assets")
        remainder = acct.amount
        ov.move(snd, close_to, remainder)
        ov.accounts[snd] = Account()
        return {"closing-amount": remainder}

    # ASA rules follow go-algorand ledger/apply/asset.go.

    def _params(self, ov: _Overlay, aid: int) -> Asset:
        asset = ov.asset(aid)
        if asset is None:
            raise TxnRejected(f"asset {aid} does not exist or has been deleted")
        return asset

    @staticmethod
    def _take_out(ov: _Overlay, addr: bytes, aid: int, amount: int, bypass_freeze: bool):
        if amount == 0:
            return
        acct = ov.account(addr)
        holding = acct.holdings.get(aid)
        if holding is None:
            raise TxnRejected(f"asset {aid} missing from {addr_str(addr)}")
        have, frozen = holding
        if frozen and not bypass_freeze:
            raise TxnRejected(f"asset {aid} frozen in {addr_str(addr)}")
        if have < amount:
            raise TxnRejected(f"underflow on subtracting {amount} from sender amount {have}")
        acct.holdings[aid] = (have - amount, frozen)

    @staticmethod
    def _put_in(ov: _Overlay, addr: bytes, aid: int, amount: int, bypass_freeze: bool):
        if amount == 0:
            return
        acct = ov.account(addr)
        holding = acct.holdings.get(aid)
        if holding is None:
            raise TxnRejected(f"receiver error: must optin, asset {aid} missing from {addr_str(addr)}")
        have, frozen = holding
        if frozen and not bypass_freeze:
            raise TxnRejected("asset frozen in recipient")
        acct.holdings[aid] = (have + amount, frozen)

    def _asset_transfer(self, ov: _Overlay, txn: dict) -> dict:
        snd, aid = txn["snd"], txn.get("xaid", 0)
        amount = txn.get("aamt", 0)
        receiver = txn.get("arcv", ZERO_ADDRESS)
        clawback_from = txn.get("asnd")
        source, bypass_freeze = snd, False
        if clawback_from:
            params = self._params(ov, aid)
            if not params.clawback or params.clawback != snd:
                raise TxnRejected(
                    f"clawback not allowed: sender {addr_str(snd)}, clawback "
                    f"{addr_str(params.clawback or ZERO_ADDRESS)}"
                )
            source, bypass_freeze = clawback_from, True
        elif amount == 0 and receiver == snd:
            params = self._params(ov, aid)
            acct = ov.account(snd)
            if aid not in acct.holdings:
                acct.holdings[aid] = (0, params.default_frozen)

        self._take_out(ov, source, aid, amount, bypass_freeze)
        self._put_in(ov, receiver, aid, amount, bypass_freeze)

        close_to = txn.get("aclose")
        if not close_to:
            return {}
        acct = ov.account(snd)
        if aid in acct.created:
            raise TxnRejected("cannot close asset ID in allocating account")
        holding = acct.holdings.get(aid)
        if holding is None:
            raise TxnRejected(f"asset {aid} not present in account {addr_str(snd)}")
        # A frozen holding may still be closed out to the creator.
        asset = ov.asset(aid)
        to_creator = asset is not None and asset.creator == close_to
        remaining = holding[0]
        self._take_out(ov, snd, aid, remaining, to_creator)
        self._put_in(ov, close_to, aid, remaining, to_creator)
        del ov.account(snd).holdings[aid]
        return {"asset-closing-amount": remaining}

    def _asset_config(self, ov: _Overlay, txn: dict) -> dict:
        snd, aid = txn["snd"], txn.get("caid", 0)
        apar = txn.get("apar") or {}
        if aid == 0:
            new_id = ov.counter + 1
            asset = Asset(
                index=new_id,
                creator=snd,
                total=apar.get("t", 0),
                decimals=apar.get("dc", 0),
                default_frozen=apar.get("df", False),
                unit_name=apar.get("un", ""),
                name=apar.get("an", ""),
                url=apar.get("au", ""),
                metadata_hash=apar.get("am", b""),
                manager=apar.get("m", b""),
                reserve=apar.get("r", b""),
                freeze=apar.get("f", b""),
                clawback=apar.get("c", b""),
            )
            ov.assets[new_id] = asset
            creator = ov.account(snd)
            creator.created.add(new_id)
            creator.holdings[new_id] = (asset.total, False)
            return {"asset-index": new_id}

        params = self._params(ov, aid)
        if not params.manager or params.manager != snd:
            raise TxnRejected(
                f"this transaction should be issued by the manager. It is issued "
                f"by {addr_str(snd)}, manager key "
                f"{addr_str(params.manager or ZERO_ADDRESS)}"
            )
        if not any(apar.values()):
            creator = ov.account(params.creator)
            held = creator.holdings.get(aid, (0, False))[0]
            if held != params.total:
                raise TxnRejected(f"cannot destroy asset: creator is holding only {held}/{params.total}")
            creator.holdings.pop(aid, None)
            creator.created.discard(aid)
            ov.assets[aid] = None
            return {}
        # A cleared role can never be set again; only non-empty roles are updated.
        ov.assets[aid] = replace(
            params,
            manager=apar.get("m", b"") if params.manager else b"",
            reserve=apar.get("r", b"") if params.reserve else b"",
            freeze=apar.get("f", b"") if params.freeze else b"",
            clawback=apar.get("c", b"") if params.clawback else b"",
        )
        return {}

    def _asset_freeze(self, ov: _Overlay, txn: dict) -> dict:
        snd, aid = txn["snd"], txn.get("faid", 0)
        params = self._params(ov, aid)
        if not params.freeze or params.freeze != snd:
            raise TxnRejected(
                f"freeze not allowed: sender {addr_str(snd)}, freeze {addr_str(params.freeze or ZERO_ADDRESS)}"
            )
        target = txn.get("fadd", ZERO_ADDRESS)
        acct = ov.account(target)
        holding = acct.holdings.get(aid)
        if holding is None:
            raise TxnRejected(f"asset not found in account: asset {aid} missing from {addr_str(target)}")
        acct.holdings[aid] = (holding[0], bool(txn.get("afrz", False)))
        return {}

    # -- reads (JSON shapes of algod v2) ---------------------------------------------

    def status(self) -> dict:
        with self.lock:
            return self._status_locked()

    def _status_locked(self) -> dict:
        return {
            "last-round": self.last_round,
            "last-version": CONSENSUS_VERSION,
            "next-version": CONSENSUS_VERSION,
            "next-version-round": self.last_round + 1,
            "next-version-supported": True,
            "time-since-last-round": int((time.monotonic() - self.last_round_time) * 1e9),
            "catchup-time": 0,
            "stopped-at-unsupported-round": False,
        }

    def wait_for_round_after(self, rnd: int, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        with self.new_round:
            while self.last_round <= rnd:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.new_round.wait(remaining)
            return self._status_locked()

    def suggested_params(self) -> dict:
        with self.lock:
            last = self.last_round
        return {
            "consensus-version": CONSENSUS_VERSION,
            "fee": 0,
            "genesis-hash": codec.b64(self.genesis.genesis_hash),
            "genesis-id": self.genesis.genesis_id,
            "last-round": last,
            "min-fee": MIN_FEE,
        }

    def account_info(self, addr: bytes) -> dict:
        with self.lock:
            acct = self.accounts.get(addr) or Account()
            holdings = sorted(acct.holdings.items())
            created = [self.assets[aid] for aid in sorted(acct.created)]
            rnd = self.last_round
        info = {
            "address": addr_str(addr),
            "amount": acct.amount,
            "amount-without-pending-rewards": acct.amount,
            "min-balance": acct.min_balance(),
            "pending-rewards": 0,
            "reward-base": 0,
            "rewards": 0,
            "round": rnd,
            "status": "Offline",
            "total-apps-opted-in": 0,
            "total-assets-opted-in": len(holdings),
            "total-created-apps": 0,
            "total-created-assets": len(created),
            "total-box-bytes": 0,
            "total-boxes": 0,
            "apps-total-schema": {"num-byte-slice": 0, "num-uint": 0},
            "assets": [{"amount": amount, "asset-id": aid, "is-frozen": frozen} for aid, (amount, frozen) in holdings],
            "created-assets": [{"index": a.index, "params": asset_params_json(a)} for a in created],
        }
        if acct.auth:
            info["auth-addr"] = addr_str(acct.auth)
        return info

    def account_asset_info(self, addr: bytes, aid: int) -> dict | None:
        with self.lock:
            acct = self.accounts.get(addr) or Account()
            holding = acct.holdings.get(aid)
            asset = self.assets.get(aid) if aid in acct.created else None
            rnd = self.last_round
        if holding is None and asset is None:
            return None
        info: dict = {"round": rnd}
        if holding is not None:
            info["asset-holding"] = {"amount": holding[0], "asset-id": aid, "is-frozen": holding[1]}
        if asset is not None:
            info["created-asset"] = asset_params_json(asset)
        return info

    def asset_info(self, aid: int) -> dict | None:
        with self.lock:
            asset = self.assets.get(aid)
        if asset is None:
            return None
        return {"index": aid, "params": asset_params_json(asset)}

    def pending_info(self, txid: str) -> dict | None:
        with self.lock:
            confirmed = self.confirmed.get(txid)
        if confirmed is None:
            return None
        info = {
            "confirmed-round": confirmed.round,
            "pool-error": "",
            "txn": codec.signed_txn_json(confirmed.stxn),
        }
        txn_type = confirmed.stxn["txn"].get("type")
        if txn_type == "pay":
            info["closing-amount"] = confirmed.apply.get("closing-amount", 0)
        if txn_type == "axfer":
            info["asset-closing-amount"] = confirmed.apply.get("asset-closing-amount", 0)
        if "asset-index" in confirmed.apply:
            info["asset-index"] = confirmed.apply["asset-index"]
        return info

    # -- invariants (tests and property checks) --------------------------------------

    def totals(self) -> tuple[int, dict[int, int]]:
        """Total microAlgos over all accounts, and each live asset's units held."""
        with self.lock:
            algos = sum(a.amount for a in self.accounts.values())
            units: dict[int, int] = {}
            for acct in self.accounts.values():
                for aid, (amount, _) in acct.holdings.items():
                    units[aid] = units.get(aid, 0) + amount
            return algos, units


CONSENSUS_VERSION = "devnet-ledger-v1"


def _printable(text: str) -> bool:
    return bool(text) and text.isprintable()


def asset_params_json(asset: Asset) -> dict:
    params: dict = {
        "creator": addr_str(asset.creator),
        "decimals": asset.decimals,
        "default-frozen": asset.default_frozen,
        "total": asset.total,
    }
    for key, value in (("name", asset.name), ("unit-name", asset.unit_name), ("url", asset.url)):
        if value:
            params[f"{key}-b64"] = codec.b64(value.encode())
            if _printable(value):
                params[key] = value
    if asset.metadata_hash:
        params["metadata-hash"] = codec.b64(asset.metadata_hash)
    for key, address in (
        ("manager", asset.manager),
        ("reserve", asset.reserve),
        ("freeze", asset.freeze),
        ("clawback", asset.clawback),
    ):
        if address:
            params[key] = addr_str(address)
    return params
