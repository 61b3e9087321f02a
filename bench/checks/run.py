"""The whole-book proofs at scale (docs/benchmarks.md, issue 18): `ledger_check`,
`reconcile` and `market_check` on a million postings and 100,000 holdings.

    .venv/bin/python -m bench.checks.run [--investors 10000] [--assets 10] [--postings 1000000]
        [--trades 100000] [--open-orders 10000] [--database rwa_bench_checks] [--keep]

Setup (not timed, ~3 min at the default size), in its own database (recreated) and its
own devnet (a subprocess in a temporary directory):
- chain: a treasury that creates --assets ASAs, and one custodial account per investor,
  funded, opted in to every asset and sent its units: --investors × --assets holdings on
  chain (signed here with keys held in memory, 16-transaction groups, 4 threads);
- books, in bulk SQL (generate_series, one INSERT per table): the users, their custodial
  ChainAccount rows (the addresses above; the key columns are placeholders, since no
  check reads a key), two cash accounts each, --investors × --assets holdings equal to
  the chain, a market per asset, --trades settled trades with their two filled orders,
  --open-orders resting orders (half bids, half asks, never crossed; the asks lock
  units, the bids hold cash), and the journal: per trade its reserve, match and
  settlement entries (7 postings), per bid its reserve, deposits for the rest up to
  --postings postings; every balance then set to the sum of its postings. The books
  satisfy every invariant the checks prove, so each must report 0 problems.

Then each check runs in a child process of its own (`--child NAME`), so that its peak
memory is its own: wall time, rows/s, peak RSS (VmHWM) above the process's size before
the check, the Python heap's peak (tracemalloc, in a second, untimed run), SQL
statements executed and algod calls made. Beside each, in the same
run: a baseline reading the same inputs with no checking (psycopg, raw SQL; for
reconcile one GET /v2/accounts/{address} per account on a keep-alive connection).
Exits 1 if a check finds a problem."""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PG = "postgresql://postgres@127.0.0.1:5432"
CHECKS = ("ledger_check", "reconcile", "market_check")
MAKER_BPS, TAKER_BPS = 10, 20
# Explicit primary keys per table (the sequences are moved past them afterwards).
USER0, AVAIL0, HELD0, CHAIN0 = 100_000, 1_000_000, 2_000_000, 100_000
TRADE_ORDER0, ASK0, BID0 = 10_000_000, 20_000_000, 30_000_000
TRADE0, TRADE_ENTRY0, BID_ENTRY0, DEPOSIT_ENTRY0 = 10_000_000, 10_000_000, 20_000_000, 30_000_000


def units(u: int, a: int) -> int:
    """Units investor u holds of asset a (the same formula in SQL below)."""
    return 20 + (u * 7 + a * 13) % 80


UNITS_SQL = "(20 + (h.u * 7 + h.a * 13) % 80)"


def connect(db: str):
    import psycopg

    return psycopg.connect(f"{PG}/{db}", autocommit=True)


# -- chain --------------------------------------------------------------------------------


class Submitter:
    """POSTs signed groups to devnet, one keep-alive connection per thread."""

    def __init__(self, devnet, threads: int = 4):
        self.devnet, self.local = devnet, threading.local()
        self.pool = ThreadPoolExecutor(threads)
        self.posted = 0

    def _post(self, body: bytes) -> None:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.devnet.host, self.devnet.port, timeout=60)
        conn.request(
            "POST",
            "/v2/transactions",
            body=body,
            headers={"X-Algo-API-Token": self.devnet.token, "Content-Type": "application/x-binary"},
        )
        resp = conn.getresponse()
        payload = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"devnet refused a group: {payload[:300]!r}")

    def run(self, txns_and_keys: list, client) -> None:
        """Sign and send (txn, private key) pairs in groups of 16, 64 groups per validity
        window (each group is its own round)."""
        from algosdk import encoding, transaction

        chunk = 16 * 64
        for start in range(0, len(txns_and_keys), chunk):
            sp = client.suggested_params()
            sp.flat_fee, sp.fee = True, 1000
            bodies = []
            part = txns_and_keys[start : start + chunk]
            for g in range(0, len(part), 16):
                group = part[g : g + 16]
                txns = [make(sp) for make, _ in group]
                if len(txns) > 1:
                    transaction.assign_group_id(txns)
                bodies.append(
                    b"".join(
                        base64.b64decode(encoding.msgpack_encode(t.sign(key)))
                        for t, (_, key) in zip(txns, group, strict=True)
                    )
                )
            list(self.pool.map(self._post, bodies))
            self.posted += len(part)


