"""Secondary-market order placement throughput beside a pgbench replay of its own SQL, and
trades settled per second end to end (docs/benchmarks.md, docs/trading.md).

    .venv/bin/python -m bench.trading.run [--clients 8] [--seconds 10] [--trades 150]

1. Placements/s: for each mode (non-crossing: bids 50.00–90.00 and asks 110.00–150.00
   that rest; crossing: buys at 100.00 that each take 1..10 units from a deep resting
   ask, one trade per order) and each layout (one hot book; 8 books), --clients client
   *processes* (one Django + one PostgreSQL connection each) call
   `marketplace.trading.trade_order_place` for --seconds: random investor, random book
   of the layout, fresh idempotency key. Every order is persisted with its reservation;
   a crossing order also writes the trade, its postings and its settlement outbox row,
   and on commit publishes the settlement task to the bench's Redis db (no worker runs
   in this part; the queue is purged at the end).
2. Replay: right after each service run, one placement of the same kind per client
   (each on its own book of the layout, another investor) is made and its SQL captured
   (`CaptureQueriesContext`: the statements exactly as psycopg sent them, values
   inlined). The script is turned into pgbench files: every id an INSERT returns is
   carried by `\\gset` into the statements that use it, every new UUID, idempotency key
   and outbox key gets a fresh random value, so each replay inserts new rows with the
   same statements, the same row locks (the book's FOR NO KEY UPDATE first) and the same
   commit. pgbench runs them with --clients clients for --seconds (`-M simple`, as
   Django sends inlined SQL) on a copy of the bench database taken at that moment
   (`CREATE DATABASE … TEMPLATE`, same server, same rows): the replay re-applies
   literal amounts to the captured rows, which would break the books the bench checks
   afterwards. Ratio = placements/s ÷ replay TPS.
3. Books: `market_check` and `ledger_check` on the bench database after all runs
   (exit 1 on a problem).
4. End to end: devnet and one Celery worker (threads, --concurrency) are started; an
   asset is minted and the sellers' units are delivered through the outbox (setup, not
   timed); sellers rest deep asks, then --trades crossing buys from --buyers investors
   (most of them new holders: their first trade's group carries the funding and opt-in)
   are placed by one client while the worker is stopped (their settlement tasks wait in
   Redis); then the worker starts and trades settled/s = trades ÷ (worker start → last
   trade confirmed on devnet), also first → last confirmation; then reconcile.

Needs PostgreSQL and Redis on 127.0.0.1 and pgbench on PATH. Uses its own database
(--database, default rwa_bench_trading, recreated) and Redis db (--broker, default db 12).
Bounded by a watchdog (--deadline, default 420 s).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.purchase import run as purchase  # noqa: E402  (CPU meters, watchdog, process stop)

PG = "postgresql://postgres@127.0.0.1:5432"
BOOKS = 8
QMAX = 10
DEEP = 10**9  # units of each seller's resting ask in the crossing runs
# A UUID as psycopg inlines it ('…'::uuid, 32 hex digits) or inside text (with dashes).
UUID_RE = re.compile(
    r"(?<![0-9a-f])(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?![0-9a-f])"
)
DECLARE_RE = re.compile(r'^DECLARE "\w+" NO SCROLL CURSOR (?:WITH HOLD )?FOR ', re.S)


def setup_env(db: str, broker: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{db}?conn_max_age=60",
        CELERY_BROKER_URL=broker,
        CACHE_KEY_PREFIX=f"bench-trading-{uuid.uuid4().hex[:6]}",
        LOG_LEVEL="WARNING",
        # A throughput bench places far more orders per investor than the per-investor
        # limits allow (20 open per asset, 30 a minute); the limits are still counted.
        MARKETPLACE_MAX_OPEN_ORDERS_PER_ASSET="1000000",
        MARKETPLACE_TRADE_ORDER_RATE="1000000,60",
    )


def psql(db: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/{db}", autocommit=True) as conn:
        for s in statements:
            conn.execute(s)


# -- setup --------------------------------------------------------------------------------


def seed(*, investors: int) -> dict:
    """BOOKS live assets with a market each; funded verified investors holding units of
    every asset (settled, long ago: no lock-up); per book one seller whose deep ask at
    100.00 the crossing runs buy from (sellers never place orders themselves)."""
    from django.utils import timezone

    from chain.services import platform_accounts_ensure
    from marketplace.models import Holding, LedgerAccount
    from marketplace.services import deposit_record
    from marketplace.tests.factories import OfferingFactory, StaffFactory, verified_investor
    from marketplace.trading import market_open, trade_order_place

    platform_accounts_ensure()
    long_ago = timezone.now() - timezone.timedelta(days=3650)
    assets = [
        OfferingFactory(asset__total_fractions=10**12, asset__live_at=long_ago, fractions_for_sale=10**12).asset
        for _ in range(BOOKS)
    ]
    markets = [market_open(asset=a) for a in assets]
    staff = StaffFactory()
    users = [verified_investor() for _ in range(investors + BOOKS)]
    for i, user in enumerate(users):
        deposit_record(investor=user, amount_minor=10**13, currency="EUR", bank_reference=f"BENCH-T-{i}", actor=staff)
    Holding.objects.bulk_create(
        [Holding(investor=u, asset=a, quantity=10**11, first_acquired_at=long_ago) for u in users for a in assets]
    )
    LedgerAccount.objects.bulk_create(
        [LedgerAccount(kind=LedgerAccount.Kind.INVESTOR_HELD, user=u, currency="EUR") for u in users]
    )
    sellers, traders = users[:BOOKS], users[BOOKS:]
    for seller, asset in zip(sellers, assets, strict=True):
        trade_order_place(
            investor=seller,
            asset=asset,
            side="sell",
            quantity=DEEP,
            limit_price_minor=100_00,
            time_in_force="gtc",
            idempotency_key=f"deep-{seller.pk}",
        )
    return {
        "investor_ids": [u.pk for u in traders],
        "asset_ids": [a.pk for a in assets],
        "market_ids": [m.pk for m in markets],
    }


def order_args(rng: random.Random, mode: str) -> dict:
    if mode == "crossing":
        return {"side": "buy", "quantity": rng.randint(1, QMAX), "limit_price_minor": 100_00}
    side = rng.choice(("buy", "sell"))
    price = rng.randint(50, 90) * 100 if side == "buy" else rng.randint(110, 150) * 100
    return {"side": side, "quantity": rng.randint(1, QMAX), "limit_price_minor": price}


# -- 1. placements through the service -----------------------------------------------------------


def client(idx: int, seeded: dict, asset_ids: list[int], mode: str, seconds: float, ready, go, results) -> None:
    import django

    django.setup()

    from accounts.models import User
    from assets.models import Asset
    from marketplace.trading import trade_order_place

    rng = random.Random(f"{idx}-{mode}-{len(asset_ids)}")
    users = list(User.objects.filter(pk__in=seeded["investor_ids"]))
    assets = list(Asset.objects.filter(pk__in=asset_ids))

    def place():
        trade_order_place(
            investor=rng.choice(users),
            asset=rng.choice(assets),
            time_in_force="gtc",
            idempotency_key=uuid.uuid4().hex,
            **order_args(rng, mode),
        )

    purchase.timed_calls(place, idx=idx, seconds=seconds, ready=ready, go=go, results=results)


def run_clients(clients: int, seeded: dict, asset_ids: list[int], mode: str, seconds: float) -> dict:
    ctx = mp.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=client, args=(i, seeded, asset_ids, mode, seconds, ready, go, results), daemon=True)
        for i in range(clients)
    ]
    try:
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=90)
        with purchase.CpuMeter() as cpu, purchase.BackendCpu() as pg:
            go.set()
            out = [results.get(timeout=seconds + 60) for _ in procs]
        for p in procs:
            p.join(timeout=10)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    done = sum(r["done"] for r in out)
    lat = sorted(x for r in out for x in r["latencies"])
    errors: Counter = Counter()
    for r in out:
        errors.update(r["errors"])
    return {
        "done": done,
        "warmups": clients,
        "rate": done / statistics.mean(r["elapsed"] for r in out),
        "errors": dict(errors),
        "cpu": cpu.busy,
        "client_ms": sum(r["cpu"] for r in out) / max(1, done) * 1000,
        "pg_ms": pg.seconds / max(1, done) * 1000,
        "p50": lat[len(lat) // 2] * 1000 if lat else 0,
        "p95": lat[int(len(lat) * 0.95)] * 1000 if lat else 0,
    }


# -- 2. the replay -------------------------------------------------------------------------------


def _fk_columns() -> dict[str, set[str]]:
    """db_table -> the columns (of any table) that reference its primary key."""
    from django.apps import apps

    refs: dict[str, set[str]] = {}
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if field.is_relation and field.related_model is not None:
                refs.setdefault(field.related_model._meta.db_table, set()).add(field.column)
    return refs


def _split_top(text: str) -> list[str]:
    """Split a VALUES tuple's inside on commas outside quotes and parentheses."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


