"""The client library against `lob engine` over real Aeron UDP on 127.0.0.1.

One embedded media driver (shared threading, yield idle) in this process, the engine as a subprocess
attached to it with a credentials file and a journal, clients with their own Aeron clients on the same
driver, each logged on as its own trading session with a private response channel. Each test uses its
own instrument and sessions so the tests do not see each other's books. Waits are bounded; nothing
asserts on time. What a client received is compared with what the engine sequenced for its session,
recomputed byte for byte from the journal by an offline engine.
"""
import signal
import struct

import pytest

from lob import credentials
from lob.client import Client, LogonRejected
from lob.client.session import default_response_channel
from lob.framing import iter_execution
from lob.sbe import messages

from aeron_helpers import EngineProcess

WAIT = 30.0
PX = 1_000_000
INSTRUMENTS = {1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1}
SESSIONS = {c.session_id: c for c in credentials.for_tests(range(201, 221))}
SESSIONS[221] = credentials.for_tests([221], rate=1, burst=2)[0]   # two messages at once, then one a second
ENGINE_ARGS = ("--max-orders", "4096", "--no-prefault")
SEQUENCED = range(60, 70)   # execution templates: each carries the session's seqNum first
RETRANSMISSION = 54         # followed by the frames it announces, sent again


def write_credentials(path, creds):
    path.write_text(credentials.dumps(creds))
    return str(path)


def instruments_arg():
    return ",".join(f"{i}:{t}" for i, t in INSTRUMENTS.items())


class Venue:
    """A media driver in this process and `lob engine` attached to it, journaling; restartable on the
    same ports and journal."""

    def __init__(self, tmp_path, journal=True):
        from lob.transport.driver import MediaDriver

        self.credentials_file = write_credentials(tmp_path / "credentials.txt", SESSIONS.values())
        self.journal = str(tmp_path / "journal") if journal else None
        self.driver = MediaDriver()
        self.engine = None
        self.port_base = None
        self.outputs = []

    def start_engine(self):
        journal = ("--journal", self.journal) if self.journal else ()
        self.engine = EngineProcess("--credentials", self.credentials_file, *journal, *ENGINE_ARGS,
                                    instruments=instruments_arg(), attach_dir=self.driver.dir,
                                    port_base=self.port_base)
        self.port_base = self.engine.port_base
        self.engine.wait_ready()
        return self.engine

    def stop_engine(self, crash=False):
        """SIGTERM (a clean stop, with a snapshot), or with crash SIGKILL (recovery replays the journal)."""
        code = self.engine.terminate(signal.SIGKILL if crash else signal.SIGTERM)
        self.outputs.append(self.engine.output)
        self.engine.close()
        assert code == (-signal.SIGKILL if crash else 0), self.engine.output
        self.engine = None

    @property
    def config(self):
        from lob.config import EngineConfig

        return EngineConfig(aeron_dir=self.driver.dir, instruments=INSTRUMENTS).with_ports(self.port_base)

    def engine_streams(self):
        """{session id: [frame]}: every execution message each session was sent, in sequence, from the journal
        (retransmitted copies left out)."""
        from lob.engine import Engine
        from lob.replay import replay_journal_bytes

        engine = Engine(INSTRUMENTS, max_orders=4096, sessions=list(SESSIONS.values()))
        _, _, stream = replay_journal_bytes(engine, self.journal)
        streams, replaying = {}, {}
        for session_id, _, frame in iter_execution(stream):
            template = struct.unpack_from("<H", frame, 2)[0]
            if template == RETRANSMISSION:
                replaying[session_id] = messages.decode(frame)["count"]
            elif replaying.get(session_id):
                replaying[session_id] -= 1
            elif template in SEQUENCED and struct.unpack_from("<Q", frame, 8)[0]:
                streams.setdefault(session_id, []).append(frame)
        return streams

    def close(self):
        try:
            if self.engine is not None:
                self.engine.close()
        finally:
            self.driver.close()


@pytest.fixture(scope="module")
def venue(tmp_path_factory):
    v = Venue(tmp_path_factory.mktemp("client-e2e"), journal=False)
    try:
        v.start_engine()
        yield v
    finally:
        v.close()


@pytest.fixture
def connect(venue):
    clients = []

    def make(session_id, **kwargs):
        kwargs.setdefault("record", True)
        creds = kwargs.pop("creds", None) or SESSIONS[session_id]
        client = Client(creds, aeron_dir=venue.driver.dir, config=venue.config, connect_timeout=WAIT, **kwargs)
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            client.close()