def seed_chain(devnet, investors: int, assets: int) -> tuple[str, list[str], list[int], list[int]]:
    """(treasury address, investor addresses, ASA ids, ASA totals)."""
    from algosdk import account, mnemonic, transaction

    from devnet.testing import fund

    client = devnet.client()
    dispenser = devnet.genesis["dispenser"]["address"]
    dispenser_key = mnemonic.to_private_key(devnet.genesis["dispenser"]["mnemonic"])
    treasury_key, treasury = account.generate_account()
    fund(client, devnet.genesis, treasury, 10**12)
    keys = [account.generate_account() for _ in range(investors)]
    totals = [sum(units(u, a) for u in range(investors)) + 1_000 for a in range(assets)]
    asa_ids = []
    for a, total in enumerate(totals):
        sp = client.suggested_params()
        txn = transaction.AssetConfigTxn(
            treasury,
            sp,
            total=total,
            decimals=0,
            default_frozen=False,
            unit_name=f"BCH{a}",
            asset_name=f"Bench asset {a}",
            manager=treasury,
            reserve=treasury,
            freeze=treasury,
            clawback=treasury,
            strict_empty_address_check=False,
        )
        txid = client.send_transaction(txn.sign(treasury_key))
        asa_ids.append(transaction.wait_for_confirmation(client, txid, 4)["asset-index"])
    submitter = Submitter(devnet)
    min_balance = 100_000 * (assets + 1) + 1_000 * assets
    submitter.run(
        [
            (lambda sp, addr=addr: transaction.PaymentTxn(dispenser, sp, addr, min_balance), dispenser_key)
            for _, addr in keys
        ],
        client,
    )
    submitter.run(
        [
            (lambda sp, addr=addr, asa=asa: transaction.AssetTransferTxn(addr, sp, addr, 0, asa), key)
            for key, addr in keys
            for asa in asa_ids
        ],
        client,
    )

    def send(addr: str, asa: int, n: int):
        return lambda sp: transaction.AssetTransferTxn(treasury, sp, addr, n, asa)

    submitter.run(
        [
            (send(addr, asa, units(u, a)), treasury_key)
            for u, (_, addr) in enumerate(keys)
            for a, asa in enumerate(asa_ids)
        ],
        client,
    )
    submitter.pool.shutdown()
    return treasury, [addr for _, addr in keys], asa_ids, totals


# -- books --------------------------------------------------------------------------------


# Columns another branch may have added, with the value Django's default would give.
IF_PRESENT = {"chain_chainaccount": {"opted_in_asset_ids": "'[]'::jsonb"}}


def insert_select(cur, table: str, columns: dict[str, str], source: str, params=None) -> int:
    """INSERT INTO table (columns) SELECT their expressions FROM source; refuses to run if
    a NOT NULL column without a database default is left out (Django sets those itself)."""
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND is_nullable = 'NO' "
        "AND column_default IS NULL AND is_identity = 'NO'",
        [table],
    )
    required = {r[0] for r in cur.fetchall()}
    columns = {**{c: v for c, v in IF_PRESENT.get(table, {}).items() if c in required}, **columns}
    missing = required - set(columns) - {"id"}
    if missing:
        raise RuntimeError(f"{table}: no value for NOT NULL column(s) {sorted(missing)}")
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns.values())} FROM {source}"
    if params is not None:  # the modulo operator, not a placeholder
        sql = sql.replace(" % ", " %% ")
    cur.execute(sql, params)
    return cur.rowcount


