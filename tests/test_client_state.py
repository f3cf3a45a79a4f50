"""Client-side order state without a transport: the OrderTracker fed the lean execution messages (encoded
and decoded by the real codec, so every field name is the schema's), the market-data book, and the
fixed-layout order-entry encoder."""
import pytest

from lob.client import Book, Order, OrderTracker, to_decimal_str
from lob.client.wire import OrderEntryEncoder
from lob.sbe import messages

PX = 1_000_000


def msg(name, **fields):
    return messages.decode(messages.encode(name, **fields))


def new(seq, cl, order_id):
    return msg("ExecutionReportNew", seqNum=seq, transactTime=seq, clOrdId=cl, orderId=order_id)


def trade(seq, cl, order_id, trade_id, px, qty, leaves, liquidity):
    return msg("ExecutionReportTrade", seqNum=seq, transactTime=seq, clOrdId=cl, orderId=order_id, tradeId=trade_id,
               lastPx={"mantissa": px}, lastQty=qty, leavesQty=leaves, liquidity=liquidity)


def canceled(seq, cl, orig, order_id, reason):
    return msg("ExecutionReportCanceled", seqNum=seq, transactTime=seq, clOrdId=cl, origClOrdId=orig,
               orderId=order_id, reason=reason)


def state(order):
    return (order.status, order.order_id, order.leaves, order.cum, order.reason)


def test_new_and_fills_build_the_order_and_the_position():
    t = OrderTracker()
    bid = t.on_new_order(Order(1, 7, "Buy", 10, price=PX))
    ask = t.on_new_order(Order(2, 7, "Sell", 5, price=PX + 500))
    assert state(bid) == ("PendingNew", 0, 0, 0, None)
    assert t.apply(new(1, 1, 101)) is bid
    assert t.apply(new(2, 2, 102)) is ask
    assert state(bid) == ("New", 101, 10, 0, None)
    assert state(ask) == ("New", 102, 5, 0, None)

    assert t.apply(trade(3, 1, 101, 900, PX, 4, 6, "Added")) is bid
    assert t.apply(trade(4, 2, 102, 901, PX + 500, 5, 0, "Added")) is ask
    assert state(bid) == ("PartiallyFilled", 101, 6, 4, None)
    assert state(ask) == ("Filled", 102, 0, 5, None)
    assert [(f.trade_id, f.price, f.quantity, f.liquidity) for f in bid.fills] == [(900, PX, 4, "Added")]
    assert ask.average_price == PX + 500 and not ask.is_open

    pos = t.position(7)
    assert (pos.quantity, pos.cash, pos.bought, pos.sold) == (4 - 5, -4 * PX + 5 * (PX + 500), 4, 5)
    assert pos.pnl(PX) == 2500
    assert [o.cl_ord_id for o in t.open_orders()] == [1]
    assert t.open_orders(8) == []

    # The same fill twice moves nothing (the session layer de-duplicates; this is the tracker's own guard).
    t.apply(trade(3, 1, 101, 900, PX, 4, 6, "Added"))
    assert (pos.quantity, bid.cum, len(bid.fills)) == (-1, 4, 1)
    # A message about an order this client never sent is counted, not applied.
    assert t.apply(new(5, 99, 199)) is None and t.unknown_reports == 1


def test_replace_then_cancel_reject_then_cancel():
    t = OrderTracker()
    order = t.on_new_order(Order(1, 1, "Buy", 10, price=PX))
    t.apply(new(1, 1, 101))
    t.apply(trade(2, 1, 101, 900, PX, 3, 7, "Added"))

    t.on_replace(2, order, PX - 1000, 12)
    assert order.pending == (2, "replace", PX - 1000, 12) and t.requests == {2: order}
    replaced = msg("ExecutionReportReplaced", seqNum=3, transactTime=3, clOrdId=2, origClOrdId=1, orderId=101,
                   price={"mantissa": PX - 1000}, orderQty=12, leavesQty=9)
    assert t.apply(replaced) is order
    assert (order.cl_ord_id, order.orig_cl_ord_ids, order.price, order.quantity) == (2, [1], PX - 1000, 12)
    assert state(order) == ("PartiallyFilled", 101, 9, 3, None)
    assert order.pending is None and t.requests == {}
    assert t.orders[1] is t.orders[2] is order

    # Cancelling by the old id: the engine does not know it.
    t.on_cancel(3, order)
    reject = msg("OrderCancelReject", seqNum=4, transactTime=4, clOrdId=3, origClOrdId=1, orderId=0,
                 responseTo="Cancel", reason="UnknownOrder")
    assert t.apply(reject) is order
    assert order.is_open and order.pending is None and order.reason == "UnknownOrder" and t.requests == {}

    t.on_cancel(4, order)
    assert t.apply(canceled(5, 4, 2, 101, "UserRequest")) is order
    assert state(order) == ("Canceled", 101, 0, 3, "UserRequest")
    assert order.pending is None and t.requests == {} and t.open_orders() == []


