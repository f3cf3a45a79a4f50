"""Market data: one BookUpdate per message that changed displayed levels, Trades per fill."""
import pytest

from engine_helpers import Harness, book_update, cancel, decode_stream, market, mass_cancel, nos, replace, trade, kind
from lob.sbe import messages


@pytest.fixture
def h():
    return Harness({1: 1, 7: 5})


def test_new_level_then_change_then_delete(h):
    h.send(nos(1, "Buy", 100, 10))
    assert h.md() == [book_update([("New", "Buy", 100, 10, 1)])]
    h.send(nos(2, "Buy", 100, 5))
    assert h.md() == [book_update([("Change", "Buy", 100, 15, 2)])]
    h.send(cancel(3, 1))
    assert h.md() == [book_update([("Change", "Buy", 100, 5, 1)])]
    h.send(cancel(4, 2))
    assert h.md() == [book_update([("Delete", "Buy", 100, 0, 0)])]


def test_sweep_lists_each_level_once_in_the_order_touched(h):
    h.send(nos(1, "Sell", 101, 2))
    h.send(nos(2, "Sell", 101, 2))
    h.send(nos(3, "Sell", 102, 5))
    h.send(nos(4, "Sell", 103, 5))
    h.md()
    h.send(nos(5, "Buy", 102, 10))
    assert h.md() == [
        trade(1, 101, 2, "Buy"),
        trade(2, 101, 2, "Buy"),
        trade(3, 102, 5, "Buy"),
        book_update([("Delete", "Sell", 101, 0, 0), ("Delete", "Sell", 102, 0, 0), ("New", "Buy", 102, 1, 1)]),
    ]


def test_partial_fill_changes_the_level(h):
    h.send(nos(1, "Sell", 101, 5))
    h.md()
    h.send(nos(2, "Buy", 101, 2, timeInForce="ImmediateOrCancel"))
    assert h.md() == [trade(1, 101, 2, "Buy"), book_update([("Change", "Sell", 101, 3, 1)])]


def test_aggressor_side_is_the_takers(h):
    h.send(nos(1, "Buy", 100, 5))
    h.md()
    h.send(market(2, "Sell", 5))
    assert h.md() == [trade(1, 100, 5, "Sell"), book_update([("Delete", "Buy", 100, 0, 0)])]


def test_messages_that_change_no_level_publish_nothing(h):
    h.send(nos(1, "Buy", 100, 5))
    h.md()
    h.send(nos(1, "Buy", 100, 5))                                   # rejected
    h.send(nos(2, "Sell", 101, 5, timeInForce="ImmediateOrCancel"))  # no fill, never rests
    h.send(nos(3, "Sell", 90, 50, timeInForce="FillOrKill"))        # not fillable
    h.send(cancel(4, 99))                                            # unknown
    h.send(replace(1, 1, 100, 5))                                    # no change at all
    h.send(mass_cancel(5, 0), session=2)                             # nothing of session 2
    h.send(b"\x00\x01")
    assert h.md() == []


def test_instrument_and_timestamps(h):
    h.send(nos(1, "Sell", 105, 5, instrumentId=7), timestamp=5_000)
    h.send(nos(2, "Buy", 105, 5, instrumentId=7), timestamp=6_000)
    assert h.md(sequences=True) == [
        dict(book_update([("New", "Sell", 105, 5, 1)], 7), seqNum=1, transactTime=5_000),
        dict(trade(1, 105, 5, "Buy", 7), seqNum=2, transactTime=6_000),
        dict(book_update([("Delete", "Sell", 105, 0, 0)], 7), seqNum=3, transactTime=6_000),
    ]


def test_market_data_can_be_switched_off():
    h = Harness(market_data=False)
    h.send(nos(1, "Sell", 100, 5))
    reports = h.send(nos(2, "Buy", 100, 5))
    assert [kind(r) for r in reports] == ["New", "Trade", "Trade"]
    assert h.engine.take_market_data() == b"" and h.engine.next_md_seq == 1
    assert not h.engine.market_data


def test_take_market_data_drains(h):
    h.send(nos(1, "Sell", 100, 5))
    assert h.engine.take_market_data() != b""
    assert h.engine.take_market_data() == b""


def test_book_snapshot(h):
    h.send(nos(1, "Buy", 99, 1))
    h.send(nos(2, "Buy", 100, 2))
    h.send(nos(3, "Buy", 100, 3))
    h.send(nos(4, "Sell", 102, 4))
    h.send(nos(5, "Sell", 101, 5))
    h.send(nos(6, "Buy", 101, 1), timestamp=9_999)
    snapshot = messages.decode(h.engine.book_snapshot(1))
    assert snapshot["_name"] == "BookSnapshot"
    assert (snapshot["seqNum"], snapshot["transactTime"], snapshot["instrumentId"], snapshot["lastTradeId"]) == \
        (h.engine.next_md_seq - 1, 9_999, 1, 1)
    assert [(level["side"], level["price"]["mantissa"], level["quantity"], level["orderCount"])
            for level in snapshot["levels"]] == [
        ("Buy", 100, 5, 2), ("Buy", 99, 1, 1), ("Sell", 101, 4, 1), ("Sell", 102, 4, 1)]
    assert messages.decode(h.engine.book_snapshot(7))["levels"] == []
