"""Pre-trade risk, instrument state and Day/GoodTillDate expiry: exact reports, the book unchanged by every
reject."""
import pytest

from engine_helpers import (ADMIN_SESSION, Harness, admin_report, cancel, end_of_day, er, harness_sessions, market,
                            nos, replace, set_state)
from lob.accounts import AccountLimits, AccountRules
from lob.instruments import InstrumentSpec
from lob.sbe import messages
from lob.snapshot import encode_snapshot, load_snapshot

SECOND = 1_000_000_000


def harness(accounts=None, **spec):
    return Harness({1: InstrumentSpec(1, **spec), 2: InstrumentSpec(2)}, accounts=accounts)


def rejected(clOrdId, reason, session=1):
    return [er("Rejected", "Rejected", clOrdId=clOrdId, reason=reason, sessionId=session)]


def replace_rejected(clOrdId, origClOrdId, orderId, reason):
    return [{"_name": "OrderCancelReject", "sessionId": 1, "clOrdId": clOrdId, "origClOrdId": origClOrdId,
             "orderId": orderId, "responseTo": "Replace", "reason": reason}]


# --- lot, quantity, notional --------------------------------------------------------------------------

def test_lot_size():
    h = harness(lot=10)
    assert h.send(nos(1, quantity=15)) == rejected(1, "InvalidLot")
    assert h.send(nos(2, quantity=20)) == [er("New", "New", clOrdId=2, orderId=1)]
    book = h.book()
    assert h.send(replace(3, 2, 100, 25)) == replace_rejected(3, 2, 1, "InvalidLot")
    assert h.book() == book
    assert h.send(replace(3, 2, 100, 30))[0]["_name"] == "ExecutionReportReplaced"


def test_max_order_qty_and_notional():
    h = harness(max_order_qty=100, max_notional=5_000)
    assert h.send(nos(1, quantity=101)) == rejected(1, "RiskMaxOrderQty")
    assert h.send(nos(2, price=51, quantity=100)) == rejected(2, "RiskMaxNotional")
    assert h.book() == []
    assert h.send(nos(3, price=50, quantity=100)) == [er("New", "New", clOrdId=3, orderId=1)]
    assert h.send(replace(4, 3, 60, 100)) == replace_rejected(4, 3, 1, "RiskMaxNotional")
    assert h.send(replace(4, 3, 50, 101)) == replace_rejected(4, 3, 1, "RiskMaxOrderQty")
    assert h.book() == [("Buy", 50, 100, 0, 1, 1, 3)]


# --- price band -------------------------------------------------------------------------------------

def test_band_in_percent_around_the_configured_reference_then_the_last_trade():
    h = harness(band_bp=1000, reference_price=1000)     # 10%: 900..1100
    assert h.send(nos(1, price=1101)) == rejected(1, "RiskPriceBand")
    assert h.send(nos(2, "Sell", price=899)) == rejected(2, "RiskPriceBand")
    assert h.book() == []
    assert h.send(nos(3, price=1100, quantity=5))[0]["_name"] == "ExecutionReportNew"
    assert h.send(nos(4, "Sell", price=900, quantity=5), session=2)[1]["lastPx"] == 1100   # trades at 1100
    assert h.engine.last_price(1) == 1100                   # now 990..1210
    assert h.send(nos(5, price=1210))[0]["_name"] == "ExecutionReportNew"
    assert h.send(nos(6, price=1211)) == rejected(6, "RiskPriceBand")
    assert h.send(nos(7, "Sell", price=989)) == rejected(7, "RiskPriceBand")
    # passive orders far from the reference are fine: the band limits how aggressive an order may be
    assert h.send(nos(8, price=10))[0]["_name"] == "ExecutionReportNew"
    assert h.send(replace(9, 8, 1300, 10)) == replace_rejected(9, 8, 4, "RiskPriceBand")
    assert h.send(replace(9, 8, 1200, 10))[0]["_name"] == "ExecutionReportReplaced"


