"""Ledger rules for payments, signatures, validity, groups, leases, rekeying."""

import base64
import os

import msgpack
from algosdk import account, encoding, transaction
from algosdk.transaction import LogicSigAccount, LogicSigTransaction

from conftest import sign, sign_raw


def test_payment_moves_amount_and_fee_goes_to_fee_sink(net, alice):
    _, receiver = account.generate_account()
    sink_before = net.balance(net.genesis["fee_sink"])

    net.send(net.pay(alice, receiver, 300_000))

    assert net.balance(receiver) == 300_000
    assert net.balance(alice.address) == 10_000_000 - 300_000 - 1000
    assert net.balance(net.genesis["fee_sink"]) == sink_before + 1000


def test_txid_matches_algosdk(net, alice):
    signed = net.pay(alice, alice.address, 1, note=b"txid check")
    assert net.client.send_transaction(signed) == signed.transaction.get_txid()


def test_bad_signature_rejected(net, alice, bob):
    signed = net.pay(alice, bob.address, 1)
    signed.signature = base64.b64encode(bytes(64)).decode()
    net.reject(signed, match="At least one signature didn't pass verification")


def test_signed_by_wrong_key_rejected(net, alice, bob):
    # algosdk marks a foreign signer as the authorizer (sgnr); the ledger refuses it
    txn = transaction.PaymentTxn(alice.address, net.params(), bob.address, 1)
    net.reject(sign(txn, bob.sk), match="should have been authorized by")

    forged = sign_raw(txn.dictify(), bob.sk)  # bob's signature, no sgnr
    net.reject_raw(forged, match="At least one signature didn't pass verification")


def test_unsigned_rejected(net, alice):
    txn = transaction.PaymentTxn(alice.address, net.params(), alice.address, 1)
    raw = base64.b64decode(encoding.msgpack_encode({"txn": txn.dictify()}))
    net.reject_raw(raw, match="signedtxn has no sig")


def test_overspend(net, alice, bob):
    net.reject(net.pay(alice, bob.address, 10_000_000), match="overspend")
    assert net.balance(alice.address) == 10_000_000


def test_new_receiver_below_min_balance(net, alice):
    _, receiver = account.generate_account()
    net.reject(net.pay(alice, receiver, 99_999), match="below min 100000")


def test_sender_left_below_min_balance(net):
    sender = net.new_account(200_000)
    _, receiver = account.generate_account()
    message = net.reject(net.pay(sender, receiver, 100_001), match="balance")
    assert "below min 100000" in message


def test_zero_payment_to_new_account_allowed(net, alice):
    _, receiver = account.generate_account()
    net.send(net.pay(alice, receiver, 0))
    assert net.balance(receiver) == 0


def test_close_to_moves_remainder_and_empties_account(net, bob):
    sender = net.new_account(1_000_000)
    txid = net.send(net.pay(sender, bob.address, 100_000, close_remainder_to=bob.address))

    info = net.client.pending_transaction_info(txid)
    assert info["closing-amount"] == 1_000_000 - 100_000 - 1000
    assert net.balance(sender.address) == 0
    assert net.balance(bob.address) == 10_000_000 + 1_000_000 - 1000


def test_close_to_sender_is_malformed(net, alice):
    raw = sign_raw(
        {**_pay_dict(net, alice, alice.address, 0), "close": encoding.decode_address(alice.address)}, alice.sk
    )
    net.reject_raw(raw, match="cannot close account to its sender")


def test_close_fails_while_holding_assets(net, alice, bob):
    asset_id = net.create_asset(alice)
    net.opt_in(bob, asset_id)
    net.reject(net.pay(bob, alice.address, 0, close_remainder_to=alice.address), match="cannot close")


def test_window_too_large_and_inverted(net, alice):
    sp = net.params()
    sp.last = sp.first + 1001
    net.reject(
        sign(transaction.PaymentTxn(alice.address, sp, alice.address, 0), alice.sk),
        match="transaction window size excessive",
    )
    sp = net.params()
    sp.last = sp.first - 1
    net.reject(
        sign(transaction.PaymentTxn(alice.address, sp, alice.address, 0), alice.sk), match="transaction invalid range"
    )


def test_txn_dead_when_expired_and_when_early(net, alice):
    sp = net.params()
    sp.last = sp.first + 2
    expired = sign(transaction.PaymentTxn(alice.address, sp, alice.address, 0), alice.sk)
    net.advance(5)
    message = net.reject(expired, match="txn dead")
    assert "outside of" in message

    sp = net.params()
    sp.first, sp.last = sp.first + 10, sp.first + 20
    early = sign(transaction.PaymentTxn(alice.address, sp, alice.address, 0), alice.sk)
    net.reject(early, match="txn dead")


