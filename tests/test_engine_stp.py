"""Self-trade prevention: the aggressor's mode decides what happens when it meets a resting order of its
own account (or of its non-zero STP group); no trade between them ever happens."""
import pytest

from engine_helpers import Harness, book_update, er, nos, trade


@pytest.fixture
def h():
    return Harness({1: 1})


def sell(h, cl_ord_id, qty, account, session=1, price=100, **fields):
    h.send(nos(cl_ord_id, "Sell", price, qty, account=account, **fields), session=session)


def new(session, cl_ord_id, order_id):
    return er("New", "New", sessionId=session, clOrdId=cl_ord_id, orderId=order_id)


def fill(session, cl_ord_id, order_id, trade_id, qty, leaves, liquidity, price=100):
    return er("Trade", "", sessionId=session, clOrdId=cl_ord_id, orderId=order_id, tradeId=trade_id, lastPx=price,
              lastQty=qty, leavesQty=leaves, liquidity=liquidity)


def prevented(session, cl_ord_id, order_id):
    return er("Canceled", "Canceled", sessionId=session, clOrdId=cl_ord_id, orderId=order_id,
              reason="SelfTradePrevented")


def restated(session, cl_ord_id, order_id, qty, leaves, price=100):
    return er("Replaced", "", sessionId=session, clOrdId=cl_ord_id, origClOrdId=cl_ord_id, orderId=order_id,
              price=price, orderQty=qty, leavesQty=leaves)


def test_cancel_aggressor_trades_up_to_its_own_order_then_cancels_the_rest(h):
    sell(h, 1, 3, account=7)
    sell(h, 2, 10, account=5)
    h.md()
    assert h.send(nos(1, "Buy", 100, 8, account=5, selfTradePrevention="CancelAggressor"), session=2) == [
        new(2, 1, 3), fill(1, 1, 1, 1, 3, 0, "Added"), fill(2, 1, 3, 1, 3, 5, "Removed"), prevented(2, 1, 3)]
    assert h.book() == [("Sell", 100, 10, 0, 2, 1, 2)]
    assert h.md() == [trade(1, 100, 3, "Buy"), book_update([("Change", "Sell", 100, 10, 1)])]


def test_cancel_resting_cancels_each_own_order_it_meets_and_goes_on(h):
    sell(h, 1, 3, account=7)
    sell(h, 2, 10, account=5)
    sell(h, 3, 4, account=8, session=3)
    assert h.send(nos(1, "Buy", 100, 8, account=5, selfTradePrevention="CancelResting"), session=2) == [
        new(2, 1, 4), fill(1, 1, 1, 1, 3, 0, "Added"), fill(2, 1, 4, 1, 3, 5, "Removed"), prevented(1, 2, 2),
        fill(3, 3, 3, 2, 4, 0, "Added"), fill(2, 1, 4, 2, 4, 1, "Removed")]
    assert h.book() == [("Buy", 100, 1, 7, 4, 2, 1)]


def test_cancel_both(h):
    sell(h, 1, 10, account=5)
    assert h.send(nos(1, "Buy", 100, 4, account=5, selfTradePrevention="CancelBoth"), session=2) == [
        new(2, 1, 2), prevented(1, 1, 1), prevented(2, 1, 2)]
    assert h.book() == []
    assert h.engine.levels(1, "Sell") == []


def test_decrement_and_cancel_resting_larger_is_reduced_and_the_aggressor_canceled(h):
    sell(h, 1, 10, account=5)
    h.md()
    assert h.send(nos(1, "Buy", 100, 4, account=5, selfTradePrevention="DecrementAndCancel"), session=2) == [
        new(2, 1, 2), restated(1, 1, 1, 6, 6), prevented(2, 1, 2)]
    assert h.book() == [("Sell", 100, 6, 0, 1, 1, 1)]
    assert h.md() == [book_update([("Change", "Sell", 100, 6, 1)])]