def test_band_in_ticks():
    h = harness(tick=5, band_ticks=3, reference_price=100)      # 85..115
    assert h.send(nos(1, price=120)) == rejected(1, "RiskPriceBand")
    assert h.send(nos(2, price=115))[0]["_name"] == "ExecutionReportNew"
    assert h.send(nos(3, "Sell", price=80)) == rejected(3, "RiskPriceBand")
    assert h.send(nos(4, "Sell", price=85), session=2)[0]["_name"] == "ExecutionReportNew"


def test_no_reference_no_band():
    h = harness(band_bp=100)
    assert h.send(nos(1, price=10 ** 9))[0]["_name"] == "ExecutionReportNew"


def test_a_market_order_trades_only_inside_the_band():
    h = harness(band_ticks=2, reference_price=100)      # buys up to 102
    for i, price in enumerate((101, 102, 103, 104), 1):
        h.send(nos(i, "Sell", price=price, quantity=5), session=2)
    out = h.send(market(10, quantity=20))
    assert out == [
        er("New", "New", clOrdId=10, orderId=5),
        er("Trade", "PartiallyFilled", clOrdId=1, orderId=1, tradeId=1, lastPx=101, lastQty=5, leavesQty=0,
           liquidity="Added", sessionId=2),
        er("Trade", "PartiallyFilled", clOrdId=10, orderId=5, tradeId=1, lastPx=101, lastQty=5, leavesQty=15,
           liquidity="Removed"),
        er("Trade", "PartiallyFilled", clOrdId=2, orderId=2, tradeId=2, lastPx=102, lastQty=5, leavesQty=0,
           liquidity="Added", sessionId=2),
        er("Trade", "PartiallyFilled", clOrdId=10, orderId=5, tradeId=2, lastPx=102, lastQty=5, leavesQty=10,
           liquidity="Removed"),
        er("Canceled", "Canceled", clOrdId=10, orderId=5, reason="RiskPriceBand"),
    ]
    assert [p for _, p, *_ in h.book()] == [103, 104]


def test_a_market_order_with_nothing_left_inside_or_beyond_the_band():
    h = harness(band_ticks=2, reference_price=100)
    assert h.send(market(1))[-1] == er("Canceled", "Canceled", clOrdId=1, orderId=1, reason="NoLiquidity")


# --- account limits ---------------------------------------------------------------------------------

def test_max_open_orders_counts_live_orders_across_fills_and_cancels():
    h = harness(accounts=AccountRules(AccountLimits(max_open_orders=2), {5: AccountLimits(max_open_orders=1)}))
    assert h.send(nos(1, price=90))[0]["_name"] == "ExecutionReportNew"
    assert h.send(nos(2, price=91))[0]["_name"] == "ExecutionReportNew"
    assert h.send(nos(3, price=92)) == rejected(3, "RiskMaxOpenOrders")
    assert h.send(nos(4, price=92, instrumentId=2))[0]["_name"] == "ExecutionReportNew"   # per instrument
    assert h.engine.account(0, 1) == {"open_orders": 2, "position": 0}
    h.send(cancel(5, 1))
    assert h.send(nos(6, price=92))[0]["_name"] == "ExecutionReportNew"
    h.send(nos(7, "Sell", price=92, quantity=10, account=9), session=2)      # fills order 6
    assert h.engine.account(0, 1) == {"open_orders": 1, "position": 10}
    assert h.send(nos(8, price=93))[0]["_name"] == "ExecutionReportNew"
    assert h.send(nos(9, price=93, account=5))[0]["_name"] == "ExecutionReportNew"
    assert h.send(nos(10, price=93, account=5)) == rejected(10, "RiskMaxOpenOrders")