def settle(*clients, seconds=0.2):
    """Keep polling a moment so a report that should not come would have arrived."""
    for client in clients:
        client.run(timeout=seconds / len(clients))


def lean(report, drop=("transactTime", "orderId", "tradeId")):
    """A decoded execution message without its header fields, prices as mantissas."""
    out = {}
    for k, v in report.items():
        if k.startswith("_") and k != "_name" or k in drop:
            continue
        out[k] = v["mantissa"] if isinstance(v, dict) else v
    return out


def test_logon_orders_and_fills_with_exact_reports(connect):
    a = connect(201)
    b = connect(202)
    watcher = connect(203)
    assert (a.state, a.next_seq_out, a.next_seq_in) == ("Established", 1, 1)
    assert a.response_channel != b.response_channel

    bid = a.place(1, "Buy", 10, PX)
    a.wait_for(lambda: len(a.reports) == 1, WAIT)
    # The same client order id in another session is another order.
    ask = b.place(1, "Sell", 4, PX - 100)
    assert ask.cl_ord_id == bid.cl_ord_id == 1
    b.wait_for(lambda: len(b.reports) == 2, WAIT)
    a.wait_for(lambda: len(a.reports) == 2, WAIT)
    settle(a, b, watcher)

    assert [lean(r) for r in a.reports] == [
        dict(_name="ExecutionReportNew", seqNum=1, clOrdId=1),
        dict(_name="ExecutionReportTrade", seqNum=2, clOrdId=1, lastPx=PX, lastQty=4, leavesQty=6, liquidity="Added"),
    ]
    assert [lean(r) for r in b.reports] == [
        dict(_name="ExecutionReportNew", seqNum=1, clOrdId=1),
        dict(_name="ExecutionReportTrade", seqNum=2, clOrdId=1, lastPx=PX, lastQty=4, leavesQty=0,
             liquidity="Removed"),
    ]
    assert a.reports[0]["orderId"] == a.reports[1]["orderId"] == bid.order_id != 0
    assert b.reports[0]["orderId"] == b.reports[1]["orderId"] == ask.order_id != bid.order_id
    assert a.reports[1]["tradeId"] == b.reports[1]["tradeId"] != 0
    assert (bid.status, bid.leaves, bid.cum, bid.price, bid.side) == ("PartiallyFilled", 6, 4, PX, "Buy")
    assert (ask.status, ask.leaves, ask.cum) == ("Filled", 0, 4)
    assert (a.position(1).quantity, a.position(1).cash) == (4, -4 * PX)
    assert (b.position(1).quantity, b.position(1).cash) == (-4, 4 * PX)
    # A session that sent nothing got nothing; nobody saw a gap.
    assert watcher.reports == [] and watcher.tracker.orders == {}
    assert a.gaps_detected == b.gaps_detected == 0

    request = a.cancel(bid)
    a.wait_for(lambda: len(a.reports) == 3, WAIT)
    settle(a, b)
    assert lean(a.reports[2]) == dict(_name="ExecutionReportCanceled", seqNum=3, clOrdId=request, origClOrdId=1,
                                      reason="UserRequest")
    assert len(b.reports) == 2 and watcher.reports == []
    assert (bid.status, bid.is_open, a.next_seq_out, a.next_seq_in) == ("Canceled", False, 3, 4)

    again = a.cancel(bid)
    a.wait_for(lambda: len(a.reports) == 4, WAIT)
    assert lean(a.reports[3]) == dict(_name="OrderCancelReject", seqNum=4, clOrdId=again, origClOrdId=1,
                                      responseTo="Cancel", reason="UnknownOrder")


def test_logon_rejects_name_their_reason(connect):
    wrong = credentials.SessionCredentials(204, SESSIONS[204].firm, b"x" * 32)
    with pytest.raises(LogonRejected) as info:
        connect(204, creds=wrong)
    assert (info.value.step, info.value.reason) == ("Negotiate", "InvalidSignature")
    unknown = credentials.for_tests([999])[0]
    with pytest.raises(LogonRejected) as info:
        connect(999, creds=unknown)
    assert info.value.reason == "UnknownSession"
    first = connect(204)
    with pytest.raises(LogonRejected) as info:
        connect(204)
    assert info.value.reason == "SessionInUse"
    assert first.established


