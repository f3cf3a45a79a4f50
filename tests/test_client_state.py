"""Client-side state without a transport: order tracking and positions from execution reports, the
market-data book, and the fixed-layout wire access, all against reports the real engine produces."""
from lob.client import Book, Order, OrderTracker, to_decimal_str
from lob.client.wire import ExecStreamLayout, OrderEntryEncoder
from lob.engine import Engine
from lob.framing import iter_outbound, pack_inbound
from lob.sbe import messages

S1, S2 = 7, 9


def new_order(cl, side, qty, price, instrument=1):
    return messages.encode("NewOrderSingle", clOrdId=cl, account=0, instrumentId=instrument, side=side,
                           ordType="Limit", timeInForce="GoodTillCancel", flags=[], selfTradePrevention="None",
                           price={"mantissa": price}, quantity=qty)


def run(engine, session, frame):
    return [messages.decode(f) for f in iter_outbound(engine.process(pack_inbound(frame, session)))]


def feed(tracker, reports, session):
    for r in reports:
        if r["sessionId"] != session:
            continue
        if r["_name"] == "ExecutionReport":
            tracker.apply_execution_report(r)
        elif r["_name"] == "OrderCancelReject":
            tracker.apply_cancel_reject(r)
        elif r["_name"] == "OrderMassCancelReport":
            tracker.apply_mass_cancel_report(r)


def test_orders_and_positions_follow_the_engine():
    engine = Engine()
    maker, taker = OrderTracker(), OrderTracker()
    bid = maker.on_new_order(Order(1, 1, "Buy", 10, price=1_000_000))
    ask = maker.on_new_order(Order(2, 1, "Sell", 5, price=1_000_500))
    out = run(engine, S1, new_order(1, "Buy", 10, 1_000_000)) + run(engine, S1, new_order(2, "Sell", 5, 1_000_500))
    feed(maker, out, S1)
    assert (bid.status, bid.leaves, bid.cum, bid.order_id) == ("New", 10, 0, out[0]["orderId"])
    assert ask.status == "New"

    # The taker sells 4 into the bid, then buys 8 through the ask (5 fill, 3 rest).
    sell = taker.on_new_order(Order(1, 1, "Sell", 4, price=999_000))
    buy = taker.on_new_order(Order(2, 1, "Buy", 8, price=1_000_500))
    out = run(engine, S2, new_order(1, "Sell", 4, 999_000)) + run(engine, S2, new_order(2, "Buy", 8, 1_000_500))
    feed(maker, out, S1)
    feed(taker, out, S2)
    assert (bid.status, bid.leaves, bid.cum) == ("PartiallyFilled", 6, 4)
    assert (ask.status, ask.leaves, ask.cum) == ("Filled", 0, 5)
    assert [(f.price, f.quantity, f.liquidity) for f in bid.fills] == [(1_000_000, 4, "Added")]
    assert (sell.status, sell.cum, sell.fills[0].liquidity) == ("Filled", 4, "Removed")
    assert (buy.status, buy.leaves, buy.cum) == ("PartiallyFilled", 3, 5)
    assert buy.average_price == 1_000_500

    pm, pt = maker.position(1), taker.position(1)
    assert (pm.quantity, pm.cash) == (4 - 5, -4 * 1_000_000 + 5 * 1_000_500)
    assert (pt.quantity, pt.cash) == (-4 + 5, 4 * 1_000_000 - 5 * 1_000_500)
    assert pm.pnl(1_000_000) + pt.pnl(1_000_000) == 0
    assert [o.cl_ord_id for o in maker.open_orders()] == [1]
    assert [o.cl_ord_id for o in taker.open_orders(1)] == [2]

    # A report delivered twice does not move the position twice.
    trade = next(r for r in out if r["sessionId"] == S1 and r["execType"] == "Trade")
    maker.apply_execution_report(trade)
    assert maker.position(1).quantity == -1


def test_replace_cancel_and_cancel_reject():
    engine = Engine()
    t = OrderTracker()
    order = t.on_new_order(Order(1, 1, "Buy", 10, price=1_000_000))
    feed(t, run(engine, S1, new_order(1, "Buy", 10, 1_000_000)), S1)

    t.on_replace(2, order, 999_000, 7)
    assert order.pending == (2, "replace", 999_000, 7)
    out = run(engine, S1, messages.encode("OrderCancelReplaceRequest", clOrdId=2, origClOrdId=1, instrumentId=1,
                                           side="Buy", price={"mantissa": 999_000}, quantity=7))
    feed(t, out, S1)
    assert out[0]["execType"] == "Replaced"
    assert (order.cl_ord_id, order.orig_cl_ord_ids, order.price, order.quantity, order.leaves) == (2, [1], 999_000, 7, 7)
    assert order.pending is None
    assert t.orders[1] is t.orders[2] is order

    # Cancel by the old id is unknown to the engine: OrderCancelReject; then cancel by the current id.
    t.on_cancel(3, order)
    out = run(engine, S1, messages.encode("OrderCancelRequest", clOrdId=3, origClOrdId=1, instrumentId=1, side="Buy"))
    feed(t, out, S1)
    assert out[0]["_name"] == "OrderCancelReject" and out[0]["reason"] == "UnknownOrder"
    assert order.is_open and order.pending is None and order.reason == "UnknownOrder"
    t.on_cancel(4, order)
    feed(t, run(engine, S1, messages.encode("OrderCancelRequest", clOrdId=4, origClOrdId=2, instrumentId=1,
                                            side="Buy")), S1)
    assert (order.status, order.leaves, order.is_open) == ("Canceled", 0, False)
    assert t.open_orders() == []