def test_max_position_counts_fills_and_the_full_size_of_a_new_order():
    h = harness(accounts=AccountRules(AccountLimits(max_position=20)))
    assert h.send(nos(1, quantity=21)) == rejected(1, "RiskMaxPosition")
    assert h.send(nos(2, "Sell", quantity=21)) == rejected(2, "RiskMaxPosition")
    assert h.send(nos(3, quantity=15))[0]["_name"] == "ExecutionReportNew"
    h.send(nos(4, "Sell", quantity=15, account=8), session=2)
    assert h.engine.account(0, 1) == {"open_orders": 0, "position": 15}
    assert h.engine.account(8, 1) == {"open_orders": 0, "position": -15}
    assert h.send(nos(5, quantity=6)) == rejected(5, "RiskMaxPosition")
    assert h.send(nos(6, quantity=5))[0]["_name"] == "ExecutionReportNew"
    assert h.send(nos(7, "Sell", price=200, quantity=36)) == rejected(7, "RiskMaxPosition")
    assert h.send(nos(8, "Sell", price=200, quantity=35))[0]["_name"] == "ExecutionReportNew"
    assert h.send(replace(9, 6, 100, 6)) == replace_rejected(9, 6, 3, "RiskMaxPosition")
    assert h.send(replace(9, 6, 100, 4))[0]["_name"] == "ExecutionReportReplaced"


def test_a_full_account_table_rejects_new_accounts():
    h = Harness({1: 1}, max_accounts=2)
    assert h.send(nos(1, account=1))[0]["_name"] == "ExecutionReportNew"
    assert h.send(nos(2, account=2))[0]["_name"] == "ExecutionReportNew"
    assert h.send(nos(3, account=3)) == rejected(3, "PoolFull")
    assert h.send(nos(4, account=1))[0]["_name"] == "ExecutionReportNew"


# --- instrument state -------------------------------------------------------------------------------

def test_halted_and_closed_reject_new_orders_and_replaces_cancels_pass():
    h = harness()
    h.send(nos(1, price=100))
    h.md()
    assert h.send(set_state(50, "Halted"), session=ADMIN_SESSION) == [admin_report(50, 80)]
    assert h.md() == [{"_name": "InstrumentStatus", "instrumentId": 1, "state": "Halted"}]
    assert h.engine.instrument_state(1) == "halted"
    assert h.send(nos(2)) == rejected(2, "InstrumentHalted")
    assert h.send(replace(3, 1, 101, 10)) == replace_rejected(3, 1, 1, "InstrumentHalted")
    assert h.send(nos(4, instrumentId=2))[0]["_name"] == "ExecutionReportNew"
    assert h.send(set_state(51, "Closed"), session=ADMIN_SESSION) == [admin_report(51, 80)]
    assert h.send(nos(5)) == rejected(5, "InstrumentClosed")
    assert h.book() == [("Buy", 100, 10, 0, 1, 1, 1)]
    assert h.send(cancel(6, 1)) == [er("Canceled", "Canceled", clOrdId=6, origClOrdId=1, orderId=1,
                                       reason="UserRequest")]
    assert h.send(set_state(52, "Trading"), session=ADMIN_SESSION) == [admin_report(52, 80)]
    assert h.send(nos(7))[0]["_name"] == "ExecutionReportNew"
    h.md()
    # setting the state it already has changes nothing and publishes nothing
    assert h.send(set_state(53, "Trading"), session=ADMIN_SESSION) == [admin_report(53, 80)]
    assert h.md() == []


def test_admin_requests_from_others_are_not_authorized():
    h = harness()
    assert h.send(set_state(1, "Halted"), session=3) == [admin_report(1, 80, "NotAuthorized", sessionId=3)]
    assert h.send(end_of_day(2), session=3) == [admin_report(2, 81, "NotAuthorized", 0, sessionId=3)]
    assert h.engine.instrument_state(1) == "trading"
    assert h.md() == []