def test_sequence_numbers_carry_over_between_clients_of_a_session(connect):
    notified = []
    first = connect(220, next_seq_out=5, on_not_applied=lambda f, c: notified.append((f, c)))
    first.wait_for(lambda: first.not_applied, WAIT)
    assert first.not_applied == notified == [(1, 4)]   # the engine expected 1: 1..4 never arrived
    order = first.place(2, "Buy", 1, PX - 3000)
    first.wait_for(lambda: order.status == "New", WAIT)
    assert (first.next_seq_out, first.next_seq_in) == (6, 2)
    first.close()                                      # Terminate: cancel-on-disconnect

    with pytest.raises(LogonRejected) as info:
        connect(220, next_seq_out=3)
    assert (info.value.step, info.value.reason) == ("Establish", "SequenceTooLow")

    later = None
    for _ in range(20):   # the rejected client's Terminate may still be on its way
        try:
            later = connect(220)                      # nextSeqNo 0: continue where the engine is
            break
        except LogonRejected as exc:
            assert exc.reason == "SessionInUse"
    assert later is not None
    assert (later.next_seq_out, later.next_seq_in) == (6, 3)   # New 1, Canceled 2 went to the first client


def test_replace_reject_and_mass_cancel(connect):
    a = connect(205)
    order = a.place(2, "Sell", 5, PX + 500)
    bad = a.place(2, "Sell", 0, PX + 500)
    a.wait_for(lambda: len(a.reports) == 2, WAIT)
    assert (order.status, bad.status, bad.reason) == ("New", "Rejected", "InvalidQuantity")
    assert lean(a.reports[1]) == dict(_name="ExecutionReportRejected", seqNum=2, clOrdId=bad.cl_ord_id,
                                      reason="InvalidQuantity")

    first_id = order.cl_ord_id
    new_id = a.replace(order, price=PX + 700, quantity=8)
    a.wait_for(lambda: len(a.reports) == 3, WAIT)
    assert lean(a.reports[2]) == dict(_name="ExecutionReportReplaced", seqNum=3, clOrdId=new_id,
                                      origClOrdId=first_id, price=PX + 700, orderQty=8, leavesQty=8)
    assert (order.cl_ord_id, order.price, order.quantity, order.pending) == (new_id, PX + 700, 8, None)

    other = a.place(2, "Buy", 3, PX - 500)
    a.wait_for(lambda: len(a.reports) == 4, WAIT)
    request = a.mass_cancel(2)
    a.wait_for(lambda: any(r["_name"] == "OrderMassCancelReport" for r in a.reports), WAIT)
    settle(a)
    tail = [lean(r, drop=("transactTime", "orderId", "seqNum")) for r in a.reports[4:]]
    report = tail.pop()
    assert report == dict(_name="OrderMassCancelReport", clOrdId=request, instrumentId=2, canceledCount=2,
                          reason="None")
    assert sorted(r["origClOrdId"] or r["clOrdId"] for r in tail) == sorted([new_id, other.cl_ord_id])
    assert {r["_name"] for r in tail} == {"ExecutionReportCanceled"}
    assert order.status == other.status == "Canceled"
    assert a.open_orders() == [] and request not in a.tracker.requests
    assert [r["seqNum"] for r in a.reports] == list(range(1, len(a.reports) + 1))


def test_throttled_orders_end_rejected_with_the_reason(connect):
    a = connect(221, market_data=False)
    orders = [a.place(2, "Buy", 1, PX - 1000 - i) for i in range(5)]
    a.wait_for(lambda: all(o.status != "PendingNew" for o in orders), WAIT)
    settle(a)
    accepted = [o for o in orders if o.status == "New"]
    throttled = [o for o in orders if o.status == "Rejected"]
    assert len(accepted) >= 2 and throttled and len(accepted) + len(throttled) == 5
    assert {o.reason for o in throttled} == {"Throttled"}
    rejects = [r for r in a.reports if r["_name"] == "MessageReject"]
    # Each reject names the request by its implicit sequence number (the nth message is seq n).
    assert [(r["refClOrdId"], r["refSeqNo"], r["refTemplateId"], r["reason"]) for r in rejects] == [
        (o.cl_ord_id, o.cl_ord_id, 1, "Throttled") for o in throttled]
    assert [r["seqNum"] for r in a.reports] == list(range(1, 6))
    assert a.next_seq_out == 6 and a.gaps_detected == 0


