"""Fixtures for the devnet conformance suite: a real devnet subprocess driven over HTTP
with the unchanged algosdk client."""

from __future__ import annotations

import base64
import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from algosdk import account, encoding, transaction  # noqa: E402
from algosdk.atomic_transaction_composer import (  # noqa: E402
    AccountTransactionSigner,
    sign_transaction_with_signer,
)
from algosdk.error import AlgodHTTPError  # noqa: E402
from nacl.signing import SigningKey  # noqa: E402

from devnet.testing import DevnetProcess, fund  # noqa: E402


@dataclass
class Account:
    sk: str
    address: str


def sign(txn: transaction.Transaction, sk: str) -> transaction.SignedTransaction:
    return sign_transaction_with_signer(txn, AccountTransactionSigner(sk))


def sign_raw(txn: dict, sk: str, *, sgnr: bytes | None = None) -> bytes:
    """Sign an arbitrary txn map (for shapes algosdk will not build) -> wire bytes."""
    msg = b"TX" + base64.b64decode(encoding.msgpack_encode(txn))
    sig = SigningKey(base64.b64decode(sk)[:32]).sign(msg).signature
    stxn = {"sig": sig, "txn": txn}
    if sgnr:
        stxn["sgnr"] = sgnr
    return base64.b64decode(encoding.msgpack_encode(stxn))


class Net:
    """Small conveniences over AlgodClient so tests read as given/when/then."""

    def __init__(self, proc: DevnetProcess):
        self.proc = proc
        self.client = proc.client()
        self.genesis = proc.genesis

    def params(self, **overrides) -> transaction.SuggestedParams:
        sp = self.client.suggested_params()
        for key, value in overrides.items():
            setattr(sp, key, value)
        return sp

    def new_account(self, microalgos: int = 1_000_000) -> Account:
        sk, address = account.generate_account()
        if microalgos:
            fund(self.client, self.genesis, address, microalgos)
        return Account(sk, address)

    def send(self, *signed) -> str:
        txid = self.client.send_transactions(list(signed))
        transaction.wait_for_confirmation(self.client, txid, 4)
        return txid

    def send_raw(self, raw: bytes) -> str:
        return self.client.send_raw_transaction(base64.b64encode(raw))

    def reject(self, *signed, match: str) -> str:
        with pytest.raises(AlgodHTTPError) as excinfo:
            self.client.send_transactions(list(signed))
        assert excinfo.value.code == 400, excinfo.value
        assert match in str(excinfo.value), str(excinfo.value)
        return str(excinfo.value)

    def reject_raw(self, raw: bytes, *, match: str) -> str:
        with pytest.raises(AlgodHTTPError) as excinfo:
            self.send_raw(raw)
        assert excinfo.value.code == 400, excinfo.value
        assert match in str(excinfo.value), str(excinfo.value)
        return str(excinfo.value)

    def balance(self, address: str) -> int:
        return self.client.account_info(address)["amount"]

    def holding(self, address: str, asset_id: int) -> dict | None:
        for holding in self.client.account_info(address)["assets"]:
            if holding["asset-id"] == asset_id:
                return holding
        return None

    def pay(self, sender: Account, receiver: str, amount: int, **kwargs):
        return sign(transaction.PaymentTxn(sender.address, self.params(), receiver, amount, **kwargs), sender.sk)

    def create_asset(self, creator: Account, **kwargs) -> int:
        fields = dict(
            total=1_000,
            decimals=0,
            default_frozen=False,
            unit_name="UNIT",
            asset_name="Token",
            manager=creator.address,
            reserve=creator.address,
            freeze=creator.address,
            clawback=creator.address,
        )
        fields.update(kwargs)
        txn = transaction.AssetConfigTxn(creator.address, self.params(), strict_empty_address_check=False, **fields)
        txid = self.send(sign(txn, creator.sk))
        return self.client.pending_transaction_info(txid)["asset-index"]

    def axfer(self, sender: Account, receiver: str, amount: int, asset_id: int, **kwargs):
        return sign(
            transaction.AssetTransferTxn(sender.address, self.params(), receiver, amount, asset_id, **kwargs), sender.sk
        )

    def opt_in(self, holder: Account, asset_id: int) -> str:
        return self.send(self.axfer(holder, holder.address, 0, asset_id))

    def http(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        headers: dict | None = None,
        data: bytes | None = None,
    ) -> tuple[int, object]:
        """Plain HTTP, for routes and failures algosdk does not expose."""
        hdrs = {"X-Algo-API-Token": self.proc.token if token is None else token}
        hdrs.update(headers or {})
        req = urllib.request.Request(self.proc.url + path, method=method, headers=hdrs, data=data)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def advance(self, rounds: int) -> int:
        status, body = self.http("POST", f"/devnet/advance?rounds={rounds}")
        assert status == 200, body
        return body["last-round"]


@pytest.fixture(scope="session")
def devnet_proc(tmp_path_factory):
    proc = DevnetProcess(tmp_path_factory.mktemp("devnet-shared")).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def net(devnet_proc) -> Net:
    return Net(devnet_proc)


@pytest.fixture
def alice(net) -> Account:
    return net.new_account(10_000_000)


@pytest.fixture
def bob(net) -> Account:
    return net.new_account(10_000_000)
