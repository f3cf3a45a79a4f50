"""The price index (lob/price_index.pxi: a radix tree over price / tick per side) through the engine:
exact level order against a sorted list, wide and sparse prices, the int64 edges, node pool growth."""
import random

from engine_helpers import Harness, cancel, market, mass_cancel, model_levels, nos

MAX_PRICE = 2 ** 63 - 1


def churn(h, r, steps, draw, instrument=1, check_every=200):
    """Random inserts and cancels; the book's levels must equal the sorted model's after each batch."""
    live, next_id = {}, 1
    for step in range(steps):
        if live and r.random() < 0.4:
            cl = r.choice(list(live))
            side = live.pop(cl)[0]
            assert h.send(cancel(10 ** 6 + step, cl, side, instrumentId=instrument))[0]["reason"] == "UserRequest"
        else:
            side = r.choice(["Buy", "Sell"])
            price, qty = draw(side), r.randint(1, 9)
            assert h.send(nos(next_id, side, price, qty, instrumentId=instrument))[0]["_name"] == "ExecutionReportNew"
            live[next_id] = (side, price, qty)
            next_id += 1
        if step % check_every == 0 or step == steps - 1:
            assert h.engine.levels(instrument, "Buy") == model_levels(live, "Buy")
            assert h.engine.levels(instrument, "Sell") == model_levels(live, "Sell")
    return live


def test_level_order_near_the_touch_and_far_away():
    """Clustered prices (levels share bottom nodes) mixed with prices millions of ticks away."""
    r = random.Random(3)

    def draw(side):
        offset = r.randint(1, 300) if r.random() < 0.7 else r.randint(1, 10 ** 7)
        return 10 ** 8 - offset if side == "Buy" else 10 ** 8 + offset

    h = Harness(max_orders=4_000, market_data=False)
    live = churn(h, r, 5_000, draw)
    assert len(model_levels(live, "Buy")) > 300
    # orders() walks the same levels: bids best first, then asks best first
    bids = sorted((v[1] for v in live.values() if v[0] == "Buy"), reverse=True)
    asks = sorted(v[1] for v in live.values() if v[0] == "Sell")
    assert [o["price"] for o in h.engine.orders(1)] == bids + asks


def test_very_sparse_prices_over_the_whole_int64_range():
    """Every level on its own path from the root: more nodes than the pool maps at start, so it grows."""
    r = random.Random(5)

    def draw(side):
        return r.randint(1, 2 ** 62) if side == "Buy" else r.randint(2 ** 62 + 1, MAX_PRICE)

    h = Harness(max_orders=3_000, market_data=False)
    live = churn(h, r, 3_000, draw)
    h.send(mass_cancel(1))
    assert h.engine.levels(1, "Buy") == [] and h.engine.levels(1, "Sell") == []
    # the emptied index is usable again (nodes came back to the pool)
    live = churn(h, r, 1_000, draw)
    assert h.engine.live_orders == len(live)


def test_prices_at_the_int64_edges_with_a_coarse_tick():
    h = Harness({1: 1, 2: 5}, market_data=False)
    top = MAX_PRICE - MAX_PRICE % 5
    bids = [5, 10, 315, 320, 20475, 20480, top - 5 * 64, top - 5]
    for i, price in enumerate(bids, 1):
        h.send(nos(i, "Buy", price, 1, instrumentId=2))
    h.send(nos(100, "Sell", top, 2, instrumentId=2))
    assert [p for p, _, _ in h.engine.levels(2, "Buy")] == sorted(bids, reverse=True)
    assert h.engine.levels(2, "Sell") == [(top, 2, 1)]
    edges = [1, 63, 64, 65, 4095, 4096, 2 ** 62, MAX_PRICE - 1]
    for i, price in enumerate(edges, 1):
        h.send(nos(200 + i, "Buy", price, 1))
    h.send(nos(300, "Sell", MAX_PRICE, 1))
    assert [p for p, _, _ in h.engine.levels(1, "Buy")] == sorted(edges, reverse=True)
    assert [p for p, _, _ in h.engine.levels(1, "Sell")] == [MAX_PRICE]


def test_matching_walks_sparse_levels_in_price_order():
    """Each emptied best level hands over to the next one however far away it is."""
    h = Harness(market_data=False)
    asks = [2 ** 62, 10, 2 ** 40, 5_000, 11]
    for i, price in enumerate(asks, 1):
        h.send(nos(i, "Sell", price, 1), session=2)
    reports = h.send(market(50, "Buy", 4))
    assert [r["lastPx"] for r in reports if r["_name"] == "ExecutionReportTrade" and r["sessionId"] == 1] == [10, 11, 5_000, 2 ** 40]
    assert h.engine.levels(1, "Sell") == [(2 ** 62, 1, 1)]
    h.send(nos(51, "Buy", 2 ** 62, 1))
    assert h.engine.levels(1, "Sell") == [] and h.engine.levels(1, "Buy") == []
    h.send(nos(52, "Buy", 7, 1))
    assert h.engine.levels(1, "Buy") == [(7, 1, 1)]
