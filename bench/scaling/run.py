"""Per-request cost of the pages whose data grows, at three sizes, beside a bare view.

    .venv/bin/python -m bench.scaling.run [--levels 3] [--scale 1.0] [--requests 9]

One database (rwa_bench_scaling, recreated and migrated from scratch) grows through three
levels; at each level every page is requested in-process through Django's test Client
(the whole middleware stack, DEBUG off, persistent connection) and timed:

| data                                    | level 1 | level 2 | level 3   |
|-----------------------------------------|---------|---------|-----------|
| live assets (catalogue), each with an   | 50      | 5,000   | 50,000    |
|   offering and a market                 |         |         |           |
| the investor's holdings                 | 10      | 1,000   | 10,000    |
| the investor's cash movements (postings)| 100     | 10,000  | 100,000   |
| open orders on one book                 | 100     | 1,000   | 10,000    |
| primary orders, holdings, trade orders, | 1,000   | 100,000 | 1,000,000 |
|   postings (each table; entries: half)  |         |         |           |

Rows are written with INSERT … SELECT over generate_series, cloned from template rows
the factories made (so every column the code reads has a real value), then VACUUM
ANALYZE. The table gives, per page and level, the median wall time of --requests
requests (after two warm-ups), their CPU per request (this process and its PostgreSQL
backend: steadier than wall time when other jobs load the machine), the queries per
request, and the ratios largest / smallest (aim: ≤ 2). The yardstick is `/bench/bare`
(a view returning "ok" through every middleware) in the same run. --scale multiplies
every size (0.1 for a quick look, ~2 minutes; the full run takes ~9); --levels 2 stops
after the middle level.

Needs PostgreSQL on 127.0.0.1. Uses its own database and cache prefix; Redis db 13 as
broker (nothing is published: no page enqueues work).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DB_NAME = "rwa_bench_scaling"
PG = "postgresql://postgres@127.0.0.1:5432"
USERS = 20  # the other investors: holdings are every (user, asset) pair, USERS × assets
MAX_OWN_OPEN = 20  # MARKETPLACE_MAX_OPEN_ORDERS_PER_ASSET: the investor's open orders on the book

LEVELS = [
    {"assets": 50, "holdings": 10, "movements": 100, "book": 100, "rows": 1_000},
    {"assets": 5_000, "holdings": 1_000, "movements": 10_000, "book": 1_000, "rows": 100_000},
    {"assets": 50_000, "holdings": 10_000, "movements": 100_000, "book": 10_000, "rows": 1_000_000},
]


def setup_env() -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.scaling.settings",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/13",
        CACHE_KEY_PREFIX=f"bench-scaling-{uuid.uuid4().hex[:6]}",
        LOG_LEVEL="WARNING",
    )


def create_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")


# -- data ------------------------------------------------------------------------------------


class Data:
    """Grows the bench's rows to a level with bulk SQL, cloning template rows."""

    def __init__(self, conn, seeded: dict):
        self.conn = conn
        self.s = seeded
        self.columns: dict[str, list[str]] = {}

    def q(self, sql: str, *params) -> list[tuple]:
        cur = self.conn.execute(sql, params or None)
        return cur.fetchall() if cur.description else []

    def one(self, sql: str, *params):
        return self.q(sql, *params)[0][0]

    def cols(self, table: str) -> list[str]:
        if table not in self.columns:
            rows = self.q(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND column_name <> 'id' "
                "ORDER BY ordinal_position",
                table,
            )
            self.columns[table] = [r[0] for r in rows]
        return self.columns[table]

    def clone(self, table: str, template_id: int, source: str, overrides: dict[str, str]) -> int:
        """INSERT one row per row of `source` (a FROM clause naming `g`), each a copy of
        the template row `t` with `overrides` (column → SQL expression)."""
        cols = self.cols(table)
        exprs = [overrides.get(c, f"t.{c}") for c in cols]
        sql = (
            f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} "
            f"FROM {table} t, {source} WHERE t.id = {int(template_id)}"
        )
        return self.conn.execute(sql).rowcount

    def count(self, table: str, where: str = "TRUE") -> int:
        return self.one(f"SELECT count(*) FROM {table} WHERE {where}")

    def grow(self, level: dict) -> dict[str, float]:
        timings = {}
        for name in ("assets", "holdings", "primary_orders", "ledger", "trade_orders"):
            t0 = time.perf_counter()
            getattr(self, f"grow_{name}")(level)
            timings[name] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.conn.execute("VACUUM ANALYZE")
        timings["vacuum"] = time.perf_counter() - t0
        return timings

    def grow_assets(self, level: dict) -> None:
        """Live assets with an offering and a market each; bench_assets numbers them 1..n."""
        s = self.s
        have = self.count("assets_asset", "status = 'live'")
        want = level["assets"]
        if want > have:
            g = f"generate_series({have + 1}, {want}) g"
            self.clone(
                "assets_asset",
                s["asset_id"],
                g,
                {
                    "public_id": "gen_random_uuid()",
                    "name": "'Bench building ' || g",
                    "asset_name": "'Bench building ' || g",
                    "unit_name": "'B' || g",
                    "asa_id": "5000000 + g",
                    "created_at": "t.created_at - g * interval '1 second'",
                    "live_at": "t.live_at - g * interval '1 second'",
                },
            )
            self._clone_per_asset("marketplace_offering", s["offering_id"], have, want)
            self._clone_per_asset("marketplace_market", s["market_id"], have, want)
        self.conn.execute("DROP TABLE IF EXISTS bench_assets")
        self.conn.execute(
            "CREATE TABLE bench_assets AS SELECT row_number() OVER (ORDER BY a.id) AS rn, a.id AS asset_id, "
            "o.id AS offering_id, m.id AS market_id FROM assets_asset a JOIN marketplace_offering o ON o.asset_id = a.id "
            "JOIN marketplace_market m ON m.asset_id = a.id WHERE a.status = 'live'"
        )
        self.conn.execute("CREATE UNIQUE INDEX ON bench_assets (rn)")
        self.n_assets = self.count("bench_assets")

    def _clone_per_asset(self, table: str, template_id: int, have: int, want: int) -> None:
        cols = self.cols(table)
        overrides = {"public_id": "gen_random_uuid()", "asset_id": "a.id"}
        exprs = [overrides.get(c, f"t.{c}") for c in cols]
        self.conn.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} FROM {table} t, assets_asset a "
            f"WHERE t.id = {int(template_id)} AND a.asa_id > {5000000 + have} AND a.asa_id <= {5000000 + want}"
        )

    def grow_holdings(self, level: dict) -> None:
        """The investor's holdings (the first `holdings` assets) and every (other user,
        asset) pair: USERS × assets rows."""
        s = self.s
        have = self.count("marketplace_holding", f"investor_id = {s['investor_id']}")
        if level["holdings"] > have:
            self.conn.execute(
                "INSERT INTO marketplace_holding (investor_id, asset_id, quantity, pending_quantity, locked_quantity, "
                f"pending_out_quantity, updated_at, first_acquired_at) SELECT {s['investor_id']}, b.asset_id, 10, 0, 0, "
                f"0, now(), now() FROM bench_assets b WHERE b.rn <= {level['holdings']} "
                "ON CONFLICT (investor_id, asset_id) DO NOTHING"
            )
        users = ",".join(str(u) for u in s["user_ids"])
        self.conn.execute(
            "INSERT INTO marketplace_holding (investor_id, asset_id, quantity, pending_quantity, locked_quantity, "
            "pending_out_quantity, updated_at, first_acquired_at) "
            f"SELECT u, b.asset_id, 5, 0, 0, 0, now(), now() FROM bench_assets b, unnest(ARRAY[{users}]) u "
            "ON CONFLICT (investor_id, asset_id) DO NOTHING"
        )

    def grow_primary_orders(self, level: dict) -> None:
        """The investor's orders (one per two cash movements) and the others' up to `rows`."""
        s = self.s
        n = self.n_assets
        mine = self.count("marketplace_primaryorder", f"investor_id = {s['investor_id']}")
        want_mine = level["movements"] // 2
        if want_mine > mine:
            hold = max(1, level["holdings"])
            self.clone(
                "marketplace_primaryorder",
                s["order_id"],
                f"generate_series({mine + 1}, {want_mine}) g JOIN bench_assets b ON b.rn = 1 + g % {hold}",
                {
                    "public_id": "gen_random_uuid()",
                    "idempotency_key": "'bench-' || g",
                    "asset_id": "b.asset_id",
                    "offering_id": "b.offering_id",
                    "chain_tx_id": "NULL",
                    "created_at": "now() - interval '400 days' + g * interval '5 minutes'",
                },
            )
        total = self.count("marketplace_primaryorder")
        if level["rows"] > total:
            users = s["user_ids"]
            self.clone(
                "marketplace_primaryorder",
                s["order_id"],
                f"generate_series({total + 1}, {level['rows']}) g JOIN bench_assets b ON b.rn = 1 + g % {n} "
                f"JOIN LATERAL (SELECT (ARRAY{users})[1 + g % {len(users)}] AS u) x ON TRUE",
                {
                    "public_id": "gen_random_uuid()",
                    "idempotency_key": "'other-' || g",
                    "investor_id": "x.u",
                    "asset_id": "b.asset_id",
                    "offering_id": "b.offering_id",
                    "chain_tx_id": "NULL",
                    "created_at": "now() - interval '400 days' + g * interval '20 seconds'",
                },
            )

    def grow_ledger(self, level: dict) -> None:
        """The investor's cash movements: one entry per own order, two postings each (cash
        available → held); the others' entries (two postings each) up to `rows` postings."""
        s = self.s
        # The investor's: entries for own orders without one yet.
        self.conn.execute(
            "INSERT INTO marketplace_journalentry (kind, memo, created_at, order_id) "
            "SELECT 'purchase_reserve', '', o.created_at, o.id FROM marketplace_primaryorder o "
            f"WHERE o.investor_id = {s['investor_id']} AND o.id <> {s['order_id']} "
            "AND NOT EXISTS (SELECT 1 FROM marketplace_journalentry e WHERE e.order_id = o.id)"
        )
        self.conn.execute(
            "INSERT INTO marketplace_posting (entry_id, account_id, amount_minor) "
            "SELECT e.id, acc.account_id, acc.sign * o.total_minor FROM marketplace_journalentry e "
            "JOIN marketplace_primaryorder o ON o.id = e.order_id "
            f"CROSS JOIN (VALUES ({s['available_id']}, -1), ({s['held_id']}, 1)) acc(account_id, sign) "
            f"WHERE o.investor_id = {s['investor_id']} "
            "AND NOT EXISTS (SELECT 1 FROM marketplace_posting p WHERE p.entry_id = e.id)"
        )
        postings = self.count("marketplace_posting")
        if level["rows"] > postings:
            entries = (level["rows"] - postings) // 2
            start = self.one("SELECT coalesce(max(id), 0) FROM marketplace_journalentry")
            self.conn.execute(
                "INSERT INTO marketplace_journalentry (kind, memo, created_at) "
                f"SELECT 'deposit', 'bench ' || g, now() - interval '400 days' + g * interval '10 seconds' "
                f"FROM generate_series(1, {entries}) g"
            )
            accounts = s["other_accounts"]
            self.conn.execute(
                "INSERT INTO marketplace_posting (entry_id, account_id, amount_minor) "
                f"SELECT e.id, CASE WHEN side = 1 THEN {s['bank_id']} ELSE "
                f"(ARRAY{accounts})[1 + e.id % {len(accounts)}] END, CASE WHEN side = 1 THEN -1000 ELSE 1000 END "
                f"FROM marketplace_journalentry e, (VALUES (1), (2)) v(side) WHERE e.id > {start}"
            )

    def grow_trade_orders(self, level: dict) -> None:
        """Open orders on the book (bids below asks; one in ten the investor's, up to the
        open orders an investor may have on a book), the rest closed (cancelled) on every
        market, up to `rows`."""
        s = self.s
        users = s["user_ids"]
        book = self.count("marketplace_tradeorder", f"market_id = {s['market_id']} AND status = 'open'")
        if level["book"] > book:
            self.clone(
                "marketplace_tradeorder",
                s["trade_order_id"],
                f"generate_series({book + 1}, {level['book']}) g "
                f"JOIN LATERAL (SELECT CASE WHEN g % 10 = 0 AND g <= {10 * MAX_OWN_OPEN} THEN {s['investor_id']} "
                f"ELSE (ARRAY{users})[1 + g % {len(users)}] END AS u, g % 2 = 0 AS buy) x ON TRUE",
                {
                    "public_id": "gen_random_uuid()",
                    "idempotency_key": "'book-' || g",
                    "investor_id": "x.u",
                    "side": "CASE WHEN x.buy THEN 'buy' ELSE 'sell' END",
                    "limit_price_minor": "CASE WHEN x.buy THEN 9000 - g % 500 ELSE 11000 + g % 500 END",
                    "reserved_minor": "CASE WHEN x.buy THEN (9000 - g % 500) * t.quantity ELSE 0 END",
                    "priority": "g",
                    "created_at": "now() - g * interval '1 second'",
                },
            )
        total = self.count("marketplace_tradeorder")
        if level["rows"] > total:
            self.clone(
                "marketplace_tradeorder",
                s["trade_order_id"],
                f"generate_series({total + 1}, {level['rows']}) g JOIN bench_assets b ON b.rn = 1 + g % {self.n_assets} "
                f"JOIN LATERAL (SELECT (ARRAY{users})[1 + g % {len(users)}] AS u) x ON TRUE",
                {
                    "public_id": "gen_random_uuid()",
                    "idempotency_key": "'closed-' || g",
                    "investor_id": "x.u",
                    "asset_id": "b.asset_id",
                    "market_id": "b.market_id",
                    "status": "'cancelled'",
                    "reserved_minor": "0",
                    "side": "'sell'",
                    "priority": "g",
                    "closed_at": "now() - interval '400 days' + g * interval '20 seconds'",
                    "created_at": "now() - interval '400 days' + g * interval '20 seconds'",
                },
            )


