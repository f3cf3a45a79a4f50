"""The client's session layer without a transport: SessionProtocol fed decoded frames on a manual clock.
Every frame it sends is decoded and checked field by field; the engine's side is played by hand."""
import pytest

from lob import credentials
from lob.client import protocol
from lob.client.protocol import LogonRejected, LogonTimeout, SessionProtocol
from lob.sbe import messages

CHANNEL = "aeron:udp?endpoint=127.0.0.1:47001"
STREAM = 77
CREDS = credentials.for_tests([1001])[0]


def msg(name, **fields):
    return messages.decode(messages.encode(name, **fields))


def new(seq, cl=1):
    return msg("ExecutionReportNew", seqNum=seq, transactTime=seq, clOrdId=cl, orderId=100 + seq)


class Harness:
    """A SessionProtocol whose sends are decoded into `sent`, on a clock the test moves."""

    def __init__(self, **kwargs):
        self.sent = []
        self.now = 100.0
        self.clock_ns = 1_700_000_000_000_000_000
        self.connected = True
        self.p = SessionProtocol(CREDS, CHANNEL, STREAM, send=self._send, clock_ns=lambda: self.clock_ns,
                                 can_send=lambda: self.connected, **kwargs)

    def _send(self, frame):
        if not self.connected:
            return False
        self.sent.append(messages.decode(frame))
        return True

    def take(self):
        out, self.sent = self.sent, []
        return out

    def feed(self, message):
        """Returns the seqNums handed on."""
        return [m["seqNum"] for m in self.p.on_message(message, message, self.now)]

    def advance(self, seconds):
        self.now += seconds
        self.clock_ns += int(seconds * 1e9)
        self.p.tick(self.now)

    def logon(self, engine_next=1, engine_expects=1):
        self.p.start(self.now)
        negotiate = self.take()[0]
        self.feed(msg("NegotiationResponse", sessionId=CREDS.session_id,
                      requestTimestamp=negotiate["requestTimestamp"]))
        establish = self.take()[0]
        self.feed(msg("EstablishmentAck", sessionId=CREDS.session_id, requestTimestamp=establish["requestTimestamp"],
                      keepAliveIntervalMs=establish["keepAliveIntervalMs"], nextSeqNo=engine_next,
                      nextRecvSeqNo=engine_expects))
        return negotiate, establish


def signature_ok(frame):
    return bytes(frame["signature"]) == (
        CREDS.sign_negotiate(frame["requestTimestamp"], frame["nonce"], frame["responseChannel"],
                             frame["responseStreamId"]) if frame["_name"] == "Negotiate" else
        CREDS.sign_establish(frame["requestTimestamp"], frame["keepAliveIntervalMs"], frame["nextSeqNo"]))


def without(frame, *names):
    return {k: v for k, v in frame.items() if k not in names and not k.startswith("_") or k == "_name"}


def test_logon_sends_signed_negotiate_and_establish():
    h = Harness(keep_alive_ms=500)
    states = []
    h.p.on_state = states.append
    negotiate, establish = h.logon(engine_next=1, engine_expects=1)
    assert without(negotiate, "signature", "nonce") == dict(
        _name="Negotiate", sessionId=1001, firm="FIRM1001", requestTimestamp=h.clock_ns, responseStreamId=STREAM,
        responseChannel=CHANNEL)
    assert without(establish, "signature") == dict(
        _name="Establish", sessionId=1001, requestTimestamp=h.clock_ns + 1, keepAliveIntervalMs=500, nextSeqNo=0)
    assert signature_ok(negotiate) and signature_ok(establish)
    assert states == ["Negotiating", "Establishing", "Established"]
    assert (h.p.state, h.p.next_seq_out, h.p.next_seq_in, h.p.establishments) == ("Established", 1, 1, 1)


def test_a_fresh_client_continues_where_the_engine_is():
    h = Harness()
    h.logon(engine_next=40, engine_expects=17)
    assert (h.p.next_seq_out, h.p.next_seq_in, h.p.inbound.gaps_detected) == (17, 40, 0)
    assert h.feed(new(40)) == [40]
    assert h.take() == []


