"""The book's data structures under churn: price index, id table, order pool."""
import random

from engine_helpers import Harness, cancel, kind, mass_cancel, model_levels, nos


def test_price_index_under_random_inserts_and_cancels():
    """Hundreds of levels per side (well past the initial capacity), entered and emptied in random order."""
    r = random.Random(7)
    h = Harness(max_orders=5_000, market_data=False)
    live, next_id = {}, 1
    for step in range(6_000):
        if live and r.random() < 0.45:
            cl = r.choice(list(live))
            side = live.pop(cl)[0]
            assert h.send(cancel(100_000 + step, cl, side))[0]["reason"] == "UserRequest"
        else:
            side = r.choice(["Buy", "Sell"])
            # bids below 10_000, asks above: the book never crosses
            price = r.randint(1, 400) + (10_000 if side == "Sell" else 9_000)
            qty = r.randint(1, 9)
            h.send(nos(next_id, side, price, qty))
            live[next_id] = (side, price, qty)
            next_id += 1
        if step % 250 == 0:
            assert h.engine.levels(1, "Buy") == model_levels(live, "Buy")
            assert h.engine.levels(1, "Sell") == model_levels(live, "Sell")
    assert len(h.engine.levels(1, "Buy")) > 150
    assert h.engine.levels(1, "Buy") == model_levels(live, "Buy")
    assert h.engine.levels(1, "Sell") == model_levels(live, "Sell")
    assert h.engine.live_orders == len(live)


def test_extreme_prices_sort_on_both_sides():
    h = Harness(market_data=False)
    prices = [1, 2, 3, 2 ** 62, 2 ** 63 - 1, 2 ** 40]
    for i, price in enumerate(prices, 1):
        h.send(nos(i, "Buy", price, 1), session=1)
        h.send(nos(i, "Sell", price + (2 ** 63 - 1 - price), 1), session=2)  # all asks at the maximum
    assert [p for p, _, _ in h.engine.levels(1, "Buy")] == sorted(set(prices), reverse=True)[1:]
    # the buy at 2**63-1 met the asks there
    assert h.engine.levels(1, "Sell") == [(2 ** 63 - 1, 5, 5)]


def test_id_table_lookups_under_churn():
    """A small table (64 orders -> 128 entries) with many sessions sharing client order ids: every live
    key must stay findable through insertions and backward-shift deletions."""
    r = random.Random(11)
    h = Harness(max_orders=64, market_data=False)
    live = {}
    for step in range(5_000):
        key = (r.randint(1, 9), r.randint(1, 40))
        session, cl = key
        if key in live:
            assert h.send(cancel(10_000 + step, cl, live[key]), session=session)[0]["reason"] == "UserRequest"
            del live[key]
        elif len(live) < 64:
            side = r.choice(["Buy", "Sell"])
            h.send(nos(cl, side, 100 if side == "Buy" else 200, 1), session=session)
            live[key] = side
        if step % 100 == 0:
            for s in range(1, 10):
                for c in range(1, 41):
                    found = h.engine.order(s, c)
                    assert (found is not None) == ((s, c) in live)
                    if found:
                        assert (found["session"], found["cl_ord_id"]) == (s, c)


def test_pool_slots_are_reused():
    h = Harness(max_orders=100, market_data=False)
    for rnd in range(3):
        for i in range(1, 101):
            assert kind(h.send(nos(i, "Buy", 100, 1))[0]) == "New"
        assert h.send(nos(101, "Buy", 100, 1))[0]["reason"] == "PoolFull"
        h.send(mass_cancel(1))
        assert h.engine.live_orders == 0
    assert h.engine.next_order_id == 301


def test_fifo_survives_cancels_in_the_middle_and_at_both_ends():
    h = Harness(market_data=False)
    for i in range(1, 8):
        h.send(nos(i, "Sell", 100, i))
    for i in (1, 4, 7):
        h.send(cancel(50 + i, i, "Sell"))
    h.send(nos(8, "Sell", 100, 8))
    assert [o[6] for o in h.book()] == [2, 3, 5, 6, 8]
    reports = h.send(nos(9, "Buy", 100, 100, timeInForce="ImmediateOrCancel"))
    assert [r["clOrdId"] for r in reports if r.get("liquidity") == "Added"] == [2, 3, 5, 6, 8]