def test_market_data_reflects_the_book(connect):
    viewer = connect(206, record=False)
    maker = connect(207, market_data=False)
    taker = connect(208, market_data=False)
    for side, qty, px in (("Buy", 10, PX - 100), ("Buy", 5, PX - 100), ("Buy", 7, PX - 200),
                          ("Sell", 6, PX + 100), ("Sell", 9, PX + 300)):
        maker.place(3, side, qty, px)
    maker.wait_for(lambda: len(maker.reports) == 5, WAIT)
    book = viewer.book(3)
    viewer.wait_for(lambda: book.bids == {PX - 100: (15, 2), PX - 200: (7, 1)}
                    and book.asks == {PX + 100: (6, 1), PX + 300: (9, 1)}, WAIT)

    taker.place(3, "Sell", 17, PX - 200)   # sweeps the best bid (15) and 2 of the next level
    viewer.wait_for(lambda: book.last_trade is not None and book.bids == {PX - 200: (5, 1)}, WAIT)
    settle(viewer)
    assert book.asks == {PX + 100: (6, 1), PX + 300: (9, 1)}
    assert (book.best_bid, book.best_ask, book.mid) == (PX - 200, PX + 100, PX - 50)
    assert book.last_trade[1:] == (PX - 200, 2, "Sell")
    assert viewer.md_seq_gaps == 0
    assert viewer.tracker.orders == {}


def test_a_book_update_longer_than_one_frame_reaches_the_book(connect):
    """One order sweeping 80 levels: a BookUpdate of 80 deletes (1,800 bytes) crosses the network in two
    fragments; the viewer's book gets it whole, with no gap."""
    viewer = connect(211, record=False)
    maker = connect(212, market_data=False)
    taker = connect(213, market_data=False)
    levels = 80
    for i in range(levels):
        maker.place(6, "Sell", 1 + i % 3, PX + i)
    maker.wait_for(lambda: len(maker.reports) == levels, WAIT)
    book = viewer.book(6)
    viewer.wait_for(lambda: len(book.asks) == levels, WAIT)
    seq_before = viewer.feed.seq

    taker.place(6, "Buy", sum(1 + i % 3 for i in range(levels)), PX + levels - 1)
    viewer.wait_for(lambda: not book.asks and viewer.feed.seq > seq_before + levels, WAIT)
    settle(viewer)
    assert (book.asks, book.bids) == ({}, {})
    assert viewer.feed.seq == seq_before + levels + 1    # 80 Trades and one BookUpdate
    assert viewer.feed._md_sub.reassembled == 1
    assert viewer.md_seq_gaps == 0


def test_example_market_maker_requotes_and_tracks_pnl(connect):
    from lob.tools.market_maker import MarketMaker

    client = connect(209)
    taker = connect(210, market_data=False)
    lines = []

    class Out:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    maker = MarketMaker(client, 4, mid=PX, half_spread=5, size=10, max_position=100, out=Out())
    maker.requote()
    client.wait_for(lambda: all(q is not None and q.status == "New" for q in maker.quotes.values()), WAIT)
    assert (maker.quotes["Buy"].price, maker.quotes["Sell"].price) == (PX - 5, PX + 5)

    first_sell = maker.quotes["Sell"]
    taker.place(4, "Buy", 10, PX + 5)  # lifts the whole offer
    client.wait_for(lambda: maker.fills == 1, WAIT)
    assert client.position(4).quantity == -10
    assert first_sell.status == "Filled"

    # Short 10 after a trade at PX + 5: fair PX + 5, skewed up a tick -> quotes PX + 1 / PX + 11.
    def settled():
        b, s = maker.quotes["Buy"], maker.quotes["Sell"]
        return (not maker.dirty and b.status == "New" and s.status == "New" and not b.pending and not s.pending
                and (b.price, s.price) == (PX + 1, PX + 11))

    for _ in range(200):
        if settled():
            break
        client.run(until=lambda: maker.dirty, timeout=0.1)
        if maker.dirty:
            maker.requote()
    assert settled()
    assert maker.quotes["Sell"] is not first_sell

    maker.run(duration=0.3, report_every=0.1)  # prints P&L lines, then cancels its quotes
    text = "".join(lines)
    assert "position -10" in text
    assert any(line.startswith("final: position -10") for line in text.splitlines())
    assert client.open_orders(4) == []
    assert client.position(4).pnl(PX + 5) == 0  # sold 10 at PX + 5: flat against that mark