def test_rejected_expired_and_engine_cancels():
    t = OrderTracker()
    bad = t.on_new_order(Order(1, 1, "Buy", 0, price=PX))
    day = t.on_new_order(Order(2, 1, "Sell", 5, price=PX, time_in_force="Day"))
    gtc = t.on_new_order(Order(3, 1, "Sell", 5, price=PX + 1))
    t.apply(msg("ExecutionReportRejected", seqNum=1, transactTime=1, clOrdId=1, reason="InvalidQuantity"))
    assert state(bad) == ("Rejected", 0, 0, 0, "InvalidQuantity")
    t.apply(new(2, 2, 102))
    t.apply(new(3, 3, 103))
    t.apply(msg("ExecutionReportExpired", seqNum=4, transactTime=4, clOrdId=2, orderId=102, reason="None"))
    assert state(day) == ("Expired", 102, 0, 0, "None")
    # Cancel-on-disconnect: the engine names the order in clOrdId, origClOrdId 0.
    t.on_replace(4, gtc, PX + 2, 5)   # still on its way when the session ended
    t.apply(canceled(5, 3, 0, 103, "CancelOnDisconnect"))
    assert state(gtc) == ("Canceled", 103, 0, 0, "CancelOnDisconnect")
    assert gtc.pending is None and t.requests == {}
    assert t.open_orders() == []


def test_mass_cancel_keeps_its_request_until_the_report():
    t = OrderTracker()
    a = t.on_new_order(Order(1, 1, "Buy", 3, price=PX))
    b = t.on_new_order(Order(2, 1, "Sell", 3, price=PX + 10))
    t.apply(new(1, 1, 101))
    t.apply(new(2, 2, 102))
    t.on_mass_cancel(3, 1)
    t.apply(canceled(3, 3, 1, 101, "MassCancel"))
    t.apply(canceled(4, 3, 2, 102, "MassCancel"))
    assert a.status == b.status == "Canceled" and a.reason == "MassCancel"
    assert t.requests == {3: 1}
    report = msg("OrderMassCancelReport", seqNum=5, transactTime=5, clOrdId=3, instrumentId=1, canceledCount=2,
                 reason="None")
    assert t.apply(report) == 1
    assert t.requests == {}


def test_message_reject_ends_what_the_engine_never_carried_out():
    t = OrderTracker()
    order = t.on_new_order(Order(1, 1, "Buy", 3, price=PX))
    throttled = msg("MessageReject", seqNum=1, transactTime=1, refSeqNo=1, refClOrdId=1, refTemplateId=1,
                    refLength=56, reason="Throttled")
    assert t.apply(throttled) is order
    assert state(order) == ("Rejected", 0, 0, 0, "Throttled")

    live = t.on_new_order(Order(2, 1, "Buy", 3, price=PX))
    t.apply(new(2, 2, 102))
    t.on_cancel(3, live)
    assert t.apply(msg("MessageReject", seqNum=3, transactTime=3, refSeqNo=3, refClOrdId=3, refTemplateId=2,
                       refLength=34, reason="Throttled")) is live
    assert (live.status, live.pending, live.reason, t.requests) == ("New", None, "Throttled", {})
    t.on_mass_cancel(4, 0)
    t.apply(msg("MessageReject", seqNum=4, transactTime=4, refSeqNo=4, refClOrdId=4, refTemplateId=4,
                refLength=20, reason="Throttled"))
    assert t.requests == {}
    # A reject of a session message names no order.
    assert t.apply(msg("MessageReject", seqNum=5, transactTime=5, refSeqNo=0, refClOrdId=0, refTemplateId=43,
                       refLength=40, reason="RetransmitOutOfRange")) is None


def test_client_order_ids_are_unique():
    t = OrderTracker()
    t.on_new_order(Order(1, 1, "Buy", 3, price=PX))
    with pytest.raises(ValueError):
        t.on_new_order(Order(1, 1, "Sell", 3, price=PX))


def test_book_from_market_data():
    book = Book(1)
    book.apply_update(msg("BookUpdate", seqNum=1, transactTime=1, instrumentId=1, levels=[
        dict(action="New", side="Buy", price={"mantissa": PX}, quantity=15, orderCount=2),
        dict(action="New", side="Sell", price={"mantissa": PX + 300}, quantity=7, orderCount=1)]))
    book.apply_update(msg("BookUpdate", seqNum=2, transactTime=2, instrumentId=1, levels=[
        dict(action="Change", side="Buy", price={"mantissa": PX}, quantity=3, orderCount=1),
        dict(action="New", side="Buy", price={"mantissa": PX - 100}, quantity=4, orderCount=1)]))
    book.apply_trade(msg("Trade", seqNum=3, transactTime=2, instrumentId=1, tradeId=9, price={"mantissa": PX},
                         quantity=12, aggressorSide="Sell"))
    assert book.bids == {PX: (3, 1), PX - 100: (4, 1)}
    assert book.asks == {PX + 300: (7, 1)}
    assert (book.best_bid, book.best_ask, book.mid) == (PX, PX + 300, PX + 150)
    assert book.last_trade == (9, PX, 12, "Sell")
    assert book.depth("Buy") == [(PX, 3, 1), (PX - 100, 4, 1)]
    book.apply_update(msg("BookUpdate", seqNum=4, transactTime=3, instrumentId=1, levels=[
        dict(action="Delete", side="Buy", price={"mantissa": PX}, quantity=0, orderCount=0)]))
    assert book.best_bid == PX - 100
    other = Book(1)
    other.apply_snapshot(msg("BookSnapshot", seqNum=5, transactTime=3, instrumentId=1, lastTradeId=9,
                             instrumentCount=1, partIndex=0, partCount=1, levelCount=2, checksum=0, orderLevel=0,
                             levels=[
        dict(side="Buy", price={"mantissa": PX - 100}, quantity=4, orderCount=1),
        dict(side="Sell", price={"mantissa": PX + 300}, quantity=7, orderCount=1)]))
    assert (other.bids, other.asks) == (book.bids, book.asks)


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


def test_decimal_strings():
    assert to_decimal_str(1_000_500) == "100.0500"
    assert to_decimal_str(-5) == "-0.0005"
    assert to_decimal_str(None) == "-"