def seed() -> dict:
    """Template rows made as the tests make them: a live asset with an offering and a
    market, the investor (KYC approved, custodial account, funded) with a holding, an
    order and an open buy order, staff, and USERS other investors."""
    from django.utils import timezone

    from accounts.models import User
    from chain.services import platform_accounts_ensure
    from marketplace.models import Holding, LedgerAccount, Offering, PrimaryOrder, TradeOrder
    from marketplace.services import deposit_record
    from marketplace.tests.factories import OfferingFactory, StaffFactory, verified_investor
    from marketplace.trading import market_open

    now = timezone.now()
    platform_accounts_ensure()
    offering: Offering = OfferingFactory.create(asset__live_at=now)
    market = market_open(asset=offering.asset)
    staff: User = StaffFactory.create(email="staff@bench.rwa")
    investor = verified_investor(email="investor@bench.rwa")
    deposit_record(investor=investor, amount_minor=10**12, currency="EUR", bank_reference="BENCH", actor=staff)
    held = LedgerAccount.objects.create(kind=LedgerAccount.Kind.INVESTOR_HELD, user=investor, currency="EUR")
    holding = Holding.objects.create(investor=investor, asset=offering.asset, quantity=10)
    order = PrimaryOrder.objects.create(
        investor=investor,
        offering=offering,
        asset=offering.asset,
        idempotency_key="template",
        quantity=1,
        price_per_fraction_minor=10_000,
        gross_minor=10_000,
        fee_minor=150,
        total_minor=10_150,
        currency="EUR",
        status=PrimaryOrder.Status.SETTLED,
        settled_at=now,
    )
    trade_order = TradeOrder.objects.create(
        market=market,
        asset=offering.asset,
        investor=investor,
        idempotency_key="template",
        side=TradeOrder.Side.BUY,
        quantity=2,
        remaining_quantity=2,
        limit_price_minor=9_000,
        currency="EUR",
        time_in_force=TradeOrder.TimeInForce.GTC,
        priority=0,
        reserved_minor=18_000,
    )
    others = [
        User.objects.create_user(email=f"other{i}@bench.rwa", password=None, full_name=f"Other {i}")
        for i in range(USERS)
    ]
    accounts = LedgerAccount.objects.bulk_create(
        [LedgerAccount(kind=LedgerAccount.Kind.INVESTOR_AVAILABLE, user=u, currency="EUR") for u in others]
    )
    return {
        "asset_id": offering.asset_id,
        "asset_public_id": offering.asset.public_id,
        "offering_id": offering.pk,
        "market_id": market.pk,
        "investor_id": investor.pk,
        "staff_id": staff.pk,
        "holding_id": holding.pk,
        "order_id": order.pk,
        "trade_order_id": trade_order.pk,
        "available_id": LedgerAccount.objects.get(user=investor, kind=LedgerAccount.Kind.INVESTOR_AVAILABLE).pk,
        "held_id": held.pk,
        "bank_id": LedgerAccount.objects.get(user=None, kind=LedgerAccount.Kind.BANK, currency="EUR").pk,
        "user_ids": [u.pk for u in others],
        "other_accounts": [a.pk for a in accounts],
    }


