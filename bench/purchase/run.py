"""Purchase throughput and page rates, each beside a yardstick measured in the same run.

    .venv/bin/python -m bench.purchase.run [--clients 8] [--seconds 15] [--page-seconds 8]

0. Hot offering vs spread: --race-clients client processes place --race-orders orders
   each, first all from ONE offering (each purchase takes its row lock), then the same
   load spread over SPREAD (8) offerings. Ratio = hot purchases/s ÷ spread purchases/s
   (aim >= 0.5): how much the offering's lock serialises buyers of one offering.
1. Purchases/s: --clients client *processes* (one Django + one PostgreSQL connection
   each) call `marketplace.services.order_place` in a loop for --seconds, random
   investor (KYC approved, funded) × random offering (a few, ample supply) × random
   quantity. Each order writes its settlement outbox row and, on commit, enqueues the
   Celery task on a Redis db of the bench's own (no worker runs: settlement is not part
   of the figure; the queue is purged at the end).
2. Baseline: pgbench replays the same SQL (`purchase.sql`: the same statements, the same
   row locks, one transaction) with the same client count and duration on the same
   database. Ratio = purchases/s ÷ pgbench TPS: what Python, Django and the round trips
   between statements cost on top of the database work itself.
3. Pages: gunicorn (bench.purchase.settings: the test settings, DEBUG off, production's
   persistent DB connections) serves the catalogue (/assets/), an offering page and a
   bare view through the same middleware (/bench/bare); one keep-alive http.client load
   generator (threads) drives each URL for --page-seconds. Ratios = page rps ÷ bare rps.

After the purchase phases the books are checked (ledger_verify, supply and holdings per
offering), which also proves the pgbench replay wrote what order_place writes.

Needs PostgreSQL and Redis on 127.0.0.1 and pgbench on PATH. Uses its own database
(rwa_bench_purchase, recreated each run) and Redis db 11 (broker). Bounded: a watchdog
stops everything the bench started after --deadline seconds (default 240).
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DB_NAME = "rwa_bench_purchase"
PG = "postgresql://postgres@127.0.0.1:5432"
QMAX = 10  # fractions per purchase: random 1..QMAX
SPREAD = 8  # offerings of the spread run that the hot run's single offering is compared with
STARTED: list[subprocess.Popen] = []  # every process the bench starts, stopped in finally / by the watchdog


def setup_env(broker: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.purchase.settings",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        CELERY_BROKER_URL=broker,
        CACHE_KEY_PREFIX=f"bench-purchase-{uuid.uuid4().hex[:6]}",
        LOG_LEVEL="WARNING",
    )


def create_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")


def vacuum_analyze() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/{DB_NAME}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


class CpuMeter:
    """Share of all CPUs busy between start() and stop(), from /proc/stat."""

    @staticmethod
    def _read() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields), idle

    def __enter__(self):
        self.total, self.idle = self._read()
        return self

    def __exit__(self, *exc):
        total, idle = self._read()
        self.busy = 1 - (idle - self.idle) / max(1, total - self.total)
        return False


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def backend_pids() -> list[int]:
    """PostgreSQL backends connected to the bench database (by process title)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"postgres: ") and f" {DB_NAME} ".encode() in title:
                pids.append(int(entry.name))
    return pids


class BackendCpu(threading.Thread):
    """CPU seconds the bench database's backends spend while it runs: samples every
    backend's counters every 0.2 s and sums last − first per backend (a backend that
    connects during the run counts from 0). Other databases' work is not counted."""

    def __init__(self):
        super().__init__(daemon=True)
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.done = threading.Event()

    def sample(self, initial=False):
        for pid in backend_pids():
            cpu = cpu_seconds(pid)
            if cpu is None:
                continue
            self.first.setdefault(pid, cpu if initial else 0.0)
            self.last[pid] = cpu

    def run(self):
        while not self.done.wait(0.2):
            self.sample()

    def __enter__(self):
        self.sample(initial=True)
        self.start()
        return self

    def __exit__(self, *exc):
        self.sample()
        self.done.set()
        self.join()
        self.seconds = sum(self.last[p] - self.first[p] for p in self.last)
        return False


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the group we created with start_new_session
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def watchdog(seconds: float) -> threading.Timer:
    def fire():
        print(f"bench: deadline of {seconds:.0f} s reached; stopping", file=sys.stderr, flush=True)
        for proc in STARTED:
            try:
                stop(proc, timeout=3)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        for child in mp.active_children():
            child.kill()
        os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


