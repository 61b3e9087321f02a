"""API order placement beside the same service called in-process (docs/benchmarks.md).

    .venv/bin/python -m bench.api.run [--orders 400] [--investors 50]

One process, one database connection, sequential (the cost of the layer, not of
concurrency). On the trading bench's seed (8 live books; investors with cash and units):
1. service: `marketplace.trading.trade_order_place` called directly for --orders resting
   orders (bids 50.00–90.00, asks 110.00–150.00: nothing crosses), random investor and book;
2. API: the same kind of orders as `POST /api/v1/me/trade-orders` with a trade-scoped token
   per investor and a fresh Idempotency-Key, through Django's whole WSGI stack and every
   middleware (django.test.Client: request parsing, bearer authentication, rate limits,
   schema validation, the same service, the response schema) — no network socket, so what
   is measured is the API layer's own cost;
alternating in rounds so load changes hit both. Prints placements/s of each and the ratio
API / service (aim ≥ 0.5), then market_check and ledger_check (exit 1 on a problem).

Needs PostgreSQL and Redis on 127.0.0.1. Own database (--database, default rwa_bench_api)."""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.trading import run as trading  # noqa: E402  (seed, environment)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=400, help="orders per side of the comparison")
    parser.add_argument("--investors", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--database", default="rwa_bench_api")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    trading.setup_env(args.database, args.broker)
    os.environ.update(
        API_RATE_LIMIT_ADDRESS="100000000,60",
        API_RATE_LIMIT_TOKEN="100000000,60",
        API_RATE_LIMIT_ORDERS="100000000,60",
    )
    trading.psql(
        "postgres", f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)", f"CREATE DATABASE {args.database}"
    )
    import django

    django.setup()
    from datetime import timedelta

    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from accounts.models import User
    from api.services import api_token_create
    from assets.models import Asset
    from chain.worker import queue_purge
    from marketplace.ledger_proofs import ledger_verify
    from marketplace.market_proofs import market_verify
    from marketplace.trading import trade_order_place

    call_command("migrate", verbosity=0)
    queue_purge()
    seeded = trading.seed(investors=args.investors)
    trading.psql(args.database, "VACUUM ANALYZE")
    investors = {u.pk: u for u in User.objects.filter(pk__in=seeded["investor_ids"])}
    assets = {a.pk: a for a in Asset.objects.filter(pk__in=seeded["asset_ids"])}
    expiry = timezone.now() + timedelta(days=1)
    tokens = {
        pk: api_token_create(user=u, name="bench", scopes=["read", "trade"], expires_at=expiry)[1]
        for pk, u in investors.items()
    }
    rng = random.Random(17)

    def order():
        investor_id, asset_id = rng.choice(list(investors)), rng.choice(list(assets))
        return investor_id, asset_id, trading.order_args(rng, "non-crossing")

    def service_run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            investor_id, asset_id, o = order()
            placed = trade_order_place(
                investor=investors[investor_id],
                asset=assets[asset_id],
                time_in_force="gtc",
                idempotency_key=uuid.uuid4().hex,
                **o,
            )
            assert placed.status == "open", placed.status
        return time.perf_counter() - t0

    client = Client()

    def api_run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            investor_id, asset_id, o = order()
            body = {"asset": str(assets[asset_id].public_id), **o}
            response = client.post(
                "/api/v1/me/trade-orders",
                data=json.dumps(body),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {tokens[investor_id]}",
                HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
            )
            assert response.status_code == 201, response.content[:300]
        return time.perf_counter() - t0

    service_run(20), api_run(20)  # warm both paths
    per_round = max(1, args.orders // args.rounds)
    service_s = api_s = 0.0
    for _ in range(args.rounds):
        service_s += service_run(per_round)
        api_s += api_run(per_round)
    n = per_round * args.rounds
    load = os.getloadavg()
    service_rate, api_rate = n / service_s, n / api_s
    print(f"API order placement bench ({n} resting orders each, sequential, load average {load[0]:.1f})")
    print(f"  service in-process  {service_rate:7.1f} placements/s  ({1000 * service_s / n:.1f} ms each)")
    print(f"  POST /api/v1/...    {api_rate:7.1f} placements/s  ({1000 * api_s / n:.1f} ms each)")
    print(f"  ratio API / service {api_rate / service_rate:.2f}  (aim ≥ 0.5)")
    market, ledger = market_verify(), ledger_verify()
    print(f"  market_check {len(market.problems)} problems, ledger_check {len(ledger.problems)} problems")
    trading.psql("postgres", f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
    return 1 if market.problems or ledger.problems else 0


if __name__ == "__main__":
    sys.exit(main())
