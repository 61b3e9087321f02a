"""Settlement throughput: transfers confirmed per second through the whole outbox path
(outbox row committed → Celery task over Redis → build, sign under custody, store,
submit → devnet → confirmation recorded), beside a direct py-algorand-sdk submit loop
sending the same group shapes to the same devnet in the same run, with as many client
threads as the outbox has task slots (workers × concurrency), so both sides get the same
parallelism.

Two outbox figures:
- live: the producer commits the rows while the worker drains them; timed from the
  first commit to the last confirmation, so a slow producer caps it (its rate is printed);
- drain: the rows are committed while the worker does not consume (its consumer is
  cancelled, the worker stays warm), then consumption is resumed; timed from the resume
  to the last confirmation. This is the outbox's own rate. Beside it, Celery's floor: as
  many tasks again for those (confirmed) rows, each returning at once, drained the same
  way: the price of a message per row, which the outbox no longer pays under a backlog
  (one wake, then one message per batch of 15: chain/worker.py), so the drain may pass it.

Each part's CPU per transfer (Celery workers, devnet, PostgreSQL, Redis, this process;
from /proc) is printed for the drain and both direct loops: the machine's CPUs are shared
by all of them, so this is what a side's rate costs, and what bounds it.

The outbox batches transfers (up to 15 per group, chain/worker.py), so the direct loop
is run both ways: one transfer per group (fee payer + clawback) and batches of the same
size as the outbox's (fee payer + up to 15 clawbacks to distinct receivers). The ratio
with the aim is like with like: outbox (batching) / direct (batching). Commit-to-confirmed
latency p50/p95 is the live run's.

    .venv/bin/python -m bench.settlement.run [--transfers 900] [--workers 1] [--pool threads] [--concurrency 4]

Needs PostgreSQL and Redis (127.0.0.1, as in the tests). Uses its own database
(rwa_bench_settlement, persistent connections as in production) and Redis db 9 (the
chain tests default to db 2/3); starts devnet and the workers itself, stops them at the
end. The drain, the Celery floor and both direct loops are measured --rounds times (3),
alternated, and the medians printed (each round's figure beside them). Bounded: gives up
after --deadline seconds (default 200).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import os
import statistics
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


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _pids_named(name: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    found.append(int(entry))
            except OSError:
                continue  # gone meanwhile
    return found


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (all their threads) so far, from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


class CpuMeter:
    """CPU seconds each part of the system spends while a measurement runs: the Celery
    workers, devnet, PostgreSQL (every postgres process), Redis and this process. The
    machine has 2 CPUs shared by all of them, so a side's rate is bound by its total."""

    def __init__(self, workers, devnet):
        self.parts = {
            "worker": lambda: [w.pid for w in workers],
            "devnet": lambda: [devnet.process.pid],
            "PostgreSQL": lambda: _pids_named("postgres"),
            "Redis": lambda: _pids_named("redis-server"),
            "bench": lambda: [os.getpid()],
        }

    def read(self) -> dict[str, float]:
        return {name: _cpu_seconds(pids()) for name, pids in self.parts.items()}

    @staticmethod
    def per_transfer(before: dict[str, float], after: dict[str, float], transfers: int) -> dict[str, float]:
        """Milliseconds of CPU per transfer, by part."""
        return {name: 1000 * (after[name] - before[name]) / max(1, transfers) for name in before}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transfers", type=int, default=900)
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
    parser.add_argument("--rounds", type=int, default=3, help="drain and direct measurements, alternated")
    parser.add_argument("--deadline", type=float, default=200.0)
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
        from chain.worker import queue_purge

        queue_purge()
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
    from chain import builder, custody, gateway, services, worker
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
                    os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"),
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

    # 1) Live: the producer commits while the worker drains.
    def commit_rows(tag):
        """The transfers, each committed on its own (a producer of single requests, as
        purchases and trades are: the outbox must coalesce them itself)."""
        first = ChainTransaction.objects.order_by("-pk").values_list("pk", flat=True).first()
        t = time.monotonic()
        for i in range(args.transfers):
            request(
                {
                    "asset_id": asset_id,
                    "sender": treasury,
                    "receiver": receivers[i % len(receivers)].address,
                    "amount": 1,
                },
                tag,
            )
        return ChainTransaction.objects.filter(pk__gt=first), time.monotonic() - t

    measured, commit_seconds = commit_rows("live")
    wait_rows(measured, args.transfers, "outbox transfers (live)")
    rows = list(measured.values("status", "created_at", "confirmed_at", "group_txids"))
    failed = sum(1 for r in rows if r["status"] != "confirmed")
    first_commit = min(r["created_at"] for r in rows)
    last_confirm = max(r["confirmed_at"] for r in rows if r["confirmed_at"])
    live_rate = args.transfers / (last_confirm - first_commit).total_seconds()
    latencies = [(r["confirmed_at"] - r["created_at"]).total_seconds() * 1000 for r in rows if r["confirmed_at"]]
    live_groups = len({tuple(r["group_txids"]) for r in rows})

    # 2) Drain: rows committed while the worker does not consume, then resumed.
    from django.utils import timezone

    from chain.tasks import outbox_process_task
    from config.celery import app

    queue = app.conf.task_default_queue

    def drain() -> tuple[float, int, int]:
        app.control.cancel_consumer(queue, reply=True, limit=args.workers)
        measured, _ = commit_rows("drain")
        before = meter.read()
        resumed = timezone.now()
        app.control.add_consumer(queue, reply=True, limit=args.workers)
        wait_rows(measured, args.transfers, "outbox transfers (drain)")
        cpu["drain"].append(meter.per_transfer(before, meter.read(), args.transfers))
        rows = list(measured.values("pk", "status", "confirmed_at", "group_txids"))
        seconds = (max(r["confirmed_at"] for r in rows if r["confirmed_at"]) - resumed).total_seconds()
        drained.extend(r["pk"] for r in rows)
        return (
            args.transfers / seconds,
            sum(1 for r in rows if r["status"] != "confirmed"),
            len({tuple(r["group_txids"]) for r in rows}),
        )

    # 3) The floor under a task per row: the drained rows' tasks once more, drained the
    #    same way. The rows are confirmed, so each task returns at once (from the worker's
    #    memo, no statement): Celery's own cost of a message, were each row to carry one.
    def queued(channel) -> int:
        try:
            return int(channel.queue_declare(queue=queue, passive=True).message_count)
        except Exception:  # noqa: BLE001 - Redis drops an empty queue: "not found" is empty
            return 0

    def floor() -> float:
        app.control.cancel_consumer(queue, reply=True, limit=args.workers)
        for pk in drained[-args.transfers :]:
            outbox_process_task.delay(pk)
        with app.connection_for_read() as conn:
            t0 = time.monotonic()
            app.control.add_consumer(queue, reply=True, limit=args.workers)
            while queued(conn.default_channel) and time.monotonic() < started + args.deadline:
                time.sleep(0.01)
            return args.transfers / (time.monotonic() - t0)

    drained: list[int] = []
    meter = CpuMeter(workers, devnet)
    cpu: dict[str, list[dict[str, float]]] = {"drain": [], "single": [], "batched": []}

    # 4) Direct loop: the same group shapes (fee payer + clawback transfers to receivers
    #    that hold the asset), signed with plaintext keys held in memory, submit, read the
    #    confirmation. No database, no queue. As many client threads as the outbox has
    #    task slots, over the same keep-alive algod client.
    with custody.signing_session():
        keys = {
            role: custody._open(acct.address, acct.sealed_key, custody.get_backend())
            for role, acct in roles.items()
            if role in ("funding", "clawback")
        }
    signers = {role: AccountTransactionSigner(sk) for role, sk in keys.items()}
    slots = args.workers * (1 if args.pool == "solo" else args.concurrency)
    n_threads = args.direct_threads or slots
    per_group = min(len(receivers), worker.BATCH_MAX_MEMBERS)

    def direct(members_per_group: int, tag: str) -> tuple[int, float]:
        counter = itertools.count()
        done: list[int] = []
        before = meter.read()
        t0 = time.monotonic()
        budget = max(5.0, (started + args.deadline - t0 - 5) / (2 * args.rounds))

        def loop():
            while time.monotonic() - t0 < budget:
                first = next(counter) * members_per_group
                if first >= args.transfers:
                    return
                indexes = range(first, min(first + members_per_group, args.transfers))
                group = builder.build_asset_transfers(
                    sp=gateway.suggested_params(),
                    validity_rounds=1000,
                    transfers=[
                        builder.Transfer(
                            asset_id=asset_id,
                            amount=1,
                            sender=roles["treasury"],
                            receiver=receivers[i % len(receivers)],
                            lease=builder.lease_for(f"direct-{tag}-{i}", 0),
                        )
                        for i in indexes
                    ],
                    funding=roles["funding"],
                    clawback=roles["clawback"],
                )
                signed = [
                    sign_transaction_with_signer(t, signers[a.role])
                    for t, a in zip(group.txns, group.signers, strict=True)
                ]
                blob = b"".join(base64.b64decode(encoding.msgpack_encode(s)) for s in signed)
                gateway.submit(blob)
                info = gateway.pending_info(group.main.get_txid())
                assert info and info.get("confirmed-round"), info
                done.extend(indexes)

        threads = [threading.Thread(target=loop) for _ in range(n_threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rate = len(done) / (time.monotonic() - t0)
        cpu["single" if members_per_group == 1 else "batched"].append(
            meter.per_transfer(before, meter.read(), len(done))
        )
        return len(done), rate

    # Rounds alternate the four measurements, so load from other jobs on a shared machine
    # falls on all of them alike; the medians are printed.
    results: dict[str, list] = {"drain": [], "floor": [], "single": [], "batched": []}
    for r in range(args.rounds):
        results["drain"].append(drain())
        results["floor"].append(floor())
        results["single"].append(direct(1, f"single{r}"))
        results["batched"].append(direct(per_group, f"batched{r}"))
    drain_rate = statistics.median(rate for rate, _, _ in results["drain"])
    failed += sum(f for _, f, _ in results["drain"])
    drain_groups = max(g for _, _, g in results["drain"])
    floor_rate = statistics.median(results["floor"])
    n_single, single_rate = min(n for n, _ in results["single"]), statistics.median(r for _, r in results["single"])
    n_batched, batched_rate = (
        min(n for n, _ in results["batched"]),
        statistics.median(r for _, r in results["batched"]),
    )
    rates = {
        "drain": [rate for rate, _, _ in results["drain"]],
        "floor": results["floor"],
        "single": [rate for _, rate in results["single"]],
        "batched": [rate for _, rate in results["batched"]],
    }
    every = {name: " ".join(f"{rate:.0f}" for rate in values) for name, values in rates.items()}

    shape = "1 (solo)" if args.pool == "solo" else f"{args.concurrency} ({args.pool})"
    print(f"\nSettlement benchmark (devnet {devnet.url}, {args.workers} Celery worker(s) × {shape}, PostgreSQL, Redis)")
    print(
        f"  outbox, live             : {args.transfers} transfers = {live_rate:7.1f} confirmed/s in {live_groups} groups"
        f"  (producer committed {args.transfers / commit_seconds:.0f} rows/s; {failed} failed in both runs)"
    )
    print(
        f"  outbox, drain            : {args.transfers} transfers = {drain_rate:7.1f} confirmed/s in ≤ {drain_groups} groups"
        f"  (from resume to last confirmation; rounds: {every['drain']})"
    )
    print(
        f"  Celery floor             : {args.transfers} tasks of confirmed rows = {floor_rate:7.1f} tasks/s"
        f"  (a task per row; rounds: {every['floor']})"
    )
    print(
        f"  direct, 1 per group      : {n_single} transfers = {single_rate:7.1f} confirmed/s  ({n_threads} thread(s); rounds: {every['single']})"
    )
    print(
        f"  direct, {per_group} per group     : {n_batched} transfers = {batched_rate:7.1f} confirmed/s  ({n_threads} thread(s); rounds: {every['batched']})"
    )
    print(
        f"  ratio live / direct      : {live_rate / batched_rate:.2f} like with like (batched)"
        f"; {live_rate / single_rate:.2f} against 1 per group"
    )
    print(
        f"  ratio drain / direct     : {drain_rate / batched_rate:.2f} like with like (batched; aim >= 0.5)"
        f"; {drain_rate / single_rate:.2f} against 1 per group"
    )
    print(f"  ratio drain / floor      : {drain_rate / floor_rate:.2f}")
    print("  CPU per transfer (ms, median of the rounds; the machine's CPUs are shared by all):")
    for name, label in (
        ("drain", "outbox, drain"),
        ("batched", f"direct, {per_group} per group"),
        ("single", "direct, 1 per group"),
    ):
        parts = {part: statistics.median(r[part] for r in cpu[name]) for part in cpu[name][0]}
        shown = ", ".join(f"{part} {ms:.2f}" for part, ms in parts.items() if ms >= 0.005)
        print(f"    {label:<22}: {sum(parts.values()):5.2f} = {shown}")
    print(
        f"  commit-to-confirmed, live: p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} ms"
    )
    print(f"  wall time                : {time.monotonic() - started:.1f} s")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