def test_admin_request_errors():
    h = harness()
    assert h.send(set_state(1, "Halted", 99), session=ADMIN_SESSION) == [
        admin_report(1, 80, "UnknownInstrument", 99)]
    assert h.send(set_state(2, 7), session=ADMIN_SESSION) == [admin_report(2, 80, "InvalidInstrumentState")]
    assert h.send(end_of_day(3, 99), session=ADMIN_SESSION) == [admin_report(3, 81, "UnknownInstrument", 99)]


def test_state_from_reference_data():
    h = Harness({1: InstrumentSpec(1, state="closed")})
    assert h.send(nos(1)) == rejected(1, "InstrumentClosed")


# --- Day and GoodTillDate ---------------------------------------------------------------------------

def test_day_orders_expire_at_end_of_day():
    h = harness()
    h.send(nos(1, price=100, timeInForce="Day"))
    h.send(nos(2, price=101, timeInForce="GoodTillCancel"))
    h.send(nos(3, "Sell", price=110, timeInForce="Day"), session=2)
    h.send(nos(4, price=99, timeInForce="Day", instrumentId=2))
    out = h.send(end_of_day(9, 1), session=ADMIN_SESSION)
    assert out == [er("Expired", "Expired", clOrdId=1, orderId=1, reason="EndOfDay"),
                   er("Expired", "Expired", clOrdId=3, orderId=3, reason="EndOfDay", sessionId=2),
                   admin_report(9, 81, count=2)]
    assert h.book() == [("Buy", 101, 10, 0, 2, 1, 2)]
    assert h.send(end_of_day(10), session=ADMIN_SESSION) == [
        er("Expired", "Expired", clOrdId=4, orderId=4, reason="EndOfDay"), admin_report(10, 81, count=1, instrumentId=0)]
    assert h.engine.account(0, 1) == {"open_orders": 1, "position": 0}


def test_good_till_date_needs_a_future_expiry():
    h = harness()
    h.clock = 5 * SECOND
    assert h.send(nos(1, timeInForce="GoodTillDate", expireTime=5)) == rejected(1, "InvalidExpireTime")
    assert h.send(nos(2, timeInForce="GoodTillDate", expireTime=0)) == rejected(2, "InvalidExpireTime")
    assert h.send(nos(3, timeInForce="GoodTillDate", expireTime=6))[0]["_name"] == "ExecutionReportNew"
    assert h.book()[0][-1] == 3


def test_good_till_date_orders_expire_on_ticks_in_expiry_then_arrival_order():
    h = harness()
    h.send(nos(1, price=100, timeInForce="GoodTillDate", expireTime=20))
    h.send(nos(2, "Sell", price=120, timeInForce="GoodTillDate", expireTime=10), session=2)
    h.send(nos(3, price=99, timeInForce="GoodTillDate", expireTime=10))
    h.send(nos(4, price=98, timeInForce="GoodTillDate", expireTime=10))
    h.send(cancel(5, 4))
    h.send(nos(6, price=101, timeInForce="GoodTillDate", expireTime=15))
    h.send(nos(7, "Sell", price=101, quantity=10), session=3)     # fills order 6
    assert h.tick(10 * SECOND - 1) == []
    assert h.tick(10 * SECOND) == [er("Expired", "Expired", clOrdId=2, orderId=2, reason="ExpireTime", sessionId=2),
                                   er("Expired", "Expired", clOrdId=3, orderId=3, reason="ExpireTime")]
    assert h.md() [-1]["_name"] == "BookUpdate"
    assert h.tick(19 * SECOND) == []
    h.send(replace(8, 1, 100, 5))              # keeps its expiry under its new id
    assert h.tick(25 * SECOND) == [er("Expired", "Expired", clOrdId=8, orderId=1, reason="ExpireTime")]
    assert h.book() == []
    assert h.engine.account(0, 1)["open_orders"] == 0


