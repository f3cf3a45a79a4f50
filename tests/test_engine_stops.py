"""Stop and stop-limit orders: held off the book until a trade reaches the stop price, then a Triggered
report and matching as a market or limit order; cascades run after the aggressor, in stop order."""
import pytest

from engine_helpers import Harness, book_update, er, mass_cancel, nos, replace, trade, cancel


@pytest.fixture
def h():
    return Harness({1: 1})


def new(session, cl_ord_id, order_id):
    return er("New", "New", sessionId=session, clOrdId=cl_ord_id, orderId=order_id)


def triggered(session, cl_ord_id, order_id):
    return {"_name": "ExecutionReportTriggered", "sessionId": session, "clOrdId": cl_ord_id, "orderId": order_id}


def fill(session, cl_ord_id, order_id, trade_id, qty, leaves, liquidity, price):
    return er("Trade", "", sessionId=session, clOrdId=cl_ord_id, orderId=order_id, tradeId=trade_id, lastPx=price,
              lastQty=qty, leavesQty=leaves, liquidity=liquidity)


def buy_stop(cl_ord_id, stop, qty, limit=None, **fields):
    if limit is None:
        return nos(cl_ord_id, "Buy", None, qty, ordType="Stop", stopPrice={"mantissa": stop}, **fields)
    return nos(cl_ord_id, "Buy", limit, qty, ordType="StopLimit", stopPrice={"mantissa": stop}, **fields)


def sell_stop(cl_ord_id, stop, qty, limit=None, **fields):
    if limit is None:
        return nos(cl_ord_id, "Sell", None, qty, ordType="Stop", stopPrice={"mantissa": stop}, **fields)
    return nos(cl_ord_id, "Sell", limit, qty, ordType="StopLimit", stopPrice={"mantissa": stop}, **fields)


def print_trade(h, price, qty=1, session=9):
    """A trade at `price` between two orders of session 9 (clOrdIds from 900)."""
    print_trade.n = getattr(print_trade, "n", 900) + 2
    h.send(nos(print_trade.n, "Sell", price, qty, account=9), session=session)
    return h.send(nos(print_trade.n + 1, "Buy", price, qty, account=8), session=session)


def test_a_stop_waits_off_the_book_and_is_a_live_order(h):
    assert h.send(buy_stop(1, 105, 10)) == [new(1, 1, 1)]
    assert h.book() == []
    assert h.engine.levels(1, "Buy") == []
    assert [(o["cl_ord_id"], o["stop_price"]) for o in h.engine.stop_orders(1)] == [(1, 105)]
    assert h.engine.live_orders == 1
    assert h.md() == []


def test_a_buy_stop_triggers_when_a_trade_reaches_it_and_matches_as_a_market_order(h):
    h.send(nos(1, "Sell", 106, 4), session=2)      # liquidity the stop will take
    h.send(buy_stop(1, 105, 10))
    h.send(nos(2, "Sell", 105, 1), session=2)
    assert h.send(nos(3, "Buy", 105, 1), session=3) == [
        new(3, 3, 4), fill(2, 2, 3, 1, 1, 0, "Added", 105), fill(3, 3, 4, 1, 1, 0, "Removed", 105),
        triggered(1, 1, 2), fill(2, 1, 1, 2, 4, 0, "Added", 106), fill(1, 1, 2, 2, 4, 6, "Removed", 106),
        er("Canceled", "Canceled", sessionId=1, clOrdId=1, orderId=2, reason="NoLiquidity")]
    assert h.engine.stop_orders(1) == []
    assert h.engine.live_orders == 0


def test_a_stop_already_reached_triggers_on_arrival(h):
    print_trade(h, 100)
    h.send(nos(1, "Buy", 99, 5), session=2)
    assert h.send(sell_stop(1, 100, 3, limit=98)) == [
        new(1, 1, 4), triggered(1, 1, 4), fill(2, 1, 3, 2, 3, 2, "Added", 99), fill(1, 1, 4, 2, 3, 0, "Removed", 99)]


def test_a_triggered_stop_limit_rests_with_what_is_left(h):
    print_trade(h, 100)
    assert h.send(buy_stop(1, 100, 5, limit=101)) == [new(1, 1, 3), triggered(1, 1, 3)]
    assert h.book() == [("Buy", 101, 5, 0, 3, 1, 1)]
    assert h.engine.orders(1)[0]["ord_type"] == "StopLimit"


