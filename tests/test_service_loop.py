"""The engine loop in process, with a journal: its own records (EngineStart, EngineTick, TransportLost) are
journaled and processed like inbound messages, forged ones never are, and the journal replays to the
bytes the clients received."""
import pytest
from aeron_helpers import OrderEntrySession, running_service_loop, wait_until

from lob.credentials import for_tests
from lob.engine import Engine
from lob.framing import iter_execution, pack_inbound
from lob.journal import read_journal
from lob.sbe.messages import decode, encode

CREDS = for_tests([1001])


def new_order(cl_ord_id):
    return encode("NewOrderSingle", clOrdId=cl_ord_id, account=7, instrumentId=1, side="Buy", ordType="Limit",
                  timeInForce="Day", flags=set(), selfTradePrevention="None", price={"mantissa": 100}, quantity=10,
                  stopPrice={"mantissa": None}, displayQty=None, expireTime=0, stpGroup=0)


@pytest.fixture
def stack(tmp_path):
    """A driver, the engine side (client, subscription with image events, private streams, engine,
    journal, loop on a thread) and the order-entry channel; everything closed at the end."""
    yield from running_service_loop(str(tmp_path / "journal"), CREDS, tick_ms=20, images=True)


def test_engine_records_are_journaled_and_replay_to_the_same_bytes(stack):
    loop = stack["loop"]
    session = OrderEntrySession(stack["channels"], CREDS[0], driver_dir=stack["driver"].dir, market_data=False)
    try:
        session.logon()
        session.send(encode("EngineStart", reserved=0))     # forged: neither journaled nor processed
        session.send(new_order(1))
        session.wait_reports(3)
        transport = session.session_id
        session.publication.close()
        assert wait_until(lambda: loop.snapshot()["records"]["transports_lost"] == 1)
        assert wait_until(lambda: loop.snapshot()["records"]["ticks"] >= 2)
        received = list(session.reports)
    finally:
        session.close()
    loop.stop()
    records = list(read_journal(stack["dir"]))
    assert [seq for seq, *_ in records] == list(range(1, len(records) + 1))
    named = [(session_id, decode(frame)) for _, _, session_id, frame in records]
    assert [(t, m["_name"]) for t, m in named if m["_name"] != "EngineTick"] == [
        (0, "EngineStart"), (transport, "Negotiate"), (transport, "Establish"), (transport, "NewOrderSingle"),
        (0, "TransportLost")]
    assert [m["transport"] for _, m in named if m["_name"] == "TransportLost"] == [transport]
    snapshot = loop.snapshot()
    assert (snapshot["forged"], snapshot["records"]["starts"]) == (1, 1)
    assert snapshot["journaled"] == len(records)

    # The journal is the whole input: an offline engine fed it routes the same bytes to the client.
    offline = Engine(instruments={1: 1}, sessions=CREDS)
    routed = list(iter_execution(offline.process(b"".join(
        pack_inbound(frame, session_id, timestamp) for _, timestamp, session_id, frame in records))))
    assert [frame for _, t, frame in routed if t == transport] == received
    canceled = [decode(frame) for s, t, frame in routed if t == 0]
    assert [(m["_name"], m["seqNum"], m["reason"]) for m in canceled] == [
        ("ExecutionReportCanceled", 2, "CancelOnDisconnect")]
