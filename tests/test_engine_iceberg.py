"""Iceberg orders: only the displayed slice is on the book and in market data; a filled slice is followed
by the next at the back of its level; reports give the whole leaves quantity."""
import pytest

from engine_helpers import Harness, book_update, er, nos, replace, trade
from lob.framing import pack_inbound


@pytest.fixture
def h():
    return Harness({1: 1})


def fill(session, cl_ord_id, order_id, trade_id, qty, leaves, liquidity, price=100):
    return er("Trade", "", sessionId=session, clOrdId=cl_ord_id, orderId=order_id, tradeId=trade_id, lastPx=price,
              lastQty=qty, leavesQty=leaves, liquidity=liquidity)


def test_only_the_slice_is_on_the_book_and_in_market_data(h):
    assert h.send(nos(1, "Sell", 100, 10, displayQty=3)) == [er("New", "New", clOrdId=1, orderId=1)]
    assert h.engine.levels(1, "Sell") == [(100, 3, 1)]
    assert h.book() == [("Sell", 100, 10, 0, 1, 1, 1)]
    assert h.md() == [book_update([("New", "Sell", 100, 3, 1)])]


def test_an_aggressor_fills_slices_again_in_queue_order(h):
    h.send(nos(1, "Sell", 100, 10, displayQty=3))
    h.send(nos(2, "Sell", 100, 2))
    h.md()
    assert h.send(nos(1, "Buy", 100, 7), session=2) == [
        er("New", "New", sessionId=2, clOrdId=1, orderId=3),
        fill(1, 1, 1, 1, 3, 7, "Added"), fill(2, 1, 3, 1, 3, 4, "Removed"),
        fill(1, 2, 2, 2, 2, 0, "Added"), fill(2, 1, 3, 2, 2, 2, "Removed"),
        fill(1, 1, 1, 3, 2, 5, "Added"), fill(2, 1, 3, 3, 2, 0, "Removed")]
    assert h.engine.levels(1, "Sell") == [(100, 1, 1)]
    assert h.md() == [trade(1, 100, 3, "Buy"), trade(2, 100, 2, "Buy"), trade(3, 100, 2, "Buy"),
                      book_update([("Change", "Sell", 100, 1, 1)])]


def test_a_new_slice_joins_the_back_of_its_level(h):
    h.send(nos(1, "Sell", 100, 6, displayQty=3))
    h.send(nos(2, "Sell", 100, 4))
    h.send(nos(1, "Buy", 100, 3), session=2)
    assert [(side, price, leaves, order_id) for side, price, leaves, _, order_id, _, _ in h.book()] == [
        ("Sell", 100, 4, 2), ("Sell", 100, 3, 1)]
    assert h.engine.levels(1, "Sell") == [(100, 7, 2)]
    # the last slice is what is left
    h.send(nos(2, "Buy", 100, 4), session=2)
    h.send(nos(3, "Buy", 100, 1), session=2)
    assert h.engine.levels(1, "Sell") == [(100, 2, 1)]
    assert h.book() == [("Sell", 100, 2, 4, 1, 1, 1)]


def test_fok_counts_hidden_quantity(h):
    h.send(nos(1, "Sell", 100, 10, displayQty=2))
    assert h.send(nos(1, "Buy", 100, 9, timeInForce="FillOrKill"), session=2)[-1] == \
        fill(2, 1, 2, 5, 1, 0, "Removed")
    assert h.book() == [("Sell", 100, 1, 9, 1, 1, 1)]


def test_quantity_down_keeps_priority_and_cuts_the_slice_only_when_needed(h):
    h.send(nos(1, "Sell", 100, 10, displayQty=4))
    h.send(nos(2, "Sell", 100, 5))
    assert h.send(replace(1, 1, 100, 6, "Sell")) == [
        er("Replaced", "New", clOrdId=1, origClOrdId=1, orderId=1, price=100, orderQty=6, leavesQty=6)]
    assert h.engine.levels(1, "Sell") == [(100, 9, 2)]
    h.send(replace(1, 1, 100, 3, "Sell"))
    assert h.engine.levels(1, "Sell") == [(100, 8, 2)]
    assert [o["order_id"] for o in h.engine.orders(1)] == [1, 2]


def test_price_change_requeues_with_a_fresh_slice(h):
    h.send(nos(1, "Sell", 100, 10, displayQty=4))
    h.send(nos(1, "Buy", 100, 3), session=2)
    h.send(replace(1, 1, 101, 10, "Sell"))
    assert h.engine.levels(1, "Sell") == [(101, 4, 1)]
    assert h.book() == [("Sell", 101, 7, 3, 1, 1, 1)]


def test_a_snapshot_keeps_the_hidden_quantity_and_the_slice(h, tmp_path):
    from engine_helpers import harness_sessions
    from lob.snapshot import load_snapshot, write_snapshot

    h.send(nos(1, "Sell", 100, 10, displayQty=4, stpGroup=3))
    h.send(nos(2, "Sell", 100, 5))
    h.send(nos(1, "Buy", 100, 3), session=2)
    restored, _ = load_snapshot(write_snapshot(h.engine, tmp_path, 1), sessions=harness_sessions())
    assert restored.orders(1) == h.engine.orders(1)
    assert restored.levels(1, "Sell") == h.engine.levels(1, "Sell") == [(100, 6, 2)]
    # the restored iceberg still shows its slice of 1, then a new one of 4 behind order 2
    h.send(nos(2, "Buy", 100, 2), session=2)
    assert h.engine.levels(1, "Sell") == [(100, 8, 2)]
    restored.process(pack_inbound(nos(2, "Buy", 100, 2), 2, 10_000))
    assert restored.orders(1) == h.engine.orders(1)
    assert restored.levels(1, "Sell") == [(100, 8, 2)]


def test_an_iceberg_has_at_most_a_thousand_slices(h):
    assert h.send(nos(1, "Sell", 100, 1001, displayQty=1)) == [
        er("Rejected", "Rejected", clOrdId=1, reason="InvalidDisplayQty")]
    assert h.send(nos(2, "Sell", 100, 1000, displayQty=1)) == [er("New", "New", clOrdId=2, orderId=1)]
    assert h.send(replace(2, 2, 100, 1001, "Sell")) == [
        {"_name": "OrderCancelReject", "sessionId": 1, "clOrdId": 2, "origClOrdId": 2, "orderId": 1,
         "responseTo": "Replace", "reason": "InvalidDisplayQty"}]
