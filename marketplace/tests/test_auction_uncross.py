"""`auction.uncross` against a reference written here from first principles: for every
candidate price (each limit price in the book), sum the bids at or above it and the asks
at or below it; keep the price that executes the most, then the smallest imbalance, then
the closest to the reference price, then the lower price. An order's fill is what is left
of the volume after every order ahead of it (better price, or same price and earlier
priority) took its whole quantity, capped at its own quantity."""

from hypothesis import example, given, settings
from hypothesis import strategies as st

from marketplace.auction import uncross


def reference_uncross(bids, asks, ref):
    prices = {p for p, _, _ in bids} | {p for p, _, _ in asks}
    best = None
    for price in prices:
        demand = sum(q for p, q, _ in bids if p >= price)
        supply = sum(q for p, q, _ in asks if p <= price)
        volume = min(demand, supply)
        if volume == 0:
            continue
        key = (-volume, abs(demand - supply), abs(price - ref) if ref is not None else 0, price)
        if best is None or key < best[0]:
            best = (key, price, volume, demand - supply)
    if best is None:
        return None, 0, 0, {}, {}
    _, price, volume, imbalance = best

    def fills(orders, better):
        out = {}
        for i, (p, q, r) in enumerate(orders):
            if not better(p, price) and p != price:
                continue
            ahead = sum(q2 for j, (p2, q2, r2) in enumerate(orders) if better(p2, p) or (p2 == p and r2 < r))
            take = max(0, min(q, volume - ahead))
            if take:
                out[i] = take
        return out

    bid_fills = fills(bids, lambda a, b: a > b)
    ask_fills = fills(asks, lambda a, b: a < b)
    return price, volume, abs(imbalance), bid_fills, ask_fills


def book(side_size):
    return st.lists(st.tuples(st.integers(90, 110), st.integers(1, 50)), max_size=side_size)


@st.composite
def books(draw, side_size=25):
    raw_bids = draw(book(side_size))
    raw_asks = draw(book(side_size))
    priorities = draw(st.permutations(range(1, len(raw_bids) + len(raw_asks) + 1)))
    bids = [(p, q, priorities[i]) for i, (p, q) in enumerate(raw_bids)]
    asks = [(p, q, priorities[len(raw_bids) + i]) for i, (p, q) in enumerate(raw_asks)]
    ref = draw(st.none() | st.integers(80, 120))
    return bids, asks, ref


@settings(max_examples=400, deadline=None)
@given(books())
@example(([(100, 10, 1)], [(100, 10, 2)], None))
@example(([(105, 5, 1), (100, 5, 2)], [(95, 5, 3), (100, 5, 4)], 100))
def test_uncross_matches_the_reference(case):
    bids, asks, ref = case
    got = uncross(bids, asks, ref)
    price, volume, imbalance, bid_fills, ask_fills = reference_uncross(bids, asks, ref)
    assert got.price_minor == price
    assert got.volume == volume
    assert got.imbalance == imbalance
    assert dict(got.bid_fills) == bid_fills
    assert dict(got.ask_fills) == ask_fills
    # the trades pair the fills exactly, each at a price both limits accept
    per_bid: dict[int, int] = {}
    per_ask: dict[int, int] = {}
    for b, a, q in got.trades:
        assert q > 0
        assert bids[b][0] >= price >= asks[a][0]
        per_bid[b] = per_bid.get(b, 0) + q
        per_ask[a] = per_ask.get(a, 0) + q
    assert per_bid == bid_fills and per_ask == ask_fills
    assert sum(q for _, _, q in got.trades) == volume


def test_ties_volume_then_imbalance_then_reference_then_lower():
    # most volume: at 100 demand 15 / supply 5 → 5; at 101 demand 10 / supply 10 → 10
    assert uncross([(101, 10, 1), (100, 5, 2)], [(100, 5, 3), (101, 5, 4)], None).price_minor == 101
    # same volume 10 at 100 and 101: imbalance 5 at 100 (demand 15), 0 at 101
    assert uncross([(101, 10, 1), (100, 5, 2)], [(100, 10, 3)], 100).price_minor == 101
    # same volume and imbalance at 99 and 101: the closest to the reference, then the lower
    bids, asks = [(101, 10, 1)], [(99, 10, 2)]
    assert uncross(bids, asks, 101).price_minor == 101
    assert uncross(bids, asks, 98).price_minor == 99
    assert uncross(bids, asks, 100).price_minor == 99
    assert uncross(bids, asks, None).price_minor == 99


def test_partial_fill_in_time_priority_and_no_cross():
    result = uncross([(100, 10, 5), (100, 10, 2)], [(100, 15, 1)], None)
    assert result.price_minor == 100 and result.volume == 15 and result.imbalance == 5
    assert result.imbalance_side == "buy"
    assert result.bid_fills == ((1, 10), (0, 5))  # the earlier order (priority 2) first
    assert not uncross([(99, 10, 1)], [(100, 10, 2)], 100).crossed
    assert not uncross([], [(100, 10, 2)], 100).crossed
