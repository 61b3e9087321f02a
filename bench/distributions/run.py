"""Paying a distribution to many holders (docs/benchmarks.md, docs/distributions.md).

    .venv/bin/python -m bench.distributions.run [--holders 10000,100000] [--batch 2000]

For each size: a fresh asset whose units were bought by --holders investors (users, their
approved KYC, 1 % of them lapsed so their payouts are held, 10 % with a tax profile, and
one primary order each: the unit history, bulk-inserted as setup), a rent distribution
declared, approved by a second person and funded; then, timed:
1. `distribution_pay` (entitlement from the unit history, every share stored, then the
   batches: eligibility, withholding, one journal entry with a posting per holder, the
   balances in one statement, the shares updated) — holders/s, seconds per batch and the statements of each
   batch (the same count for every batch, whatever the batch holds);
2. the baseline, in the same run on the same database: the same rows written with raw
   SQL by psycopg, no Python logic — per batch one INSERT of the postings, one UPDATE of
   the balances, one UPDATE of the shares — i.e. what the database alone needs;
3. `distribution_check` on the result (its proofs, timed) and `ledger_check`.
Prints the figures, the ratio pay / baseline and exits 1 if a proof fails.

Needs PostgreSQL on 127.0.0.1. Own database (--database, default rwa_bench_dist, recreated)."""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PG = "postgresql://postgres@127.0.0.1:5432"


