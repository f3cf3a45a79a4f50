"""The client library against `lob engine` over real Aeron UDP on 127.0.0.1.

One embedded media driver (shared threading, yield idle) in this process, the engine as a subprocess
attached to it, clients with their own Aeron clients on the same driver. Each test uses its own
instrument so the tests do not see each other's books. Waits are bounded; nothing asserts on time.
"""
import os

import pytest

from lob.client import Client
from lob.tools.demo import LocalStack

WAIT = 30.0
PX = 1_000_000


@pytest.fixture(scope="module")
def stack():
    s = LocalStack(instruments={1: 1, 2: 1, 3: 1, 4: 1})
    try:
        s.start()
        yield s
    finally:
        s.close()
        assert not s.leftovers()
        assert not os.path.exists(s.driver.dir)
    assert s.exit_code == 0, "\n".join(s.lines)


@pytest.fixture
def connect(stack):
    clients = []

    def make(**kwargs):
        kwargs.setdefault("record", True)
        client = Client(aeron_dir=stack.aeron_dir, config=stack.config, connect_timeout=WAIT, **kwargs)
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            client.close()


def settle(*clients, seconds=0.2):
    """Keep polling a moment so a report that should not come would have arrived."""
    for client in clients:
        client.run(timeout=seconds / len(clients))


def only(report, *names):
    return {name: report[name] for name in names}


FIELDS = ("execType", "ordStatus", "clOrdId", "origClOrdId", "side", "lastQty", "leavesQty", "cumQty", "liquidity",
          "reason")


def test_two_sessions_cross_and_each_gets_exactly_its_reports(connect):
    a = connect()
    b = connect()
    assert a.session_id != b.session_id

    bid = a.place(1, "Buy", 10, PX)
    a.wait_for(lambda: len(a.reports) == 1, WAIT)
    # The same client order id in another session is a different order.
    ask = b.place(1, "Sell", 4, PX - 100)
    assert ask.cl_ord_id == bid.cl_ord_id == 1
    b.wait_for(lambda: len(b.reports) == 2, WAIT)
    a.wait_for(lambda: len(a.reports) == 2, WAIT)
    settle(a, b)

    assert [only(r, *FIELDS) for r in a.reports] == [
        dict(execType="New", ordStatus="New", clOrdId=1, origClOrdId=0, side="Buy", lastQty=0, leavesQty=10, cumQty=0,
             liquidity="None", reason="None"),
        dict(execType="Trade", ordStatus="PartiallyFilled", clOrdId=1, origClOrdId=0, side="Buy", lastQty=4,
             leavesQty=6, cumQty=4, liquidity="Added", reason="None"),
    ]
    assert [only(r, *FIELDS) for r in b.reports] == [
        dict(execType="New", ordStatus="New", clOrdId=1, origClOrdId=0, side="Sell", lastQty=0, leavesQty=4, cumQty=0,
             liquidity="None", reason="None"),
        dict(execType="Trade", ordStatus="Filled", clOrdId=1, origClOrdId=0, side="Sell", lastQty=4, leavesQty=0,
             cumQty=4, liquidity="Removed", reason="None"),
    ]
    for client, side_reports in ((a, a.reports), (b, b.reports)):
        assert all(r["sessionId"] == client.session_id for r in side_reports)
        assert all(r["instrumentId"] == 1 for r in side_reports)
        assert side_reports[0]["orderId"] == side_reports[1]["orderId"] != 0
        assert side_reports[1]["lastPx"]["mantissa"] == PX  # the resting order's price
        assert side_reports[0]["seqNum"] < side_reports[1]["seqNum"]
    assert a.reports[0]["orderId"] != b.reports[0]["orderId"]
    assert a.reports[1]["tradeId"] == b.reports[1]["tradeId"] != 0
    assert a.reports[0]["price"]["mantissa"] == PX and a.reports[0]["orderQty"] == 10
    assert b.reports[0]["price"]["mantissa"] == PX - 100
    # The aggressor's fill follows the maker's on the shared execution stream.
    assert b.reports[1]["seqNum"] == a.reports[1]["seqNum"] + 1
    assert a.exec_seq_gaps == b.exec_seq_gaps == 0

    assert (bid.status, bid.leaves, bid.cum, bid.order_id) == ("PartiallyFilled", 6, 4, a.reports[0]["orderId"])
    assert (ask.status, ask.leaves, ask.cum) == ("Filled", 0, 4)
    assert (a.position(1).quantity, a.position(1).cash) == (4, -4 * PX)
    assert (b.position(1).quantity, b.position(1).cash) == (-4, 4 * PX)

    # Cancel the rest: one Canceled report to A, nothing to B.
    request = a.cancel(bid)
    a.wait_for(lambda: len(a.reports) == 3, WAIT)
    settle(a, b)
    assert only(a.reports[2], *FIELDS) == dict(execType="Canceled", ordStatus="Canceled", clOrdId=request,
                                                origClOrdId=1, side="Buy", lastQty=0, leavesQty=0, cumQty=4,
                                                liquidity="None", reason="UserRequest")
    assert len(b.reports) == 2
    assert (bid.status, bid.is_open) == ("Canceled", False)
    assert a.open_orders() == [] and b.open_orders() == []

    # Cancelling it again: OrderCancelReject, unknown order.
    again = a.cancel(bid)
    a.wait_for(lambda: len(a.reports) == 4, WAIT)
    reject = a.reports[3]
    assert only(reject, "_name", "clOrdId", "origClOrdId", "responseTo", "reason", "sessionId") == dict(
        _name="OrderCancelReject", clOrdId=again, origClOrdId=1, responseTo="Cancel", reason="UnknownOrder",
        sessionId=a.session_id)