def sequenced(frames):
    return [f for f in frames if struct.unpack_from("<Q", f, 8)[0]]


@pytest.fixture
def own_venue(tmp_path):
    """A venue of the test's own (journaled, restartable); its clients are closed with it."""
    venue = Venue(tmp_path)
    clients = []

    def make(session_id, **kwargs):
        client = Client(SESSIONS[session_id], aeron_dir=venue.driver.dir, config=venue.config, connect_timeout=WAIT,
                        record=True, market_data=False, **kwargs)
        clients.append(client)
        return client

    try:
        venue.start_engine()
        venue.connect = make
        yield venue
    finally:
        for client in clients:
            client.close(terminate=False)
        venue.close()


def test_a_client_whose_subscription_was_closed_catches_up(own_venue):
    a = own_venue.connect(211, keep_alive_ms=500)
    b = own_venue.connect(212)
    orders = [a.place(5, "Buy", 5, PX - i) for i in range(3)]
    a.wait_for(lambda: all(o.status == "New" for o in orders), WAIT)

    a.pause_reports()
    sell = b.place(5, "Sell", 12, PX - 2)         # fills a's three orders: 5, 5, 2
    b.wait_for(lambda: sell.status == "Filled", WAIT)
    a.resume_reports()
    a.wait_for(lambda: orders[2].cum == 2, WAIT)
    # The engine's publication counts a closed subscription as connected until its liveness timeout and a new
    # image starts at the current position: the fills come by retransmission, not live.
    assert a.gaps_detected >= 1 and a.retransmitted >= 3
    assert [(o.status, o.cum) for o in orders[:2]] == [("Filled", 5), ("Filled", 5)]
    assert a.position(5).quantity == 12
    if a.protocol.establishments == 1:   # (else its stream stayed silent too long: it ended and renewed the session)
        assert [lean(r, drop=("transactTime", "orderId", "tradeId", "clOrdId")) for r in a.reports] == [
            dict(_name="ExecutionReportNew", seqNum=1), dict(_name="ExecutionReportNew", seqNum=2),
            dict(_name="ExecutionReportNew", seqNum=3),
            dict(_name="ExecutionReportTrade", seqNum=4, lastPx=PX, lastQty=5, leavesQty=0, liquidity="Added"),
            dict(_name="ExecutionReportTrade", seqNum=5, lastPx=PX - 1, lastQty=5, leavesQty=0, liquidity="Added"),
            dict(_name="ExecutionReportTrade", seqNum=6, lastPx=PX - 2, lastQty=2, leavesQty=3, liquidity="Added"),
        ]
    settle(a, b)
    own_venue.stop_engine()
    streams = own_venue.engine_streams()
    assert sequenced(a.report_frames) == streams[211] and sequenced(b.report_frames) == streams[212]
    assert a.next_seq_in == len(streams[211]) + 1
    assert (a.protocol.inbound.duplicates, a.protocol.inbound.lost) == (0, 0)


def test_a_session_the_engine_ended_comes_back_and_gets_its_cancels(connect):
    import time

    terminations = []
    a = connect(219, market_data=False, keep_alive_ms=200, on_terminate=terminations.append)
    order = a.place(5, "Sell", 2, PX + 900)
    a.wait_for(lambda: order.status == "New", WAIT)
    time.sleep(1.0)   # not polling: no heartbeat for 3 x 200 ms, the engine ends the session
    a.wait_for(lambda: a.protocol.establishments == 2 and a.established and not order.is_open, WAIT)
    assert terminations == ["KeepAliveTimeout"]
    assert (order.status, order.reason) == ("Canceled", "CancelOnDisconnect")
    assert [lean(r) for r in a.reports] == [
        dict(_name="ExecutionReportNew", seqNum=1, clOrdId=order.cl_ord_id),
        dict(_name="ExecutionReportCanceled", seqNum=2, clOrdId=order.cl_ord_id, origClOrdId=0,
             reason="CancelOnDisconnect")]
    assert (a.retransmitted, a.next_seq_in, a.next_seq_out) == (1, 3, 2)
    again = a.place(5, "Sell", 2, PX + 900)
    a.wait_for(lambda: again.status == "New", WAIT)
    assert a.reports[-1]["seqNum"] == 3


