"""OrderCancelRequest, OrderCancelReplaceRequest and OrderMassCancelRequest."""
import pytest

from engine_helpers import Harness, book_update, cancel, cancel_reject, er, mass_cancel, nos, replace, kind


@pytest.fixture
def h():
    return Harness({1: 1, 7: 5})


# --- cancel ----------------------------------------------------------------------------------------

def test_cancel_removes_the_order(h):
    h.send(nos(1, "Buy", 100, 10))
    h.md()
    assert h.send(cancel(2, 1)) == [
        er("Canceled", "Canceled", reason="UserRequest", clOrdId=2, origClOrdId=1, orderId=1, price=100, orderQty=10)]
    assert h.book() == []
    assert h.engine.order(1, 1) is None and h.engine.live_orders == 0
    assert h.md() == [book_update([("Delete", "Buy", 100, 0, 0)])]


def test_cancel_of_a_partially_filled_order_keeps_its_cum_qty(h):
    h.send(nos(1, "Sell", 100, 10))
    h.send(nos(2, "Buy", 100, 4), session=2)
    assert h.send(cancel(3, 1, "Sell")) == [
        er("Canceled", "Canceled", reason="UserRequest", clOrdId=3, origClOrdId=1, orderId=1, side="Sell", price=100,
           orderQty=10, leavesQty=0, cumQty=4)]


def test_cancel_of_an_unknown_order_is_rejected(h):
    assert h.send(cancel(2, 1)) == [cancel_reject("Cancel", "UnknownOrder", clOrdId=2, origClOrdId=1)]


@pytest.mark.parametrize("side, instrument", [("Sell", 1), ("Buy", 7), ("Buy", 99)])
def test_cancel_with_the_wrong_side_or_instrument_is_rejected(h, side, instrument):
    h.send(nos(1, "Buy", 100, 10))
    assert h.send(cancel(2, 1, side, instrument)) == [
        cancel_reject("Cancel", "UnknownOrder", clOrdId=2, origClOrdId=1, orderId=1, instrumentId=instrument)]
    assert h.book() == [("Buy", 100, 10, 0, 1, 1, 1)]


def test_cancel_cannot_reach_another_sessions_order(h):
    h.send(nos(1, "Buy", 100, 10), session=1)
    assert h.send(cancel(2, 1), session=2) == [
        cancel_reject("Cancel", "UnknownOrder", sessionId=2, clOrdId=2, origClOrdId=1)]


def test_cancel_of_a_filled_order_is_rejected(h):
    h.send(nos(1, "Buy", 100, 10))
    h.send(nos(2, "Sell", 100, 10))
    assert h.send(cancel(3, 1))[0]["reason"] == "UnknownOrder"


def test_cancel_keeps_the_rest_of_the_level_in_order(h):
    for cl in (1, 2, 3):
        h.send(nos(cl, "Buy", 100, cl))
    h.send(cancel(9, 2))
    assert h.book() == [("Buy", 100, 1, 0, 1, 1, 1), ("Buy", 100, 3, 0, 3, 1, 3)]
    assert h.engine.levels(1, "Buy") == [(100, 4, 2)]


# --- replace ---------------------------------------------------------------------------------------

def test_replace_of_an_unknown_order_is_rejected(h):
    assert h.send(replace(2, 1, 100, 5)) == [cancel_reject("Replace", "UnknownOrder", clOrdId=2, origClOrdId=1)]


@pytest.mark.parametrize("changes, reason", [
    (dict(side="Sell"), "UnknownOrder"),
    (dict(instrumentId=1), "UnknownOrder"),
    (dict(quantity=0), "InvalidQuantity"),
    (dict(quantity=-1), "InvalidQuantity"),
    (dict(quantity=10 ** 12 + 1), "InvalidQuantity"),
    (dict(price=0), "InvalidPrice"),
    (dict(price=-100), "InvalidPrice"),
    (dict(price=101), "PriceOffTick"),
    (dict(clOrdId=3), "DuplicateClOrdId"),
], ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else v)
def test_invalid_replace_is_rejected_and_changes_nothing(h, changes, reason):
    h.send(nos(1, "Buy", 100, 10, instrumentId=7))
    h.send(nos(3, "Buy", 95, 10, instrumentId=7))
    h.md()
    before = h.engine.orders(7)
    request = dict(clOrdId=2, origClOrdId=1, price=105, quantity=5, side="Buy", instrumentId=7)
    request.update(changes)
    assert h.send(replace(**request)) == [
        cancel_reject("Replace", reason, clOrdId=request["clOrdId"], origClOrdId=1, orderId=1,
                      instrumentId=request["instrumentId"])]
    assert h.engine.orders(7) == before and h.md() == []