INSERT_RE = re.compile(
    r'^INSERT INTO "(\w+)" \((.*?)\) VALUES \((.*)\)(?: ON CONFLICT \("\w+"\) DO NOTHING)? RETURNING "\w+"\."id"$', re.S
)
UNNEST_RE = re.compile(r'^INSERT INTO "(\w+)" \((.*?)\) SELECT \* FROM UNNEST\((.*)\)( RETURNING .*)?$', re.S)


def _table_max_ids() -> dict[str, int]:
    from django.apps import apps
    from django.db import connection

    out = {}
    with connection.cursor() as cur:
        for model in apps.get_models():
            if (
                model._meta.managed
                and model._meta.pk.column == "id"
                and model._meta.pk.get_internal_type()
                in (
                    "AutoField",
                    "BigAutoField",
                )
            ):
                cur.execute(f'SELECT coalesce(max(id), 0) FROM "{model._meta.db_table}"')
                out[model._meta.db_table] = cur.fetchone()[0]
    return out


def _new_ids(before: dict[str, int]) -> dict[str, list[int]]:
    from django.db import connection

    out = {}
    with connection.cursor() as cur:
        for table, top in before.items():
            cur.execute(f'SELECT id FROM "{table}" WHERE id > %s ORDER BY id', [top])
            out[table] = [r[0] for r in cur.fetchall()]
    return out


