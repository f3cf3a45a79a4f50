"""Trading sessions end to end: `lob engine` in a subprocess with its own embedded driver, clients logging on
over UDP on 127.0.0.1 from raw pyaeron publications and subscriptions with lob.logon's signed frames.

Each client's execution reports come on the private publication the engine creates for its transport,
to the response channel its Negotiate named; nobody else receives them."""
import re
import time

import pytest
from engine_helpers import nos
from aeron_helpers import WAIT, EngineProcess, OrderEntrySession, wait_until

from lob import logon
from lob.journal import read_journal
from lob.sbe.messages import decode, encode
from lob.transport.driver import MediaDriver, free_udp_ports

SESSION_FIELDS = ("_template_id", "_schema_id", "_version", "transactTime", "requestTimestamp")


def new_order(cl_ord_id, side, px, qty, instrument=1, account=7):
    return nos(cl_ord_id, side, px, qty, instrumentId=instrument, account=account, timeInForce="Day")


def plain(frame):
    """A decoded frame without header fields and clock readings; prices as plain mantissas."""
    message = decode(frame)
    out = {}
    for key, value in message.items():
        if key in SESSION_FIELDS:
            continue
        out[key] = value["mantissa"] if isinstance(value, dict) and "mantissa" in value else value
    return out


def logged_on(creds):
    return [{"_name": "NegotiationResponse", "sessionId": creds.session_id},
            {"_name": "EstablishmentAck", "sessionId": creds.session_id, "keepAliveIntervalMs": 10_000,
             "nextSeqNo": 1, "nextRecvSeqNo": 1}]


def new(seq, cl_ord_id, order_id):
    return {"_name": "ExecutionReportNew", "seqNum": seq, "clOrdId": cl_ord_id, "orderId": order_id}


@pytest.fixture
def engine():
    drop_copy_port = free_udp_ports(1)[0]
    with EngineProcess("--drop-copy", f"aeron:udp?endpoint=127.0.0.1:{drop_copy_port}") as process:
        process.drop_copy_channel = f"aeron:udp?endpoint=127.0.0.1:{drop_copy_port}"
        process.wait_ready()
        yield process


@pytest.fixture
def client_driver():
    with MediaDriver() as driver:
        yield driver


@pytest.fixture
def clients(engine, client_driver):
    """client(session_id, **kwargs) -> an OrderEntrySession on the shared client driver; all closed at the end."""
    made = []

    def make(session_id, driver_dir=None, **kwargs):
        c = OrderEntrySession(engine.client_channels(), engine.credentials.get(session_id),
                              driver_dir=driver_dir or client_driver.dir, market_data=False, **kwargs)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.close()


class DropCopy:
    """The operations' subscription to the drop copy: routed records (length, session id, transport, frame)."""

    def __init__(self, aeron, channel):
        self.subscription = aeron.add_subscription(channel, 1004)
        self.records = []
        assert wait_until(lambda: self.subscription.is_connected), "the drop copy did not connect"

    def _on(self, buffer, header):
        data = bytes(buffer)
        length, session_id, transport = (int.from_bytes(data[i:i + 4], "little") for i in (0, 4, 8))
        assert length == len(data) - 12
        self.records.append((session_id, transport, data[12:]))

    def wait(self, count):
        assert wait_until(lambda: self.subscription.poll(self._on, 64) >= 0 and len(self.records) >= count), (
            f"{len(self.records)} of {count} drop-copy records: {[plain(f) for _, _, f in self.records]}")
        return self.records


def test_two_sessions_each_see_only_their_own_reports(engine, clients):
    buyer, seller = clients(1001), clients(1002)
    for c in (buyer, seller):
        c.logon()
    buyer.send(new_order(1, "Buy", 100, 10))
    buyer.wait_reports(3)
    seller.send(new_order(1, "Sell", 99, 4))
    buyer.wait_reports(4)
    seller.wait_reports(4)
    time.sleep(0.2)   # anything misrouted would arrive now
    buyer.poll(), seller.poll()
    assert [plain(r) for r in buyer.reports] == logged_on(buyer.creds) + [
        new(1, 1, 1),
        {"_name": "ExecutionReportTrade", "seqNum": 2, "clOrdId": 1, "orderId": 1, "tradeId": 1, "lastPx": 100,
         "lastQty": 4, "leavesQty": 6, "liquidity": "Added"}]
    assert [plain(r) for r in seller.reports] == logged_on(seller.creds) + [
        new(1, 1, 2),
        {"_name": "ExecutionReportTrade", "seqNum": 2, "clOrdId": 1, "orderId": 2, "tradeId": 1, "lastPx": 100,
         "lastQty": 4, "leavesQty": 0, "liquidity": "Removed"}]
    assert decode(buyer.reports[2])["transactTime"] < decode(seller.reports[2])["transactTime"]


