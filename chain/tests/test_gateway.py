import base64
import urllib.error

from algosdk.error import AlgodHTTPError

from chain import gateway


def test_algod_errors_are_classified_and_keep_the_message():
    cases = {
        AlgodHTTPError(
            "TransactionPool.Remember: transaction X: overspend (account A, data ...)", 400
        ): gateway.AlgodRejected,
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


def _one_request_per_connection_server():
    """An HTTP/1.1 server that closes every connection after one answer without saying
    so, like a node whose keep-alive timeout expired while our connection sat idle."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            payload = json.dumps({"last-round": 7}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_keep_alive_client_answers_and_fails_like_algosdk(devnet):
    """Same results and the same exceptions (type, message, code) as algosdk's urllib client."""
    import pytest
    from algosdk.v2client.algod import AlgodClient

    ours = gateway.KeepAliveAlgodClient(devnet.token, devnet.url, timeout=5)
    theirs = AlgodClient(devnet.token, devnet.url)
    assert ours.versions() == theirs.versions()
    assert ours.status()["last-round"] >= theirs.status()["last-round"] - 1
    assert ours.suggested_params().gh == theirs.suggested_params().gh

    wrong_token = (gateway.KeepAliveAlgodClient("b" * 64, devnet.url, timeout=5), AlgodClient("b" * 64, devnet.url))
    calls = [
        lambda c: c.pending_transaction_info("A" * 52),  # 404
        lambda c: c.send_raw_transaction(base64.b64encode(b"not a transaction")),  # 400
        lambda c: c.algod_request("GET", "/nothing/here"),  # 501
        lambda c: wrong_token[c is theirs].status(),  # 401
    ]
    for call in calls:
        with pytest.raises(AlgodHTTPError) as expected:
            call(theirs)
        with pytest.raises(AlgodHTTPError) as got:
            call(ours)
        assert (str(got.value), got.value.code) == (str(expected.value), expected.value.code)


def test_keep_alive_client_reuses_one_connection_per_thread(devnet):
    import threading

    client = gateway.KeepAliveAlgodClient(devnet.token, devnet.url, timeout=5)
    client.status()
    conn, reused = client._connection()
    sock = conn.sock
    for _ in range(5):
        client.status()
    assert reused and client._connection()[0] is conn and conn.sock is sock

    other = []
    thread = threading.Thread(target=lambda: (client.status(), other.append(client._connection()[0])))
    thread.start()
    thread.join()
    assert other[0] is not conn


def test_keep_alive_client_reconnects_when_the_node_closed_the_idle_connection():
    server = _one_request_per_connection_server()
    try:
        client = gateway.KeepAliveAlgodClient("a" * 64, f"http://127.0.0.1:{server.server_address[1]}", timeout=5)
        for _ in range(3):
            assert client.status() == {"last-round": 7}
    finally:
        server.shutdown()
        server.server_close()


def test_unreachable_node_is_retryable_through_the_keep_alive_client(settings):
    import pytest

    from devnet.testing import free_port

    settings.ALGOD_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(gateway.AlgodRetryable, match="algod unreachable"):
        gateway.algod_status()
