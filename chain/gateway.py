"""The only module that talks to algod. Wraps py-algorand-sdk's AlgodClient with
timeouts and keep-alive connections, and turns every failure into one of a few
exceptions the outbox understands. The outbox worker, bootstrap and the chain admin use
it, and so do other apps' read-only checks (`asset_params`, `asset_amount`,
`asset_holdings`, `algod_status`), which catch `AlgodError`; nothing else opens a
connection to algod.

- `AlgodRetryable`: the network, a timeout, a 5xx, a full pool: try again later.
- `AlgodRejected` (permanent): algod evaluated the transaction and said no (overspend,
  frozen, not opted in, bad signature, below min balance ...). Retrying cannot help.
- `AlreadyInLedger` / `TxnDead`: the two rejections the outbox turns into decisions.

Every exception keeps algod's own message (`.message`), which staff see on the row.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import threading
import time
import urllib.error
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from algosdk import constants as algo_constants
from algosdk import error as algo_error
from algosdk import transaction as algo_txn
from algosdk.v2client.algod import AlgodClient
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEVNET_GENESIS_PREFIX = "rwa-devnet"

# Rejections that clear up by themselves on a real network.
_RETRYABLE_REJECTIONS = (
    "transaction pool is full",
    "txpool is full",
    "pool is full",
    "fee too small",
    "below the minimum transaction fee",
)


class AlgodError(Exception):
    retryable = False

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status


class AlgodRetryable(AlgodError):
    retryable = True


class AlgodRejected(AlgodError):
    """Permanent: algod refused the transaction for a reason retrying will not fix."""


class AlreadyInLedger(AlgodError):
    pass


class TxnDead(AlgodError):
    pass


class NotConfigured(AlgodError):
    pass


def classify(exc: BaseException) -> AlgodError:
    """Map an exception raised by AlgodClient to our taxonomy."""
    if isinstance(exc, AlgodError):
        return exc
    if isinstance(exc, algo_error.AlgodHTTPError):
        message, code = str(exc), exc.code
        lowered = message.lower()
        if code is None or code >= 500 or code in (408, 429):
            return AlgodRetryable(message, code)
        if code in (401, 403):
            # The node refused our token: a deployment problem, not the transaction's.
            return AlgodRetryable(f"algod refused the API token: {message}", code)
        if "already in ledger" in lowered:
            return AlreadyInLedger(message, code)
        if "txn dead" in lowered:
            return TxnDead(message, code)
        if any(text in lowered for text in _RETRYABLE_REJECTIONS):
            return AlgodRetryable(message, code)
        return AlgodRejected(message, code)
    if isinstance(
        exc, (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, http.client.HTTPException, OSError)
    ):
        reason = getattr(exc, "reason", exc)
        return AlgodRetryable(f"algod unreachable: {type(exc).__name__}: {reason}")
    if isinstance(exc, algo_error.AlgodResponseError):
        return AlgodRetryable(str(exc))
    return AlgodRejected(f"{type(exc).__name__}: {exc}")


class KeepAliveAlgodClient(AlgodClient):
    """AlgodClient over one persistent HTTP/1.1 connection per thread, with our timeout.

    algosdk's own client goes through urllib, which opens a new TCP connection for every
    request (and makes the node start a handler for each): about half the cost of a
    settlement's three calls. Errors look exactly like algosdk's: a non-2xx answer raises
    `AlgodHTTPError(message, code, data)` from the JSON body, a bad JSON body
    `AlgodResponseError`, the network `OSError`/`http.client.HTTPException`.

    A request that finds its idle connection closed by the node (keep-alive timeout, node
    restart) is sent once more on a new connection; that is safe for every algod call we
    make: reads, and POST /v2/transactions, where the same signed bytes can apply at most
    once (a second copy is "already in ledger")."""

    def __init__(self, algod_token: str, algod_address: str, *, timeout: float):
        super().__init__(algod_token, algod_address)
        url = urlsplit(algod_address)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ImproperlyConfigured(f"ALGOD_URL must be an http(s) URL, got {algod_address!r}")
        self._connection_cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        self._netloc = url.netloc.rpartition("@")[2]
        self._base_path = url.path.rstrip("/")
        self._timeout = timeout
        self._local = threading.local()

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection (and whether it was used before). A forked child never
        shares its parent's socket."""
        conn, pid = getattr(self._local, "conn", None), getattr(self._local, "pid", None)
        if conn is not None and pid == os.getpid():
            return conn, True
        conn = self._connection_cls(self._netloc, timeout=self._timeout)
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn, False

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()

    def algod_request(self, method, requrl, params=None, data=None, headers=None, response_format="json", timeout=None):
        header = {"User-Agent": "py-algorand-sdk"}
        header.update(self.headers or {})
        header.update(headers or {})
        if requrl not in algo_constants.no_auth:
            header[algo_constants.algod_auth_header] = self.algod_token
        if requrl not in algo_constants.unversioned_paths:
            requrl = "/v2" + requrl
        if params:
            requrl += "?" + urlencode(params)
        status, reason, body = self._exchange(method, self._base_path + requrl, data, header, timeout)
        if not 200 <= status < 300:
            text = body.decode("utf-8", errors="replace")
            try:
                decoded = json.loads(text)
                message, extra = decoded["message"], decoded.get("data")
            except (ValueError, TypeError, KeyError):
                message, extra = f"HTTP Error {status}: {reason}", None
            raise algo_error.AlgodHTTPError(message, status, extra)
        if response_format != "json":
            return body
        if status == 200 and not body:
            return {}
        try:
            return json.loads(body)
        except ValueError as exc:
            raise algo_error.AlgodResponseError("Failed to parse JSON response from algod") from exc

    def _exchange(self, method, path, data, header, timeout) -> tuple[int, str, bytes]:
        while True:
            conn, reused = self._connection()
            try:
                conn.timeout = timeout or self._timeout
                if conn.sock is not None:
                    conn.sock.settimeout(conn.timeout)
                conn.request(method, path, body=data, headers=header)
                resp = conn.getresponse()
                body = resp.read()
            except (
                http.client.RemoteDisconnected,
                http.client.CannotSendRequest,
                ConnectionResetError,
                BrokenPipeError,
            ):
                self._drop()
                if reused:  # the node closed our idle connection: once more on a new one
                    continue
                raise
            except BaseException:
                self._drop()  # a half-read response would poison the next request
                raise
            if resp.will_close:
                self._drop()
            return resp.status, resp.reason, body


