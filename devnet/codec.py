"""Wire format: msgpack decoding of signed transactions, canonical re-encoding,
transaction ids, group ids and the JSON shapes algod uses for them.

Canonical encoding follows py-algorand-sdk's ``msgpack_encode``: keys sorted,
zero/empty values dropped (nested maps are sorted recursively). Algod re-encodes
the decoded transaction the same way before hashing, so a txid computed here
equals ``Transaction.get_txid()``.
"""

from __future__ import annotations

import base64
import hashlib
import io

import msgpack

U64_MAX = 2**64 - 1


class DecodeError(ValueError):
    """The request body is not a sequence of well-typed signed transactions."""


def checksum(data: bytes) -> bytes:
    return hashlib.new("sha512_256", data).digest()


def encode_address(pk: bytes) -> str:
    check = checksum(pk)[-4:]
    return base64.b32encode(pk + check).decode().rstrip("=")


def decode_address(addr: str) -> bytes:
    if not isinstance(addr, str) or len(addr) != 58:
        raise ValueError(f"invalid address {addr!r}")
    try:
        raw = base64.b32decode(addr + "======")
    except Exception as exc:  # binascii.Error
        raise ValueError(f"invalid address {addr!r}") from exc
    pk, check = raw[:32], raw[32:]
    if checksum(pk)[-4:] != check:
        raise ValueError(f"invalid address checksum {addr!r}")
    return pk


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _canonical(d: dict) -> dict:
    out = {}
    for k in sorted(d):
        v = d[k]
        if isinstance(v, dict):
            out[k] = _canonical(v)
        elif v:
            out[k] = v
    return out


def canonical_bytes(d: dict) -> bytes:
    return msgpack.packb(_canonical(d), use_bin_type=True)


def raw_txid(txn: dict) -> bytes:
    return checksum(b"TX" + canonical_bytes(txn))


def txid_str(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=")


def group_id(txns: list[dict]) -> bytes:
    hashes = []
    for txn in txns:
        bare = {k: v for k, v in txn.items() if k != "grp"}
        hashes.append(raw_txid(bare))
    return checksum(b"TG" + canonical_bytes({"txlist": hashes}))


# --- field schema -----------------------------------------------------------------
# Kinds: u64, addr (32 bytes), b32 (exactly 32 bytes), bytes, str, bool.
TXN_FIELDS = {
    "type": "str",
    "snd": "addr",
    "fee": "u64",
    "fv": "u64",
    "lv": "u64",
    "gen": "str",
    "gh": "b32",
    "grp": "b32",
    "lx": "b32",
    "note": "bytes",
    "rekey": "addr",
    # pay
    "rcv": "addr",
    "amt": "u64",
    "close": "addr",
    # axfer
    "xaid": "u64",
    "aamt": "u64",
    "arcv": "addr",
    "asnd": "addr",
    "aclose": "addr",
    # afrz
    "faid": "u64",
    "fadd": "addr",
    "afrz": "bool",
    # acfg
    "caid": "u64",
    "apar": "apar",
}
APAR_FIELDS = {
    "t": "u64",
    "dc": "u64",
    "df": "bool",
    "un": "str",
    "an": "str",
    "au": "str",
    "am": "b32",
    "m": "addr",
    "r": "addr",
    "f": "addr",
    "c": "addr",
}
STXN_FIELDS = {"txn", "sig", "msig", "lsig", "sgnr"}
ADDRESS_KEYS = {"snd", "rcv", "close", "arcv", "asnd", "aclose", "fadd", "rekey", "sgnr", "m", "r", "f", "c"}


def _check(value, kind: str, name: str) -> None:
    if kind == "u64":
        ok = type(value) is int and 0 <= value <= U64_MAX
    elif kind in ("addr", "b32"):
        ok = isinstance(value, bytes) and len(value) == 32
    elif kind == "bytes":
        ok = isinstance(value, bytes)
    elif kind == "str":
        ok = isinstance(value, str)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "apar":
        ok = isinstance(value, dict)
        if ok:
            for k, v in value.items():
                sub = APAR_FIELDS.get(k)
                if sub is None:
                    raise DecodeError(f"msgpack decode error: unknown field apar.{k}")
                _check(v, sub, f"apar.{k}")
    else:  # pragma: no cover - schema typo
        raise AssertionError(kind)
    if not ok:
        raise DecodeError(f"msgpack decode error: field {name} has the wrong type")


def decode_signed_txns(body: bytes) -> list[dict]:
    """Split a POST body into signed-transaction maps and type-check every field."""
    try:
        items = list(msgpack.Unpacker(io.BytesIO(body), raw=False, strict_map_key=False, max_buffer_size=len(body) + 1))
    except Exception as exc:  # msgpack raises several unrelated exception types
        raise DecodeError(f"msgpack decode error: {exc}") from exc
    for stxn in items:
        if not isinstance(stxn, dict) or not isinstance(stxn.get("txn"), dict):
            raise DecodeError("msgpack decode error: expected a signed transaction map")
        for k in stxn:
            if k not in STXN_FIELDS:
                raise DecodeError(f"msgpack decode error: unknown field {k}")
        for k, v in stxn["txn"].items():
            kind = TXN_FIELDS.get(k)
            if kind is None:
                if isinstance(k, str) and k in UNSUPPORTED_FIELD_HINTS:
                    continue  # reported later as an unsupported transaction type
                raise DecodeError(f"msgpack decode error: unknown field {k}")
            _check(v, kind, k)
        if "sig" in stxn and not (isinstance(stxn["sig"], bytes) and len(stxn["sig"]) == 64):
            raise DecodeError("msgpack decode error: field sig has the wrong type")
        if "sgnr" in stxn:
            _check(stxn["sgnr"], "addr", "sgnr")
    return items


# Fields of transaction types devnet does not implement; tolerated while decoding so
# the caller gets the clear "not supported" message instead of a decode error.
UNSUPPORTED_FIELD_HINTS = {
    "apid",
    "apan",
    "apat",
    "apap",
    "apaa",
    "apsu",
    "apfa",
    "apas",
    "apgs",
    "apls",
    "apep",
    "apbx",
    "al",
    "votekey",
    "selkey",
    "sprfkey",
    "votefst",
    "votelst",
    "votekd",
    "nonpart",
    "sptype",
    "sp",
    "spmsg",
    "hb",
}


# --- JSON views ------------------------------------------------------------------


def _json_value(key: str, value):
    if isinstance(value, dict):
        return {k: _json_value(k, v) for k, v in value.items()}
    if isinstance(value, bytes):
        if key in ADDRESS_KEYS and len(value) == 32:
            return encode_address(value)
        return b64(value)
    return value


def signed_txn_json(stxn: dict) -> dict:
    """The signed transaction as algod renders it in pending-transaction responses."""
    return {k: _json_value(k, v) for k, v in stxn.items()}