def pgbench_script(statements: list[str], key: str, new_ids: dict[str, list[int]]) -> str:
    r"""One placement's statements as a pgbench script: every single-row INSERT's id is
    \gset into a variable and put where later statements use it (by column: the table's
    id, or a foreign key to that table); new UUIDs and the idempotency key get a fresh
    random value per transaction."""
    refs = _fk_columns()
    uuids: dict[str, str] = {}
    lines = ["\\set u random(100000000000, 999999999999)", "BEGIN;"]
    returned: list[tuple[str, int, str]] = []  # (table, literal id, variable)
    pending = {t: list(ids) for t, ids in new_ids.items()}
    for n, sql in enumerate(statements):
        if sql in ("BEGIN", "COMMIT") or sql.startswith(("FETCH ", "CLOSE ")):
            continue  # the script's own BEGIN/COMMIT; a server-side cursor is read at once below
        sql = DECLARE_RE.sub("", sql)  # QuerySet.iterator(): the same SELECT, all rows
        sql = sql.replace(key, "k:u")
        if sql.startswith("INSERT"):
            for found in UUID_RE.findall(sql):
                uuids.setdefault(found.replace("-", ""), f"{len(uuids):08x}-0000-4000-8000-:u")
        for old, new in uuids.items():
            dashed = f"{old[:8]}-{old[8:12]}-{old[12:16]}-{old[16:20]}-{old[20:]}"
            sql = sql.replace(old, new.replace("-", "")).replace(dashed, new)
        for table, literal, var in returned:
            cols = refs.get(table, set())
            for col in [rf'"{table}"\."id"', *(rf'(?:"\w+"\.)?"{c}"' for c in cols)]:
                sql = re.sub(rf"({col} (?:= |IN \((?:[^)]*?, )?))({literal})\b", rf"\1:{var}", sql)
            if (m := INSERT_RE.match(sql)) is not None:
                names = [c.strip().strip('"') for c in m.group(2).split(",")]
                values = _split_top(m.group(3))
                if len(names) == len(values):
                    values = [
                        f" :{var}" if v.strip() == str(literal) and c in cols else v
                        for c, v in zip(names, values, strict=True)
                    ]
                    sql = sql[: m.start(3)] + ",".join(values) + sql[m.end(3) :]
            elif (m := UNNEST_RE.match(sql)) is not None:
                names = [c.strip().strip('"') for c in m.group(2).split(",")]
                arrays = _split_top(m.group(3))
                if len(names) == len(arrays):
                    arrays = [
                        re.sub(rf"(?<![\w.:]){literal}(?![\w.])", f":{var}", a).replace("::int2[]", "::int8[]")
                        if c in cols
                        else a
                        for c, a in zip(names, arrays, strict=True)
                    ]
                    sql = sql[: m.start(3)] + ",".join(arrays) + sql[m.end(3) :]
        m = INSERT_RE.match(sql)
        if m is not None and pending.get(m.group(1)):
            var = f"id{n}"
            returned.append((m.group(1), pending[m.group(1)].pop(0), var))
            lines.append(f"{sql} AS {var} \\gset")
        else:
            lines.append(sql + ";")
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def replay_scripts(seeded: dict, asset_ids: list[int], mode: str, clients: int, out: Path) -> list[Path]:
    """One captured placement per client, each on a book of the layout (round robin) by
    another investor; returns the pgbench files."""
    files = []
    for i in range(clients):
        key_probe = f"capture{uuid.uuid4().hex[:24]}"
        before = _table_max_ids()
        statements = _capture_with_key(
            investor_id=seeded["investor_ids"][-1 - i],
            asset_id=asset_ids[i % len(asset_ids)],
            mode=mode,
            seed=i,
            key=key_probe,
        )
        script = pgbench_script(statements, key_probe, _new_ids(before))
        path = out / f"{mode}-{len(asset_ids)}-{i}.sql"
        path.write_text(script)
        files.append(path)
    return files


