"""NewOrderSingle: validation, acknowledgement, matching, time in force, order types."""
import pytest

from engine_helpers import Harness, cancel, er, market, nos, kind


@pytest.fixture
def h():
    return Harness({1: 1, 7: 5})


def rejected(reason, **fields):
    return er("Rejected", "Rejected", reason=reason, **fields)


# --- validation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("frame, expected", [
    (nos(1, instrumentId=99), rejected("UnknownInstrument", clOrdId=1, instrumentId=99, price=100, orderQty=10)),
    (nos(1, side=3), rejected("InvalidSide", clOrdId=1, side=3, price=100, orderQty=10)),
    (nos(1, ordType="Stop"), rejected("InvalidStopPrice", clOrdId=1, ordType="Stop", price=100, orderQty=10)),
    (nos(1, ordType="StopLimit", stopPrice={"mantissa": 0}),
     rejected("InvalidStopPrice", clOrdId=1, ordType="StopLimit", price=100, orderQty=10)),
    (nos(1, ordType="StopLimit", price=None, stopPrice={"mantissa": 90}),
     rejected("InvalidPrice", clOrdId=1, ordType="StopLimit", orderQty=10)),
    (nos(1, ordType="Stop", stopPrice={"mantissa": 91}, instrumentId=7),
     rejected("PriceOffTick", clOrdId=1, ordType="Stop", price=100, orderQty=10, instrumentId=7)),
    (nos(1, ordType="StopLimit", stopPrice={"mantissa": 90}, post_only=True),
     rejected("InvalidOrdType", clOrdId=1, ordType="StopLimit", price=100, orderQty=10)),
    (nos(1, ordType=7), rejected("InvalidOrdType", clOrdId=1, ordType=7, price=100, orderQty=10)),
    (nos(1, timeInForce=2), rejected("InvalidTimeInForce", clOrdId=1, timeInForce=2, price=100, orderQty=10)),
    (nos(1, quantity=0), rejected("InvalidQuantity", clOrdId=1, price=100, orderQty=0)),
    (nos(1, quantity=-3), rejected("InvalidQuantity", clOrdId=1, price=100, orderQty=-3)),
    (nos(1, quantity=10 ** 12 + 1), rejected("InvalidQuantity", clOrdId=1, price=100, orderQty=10 ** 12 + 1)),
    (nos(1, price=None), rejected("InvalidPrice", clOrdId=1, orderQty=10)),
    (nos(1, price=0), rejected("InvalidPrice", clOrdId=1, price=0, orderQty=10)),
    (nos(1, price=-5), rejected("InvalidPrice", clOrdId=1, price=-5, orderQty=10)),
    (nos(1, price=101, instrumentId=7), rejected("PriceOffTick", clOrdId=1, instrumentId=7, price=101, orderQty=10)),
    (nos(1, displayQty=0), rejected("InvalidDisplayQty", clOrdId=1, price=100, orderQty=10)),
    (nos(1, displayQty=11), rejected("InvalidDisplayQty", clOrdId=1, price=100, orderQty=10)),
    (market(1, displayQty=5), rejected("InvalidDisplayQty", clOrdId=1, ordType="Market", orderQty=10)),
    (nos(1, selfTradePrevention=9), rejected("InvalidSelfTradePrevention", clOrdId=1, price=100, orderQty=10)),
    (nos(1, stopPrice={"mantissa": 90}), rejected("InvalidStopPrice", clOrdId=1, price=100, orderQty=10)),
    (market(1, stopPrice={"mantissa": 90}), rejected("InvalidStopPrice", clOrdId=1, ordType="Market", orderQty=10)),
])
def test_invalid_new_order_is_rejected_and_changes_nothing(h, frame, expected):
    assert h.send(frame) == [expected]
    assert h.book(1) == [] and h.book(7) == []
    assert h.md() == []
    assert h.engine.next_order_id == 1


def test_reject_echoes_the_order_fields(h):
    frame = nos(42, "Sell", 103, 7, instrumentId=7, account=9, timeInForce="Day")
    assert h.send(frame, session=5) == [rejected("PriceOffTick", sessionId=5, account=9, clOrdId=42, instrumentId=7,
                                                 side="Sell", timeInForce="Day", price=103, orderQty=7)]


