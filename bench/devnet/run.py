"""devnet throughput: confirmed transactions per second against the raw PyNaCl
signature-verification rate measured in the same run.

    .venv/bin/python -m bench.devnet.run [--threads 4] [--singles 3000] [--groups 300]

Transactions are signed before the clock starts, and each client thread keeps one
HTTP/1.1 connection open, so the figures measure the server: decode, txid, signature
check, ledger rules, journal write, HTTP. Every POST returns only after its group is
confirmed and journaled (dev mode), so tx/s here is confirmed tx/s.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import tempfile
import threading
import time
from pathlib import Path

from algosdk import account, encoding, transaction
from algosdk.atomic_transaction_composer import (
    AccountTransactionSigner,
    sign_transaction_with_signer,
)
from nacl.bindings import crypto_sign_open
from nacl.signing import SigningKey, VerifyKey

from devnet.testing import DevnetProcess, fund


def verify_rate(seconds: float = 1.5) -> dict[str, float]:
    """Single-thread ed25519 verifications per second on a typical signed payment."""
    key = SigningKey.generate()
    pk = bytes(key.verify_key)
    msg = b"TX" + os.urandom(180)
    sig = key.sign(msg).signature
    rates = {}
    for name, check in (
        ("VerifyKey.verify", lambda: VerifyKey(pk).verify(msg, sig)),
        ("crypto_sign_open", lambda: crypto_sign_open(sig + msg, pk)),
    ):
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 2:
            for _ in range(200):
                check()
            count += 200
        rates[name] = count / (time.perf_counter() - started)
    return rates


def wire(signed) -> bytes:
    return base64.b64decode(encoding.msgpack_encode(signed))


def presign(
    sender_sk: str, sender: str, receiver: str, sp, count: int, group_size: int, tag: bytes, threads: int
) -> list[bytes]:
    """Each POST is its own round, so one validity window (1000 rounds) cannot cover a
    long run: body g of a thread is sent around round first + g * threads, and gets a
    window centred there."""
    signer = AccountTransactionSigner(sender_sk)
    bodies = []
    for g in range(count):
        first = sp.first + max(0, g * threads - 400)
        window = transaction.SuggestedParams(1000, first, first + 1000, sp.gh, sp.gen, flat_fee=True)
        txns = [
            transaction.PaymentTxn(sender, window, receiver, 1, note=tag + g.to_bytes(4, "big") + bytes([i]))
            for i in range(group_size)
        ]
        if group_size > 1:
            transaction.assign_group_id(txns)
        bodies.append(b"".join(wire(sign_transaction_with_signer(t, signer)) for t in txns))
    return bodies


def drive(proc: DevnetProcess, per_thread: list[list[bytes]]) -> tuple[float, int]:
    """POST every body, one keep-alive connection per thread; returns (seconds, errors)."""
    errors = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(len(per_thread) + 1)

    def worker(bodies):
        conn = http.client.HTTPConnection(proc.host, proc.port, timeout=30)
        headers = {"X-Algo-API-Token": proc.token, "Content-Type": "application/x-binary"}
        barrier.wait()
        for body in bodies:
            conn.request("POST", "/v2/transactions", body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            if resp.status != 200:
                with lock:
                    errors[0] += 1
                    if errors[0] <= 3:
                        print("  error:", resp.status, json.loads(payload)["message"][:160])
        conn.close()

    threads = [threading.Thread(target=worker, args=(b,)) for b in per_thread]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - started, errors[0]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.devnet.run")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--singles", type=int, default=4000, help="single payments in total")
    parser.add_argument("--groups", type=int, default=800, help="16-txn groups in total")
    parser.add_argument("--fsync", action="store_true", help="run devnet with --fsync")
    args = parser.parse_args(argv)
    bench_started = time.perf_counter()

    rates = verify_rate()
    raw_rate = max(rates.values())
    with tempfile.TemporaryDirectory(prefix="devnet-bench-") as tmp:
        proc = DevnetProcess(Path(tmp) / "data", fsync=args.fsync).start()
        try:
            client = proc.client()
            _, receiver = account.generate_account()
            fund(client, proc.genesis, receiver, 1_000_000)
            senders = []
            for _ in range(args.threads):
                sk, addr = account.generate_account()
                fund(client, proc.genesis, addr, 10_000_000_000)
                senders.append((sk, addr))
            sp = client.suggested_params()
            per_single = max(1, args.singles // args.threads)
            per_group = max(1, args.groups // args.threads)
            t0 = time.perf_counter()
            singles = [presign(sk, a, receiver, sp, per_single, 1, b"s", args.threads) for sk, a in senders]
            single_s, single_err = drive(proc, singles)
            sp = client.suggested_params()
            groups = [presign(sk, a, receiver, sp, per_group, 16, b"g", args.threads) for sk, a in senders]
            sign_seconds = time.perf_counter() - t0 - single_s
            group_s, group_err = drive(proc, groups)
            single_tx = per_single * args.threads
            group_tx = per_group * args.threads * 16
        finally:
            proc.stop()

    single_rate = single_tx / single_s
    group_rate = group_tx / group_s
    print(
        f"devnet benchmark ({args.threads} client threads, {os.cpu_count()} CPUs, "
        f"fsync={'on' if args.fsync else 'off'})"
    )
    for name, rate in rates.items():
        print(f"  raw PyNaCl verify ({name:16s}): {rate:9.0f} sig/s (1 thread)")
    print(
        f"  single payments : {single_tx:6d} tx in {single_s:6.2f} s = {single_rate:8.0f} "
        f"tx/s  ratio {single_rate / raw_rate:.2f}  errors {single_err}"
    )
    print(
        f"  16-txn groups   : {group_tx:6d} tx in {group_s:6.2f} s = {group_rate:8.0f} "
        f"tx/s  ratio {group_rate / raw_rate:.2f}  errors {group_err}"
    )
    print(
        f"  (ratio = confirmed tx/s / best raw verify rate {raw_rate:.0f}/s; "
        f"pre-signing took {sign_seconds:.1f} s; whole run {time.perf_counter() - bench_started:.1f} s)"
    )


if __name__ == "__main__":
    main()
