"""The client's session layer and order tracker against the real engine core, without Aeron: every
frame the client sends becomes an inbound record of an offline Engine, every frame the engine routes to
the client's transport is fed back (unless the test drops it). The engine's own record of what it sent
(`Engine.retained`) is the reference the client's stream must equal."""
from lob import credentials
from lob.client import Order, OrderTracker
from lob.client.protocol import SessionProtocol
from lob.engine import Engine
from lob.framing import iter_execution, pack_inbound
from lob.sbe import messages

PX = 1_000_000
CREDS = credentials.for_tests([101, 102])
CHANNEL = "aeron:udp?endpoint=127.0.0.1:47002"


class Venue:
    """An offline engine with a clock (ns); routes its output to the loopback clients by transport."""

    def __init__(self):
        self.engine = Engine({1: 1}, max_orders=1024, sessions=CREDS)
        self.clock_ns = 1_700_000_000_000_000_000
        self.clients = {}

    def submit(self, transport, frame):
        self.clock_ns += 1000
        self.route(self.engine.process(pack_inbound(frame, transport, self.clock_ns)))

    def record(self, name, **fields):
        """An engine record (EngineTick, TransportLost, EngineStart) from the engine itself (transport 0)."""
        self.submit(0, messages.encode(name, **fields))

    def route(self, out):
        for session_id, transport, frame in iter_execution(out):
            client = self.clients.get(transport)
            if client is not None:
                client.receive(frame)


class LoopbackClient:
    def __init__(self, venue, creds, transport):
        self.venue, self.transport = venue, transport
        self.now = 0.0
        self.connected = True     # False: what the engine sends us is lost (our subscription is closed)
        self.tracker = OrderTracker()
        self.frames = []          # sequenced execution frames handed on, in order
        self.unsequenced = []     # MessageRejects to a transport without an established session
        self.next_cl = 1
        self.p = SessionProtocol(creds, CHANNEL, 5, send=self.send, clock_ns=lambda: venue.clock_ns,
                                 keep_alive_ms=1000)
        venue.clients[transport] = self

    def send(self, frame):
        self.venue.submit(self.transport, frame)
        return True

    def receive(self, frame):
        if not self.connected:
            return
        message = messages.decode(frame)
        for m, f in self.p.on_message(message, (message, frame), self.now):
            (self.frames if m["seqNum"] else self.unsequenced).append(f)
            self.tracker.apply(m)

    def place(self, side, qty, price):
        order = self.tracker.on_new_order(Order(self.next_cl, 1, side, qty, price=price))
        self.next_cl += 1
        frame = messages.encode("NewOrderSingle", clOrdId=order.cl_ord_id, account=0, instrumentId=1, side=side,
                                ordType="Limit", timeInForce="GoodTillCancel", flags=[], selfTradePrevention="None",
                                price={"mantissa": price}, quantity=qty, expireTime=0, stpGroup=0)
        self.p.app_sent(self.now)
        self.send(frame)
        return order

    def cancel(self, order):
        request = self.next_cl
        self.next_cl += 1
        self.tracker.on_cancel(request, order)
        self.p.app_sent(self.now)
        self.send(messages.encode("OrderCancelRequest", clOrdId=request, origClOrdId=order.cl_ord_id,
                                  instrumentId=1, side=order.side))
        return request

    def engine_stream(self):
        """Every application message the engine sequenced for this session, from the engine's ring."""
        s = self.venue.engine.session(self.p.session_id)
        first, end = s["retained"]
        assert first == 1
        return list(self.venue.engine.retained(self.p.session_id, 1, end - 1))


def test_logon_orders_and_fills_follow_the_engine():
    venue = Venue()
    a = LoopbackClient(venue, CREDS[0], transport=11)
    b = LoopbackClient(venue, CREDS[1], transport=12)
    a.p.start(a.now)
    b.p.start(b.now)
    assert a.p.state == b.p.state == "Established"
    assert (a.p.next_seq_out, a.p.next_seq_in) == (1, 1)

    bid = a.place("Buy", 10, PX)
    ask = b.place("Sell", 4, PX - 100)
    assert (bid.status, bid.leaves, bid.cum) == ("PartiallyFilled", 6, 4)
    assert (ask.status, ask.leaves, ask.cum, ask.order_id != 0) == ("Filled", 0, 4, True)
    assert [f.price for f in bid.fills + ask.fills] == [PX, PX]
    assert (a.tracker.position(1).quantity, b.tracker.position(1).quantity) == (4, -4)
    a.cancel(bid)
    assert (bid.status, bid.reason) == ("Canceled", "UserRequest")
    # Each client got exactly its own stream, in the engine's numbering.
    assert [messages.decode(f)["_name"] for f in a.frames] == [
        "ExecutionReportNew", "ExecutionReportTrade", "ExecutionReportCanceled"]
    assert [messages.decode(f)["_name"] for f in b.frames] == ["ExecutionReportNew", "ExecutionReportTrade"]
    assert a.frames == a.engine_stream() and b.frames == b.engine_stream()
    assert (a.p.next_seq_out, a.p.next_seq_in, b.p.next_seq_in) == (3, 4, 3)


def test_missed_reports_are_retransmitted_and_the_stream_ends_equal():
    venue = Venue()
    a = LoopbackClient(venue, CREDS[0], transport=11)
    b = LoopbackClient(venue, CREDS[1], transport=12)
    a.p.start(a.now)
    b.p.start(b.now)
    orders = [a.place("Buy", 5, PX - i) for i in range(3)]
    a.connected = False                       # a's subscription is closed for a while
    b.place("Sell", 12, PX - 2)               # fills all three of a's orders (two fully)
    a.connected = True
    assert [o.status for o in orders] == ["New"] * 3
    # The engine's heartbeat shows the hole; the client asks, gets the Retransmission and the frames.
    a.now += 1.5
    venue.clock_ns += 1_500_000_000
    venue.record("EngineTick", reserved=0)
    assert [(o.status, o.cum) for o in orders] == [("Filled", 5), ("Filled", 5), ("PartiallyFilled", 2)]
    assert a.frames == a.engine_stream()
    assert (a.p.inbound.gaps_detected, a.p.inbound.retransmitted, a.p.inbound.duplicates) == (1, 3, 0)
    assert a.tracker.position(1).quantity == 12


def test_after_an_engine_restart_the_client_establishes_again_and_gets_the_cancels():
    venue = Venue()
    a = LoopbackClient(venue, CREDS[0], transport=11)
    a.p.start(a.now)
    resting = [a.place("Sell", 3, PX + i) for i in range(2)]
    venue.record("EngineStart", reserved=0)   # the engine restarted: the session is unbound, orders canceled
    assert [o.status for o in resting] == ["New", "New"]
    a.p.lost(a.now, "the engine's stream went away")
    a.now += 1.0
    a.p.tick(a.now)                           # negotiates and establishes again
    assert a.p.state == "Established" and a.p.establishments == 2
    assert [(o.status, o.reason) for o in resting] == [("Canceled", "CancelOnDisconnect")] * 2
    assert a.frames == a.engine_stream()
    assert (a.p.inbound.retransmitted, a.p.next_seq_in, a.p.next_seq_out) == (2, 5, 3)
    # Its Terminate (in case the engine still held the session) found nothing to end.
    assert [(m["_name"], m["refTemplateId"], m["reason"]) for m in map(messages.decode, a.unsequenced)] == [
        ("MessageReject", 44, "NotNegotiated")]
    # And it trades on in the same numbering.
    again = a.place("Buy", 1, PX - 50)
    assert again.status == "New" and a.frames == a.engine_stream()
    assert a.p.not_applied == []
