"""Day and GoodTillDate stop orders: an untriggered Day stop expires at the end of day, a GoodTillDate
stop at its expiry time (waiting, or resting once triggered), with Expired reports and its open order
released from the account's count."""
from engine_helpers import ADMIN_SESSION, Harness, admin_report, end_of_day, er, nos, replace

SECOND = 1_000_000_000


def new(cl_ord_id, order_id, session=1):
    return er("New", "New", sessionId=session, clOrdId=cl_ord_id, orderId=order_id)


def expired(cl_ord_id, order_id, reason, session=1):
    return er("Expired", "Expired", sessionId=session, clOrdId=cl_ord_id, orderId=order_id, reason=reason)


def stop(cl_ord_id, side, stop_price, qty, limit=None, **fields):
    ord_type = "Stop" if limit is None else "StopLimit"
    return nos(cl_ord_id, side, limit, qty, ordType=ord_type, stopPrice={"mantissa": stop_price}, **fields)


def stops_of(h, instrument=1):
    return [(o["cl_ord_id"], o["side"], o["stop_price"]) for o in h.engine.stop_orders(instrument)]


def test_day_stops_expire_at_end_of_day_after_their_sides_book():
    h = Harness({1: 1, 2: 1})
    assert h.send(stop(1, "Buy", 105, 10, timeInForce="Day")) == [new(1, 1)]
    assert h.send(stop(2, "Sell", 95, 5, limit=94, timeInForce="Day")) == [new(2, 2)]
    assert h.send(stop(3, "Buy", 104, 4, limit=106, timeInForce="Day"), session=2) == [new(3, 3, session=2)]
    assert h.send(stop(4, "Buy", 103, 4)) == [new(4, 4)]                        # GoodTillCancel: stays
    assert h.send(nos(5, "Buy", 90, 3, timeInForce="Day")) == [new(5, 5)]
    assert h.send(stop(6, "Sell", 90, 1, timeInForce="Day", instrumentId=2)) == [new(6, 6)]
    assert h.engine.account(0, 1)["open_orders"] == 5
    # bids: the book's Day orders, then the buy stops the next to trigger first (lowest stop); then asks
    assert h.send(end_of_day(9, 1), session=ADMIN_SESSION) == [
        expired(5, 5, "EndOfDay"), expired(3, 3, "EndOfDay", session=2), expired(1, 1, "EndOfDay"),
        expired(2, 2, "EndOfDay"), admin_report(9, 81, count=4)]
    assert stops_of(h) == [(4, "Buy", 103)]
    assert stops_of(h, 2) == [(6, "Sell", 90)]
    assert h.engine.live_orders == 2
    assert h.engine.account(0, 1)["open_orders"] == 1
    assert h.md() == [{"_name": "BookUpdate", "instrumentId": 1, "levels": [
        {"action": "New", "side": "Buy", "price": 90, "quantity": 3, "orderCount": 1}]},
        {"_name": "BookUpdate", "instrumentId": 1, "levels": [
            {"action": "Delete", "side": "Buy", "price": 90, "quantity": 0, "orderCount": 0}]}]


def test_good_till_date_stops_expire_waiting_or_resting_after_the_trigger():
    h = Harness({1: 1})
    assert h.send(stop(1, "Buy", 105, 10, timeInForce="GoodTillDate", expireTime=10)) == [new(1, 1)]
    assert h.send(stop(2, "Sell", 95, 5, limit=94, timeInForce="GoodTillDate", expireTime=5)) == [new(2, 2)]
    assert h.tick(5 * SECOND - 1) == []
    assert h.tick(5 * SECOND) == [expired(2, 2, "ExpireTime")]
    assert stops_of(h) == [(1, "Buy", 105)]
    # a replace keeps the expiry, under the new client order id
    assert h.send(replace(3, 1, 106, 8)) == [{
        "_name": "ExecutionReportReplaced", "sessionId": 1, "clOrdId": 3, "origClOrdId": 1, "orderId": 1,
        "price": 106, "orderQty": 8, "leavesQty": 8}]
    # a trade at 100 (sessions 2 and 3), then a stop-limit already reached: triggered, it rests at 101
    h.send(nos(20, "Sell", 100, 1), session=2)
    h.send(nos(30, "Buy", 100, 1), session=3)
    assert h.send(stop(4, "Buy", 100, 5, limit=101, timeInForce="GoodTillDate", expireTime=20)) == [
        new(4, 5), {"_name": "ExecutionReportTriggered", "sessionId": 1, "clOrdId": 4, "orderId": 5}]
    assert h.book() == [("Buy", 101, 5, 0, 5, 1, 4)]
    h.md()
    assert h.tick(10 * SECOND) == [expired(3, 1, "ExpireTime")]
    assert stops_of(h) == []
    assert h.tick(20 * SECOND) == [expired(4, 5, "ExpireTime")]
    assert h.book() == []
    assert h.md() == [{"_name": "BookUpdate", "instrumentId": 1, "levels": [
        {"action": "Delete", "side": "Buy", "price": 101, "quantity": 0, "orderCount": 0}]}]
    assert h.engine.live_orders == 0
    assert h.engine.account(0, 1)["open_orders"] == 0


def test_a_good_till_date_stop_that_triggered_and_filled_leaves_nothing_to_expire():
    h = Harness({1: 1})
    h.send(nos(20, "Sell", 100, 3), session=2)
    assert h.send(stop(1, "Buy", 100, 3, timeInForce="GoodTillDate", expireTime=10)) == [new(1, 2)]
    h.send(nos(21, "Sell", 100, 1), session=2)
    h.send(nos(30, "Buy", 100, 1), session=3)    # trades at 100: the stop triggers and takes order 20
    assert stops_of(h) == [] and h.engine.live_orders == 0
    assert h.tick(10 * SECOND) == []


def test_a_good_till_date_stop_needs_a_future_expiry():
    h = Harness({1: 1})
    h.clock = 5 * SECOND
    assert h.send(stop(1, "Buy", 105, 10, timeInForce="GoodTillDate", expireTime=5)) == [
        er("Rejected", "Rejected", clOrdId=1, reason="InvalidExpireTime")]