def test_decrement_and_cancel_aggressor_larger_is_reduced_and_goes_on(h):
    sell(h, 1, 4, account=5)
    sell(h, 2, 10, account=6)
    assert h.send(nos(1, "Buy", 100, 10, account=5, selfTradePrevention="DecrementAndCancel"), session=2) == [
        new(2, 1, 3), prevented(1, 1, 1), restated(2, 1, 3, 6, 6), fill(1, 2, 2, 1, 6, 4, "Added"),
        fill(2, 1, 3, 1, 6, 0, "Removed")]
    assert h.book() == [("Sell", 100, 4, 6, 2, 1, 2)]


def test_decrement_and_cancel_equal_quantities_cancel_both(h):
    sell(h, 1, 4, account=5)
    assert h.send(nos(1, "Buy", 100, 4, account=5, selfTradePrevention="DecrementAndCancel"), session=2) == [
        new(2, 1, 2), prevented(1, 1, 1), prevented(2, 1, 2)]
    assert h.book() == []


def test_stp_group_joins_accounts(h):
    sell(h, 1, 4, account=5, stpGroup=9)
    sell(h, 2, 4, account=6, stpGroup=3)
    assert h.send(nos(1, "Buy", 100, 4, account=7, stpGroup=9, selfTradePrevention="CancelResting"), session=2) == [
        new(2, 1, 3), prevented(1, 1, 1), fill(1, 2, 2, 1, 4, 0, "Added"), fill(2, 1, 3, 1, 4, 0, "Removed")]


def test_group_zero_is_no_group_and_without_a_mode_the_same_account_trades(h):
    sell(h, 1, 4, account=5)
    sell(h, 2, 4, account=5)
    assert h.send(nos(1, "Buy", 100, 4, account=6, selfTradePrevention="CancelAggressor"), session=2) == [
        new(2, 1, 3), fill(1, 1, 1, 1, 4, 0, "Added"), fill(2, 1, 3, 1, 4, 0, "Removed")]
    assert h.send(nos(2, "Buy", 100, 4, account=5), session=2) == [
        new(2, 2, 4), fill(1, 2, 2, 2, 4, 0, "Added"), fill(2, 2, 4, 2, 4, 0, "Removed")]


def test_fok_counts_only_what_it_may_trade_with(h):
    sell(h, 1, 3, account=6)
    sell(h, 2, 10, account=5)
    sell(h, 3, 10, account=6, price=101)
    # CancelAggressor stops at its own order: 3 before it
    assert h.send(nos(1, "Buy", 101, 5, account=5, timeInForce="FillOrKill", selfTradePrevention="CancelAggressor"),
                  session=2) == [new(2, 1, 4), er("Canceled", "Canceled", sessionId=2, clOrdId=1, orderId=4,
                                                   reason="FillOrKillNotFillable")]
    # CancelResting cancels it and goes on to 101
    assert h.send(nos(2, "Buy", 101, 5, account=5, timeInForce="FillOrKill", selfTradePrevention="CancelResting"),
                  session=2) == [
        new(2, 2, 5), fill(1, 1, 1, 1, 3, 0, "Added"), fill(2, 2, 5, 1, 3, 2, "Removed"), prevented(1, 2, 2),
        fill(1, 3, 3, 2, 2, 8, "Added", 101), fill(2, 2, 5, 2, 2, 0, "Removed", 101)]


def test_instrument_default_applies_to_orders_that_name_no_mode():
    h = Harness({1: 1}, stp_defaults={1: "CancelAggressor"})
    sell(h, 1, 4, account=5)
    assert h.send(nos(1, "Buy", 100, 4, account=5), session=2) == [new(2, 1, 2), prevented(2, 1, 2)]
    assert h.send(nos(2, "Buy", 100, 4, account=5, selfTradePrevention="CancelResting"), session=2) == [
        new(2, 2, 3), prevented(1, 1, 1)]