def test_a_frame_forged_with_another_clients_session_id_gets_nothing_done(engine, clients):
    victim = clients(1001)
    victim.logon()
    # Another host (its own driver) publishes with the victim's Aeron session id.
    with MediaDriver() as other:
        forger = clients(1002, driver_dir=other.dir, channel_params={"session-id": victim.publication.session_id})
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and not forger.publication.offer(new_order(66, "Buy", 500, 10)):
            time.sleep(0.01)
        forger.close()
    # Had the forged buy at 500 been taken, the victim's sell at 400 would trade against it.
    victim.send(new_order(2, "Sell", 400, 1))
    victim.wait_reports(3)
    time.sleep(0.2)
    victim.poll()
    assert [plain(r) for r in victim.reports] == logged_on(victim.creds) + [new(1, 2, 1)]
    assert forger.reports == []


def test_engine_records_from_the_network_are_dropped(engine, clients):
    client = clients(1001)
    client.logon()
    client.send(new_order(1, "Buy", 100, 10))
    client.wait_reports(3)
    # EngineStart would end the session and cancel the order; TransportLost of itself likewise.
    client.send(encode("EngineStart", reserved=0))
    client.send(encode("TransportLost", transport=client.session_id))
    client.send(encode("EngineTick", reserved=0))
    client.send(encode("OrderCancelRequest", clOrdId=2, origClOrdId=1, instrumentId=1, side="Buy"))
    client.wait_reports(4)
    assert [plain(r) for r in client.reports] == logged_on(client.creds) + [new(1, 1, 1), {
        "_name": "ExecutionReportCanceled", "seqNum": 2, "clOrdId": 2, "origClOrdId": 1, "orderId": 1,
        "reason": "UserRequest"}]
    assert wait_until(lambda: any(" forged 3" in line for line in engine.lines), WAIT, 0.05), engine.output


def test_cancel_on_disconnect_reports_are_retained_and_retransmitted_byte_for_byte(engine, clients):
    first = clients(1001)
    drop_copy = DropCopy(first.aeron, engine.drop_copy_channel)
    first.logon()
    first.send(new_order(1, "Buy", 100, 10))
    first.wait_reports(3)
    transport = first.session_id
    first.publication.close()       # the transport goes away: TransportLost, cancel on disconnect
    records = drop_copy.wait(4)
    assert [(s, t, plain(f)) for s, t, f in records] == [
        (1001, transport, logged_on(first.creds)[0]),
        (1001, transport, logged_on(first.creds)[1]),
        (1001, transport, new(1, 1, 1)),
        (1001, 0, {"_name": "ExecutionReportCanceled", "seqNum": 2, "clOrdId": 1, "origClOrdId": 0, "orderId": 1,
                   "reason": "CancelOnDisconnect"})]
    canceled = records[3][2]

    second = clients(1001)
    ack = second.logon()
    assert (ack["nextSeqNo"], ack["nextRecvSeqNo"]) == (3, 2)
    second.send(logon.retransmit_request(1001, time.time_ns(), 1, 2))
    second.wait_reports(5)
    assert [plain(r) for r in second.reports[2:]] == [
        {"_name": "Retransmission", "sessionId": 1001, "fromSeqNo": 1, "count": 2}, new(1, 1, 1),
        plain(canceled)]
    assert second.reports[3] == records[2][2] and second.reports[4] == canceled
    assert drop_copy.wait(9)[8] == (1001, second.session_id, canceled)


def test_negotiate_with_a_channel_the_venue_does_not_serve_gets_no_publication(engine, clients):
    client = clients(1001)
    drop_copy = DropCopy(client.aeron, engine.drop_copy_channel)
    client.wait_connected()
    client.send(logon.negotiate(client.creds, time.time_ns(), 1, "aeron:tcp?endpoint=127.0.0.1:1", 2001))
    assert [(s, t, plain(f)) for s, t, f in drop_copy.wait(1)] == [
        (0, client.session_id, {"_name": "NegotiationReject", "sessionId": 1001, "reason": "InvalidResponseChannel"})]
    client.logon()   # the same transport, now with its real response channel
    assert [plain(r)["_name"] for r in client.reports] == ["NegotiationResponse", "EstablishmentAck"]
    assert wait_until(lambda: re.search(r"publications 1 \| dropped unconnected 0", engine.output), WAIT, 0.05)