@pytest.mark.parametrize("step", ["Negotiate", "Establish"])
def test_a_reject_at_logon_is_final_and_names_the_reason(step):
    h = Harness()
    h.p.start(h.now)
    negotiate = h.take()[0]
    if step == "Negotiate":
        h.feed(msg("NegotiationReject", sessionId=1001, requestTimestamp=negotiate["requestTimestamp"],
                   reason="InvalidSignature"))
    else:
        h.feed(msg("NegotiationResponse", sessionId=1001, requestTimestamp=negotiate["requestTimestamp"]))
        h.feed(msg("EstablishmentReject", sessionId=1001, requestTimestamp=h.take()[0]["requestTimestamp"],
                   reason="InvalidKeepAlive"))
    assert h.p.state == "Failed"
    # A negotiated session that could not be established is let go.
    assert [without(f) for f in h.take()] == ([] if step == "Negotiate" else [
        dict(_name="Terminate", sessionId=1001, reason="Finished")])
    assert isinstance(h.p.error, LogonRejected)
    expected = "InvalidSignature" if step == "Negotiate" else "InvalidKeepAlive"
    assert (h.p.error.step, h.p.error.reason) == (step, expected)
    assert "session 1001" in str(h.p.error) and h.p.error.reason in str(h.p.error)
    h.advance(60)
    assert h.take() == [] and h.p.state == "Failed"


def test_no_answer_at_logon_times_out():
    h = Harness(logon_timeout=5.0)
    h.p.start(h.now)
    h.take()
    h.advance(4.9)
    assert h.p.state == "Negotiating"
    h.advance(0.2)
    assert h.p.state == "Failed" and isinstance(h.p.error, LogonTimeout)
    assert "Negotiate" in str(h.p.error)


def test_a_hole_is_asked_for_and_filled_in_order_exactly_once():
    h = Harness()
    h.logon()
    assert h.feed(new(1)) == [1]
    assert h.feed(new(2)) == [2]
    assert h.feed(new(5)) == []          # 3 and 4 missing: 5 is held
    assert [without(f, "requestTimestamp") for f in h.take()] == [
        dict(_name="RetransmitRequest", sessionId=1001, fromSeqNo=3, count=2)]
    assert h.feed(new(6)) == []          # the same hole: no second request
    assert h.take() == []
    h.feed(msg("Retransmission", sessionId=1001, requestTimestamp=0, fromSeqNo=3, count=2))
    assert h.feed(new(3)) == [3]
    assert h.feed(new(4)) == [4, 5, 6]
    assert h.feed(new(4)) == []          # a late live copy of a replayed message
    assert h.feed(new(7)) == [7]
    inbound = h.p.inbound
    assert (inbound.next_seq, inbound.gaps_detected, inbound.retransmitted, inbound.duplicates, inbound.lost) == (
        8, 1, 2, 1, 0)
    assert inbound.request is None and h.take() == []


def test_the_engine_heartbeat_shows_a_hole_at_the_end():
    h = Harness()
    h.logon()
    h.feed(new(1))
    h.feed(msg("Sequence", nextSeqNo=2))   # nothing missing
    assert h.take() == []
    h.feed(msg("Sequence", nextSeqNo=4))   # 2 and 3 never arrived
    assert [without(f, "requestTimestamp") for f in h.take()] == [
        dict(_name="RetransmitRequest", sessionId=1001, fromSeqNo=2, count=2)]
    # Unanswered: asked again after the retransmit timeout, not before.
    h.advance(1.0)
    assert [f["_name"] for f in h.take()] == ["Sequence"]   # our keep-alive, no second request yet
    h.advance(1.5)
    assert [without(f, "requestTimestamp") for f in h.take() if f["_name"] == "RetransmitRequest"] == [
        dict(_name="RetransmitRequest", sessionId=1001, fromSeqNo=2, count=2)]
    h.feed(msg("Retransmission", sessionId=1001, requestTimestamp=0, fromSeqNo=2, count=2))
    assert h.feed(new(2)) + h.feed(new(3)) == [2, 3]
    assert (h.p.next_seq_in, h.p.inbound.gaps_detected, h.p.inbound.retransmitted) == (4, 1, 2)