_clients: dict[tuple[str, str], AlgodClient] = {}
_checked_genesis: set[tuple[str, str]] = set()


def get_client() -> AlgodClient:
    if not settings.ALGOD_URL:
        raise NotConfigured("ALGOD_URL is not set")
    key = (settings.ALGOD_URL, settings.ALGOD_TOKEN)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = KeepAliveAlgodClient(
            settings.ALGOD_TOKEN, settings.ALGOD_URL.rstrip("/"), timeout=settings.ALGOD_TIMEOUT_SECONDS
        )
    return client


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # classify every failure of the HTTP layer
        raise classify(exc) from exc


def check_network(genesis_id: str) -> None:
    """Refuse a devnet genesis where settings do not allow one (production)."""
    if genesis_id.startswith(DEVNET_GENESIS_PREFIX) and not settings.ALGOD_ALLOW_DEVNET:
        raise ImproperlyConfigured(
            f"algod at {settings.ALGOD_URL} serves the development ledger ({genesis_id}); "
            "set ALGOD_ALLOW_DEVNET_IN_PRODUCTION=true only for a demo deployment"
        )


# -- reads -----------------------------------------------------------------------------


def algod_status() -> dict:
    """GET /v2/status (used by /readyz)."""
    return _call(get_client().status)


@dataclass
class _ParamsCache:
    params: algo_txn.SuggestedParams | None = None
    fetched: float = 0.0