def test_engine_ticks_drive_heartbeats_and_the_keep_alive_timeout_closes_the_publication(engine, clients):
    client = clients(1003)
    ack = client.logon(keep_alive_ms=200)
    assert ack["keepAliveIntervalMs"] == 200
    # The client stays silent: the engine heartbeats (Sequence with its next seqNum), then ends the session.
    assert wait_until(lambda: client.poll() >= 0 and plain(client.reports[-1])["_name"] == "Terminate"), (
        [plain(r) for r in client.reports])
    frames = [plain(r) for r in client.reports[2:]]
    assert frames[-1] == {"_name": "Terminate", "sessionId": 1003, "reason": "KeepAliveTimeout"}
    assert frames[:-1] and all(f == {"_name": "Sequence", "nextSeqNo": 1} for f in frames[:-1])
    assert wait_until(lambda: re.search(r"sessions 0 established.* \| publications 0 \|", engine.lines[-1]),
                      WAIT, 0.05), engine.output


def test_frames_for_a_transport_whose_response_channel_nobody_reads_are_dropped_and_counted(client_driver):
    with EngineProcess("--publication-connect-timeout", "0.2") as engine:
        engine.wait_ready()
        client = OrderEntrySession(engine.client_channels(), engine.credentials[1001], driver_dir=client_driver.dir,
                                   market_data=False)
        try:
            client.execution.close()    # nobody subscribes to the response channel
            client.wait_connected()
            client.negotiate()
            assert wait_until(lambda: re.search(r"\| publications 1 \| dropped unconnected 1 \|", engine.lines[-1]),
                              WAIT, 0.05), engine.output
        finally:
            client.close()
        assert engine.terminate() == 0


def offer_raw(client, frame):
    """Offer on the client's order entry without ever polling its execution stream (a client that stopped
    reading)."""
    assert wait_until(lambda: client.publication.offer(frame) > 0, WAIT, 0), "order entry stayed back-pressured"


def sequenced(records, session_id):
    """The session's sequenced execution frames among drop-copy records, by seqNum."""
    out = {}
    for s, _, frame in records:
        if s == session_id and "seqNum" in plain(frame):
            out[plain(frame)["seqNum"]] = frame
    return out


def status_after(engine, count, pattern):
    """A status line printed after the `count` lines seen so far, matching `pattern`."""
    assert wait_until(lambda: len(engine.lines) > count + 1, WAIT, 0.01), engine.output
    return re.search(pattern, engine.lines[-1])


