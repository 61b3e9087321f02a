import urllib.error

from algosdk.error import AlgodHTTPError

from chain import gateway


def test_algod_errors_are_classified_and_keep_the_message():
    cases = {
        AlgodHTTPError("TransactionPool.Remember: transaction X: overspend (account A, data ...)", 400): gateway.AlgodRejected,
        AlgodHTTPError("asset 7 frozen in A", 400): gateway.AlgodRejected,
        AlgodHTTPError("receiver error: must optin, asset 7 missing from A", 400): gateway.AlgodRejected,
        AlgodHTTPError("At least one signature didn't pass verification", 400): gateway.AlgodRejected,
        AlgodHTTPError("transaction already in ledger: X", 400): gateway.AlreadyInLedger,
        AlgodHTTPError("txn dead: round 9 outside of 1--5", 400): gateway.TxnDead,
        AlgodHTTPError("TransactionPool.Remember: transaction pool is full", 400): gateway.AlgodRetryable,
        AlgodHTTPError("internal error", 500): gateway.AlgodRetryable,
        AlgodHTTPError("Invalid API Token", 401): gateway.AlgodRetryable,
        urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")): gateway.AlgodRetryable,
        TimeoutError("timed out"): gateway.AlgodRetryable,
        ConnectionResetError(): gateway.AlgodRetryable,
    }
    for exc, expected in cases.items():
        classified = gateway.classify(exc)
        assert type(classified) is expected, (exc, classified)
    assert "overspend" in gateway.classify(AlgodHTTPError("overspend (account A)", 400)).message


def test_a_devnet_genesis_is_refused_when_not_allowed(settings):
    import pytest
    from django.core.exceptions import ImproperlyConfigured

    settings.ALGOD_ALLOW_DEVNET = False
    with pytest.raises(ImproperlyConfigured, match="ALGOD_ALLOW_DEVNET_IN_PRODUCTION"):
        gateway.check_network("rwa-devnet-v1")
    gateway.check_network("testnet-v1.0")