def test_cascade_order_buys_ascending_then_sells_descending_then_the_next_generation(h):
    for i, price in enumerate((110, 111, 112)):
        h.send(nos(10 + i, "Sell", price, 1), session=2)
    h.send(nos(20, "Buy", 90, 5), session=2)
    h.send(buy_stop(1, 102, 1))          # order 5
    h.send(buy_stop(2, 101, 1))          # order 6
    h.send(buy_stop(3, 101, 1))          # order 7: same stop as 6, later
    h.send(buy_stop(4, 110, 1))          # order 8: triggered by the trades of the first generation
    h.send(sell_stop(5, 103, 1))         # order 9: a sell stop reached by the aggressor's trade at 102
    h.send(nos(30, "Sell", 102, 1), session=2)
    out = h.send(nos(31, "Buy", 102, 1), session=3)
    assert [(m["_name"][15:] or m["_name"], m["clOrdId"]) for m in out if m["sessionId"] == 1] == [
        ("Triggered", 2), ("Trade", 2), ("Triggered", 3), ("Trade", 3), ("Triggered", 1), ("Trade", 1),
        ("Triggered", 5), ("Trade", 5), ("Triggered", 4), ("Canceled", 4)]
    assert [m["lastPx"] for m in out if m["_name"] == "ExecutionReportTrade" and m["sessionId"] == 1] == [
        110, 111, 112, 90]
    assert h.engine.stop_orders(1) == []


def test_untriggered_stops_can_be_canceled_replaced_and_mass_canceled(h):
    h.send(buy_stop(1, 105, 10))
    h.send(sell_stop(2, 95, 10, limit=94))
    assert h.send(replace(3, 1, 107, 8)) == [
        er("Replaced", "New", clOrdId=3, origClOrdId=1, orderId=1, price=107, orderQty=8, leavesQty=8)]
    assert h.send(replace(4, 2, 93, 6, "Sell")) == [
        er("Replaced", "New", clOrdId=4, origClOrdId=2, orderId=2, price=93, orderQty=6, leavesQty=6)]
    assert [(o["cl_ord_id"], o["stop_price"], o["price"], o["order_qty"]) for o in h.engine.stop_orders(1)] == [
        (3, 107, None, 8), (4, 95, 93, 6)]
    assert h.send(cancel(5, 3)) == [er("Canceled", "Canceled", clOrdId=5, origClOrdId=3, orderId=1,
                                       reason="UserRequest")]
    assert h.send(mass_cancel(6)) == [
        er("Canceled", "Canceled", clOrdId=4, orderId=2, reason="MassCancel"),
        {"_name": "OrderMassCancelReport", "sessionId": 1, "clOrdId": 6, "instrumentId": 0, "canceledCount": 1,
         "reason": "None"}]
    assert h.engine.live_orders == 0


def test_a_replace_that_moves_the_stop_past_the_last_price_triggers_it(h):
    print_trade(h, 100)
    h.send(nos(1, "Sell", 101, 5), session=2)
    h.send(buy_stop(1, 103, 2))
    assert h.send(replace(2, 1, 100, 2)) == [
        er("Replaced", "New", clOrdId=2, origClOrdId=1, orderId=4, price=100, orderQty=2, leavesQty=2),
        triggered(1, 2, 4), fill(2, 1, 3, 2, 2, 3, "Added", 101), fill(1, 2, 4, 2, 2, 0, "Removed", 101)]


def test_a_snapshot_keeps_untriggered_stops(h, tmp_path):
    from engine_helpers import harness_sessions
    from lob.snapshot import load_snapshot, write_snapshot

    h.send(buy_stop(1, 105, 10))
    h.send(buy_stop(2, 104, 10, limit=106))
    h.send(sell_stop(3, 95, 10))
    restored, _ = load_snapshot(write_snapshot(h.engine, tmp_path, 1), sessions=harness_sessions())
    assert restored.stop_orders(1) == h.engine.stop_orders(1)
    assert [o["cl_ord_id"] for o in restored.stop_orders(1)] == [2, 1, 3]
    assert restored.live_orders == 3