def test_genesis_checks(net, alice):
    txn = transaction.PaymentTxn(alice.address, net.params(), alice.address, 0)
    txn.genesis_hash = base64.b64encode(os.urandom(32)).decode()
    net.reject(sign(txn, alice.sk), match="genesis")

    txn = transaction.PaymentTxn(alice.address, net.params(), alice.address, 0)
    txn.genesis_id = "testnet-v1.0"
    net.reject(sign(txn, alice.sk), match="genesis")

    raw = sign_raw({k: v for k, v in _pay_dict(net, alice, alice.address, 0).items() if k != "gh"}, alice.sk)
    net.reject_raw(raw, match="genesis")

    # an empty genesis id is allowed as long as the hash matches
    txn = transaction.PaymentTxn(alice.address, net.params(), alice.address, 0)
    txn.genesis_id = None
    net.send(sign(txn, alice.sk))


def test_duplicate_txid(net, alice):
    signed = net.pay(alice, alice.address, 0, note=b"once")
    txid = net.send(signed)
    net.reject(signed, match=f"transaction already in ledger: {txid}")


def test_lease_overlaps_until_last_valid(net, alice):
    lease = os.urandom(32)
    sp = net.params()
    sp.last = sp.first + 5
    first = sign(transaction.PaymentTxn(alice.address, sp, alice.address, 0, lease=lease, note=b"1"), alice.sk)
    second = sign(
        transaction.PaymentTxn(alice.address, net.params(), alice.address, 0, lease=lease, note=b"2"), alice.sk
    )
    net.send(first)
    net.reject(second, match="overlapping lease")

    net.advance(6)
    net.send(
        sign(transaction.PaymentTxn(alice.address, net.params(), alice.address, 0, lease=lease, note=b"3"), alice.sk)
    )


def test_note_too_big(net, alice):
    raw = sign_raw({**_pay_dict(net, alice, alice.address, 0), "note": b"x" * 1025}, alice.sk)
    net.reject_raw(raw, match="note too big")


def test_fee_below_minimum(net, alice):
    sp = net.params(flat_fee=True, fee=999)
    signed = sign(transaction.PaymentTxn(alice.address, sp, alice.address, 0), alice.sk)
    net.reject(signed, match="in fees, which is less than the minimum")


def test_rekey_changes_who_must_sign(net, alice, bob):
    net.send(net.pay(alice, alice.address, 0, rekey_to=bob.address))
    assert net.client.account_info(alice.address)["auth-addr"] == bob.address

    own_key = net.pay(alice, bob.address, 1000)
    message = net.reject(own_key, match="should have been authorized by")
    assert f"authorized by {bob.address}" in message

    txn = transaction.PaymentTxn(alice.address, net.params(), bob.address, 1000)
    by_auth = sign_raw(txn.dictify(), bob.sk, sgnr=encoding.decode_address(bob.address))
    net.send_raw(by_auth)

    same = sign_raw(txn.dictify() | {"note": b"x"}, alice.sk, sgnr=encoding.decode_address(alice.address))
    net.reject_raw(same, match="AuthAddr must be different from Sender")

    back = transaction.PaymentTxn(alice.address, net.params(), alice.address, 0, rekey_to=alice.address)
    net.send_raw(sign_raw(back.dictify(), bob.sk, sgnr=encoding.decode_address(bob.address)))
    assert "auth-addr" not in net.client.account_info(alice.address)
    net.send(net.pay(alice, bob.address, 1000))


def test_unsupported_transaction_types(net, alice):
    appl = transaction.ApplicationNoOpTxn(alice.address, net.params(), 1)
    message = net.reject(sign(appl, alice.sk), match="not supported")
    assert "LocalNet" in message and "TestNet" in message

    keyreg = transaction.KeyregOfflineTxn(alice.address, net.params())
    net.reject(sign(keyreg, alice.sk), match="transaction type keyreg is not supported")


def test_logic_signature_not_supported(net, alice):
    lsig = LogicSigAccount(b"\x06\x81\x01")  # pushint 1
    txn = transaction.PaymentTxn(lsig.address(), net.params(), alice.address, 0)
    net.reject(LogicSigTransaction(txn, lsig), match="not supported")


# --- groups ---------------------------------------------------------------------------