# -- setup -------------------------------------------------------------------------------


def seed(*, investors: int, offerings: int, assets: int) -> dict:
    """Live assets with open offerings (the first `offerings` with ample supply are the
    ones bought from), funded KYC-approved investors whose holdings and held-cash
    accounts already exist (steady state: what a returning buyer finds)."""
    from django.utils import timezone

    from chain.services import platform_accounts_ensure
    from marketplace.models import Holding, LedgerAccount
    from marketplace.services import deposit_record
    from marketplace.tests.factories import LiveAssetFactory, OfferingFactory, StaffFactory, verified_investor

    now = timezone.now()
    platform_accounts_ensure()
    big = 10**9
    hot = [
        OfferingFactory(
            asset=LiveAssetFactory(
                total_fractions=big, fractions_for_sale=big, live_at=now, price_per_fraction_minor=10_000
            ),
            fractions_for_sale=big,
            price_per_fraction_minor=10_000,
            max_purchase=100,
            fee_bps=150,
        )
        for _ in range(max(offerings, SPREAD))
    ]
    for _ in range(max(0, assets - len(hot))):
        OfferingFactory(asset__live_at=now)
    staff = StaffFactory()
    users = [verified_investor() for _ in range(investors)]
    for i, user in enumerate(users):
        deposit_record(investor=user, amount_minor=10**10, currency="EUR", bank_reference=f"BENCH-{i}", actor=staff)
    Holding.objects.bulk_create([Holding(investor=u, asset=o.asset) for u in users for o in hot])
    LedgerAccount.objects.bulk_create(
        [LedgerAccount(kind=LedgerAccount.Kind.INVESTOR_HELD, user=u, currency="EUR") for u in users]
    )
    investor_ids = sorted(u.pk for u in users)
    ample_ids = sorted(o.pk for o in hot)
    # pgbench picks ids with random(lo, lo + n - 1): they must be contiguous.
    assert investor_ids == list(range(investor_ids[0], investor_ids[0] + investors)), "investor ids not contiguous"
    assert ample_ids == list(range(ample_ids[0], ample_ids[0] + len(hot))), "offering ids not contiguous"
    return {
        "investor_ids": investor_ids,
        "offering_ids": ample_ids[:offerings],  # phases 1 and 2
        "ample_ids": ample_ids,  # phase 0 (hot: the first; spread: the first SPREAD) and the books check
        "offering_asset": hot[0].asset.public_id,
    }