def test_replace_quantity_down_keeps_priority(h):
    h.send(nos(1, "Buy", 100, 10))
    h.send(nos(2, "Buy", 100, 10))
    h.md()
    assert h.send(replace(3, 1, 100, 6)) == [
        er("Replaced", "New", clOrdId=3, origClOrdId=1, orderId=1, price=100, orderQty=6, leavesQty=6)]
    assert h.book() == [("Buy", 100, 6, 0, 1, 1, 3), ("Buy", 100, 10, 0, 2, 1, 2)]
    assert h.md() == [book_update([("Change", "Buy", 100, 16, 2)])]
    assert h.engine.order(1, 1) is None and h.engine.order(1, 3)["order_id"] == 1


def test_replace_to_the_same_quantity_keeps_priority_and_publishes_nothing(h):
    h.send(nos(1, "Buy", 100, 10))
    h.send(nos(2, "Buy", 100, 10))
    h.md()
    assert h.send(replace(1, 1, 100, 10)) == [
        er("Replaced", "New", clOrdId=1, origClOrdId=1, orderId=1, price=100, orderQty=10, leavesQty=10)]
    assert [o[4] for o in h.book()] == [1, 2]
    assert h.md() == []


def test_replace_quantity_up_loses_priority(h):
    h.send(nos(1, "Buy", 100, 10))
    h.send(nos(2, "Buy", 100, 10))
    h.send(replace(3, 1, 100, 12))
    assert h.book() == [("Buy", 100, 10, 0, 2, 1, 2), ("Buy", 100, 12, 0, 1, 1, 3)]


def test_replace_price_change_loses_priority(h):
    h.send(nos(1, "Buy", 100, 10))
    h.send(nos(2, "Buy", 99, 10))
    h.md()
    h.send(replace(3, 1, 99, 5))
    assert h.book() == [("Buy", 99, 10, 0, 2, 1, 2), ("Buy", 99, 5, 0, 1, 1, 3)]
    assert h.md() == [book_update([("Delete", "Buy", 100, 0, 0), ("Change", "Buy", 99, 15, 2)])]


def test_replace_of_a_partially_filled_order(h):
    h.send(nos(1, "Sell", 100, 10))
    h.send(nos(2, "Buy", 100, 4), session=2)
    assert h.send(replace(3, 1, 101, 12, side="Sell")) == [
        er("Replaced", "PartiallyFilled", clOrdId=3, origClOrdId=1, orderId=1, side="Sell", price=101, orderQty=12,
           leavesQty=8, cumQty=4)]


@pytest.mark.parametrize("quantity", [4, 3])
def test_replace_at_or_below_the_filled_quantity_ends_the_order(h, quantity):
    h.send(nos(1, "Sell", 100, 10))
    h.send(nos(2, "Buy", 100, 4), session=2)
    assert h.send(replace(3, 1, 100, quantity, side="Sell")) == [
        er("Canceled", "Canceled", reason="ReplacedAtOrBelowFilled", clOrdId=3, origClOrdId=1, orderId=1,
           side="Sell", price=100, orderQty=10, leavesQty=0, cumQty=4)]
    assert h.book() == [] and h.engine.live_orders == 0


def test_replace_that_crosses_matches_as_aggressor_and_rests_the_rest(h):
    h.send(nos(1, "Sell", 101, 3), session=2)
    h.send(nos(2, "Buy", 99, 10))
    h.md()
    assert h.send(replace(3, 2, 101, 10)) == [
        er("Replaced", "New", clOrdId=3, origClOrdId=2, orderId=2, price=101, orderQty=10, leavesQty=10),
        er("Trade", "Filled", sessionId=2, clOrdId=1, orderId=1, side="Sell", liquidity="Added", price=101,
           orderQty=3, lastPx=101, lastQty=3, cumQty=3, tradeId=1),
        er("Trade", "PartiallyFilled", clOrdId=3, orderId=2, liquidity="Removed", price=101, orderQty=10,
           lastPx=101, lastQty=3, leavesQty=7, cumQty=3, tradeId=1),
    ]
    assert h.book() == [("Buy", 101, 7, 3, 2, 1, 3)]
    md = h.md()
    assert md[-1] == book_update([("Delete", "Buy", 99, 0, 0), ("Delete", "Sell", 101, 0, 0),
                                  ("New", "Buy", 101, 7, 1)])


def test_post_only_replace_that_would_cross_is_rejected(h):
    h.send(nos(1, "Sell", 101, 3), session=2)
    h.send(nos(2, "Buy", 99, 10, post_only=True))
    assert h.send(replace(3, 2, 101, 10)) == [
        cancel_reject("Replace", "PostOnlyWouldCross", clOrdId=3, origClOrdId=2, orderId=2)]
    assert h.engine.order(1, 2)["price"] == 99


def test_replace_with_a_new_id_used_by_another_session_is_fine(h):
    h.send(nos(5, "Buy", 90, 1), session=2)
    h.send(nos(1, "Buy", 100, 10))
    assert kind(h.send(replace(5, 1, 100, 9))[0]) == "Replaced"