def _group(net, *txns_and_keys):
    txns = [t for t, _ in txns_and_keys]
    transaction.assign_group_id(txns)
    return [sign(t, sk) for t, sk in txns_and_keys]


def test_group_applies_atomically(net, alice, bob):
    sp = net.params()
    ok = transaction.PaymentTxn(alice.address, sp, bob.address, 1_000)
    bad = transaction.PaymentTxn(bob.address, sp, alice.address, 50_000_000)
    net.reject(*_group(net, (ok, alice.sk), (bad, bob.sk)), match="overspend")
    assert net.balance(alice.address) == 10_000_000
    assert net.balance(bob.address) == 10_000_000


def test_group_confirms_as_one_round(net, alice, bob):
    sp = net.params()
    a = transaction.PaymentTxn(alice.address, sp, bob.address, 1_000)
    b = transaction.PaymentTxn(bob.address, sp, alice.address, 2_000)
    signed = _group(net, (a, alice.sk), (b, bob.sk))
    net.send(*signed)
    rounds = {net.client.pending_transaction_info(s.get_txid())["confirmed-round"] for s in signed}
    assert len(rounds) == 1


def test_group_fee_pooling(net, alice, bob):
    sp_payer = net.params(flat_fee=True, fee=2000)
    sp_free = net.params(flat_fee=True, fee=0)
    a = transaction.PaymentTxn(alice.address, sp_payer, bob.address, 1_000)
    b = transaction.PaymentTxn(bob.address, sp_free, alice.address, 1_000)
    net.send(*_group(net, (a, alice.sk), (b, bob.sk)))
    assert net.balance(bob.address) == 10_000_000

    sp_short = net.params(flat_fee=True, fee=1999)
    a = transaction.PaymentTxn(alice.address, sp_short, bob.address, 1_000)
    b = transaction.PaymentTxn(bob.address, sp_free, alice.address, 1_000)
    net.reject(*_group(net, (a, alice.sk), (b, bob.sk)), match="in fees")


def test_group_member_sent_alone_is_incomplete(net, alice, bob):
    sp = net.params()
    a = transaction.PaymentTxn(alice.address, sp, bob.address, 1_000)
    b = transaction.PaymentTxn(bob.address, sp, alice.address, 1_000)
    first, second = _group(net, (a, alice.sk), (b, bob.sk))
    net.reject(first, match="incomplete group")

    c = transaction.PaymentTxn(alice.address, sp, bob.address, 3_000)
    net.reject(first, sign(c, alice.sk), match="incomplete group")


def test_group_ids_must_agree(net, alice, bob):
    sp = net.params()
    a1 = transaction.PaymentTxn(alice.address, sp, bob.address, 1_000)
    b1 = transaction.PaymentTxn(bob.address, sp, alice.address, 1_000)
    a2 = transaction.PaymentTxn(alice.address, sp, bob.address, 2_000)
    b2 = transaction.PaymentTxn(bob.address, sp, alice.address, 2_000)
    g1 = _group(net, (a1, alice.sk), (b1, bob.sk))
    g2 = _group(net, (a2, alice.sk), (b2, bob.sk))
    net.reject(g1[0], g2[1], match="inconsistent group values")


def test_group_size_limit(net, alice):
    sp = net.params()
    txns = [transaction.PaymentTxn(alice.address, sp, alice.address, 0, note=bytes([i])) for i in range(17)]
    net.reject(*[sign(t, alice.sk) for t in txns], match="max group size is 16")

    sixteen = txns[:16]
    transaction.assign_group_id(sixteen)
    txid = net.send(*[sign(t, alice.sk) for t in sixteen])
    assert txid == sixteen[0].get_txid()


def test_same_txn_twice_in_group(net, alice):
    txn = transaction.PaymentTxn(alice.address, net.params(), alice.address, 0)
    txn.group = transaction.calculate_group_id([txn, txn])
    signed = sign(txn, alice.sk)
    net.reject(signed, signed, match="transaction already in ledger")


def test_unknown_field_rejected(net, alice):
    raw = sign_raw({**_pay_dict(net, alice, alice.address, 0), "zzz": 1}, alice.sk)
    net.reject_raw(raw, match="unknown field")


def test_wrong_field_type_rejected(net, alice):
    raw = msgpack.packb({"sig": b"x" * 64, "txn": {"amt": "lots", "type": "pay"}}, use_bin_type=True)
    net.reject_raw(raw, match="wrong type")


def _pay_dict(net, sender, receiver: str, amount: int) -> dict:
    return transaction.PaymentTxn(sender.address, net.params(), receiver, amount).dictify()
