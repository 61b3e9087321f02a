"""HTTP front end: the subset of the algod v2 REST API that algosdk uses for payments
and assets, plus ``POST /devnet/advance``. State and rules live in ``ledger``."""

from __future__ import annotations

import hmac
import json
import logging
import re
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msgpack

from devnet import codec, store
from devnet.ledger import GenesisState, Ledger, TxnRejected, prepare_group

log = logging.getLogger("devnet.server")

DEFAULT_TOKEN = "a" * 64  # the well-known LocalNet token, so local tooling just works
MAX_BODY_BYTES = 10 * 1024 * 1024
WAIT_FOR_BLOCK_SECONDS = 5.0  # algosdk's HTTP timeout is 30 s; answer well before it
MAX_ADVANCE = 1_000_000
NO_AUTH_PATHS = {"/health", "/versions"}
VERSION = {"major": 0, "minor": 1, "build_number": 0}


class Devnet:
    """A ledger bound to its data directory: genesis, journal replay, journaled writes."""

    def __init__(self, data_dir: Path, *, fsync: bool = False):
        self.data_dir = Path(data_dir)
        self.genesis = store.load_or_create_genesis(self.data_dir)
        self.ledger = Ledger(
            GenesisState(
                genesis_id=self.genesis.genesis_id,
                genesis_hash=self.genesis.genesis_hash,
                fee_sink=self.genesis.fee_sink,
                allocations=self.genesis.allocations,
            )
        )
        self.journal = store.Journal(self.data_dir, fsync=fsync)
        self.replayed = self._replay()
        self.journal.open()

    def _replay(self) -> int:
        count = 0
        for kind, rnd, body in self.journal.replay():
            if kind == "g":
                # Signatures were verified when the group was accepted.
                group = prepare_group(codec.decode_signed_txns(body), verify=False)
                self.ledger.submit(group, expected_round=rnd)
            elif kind == "a":
                self.ledger.advance(rnd - self.ledger.last_round)
            count += 1
        return count

    def submit(self, body: bytes) -> str:
        """Accept a POSTed group or raise TxnRejected / codec.DecodeError."""
        group = prepare_group(codec.decode_signed_txns(body))
        self.ledger.submit(group, journal=lambda rnd: self.journal.append("g", rnd, body))
        return group[0].txid

    def advance(self, rounds: int) -> int:
        return self.ledger.advance(rounds, journal=lambda rnd: self.journal.append("a", rnd))

    def close(self) -> None:
        self.journal.close()


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _parse_address(text: str) -> bytes:
    try:
        return codec.decode_address(text)
    except ValueError:
        raise ApiError(400, "failed to parse the address") from None


def _parse_uint(text: str, what: str) -> int:
    if not text.isdigit():
        raise ApiError(400, f"invalid {what}: {text}")
    return int(text)


