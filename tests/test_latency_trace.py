"""The engine loop's latency trace (lob.latency_trace) over a real driver: one record per inbound message
with exact fields, read back from its file; the execution stream stays what the journal replays to."""
import pytest
from aeron_helpers import OrderEntrySession, running_service_loop

from lob.credentials import for_tests
from lob.engine import Engine
from lob.framing import iter_execution, pack_inbound
from lob.journal import read_journal
from lob.latency_trace import FIELDS, LatencyTrace, read, written
from lob.sbe.messages import MESSAGES, encode

CREDS = for_tests([1001])


def new_order(cl_ord_id, side="Buy", price=100):
    return encode("NewOrderSingle", clOrdId=cl_ord_id, account=7, instrumentId=1, side=side, ordType="Limit",
                  timeInForce="Day", flags=set(), selfTradePrevention="None", price={"mantissa": price},
                  quantity=10, stopPrice={"mantissa": None}, displayQty=None, expireTime=0, stpGroup=0)


@pytest.fixture
def stack(tmp_path):
    trace = LatencyTrace(str(tmp_path / "engine.trace"), capacity=1000)
    for stack in running_service_loop(str(tmp_path / "journal"), CREDS, tick_ms=0, trace=trace):
        yield dict(stack, trace=trace)


def test_every_inbound_message_gets_one_record_with_exact_fields(stack):
    trace = stack["trace"]
    assert trace.capacity == 1024                      # rounded up to a power of two
    session = OrderEntrySession(stack["channels"], CREDS[0], driver_dir=stack["driver"].dir, market_data=False)
    try:
        session.logon()
        session.send(encode("EngineStart", reserved=0))     # forged: dropped before matching, not traced
        session.send(new_order(1))
        session.send(new_order(2, side="Sell", price=100))  # trades with order 1
        session.wait_reports(2 + 1 + 3)                     # logon; New; New + a trade report to each side
        transport = session.session_id
        received = list(session.reports)
    finally:
        session.close()
    stack["loop"].stop()
    records = [dict(zip(FIELDS, r)) for r in read(trace.path)]
    assert written(trace.path) == len(records) == 4
    assert [(r["transport"], r["template_id"]) for r in records] == [
        (transport, MESSAGES["Negotiate"]), (transport, MESSAGES["Establish"]),
        (transport, MESSAGES["NewOrderSingle"]), (transport, MESSAGES["NewOrderSingle"])]
    for r in records:
        assert 0 < r["received_ns"] <= r["matched_ns"] <= r["published_ns"]
        assert 0 <= r["index_in_poll"] < r["poll_messages"] <= 16
        assert (r["exec_back_pressure"], r["md_back_pressure"]) == (0, 0)
    # messages of one poll share its publish time and count; positions run 0.. within it
    polls = {}
    for r in records:
        polls.setdefault((r["published_ns"], r["poll_messages"]), []).append(r["index_in_poll"])
    assert all(sorted(positions) == list(range(count)) for (_, count), positions in polls.items())
    assert read(trace.path, since=3) == read(trace.path)[3:]

    # The trace is a side buffer: the journal still replays to exactly the frames the client received.
    journal = list(read_journal(stack["dir"]))
    offline = Engine(instruments={1: 1}, sessions=CREDS)
    routed = list(iter_execution(offline.process(b"".join(
        pack_inbound(frame, session_id, timestamp) for _, timestamp, session_id, frame in journal))))
    assert [frame for _, t, frame in routed if t == transport][:len(received)] == received


def test_trace_files_are_checked(tmp_path):
    trace = LatencyTrace(str(tmp_path / "t"), capacity=1)
    try:
        assert trace.capacity == 1024
        assert written(trace.path) == 0 and read(trace.path) == []
    finally:
        trace.close()
    with pytest.raises(ValueError, match="capacity must be positive"):
        LatencyTrace(str(tmp_path / "u"), capacity=0)
    (tmp_path / "v").write_bytes(b"x" * 100)
    with pytest.raises(ValueError, match="not a version 1 latency trace"):
        read(str(tmp_path / "v"))
