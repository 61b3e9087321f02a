"""Key custody: Algorand secret keys sealed with envelope encryption.

Each account's secret key is encrypted with its own random 256-bit data key (AES-GCM,
the address as associated data, so a ciphertext cannot be swapped onto another row).
The data key is wrapped by a master key that a backend holds; the row keeps only the
wrapped data key and the master key's id. Rotating the master key re-wraps data keys
(`manage.py rotate_keys`) without touching the key ciphertext, so it needs no downtime:
old and new master keys are both configured until every row carries the new id.

The backend is pluggable (settings.CUSTODY_BACKEND): `LocalMasterKeyBackend` reads master
keys from the environment or a file; a KMS/HSM backend implements the same
`wrap`/`unwrap` pair (e.g. AWS KMS Encrypt/Decrypt, or GenerateDataKey) and nothing else
changes.

Decryption happens only in `sign_group`, and only inside `signing_session()`, which the
Celery worker's outbox processing opens. A web request never opens one, so a view that
tried to sign would fail loudly. Plaintext keys are never logged and never returned.
"""

from __future__ import annotations

import base64
import contextvars
import functools
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from algosdk import account as algo_account
from algosdk import constants as algo_constants
from algosdk import encoding as algo_encoding
from algosdk import transaction as algo_txn
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from nacl.signing import SigningKey

NONCE_BYTES = 12
DATA_KEY_BYTES = 32


class CustodyError(Exception):
    """Keys cannot be used: missing or wrong master key, tampered record, or signing
    attempted outside the worker's signing session. Never carries key material."""


@dataclass(frozen=True)
class SealedKey:
    """What the database stores for one secret key. Holds no usable secret."""

    key_id: str
    wrapped_data_key: bytes
    wrap_nonce: bytes
    key_ciphertext: bytes
    key_nonce: bytes

    def __repr__(self) -> str:  # keep bytes out of tracebacks and logs
        return f"SealedKey(key_id={self.key_id!r})"


class KeyBackend(Protocol):
    """Wraps and unwraps data keys with a master key the backend holds."""

    def active_key_id(self) -> str: ...

    def wrap(self, data_key: bytes, *, context: bytes) -> tuple[str, bytes, bytes]:
        """Returns (key_id, wrapped_data_key, nonce)."""

    def unwrap(self, *, key_id: str, wrapped: bytes, nonce: bytes, context: bytes) -> bytes: ...


def _parse_master_keys(text: str) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for entry in text.replace("\n", ";").split(";"):
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        key_id, sep, b64 = entry.partition(":")
        if not sep:
            raise ImproperlyConfigured("custody: master key entries look like 'key-id:base64'")
        try:
            raw = base64.b64decode(b64.strip(), validate=True)
        except ValueError:
            raise ImproperlyConfigured(f"custody: master key {key_id!r} is not valid base64") from None
        if len(raw) != DATA_KEY_BYTES:
            raise ImproperlyConfigured(f"custody: master key {key_id!r} must be 32 bytes, got {len(raw)}")
        keys[key_id.strip()] = raw
    return keys


