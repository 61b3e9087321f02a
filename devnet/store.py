"""Persistence: genesis file and an append-only journal of accepted groups.

Journal record: ``MAGIC | u32 length | u32 crc32(payload) | payload`` where payload is
msgpack ``[kind, round, data]``:

* ``"g"``: ``data`` is the raw POST body of an accepted group, committed as ``round``;
* ``"a"``: empty blocks were closed by the admin route up to ``round``.

Each record is written with a single ``os.write`` on an ``O_APPEND`` descriptor before
the HTTP response, so it is in the page cache and survives ``kill -9``; ``fsync=True``
also survives power loss. A torn or corrupt tail (crash mid-write) fails the length or
checksum test, is reported and cut off on the next start: a group is stored
completely or not at all.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgpack
from algosdk import account, mnemonic

from devnet import codec

log = logging.getLogger("devnet.store")

MAGIC = b"DVJ1"
HEADER = struct.Struct(">4sII")
GENESIS_FILE = "genesis.json"
JOURNAL_FILE = "journal.bin"
GENESIS_ID = "rwa-devnet-v1"
DISPENSER_MICROALGOS = 10**15  # a billion Algos
FEE_SINK_MICROALGOS = 100_000


@dataclass(frozen=True)
class Genesis:
    genesis_id: str
    genesis_hash: bytes
    fee_sink: bytes
    dispenser: bytes
    dispenser_mnemonic: str
    allocations: dict[bytes, int]


def load_or_create_genesis(data_dir: Path) -> Genesis:
    """Read DIR/genesis.json, creating it (random seed, new dispenser) on first start."""
    path = data_dir / GENESIS_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        seed = secrets.token_bytes(32)
        private_key, address = account.generate_account()
        fee_sink = codec.checksum(b"devnet-fee-sink" + seed)
        doc = {
            "genesis_id": GENESIS_ID,
            "genesis_hash": codec.b64(codec.checksum(b"devnet-genesis" + seed)),
            "seed": seed.hex(),
            "fee_sink": codec.encode_address(fee_sink),
            "dispenser": {
                "address": address,
                "mnemonic": mnemonic.from_private_key(private_key),
            },
            "allocations": {
                address: DISPENSER_MICROALGOS,
                codec.encode_address(fee_sink): FEE_SINK_MICROALGOS,
            },
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.chmod(tmp, 0o600)  # holds the dispenser mnemonic
        os.replace(tmp, path)
    doc = json.loads(path.read_text())
    return Genesis(
        genesis_id=doc["genesis_id"],
        genesis_hash=base64.b64decode(doc["genesis_hash"]),
        fee_sink=codec.decode_address(doc["fee_sink"]),
        dispenser=codec.decode_address(doc["dispenser"]["address"]),
        dispenser_mnemonic=doc["dispenser"]["mnemonic"],
        allocations={codec.decode_address(a): int(v) for a, v in doc["allocations"].items()},
    )


def encode_record(kind: str, rnd: int, data: bytes) -> bytes:
    payload = msgpack.packb([kind, rnd, data], use_bin_type=True)
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


class Journal:
    def __init__(self, data_dir: Path, *, fsync: bool = False):
        self.path = data_dir / JOURNAL_FILE
        self.fsync = fsync
        self.fd: int | None = None

    def replay(self) -> Iterator[tuple[str, int, bytes]]:
        """Yield intact records in order; cut off a torn tail. Call before ``open``."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        pos, good_end = 0, 0
        while pos < len(data):
            header = data[pos : pos + HEADER.size]
            if len(header) < HEADER.size:
                break
            magic, length, crc = HEADER.unpack(header)
            payload = data[pos + HEADER.size : pos + HEADER.size + length]
            if magic != MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
                break
            kind, rnd, body = msgpack.unpackb(payload, raw=False)
            yield kind, rnd, body
            pos += HEADER.size + length
            good_end = pos
        if good_end < len(data):
            log.warning(
                "journal %s: dropping %d bytes of torn or corrupt tail at offset %d",
                self.path,
                len(data) - good_end,
                good_end,
            )
            with open(self.path, "r+b") as fh:
                fh.truncate(good_end)
                os.fsync(fh.fileno())

    def open(self) -> None:
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def append(self, kind: str, rnd: int, data: bytes = b"") -> None:
        fd = self.fd
        assert fd is not None, "journal append before open()"
        record = encode_record(kind, rnd, data)
        end = os.lseek(fd, 0, os.SEEK_END)
        try:
            written = os.write(fd, record)
            if written != len(record):
                raise OSError(f"short journal write ({written}/{len(record)} bytes)")
        except OSError:
            # Cut the partial record off so later records are not hidden behind a torn
            # one; the caller refuses the group instead of acknowledging it.
            os.ftruncate(fd, end)
            raise
        if self.fsync:
            os.fsync(fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