def one_purchase_sql(investor_id: int, offering_id: int) -> list[str]:
    """The statements one steady-state order_place sends (printed with --show-sql; the
    pgbench script mirrors them)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from marketplace.services import order_place

    investor = User.objects.get(pk=investor_id)
    with CaptureQueriesContext(connection) as ctx:
        order_place(investor=investor, offering_id=offering_id, quantity=1, idempotency_key=uuid.uuid4().hex)
    return [q["sql"] for q in ctx.captured_queries]


# -- 1. purchases through order_place ------------------------------------------------------


def buyer(idx: int, investor_ids: list[int], offering_ids: list[int], seconds: float, ready, go, results) -> None:
    """One client: its own process, Django and connection. Warm-up purchase (connection,
    broker producer, code paths) before the clock."""
    import django

    django.setup()

    from accounts.models import User
    from marketplace.services import order_place

    rng = random.Random(idx)
    users = list(User.objects.filter(pk__in=investor_ids))

    def buy():
        order_place(
            investor=rng.choice(users),
            offering_id=rng.choice(offering_ids),
            quantity=rng.randint(1, QMAX),
            idempotency_key=uuid.uuid4().hex,
        )

    timed_calls(buy, idx=idx, seconds=seconds, ready=ready, go=go, results=results)


def timed_calls(call, *, idx: int, seconds: float, ready, go, results) -> None:
    """A bench client's timed phase: one untimed warm-up call, then `call()` in a loop
    for `seconds` once every client is ready; refusals (ValidationError) are counted by
    code, not timed. Puts {idx, done, elapsed, errors, latencies, cpu} on `results`."""
    from django.core.exceptions import ValidationError
    from django.db import connection

    call()
    ready.put(idx)
    go.wait()
    done, errors, latencies = 0, Counter(), []
    cpu0 = time.process_time()
    started = time.perf_counter()
    end = started + seconds
    while (t0 := time.perf_counter()) < end:
        try:
            call()
        except ValidationError as exc:
            errors[",".join(sorted({e.code or "?" for e in exc.error_list}))] += 1
            continue
        latencies.append(time.perf_counter() - t0)
        done += 1
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    connection.close()
    results.put(
        {"idx": idx, "done": done, "elapsed": elapsed, "errors": dict(errors), "latencies": latencies, "cpu": cpu}
    )


def run_buyers(clients: int, seeded: dict, seconds: float) -> dict:
    ctx = mp.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(
            target=buyer,
            args=(i, seeded["investor_ids"], seeded["offering_ids"], seconds, ready, go, results),
            daemon=True,
        )
        for i in range(clients)
    ]
    try:
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=60)
        with CpuMeter() as cpu, BackendCpu() as pg:
            go.set()
            out = [results.get(timeout=seconds + 60) for _ in procs]
        for p in procs:
            p.join(timeout=10)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    done = sum(r["done"] for r in out)
    elapsed = statistics.mean(r["elapsed"] for r in out)
    lat = sorted(x for r in out for x in r["latencies"])
    errors = Counter()
    for r in out:
        errors.update(r["errors"])
    return {
        "done": done,
        "rate": done / elapsed,
        "elapsed": elapsed,
        "errors": dict(errors),
        "cpu": cpu.busy,
        "client_ms": sum(r["cpu"] for r in out) / max(1, done) * 1000,
        "pg_ms": pg.seconds / max(1, done) * 1000,
        "p50": lat[len(lat) // 2] * 1000 if lat else 0,
        "p95": lat[int(len(lat) * 0.95)] * 1000 if lat else 0,
        "warmups": clients,
    }


# -- 0. one hot offering beside the same load spread over SPREAD offerings ------------------


def race_buyer(idx: int, investor_ids: list[int], phases: list[list[int]], orders: int, ready, gos, results) -> None:
    """One client of the hot/spread comparison: for each phase, after its start signal,
    exactly `orders` purchases from that phase's offerings (refusals count as attempts)."""
    import django

    django.setup()
    from django.core.exceptions import ValidationError
    from django.db import connection

    from accounts.models import User
    from marketplace.services import order_place

    rng = random.Random(1000 + idx)
    users = list(User.objects.filter(pk__in=investor_ids))

    def buy(offering_ids):
        order_place(
            investor=rng.choice(users),
            offering_id=rng.choice(offering_ids),
            quantity=rng.randint(1, QMAX),
            idempotency_key=uuid.uuid4().hex,
        )

    buy(phases[0])  # warm-up, untimed
    ready.put(idx)
    for phase, offering_ids in enumerate(phases):
        gos[phase].wait()
        done, errors, latencies = 0, Counter(), []
        cpu0 = time.process_time()
        started = time.monotonic()  # CLOCK_MONOTONIC: comparable across the clients
        for _ in range(orders):
            t0 = time.perf_counter()
            try:
                buy(offering_ids)
            except ValidationError as exc:
                errors[",".join(sorted({e.code or "?" for e in exc.error_list}))] += 1
                continue
            latencies.append(time.perf_counter() - t0)
            done += 1
        results.put(
            {
                "idx": idx,
                "phase": phase,
                "done": done,
                "started": started,
                "ended": time.monotonic(),
                "errors": dict(errors),
                "latencies": latencies,
                "cpu": time.process_time() - cpu0,
            }
        )
    connection.close()