def test_a_large_hole_is_asked_for_in_parts():
    h = Harness(max_retransmit=10)
    h.logon()
    h.feed(msg("Sequence", nextSeqNo=26))
    assert [(f["fromSeqNo"], f["count"]) for f in h.take()] == [(1, 10)]
    h.feed(msg("Retransmission", sessionId=1001, requestTimestamp=0, fromSeqNo=1, count=10))
    for s in range(1, 11):
        h.feed(new(s))
    assert [(f["fromSeqNo"], f["count"]) for f in h.take()] == [(11, 10)]
    h.feed(msg("Retransmission", sessionId=1001, requestTimestamp=0, fromSeqNo=11, count=10))
    for s in range(11, 21):
        h.feed(new(s))
    assert [(f["fromSeqNo"], f["count"]) for f in h.take()] == [(21, 5)]


def test_a_request_larger_than_the_engine_allows_is_asked_again_in_halves():
    h = Harness(max_retransmit=100)
    h.logon()
    h.feed(msg("Sequence", nextSeqNo=81))
    assert [(f["fromSeqNo"], f["count"]) for f in h.take()] == [(1, 80)]
    too_large = msg("MessageReject", seqNum=81, transactTime=9, refSeqNo=0, refClOrdId=0, refTemplateId=43,
                    refLength=40, reason="RetransmitTooLarge")
    assert h.feed(too_large) == []          # held behind the hole
    assert [(f["fromSeqNo"], f["count"]) for f in h.take()] == [(1, 40)]
    assert (h.p.inbound.lost, h.p.next_seq_in) == (0, 1)


def test_a_range_the_engine_no_longer_holds_is_skipped_and_counted():
    h = Harness()
    h.logon()
    h.feed(new(1))
    assert h.feed(new(4)) == []
    assert [(f["fromSeqNo"], f["count"]) for f in h.take()] == [(2, 2)]
    reject = msg("MessageReject", seqNum=5, transactTime=9, refSeqNo=0, refClOrdId=0, refTemplateId=43, refLength=40,
                 reason="RetransmitOutOfRange")
    assert h.feed(reject) == [4, 5]
    assert (h.p.next_seq_in, h.p.inbound.lost, h.p.inbound.gaps_detected) == (6, 2, 1)
    assert h.take() == []


def test_keep_alive_and_silence():
    h = Harness(keep_alive_ms=1000, retry_interval=0.5)
    h.logon()
    h.p.app_sent(h.now)
    h.p.app_sent(h.now)
    h.advance(0.9)
    assert h.take() == []
    h.advance(0.2)
    assert [without(f) for f in h.take()] == [dict(_name="Sequence", nextSeqNo=3)]
    h.feed(msg("Sequence", nextSeqNo=1))   # the engine's heartbeat keeps the session alive
    h.advance(1.0)
    h.advance(1.0)
    h.feed(msg("Sequence", nextSeqNo=1))
    assert h.p.state == "Established"
    h.take()
    h.advance(3.1)                         # silent for 3 keep-alive intervals: lost, negotiated again
    assert h.p.state == "Lost"
    # The engine may still hold the session on our transport and would refuse a Negotiate: end it first.
    assert [without(f) for f in h.take()] == [dict(_name="Terminate", sessionId=1001, reason="KeepAliveTimeout")]
    h.connected = False
    h.advance(1.0)
    assert h.p.state == "Lost" and h.take() == []
    h.connected = True
    h.advance(0.01)
    assert h.p.state == "Negotiating" and [f["_name"] for f in h.take()] == ["Negotiate"]


