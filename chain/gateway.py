"""The only module that talks to algod. Wraps py-algorand-sdk's AlgodClient with
timeouts and turns every failure into one of a few exceptions the outbox understands:

- `AlgodRetryable`: the network, a timeout, a 5xx, a full pool: try again later.
- `AlgodRejected` (permanent): algod evaluated the transaction and said no (overspend,
  frozen, not opted in, bad signature, below min balance ...). Retrying cannot help.
- `AlreadyInLedger` / `TxnDead`: the two rejections the outbox turns into decisions.

Every exception keeps algod's own message (`.message`), which staff see on the row.
"""

from __future__ import annotations

import base64
import http.client
import socket
import time
import urllib.error
from dataclasses import dataclass

from algosdk import error as algo_error
from algosdk import transaction as algo_txn
from algosdk.v2client.algod import AlgodClient
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEVNET_GENESIS_PREFIX = "rwa-devnet"

# Rejections that clear up by themselves on a real network.
_RETRYABLE_REJECTIONS = ("transaction pool is full", "txpool is full", "pool is full", "fee too small",
                         "below the minimum transaction fee")


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
    if isinstance(exc, (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError,
                        http.client.HTTPException, OSError)):
        reason = getattr(exc, "reason", exc)
        return AlgodRetryable(f"algod unreachable: {type(exc).__name__}: {reason}")
    if isinstance(exc, algo_error.AlgodResponseError):
        return AlgodRetryable(str(exc))
    return AlgodRejected(f"{type(exc).__name__}: {exc}")


class _TimeoutClient(AlgodClient):
    """AlgodClient whose requests all use our timeout instead of urllib's 30 s."""

    def algod_request(self, *args, **kwargs):
        kwargs.setdefault("timeout", settings.ALGOD_TIMEOUT_SECONDS)
        return super().algod_request(*args, **kwargs)


_clients: dict[tuple[str, str], AlgodClient] = {}
_checked_genesis: set[tuple[str, str]] = set()


def get_client() -> AlgodClient:
    if not settings.ALGOD_URL:
        raise NotConfigured("ALGOD_URL is not set")
    key = (settings.ALGOD_URL, settings.ALGOD_TOKEN)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = _TimeoutClient(settings.ALGOD_TOKEN, settings.ALGOD_URL.rstrip("/"))
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


def versions() -> dict:
    return _call(get_client().versions)


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
    return algo_txn.SuggestedParams(cached.fee, cached.first, cached.last, cached.gh, cached.gen,
                                    flat_fee=True, min_fee=cached.min_fee)


def forget_suggested_params() -> None:
    """Drop the cached params (after "txn dead": the cached first-valid is too old)."""
    _params_cache.params = None


def account_info(address: str) -> dict:
    return _call(get_client().account_info, address)


def asset_amount(address: str, asset_id: int) -> int | None:
    """Units of `asset_id` held by `address`, None when not opted in."""
    for holding in account_info(address).get("assets", []):
        if holding["asset-id"] == asset_id:
            return holding["amount"]
    return None


def asset_info(asset_id: int) -> dict:
    """GET /v2/assets/{id}: {"index", "params": {...}} (read-only; for verification pages)."""
    return _call(get_client().asset_info, asset_id)


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
    start = current = None
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