def test_reject_and_mass_cancel():
    engine = Engine()
    t = OrderTracker()
    bad = t.on_new_order(Order(1, 1, "Buy", 0, price=1_000_000))
    feed(t, run(engine, S1, new_order(1, "Buy", 0, 1_000_000)), S1)
    assert (bad.status, bad.reason, bad.is_open) == ("Rejected", "InvalidQuantity", False)
    a = t.on_new_order(Order(2, 1, "Buy", 3, price=1_000_000))
    b = t.on_new_order(Order(3, 1, "Sell", 3, price=1_001_000))
    feed(t, run(engine, S1, new_order(2, "Buy", 3, 1_000_000)) + run(engine, S1, new_order(3, "Sell", 3, 1_001_000)), S1)
    t.on_mass_cancel(4, 0)
    out = run(engine, S1, messages.encode("OrderMassCancelRequest", clOrdId=4, instrumentId=0))
    feed(t, out, S1)
    assert a.status == b.status == "Canceled"
    report = next(r for r in out if r["_name"] == "OrderMassCancelReport")
    assert report["canceledCount"] == 2
    assert 4 not in t.requests


def test_book_from_market_data():
    engine = Engine()
    book = Book(1)
    for session, frame in ((S1, new_order(1, "Buy", 10, 1_000_000)), (S1, new_order(2, "Buy", 5, 1_000_000)),
                           (S1, new_order(3, "Sell", 7, 1_000_300)), (S2, new_order(1, "Sell", 12, 1_000_000))):
        engine.process(pack_inbound(frame, session))
        for f in iter_outbound(engine.take_market_data()):
            m = messages.decode(f)
            if m["_name"] == "BookUpdate":
                book.apply_update(m)
            elif m["_name"] == "Trade":
                book.apply_trade(m)
    # 12 sold into 15 bid: 3 left at 1_000_000 in one order.
    assert book.bids == {1_000_000: (3, 1)}
    assert book.asks == {1_000_300: (7, 1)}
    assert (book.best_bid, book.best_ask, book.mid) == (1_000_000, 1_000_300, 1_000_150)
    assert book.last_trade[1:] == (1_000_000, 2, "Sell")
    snapshot = messages.decode(engine.book_snapshot(1))
    other = Book(1)
    other.apply_snapshot(snapshot)
    assert (other.bids, other.asks) == (book.bids, book.asks)
    assert book.depth("Buy") == [(1_000_000, 3, 1)]


def test_wire_layout_matches_the_codec():
    enc = OrderEntryEncoder()
    buf = bytearray(enc.new_order_length + enc.cancel_length)
    enc.pack_new_order(buf, 0, 42, 3, 2, 1_234_500, 17, 5)
    enc.pack_cancel(buf, enc.new_order_length, 43, 42, 3, 2)
    nos = messages.decode(bytes(buf[:enc.new_order_length]))
    assert (nos["_name"], nos["clOrdId"], nos["instrumentId"], nos["side"], nos["price"]["mantissa"],
            nos["quantity"], nos["account"], nos["ordType"], nos["timeInForce"], nos["stopPrice"]) == (
        "NewOrderSingle", 42, 3, "Sell", 1_234_500, 17, 5, "Limit", "GoodTillCancel", None)
    ocr = messages.decode(bytes(buf[enc.new_order_length:]))
    assert (ocr["_name"], ocr["clOrdId"], ocr["origClOrdId"], ocr["instrumentId"], ocr["side"]) == (
        "OrderCancelRequest", 43, 42, 3, "Sell")

    layout = ExecStreamLayout().execution_report
    frame = messages.encode("ExecutionReport", seqNum=11, transactTime=0, sessionId=0xFFFFFFF0, account=0,
                            clOrdId=99, origClOrdId=0, orderId=5, instrumentId=1, side="Buy", ordType="Limit",
                            timeInForce="GoodTillCancel", execType="Trade", ordStatus="Filled", reason="None",
                            liquidity="Removed", price={"mantissa": 1}, orderQty=3, lastPx={"mantissa": 1},
                            lastQty=3, leavesQty=0, cumQty=3, tradeId=8)
    read = layout.reader("seqNum", "sessionId", "clOrdId", "execType", "liquidity")
    assert read.unpack_from(frame) == (11, 0xFFFFFFF0, 99, ord("F"), 2)


def test_decimal_formatting():
    assert to_decimal_str(1_000_500) == "100.0500"
    assert to_decimal_str(-5) == "-0.0005"
    assert to_decimal_str(None) == "-"