def _capture_with_key(*, investor_id: int, asset_id: int, mode: str, seed: int, key: str) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from assets.models import Asset
    from marketplace.trading import trade_order_place

    investor, asset = User.objects.get(pk=investor_id), Asset.objects.get(pk=asset_id)
    with CaptureQueriesContext(connection) as ctx:
        trade_order_place(
            investor=investor,
            asset=asset,
            time_in_force="gtc",
            idempotency_key=key,
            **order_args(random.Random(seed), mode),
        )
    return [q["sql"] for q in ctx.captured_queries]


def run_pgbench(db: str, files: list[Path], clients: int, seconds: float) -> dict:
    """pgbench on a copy of the bench database taken now (same server, same rows)."""
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        raise SystemExit("bench: pgbench is not on PATH (apt-get install postgresql-client)")
    from django.db import connections

    connections.close_all()
    copy = f"{db}_replay"
    psql("postgres", f"DROP DATABASE IF EXISTS {copy} WITH (FORCE)", f"CREATE DATABASE {copy} TEMPLATE {db}")
    cmd = [pgbench, "-h", "127.0.0.1", "-U", "postgres", "-n", "-M", "simple", "-c", str(clients)]
    cmd += ["-j", str(min(clients, os.cpu_count() or 1)), "-T", str(int(seconds))]
    for f in files:
        cmd += ["-f", str(f)]
    cmd.append(copy)
    saved, purchase.DB_NAME = purchase.DB_NAME, copy  # BackendCpu counts this database's backends
    try:
        with purchase.CpuMeter() as cpu, purchase.BackendCpu() as pg:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        purchase.DB_NAME = saved
        psql("postgres", f"DROP DATABASE IF EXISTS {copy} WITH (FORCE)")
    out = proc.stdout + proc.stderr
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    processed = re.search(r"number of transactions actually processed: (\d+)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    if proc.returncode != 0 or tps is None or processed is None:
        raise SystemExit(f"bench: pgbench failed (exit {proc.returncode}):\n{out[-3000:]}\nscript: {files[0]}")
    done = int(processed.group(1))
    return {
        "rate": float(tps.group(1)),
        "done": done,
        "failed": int(failed.group(1)) if failed else 0,
        "cpu": cpu.busy,
        "pg_ms": pg.seconds / max(1, done) * 1000,
    }


# -- 4. end to end: trades settled on devnet ---------------------------------------------------


def run_settlement(args, tmp: Path, started: float) -> dict:
    """Mint, deliver the sellers' units and rest their asks (setup through the outbox,
    not timed); then --trades crossing buys; trades confirmed / (first trade committed ->
    last confirmed)."""
    from django.db import transaction
    from django.utils import timezone

    from chain import services as chain_services
    from chain.bootstrap import chain_bootstrap
    from chain.models import ChainTransaction
    from devnet.testing import DevnetProcess
    from marketplace.models import Holding, Trade
    from marketplace.services import deposit_record
    from marketplace.tests.factories import OfferingFactory, StaffFactory, verified_investor
    from marketplace.trading import trade_order_place

    devnet = DevnetProcess(tmp / "devnet").start()
    os.environ.update(ALGOD_URL=devnet.url, ALGOD_TOKEN=devnet.token, DEVNET_DATA_DIR=str(devnet.data_dir))
    from django.conf import settings

    settings.ALGOD_URL, settings.ALGOD_TOKEN = devnet.url, devnet.token
    settings.DEVNET_DATA_DIR = str(devnet.data_dir)  # the dispenser chain_bootstrap funds from
    log = open(tmp / "worker.log", "ab")  # noqa: SIM115  (closed with the bench)

    def start_worker() -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "threads"]
            + ["--concurrency", str(args.concurrency), "--loglevel", "WARNING", "--without-gossip"]
            + ["--without-mingle", "--without-heartbeat", "-n", f"bench-trading-{uuid.uuid4().hex[:4]}@%h"],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        purchase.STARTED.append(proc)
        return proc

    worker = start_worker()
    try:

        def wait(qs, n, label):
            while time.monotonic() < started + args.deadline - 10:
                if qs.filter(status__in=["confirmed", "failed"]).count() >= n:
                    return
                time.sleep(0.05)
            raise SystemExit(f"bench: {label} did not finish within the deadline")

        def request(payload, tag, kind="asset_transfer"):
            with transaction.atomic():
                return chain_services.outbox_request(
                    kind=kind, payload=payload, idempotency_key=f"{tag}-{uuid.uuid4().hex}"
                )

        _, states = chain_bootstrap()
        treasury = {s.account.role: s.account for s in states}["treasury"].address
        total = 10_000_000
        create = request(
            {
                "asset_name": "Bench Trading",
                "unit_name": "BTRD",
                "total": total,
                "decimals": 0,
                "default_frozen": True,
                "url": "https://rwa.example/bench-trading#arc3",
                "metadata_hash": "00" * 32,
            },
            "mint",
            kind="asset_create",
        )
        wait(ChainTransaction.objects.filter(pk=create.pk), 1, "minting")
        create.refresh_from_db()
        assert create.status == "confirmed", create.last_error
        long_ago = timezone.now() - timezone.timedelta(days=3650)
        asset = OfferingFactory(
            asset__asa_id=create.asset_id, asset__total_fractions=total, asset__live_at=long_ago
        ).asset
        from chain.selectors import investor_accounts  # noqa: F401  (warm import)

        sellers = [verified_investor() for _ in range(args.sellers)]
        buyers = [verified_investor() for _ in range(args.buyers)]
        staff = StaffFactory()
        for i, user in enumerate(buyers):
            deposit_record(investor=user, amount_minor=10**10, currency="EUR", bank_reference=f"E2E-{i}", actor=staff)
        units = args.trades * QMAX
        from chain.models import ChainAccount

        deliveries = [
            request(
                {
                    "asset_id": create.asset_id,
                    "sender": treasury,
                    "receiver": ChainAccount.objects.get(user=s).address,
                    "amount": units,
                },
                "deliver",
            )
            for s in sellers
        ]
        wait(ChainTransaction.objects.filter(pk__in=[d.pk for d in deliveries]), len(deliveries), "deliveries")
        Holding.objects.bulk_create(
            [Holding(investor=s, asset=asset, quantity=units, first_acquired_at=long_ago) for s in sellers]
        )
        for s in sellers:
            trade_order_place(
                investor=s,
                asset=asset,
                side="sell",
                quantity=units,
                limit_price_minor=100_00,
                time_in_force="gtc",
                idempotency_key=f"e2e-ask-{s.pk}",
            )

        # Backlog: the trades are placed with the worker stopped (their settlement tasks
        # wait in Redis), so the figure is the settlement path's rate, not one client's
        # placement rate; timed from the worker's start to the last confirmation.
        purchase.stop(worker)
        rng = random.Random(7)
        t0 = time.monotonic()
        for i in range(args.trades):
            trade_order_place(
                investor=buyers[i % len(buyers)],
                asset=asset,
                side="buy",
                quantity=rng.randint(1, QMAX),
                limit_price_minor=100_00,
                time_in_force="gtc",
                idempotency_key=f"e2e-buy-{i}",
            )
        placing = time.monotonic() - t0
        worker_started = timezone.now()
        worker = start_worker()
        trades = Trade.objects.filter(asset=asset)
        n = trades.count()
        deadline = started + args.deadline - 10
        while trades.filter(status__in=["confirmed", "failed", "reversed"]).count() < n:
            if time.monotonic() > deadline:
                raise SystemExit("bench: trades did not settle within the deadline")
            time.sleep(0.05)
        rows = list(trades.values("status", "created_at", "chain_tx__confirmed_at", "chain_tx__group_txids"))
        confirmed = [r for r in rows if r["status"] == "confirmed"]
        first = min(r["chain_tx__confirmed_at"] for r in confirmed)
        last = max(r["chain_tx__confirmed_at"] for r in confirmed)
        lat = sorted((r["chain_tx__confirmed_at"] - worker_started).total_seconds() * 1000 for r in confirmed)
        from io import StringIO

        from django.core.management import call_command

        rec = StringIO()
        try:
            call_command("reconcile", stdout=rec)
            reconcile = rec.getvalue().strip().splitlines()[-1]
        except SystemExit:
            reconcile = "PROBLEMS: " + rec.getvalue().strip().replace("\n", "; ")
        return {
            "trades": n,
            "confirmed": len(confirmed),
            "failed": n - len(confirmed),
            "rate": len(confirmed) / (last - worker_started).total_seconds(),
            "steady": (len(confirmed) - 1) / max(1e-9, (last - first).total_seconds()),
            "placing": n / placing,
            "p50": lat[len(lat) // 2] if lat else 0,
            "p95": lat[int(len(lat) * 0.95)] if lat else 0,
            "groups": Counter(len(r["chain_tx__group_txids"] or []) for r in confirmed),
            "reconcile": reconcile,
        }
    finally:
        purchase.stop(worker)
        devnet.stop()


# -- main -------------------------------------------------------------------------------------------


def books(db: str) -> list[str]:
    from io import StringIO

    from django.core.management import call_command

    lines = []
    for command in ("market_check", "ledger_check"):
        out = StringIO()
        try:
            call_command(command, stdout=out)
            lines.append(f"{command}: {out.getvalue().strip().splitlines()[-1]}")
        except SystemExit:
            lines.append(f"{command}: PROBLEMS\n{out.getvalue()}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="client processes and pgbench clients")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each service and replay run")
    parser.add_argument("--investors", type=int, default=200)
    parser.add_argument("--database", default="rwa_bench_trading")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--trades", type=int, default=150, help="trades of the end-to-end run")
    parser.add_argument("--buyers", type=int, default=20)
    parser.add_argument("--sellers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4, help="worker threads of the end-to-end run")
    parser.add_argument("--skip-settlement", action="store_true")
    parser.add_argument("--deadline", type=float, default=420.0)
    args = parser.parse_args()
    started = time.monotonic()
    timer = purchase.watchdog(args.deadline)
    setup_env(args.database, args.broker)
    purchase.DB_NAME = args.database
    psql("postgres", f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)", f"CREATE DATABASE {args.database}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-trading-"))
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        from chain.worker import queue_purge

        call_command("migrate", verbosity=0)
        queue_purge()
        seeded = seed(investors=args.investors)
        connections.close_all()
        psql(args.database, "VACUUM ANALYZE")
        setup_seconds = time.monotonic() - started
        layouts = {"1 hot book": seeded["asset_ids"][:1], f"{BOOKS} books": seeded["asset_ids"]}
        results = []
        for mode in ("non-crossing", "crossing"):
            for layout, asset_ids in layouts.items():
                service = run_clients(args.clients, seeded, asset_ids, mode, args.seconds)
                files = replay_scripts(seeded, asset_ids, mode, args.clients, tmp)
                replay = run_pgbench(args.database, files, args.clients, args.seconds)
                results.append((mode, layout, service, replay, files))
        checks = books(args.database)
        enqueued = queue_purge()
        settled = None if args.skip_settlement else run_settlement(args, tmp, started)
    finally:
        for proc in purchase.STARTED:
            purchase.stop(proc)
        timer.cancel()
    report(args, results, checks, enqueued, settled, setup_seconds, started, tmp)
    return 1 if any("PROBLEMS" in c for c in checks) or (settled and "PROBLEMS" in settled["reconcile"]) else 0


def report(args, results, checks, enqueued, settled, setup_seconds, started, tmp) -> None:
    print(
        f"\nOrder placement ({os.cpu_count()} CPUs; database {args.database}; {args.clients} client processes; "
        f"{args.investors} investors; 1..{QMAX} units; {args.seconds:.0f} s per run)"
    )
    w = 28
    print(
        f"  {'':{w}s} {'rate':>9s} {'count':>6s} {'p50 ms':>7s} {'p95 ms':>7s} {'client':>7s} {'PG':>6s} {'busy':>5s}"
    )
    for mode, layout, s, r, files in results:
        statements = sum(1 for line in files[0].read_text().splitlines() if line and not line.startswith("\\"))
        print(f"  {mode}, {layout} ({statements - 2} statements + BEGIN/COMMIT)")
        print(
            f"  {'  trade_order_place':{w}s} {s['rate']:7.1f}/s {s['done']:6d} {s['p50']:7.1f} {s['p95']:7.1f} "
            f"{s['client_ms']:5.1f}ms {s['pg_ms']:4.1f}ms {s['cpu']:5.0%}"
            + (f"  refused {s['errors']}" if s["errors"] else "")
        )
        print(
            f"  {'  pgbench replay':{w}s} {r['rate']:7.1f}/s {r['done']:6d} {'':>7s} {'':>7s} {'-':>7s} "
            f"{r['pg_ms']:4.1f}ms {r['cpu']:5.0%}" + (f"  failed {r['failed']}" if r["failed"] else "")
        )
        print(f"  {'  ratio':{w}s} {s['rate'] / r['rate']:7.2f}   (aim >= 0.25)")
    for line in checks:
        print(f"  {line}")
    print(f"  settlement wakes sent on commit and purged (no worker in this part): {enqueued}")
    if settled:
        print(
            f"\nEnd to end ({settled['trades']} crossing buys from {args.buyers} buyers against {args.sellers} deep asks; "
            f"devnet + 1 Celery worker, threads x {args.concurrency})"
        )
        print(
            f"  trades settled: {settled['rate']:.1f}/s from the worker's start ({settled['confirmed']} confirmed, "
            f"{settled['failed']} failed; {settled['steady']:.1f}/s first to last confirmation); confirmed "
            f"p50 {settled['p50']:.0f} ms, p95 {settled['p95']:.0f} ms after the worker started; placed beforehand "
            f"at {settled['placing']:.1f}/s by one client; group sizes {dict(settled['groups'])}"
        )
        print(f"  reconcile: {settled['reconcile']}")
    print(f"  setup {setup_seconds:.1f} s; whole run {time.monotonic() - started:.1f} s; scripts in {tmp}")


if __name__ == "__main__":
    sys.exit(main())