@pytest.mark.parametrize("crash", [False, True], ids=["stopped", "killed"])
def test_after_an_engine_restart_the_client_recovers_exactly_the_engines_stream(own_venue, crash):
    """The engine stops cleanly or is killed with SIGKILL, and restarts from its journal: both sessions are
    unbound and their open orders canceled while they are away (cancel-on-disconnect). Each client
    establishes again, gets what it missed by retransmission and ends with exactly the stream the engine
    sequenced for its session."""
    a, b = own_venue.connect(213, keep_alive_ms=1000), own_venue.connect(214, keep_alive_ms=1000)
    orders = [a.place(5, "Buy", 5, PX - i) for i in range(3)]
    a.wait_for(lambda: all(o.status == "New" for o in orders), WAIT)
    sell = b.place(5, "Sell", 12, PX - 2)         # fills a's three orders: 5, 5, 2
    b.wait_for(lambda: sell.status == "Filled", WAIT)
    rest = b.place(5, "Sell", 7, PX + 50)
    b.wait_for(lambda: rest.status == "New", WAIT)
    a.wait_for(lambda: orders[2].cum == 2, WAIT)

    own_venue.stop_engine(crash=crash)
    own_venue.start_engine()
    for client in (a, b):
        client.wait_for(lambda: client.protocol.establishments == 2 and client.established, 2 * WAIT)
    a.wait_for(lambda: not orders[2].is_open, WAIT)
    b.wait_for(lambda: not rest.is_open, WAIT)
    assert (orders[2].status, orders[2].reason, orders[2].cum) == ("Canceled", "CancelOnDisconnect", 2)
    assert (rest.status, rest.reason) == ("Canceled", "CancelOnDisconnect")
    assert a.retransmitted >= 1 and b.retransmitted >= 1 and a.gaps_detected >= 1

    # Both trade on in the same numbering.
    last = a.place(5, "Buy", 1, PX - 10)
    a.wait_for(lambda: last.status == "New", WAIT)
    settle(a, b)
    own_venue.stop_engine()

    streams = own_venue.engine_streams()
    assert sequenced(a.report_frames) == streams[213]
    assert sequenced(b.report_frames) == streams[214]
    assert a.next_seq_in == len(streams[213]) + 1
    assert (a.next_seq_out, a.protocol.inbound.lost, a.not_applied) == (5, 0, [])


def test_lob_marketmaker_command_logs_on_quotes_and_cancels(venue, connect):
    import subprocess
    import sys

    from aeron_helpers import ROOT

    viewer = connect(216)
    command = [sys.executable, "-m", "lob.cli", "marketmaker", "--aeron-dir", venue.driver.dir, "--port-base",
               str(venue.port_base), "--credentials", venue.credentials_file, "--session", "215", "--instrument", "5",
               "--mid", str(PX), "--duration", "1.5", "--report-every", "0.5"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("market maker: session 215, instrument 5, reports on aeron:udp?endpoint=127.0.0.1:")
    assert any(line.startswith("final: position +0") for line in lines)
    assert "'state': 'Closed'" in lines[-1] and "'lost': 0" in lines[-1]
    # It quoted PX -/+ 5 (one BookUpdate each) and cancelled both on the way out (one BookUpdate).
    seen = []
    viewer.on_book_update = lambda message, book: seen.append(sorted(
        (level["action"], level["side"], level["price"]["mantissa"], level["quantity"]) for level in message["levels"]))
    book = viewer.book(5)
    viewer.run(lambda: len(seen) >= 3, WAIT)
    settle(viewer)
    assert seen == [[("New", "Buy", PX - 5, 10)], [("New", "Sell", PX + 5, 10)],
                    [("Delete", "Buy", PX - 5, 0), ("Delete", "Sell", PX + 5, 0)]], done.stdout
    assert (book.bids, book.asks) == ({}, {})


def test_a_wrong_secret_stops_lob_marketmaker_with_the_reason(venue, tmp_path):
    import subprocess
    import sys

    from aeron_helpers import ROOT

    wrong = write_credentials(tmp_path / "wrong.txt", [credentials.SessionCredentials(217, "FIRM217", b"y" * 32)])
    command = [sys.executable, "-m", "lob.cli", "marketmaker", "--aeron-dir", venue.driver.dir, "--port-base",
               str(venue.port_base), "--credentials", wrong, "--duration", "1"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 1
    assert "session 217: Negotiate rejected: InvalidSignature" in done.stderr


def test_default_response_channels_differ():
    assert default_response_channel() != default_response_channel()