# -- measuring ---------------------------------------------------------------------------------


def pages(seeded: dict) -> list[tuple[str, str, str, dict]]:
    """(label, who, path, extra request headers): who is anon, investor or staff."""
    asset = seeded["asset_public_id"]
    htmx = {"HTTP_HX_REQUEST": "true"}
    admin = "/backoffice/marketplace"
    return [
        ("bare view (yardstick)", "anon", "/bench/bare", {}),
        ("catalogue /assets/ (rendered)", "anon:nocache", "/assets/", {}),
        ("catalogue /assets/ (cached)", "anon", "/assets/", {}),
        ("catalogue, page 3 by price (rendered)", "anon:nocache", "/assets/?sort=price_asc&page=3", {}),
        ("portfolio", "investor", "/market/portfolio/", {}),
        ("trade page", "investor", f"/market/assets/{asset}/trade/", {}),
        ("trade: book fragment", "investor", f"/market/assets/{asset}/trade/book", htmx),
        ("trade: my orders fragment", "investor", f"/market/assets/{asset}/trade/mine", htmx),
        ("admin: primary orders", "staff", f"{admin}/primaryorder/", {}),
        ("admin: primary orders, settled", "staff", f"{admin}/primaryorder/?status__exact=settled", {}),
        ("admin: holdings", "staff", f"{admin}/holding/", {}),
        ("admin: journal entries", "staff", f"{admin}/journalentry/", {}),
        ("admin: ledger accounts", "staff", f"{admin}/ledgeraccount/", {}),
        ("admin: trade orders", "staff", f"{admin}/tradeorder/", {}),
        ("admin: trade orders, open", "staff", f"{admin}/tradeorder/?status__exact=open", {}),
    ]


TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of the PostgreSQL backend serving this process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


@dataclass(frozen=True)
class Measure:
    wall_ms: float  # median of the timed requests
    cpu_ms: float  # mean CPU of this process and its PostgreSQL backend per request
    queries: int
    status: int


def measure(seeded: dict, requests: int) -> dict[str, Measure]:
    """Every page: two untimed warm-up requests (the second also counts the queries),
    then `requests` timed ones."""
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User

    clients = {who: Client(raise_request_exception=False) for who in ("anon", "investor", "staff")}
    clients["investor"].force_login(User.objects.get(pk=seeded["investor_id"]))
    clients["staff"].force_login(User.objects.get(pk=seeded["staff_id"]))
    results = {}
    for label, who, path, headers in pages(seeded):
        role, _, mode = who.partition(":")
        client = clients[role]
        with override_settings(CATALOGUE_CACHE_SECONDS=0) if mode == "nocache" else contextlib.nullcontext():
            client.get(path, **headers)
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(path, **headers)
            queries = len(ctx.captured_queries)  # now: the next request resets the log
            with connection.cursor() as cursor:  # persistent connection: the same backend throughout
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
            times = []
            cpu0, db0 = time.process_time(), backend_cpu(pid)
            for _ in range(requests):
                t0 = time.perf_counter()
                client.get(path, **headers)
                times.append(time.perf_counter() - t0)
            cpu = time.process_time() - cpu0 + backend_cpu(pid) - db0
        results[label] = Measure(statistics.median(times) * 1000, cpu * 1000 / requests, queries, response.status_code)
        if response.status_code != 200:
            print(f"  ! {label}: HTTP {response.status_code}", file=sys.stderr)
    return results


