"""Pro-rata matching (an instrument setting): an aggressor that cannot take the whole level shares its
quantity in proportion to the orders' shown sizes, rounded down, shares below the minimum allocation
dropped, the rest in time order; fills in time order."""
from engine_helpers import Harness, er, nos


def pro_rata(minimum=0):
    return Harness({1: 1}, matching={1: ("pro-rata", minimum)})


def fills(reports):
    return [(m["orderId"], m["lastQty"], m["leavesQty"]) for m in reports
            if m["_name"] == "ExecutionReportTrade" and m["liquidity"] == "Added"]


def test_shares_in_proportion_to_size():
    h = pro_rata()
    for i, qty in enumerate((10, 30, 60), 1):
        h.send(nos(i, "Sell", 100, qty))
    out = h.send(nos(1, "Buy", 100, 50), session=2)
    assert fills(out) == [(1, 5, 5), (2, 15, 15), (3, 30, 30)]
    assert out[-1] == er("Trade", "", sessionId=2, clOrdId=1, orderId=4, tradeId=3, lastPx=100, lastQty=30,
                         leavesQty=0, liquidity="Removed")
    assert h.engine.levels(1, "Sell") == [(100, 50, 3)]


def test_rounding_down_and_the_rest_in_time_order():
    h = pro_rata()
    for i, qty in enumerate((1, 2, 4), 1):
        h.send(nos(i, "Sell", 100, qty))
    assert fills(h.send(nos(1, "Buy", 100, 5), session=2)) == [(1, 1, 0), (2, 2, 0), (3, 2, 2)]


def test_a_share_below_the_minimum_goes_by_time_instead():
    h = pro_rata(minimum=3)
    h.send(nos(1, "Sell", 100, 90))
    h.send(nos(2, "Sell", 100, 10))
    assert fills(h.send(nos(1, "Buy", 100, 20), session=2)) == [(1, 20, 70)]
    h = pro_rata(minimum=0)
    h.send(nos(1, "Sell", 100, 90))
    h.send(nos(2, "Sell", 100, 10))
    assert fills(h.send(nos(1, "Buy", 100, 20), session=2)) == [(1, 18, 72), (2, 2, 8)]


def test_an_aggressor_that_takes_the_whole_level_fills_it_in_time_order_then_shares_the_next():
    h = pro_rata()
    h.send(nos(1, "Sell", 100, 3))
    h.send(nos(2, "Sell", 100, 4))
    h.send(nos(3, "Sell", 101, 10))
    h.send(nos(4, "Sell", 101, 10))
    assert fills(h.send(nos(1, "Buy", 101, 11), session=2)) == [(1, 3, 0), (2, 4, 0), (3, 2, 8), (4, 2, 8)]


def test_price_time_stays_the_default():
    h = Harness({1: 1})
    h.send(nos(1, "Sell", 100, 10))
    h.send(nos(2, "Sell", 100, 10))
    assert fills(h.send(nos(1, "Buy", 100, 10), session=2)) == [(1, 10, 0)]


def test_self_trade_prevention_meets_the_level_s_own_orders_before_sharing():
    h = pro_rata()
    h.send(nos(1, "Sell", 100, 5, account=1))
    h.send(nos(2, "Sell", 100, 5, account=2))
    h.send(nos(3, "Sell", 100, 10, account=3))
    out = h.send(nos(1, "Buy", 100, 6, account=2, selfTradePrevention="CancelResting"), session=2)
    assert [m["_name"][15:] for m in out if m["sessionId"] == 1] == ["Canceled", "Trade", "Trade"]
    assert fills(out) == [(1, 2, 3), (3, 4, 6)]
    # a FOK that would meet its own order before any fill at the level is not fillable
    h.send(nos(4, "Sell", 100, 5, account=2))
    out = h.send(nos(2, "Buy", 100, 3, account=2, timeInForce="FillOrKill", selfTradePrevention="CancelAggressor"),
                 session=2)
    assert out[-1]["reason"] == "FillOrKillNotFillable"
