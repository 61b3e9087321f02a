"""HTTP surface: auth, shapes, 404/501s, status and waiting."""

import threading
import time

import pytest
from algosdk import account, transaction
from algosdk.error import AlgodHTTPError
from algosdk.v2client.algod import AlgodClient

FORBIDDEN_GENESIS_IDS = {
    "mainnet-v1.0",
    "testnet-v1.0",
    "betanet-v1.0",
    "devnet-v1.0",
    "devnet-v1",
    "sandnet-v1",
    "dockernet-v1",
}


def test_genesis_file_and_params_agree(net):
    genesis = net.genesis
    assert genesis["genesis_id"] not in FORBIDDEN_GENESIS_IDS
    assert set(genesis["dispenser"]) >= {"address", "mnemonic"}

    params = net.client.algod_request("GET", "/transactions/params")

    assert params["genesis-id"] == genesis["genesis_id"]
    assert params["genesis-hash"] == genesis["genesis_hash"]
    assert params["fee"] == 0 and params["min-fee"] == 1000
    assert isinstance(params["last-round"], int) and params["consensus-version"]


def test_health_and_versions(net):
    assert net.client.health() is None
    versions = net.client.versions()
    assert versions["build"]["channel"] == "devnet"
    assert versions["genesis_id"] == net.genesis["genesis_id"]


def test_wrong_or_missing_token_is_401(net, devnet_proc):
    with pytest.raises(AlgodHTTPError) as excinfo:
        AlgodClient("b" * 64, devnet_proc.url).status()
    assert excinfo.value.code == 401
    assert str(excinfo.value) == "Invalid API Token"
    assert net.http("GET", "/v2/status", token="")[0] == 401


def test_bearer_token_is_accepted(net, devnet_proc):
    status, body = net.http("GET", "/v2/status", token="", headers={"Authorization": f"Bearer {devnet_proc.token}"})
    assert status == 200 and body["last-round"] >= 1


def test_unimplemented_routes_are_501(net):
    status, body = net.http("GET", "/v2/blocks/1")
    assert status == 501
    assert body == {"message": "devnet: not implemented"}
    with pytest.raises(AlgodHTTPError) as excinfo:
        net.client.application_info(1)
    assert excinfo.value.code == 501


def test_status_shape(net):
    status = net.client.status()
    for key in (
        "last-round",
        "last-version",
        "next-version",
        "next-version-round",
        "next-version-supported",
        "time-since-last-round",
        "catchup-time",
        "stopped-at-unsupported-round",
    ):
        assert key in status


def test_unknown_account_is_empty_200(net):
    _, address = account.generate_account()
    info = net.client.account_info(address)
    assert info["address"] == address
    assert info["amount"] == 0
    assert info["assets"] == [] and info["created-assets"] == []
    assert info["status"] == "Offline"


def test_malformed_address_is_400(net):
    assert net.http("GET", "/v2/accounts/NOTANADDRESS")[0] == 400


def test_unknown_lookups_are_404_with_algod_wording(net):
    _, address = account.generate_account()
    with pytest.raises(AlgodHTTPError) as excinfo:
        net.client.pending_transaction_info("A" * 52)
    assert excinfo.value.code == 404
    assert "could not find the transaction in the transaction pool" in str(excinfo.value)
    with pytest.raises(AlgodHTTPError) as excinfo:
        net.client.asset_info(987654321)
    assert excinfo.value.code == 404 and "asset does not exist" in str(excinfo.value)
    with pytest.raises(AlgodHTTPError) as excinfo:
        net.client.account_asset_info(address, 987654321)
    assert excinfo.value.code == 404
    assert "account asset info not found" in str(excinfo.value)


def test_payment_confirms_before_post_returns(net, alice):
    _, address = account.generate_account()
    before = net.client.status()["last-round"]

    txid = net.client.send_transaction(net.pay(alice, address, 200_000))
    info = net.client.pending_transaction_info(txid)

    assert info["confirmed-round"] == before + 1
    assert info["pool-error"] == ""
    assert info["txn"]["txn"]["type"] == "pay"
    assert info["txn"]["txn"]["snd"] == alice.address
    assert info["txn"]["txn"]["rcv"] == address
    assert "sig" in info["txn"]
    assert transaction.wait_for_confirmation(net.client, txid, 4)["confirmed-round"] == (before + 1)


def test_wait_for_block_after_returns_at_once_when_round_passed(net):
    last = net.client.status()["last-round"]
    started = time.monotonic()
    status = net.client.status_after_block(last - 1)
    assert status["last-round"] >= last
    assert time.monotonic() - started < 1


def test_wait_for_block_after_wakes_on_new_round(net, alice):
    last = net.client.status()["last-round"]
    timer = threading.Timer(0.3, lambda: net.client.send_transaction(net.pay(alice, alice.address, 0)))
    timer.start()
    started = time.monotonic()
    status = net.client.status_after_block(last)
    timer.join()
    assert status["last-round"] > last
    assert time.monotonic() - started < 4


def test_wait_for_block_after_gives_up_well_before_client_timeout(net):
    last = net.client.status()["last-round"]
    started = time.monotonic()
    status = net.client.status_after_block(last + 100)
    elapsed = time.monotonic() - started
    assert 3 < elapsed < 10
    assert status["last-round"] >= last


def test_advance_requires_token_and_moves_rounds(net):
    last = net.client.status()["last-round"]
    assert net.http("POST", "/devnet/advance?rounds=3", token="nope")[0] == 401
    assert net.advance(3) == last + 3
    assert net.client.status()["last-round"] == last + 3
    status, body = net.http("POST", "/devnet/advance?rounds=0")
    assert status == 400 and "rounds" in body["message"]


def test_pending_info_msgpack_format(net, alice):
    txid = net.send(net.pay(alice, alice.address, 0))
    raw = net.client.pending_transaction_info(txid, response_format="msgpack")
    import msgpack

    info = msgpack.unpackb(raw, raw=False)
    assert info["confirmed-round"] >= 1
    assert info["txn"]["txn"]["type"] == "pay"


def test_empty_body_is_empty_txgroup(net):
    net.reject_raw(b"", match="empty txgroup")


def test_garbage_body_is_400(net):
    net.reject_raw(b"\xc1\xc1not msgpack", match="msgpack decode error")
    net.reject_raw(b"\x93\x01\x02\x03", match="msgpack decode error")