def seed_books(db: str, args, treasury: str, addresses: list[str], asa_ids: list[int], totals: list[int]) -> dict:
    from django.utils import timezone

    from assets.models import Asset
    from chain.models import ChainAccount
    from marketplace.models import LedgerAccount, Market, Offering
    from marketplace.tests.factories import OfferingFactory

    U, A, T, P = args.investors, args.assets, args.trades, args.postings
    asks = bids = args.open_orders // 2
    assert asks <= U * A, "one resting ask per (investor, asset) at most"
    deposits = max(U, (P - 7 * T - 2 * bids) // 2)
    asset_ids, market_ids = [], []
    for a, (asa, total) in enumerate(zip(asa_ids, totals, strict=True)):
        offering: Offering = OfferingFactory(  # type: ignore[assignment]
            asset__total_fractions=total, asset__fractions_for_sale=total, fractions_for_sale=total
        )
        asset = offering.asset
        Asset.objects.filter(pk=asset.pk).update(
            asa_id=asa, total_fractions=total, asset_name=f"Bench asset {a}", status="live"
        )
        market_ids.append(
            Market.objects.create(asset=asset, currency="EUR", maker_fee_bps=MAKER_BPS, taker_fee_bps=TAKER_BPS).pk
        )
        asset_ids.append(asset.pk)
    bank = LedgerAccount.objects.create(kind=LedgerAccount.Kind.BANK, currency="EUR").pk
    fees = LedgerAccount.objects.create(kind=LedgerAccount.Kind.PLATFORM_FEES, currency="EUR").pk
    now = timezone.now()
    ids = f"ARRAY{asset_ids}::bigint[]"
    markets = f"ARRAY{market_ids}::bigint[]"
    key_placeholder = {
        "key_ciphertext": "'\\x00'::bytea",
        "key_nonce": "'\\x00'::bytea",
        "wrapped_data_key": "'\\x00'::bytea",
        "wrap_nonce": "'\\x00'::bytea",
        "key_id": "'bench'",
        "created_at": "%(now)s",
    }
    p = {"now": now, "addresses": addresses, "treasury": treasury}
    with connect(db) as conn, conn.cursor() as cur:
        insert_select(
            cur,
            "chain_chainaccount",
            {"address": "%(treasury)s", "role": "'treasury'", **key_placeholder},
            "(SELECT 1) AS one",
            p,
        )
        insert_select(
            cur,
            "accounts_user",
            {
                "id": f"{USER0} + g",
                "password": "'!'",
                "is_superuser": "false",
                "email": "'b' || g || '@bench.rwa'",
                "full_name": "''",
                "is_staff": "false",
                "is_active": "true",
                "date_joined": "%(now)s",
            },
            f"generate_series(0, {U - 1}) AS g",
            p,
        )
        insert_select(
            cur,
            "chain_chainaccount",
            {
                "id": f"{CHAIN0} + g - 1",
                "address": "(%(addresses)s::text[])[g]",
                "role": "'investor'",
                "user_id": f"{USER0} + g - 1",
                **key_placeholder,
            },
            f"generate_series(1, {U}) AS g",
            p,
        )
        for base, kind in ((AVAIL0, "investor_available"), (HELD0, "investor_held")):
            insert_select(
                cur,
                "marketplace_ledgeraccount",
                {
                    "id": f"{base} + g",
                    "kind": f"'{kind}'",
                    "user_id": f"{USER0} + g",
                    "currency": "'EUR'",
                    "balance": "0",
                    "created_at": "%(now)s",
                },
                f"generate_series(0, {U - 1}) AS g",
                p,
            )
        # Holdings: every investor holds every asset; a resting ask k sits on (k % U, k // U).
        locked = f"CASE WHEN h.u + {U} * h.a < {asks} THEN 1 + (h.u + {U} * h.a) % 10 ELSE 0 END"
        insert_select(
            cur,
            "marketplace_holding",
            {
                "investor_id": f"{USER0} + h.u",
                "asset_id": f"({ids})[h.a + 1]",
                "quantity": UNITS_SQL,
                "pending_quantity": "0",
                "locked_quantity": locked,
                "pending_out_quantity": "0",
                "first_acquired_at": "%(now)s",
                "updated_at": "%(now)s",
            },
            f"(SELECT u, a FROM generate_series(0, {U - 1}) u, generate_series(0, {A - 1}) a) AS h",
            p,
        )
        # Settled trades: the ask rested first (the maker, at its limit), the bid took it.
        cur.execute(
            f"""CREATE TEMP TABLE bt AS SELECT t, t % {A} AS a, t % {U} AS s,
                   (t % {U} + 1 + (t / {U}) % {max(U - 1, 1)}) % {U} AS b,
                   1 + t % 5 AS q, 10000 + (t % 50) * 10 AS p
               FROM generate_series(0, {T - 1}) t"""
        )
        cur.execute(
            f"""ALTER TABLE bt ADD gross bigint, ADD sf bigint, ADD bf bigint;
                UPDATE bt SET gross = q * p, sf = q * p * {MAKER_BPS} / 10000, bf = q * p * {TAKER_BPS} / 10000"""
        )
        order_common = {
            "public_id": "gen_random_uuid()",
            "currency": "'EUR'",
            "time_in_force": "'gtc'",
            "cancel_code": "''",
            "cancel_reason": "''",
            "created_at": "%(now)s",
            "updated_at": "%(now)s",
        }
        for side, offset, limit, investor, bps in (
            ("sell", 0, "bt.p", "bt.s", 0),
            ("buy", 1, "bt.p + 100", "bt.b", TAKER_BPS),
        ):
            insert_select(
                cur,
                "marketplace_tradeorder",
                {
                    "id": f"{TRADE_ORDER0} + 2 * bt.t + {offset}",
                    "market_id": f"({markets})[bt.a + 1]",
                    "asset_id": f"({ids})[bt.a + 1]",
                    "investor_id": f"{USER0} + {investor}",
                    "idempotency_key": f"'{side}-' || bt.t",
                    "side": f"'{side}'",
                    "quantity": "bt.q",
                    "filled_quantity": "bt.q",
                    "remaining_quantity": "0",
                    "limit_price_minor": limit,
                    "status": "'filled'",
                    "priority": f"2 * bt.t + {offset}",
                    "fee_bps_reserved": str(bps),
                    "reserved_minor": "0",
                    "closed_at": "%(now)s",
                    **order_common,
                },
                "bt",
                p,
            )
        insert_select(
            cur,
            "marketplace_trade",
            {
                "id": f"{TRADE0} + bt.t",
                "public_id": "gen_random_uuid()",
                "market_id": f"({markets})[bt.a + 1]",
                "asset_id": f"({ids})[bt.a + 1]",
                "sell_order_id": f"{TRADE_ORDER0} + 2 * bt.t",
                "buy_order_id": f"{TRADE_ORDER0} + 2 * bt.t + 1",
                "seller_id": f"{USER0} + bt.s",
                "buyer_id": f"{USER0} + bt.b",
                "quantity": "bt.q",
                "price_minor": "bt.p",
                "gross_minor": "bt.gross",
                "currency": "'EUR'",
                "maker_side": "'sell'",
                "maker_fee_bps": str(MAKER_BPS),
                "taker_fee_bps": str(TAKER_BPS),
                "buyer_fee_bps": str(TAKER_BPS),
                "seller_fee_bps": str(MAKER_BPS),
                "buyer_fee_minor": "bt.bf",
                "seller_fee_minor": "bt.sf",
                "status": "'confirmed'",
                "failure_reason": "''",
                "created_at": "%(now)s",
                "settled_at": "%(now)s",
            },
            "bt",
            p,
        )
        # Resting orders: asks at 20,000+ (above every bid at 5,000+), never crossed.
        for side, base, n, investor, asset_index, limit in (
            ("sell", ASK0, asks, f"k % {U}", f"k / {U}", "20000 + k % 100"),
            ("buy", BID0, bids, f"(k * 7 + 3) % {U}", f"k % {A}", "5000 + k % 100"),
        ):
            reserved = "0" if side == "sell" else f"g + (g * {TAKER_BPS} + 9999) / 10000"
            insert_select(
                cur,
                "marketplace_tradeorder",
                {
                    "id": f"{base} + k",
                    "market_id": f"({markets})[{asset_index} + 1]",
                    "asset_id": f"({ids})[{asset_index} + 1]",
                    "investor_id": f"{USER0} + {investor}",
                    "idempotency_key": f"'rest-{side}-' || k",
                    "side": f"'{side}'",
                    "quantity": "1 + k % 10",
                    "filled_quantity": "0",
                    "remaining_quantity": "1 + k % 10",
                    "limit_price_minor": limit,
                    "status": "'open'",
                    "priority": f"{2 * T} + 2 * k + {int(side == 'buy')}",
                    "fee_bps_reserved": str(TAKER_BPS if side == "buy" else 0),
                    "reserved_minor": reserved,
                    **order_common,
                },
                f"(SELECT k, ({limit}) * (1 + k % 10) AS g FROM generate_series(0, {n - 1}) k) AS o",
                p,
            )
        cur.execute("UPDATE marketplace_market SET order_sequence = %s", [2 * T + 2 * max(asks, bids)])
        # The journal.
        entry_common = {"memo": "''", "created_at": "%(now)s"}
        for offset, kind, link in (
            (0, "trade_reserve", {"trade_order_id": f"{TRADE_ORDER0} + 2 * bt.t + 1"}),
            (1, "trade_match", {"trade_id": f"{TRADE0} + bt.t"}),
            (2, "trade_settle", {"trade_id": f"{TRADE0} + bt.t"}),
        ):
            insert_select(
                cur,
                "marketplace_journalentry",
                {"id": f"{TRADE_ENTRY0} + 3 * bt.t + {offset}", "kind": f"'{kind}'", **link, **entry_common},
                "bt",
                p,
            )
        insert_select(
            cur,
            "marketplace_journalentry",
            {"id": f"{BID_ENTRY0} + k", "kind": "'trade_reserve'", "trade_order_id": f"{BID0} + k", **entry_common},
            f"generate_series(0, {bids - 1}) k",
            p,
        )
        insert_select(
            cur,
            "marketplace_journalentry",
            {"id": f"{DEPOSIT_ENTRY0} + d", "kind": "'deposit'", **entry_common},
            f"generate_series(0, {deposits - 1}) d",
            p,
        )
        e = f"{TRADE_ENTRY0} + 3 * bt.t"
        cur.execute(
            f"""INSERT INTO marketplace_posting (entry_id, account_id, amount_minor)
                SELECT v.e, v.acc, v.amount FROM bt, LATERAL (VALUES
                  ({e}, {AVAIL0} + bt.b, -(bt.gross + bt.bf)), ({e}, {HELD0} + bt.b, bt.gross + bt.bf),
                  ({e} + 1, {HELD0} + bt.b, -(bt.gross + bt.bf)), ({e} + 1, {HELD0} + bt.s, bt.gross - bt.sf),
                  ({e} + 1, {fees}, bt.bf + bt.sf),
                  ({e} + 2, {HELD0} + bt.s, -(bt.gross - bt.sf)), ({e} + 2, {AVAIL0} + bt.s, bt.gross - bt.sf)
                ) AS v(e, acc, amount)
                WHERE v.amount <> 0"""
        )
        cur.execute(
            f"""INSERT INTO marketplace_posting (entry_id, account_id, amount_minor)
                SELECT v.e, v.acc, v.amount FROM marketplace_tradeorder o, LATERAL (VALUES
                  ({BID_ENTRY0} + o.id - {BID0}, {AVAIL0} + o.investor_id - {USER0}, -o.reserved_minor),
                  ({BID_ENTRY0} + o.id - {BID0}, {HELD0} + o.investor_id - {USER0}, o.reserved_minor)
                ) AS v(e, acc, amount)
                WHERE o.id >= {BID0}"""
        )
        cur.execute(
            f"""INSERT INTO marketplace_posting (entry_id, account_id, amount_minor)
                SELECT v.e, v.acc, v.amount FROM generate_series(0, {deposits - 1}) d, LATERAL (VALUES
                  ({DEPOSIT_ENTRY0} + d, {bank}, -(100000000 + (d % 1000) * 100)),
                  ({DEPOSIT_ENTRY0} + d, {AVAIL0} + d % {U}, 100000000 + (d % 1000) * 100)
                ) AS v(e, acc, amount)"""
        )
        cur.execute(
            """UPDATE marketplace_ledgeraccount a SET balance = s.total
               FROM (SELECT account_id, sum(amount_minor) AS total FROM marketplace_posting GROUP BY account_id) s
               WHERE a.id = s.account_id"""
        )
        for table in (
            "accounts_user",
            "chain_chainaccount",
            "marketplace_ledgeraccount",
            "marketplace_tradeorder",
            "marketplace_trade",
            "marketplace_journalentry",
        ):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        cur.execute("VACUUM ANALYZE")
        counts = {}
        for label, table in (
            ("postings", "marketplace_posting"),
            ("journal entries", "marketplace_journalentry"),
            ("ledger accounts", "marketplace_ledgeraccount"),
            ("holdings", "marketplace_holding"),
            ("trade orders", "marketplace_tradeorder"),
            ("trades", "marketplace_trade"),
            ("custodial accounts", "chain_chainaccount"),
        ):
            cur.execute(f"SELECT count(*) FROM {table}")
            counts[label] = cur.fetchone()[0]
    counts["custodial accounts"] = ChainAccount.objects.filter(role="investor").count()
    return counts


# -- baselines: the same inputs read with no checking ---------------------------------------


def baseline(name: str, db: str, devnet_url: str, token: str) -> dict:
    started = time.perf_counter()
    rows = 0
    with connect(db) as conn, conn.cursor() as cur:
        if name == "ledger_check":
            cur.execute("SELECT account_id, sum(amount_minor) FROM marketplace_posting GROUP BY account_id")
            rows += len(cur.fetchall())
            cur.execute(
                "SELECT p.entry_id, a.currency, sum(p.amount_minor) FROM marketplace_posting p "
                "JOIN marketplace_ledgeraccount a ON a.id = p.account_id GROUP BY 1, 2 HAVING sum(p.amount_minor) <> 0"
            )
            rows += len(cur.fetchall())
        elif name == "market_check":
            cur.execute(
                "SELECT t.*, b.priority, b.limit_price_minor, b.investor_id, b.fee_bps_reserved, s.priority, "
                "s.limit_price_minor, s.investor_id FROM marketplace_trade t JOIN marketplace_tradeorder b "
                "ON b.id = t.buy_order_id JOIN marketplace_tradeorder s ON s.id = t.sell_order_id"
            )
            rows += len(cur.fetchall())
            cur.execute(
                "SELECT e.trade_id, p.account_id, sum(p.amount_minor) FROM marketplace_posting p JOIN "
                "marketplace_journalentry e ON e.id = p.entry_id WHERE e.kind = 'trade_match' GROUP BY 1, 2"
            )
            rows += len(cur.fetchall())
            cur.execute("SELECT id, quantity, filled_quantity, remaining_quantity, side FROM marketplace_tradeorder")
            rows += len(cur.fetchall())
            cur.execute(
                "SELECT investor_id, asset_id, locked_quantity, pending_out_quantity, pending_quantity FROM marketplace_holding"
            )
            rows += len(cur.fetchall())
        else:
            cur.execute("SELECT investor_id, asset_id, quantity FROM marketplace_holding")
            rows += len(cur.fetchall())
            cur.execute("SELECT address FROM chain_chainaccount")
            addresses = [r[0] for r in cur.fetchall()]
            host, port = devnet_url.removeprefix("http://").split(":")
            algod = http.client.HTTPConnection(host, int(port), timeout=30)
            for address in addresses:
                algod.request("GET", f"/v2/accounts/{address}", headers={"X-Algo-API-Token": token})
                json.loads(algod.getresponse().read())
            algod.close()
            rows += len(addresses)
    return {"seconds": time.perf_counter() - started, "rows": rows}


# -- one check in a child process ----------------------------------------------------------


def _status_kb(field: str) -> int:
    """VmRSS / VmHWM (this process's peak resident size, reset by exec, unlike ru_maxrss
    which keeps the forking parent's) in kB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def child(name: str) -> None:
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from chain import gateway

    calls = [0]
    real_call = gateway._call

    def counting_call(fn, *a, **kw):
        calls[0] += 1
        return real_call(fn, *a, **kw)

    gateway._call = counting_call
    from marketplace.ledger_proofs import ledger_verify
    from marketplace.market_proofs import market_verify
    from marketplace.reconciliation import ReconciliationReport, reconcile

    verify = {"ledger_check": ledger_verify, "market_check": market_verify, "reconcile": reconcile}[name]
    connection.ensure_connection()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS: the peak from here on is the check's
    rss_before = _status_kb("VmRSS")
    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        report = verify()
        seconds = time.perf_counter() - started
    peak_kb, algod_calls = _status_kb("VmHWM"), calls[0]
    if isinstance(report, ReconciliationReport):
        problems = [str(m) for m in report.mismatches] + list(report.skipped)
    else:
        problems = list(getattr(report, "problems"))  # noqa: B009 - LedgerReport or MarketReport
    del report
    tracemalloc.start()  # a second run: the Python heap's peak (tracing slows it, so untimed)
    verify()
    python_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "statements": len(ctx.captured_queries),
                "algod": algod_calls,
                "peak_mb": (peak_kb - rss_before) / 1024,
                "python_peak_mb": python_peak / 2**20,
                "problems": problems[:10],
                "problem_count": len(problems),
            }
        )
    )


def run_child(name: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.checks.run", "--child", name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--investors", type=int, default=10_000)
    parser.add_argument("--assets", type=int, default=10)
    parser.add_argument("--postings", type=int, default=1_000_000)
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--open-orders", type=int, default=10_000)
    parser.add_argument("--database", default="rwa_bench_checks")
    parser.add_argument("--keep", action="store_true", help="leave the database behind")
    parser.add_argument("--child", choices=CHECKS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.database}",
        CACHE_KEY_PREFIX=f"bench-checks-{uuid.uuid4().hex[:6]}",
        LOG_LEVEL="WARNING",
    )
    with connect("postgres") as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {args.database}")
    from devnet.testing import DevnetProcess

    tmp = Path(tempfile.mkdtemp(prefix="bench-checks-"))
    devnet = DevnetProcess(tmp / "devnet").start()
    os.environ.update(ALGOD_URL=devnet.url, ALGOD_TOKEN=devnet.token)
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        treasury, addresses, asa_ids, totals = seed_chain(devnet, args.investors, args.assets)
        chain_s = time.perf_counter() - started
        started = time.perf_counter()
        counts = seed_books(args.database, args, treasury, addresses, asa_ids, totals)
        books_s = time.perf_counter() - started
        from django.db import connections

        connections.close_all()
        load = os.getloadavg()
        print(
            f"Whole-book checks at scale (load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; setup: chain "
            f"{chain_s:.0f} s, books {books_s:.0f} s)"
        )
        print("  " + ", ".join(f"{v:,} {k}" for k, v in counts.items()) + f"; {args.assets} assets on chain")
        sizes = {
            "ledger_check": counts["postings"],
            "market_check": counts["trades"] + counts["trade orders"] + counts["holdings"],
            "reconcile": counts["holdings"],
        }
        failed = False
        for name in CHECKS:
            result = run_child(name)
            base = baseline(name, args.database, devnet.url, devnet.token)
            rate = sizes[name] / result["seconds"]
            print(
                f"  {name:<13} {result['seconds']:7.2f} s  {rate:>10,.0f} rows/s  peak RSS +{result['peak_mb']:6.1f} MB "
                f"(Python heap {result['python_peak_mb']:6.1f} MB)  "
                f"{result['statements']:>5} SQL statements  {result['algod']:>6} algod calls  "
                f"{result['problem_count']} problem(s)"
            )
            print(
                f"  {'':<13} baseline {base['seconds']:6.2f} s (same inputs read, no checking) → "
                f"baseline / check {base['seconds'] / result['seconds']:.2f}"
            )
            for problem in result["problems"]:
                print(f"    PROBLEM {problem}")
            failed = failed or result["problem_count"] > 0
        return 1 if failed else 0
    finally:
        devnet.stop()
        if not args.keep:
            from django.db import connections

            connections.close_all()
            with connect("postgres") as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")


if __name__ == "__main__":
    sys.exit(main())