def run_hot_vs_spread(clients: int, orders: int, seeded: dict) -> dict:
    """The same clients and the same number of orders, first all on one offering (one
    row lock every purchase queues on), then spread over SPREAD offerings. Rate = orders
    committed / (last client's end - first client's start)."""
    ample = seeded["ample_ids"]
    phases = {"hot": ample[:1], "spread": ample[:SPREAD]}
    ctx = mp.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    gos = [ctx.Event() for _ in phases]
    procs = [
        ctx.Process(
            target=race_buyer,
            args=(i, seeded["investor_ids"], list(phases.values()), orders, ready, gos, results),
            daemon=True,
        )
        for i in range(clients)
    ]
    out = {}
    try:
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=90)
        for phase, name in enumerate(phases):
            with CpuMeter() as cpu, BackendCpu() as pg:
                gos[phase].set()
                rows = [results.get(timeout=120) for _ in procs]
            done = sum(r["done"] for r in rows)
            wall = max(r["ended"] for r in rows) - min(r["started"] for r in rows)
            lat = sorted(x for r in rows for x in r["latencies"])
            errors = Counter()
            for r in rows:
                errors.update(r["errors"])
            out[name] = {
                "offerings": len(phases[name]),
                "done": done,
                "rate": done / wall,
                "errors": dict(errors),
                "cpu": cpu.busy,
                "client_ms": sum(r["cpu"] for r in rows) / max(1, done) * 1000,
                "pg_ms": pg.seconds / max(1, done) * 1000,
                "p50": lat[len(lat) // 2] * 1000 if lat else 0,
                "p95": lat[int(len(lat) * 0.95)] * 1000 if lat else 0,
            }
        for p in procs:
            p.join(timeout=10)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    out["warmups"] = clients
    return out


# -- 2. pgbench replay -----------------------------------------------------------------------


def run_pgbench(clients: int, seconds: float, seeded: dict) -> dict:
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        raise SystemExit("bench: pgbench is not on PATH (apt-get install postgresql-client)")
    ids, offs = seeded["investor_ids"], seeded["offering_ids"]
    cmd = [
        pgbench,
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-n",
        "-M",
        "simple",
        "-c",
        str(clients),
        "-j",
        str(min(clients, os.cpu_count() or 1)),
        "-T",
        str(int(seconds)),
        "-f",
        str(HERE / "purchase.sql"),
        "-D",
        f"inv_lo={ids[0]}",
        "-D",
        f"inv_n={len(ids)}",
        "-D",
        f"off_lo={offs[0]}",
        "-D",
        f"off_n={len(offs)}",
        "-D",
        f"qmax={QMAX}",
        DB_NAME,
    ]
    with CpuMeter() as cpu, BackendCpu() as pg:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    out = proc.stdout + proc.stderr
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    processed = re.search(r"number of transactions actually processed: (\d+)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    latency = re.search(r"latency average = ([\d.]+) ms", out)
    if proc.returncode != 0 or tps is None:
        raise SystemExit(f"bench: pgbench failed (exit {proc.returncode}):\n{out[-3000:]}")
    return {
        "rate": float(tps.group(1)),
        "done": int(processed.group(1)),
        "failed": int(failed.group(1)) if failed else 0,
        "latency": float(latency.group(1)) if latency else 0.0,
        "cpu": cpu.busy,
        "pg_ms": pg.seconds / max(1, int(processed.group(1))) * 1000,
    }


def books_check(seeded: dict, expected_orders: int) -> list[str]:
    """The ledger balances, every offering's sold count equals its orders and its
    holdings' pending units, and the number of orders is what both phases reported."""
    from django.db.models import Sum

    from marketplace.ledger_proofs import ledger_verify
    from marketplace.models import Holding, Offering, PrimaryOrder

    problems = list(ledger_verify().problems)
    for offering in Offering.objects.filter(pk__in=seeded["ample_ids"]):
        sold = PrimaryOrder.objects.filter(offering=offering).aggregate(s=Sum("quantity"))["s"] or 0
        pending = Holding.objects.filter(asset=offering.asset_id).aggregate(p=Sum("pending_quantity"))["p"] or 0
        if not offering.fractions_sold == sold == pending:
            problems.append(
                f"offering {offering.pk}: fractions_sold {offering.fractions_sold}, orders {sold}, pending {pending}"
            )
    orders = PrimaryOrder.objects.count()
    if orders != expected_orders:
        problems.append(f"{orders} orders in the database, {expected_orders} reported")
    return problems


# -- 3. pages under gunicorn ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def start_gunicorn(workers: int, threads: int, log: Path) -> int:
    port = free_port()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="bench.purchase.settings")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-w",
            str(workers),
            "-k",
            "gthread",
            "--threads",
            str(threads),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--keep-alive",
            "30",
        ],
        cwd=ROOT,
        env=env,
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    STARTED.append(proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: gunicorn exited ({proc.returncode}); see {log}:\n{log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/bench/bare")
            if conn.getresponse().status == 200:
                conn.close()
                return port
        except OSError:
            time.sleep(0.1)
    raise SystemExit("bench: gunicorn did not answer within 30 s")


def load(port: int, path: str, clients: int, seconds: float, server_pids: list[int]) -> dict:
    """`clients` threads, one keep-alive connection each, GET `path` until the time is up."""
    counts, errors, sizes = [0] * clients, [0] * clients, [0] * clients
    barrier = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(i):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        barrier.wait()
        while time.perf_counter() < stop_at[0]:
            conn.request("GET", path)
            resp = conn.getresponse()
            sizes[i] = len(resp.read())
            if resp.status != 200:
                errors[i] += 1
            counts[i] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    cpu0 = time.process_time()
    server0 = sum(cpu_seconds(p) or 0 for p in server_pids)
    with CpuMeter() as cpu, BackendCpu() as pg:
        barrier.wait()
        started = time.perf_counter()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
    n = max(1, sum(counts))
    return {
        "rate": sum(counts) / elapsed,
        "done": sum(counts),
        "errors": sum(errors),
        "bytes": max(sizes),
        "cpu": cpu.busy,
        "client_ms": (time.process_time() - cpu0) / n * 1000,
        "server_ms": (sum(cpu_seconds(p) or 0 for p in server_pids) - server0) / n * 1000,
        "pg_ms": pg.seconds / n * 1000,
    }


# -- main ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="concurrent buyers (processes) and pgbench clients")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each purchase phase")
    parser.add_argument("--investors", type=int, default=400)
    parser.add_argument("--offerings", type=int, default=4, help="offerings bought from (each a hot row lock)")
    parser.add_argument("--assets", type=int, default=50, help="live assets in the catalogue")
    parser.add_argument("--page-seconds", type=float, default=8.0, help="duration of each page measure")
    parser.add_argument("--page-clients", type=int, default=8, help="keep-alive connections of the load generator")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--race-clients", type=int, default=12, help="buyer processes of the hot/spread runs")
    parser.add_argument("--race-orders", type=int, default=40, help="orders per client in each of the hot/spread runs")
    parser.add_argument("--deadline", type=float, default=240.0)
    parser.add_argument("--show-sql", action="store_true", help="print the SQL of one order_place")
    args = parser.parse_args()
    started = time.monotonic()
    timer = watchdog(args.deadline)

    setup_env(args.broker)
    sys.path.insert(0, str(ROOT))
    create_database()
    tmp = Path(tempfile.mkdtemp(prefix="bench-purchase-"))
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        from chain.worker import queue_purge

        call_command("migrate", verbosity=0)
        queue_purge()
        seeded = seed(investors=args.investors, offerings=args.offerings, assets=args.assets)
        sql = one_purchase_sql(seeded["investor_ids"][0], seeded["offering_ids"][0])
        if args.show_sql:
            print("\n".join(f"{i + 1:2d}. {s}" for i, s in enumerate(sql)))
        connections.close_all()
        vacuum_analyze()
        setup_seconds = time.monotonic() - started

        race = run_hot_vs_spread(args.race_clients, args.race_orders, seeded)
        buyers = run_buyers(args.clients, seeded, args.seconds)
        bench = run_pgbench(args.clients, args.seconds, seeded)
        raced = race["warmups"] + race["hot"]["done"] + race["spread"]["done"]
        problems = books_check(seeded, expected_orders=1 + raced + buyers["warmups"] + buyers["done"] + bench["done"])
        enqueued = queue_purge()  # the wakes sent on commit (one per sender while one waits), never consumed
        connections.close_all()

        port = start_gunicorn(args.web_workers, args.web_threads, tmp / "gunicorn.log")
        urls = {
            "bare": "/bench/bare",
            "catalogue": "/assets/",
            "offering": f"/market/offerings/{seeded['offering_asset']}/",
        }
        pages = {}
        deadline = time.monotonic() + 15
        while len(workers := children(STARTED[-1].pid)) < args.web_workers and time.monotonic() < deadline:
            time.sleep(0.1)
        for name, path in urls.items():
            load(port, path, args.page_clients, 1.0, workers)  # warm-up: templates, connections
            pages[name] = load(port, path, args.page_clients, args.page_seconds, workers)
    finally:
        for proc in STARTED:
            stop(proc)
        timer.cancel()

    report(args, sql, race, buyers, bench, problems, enqueued, urls, pages, setup_seconds, started)
    failed = bool(problems) or any(p["errors"] for p in pages.values())
    return 1 if failed else 0


def report(args, sql, race, buyers, bench, problems, enqueued, urls, pages, setup_seconds, started) -> None:
    """The figures. CPU columns are per operation and count only the bench's own
    processes (clients, gunicorn workers, this database's backends): they do not move
    with other load on the machine, the rates do. "busy" is the whole machine."""
    w = 30
    statements = sum(1 for q in sql if q.split()[0].upper() not in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))
    savepoints = sum(1 for q in sql if q.split()[0].upper() == "SAVEPOINT")
    print(
        f"\nHot offering vs spread ({args.race_clients} client processes x {args.race_orders} order_place each, "
        f"in each run; 1..{QMAX} fractions)"
    )
    print(
        f"  {'':{w}s} {'rate':>9s} {'count':>6s} {'p50 ms':>7s} {'p95 ms':>7s} {'client':>7s} {'PG':>6s} {'busy':>5s}"
    )
    for name in ("hot", "spread"):
        r = race[name]
        label = f"{name}: {r['offerings']} offering{'s' if r['offerings'] > 1 else ''}"
        print(
            f"  {label:{w}s} {r['rate']:7.1f}/s {r['done']:6d} {r['p50']:7.1f} {r['p95']:7.1f} "
            f"{r['client_ms']:5.1f}ms {r['pg_ms']:4.1f}ms {r['cpu']:5.0%}"
            + (f"  refused {r['errors']}" if r["errors"] else "")
        )
    print(f"  ratio hot / spread: {race['hot']['rate'] / race['spread']['rate']:.2f} (aim >= 0.5)")
    print(
        f"\nPurchases ({os.cpu_count()} CPUs; database {DB_NAME}; {args.clients} clients; {args.investors} "
        f"investors x {args.offerings} offerings; 1..{QMAX} fractions each; {statements} statements + "
        f"BEGIN/COMMIT + {savepoints} savepoint{'' if savepoints == 1 else 's'} per order; {args.seconds:.0f} s each)"
    )
    print(
        f"  {'':{w}s} {'rate':>9s} {'count':>6s} {'p50 ms':>7s} {'p95 ms':>7s} {'client':>7s} {'PG':>6s} {'busy':>5s}"
    )
    print(
        f"  {'order_place, ' + str(args.clients) + ' processes':{w}s} {buyers['rate']:7.1f}/s {buyers['done']:6d} "
        f"{buyers['p50']:7.1f} {buyers['p95']:7.1f} {buyers['client_ms']:5.1f}ms {buyers['pg_ms']:4.1f}ms {buyers['cpu']:5.0%}"
    )
    print(
        f"  {'pgbench purchase.sql, ' + str(args.clients) + ' clients':{w}s} {bench['rate']:7.1f}/s {bench['done']:6d} "
        f"{bench['latency']:7.1f} {'':>7s} {'-':>7s} {bench['pg_ms']:4.1f}ms {bench['cpu']:5.0%}"
    )
    print(
        f"  ratio order_place / pgbench: {buyers['rate'] / bench['rate']:.2f} (aim >= 0.25)   "
        f"refused orders: {sum(buyers['errors'].values())} {buyers['errors'] or ''}  pgbench failed: {bench['failed']}"
    )
    print(
        f"  books after both phases: {'ok (ledger_verify, sold = orders = pending per offering)' if not problems else 'PROBLEMS: ' + '; '.join(problems)}"
    )
    print(f"  settlement: {enqueued} wake messages sent on commit to {args.broker}, no worker ran, purged")
    print(
        f"\nPages (gunicorn gthread -w {args.web_workers} --threads {args.web_threads}, bench.purchase.settings; "
        f"{args.page_clients} keep-alive http.client threads; anonymous GET; {args.page_seconds:.0f} s each)"
    )
    print(
        f"  {'':{w}s} {'rate':>9s} {'count':>6s} {'bytes':>6s} {'ratio':>6s} {'server':>7s} {'PG':>6s} {'client':>7s} {'busy':>5s}"
    )
    for name, path in urls.items():
        p = pages[name]
        ratio = "" if name == "bare" else f"{p['rate'] / pages['bare']['rate']:.2f}"
        label = f"{name} {path if len(path) < 22 else path[:19] + '...'}"
        print(
            f"  {label:{w}s} {p['rate']:7.0f}/s {p['done']:6d} {p['bytes']:6d} {ratio:>6s} {p['server_ms']:5.2f}ms "
            f"{p['pg_ms']:4.2f}ms {p['client_ms']:5.2f}ms {p['cpu']:5.0%}"
            + (f"  errors {p['errors']}" if p["errors"] else "")
        )
    print("  ratio = page rps / bare rps (aim >= 0.4)")
    print(
        "\n  client / server / PG = CPU ms per operation of the load generator, the gunicorn workers, the bench"
        "\n  database's backends; busy = whole machine (other jobs included)."
    )
    print(f"  setup {setup_seconds:.1f} s; whole run {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