def test_checks_run_in_the_documented_order(h):
    # unknown instrument wins over a bad side, a bad side over a bad quantity, and so on
    assert h.send(nos(1, side=0, instrumentId=99))[0]["reason"] == "UnknownInstrument"
    assert h.send(nos(1, side=0, quantity=0))[0]["reason"] == "InvalidSide"
    assert h.send(nos(1, ordType="Stop", timeInForce=9, post_only=True))[0]["reason"] == "InvalidOrdType"
    assert h.send(nos(1, timeInForce=9, quantity=0))[0]["reason"] == "InvalidTimeInForce"
    assert h.send(nos(1, quantity=0, price=0))[0]["reason"] == "InvalidQuantity"
    assert h.send(nos(1, price=0, displayQty=3))[0]["reason"] == "InvalidPrice"
    assert h.send(nos(1, displayQty=0, selfTradePrevention=9))[0]["reason"] == "InvalidDisplayQty"
    assert h.send(nos(1, selfTradePrevention=9, stopPrice={"mantissa": 1}))[0]["reason"] == \
        "InvalidSelfTradePrevention"
    assert h.send(nos(1, displayQty=3, stopPrice={"mantissa": 1}))[0]["reason"] == "InvalidStopPrice"


def test_largest_quantity_is_accepted(h):
    assert kind(h.send(nos(1, quantity=10 ** 12))[0]) == "New"


def test_duplicate_cl_ord_id_of_a_live_order_is_rejected(h):
    h.send(nos(1, "Buy", 100, 10))
    assert h.send(nos(1, "Sell", 200, 5)) == [rejected("DuplicateClOrdId", clOrdId=1, side="Sell", price=200, orderQty=5)]
    assert h.book() == [("Buy", 100, 10, 0, 1, 1, 1)]


def test_cl_ord_id_is_per_session_and_reusable_once_the_order_is_gone(h):
    h.send(nos(1, "Buy", 100, 10), session=1)
    assert kind(h.send(nos(1, "Buy", 99, 10), session=2)[0]) == "New"
    h.send(nos(2, "Sell", 100, 10), session=3)  # fills session 1's order 1
    assert kind(h.send(nos(1, "Buy", 98, 1), session=1)[0]) == "New"


def test_pool_full_is_a_clean_reject():
    h = Harness(max_orders=2)
    h.send(nos(1, "Buy", 100, 1))
    h.send(nos(2, "Buy", 99, 1))
    assert h.send(nos(3, "Sell", 101, 1)) == [rejected("PoolFull", clOrdId=3, side="Sell", price=101, orderQty=1)]
    assert h.engine.live_orders == 2
    # every accepted order holds a slot while it matches, so a full pool refuses even one that would fill
    assert h.send(nos(4, "Sell", 100, 1))[0]["reason"] == "PoolFull"
    h.send(cancel(6, 2))
    assert kind(h.send(nos(3, "Sell", 101, 1))[0]) == "New"


def test_post_only_that_would_cross_is_rejected(h):
    h.send(nos(1, "Sell", 101, 5))
    assert h.send(nos(2, "Buy", 101, 5, post_only=True)) == [
        rejected("PostOnlyWouldCross", clOrdId=2, price=101, orderQty=5)]
    assert h.book() == [("Sell", 101, 5, 0, 1, 1, 1)]


def test_post_only_that_does_not_cross_rests(h):
    h.send(nos(1, "Sell", 101, 5))
    assert h.send(nos(2, "Buy", 100, 5, post_only=True)) == [
        er("New", "New", clOrdId=2, orderId=2, price=100, orderQty=5, leavesQty=5)]


# --- acceptance and matching -----------------------------------------------------------------------

def test_limit_order_is_acknowledged_and_rests(h):
    assert h.send(nos(1, "Buy", 100, 10, account=3)) == [
        er("New", "New", clOrdId=1, orderId=1, account=3, price=100, orderQty=10, leavesQty=10)]
    assert h.book() == [("Buy", 100, 10, 0, 1, 1, 1)]


def test_day_order_rests_like_gtc(h):
    h.send(nos(1, "Sell", 100, 10, timeInForce="Day"))
    assert h.engine.order(1, 1)["time_in_force"] == "Day"


def test_full_fill_reports_maker_then_taker_at_the_maker_price(h):
    h.send(nos(1, "Sell", 100, 10), session=1)
    assert h.send(nos(7, "Buy", 105, 10), session=2) == [
        er("New", "New", sessionId=2, clOrdId=7, orderId=2, price=105, orderQty=10, leavesQty=10),
        er("Trade", "Filled", sessionId=1, clOrdId=1, orderId=1, side="Sell", liquidity="Added", price=100,
           orderQty=10, lastPx=100, lastQty=10, leavesQty=0, cumQty=10, tradeId=1),
        er("Trade", "Filled", sessionId=2, clOrdId=7, orderId=2, liquidity="Removed", price=105, orderQty=10,
           lastPx=100, lastQty=10, leavesQty=0, cumQty=10, tradeId=1),
    ]
    assert h.book() == []
    assert h.engine.live_orders == 0