def test_replace_reject_and_mass_cancel(connect):
    a = connect()
    order = a.place(1, "Sell", 5, PX + 500)
    bad = a.place(1, "Sell", 0, PX + 500)
    a.wait_for(lambda: len(a.reports) == 2, WAIT)
    assert (order.status, bad.status, bad.reason) == ("New", "Rejected", "InvalidQuantity")
    assert a.reports[1]["orderId"] == 0

    first_id = order.cl_ord_id
    new_id = a.replace(order, price=PX + 700, quantity=8)
    a.wait_for(lambda: len(a.reports) == 3, WAIT)
    replaced = a.reports[2]
    assert only(replaced, "execType", "ordStatus", "clOrdId", "origClOrdId", "orderQty", "leavesQty") == dict(
        execType="Replaced", ordStatus="New", clOrdId=new_id, origClOrdId=first_id,
        orderQty=8, leavesQty=8)
    assert replaced["price"]["mantissa"] == PX + 700
    assert (order.cl_ord_id, order.price, order.quantity, order.pending) == (new_id, PX + 700, 8, None)

    other = a.place(1, "Buy", 3, PX - 500)
    a.wait_for(lambda: len(a.reports) == 4, WAIT)
    request = a.mass_cancel(1)
    a.wait_for(lambda: any(r["_name"] == "OrderMassCancelReport" for r in a.reports), WAIT)
    settle(a)
    tail = a.reports[4:]
    assert sorted((r["_name"], r.get("execType"), r.get("clOrdId")) for r in tail if r["_name"] == "ExecutionReport") \
        == sorted([("ExecutionReport", "Canceled", new_id), ("ExecutionReport", "Canceled", other.cl_ord_id)])
    report = next(r for r in tail if r["_name"] == "OrderMassCancelReport")
    assert (report["clOrdId"], report["canceledCount"], report["instrumentId"]) == (request, 2, 1)
    assert order.status == other.status == "Canceled"
    assert a.open_orders() == []


def test_market_data_reflects_the_book(connect):
    viewer = connect(record=False)
    maker = connect(market_data=False)
    taker = connect(market_data=False)
    for side, qty, px in (("Buy", 10, PX - 100), ("Buy", 5, PX - 100), ("Buy", 7, PX - 200),
                          ("Sell", 6, PX + 100), ("Sell", 9, PX + 300)):
        maker.place(2, side, qty, px)
    maker.wait_for(lambda: len(maker.reports) == 5, WAIT)
    book = viewer.book(2)
    viewer.wait_for(lambda: book.bids == {PX - 100: (15, 2), PX - 200: (7, 1)}
                    and book.asks == {PX + 100: (6, 1), PX + 300: (9, 1)}, WAIT)

    # Sweep the best bid (15) and 2 of the next level.
    taker.place(2, "Sell", 17, PX - 200)
    viewer.wait_for(lambda: book.last_trade is not None and book.bids == {PX - 200: (5, 1)}, WAIT)
    settle(viewer)
    assert book.asks == {PX + 100: (6, 1), PX + 300: (9, 1)}
    assert (book.best_bid, book.best_ask, book.mid) == (PX - 200, PX + 100, PX - 50)
    assert book.last_trade[1:] == (PX - 200, 2, "Sell")
    assert viewer.md_seq_gaps == 0
    # The viewer sent nothing and got no execution reports of its own.
    assert viewer.reports is None or viewer.reports == []
    assert viewer.tracker.orders == {}


def test_example_market_maker_requotes_and_tracks_pnl(connect):
    from lob.tools.market_maker import MarketMaker

    client = connect()
    taker = connect(market_data=False)
    lines = []

    class Out:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    maker = MarketMaker(client, 4, mid=PX, half_spread=5, size=10, max_position=100, out=Out())
    maker.requote()
    client.wait_for(lambda: all(q is not None and q.status == "New" for q in maker.quotes.values()), WAIT)
    assert (maker.quotes["Buy"].price, maker.quotes["Sell"].price) == (PX - 5, PX + 5)

    first_sell = maker.quotes["Sell"]
    taker.place(4, "Buy", 10, PX + 5)  # lifts the whole offer
    client.wait_for(lambda: maker.fills == 1, WAIT)
    assert client.position(4).quantity == -10
    assert first_sell.status == "Filled"

    # Short 10 after a trade at PX + 5: fair PX + 5, skewed up a tick -> quotes PX + 1 / PX + 11.
    def settled():
        b, s = maker.quotes["Buy"], maker.quotes["Sell"]
        return (not maker.dirty and b.status == "New" and s.status == "New" and not b.pending and not s.pending
                and (b.price, s.price) == (PX + 1, PX + 11))

    for _ in range(200):
        if settled():
            break
        client.run(until=lambda: maker.dirty, timeout=0.1)
        if maker.dirty:
            maker.requote()
    assert settled()
    assert maker.quotes["Sell"] is not first_sell

    maker.run(duration=0.3, report_every=0.1)  # prints P&L lines, then cancels its quotes
    text = "".join(lines)
    assert "position -10" in text
    assert any(line.startswith("final: position -10") for line in text.splitlines())
    assert client.open_orders(4) == []
    assert client.position(4).pnl(PX + 5) == 0  # sold 10 at PX + 5: flat against that mark
