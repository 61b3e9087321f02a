"""State survives restarts and kill -9; a torn journal tail is dropped whole."""

import base64
import os

import pytest
from algosdk import account, encoding, transaction

from conftest import Net, sign
from devnet import store
from devnet.testing import DevnetProcess


@pytest.fixture
def own_devnet(tmp_path):
    proc = DevnetProcess(tmp_path / "data").start()
    yield proc
    proc.kill()


def _restart(proc: DevnetProcess, *, crash: bool) -> DevnetProcess:
    proc.kill() if crash else proc.stop()
    return DevnetProcess(proc.data_dir, token=proc.token).start()


def _populate(net: Net):
    holder = net.new_account(5_000_000)
    creator = net.new_account(5_000_000)
    asset_id = net.create_asset(creator, total=77)
    net.opt_in(holder, asset_id)
    sp = net.params()
    deliver = transaction.AssetTransferTxn(creator.address, sp, holder.address, 7, asset_id)
    pay = transaction.PaymentTxn(holder.address, sp, creator.address, 12_345)
    transaction.assign_group_id([deliver, pay])
    txid = net.send(sign(deliver, creator.sk), sign(pay, holder.sk))
    return holder, creator, asset_id, txid


@pytest.mark.parametrize("crash", [False, True], ids=["sigterm", "kill-9"])
def test_restart_keeps_every_confirmed_transaction(own_devnet, crash):
    net = Net(own_devnet)
    holder, creator, asset_id, txid = _populate(net)
    net.advance(4)
    before = {addr: net.client.account_info(addr) for addr in (holder.address, creator.address)}
    status_before = net.client.status()["last-round"]
    genesis_before = dict(own_devnet.genesis)

    proc = _restart(own_devnet, crash=crash)
    try:
        net = Net(proc)
        assert proc.genesis == genesis_before
        assert net.client.status()["last-round"] == status_before
        for addr, info in before.items():
            assert net.client.account_info(addr) == info
        assert net.client.pending_transaction_info(txid)["confirmed-round"] > 0
        assert net.client.asset_info(asset_id)["params"]["total"] == 77
        # and the ledger keeps working, including duplicate detection across restarts
        net.send(net.pay(holder, creator.address, 1))
    finally:
        proc.kill()


def test_torn_tail_is_dropped_and_earlier_groups_kept(own_devnet):
    net = Net(own_devnet)
    holder, creator, asset_id, _ = _populate(net)
    last_round = net.client.status()["last-round"]
    balance = net.balance(holder.address)
    sp = net.params()
    own_devnet.kill()

    # A crash in the middle of writing a 2-txn group: half a record at the end.
    _, stranger = account.generate_account()
    a = transaction.PaymentTxn(holder.address, sp, stranger, 200_000)
    b = transaction.PaymentTxn(creator.address, sp, stranger, 200_000)
    transaction.assign_group_id([a, b])
    body = b"".join(base64.b64decode(encoding.msgpack_encode(s)) for s in (sign(a, holder.sk), sign(b, creator.sk)))
    record = store.encode_record("g", last_round + 1, body)
    journal = own_devnet.data_dir / store.JOURNAL_FILE
    size = journal.stat().st_size
    with open(journal, "ab") as fh:
        fh.write(record[: len(record) // 2])

    proc = DevnetProcess(own_devnet.data_dir, token=own_devnet.token).start()
    try:
        net = Net(proc)
        assert journal.stat().st_size == size
        assert net.client.status()["last-round"] == last_round
        assert net.balance(holder.address) == balance
        assert net.balance(stranger) == 0
        # the same group can now be submitted and is stored whole
        net.client.send_raw_transaction(base64.b64encode(body))
        assert net.balance(stranger) == 400_000
    finally:
        proc.kill()


def test_journal_replay_stops_at_corrupt_record(tmp_path):
    journal = store.Journal(tmp_path)
    journal.open()
    journal.append("a", 5)
    journal.append("a", 9)
    journal.close()
    data = bytearray((tmp_path / store.JOURNAL_FILE).read_bytes())
    data[-1] ^= 0xFF  # flip a bit in the last record's payload
    (tmp_path / store.JOURNAL_FILE).write_bytes(bytes(data))

    records = list(store.Journal(tmp_path).replay())

    assert records == [("a", 5, b"")]
    assert (tmp_path / store.JOURNAL_FILE).stat().st_size == len(store.encode_record("a", 5, b""))


def test_fsync_mode_starts_and_persists(tmp_path):
    proc = DevnetProcess(tmp_path / "data", fsync=True).start()
    try:
        net = Net(proc)
        holder = net.new_account(300_000)
    finally:
        proc.kill()
    proc = DevnetProcess(tmp_path / "data").start()
    try:
        assert Net(proc).balance(holder.address) == 300_000
    finally:
        proc.stop()
    assert os.path.exists(tmp_path / "data" / "genesis.json")
