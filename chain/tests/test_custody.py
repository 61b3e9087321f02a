import base64

import pytest
from algosdk import account as algo_account
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
    assert signed[0].signature == expected.signature


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
