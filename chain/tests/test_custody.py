import base64

import pytest
from algosdk import account as algo_account
from algosdk import encoding
from algosdk import transaction as algo_txn
from algosdk.atomic_transaction_composer import AccountTransactionSigner, sign_transaction_with_signer

from chain import custody

KEY_A = "k1:" + base64.b64encode(b"A" * 32).decode()
KEY_B = "k2:" + base64.b64encode(b"B" * 32).decode()
WRONG_A = "k1:" + base64.b64encode(b"Z" * 32).decode()


def backend(text, active=""):
    return custody.LocalMasterKeyBackend(text, "", active)


def a_payment(sender):
    sp = algo_txn.SuggestedParams(1000, 1, 100, base64.b64encode(b"g" * 32).decode(), "rwa-devnet-v1", flat_fee=True)
    return algo_txn.PaymentTxn(sender, sp, sender, 0)


def test_sealed_key_holds_no_plaintext_and_signs_inside_a_session():
    sk, address = algo_account.generate_account()
    sealed = custody.seal_secret_key(address=address, private_key=sk, backend=backend(KEY_A))
    raw = base64.b64decode(sk)
    for blob in (sealed.key_ciphertext, sealed.wrapped_data_key):
        assert raw[:32] not in blob and sk.encode() not in blob
    assert "AAAA" not in repr(sealed) and sealed.key_id == "k1"

    txn = a_payment(address)
    with custody.signing_session():
        signed = custody.sign_group([(txn, sealed, address)], backend=backend(KEY_A))
    expected = sign_transaction_with_signer(txn, AccountTransactionSigner(sk))
    assert signed == [(base64.b64decode(encoding.msgpack_encode(expected)), txn.get_txid())]


def test_a_group_is_signed_byte_for_byte_as_algosdk_signs_it():
    """custody encodes each transaction once and opens each key once per group; what it
    returns must be exactly algosdk's signed bytes and txids, for every shape we send."""
    (fee_sk, fee_addr), (agent_sk, agent_addr), (_, holder), (_, investor) = (
        algo_account.generate_account() for _ in range(4)
    )
    sp = algo_txn.SuggestedParams(0, 7, 1007, base64.b64encode(b"g" * 32).decode(), "rwa-devnet-v1", flat_fee=True)
    txns = [
        algo_txn.PaymentTxn(fee_addr, sp, fee_addr, 0, note=b"fees", lease=b"L" * 32),
        algo_txn.AssetTransferTxn(agent_addr, sp, investor, 5, 1234, revocation_target=holder, lease=b"M" * 32),
        algo_txn.AssetTransferTxn(agent_addr, sp, holder, 2**40, 1234, revocation_target=investor),
        algo_txn.AssetConfigTxn(
            fee_addr,
            sp,
            total=10**6,
            unit_name="RWA",
            asset_name="Building",
            manager=fee_addr,
            reserve=fee_addr,
            freeze=fee_addr,
            clawback=agent_addr,
            decimals=0,
            default_frozen=True,
            url="https://rwa.example/a#arc3",
            metadata_hash=b"h" * 32,
        ),
    ]
    algo_txn.assign_group_id(txns)
    keys = {fee_addr: fee_sk, agent_addr: agent_sk}
    sealed = {a: custody.seal_secret_key(address=a, private_key=k, backend=backend(KEY_A)) for a, k in keys.items()}

    with custody.signing_session():
        signed = custody.sign_group([(t, sealed[t.sender], t.sender) for t in txns], backend=backend(KEY_A))

    expected = [sign_transaction_with_signer(t, AccountTransactionSigner(keys[t.sender])) for t in txns]
    assert signed == [
        (base64.b64decode(encoding.msgpack_encode(e)), t.get_txid()) for e, t in zip(expected, txns, strict=True)
    ]


def test_a_key_record_holding_another_accounts_key_signs_nothing(monkeypatch):
    sk, address = algo_account.generate_account()
    _, other = algo_account.generate_account()
    monkeypatch.setattr(custody.algo_account, "address_from_private_key", lambda key: other)
    sealed = custody.seal_secret_key(address=other, private_key=sk, backend=backend(KEY_A))  # sealed under `other`
    monkeypatch.undo()
    with custody.signing_session(), pytest.raises(custody.CustodyError, match="another account's key"):
        custody.sign_group([(a_payment(other), sealed, other)], backend=backend(KEY_A))


def test_a_transaction_from_another_sender_is_refused():
    sk, address = algo_account.generate_account()
    _, other = algo_account.generate_account()
    sealed = custody.seal_secret_key(address=address, private_key=sk, backend=backend(KEY_A))
    with custody.signing_session(), pytest.raises(custody.CustodyError, match="sender does not match"):
        custody.sign_group([(a_payment(other), sealed, address)], backend=backend(KEY_A))


def test_signing_outside_the_worker_session_is_refused():
    sk, address = algo_account.generate_account()
    sealed = custody.seal_secret_key(address=address, private_key=sk, backend=backend(KEY_A))
    with pytest.raises(custody.CustodyError, match="signing session"):
        custody.sign_group([(a_payment(address), sealed, address)], backend=backend(KEY_A))


def test_wrong_master_key_is_a_clear_error_and_signs_nothing():
    sk1, addr1 = algo_account.generate_account()
    sealed = custody.seal_secret_key(address=addr1, private_key=sk1, backend=backend(KEY_A))
    with custody.signing_session(), pytest.raises(custody.CustodyError, match="cannot unwrap.*nothing was signed"):
        custody.sign_group([(a_payment(addr1), sealed, addr1)], backend=backend(WRONG_A))
    with custody.signing_session(), pytest.raises(custody.CustodyError, match="'k1' is not configured"):
        custody.sign_group([(a_payment(addr1), sealed, addr1)], backend=backend(KEY_B))


def test_a_ciphertext_moved_to_another_address_does_not_decrypt():
    sk1, addr1 = algo_account.generate_account()
    _, addr2 = algo_account.generate_account()
    sealed = custody.seal_secret_key(address=addr1, private_key=sk1, backend=backend(KEY_A))
    with custody.signing_session(), pytest.raises(custody.CustodyError):
        custody.sign_group([(a_payment(addr2), sealed, addr2)], backend=backend(KEY_A))


def test_rewrap_moves_to_the_active_key_without_changing_the_ciphertext():
    sk, address = algo_account.generate_account()
    sealed = custody.seal_secret_key(address=address, private_key=sk, backend=backend(KEY_A))
    both = backend(f"{KEY_A};{KEY_B}", active="k2")
    rewrapped = custody.rewrap(address=address, sealed=sealed, backend=both)
    assert rewrapped.key_id == "k2" and rewrapped.key_ciphertext == sealed.key_ciphertext
    with custody.signing_session():
        custody.sign_group([(a_payment(address), rewrapped, address)], backend=backend(KEY_B))


def test_misconfigured_master_keys_are_rejected():
    with pytest.raises(custody.CustodyError, match="no master key"):
        backend("")
    with pytest.raises(Exception, match="32 bytes"):
        backend("k1:" + base64.b64encode(b"short").decode())