def _ratio(first: float, last: float) -> str:
    ratio = last / first if first else float("nan")
    return f"{ratio:.2f}" + (" > 2" if ratio > 2 else "")


def report(levels: list[dict], results: list[dict[str, Measure]], load: list[str]) -> None:
    n = len(results)
    head = ["page"] + [f"L{i + 1} ms / CPU ms (q)" for i in range(n)] + [f"L{n}/L1 ms", f"L{n}/L1 CPU"]
    rows = []
    for label in results[0]:
        cells = [label]
        for r in results:
            m = r[label]
            cells.append(
                f"{m.wall_ms:6.1f} / {m.cpu_ms:6.1f} ({m.queries})" + ("" if m.status == 200 else f" {m.status}")
            )
        first, last = results[0][label], results[-1][label]
        cells += [_ratio(first.wall_ms, last.wall_ms), _ratio(first.cpu_ms, last.cpu_ms)]
        rows.append(cells)
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
    print()
    for i, lv in enumerate(levels):
        print(
            f"L{i + 1}: {lv['assets']:,} live assets, portfolio {lv['holdings']:,} holdings + {lv['movements']:,} "
            f"cash movements, {lv['book']:,} open orders on the book, {lv['rows']:,} rows per back-office table "
            f"(load average: {load[i]})"
        )
    print()
    print(" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print()
    print(
        "ms: median wall time of a request; CPU ms: CPU of the bench process and its PostgreSQL backend "
        "per request (steadier than wall time when other jobs load the machine); q: queries per request."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=int, default=3, choices=[1, 2, 3])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size (0.1: a quick look)")
    parser.add_argument("--requests", type=int, default=15, help="timed requests per page and level")
    args = parser.parse_args()
    levels = [{k: max(1, int(v * args.scale)) for k, v in lv.items()} for lv in LEVELS[: args.levels]]

    setup_env()
    sys.path.insert(0, str(ROOT))
    create_database()
    import django

    django.setup()
    import psycopg
    from django.core.management import call_command
    from django.db import connection

    started = time.monotonic()
    call_command("migrate", verbosity=0)
    seeded = seed()
    connection.close()
    print(f"migrated and seeded in {time.monotonic() - started:.0f} s", flush=True)
    results, load = [], []
    with psycopg.connect(f"{PG}/{DB_NAME}", autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")  # bulk loading: no flush per statement
        conn.execute("SET maintenance_work_mem = '256MB'")
        data = Data(conn, seeded)
        for i, level in enumerate(levels):
            t0 = time.monotonic()
            timings = data.grow(level)
            print(
                f"L{i + 1}: data in {time.monotonic() - t0:.0f} s ("
                + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
                + ")",
                flush=True,
            )
            load.append(Path("/proc/loadavg").read_text().split()[0])
            t0 = time.monotonic()
            results.append(measure(seeded, args.requests))
            connection.close()
            print(f"L{i + 1}: measured in {time.monotonic() - t0:.0f} s", flush=True)
    report(levels, results, load)
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
