"""The call auction's uncrossing (marketplace/auction.py `uncross`) on a book of 10,000
orders beside a plain in-memory reference of the same computation, in the same run
(docs/benchmarks.md, docs/market-integrity.md).

    .venv/bin/python -m bench.auction.run [--orders 10000] [--repeat 5] [--seed 14]
        [--spread-pct 5] [--reference 10000]

The book: --orders orders, half bids and half asks, limit prices uniformly random
within ±--spread-pct % of --reference minor units (so bids and asks overlap widely, as
a book that collected orders between auctions does), quantities 1..100, distinct random
priorities. The reference implementation is the definition written as plain loops: for
each candidate price (each distinct limit price) sum the bids at or above it and the
asks at or below it, keep the best by the same rules (volume, then imbalance, then the
distance to the reference price, then the lower price), then fill each side in
price-time priority. Both are timed (best of --repeat, wall clock, one thread, no
database) and must give the same clearing price, volume and imbalance (exit 1 if not).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from marketplace.auction import uncross  # noqa: E402  (pure: no Django set-up needed)


def make_book(orders: int, reference: int, spread_pct: int, seed: int):
    rng = random.Random(seed)
    low, high = reference * (100 - spread_pct) // 100, reference * (100 + spread_pct) // 100
    priorities = rng.sample(range(1, orders * 10), orders)
    bids, asks = [], []
    for i in range(orders):
        order = (rng.randint(low, high), rng.randint(1, 100), priorities[i])
        (bids if i % 2 == 0 else asks).append(order)
    return bids, asks


def reference_uncross(bids, asks, reference: int | None):
    """The same computation with straightforward loops: O(candidates × orders)."""
    candidates = set()
    for price, _, _ in bids:
        candidates.add(price)
    for price, _, _ in asks:
        candidates.add(price)
    best = None
    for price in candidates:
        demand = 0
        for p, q, _ in bids:
            if p >= price:
                demand += q
        supply = 0
        for p, q, _ in asks:
            if p <= price:
                supply += q
        volume = min(demand, supply)
        if volume == 0:
            continue
        key = (-volume, abs(demand - supply), abs(price - reference) if reference is not None else 0, price)
        if best is None or key < best[0]:
            best = (key, price, volume, abs(demand - supply))
    if best is None:
        return None, 0, 0, []
    _, price, volume, imbalance = best
    fills = []
    left = volume
    for p, q, r in sorted(bids, key=lambda o: (-o[0], o[2])):
        if left == 0 or p < price:
            break
        take = min(q, left)
        fills.append((p, r, take))
        left -= take
    return price, volume, imbalance, fills


def timed(fn, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reference-repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--spread-pct", type=int, default=5)
    parser.add_argument("--reference", type=int, default=10_000, help="reference price, minor units")
    args = parser.parse_args(argv)

    bids, asks = make_book(args.orders, args.reference, args.spread_pct, args.seed)
    candidates = len({p for p, _, _ in bids} | {p for p, _, _ in asks})
    print(
        f"book: {len(bids):,} bids + {len(asks):,} asks, {candidates:,} distinct prices "
        f"({args.reference * (100 - args.spread_pct) // 100}–{args.reference * (100 + args.spread_pct) // 100}), "
        f"reference {args.reference}"
    )
    fast_s, fast = timed(lambda: uncross(bids, asks, args.reference), args.repeat)
    slow_s, slow = timed(lambda: reference_uncross(bids, asks, args.reference), args.reference_repeat)
    price, volume, imbalance, bid_fills = slow
    print(
        f"uncross (sort once, cumulative sums): {fast_s * 1000:9.2f} ms   price {fast.price_minor} volume "
        f"{fast.volume:,} imbalance {fast.imbalance:,} ({len(fast.trades):,} trades)"
    )
    print(
        f"reference (loops per candidate):      {slow_s * 1000:9.2f} ms   price {price} volume {volume:,} "
        f"imbalance {imbalance:,}"
    )
    print(f"ratio reference / uncross: {slow_s / fast_s:,.0f}× faster")
    same = (fast.price_minor, fast.volume, fast.imbalance) == (price, volume, imbalance)
    same_fills = [(bids[i][2], q) for i, q in fast.bid_fills] == [(r, q) for _, r, q in bid_fills]
    if not (same and same_fills):
        print("MISMATCH between uncross and the reference", file=sys.stderr)
        return 1
    print("same clearing price, volume, imbalance and bid fills: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