def psql(db: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/{db}", autocommit=True) as conn:
        for s in statements:
            conn.execute(s)


def seed(n: int, tag: str):
    """An asset with n holders (bulk-inserted history), a funded, approved distribution."""
    import datetime

    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts.models import User
    from compliance.models import KycApplication, TaxProfile
    from marketplace import distributions as dist
    from marketplace.models import Distribution, PrimaryOrder
    from marketplace.tests.factories import OfferingFactory, StaffFactory

    long_ago = timezone.now() - datetime.timedelta(days=400)
    offering = OfferingFactory(
        asset__total_fractions=n * 10 + 12_345, asset__live_at=long_ago, fractions_for_sale=n * 10 + 12_345
    )
    password = make_password(None)
    users = User.objects.bulk_create(
        [User(email=f"h{i}-{tag}@bench.rwa", password=password) for i in range(n)], batch_size=5000
    )
    today = timezone.localdate()
    KycApplication.objects.bulk_create(
        [
            KycApplication(
                user=u,
                legal_name=u.email,
                country_of_residence="GB",
                status=KycApplication.Status.APPROVED,
                decided_at=long_ago,
                expires_at=today - datetime.timedelta(days=1) if i % 100 == 0 else today + datetime.timedelta(days=300),
            )
            for i, u in enumerate(users)
        ],
        batch_size=5000,
    )
    TaxProfile.objects.bulk_create(
        [
            TaxProfile(user=u, tax_residence="DE", treaty_form_on_file=i % 20 == 0)
            for i, u in enumerate(users)
            if i % 10 == 0
        ],
        batch_size=5000,
    )
    PrimaryOrder.objects.bulk_create(
        [
            PrimaryOrder(
                investor=u,
                offering=offering,
                asset=offering.asset,
                idempotency_key=uuid.uuid4().hex,
                quantity=1 + i % 19,
                price_per_fraction_minor=offering.price_per_fraction_minor,
                gross_minor=offering.price_per_fraction_minor * (1 + i % 19),
                fee_minor=0,
                total_minor=offering.price_per_fraction_minor * (1 + i % 19),
                currency="EUR",
                status=PrimaryOrder.Status.SETTLED,
                created_at=long_ago,
                settled_at=long_ago,
            )
            for i, u in enumerate(users)
        ],
        batch_size=5000,
    )
    declarer, approver = StaffFactory(), StaffFactory()
    d = dist.distribution_declare(
        asset=offering.asset,
        actor=declarer,
        kind=Distribution.Kind.RENT,
        gross_minor=n * 1_234 + 567,
        currency="EUR",
        period_start=today - datetime.timedelta(days=30),
        period_end=today,
        record_at=timezone.now(),
        payment_date=today,
    )
    dist.distribution_approve(distribution=d, actor=approver)
    dist.distribution_fund(
        distribution=d, actor=declarer, amount_minor=d.gross_minor, source=dist.FUND_BY_DEPOSIT, bank_reference=tag
    )
    return d, declarer


def pay_timed(d, actor, batch: int) -> dict:
    """distribution_pay with every batch's statements counted."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from marketplace import distributions as dist

    now = timezone.now()
    t0 = time.perf_counter()
    dist._start(d.pk, actor, now)
    t_start = time.perf_counter() - t0
    per_batch, batch_seconds = [], []
    while True:
        t1 = time.perf_counter()
        with CaptureQueriesContext(connection) as ctx:
            outcome = dist._pay_batch(d.pk, actor, now, batch)
        if outcome is None:
            break
        batch_seconds.append(time.perf_counter() - t1)
        per_batch.append(len(ctx.captured_queries))
    dist._finish(d.pk, actor, now)
    return {"seconds": time.perf_counter() - t0, "start": t_start, "statements": per_batch, "batch_s": batch_seconds}


def baseline(d, batch: int) -> float:
    """The same row writes in raw SQL: per batch, INSERT the postings, UPDATE the
    balances, UPDATE the shares (values precomputed; no Python logic timed)."""
    from django.db import connection, transaction

    from marketplace.models import DistributionPayment, JournalEntry, LedgerAccount

    rows = list(
        DistributionPayment.objects.filter(distribution=d, treasury=False)
        .order_by("pk")
        .values_list("pk", "investor_id", "net_minor")
    )
    accounts = dict(
        LedgerAccount.objects.filter(kind=LedgerAccount.Kind.INVESTOR_AVAILABLE, currency="EUR").values_list(
            "user_id", "pk"
        )
    )
    entry = JournalEntry.objects.filter(distribution=d).order_by("pk").first()
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("CREATE TEMP TABLE bench_postings (LIKE marketplace_posting INCLUDING DEFAULTS)")
        for i in range(0, len(rows), batch):
            chunk = [(pk, accounts.get(inv), max(net, 1)) for pk, inv, net in rows[i : i + batch] if inv in accounts]
            with transaction.atomic():
                values = ",".join(["(%s,%s)"] * len(chunk))
                params = [p for _, acc, net in chunk for p in (acc, net)]
                cur.execute(
                    "INSERT INTO bench_postings (id, entry_id, account_id, amount_minor) "
                    f"SELECT nextval(pg_get_serial_sequence('marketplace_posting','id')), {entry.pk}, v.a, v.n "
                    f"FROM (VALUES {values}) AS v(a, n)",
                    params,
                )
                cur.execute(
                    f"UPDATE marketplace_ledgeraccount AS a SET balance = a.balance + 0 * v.n "
                    f"FROM (VALUES {values}) AS v(i, n) WHERE a.id = v.i",
                    params,
                )
                pay_values = ",".join(["(%s)"] * len(chunk))
                cur.execute(
                    f"UPDATE marketplace_distributionpayment AS p SET paid_at = p.paid_at "
                    f"FROM (VALUES {pay_values}) AS v(i) WHERE p.id = v.i",
                    [pk for pk, _, _ in chunk],
                )
        cur.execute("DROP TABLE bench_postings")
    return time.perf_counter() - t0


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--holders", default="10000,100000")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--database", default="rwa_bench_dist")
    args = parser.parse_args()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.database}",
        CACHE_KEY_PREFIX=f"bench-dist-{uuid.uuid4().hex[:6]}",
        LOG_LEVEL="WARNING",
    )
    psql("postgres", f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)", f"CREATE DATABASE {args.database}")
    import django

    django.setup()
    from django.core.management import call_command

    from chain.services import platform_accounts_ensure
    from marketplace.distribution_proofs import distribution_verify
    from marketplace.ledger_proofs import ledger_verify

    call_command("migrate", verbosity=0)
    platform_accounts_ensure()
    load = os.getloadavg()
    print(f"Distribution payment bench (batch {args.batch}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f})")
    failed = False
    for n in (int(x) for x in args.holders.split(",")):
        (d, actor), seed_s = timed(lambda n=n: seed(n, f"B{n}"))
        psql(args.database, "VACUUM ANALYZE")
        pay = pay_timed(d, actor, args.batch)
        base = baseline(d, args.batch)
        report, check_s = timed(distribution_verify)
        ledger, ledger_s = timed(ledger_verify)
        d.refresh_from_db()
        held = d.payments.filter(status="held").count()
        statements = sorted(set(pay["statements"]))
        print(
            f"  {n:>7,} holders (seeded in {seed_s:.0f} s): paid in {pay['seconds']:.2f} s "
            f"({n / pay['seconds']:,.0f} holders/s; entitlement + {d.payments.count():,} shares stored "
            f"{pay['start']:.2f} s), {len(pay['statements'])} batches of ≤ {args.batch} "
            f"({sum(pay['batch_s']) / max(len(pay['batch_s']), 1):.2f} s each on average), statements per batch "
            f"{statements} (the same for every full batch), {held:,} held"
        )
        print(
            f"           baseline raw SQL of the same row writes {base:.2f} s → ratio baseline / pay "
            f"{base / pay['seconds']:.2f}; distribution_check {check_s:.2f} s ({len(report.problems)} problems), "
            f"ledger_check {ledger_s:.2f} s ({len(ledger.problems)} problems)"
        )
        full = pay["statements"][:-1] or pay["statements"]
        if report.problems or ledger.problems or len(set(full)) != 1 or pay["statements"][-1] > full[0]:
            failed = True
            for p in (report.problems + ledger.problems)[:10]:
                print(f"    PROBLEM {p}")
    psql("postgres", f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