def test_the_expiry_heap_drops_ended_orders_when_full():
    h = Harness({1: 1}, max_orders=2)
    for i in range(10):         # each canceled: its heap entry is stale
        h.send(nos(i, timeInForce="GoodTillDate", expireTime=10 + i))
        h.send(cancel(100 + i, i))
    h.send(nos(50, timeInForce="GoodTillDate", expireTime=40))
    h.send(nos(51, timeInForce="GoodTillDate", expireTime=30))
    assert h.engine.live_orders == 2
    assert h.tick(50 * SECOND) == [er("Expired", "Expired", clOrdId=51, orderId=12, reason="ExpireTime"),
                                    er("Expired", "Expired", clOrdId=50, orderId=11, reason="ExpireTime")]


# --- snapshots ------------------------------------------------------------------------------------

def test_snapshot_keeps_state_positions_and_expiry(tmp_path):
    rules = AccountRules(AccountLimits(max_open_orders=3, max_position=100))
    h = harness(accounts=rules, lot=5, band_ticks=10, reference_price=100)
    h.send(nos(1, price=100, quantity=20, timeInForce="GoodTillDate", expireTime=50))
    h.send(nos(2, "Sell", price=100, quantity=5, account=4), session=2)
    h.send(nos(3, price=95, quantity=10, timeInForce="Day"))
    h.send(set_state(9, "Halted", 2), session=ADMIN_SESSION)
    path = tmp_path / "s.snap"
    path.write_bytes(encode_snapshot(h.engine, 7))
    restored, seq = load_snapshot(str(path), max_orders=1024, sessions=harness_sessions(),
                                  instruments=h.engine.instrument_specs, accounts=rules)
    assert seq == 7
    assert restored.orders(1) == h.engine.orders(1)
    assert restored.accounts() == h.engine.accounts() == [
        {"account": 0, "instrument_id": 1, "open_orders": 2, "position": 5},
        {"account": 4, "instrument_id": 1, "open_orders": 0, "position": -5}]
    assert restored.instrument_state(2) == "halted" and restored.last_price(1) == 100
    assert restored.orders(1)[0]["expire_time"] == 50
    for engine in (h.engine, restored):
        h.engine = engine
        h.clock = 60 * SECOND
        assert h.tick(60 * SECOND) == [er("Expired", "Expired", clOrdId=1, orderId=1, reason="ExpireTime")]
        assert h.send(nos(4, price=100, quantity=7)) == rejected(4, "InvalidLot")
        assert h.send(nos(5, price=100, quantity=5, instrumentId=2)) == rejected(5, "InstrumentHalted")


def test_admin_reports_are_sequenced_and_retained_like_execution_messages():
    h = harness()
    first = h.send(set_state(1, "Halted"), session=ADMIN_SESSION, sequences=True)
    second = h.send(end_of_day(2), session=ADMIN_SESSION, sequences=True)
    assert [(m["_name"], m["seqNum"]) for m in first + second] == [("AdminReport", 1), ("AdminReport", 2)]
    assert second[0]["transactTime"] == h.clock
    retained = h.engine.retained(ADMIN_SESSION, 1, 2)
    assert [messages.decode(f)["clOrdId"] for f in retained] == [1, 2]
    assert h.engine.session(ADMIN_SESSION)["next_recv_seq_no"] == 3


def test_an_admin_session_is_throttled_like_any_other():
    from lob import credentials
    from lob.engine import Engine

    h = Harness({1: 1})
    h.engine = Engine({1: 1}, sessions=credentials.for_tests([ADMIN_SESSION], admin=True, rate=1, burst=1))
    assert h.send(set_state(1, "Halted"), session=ADMIN_SESSION) == [admin_report(1, 80)]
    out = h.send(set_state(2, "Trading"), session=ADMIN_SESSION)
    assert [(m["_name"], m["reason"], m["refClOrdId"]) for m in out] == [("MessageReject", "Throttled", 2)]
    assert h.engine.instrument_state(1) == "halted"
