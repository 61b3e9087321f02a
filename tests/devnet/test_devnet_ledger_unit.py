"""Codec and ledger without HTTP."""

import base64

import pytest
from algosdk import account, encoding, transaction

from conftest import sign
from devnet import codec
from devnet.ledger import GenesisState, Ledger, TxnRejected, prepare_group

GENESIS_HASH = bytes(range(32))


def _params(first=1):
    return transaction.SuggestedParams(
        1000, first, first + 1000, base64.b64encode(GENESIS_HASH).decode(), "unit-devnet", flat_fee=True
    )


def _wire(*signed) -> bytes:
    return b"".join(base64.b64decode(encoding.msgpack_encode(s)) for s in signed)


@pytest.fixture
def keys():
    return [account.generate_account() for _ in range(3)]


@pytest.fixture
def ledger(keys):
    sink = bytes(32)
    allocations = {encoding.decode_address(addr): 10_000_000 for _, addr in keys}
    return Ledger(GenesisState("unit-devnet", GENESIS_HASH, sink, allocations))


def test_txid_and_group_id_match_algosdk(keys):
    (sk, a), (_, b), _ = keys
    pay = transaction.PaymentTxn(a, _params(), b, 5, note=b"n", close_remainder_to=b)
    acfg = transaction.AssetConfigTxn(
        a, _params(), total=9, unit_name="U", manager=a, metadata_hash=bytes(32 * [7]), strict_empty_address_check=False
    )
    axfer = transaction.AssetTransferTxn(a, _params(), b, 3, 1234)
    expected_group = transaction.calculate_group_id([pay, acfg, axfer])
    transaction.assign_group_id([pay, acfg, axfer])

    decoded = codec.decode_signed_txns(_wire(*(sign(t, sk) for t in (pay, acfg, axfer))))

    for txn, stxn in zip((pay, acfg, axfer), decoded, strict=True):
        assert codec.txid_str(codec.raw_txid(stxn["txn"])) == txn.get_txid()
    assert codec.group_id([s["txn"] for s in decoded]) == expected_group


def test_address_round_trip(keys):
    _, addr = keys[0]
    assert codec.encode_address(codec.decode_address(addr)) == addr
    # A character in the middle: every one of its five bits is key or checksum (the last
    # character's two low bits are padding, so changing "A" to "B" there changed nothing
    # and this test failed one run in eight).
    with pytest.raises(ValueError):
        codec.decode_address(addr[:10] + ("A" if addr[10] != "A" else "B") + addr[11:])


def test_rejected_group_leaves_state_untouched(ledger, keys):
    (sk_a, a), (sk_b, b), _ = keys
    ok = transaction.PaymentTxn(a, _params(), b, 1_000)
    bad = transaction.PaymentTxn(b, _params(), a, 99_000_000)
    transaction.assign_group_id([ok, bad])
    group = prepare_group(codec.decode_signed_txns(_wire(sign(ok, sk_a), sign(bad, sk_b))))
    before = ledger.totals(), ledger.account_info(encoding.decode_address(a))
    journaled = []

    with pytest.raises(TxnRejected, match="overspend"):
        ledger.submit(group, journal=journaled.append)

    assert journaled == []
    assert (ledger.totals(), ledger.account_info(encoding.decode_address(a))) == before
    assert ledger.last_round == 1


def test_failed_journal_write_applies_nothing(ledger, keys):
    (sk_a, a), (_, b), _ = keys
    group = prepare_group(codec.decode_signed_txns(_wire(sign(transaction.PaymentTxn(a, _params(), b, 1_000), sk_a))))

    def broken_disk(rnd):
        raise OSError("disk full")

    with pytest.raises(OSError):
        ledger.submit(group, journal=broken_disk)
    assert ledger.last_round == 1
    assert ledger.account_info(encoding.decode_address(b))["amount"] == 10_000_000
    assert ledger.submit(group) == 2


def test_asset_ids_come_from_the_transaction_counter(ledger, keys):
    (sk_a, a), _, _ = keys
    create = transaction.AssetConfigTxn(a, _params(), total=5, strict_empty_address_check=False)
    group = prepare_group(codec.decode_signed_txns(_wire(sign(create, sk_a))))
    ledger.submit(group)
    txid = group[0].txid
    assert ledger.pending_info(txid)["asset-index"] == 1001
    algos, units = ledger.totals()
    assert algos == 30_000_000 and units == {1001: 5}
