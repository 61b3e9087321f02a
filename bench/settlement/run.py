"""Settlement throughput: transfers confirmed per second through the whole outbox path
(outbox row committed → Celery task over Redis → build, sign under custody, store,
submit → devnet → confirmation recorded), beside a direct py-algorand-sdk submit loop
sending the same group shape (fee payer + clawback transfer) to the same devnet in the
same run, with as many client threads as the outbox has task slots (workers ×
concurrency), so both sides get the same parallelism. Prints both rates, their ratio,
and commit-to-confirmed latency p50/p95.

    .venv/bin/python -m bench.settlement.run [--transfers 300] [--workers 1] [--pool threads] [--concurrency 4]

Needs PostgreSQL and Redis (127.0.0.1, as in the tests). Uses its own database
(rwa_bench_settlement, persistent connections as in production) and Redis db 9 (the
chain tests default to db 2/3); starts devnet and the workers itself, stops them at the
end. Bounded: gives up after --deadline seconds (default 100).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DB_NAME = "rwa_bench_settlement"
# Production keeps database connections for DB_CONN_MAX_AGE (60 s); the test settings
# the bench runs with would close them after every task.
DB_CONN_MAX_AGE = 60


def setup_env(broker: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}?conn_max_age={DB_CONN_MAX_AGE}",
        CELERY_BROKER_URL=broker,
        CACHE_KEY_PREFIX=f"bench-{uuid.uuid4().hex[:6]}",
        LOG_LEVEL="WARNING",
    )


def create_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transfers", type=int, default=300)
    parser.add_argument("--receivers", type=int, default=20)
    # One worker with 4 threads settled fastest on a 2-core machine (the tasks mostly wait
    # on PostgreSQL and algod); 3 solo workers left the producer and devnet short of CPU.
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes")
    parser.add_argument("--pool", default="threads", choices=["solo", "threads", "prefork"])
    parser.add_argument("--concurrency", type=int, default=4, help="task slots per worker (threads/prefork)")
    parser.add_argument(
        "--direct-threads",
        type=int,
        default=None,
        help="client threads of the direct loop (default: workers × concurrency)",
    )
    parser.add_argument("--deadline", type=float, default=100.0)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/9")
    args = parser.parse_args()
    started = time.monotonic()

    setup_env(args.broker)
    sys.path.insert(0, str(ROOT))
    create_database()

    from devnet.testing import DevnetProcess

    tmp = Path(tempfile.mkdtemp(prefix="bench-settlement-"))
    devnet = DevnetProcess(tmp / "devnet").start()
    os.environ.update(ALGOD_URL=devnet.url, ALGOD_TOKEN=devnet.token, DEVNET_DATA_DIR=str(devnet.data_dir))
    workers: list[subprocess.Popen] = []
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from config.celery import app

        app.control.purge()
        return run(args, devnet, workers, tmp, started)
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        devnet.stop()


def run(args, devnet, workers, tmp: Path, started: float) -> int:
    from algosdk import encoding
    from algosdk.atomic_transaction_composer import AccountTransactionSigner, sign_transaction_with_signer
    from django.db import transaction

    from accounts.models import User
    from chain import builder, custody, gateway, services
    from chain.bootstrap import chain_bootstrap
    from chain.models import ChainTransaction

    _, states = chain_bootstrap()
    roles = {s.account.role: s.account for s in states}
    treasury = roles["treasury"].address

    def wait_rows(rows_qs, n, label):
        deadline = started + args.deadline
        while time.monotonic() < deadline:
            done = rows_qs.filter(status__in=["confirmed", "failed"]).count()
            if done >= n:
                return
            time.sleep(0.05)
        raise SystemExit(f"bench: {label} did not finish within the deadline")

    def request(payload, tag):
        with transaction.atomic():
            return services.outbox_request(
                kind="asset_transfer" if "asset_id" in payload else "asset_create",
                payload=payload,
                idempotency_key=f"{tag}-{uuid.uuid4().hex}",
            )

    # Workers: real Celery processes on Redis, as in production.
    env = dict(os.environ)
    for i in range(args.workers):
        log = open(tmp / f"worker-{i}.log", "ab")
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--pool",
                    args.pool,
                    "--concurrency",
                    str(1 if args.pool == "solo" else args.concurrency),
                    "--loglevel",
                    "WARNING",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"bench{i}-{uuid.uuid4().hex[:4]}@%h",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )

    # Setup through the outbox too (not measured): mint, then opt every receiver in.
    create = request(
        {
            "asset_name": "Bench Building",
            "unit_name": "BENCH",
            "total": 10_000_000,
            "decimals": 0,
            "default_frozen": True,
            "url": "https://rwa.example/bench#arc3",
            "metadata_hash": "00" * 32,
        },
        "mint",
    )
    wait_rows(ChainTransaction.objects.filter(pk=create.pk), 1, "minting")
    create.refresh_from_db()
    assert create.status == "confirmed", create.last_error
    asset_id = create.asset_id
    receivers = [
        services.investor_account_get_or_create(user=User.objects.create_user(f"bench{i}@example.com"))
        for i in range(args.receivers)
    ]
    warm = [
        request({"asset_id": asset_id, "sender": treasury, "receiver": r.address, "amount": 1}, "warm")
        for r in receivers
    ]
    wait_rows(ChainTransaction.objects.filter(pk__in=[w.pk for w in warm]), len(warm), "opt-ins")

    # 1) Outbox + Celery + devnet.
    first_pk = ChainTransaction.objects.order_by("-pk").values_list("pk", flat=True).first()
    t0 = time.monotonic()
    for i in range(args.transfers):
        request(
            {"asset_id": asset_id, "sender": treasury, "receiver": receivers[i % len(receivers)].address, "amount": 1},
            "bench",
        )
    commit_seconds = time.monotonic() - t0
    measured = ChainTransaction.objects.filter(pk__gt=first_pk)
    wait_rows(measured, args.transfers, "outbox transfers")
    rows = list(measured.values("status", "created_at", "confirmed_at"))
    failed = sum(1 for r in rows if r["status"] != "confirmed")
    first_commit = min(r["created_at"] for r in rows)
    last_confirm = max(r["confirmed_at"] for r in rows if r["confirmed_at"])
    outbox_elapsed = (last_confirm - first_commit).total_seconds()
    outbox_rate = args.transfers / outbox_elapsed
    latencies = [(r["confirmed_at"] - r["created_at"]).total_seconds() * 1000 for r in rows if r["confirmed_at"]]

    # 2) Direct loop: same group shape (fee payer + clawback), signed with plaintext keys
    #    held in memory, submit, read confirmation. No database, no queue. As many client
    #    threads as the outbox has task slots, over the same keep-alive algod client.
    with custody.signing_session():
        keys = {
            role: custody._open(acct.address, acct.sealed_key, custody.get_backend())
            for role, acct in roles.items()
            if role in ("funding", "clawback")
        }
    signers = {role: AccountTransactionSigner(sk) for role, sk in keys.items()}
    slots = args.workers * (1 if args.pool == "solo" else args.concurrency)
    n_threads = args.direct_threads or slots
    budget = max(5.0, started + args.deadline - time.monotonic() - 5)
    counter = itertools.count()
    done: list[int] = []

    def direct_loop():
        while time.monotonic() - t0 < budget:
            i = next(counter)
            if i >= args.transfers:
                return
            group = builder.build_asset_transfer(
                sp=gateway.suggested_params(),
                validity_rounds=1000,
                lease=builder.lease_for(f"direct-{i}", 0),
                asset_id=asset_id,
                amount=1,
                sender=roles["treasury"],
                receiver=receivers[i % len(receivers)],
                funding=roles["funding"],
                clawback=roles["clawback"],
                receiver_info={"amount": 10**9, "assets": [{"asset-id": asset_id}]},
            )
            signed = [
                sign_transaction_with_signer(t, signers[a.role]) for t, a in zip(group.txns, group.signers, strict=True)
            ]
            blob = b"".join(base64.b64decode(encoding.msgpack_encode(s)) for s in signed)
            gateway.submit(blob)
            info = gateway.pending_info(group.main.get_txid())
            assert info and info.get("confirmed-round"), info
            done.append(i)

    t0 = time.monotonic()
    threads = [threading.Thread(target=direct_loop) for _ in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    n_direct = len(done)
    direct_rate = n_direct / (time.monotonic() - t0)

    print(
        f"\nSettlement benchmark (devnet {devnet.url}, {args.workers} Celery worker(s) × "
        f"{'1 (solo)' if args.pool == 'solo' else f'{args.concurrency} ({args.pool})'}, PostgreSQL, Redis)"
    )
    print(
        f"  outbox + Celery + devnet : {args.transfers} transfers in {outbox_elapsed:.2f} s = {outbox_rate:7.1f} confirmed/s"
        f"  ({failed} failed; {args.transfers / commit_seconds:.0f} outbox rows committed/s)"
    )
    print(
        f"  direct algosdk loop      : {n_direct} transfers = {direct_rate:7.1f} confirmed/s  ({n_threads} thread(s))"
    )
    print(f"  ratio outbox/direct      : {outbox_rate / direct_rate:.2f}  (aim: >= 0.5)")
    print(
        f"  commit-to-confirmed      : p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} ms"
    )
    print(f"  wall time                : {time.monotonic() - started:.1f} s")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