def test_engine_terminate_is_answered_and_the_session_comes_back_and_catches_up():
    h = Harness(retry_interval=0.5)
    terminated = []
    h.p.on_terminate = terminated.append
    first_negotiate, _ = h.logon()
    for s in (1, 2, 3):
        h.feed(new(s))
        h.p.app_sent(h.now)
    h.feed(msg("Terminate", sessionId=1001, reason="KeepAliveTimeout"))
    assert [without(f) for f in h.take()] == [dict(_name="Terminate", sessionId=1001, reason="Finished")]
    assert (h.p.state, terminated, h.p.terminations) == ("Lost", ["KeepAliveTimeout"], ["KeepAliveTimeout"])
    h.feed(msg("Terminate", sessionId=1001, reason="Finished"))   # the engine's answer to ours: ignored
    assert h.take() == [] and h.p.state == "Lost"
    h.advance(0.6)
    negotiate = h.take()[0]
    assert negotiate["_name"] == "Negotiate" and signature_ok(negotiate)
    assert negotiate["nonce"] != first_negotiate["nonce"]
    assert negotiate["requestTimestamp"] > first_negotiate["requestTimestamp"]
    h.feed(msg("NegotiationResponse", sessionId=1001, requestTimestamp=negotiate["requestTimestamp"]))
    establish = h.take()[0]
    assert (establish["_name"], establish["nextSeqNo"]) == ("Establish", 4) and signature_ok(establish)
    # The engine sequenced 4..6 while we were away (cancel-on-disconnect): asked for right away.
    h.feed(msg("EstablishmentAck", sessionId=1001, requestTimestamp=establish["requestTimestamp"],
               keepAliveIntervalMs=1000, nextSeqNo=7, nextRecvSeqNo=4))
    assert h.p.state == "Established" and h.p.establishments == 2
    assert [(f["_name"], f["fromSeqNo"], f["count"]) for f in h.take()] == [("RetransmitRequest", 4, 3)]
    h.feed(msg("Retransmission", sessionId=1001, requestTimestamp=0, fromSeqNo=4, count=3))
    assert h.feed(new(4)) + h.feed(new(5)) + h.feed(new(6)) == [4, 5, 6]
    assert (h.p.next_seq_in, h.p.next_seq_out, h.p.inbound.retransmitted) == (7, 4, 3)


def test_a_relogon_reject_is_retried_unless_it_cannot_succeed():
    h = Harness(retry_interval=0.5)
    h.logon()
    h.p.lost(h.now, "image gone")
    assert [without(f) for f in h.take()] == [dict(_name="Terminate", sessionId=1001, reason="TransportLost")]
    h.advance(0.6)
    negotiate = h.take()[0]
    h.feed(msg("NegotiationReject", sessionId=1001, requestTimestamp=negotiate["requestTimestamp"],
               reason="SessionInUse"))
    assert h.p.state == "Lost"
    assert [without(f) for f in h.take()] == [dict(_name="Terminate", sessionId=1001, reason="Finished")]
    h.advance(0.6)
    negotiate = h.take()[0]
    h.feed(msg("NegotiationReject", sessionId=1001, requestTimestamp=negotiate["requestTimestamp"],
               reason="UnknownSession"))
    assert h.p.state == "Failed" and h.p.error.reason == "UnknownSession"


def test_not_applied_and_unsequenced_rejects_are_reported():
    h = Harness()
    seen = []
    h.p.on_not_applied = lambda f, c: seen.append((f, c))
    h.logon()
    h.feed(msg("NotApplied", fromSeqNo=3, count=2))
    assert h.p.not_applied == seen == [(3, 2)]
    reject = msg("MessageReject", seqNum=0, transactTime=1, refSeqNo=0, refClOrdId=5, refTemplateId=1, refLength=56,
                 reason="NotEstablished")
    assert h.p.on_message(reject, "item", h.now) == ["item"]
    assert h.p.next_seq_in == 1


def test_client_terminate_waits_for_the_engine():
    h = Harness()
    h.logon()
    assert h.p.terminate(h.now)
    assert [without(f) for f in h.take()] == [dict(_name="Terminate", sessionId=1001, reason="Finished")]
    assert h.p.state == "Terminating"
    h.feed(msg("Terminate", sessionId=1001, reason="Finished"))
    assert h.p.state == "Closed" and h.take() == []
    h.advance(60)
    assert h.p.state == "Closed" and h.take() == []


def test_an_engine_whose_sequence_went_back_is_followed():
    h = Harness(retry_interval=0.5)
    h.logon()
    for s in (1, 2, 3, 4):
        h.feed(new(s))
    h.p.lost(h.now)
    assert [f["_name"] for f in h.take()] == ["Terminate"]
    h.advance(0.6)
    h.feed(msg("NegotiationResponse", sessionId=1001, requestTimestamp=h.take()[0]["requestTimestamp"]))
    h.feed(msg("EstablishmentAck", sessionId=1001, requestTimestamp=h.take()[0]["requestTimestamp"],
               keepAliveIntervalMs=1000, nextSeqNo=3, nextRecvSeqNo=1))
    assert (h.p.next_seq_in, h.p.inbound.resets) == (3, 1)
    assert h.feed(new(3)) == [3]


def test_states_are_the_module_constants():
    assert {protocol.ESTABLISHED, protocol.LOST, protocol.FAILED, protocol.CLOSED} == {
        "Established", "Lost", "Failed", "Closed"}