ROUTES: list[tuple[str, re.Pattern, str]] = [
    ("GET", re.compile(r"/health"), "health"),
    ("GET", re.compile(r"/versions"), "versions"),
    ("GET", re.compile(r"/v2/status"), "status"),
    ("GET", re.compile(r"/v2/status/wait-for-block-after/([^/]+)"), "wait_for_block"),
    ("GET", re.compile(r"/v2/transactions/params"), "params"),
    ("POST", re.compile(r"/v2/transactions"), "send"),
    ("GET", re.compile(r"/v2/transactions/pending/([^/]+)"), "pending"),
    ("GET", re.compile(r"/v2/accounts/([^/]+)"), "account"),
    ("GET", re.compile(r"/v2/accounts/([^/]+)/assets/([^/]+)"), "account_asset"),
    ("GET", re.compile(r"/v2/assets/([^/]+)"), "asset"),
    ("POST", re.compile(r"/devnet/advance"), "advance"),
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "devnet"
    sys_version = ""
    devnet: Devnet  # set on the subclass built by make_server
    token: str
    _headers_buffer: list[bytes]  # BaseHTTPRequestHandler's pending header lines (undeclared in typeshed)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    # -- plumbing ------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        body = b""
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                raise ApiError(413, "request body too large")
            body = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            path = url.path.rstrip("/") or "/"
            if path not in NO_AUTH_PATHS and not self._authorized():
                raise ApiError(401, "Invalid API Token")
            for route_method, pattern, name in ROUTES:
                match = pattern.fullmatch(path)
                if match and route_method == method:
                    query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                    getattr(self, f"route_{name}")(*match.groups(), query=query, body=body)
                    return
            raise ApiError(501, "devnet: not implemented")
        except ApiError as exc:
            self._json(exc.status, {"message": exc.message})
        except Exception:  # keep the server up and tell the client
            log.exception("internal error on %s %s", method, self.path)
            self._json(500, {"message": "devnet: internal error"})

    def _authorized(self) -> bool:
        expected = self.token.encode()
        candidates = [self.headers.get("X-Algo-API-Token")]
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            candidates.append(auth[len("Bearer ") :])
        return any(c is not None and hmac.compare_digest(c.encode(), expected) for c in candidates)

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        # Headers and body in one send: two small writes on a keep-alive connection
        # stall ~40 ms on Nagle + delayed ACK.
        self._headers_buffer.append(b"\r\n" + payload)
        self.flush_headers()

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj, separators=(",", ":")).encode(), "application/json")

    # -- routes --------------------------------------------------------------------

    def route_health(self, *, query, body):
        self._json(200, None)

    def route_versions(self, *, query, body):
        genesis = self.devnet.genesis
        self._json(
            200,
            {
                "build": {**VERSION, "branch": "devnet", "channel": "devnet", "commit_hash": ""},
                "genesis_hash_b64": codec.b64(genesis.genesis_hash),
                "genesis_id": genesis.genesis_id,
                "versions": ["v2"],
            },
        )

    def route_status(self, *, query, body):
        self._json(200, self.devnet.ledger.status())

    def route_wait_for_block(self, rnd, *, query, body):
        rnd = _parse_uint(rnd, "round")
        self._json(200, self.devnet.ledger.wait_for_round_after(rnd, WAIT_FOR_BLOCK_SECONDS))

    def route_params(self, *, query, body):
        self._json(200, self.devnet.ledger.suggested_params())

    def route_send(self, *, query, body):
        try:
            txid = self.devnet.submit(body)
        except (TxnRejected, codec.DecodeError) as exc:
            raise ApiError(400, str(exc)) from None
        self._json(200, {"txId": txid})

    def route_pending(self, txid, *, query, body):
        info = self.devnet.ledger.pending_info(txid)
        if info is None:
            raise ApiError(
                404, "could not find the transaction in the transaction pool or in the last 1000 confirmed rounds"
            )
        if query.get("format") == "msgpack":
            confirmed = self.devnet.ledger.confirmed[txid]
            raw = {**info, "txn": confirmed.stxn}
            self._send(200, msgpack.packb(raw, use_bin_type=True), "application/msgpack")
            return
        self._json(200, info)

    def route_account(self, address, *, query, body):
        self._json(200, self.devnet.ledger.account_info(_parse_address(address)))

    def route_account_asset(self, address, asset_id, *, query, body):
        info = self.devnet.ledger.account_asset_info(_parse_address(address), _parse_uint(asset_id, "asset id"))
        if info is None:
            raise ApiError(404, "account asset info not found")
        self._json(200, info)

    def route_asset(self, asset_id, *, query, body):
        info = self.devnet.ledger.asset_info(_parse_uint(asset_id, "asset id"))
        if info is None:
            raise ApiError(404, "asset does not exist")
        self._json(200, info)

    def route_advance(self, *, query, body):
        rounds = _parse_uint(query.get("rounds", "1"), "rounds")
        if not 1 <= rounds <= MAX_ADVANCE:
            raise ApiError(400, f"rounds must be between 1 and {MAX_ADVANCE}")
        self._json(200, {"last-round": self.devnet.advance(rounds)})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def make_server(devnet: Devnet, host: str, port: int, token: str) -> Server:
    handler = type("BoundHandler", (Handler,), {"devnet": devnet, "token": token})
    return Server((host, port), handler)