class LocalMasterKeyBackend:
    """Master keys from CUSTODY_MASTER_KEYS (environment) and/or CUSTODY_MASTER_KEY_FILE.
    The active key (CUSTODY_ACTIVE_KEY_ID, default the last listed) wraps new data keys;
    every listed key can unwrap."""

    def __init__(self, keys_text: str, key_file: str = "", active_key_id: str = ""):
        text = keys_text or ""
        if key_file and Path(key_file).exists():
            text += ";" + Path(key_file).read_text()
        self._keys = _parse_master_keys(text)
        if not self._keys:
            raise CustodyError("custody: no master key configured (set CUSTODY_MASTER_KEYS or CUSTODY_MASTER_KEY_FILE)")
        self._active = active_key_id or list(self._keys)[-1]
        if self._active not in self._keys:
            raise CustodyError(f"custody: active master key id {self._active!r} is not configured")

    @classmethod
    def from_settings(cls) -> LocalMasterKeyBackend:
        return cls(settings.CUSTODY_MASTER_KEYS, settings.CUSTODY_MASTER_KEY_FILE, settings.CUSTODY_ACTIVE_KEY_ID)

    def active_key_id(self) -> str:
        return self._active

    def wrap(self, data_key: bytes, *, context: bytes) -> tuple[str, bytes, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        wrapped = AESGCM(self._keys[self._active]).encrypt(nonce, data_key, self._aad(self._active, context))
        return self._active, wrapped, nonce

    def unwrap(self, *, key_id: str, wrapped: bytes, nonce: bytes, context: bytes) -> bytes:
        master = self._keys.get(key_id)
        if master is None:
            raise CustodyError(f"custody: master key id {key_id!r} is not configured on this process")
        try:
            return AESGCM(master).decrypt(nonce, wrapped, self._aad(key_id, context))
        except InvalidTag:
            raise CustodyError(
                f"custody: master key {key_id!r} cannot unwrap this record's data key "
                "(wrong master key for this id, or the record was tampered with); nothing was signed"
            ) from None

    @staticmethod
    def _aad(key_id: str, context: bytes) -> bytes:
        return b"rwa-custody-v1|" + key_id.encode() + b"|" + context


@functools.cache
def _backend_for(dotted: str, keys_text: str, key_file: str, active: str) -> KeyBackend:
    cls = import_string(dotted)
    return cls(keys_text, key_file, active) if cls is LocalMasterKeyBackend else cls.from_settings()


def get_backend() -> KeyBackend:
    # Cached per configuration, so tests that override settings get a fresh backend.
    return _backend_for(
        settings.CUSTODY_BACKEND,
        settings.CUSTODY_MASTER_KEYS,
        settings.CUSTODY_MASTER_KEY_FILE,
        settings.CUSTODY_ACTIVE_KEY_ID,
    )


# -- sealing ---------------------------------------------------------------------------


def seal_secret_key(*, address: str, private_key: str, backend: KeyBackend | None = None) -> SealedKey:
    """Encrypt an algosdk private key (base64 of seed+public key) for `address`."""
    backend = backend or get_backend()
    raw = base64.b64decode(private_key)
    if algo_account.address_from_private_key(private_key) != address:
        raise CustodyError("custody: the secret key does not belong to this address")
    data_key = AESGCM.generate_key(bit_length=256)
    key_nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(key_nonce, raw, address.encode())
    key_id, wrapped, wrap_nonce = backend.wrap(data_key, context=address.encode())
    return SealedKey(
        key_id=key_id, wrapped_data_key=wrapped, wrap_nonce=wrap_nonce, key_ciphertext=ciphertext, key_nonce=key_nonce
    )


def rewrap(*, address: str, sealed: SealedKey, backend: KeyBackend | None = None) -> SealedKey:
    """Re-wrap the data key under the active master key. The key ciphertext is unchanged
    and the secret key itself is never decrypted."""
    backend = backend or get_backend()
    data_key = backend.unwrap(
        key_id=sealed.key_id, wrapped=sealed.wrapped_data_key, nonce=sealed.wrap_nonce, context=address.encode()
    )
    key_id, wrapped, wrap_nonce = backend.wrap(data_key, context=address.encode())
    return SealedKey(
        key_id=key_id,
        wrapped_data_key=wrapped,
        wrap_nonce=wrap_nonce,
        key_ciphertext=sealed.key_ciphertext,
        key_nonce=sealed.key_nonce,
    )


def _open(address: str, sealed: SealedKey, backend: KeyBackend) -> str:
    data_key = backend.unwrap(
        key_id=sealed.key_id, wrapped=sealed.wrapped_data_key, nonce=sealed.wrap_nonce, context=address.encode()
    )
    try:
        raw = AESGCM(data_key).decrypt(sealed.key_nonce, sealed.key_ciphertext, address.encode())
    except InvalidTag:
        raise CustodyError(
            f"custody: the key record of {address} does not decrypt (tampered?); nothing was signed"
        ) from None
    return base64.b64encode(raw).decode()


# -- signing ---------------------------------------------------------------------------

_signing = contextvars.ContextVar("chain_custody_signing", default=False)


@contextmanager
def signing_session() -> Iterator[None]:
    """Opened by the worker around outbox processing; signing is refused outside it."""
    token = _signing.set(True)
    try:
        yield
    finally:
        _signing.reset(token)


# A signed transaction as algod takes it, in canonical msgpack (keys sorted): a map of
# "sig" (64 bytes, bin 8) and "txn" (the transaction's own canonical encoding). Custody
# never signs for another address (no "sgnr"), so these are the only two keys.
_SIGNED_HEAD = b"\x82\xa3sig\xc4\x40"
_TXN_KEY = b"\xa3txn"


def sign_group(
    txns: Sequence[tuple[algo_txn.Transaction, SealedKey, str]], backend: KeyBackend | None = None
) -> list[tuple[bytes, str]]:
    """Sign each (transaction, sealed key, address) in order: each as (the signed
    transaction's bytes, its txid), byte for byte what algosdk's
    `msgpack_encode(sign_transaction_with_signer(txn, AccountTransactionSigner(key)))`
    and `txn.get_txid()` give, with each transaction encoded once instead of four times
    and each key opened once per group (a batch signs 16 transactions with two keys).
    Every key is unwrapped first, so a custody failure signs nothing at all. The plaintext
    keys live only in this frame."""
    if not _signing.get():
        raise CustodyError("custody: signing is only allowed inside the worker's signing session")
    backend = backend or get_backend()
    keys: dict[str, SigningKey] = {}
    for txn, sealed, address in txns:
        if txn.sender != address:
            raise CustodyError("custody: a transaction's sender does not match the signing account")
        if address not in keys:
            key = SigningKey(base64.b64decode(_open(address, sealed, backend))[: algo_constants.key_len_bytes])
            if bytes(key.verify_key) != algo_encoding.decode_address(address):
                raise CustodyError(f"custody: the key record of {address} holds another account's key")
            keys[address] = key
    try:
        signed = []
        for txn, _, address in txns:
            body = base64.b64decode(algo_encoding.msgpack_encode(txn))
            message = algo_constants.txid_prefix + body
            signature = keys[address].sign(message).signature
            txid = base64.b32encode(algo_encoding.checksum(message)).decode().rstrip("=")
            signed.append((_SIGNED_HEAD + signature + _TXN_KEY + body, txid))
        return signed
    finally:
        del keys