def test_partial_fills_walk_the_book_in_price_time_priority(h):
    h.send(nos(1, "Sell", 101, 4))
    h.send(nos(2, "Sell", 100, 3))
    h.send(nos(3, "Sell", 100, 5))  # same price as 2, later: fills after 2
    h.send(nos(4, "Sell", 103, 9))  # beyond the limit
    reports = h.send(nos(5, "Buy", 102, 10))
    fills = [(r["clOrdId"], r["liquidity"], r["lastPx"], r["lastQty"], r["leavesQty"], r["tradeId"])
             for r in reports if kind(r) == "Trade"]
    assert fills == [
        (2, "Added", 100, 3, 0, 1), (5, "Removed", 100, 3, 7, 1),
        (3, "Added", 100, 5, 0, 2), (5, "Removed", 100, 5, 2, 2),
        (1, "Added", 101, 2, 2, 3), (5, "Removed", 101, 2, 0, 3),
    ]
    assert h.book() == [("Sell", 101, 2, 2, 1, 1, 1), ("Sell", 103, 9, 0, 4, 1, 4)]
    assert h.engine.next_trade_id == 4


def test_remainder_of_a_crossing_limit_order_rests(h):
    h.send(nos(1, "Buy", 100, 4))
    reports = h.send(nos(2, "Sell", 99, 10))
    assert reports[-1] == er("Trade", "PartiallyFilled", clOrdId=2, orderId=2, side="Sell", liquidity="Removed",
                             price=99, orderQty=10, lastPx=100, lastQty=4, leavesQty=6, cumQty=4, tradeId=1)
    assert h.book() == [("Sell", 99, 6, 4, 2, 1, 2)]


def test_ioc_remainder_is_canceled(h):
    h.send(nos(1, "Sell", 100, 4))
    reports = h.send(nos(2, "Buy", 100, 10, timeInForce="ImmediateOrCancel"))
    assert [kind(r) for r in reports] == ["New", "Trade", "Trade", "Canceled"]
    assert reports[-1] == er("Canceled", "Canceled", reason="ImmediateOrCancel", clOrdId=2, orderId=2,
                             timeInForce="ImmediateOrCancel", price=100, orderQty=10, leavesQty=0, cumQty=4)
    assert h.book() == []


def test_ioc_without_liquidity_is_canceled_and_does_not_rest(h):
    assert h.send(nos(1, "Buy", 100, 10, timeInForce="ImmediateOrCancel")) == [
        er("New", "New", clOrdId=1, orderId=1, timeInForce="ImmediateOrCancel", price=100, orderQty=10, leavesQty=10),
        er("Canceled", "Canceled", reason="ImmediateOrCancel", clOrdId=1, orderId=1, timeInForce="ImmediateOrCancel",
           price=100, orderQty=10),
    ]
    assert h.book() == [] and h.md() == []


def test_ioc_filled_completely_has_no_cancel(h):
    h.send(nos(1, "Sell", 100, 10))
    reports = h.send(nos(2, "Buy", 100, 10, timeInForce="ImmediateOrCancel"))
    assert [kind(r) for r in reports] == ["New", "Trade", "Trade"]


def test_fok_not_fillable_is_canceled_without_any_fill(h):
    h.send(nos(1, "Sell", 100, 4))
    h.send(nos(2, "Sell", 102, 10))  # beyond the limit: does not count
    assert h.send(nos(3, "Buy", 101, 5, timeInForce="FillOrKill")) == [
        er("New", "New", clOrdId=3, orderId=3, timeInForce="FillOrKill", price=101, orderQty=5, leavesQty=5),
        er("Canceled", "Canceled", reason="FillOrKillNotFillable", clOrdId=3, orderId=3, timeInForce="FillOrKill",
           price=101, orderQty=5),
    ]
    assert h.book() == [("Sell", 100, 4, 0, 1, 1, 1), ("Sell", 102, 10, 0, 2, 1, 2)]
    assert h.engine.next_trade_id == 1


def test_fok_fillable_fills_completely_across_levels(h):
    h.send(nos(1, "Sell", 100, 4))
    h.send(nos(2, "Sell", 101, 10))
    reports = h.send(nos(3, "Buy", 101, 9, timeInForce="FillOrKill"))
    assert [(r["clOrdId"], kind(r), r.get("leavesQty"), r.get("lastQty")) for r in reports] == [
        (3, "New", None, None), (1, "Trade", 0, 4), (3, "Trade", 5, 4),
        (2, "Trade", 5, 5), (3, "Trade", 0, 5)]
    assert h.book() == [("Sell", 101, 5, 5, 2, 1, 2)]