_params_cache = _ParamsCache()
PARAMS_TTL_SECONDS = 2.0


def suggested_params(*, max_age: float = PARAMS_TTL_SECONDS) -> algo_txn.SuggestedParams:
    """Suggested params, reused for a couple of seconds: first-valid may lag the tip a
    little, which is harmless, and saves a round trip per settlement."""
    now = time.monotonic()
    cached = _params_cache.params
    if cached is None or now - _params_cache.fetched > max_age:
        cached = _call(get_client().suggested_params)
        key = (settings.ALGOD_URL, cached.gen)
        if key not in _checked_genesis:
            check_network(cached.gen)
            _checked_genesis.add(key)
        _params_cache.params, _params_cache.fetched = cached, now
    return algo_txn.SuggestedParams(
        cached.fee, cached.first, cached.last, cached.gh, cached.gen, flat_fee=True, min_fee=cached.min_fee
    )


def forget_suggested_params() -> None:
    """Drop the cached params (after "txn dead": the cached first-valid is too old)."""
    _params_cache.params = None


def account_info(address: str) -> dict:
    return _call(get_client().account_info, address)


def asset_holdings(address: str) -> dict[int, int]:
    """{asset id: units} for every asset `address` has opted in to."""
    return {h["asset-id"]: int(h["amount"]) for h in account_info(address).get("assets", []) or []}


def asset_amount(address: str, asset_id: int) -> int | None:
    """Units of `asset_id` held by `address`, None when not opted in."""
    return asset_holdings(address).get(asset_id)


@dataclass(frozen=True)
class AssetParams:
    """An ASA's parameters as algod reports them, out of algod's wire format. A field
    algod leaves out is None (a role address, total, decimals) or empty."""

    total: int | None
    decimals: int | None
    default_frozen: bool
    url: str
    metadata_hash: str  # hex; "" when the ASA has none
    creator: str | None
    reserve: str | None
    manager: str | None
    freeze: str | None
    clawback: str | None


def asset_params(asset_id: int) -> AssetParams:
    """GET /v2/assets/{id}, read-only (verification pages)."""
    params = _call(get_client().asset_info, asset_id)["params"]
    digest = params.get("metadata-hash")
    return AssetParams(
        total=params.get("total"),
        decimals=params.get("decimals"),
        default_frozen=params.get("default-frozen") is True,
        url=params.get("url", ""),
        metadata_hash=base64.b64decode(digest).hex() if digest else "",
        creator=params.get("creator"),
        reserve=params.get("reserve"),
        manager=params.get("manager"),
        freeze=params.get("freeze"),
        clawback=params.get("clawback"),
    )


def pending_info(txid: str) -> dict | None:
    """Pending/confirmed info for txid; None when the node does not know it."""
    try:
        return _call(get_client().pending_transaction_info, txid)
    except AlgodError as exc:
        if exc.status == 404:
            return None
        raise


def last_round() -> int:
    return int(algod_status()["last-round"])


# -- writes ----------------------------------------------------------------------------


def submit(signed_bytes: bytes) -> str:
    """POST the concatenated signed transactions; returns the first txid."""
    return _call(get_client().send_raw_transaction, base64.b64encode(signed_bytes))


def wait_for_confirmation(txid: str, *, rounds: int) -> dict | None:
    """Confirmed pending info, or None when not confirmed within `rounds` rounds.
    A pool error (the node dropped it) is raised as a rejection."""
    client = get_client()
    start: int | None = None
    current = 0  # set with start, from the node's last round
    while True:
        info = pending_info(txid)
        if info:
            if info.get("confirmed-round"):
                return info
            if info.get("pool-error"):
                raise AlgodRejected(info["pool-error"])
        if start is None:  # dev-mode nodes confirm on submit: ask for the round only when waiting
            start = current = last_round()
        if current >= start + rounds:
            return None
        _call(client.status_after_block, current)
        current += 1