def test_old_cl_ord_id_is_gone_after_a_replace(h):
    h.send(nos(1, "Buy", 100, 10))
    h.send(replace(2, 1, 100, 9))
    assert h.send(cancel(3, 1))[0]["reason"] == "UnknownOrder"
    assert h.send(cancel(3, 2))[0]["reason"] == "UserRequest"


# --- mass cancel -----------------------------------------------------------------------------------

def test_mass_cancel_cancels_the_sessions_orders_in_book_order(h):
    h.send(nos(1, "Buy", 99, 1))
    h.send(nos(2, "Sell", 102, 2))
    h.send(nos(3, "Buy", 100, 3))
    h.send(nos(4, "Sell", 101, 4))
    h.send(nos(5, "Buy", 100, 5))
    h.send(nos(6, "Buy", 100, 6), session=2)
    h.md()
    reports = h.send(mass_cancel(9, 1))
    assert reports == [
        er("Canceled", "Canceled", reason="MassCancel", clOrdId=3, orderId=3, price=100, orderQty=3),
        er("Canceled", "Canceled", reason="MassCancel", clOrdId=5, orderId=5, price=100, orderQty=5),
        er("Canceled", "Canceled", reason="MassCancel", clOrdId=1, orderId=1, price=99, orderQty=1),
        er("Canceled", "Canceled", reason="MassCancel", clOrdId=4, orderId=4, side="Sell", price=101, orderQty=4),
        er("Canceled", "Canceled", reason="MassCancel", clOrdId=2, orderId=2, side="Sell", price=102, orderQty=2),
        {"_name": "OrderMassCancelReport", "sessionId": 1, "clOrdId": 9, "instrumentId": 1, "canceledCount": 5,
         "reason": "None"},
    ]
    assert h.book() == [("Buy", 100, 6, 0, 6, 2, 6)]
    assert h.md() == [book_update([("Change", "Buy", 100, 6, 1), ("Delete", "Buy", 99, 0, 0),
                                   ("Delete", "Sell", 101, 0, 0), ("Delete", "Sell", 102, 0, 0)])]


def test_mass_cancel_of_all_instruments_goes_instrument_by_instrument(h):
    h.send(nos(1, "Buy", 95, 1, instrumentId=7))
    h.send(nos(2, "Buy", 100, 1))
    h.md()
    reports = h.send(mass_cancel(9, 0))
    assert [(r["_name"], r.get("clOrdId"), r.get("canceledCount")) for r in reports] == [
        ("ExecutionReportCanceled", 2, None), ("ExecutionReportCanceled", 1, None), ("OrderMassCancelReport", 9, 2)]
    # instruments in configuration order ({1: 1, 7: 5}), one BookUpdate each
    assert h.md() == [book_update([("Delete", "Buy", 100, 0, 0)], 1), book_update([("Delete", "Buy", 95, 0, 0)], 7)]


def test_mass_cancel_of_an_unknown_instrument(h):
    h.send(nos(1, "Buy", 100, 1))
    assert h.send(mass_cancel(9, 99)) == [
        {"_name": "OrderMassCancelReport", "sessionId": 1, "clOrdId": 9, "instrumentId": 99, "canceledCount": 0,
         "reason": "UnknownInstrument"}]
    assert len(h.book()) == 1


def test_mass_cancel_with_nothing_to_cancel(h):
    h.send(nos(1, "Buy", 100, 1), session=2)
    assert h.send(mass_cancel(9, 0)) == [
        {"_name": "OrderMassCancelReport", "sessionId": 1, "clOrdId": 9, "instrumentId": 0, "canceledCount": 0,
         "reason": "None"}]
    h.md()
    assert h.md() == []


def test_mass_cancel_by_side_leaves_the_other_side(h):
    h.send(nos(1, "Buy", 95, 1, instrumentId=7))
    h.send(nos(2, "Sell", 105, 1, instrumentId=7))
    h.send(nos(3, "Buy", 99, 2))
    h.send(nos(4, "Sell", 101, 2))
    reports = h.send(mass_cancel(9, 0, side="Sell"))
    assert reports == [er("Canceled", "Canceled", clOrdId=4, orderId=4, reason="MassCancel"),
                       er("Canceled", "Canceled", clOrdId=2, orderId=2, reason="MassCancel"),
                       {"_name": "OrderMassCancelReport", "sessionId": 1, "clOrdId": 9, "instrumentId": 0,
                        "canceledCount": 2, "reason": "None"}]
    assert h.book(1) == [("Buy", 99, 2, 0, 3, 1, 3)] and h.book(7) == [("Buy", 95, 1, 0, 1, 1, 1)]


def test_mass_cancel_with_a_side_that_is_none_of_buy_sell_both_is_refused(h):
    h.send(nos(1, "Buy", 99, 2))
    assert h.send(mass_cancel(9, 1, side=3)) == [
        {"_name": "OrderMassCancelReport", "sessionId": 1, "clOrdId": 9, "instrumentId": 1, "canceledCount": 0,
         "reason": "InvalidSide"}]
    assert h.book(1) == [("Buy", 99, 2, 0, 1, 1, 1)]