def test_market_order_matches_at_any_price_and_cancels_the_rest(h):
    h.send(nos(1, "Buy", 90, 3))
    h.send(nos(2, "Buy", 50, 3))
    assert h.send(market(3, "Sell", 10)) == [
        er("New", "New", clOrdId=3, orderId=3, side="Sell", ordType="Market", orderQty=10, leavesQty=10),
        er("Trade", "Filled", clOrdId=1, orderId=1, liquidity="Added", price=90, orderQty=3, lastPx=90, lastQty=3,
           cumQty=3, tradeId=1),
        er("Trade", "PartiallyFilled", clOrdId=3, orderId=3, side="Sell", ordType="Market", liquidity="Removed",
           orderQty=10, lastPx=90, lastQty=3, leavesQty=7, cumQty=3, tradeId=1),
        er("Trade", "Filled", clOrdId=2, orderId=2, liquidity="Added", price=50, orderQty=3, lastPx=50, lastQty=3,
           cumQty=3, tradeId=2),
        er("Trade", "PartiallyFilled", clOrdId=3, orderId=3, side="Sell", ordType="Market", liquidity="Removed",
           orderQty=10, lastPx=50, lastQty=3, leavesQty=4, cumQty=6, tradeId=2),
        er("Canceled", "Canceled", reason="NoLiquidity", clOrdId=3, orderId=3, side="Sell", ordType="Market",
           orderQty=10, cumQty=6),
    ]
    assert h.book() == []


@pytest.mark.parametrize("tif", ["GoodTillCancel", "Day", "ImmediateOrCancel"])
def test_market_order_never_rests(h, tif):
    assert h.send(market(1, "Buy", 5, timeInForce=tif)) == [
        er("New", "New", clOrdId=1, orderId=1, ordType="Market", timeInForce=tif, orderQty=5, leavesQty=5),
        er("Canceled", "Canceled", reason="NoLiquidity", clOrdId=1, orderId=1, ordType="Market", timeInForce=tif,
           orderQty=5),
    ]
    assert h.book() == []


def test_market_fok_needs_enough_quantity_at_any_price(h):
    h.send(nos(1, "Sell", 100, 3))
    h.send(nos(2, "Sell", 500, 3))
    assert h.send(market(3, "Buy", 7, timeInForce="FillOrKill"))[-1]["reason"] == "FillOrKillNotFillable"
    assert [kind(r) for r in h.send(market(4, "Buy", 6, timeInForce="FillOrKill"))] == ["New"] + ["Trade"] * 4


def test_market_order_with_a_price_ignores_it(h):
    h.send(nos(1, "Sell", 90, 2))
    reports = h.send(market(2, "Buy", 5, price=77))
    assert [(kind(r), r["clOrdId"], r.get("lastPx"), r.get("reason")) for r in reports] == [
        ("New", 2, None, None), ("Trade", 1, 90, None), ("Trade", 2, 90, None), ("Canceled", 2, None, "NoLiquidity")]


def test_instruments_are_separate_books(h):
    h.send(nos(1, "Sell", 100, 5, instrumentId=7))
    reports = h.send(nos(2, "Buy", 100, 5))
    assert [kind(r) for r in reports] == ["New"]
    assert h.book(1) == [("Buy", 100, 5, 0, 2, 1, 2)]
    assert h.book(7) == [("Sell", 100, 5, 0, 1, 1, 1)]


def test_sequences_ids_and_transact_time(h):
    out = h.send(nos(1, "Sell", 100, 5), timestamp=111, sequences=True)
    out += h.send(nos(1, "Sell", 100, 5), timestamp=222, sequences=True)  # duplicate: rejected, no order id
    out += h.send(b"\x00", timestamp=333, sequences=True)
    out += h.send(nos(2, "Buy", 100, 2), timestamp=444, sequences=True)
    assert [(r["_name"], r["seqNum"], r["transactTime"], r.get("orderId"), r.get("tradeId")) for r in out] == [
        ("ExecutionReportNew", 1, 111, 1, None),
        ("ExecutionReportRejected", 2, 222, None, None),
        ("MessageReject", 3, 333, None, None),
        ("ExecutionReportNew", 4, 444, 2, None),
        ("ExecutionReportTrade", 5, 444, 1, 1),
        ("ExecutionReportTrade", 6, 444, 2, 1),
    ]
    md = h.md(sequences=True)
    assert [(m["_name"], m["seqNum"], m["transactTime"]) for m in md] == [
        ("BookUpdate", 1, 111), ("Trade", 2, 444), ("BookUpdate", 3, 444)]


def test_the_last_trade_price_follows_the_fills(h):
    assert h.engine.last_price(1) is None
    h.send(nos(1, "Sell", 101, 2))
    h.send(nos(2, "Sell", 103, 2))
    h.send(nos(3, "Buy", 103, 3))          # fills at 101, then at 103
    assert (h.engine.last_price(1), h.engine.last_price(7)) == (103, None)