def test_a_client_that_stops_reading_is_disconnected_and_the_others_go_on(client_driver, tmp_path):
    # The slow client's response channel has 64 KiB terms: the engine's publication to it takes about
    # 680 OrderCancelRejects before it is back-pressured; then they wait in its 16 KiB buffer (about 300)
    # and the one that would overflow it disconnects the client. The timeout is out of the way.
    drop_copy_channel = f"aeron:udp?endpoint=127.0.0.1:{free_udp_ports(1)[0]}"
    with EngineProcess("--drop-copy", drop_copy_channel, "--private-buffer-kb", "16", "--journal", str(tmp_path),
                       "--slow-consumer-timeout", "600", "--status-interval", "0.05") as engine:
        engine.wait_ready()
        made = []
        try:
            slow = OrderEntrySession(engine.client_channels(), engine.credentials[1001], driver_dir=client_driver.dir,
                                     market_data=False, response_params={"term-length": 65536})
            made.append(slow)
            fast = OrderEntrySession(engine.client_channels(), engine.credentials[1002], driver_dir=client_driver.dir,
                                     market_data=False)
            made.append(fast)
            slow_transport = slow.session_id
            drop_copy = DropCopy(fast.aeron, drop_copy_channel)
            slow.logon()
            fast.logon()
            slow.send(new_order(1, "Buy", 100, 10))
            slow.wait_reports(3)
            assert plain(slow.reports[2]) == new(1, 1, 1)
            flooded = 0

            def flood(count):
                """Cancels of orders that do not exist, each answered with an OrderCancelReject."""
                nonlocal flooded
                for _ in range(count):
                    flooded += 1
                    offer_raw(slow, encode("OrderCancelRequest", clOrdId=1000 + flooded, origClOrdId=99,
                                           instrumentId=1, side="Buy"))
                    drop_copy.subscription.poll(drop_copy._on, 64)

            def rejects_seen():
                return sum(1 for s, _, f in drop_copy.records if s == 1001 and plain(f)["_name"] == "OrderCancelReject")

            # 1. Until the slow client's publication is back-pressured (its window is full).
            for _ in range(30):
                flood(100)
                assert wait_until(lambda: drop_copy.subscription.poll(drop_copy._on, 64) >= 0
                                  and rejects_seen() == flooded), (rejects_seen(), flooded)
                line = status_after(engine, len(engine.lines), r"back-pressure exec (\d+)")
                if int(line.group(1)):
                    break
            assert int(line.group(1)) > 0 and "slow consumers disconnected 0 " in line.string, line.string
            before_trade = flooded

            # 2. The engine still answers the other client at once, exactly.
            fast.send(new_order(1, "Sell", 100, 4))
            fast.wait_reports(4)
            assert [plain(r) for r in fast.reports] == logged_on(fast.creds) + [
                new(1, 1, 2),
                {"_name": "ExecutionReportTrade", "seqNum": 2, "clOrdId": 1, "orderId": 2, "tradeId": 1,
                 "lastPx": 100, "lastQty": 4, "leavesQty": 0, "liquidity": "Removed"}]

            # 3. More for the slow client until its buffer would overflow: its session ends.
            def canceled_on_disconnect():
                drop_copy.subscription.poll(drop_copy._on, 64)
                return any(s == 1001 and plain(f).get("reason") == "CancelOnDisconnect"
                           for s, _, f in drop_copy.records)

            for _ in range(30):
                flood(100)
                if wait_until(lambda: canceled_on_disconnect() or rejects_seen() == flooded):
                    if canceled_on_disconnect():
                        break
            assert canceled_on_disconnect()
            assert status_after(engine, len(engine.lines),
                                r"sessions 1 established.*\| slow consumers disconnected 1 \|"), engine.lines[-1]

            # 4. Its resting buy (6 left at 100) is gone: the other client's sell at 100 rests.
            fast.send(new_order(2, "Sell", 100, 6))
            fast.send(new_order(3, "Buy", 90, 1))
            fast.wait_reports(6)
            assert [plain(r) for r in fast.reports[4:]] == [new(3, 2, 3), new(4, 3, 4)]

            missed = sequenced(drop_copy.records, 1001)
            last = max(missed)
            assert sorted(missed) == list(range(1, last + 1))
            trade_seq = 2 + before_trade
            processed = last - 3   # New, the trade and the cancel-on-disconnect are the others
            assert before_trade < processed <= flooded
            assert plain(missed[trade_seq]) == {
                "_name": "ExecutionReportTrade", "seqNum": trade_seq, "clOrdId": 1, "orderId": 1, "tradeId": 1,
                "lastPx": 100, "lastQty": 4, "leavesQty": 6, "liquidity": "Added"}
            assert plain(missed[last]) == {"_name": "ExecutionReportCanceled", "seqNum": last, "clOrdId": 1,
                                           "origClOrdId": 0, "orderId": 1, "reason": "CancelOnDisconnect"}
            cancels = [seq for seq in range(2, last) if seq != trade_seq]
            assert [plain(missed[seq]) for seq in cancels] == [
                {"_name": "OrderCancelReject", "seqNum": seq, "clOrdId": 1000 + i + 1, "origClOrdId": 99,
                 "orderId": 0, "responseTo": "Cancel", "reason": "UnknownOrder"}
                for i, seq in enumerate(cancels)]

            # 5. It logs on again (reading a fresh response channel) and gets what it missed, byte for byte.
            slow.subscribe_reports(f"aeron:udp?endpoint=127.0.0.1:{free_udp_ports(1)[0]}")
            slow.reports = []
            ack = slow.logon()
            assert (ack["nextSeqNo"], ack["nextRecvSeqNo"]) == (last + 1, 2 + processed)
            slow.send(logon.retransmit_request(1001, time.time_ns(), 2, last - 1))
            slow.wait_reports(3 + last - 1)
            assert plain(slow.reports[2]) == {"_name": "Retransmission", "sessionId": 1001, "fromSeqNo": 2,
                                              "count": last - 1}
            assert slow.reports[3:] == [missed[seq] for seq in range(2, last + 1)]
        finally:
            for c in made:
                c.close()
        assert engine.terminate() == 0
    stopped = [line for line in engine.lines if line.startswith("lob engine stopped")]
    assert stopped and "slow consumers disconnected 1 " in stopped[0], engine.output
    # The journal decides: the slow client's cancels before its TransportLost are the ones it was answered.
    records = [(transport, decode(frame)) for _, _, transport, frame in read_journal(str(tmp_path))]
    [lost] = [i for i, (_, m) in enumerate(records) if m["_name"] == "TransportLost"]
    assert records[lost] == (0, {"_name": "TransportLost", "_template_id": 71, "_schema_id": 1, "_version": 1,
                                 "transport": slow_transport})
    assert sum(1 for t, m in records[:lost] if t == slow_transport and m["_name"] == "OrderCancelRequest") == processed
