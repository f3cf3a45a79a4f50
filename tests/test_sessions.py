"""The session layer: logon (Negotiate/Establish), identity, implicit sequence numbers, gaps, heartbeats and
keep-alive timeouts, retransmission, terminate, cancel-on-disconnect, throttling. Exact messages, exact
routing (session id, transport), the book unchanged by every reject."""
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine_helpers import cancel, nos, simplify
from lob import credentials, logon
from lob.engine import Engine
from lob.framing import iter_execution, pack_inbound
from lob.sbe import messages

T0 = 1_700_000_000_000_000_000
CHANNEL = "aeron:udp?endpoint=127.0.0.1:40999"
SECOND = 1_000_000_000


def creds_for(*ids, **options):
    return credentials.for_tests(ids, **options)


class Venue:
    """An Engine with sessions 1..4 (session 3 without cancel-on-disconnect, session 4 throttled to 2
    messages a second), driven one record at a time on a clock that starts at T0."""

    def __init__(self, ring_bytes=1 << 22, **engine_options):
        sessions = creds_for(1, 2) + creds_for(3, cancel_on_disconnect=False) + creds_for(4, rate=2, burst=2)
        self.creds = {c.session_id: c for c in sessions}
        self.engine = Engine({1: 1}, sessions=sessions, ring_bytes=ring_bytes, **engine_options)
        self.now = T0

    def send(self, frame, transport, at=None):
        """[(session id, transport, message)] the frame produced (messages simplified, no header fields)."""
        self.now = self.now + 1 if at is None else at
        out = self.engine.process(pack_inbound(frame, transport, self.now))
        return [(s, t, simplify(messages.decode(f))) for s, t, f in iter_execution(out)]

    def raw(self, frame, transport, at=None):
        self.now = self.now + 1 if at is None else at
        return list(iter_execution(self.engine.process(pack_inbound(frame, transport, self.now))))

    def negotiate(self, session, transport, request_ts=None, nonce=7, channel=CHANNEL, creds=None):
        request_ts = self.now if request_ts is None else request_ts
        return self.send(logon.negotiate(creds or self.creds[session], request_ts, nonce, channel, 5), transport)

    def establish(self, session, transport, keep_alive_ms=1000, next_seq_no=1, request_ts=None, creds=None):
        request_ts = self.now + 1 if request_ts is None else request_ts
        return self.send(logon.establish(creds or self.creds[session], request_ts, keep_alive_ms, next_seq_no),
                         transport)

    def logon(self, session, transport, keep_alive_ms=1000, next_seq_no=1):
        self.negotiate(session, transport, nonce=self.now)
        return self.establish(session, transport, keep_alive_ms, next_seq_no)

    def tick(self, at):
        return self.send(messages.encode("EngineTick", reserved=0), 0, at=at)

    def book(self):
        return [(o["session"], o["cl_ord_id"], o["side"], o["price"], o["leaves_qty"]) for o in self.engine.orders(1)]


def names(out):
    return [(s, t, m["_name"]) for s, t, m in out]


@pytest.fixture
def venue():
    return Venue()


# --- Negotiate --------------------------------------------------------------------------------------

def test_negotiate_binds_the_session_to_the_transport(venue):
    assert venue.negotiate(1, 501, request_ts=T0 - 5) == [
        (1, 501, {"_name": "NegotiationResponse", "sessionId": 1, "requestTimestamp": T0 - 5})]
    assert venue.engine.session(1)["state"] == "negotiated" and venue.engine.session(1)["transport"] == 501


@pytest.mark.parametrize("change, reason", [
    (dict(session=9, creds=creds_for(9)[0]), "UnknownSession"),
    (dict(creds=credentials.SessionCredentials(1, "FIRM1", b"another secret!!")), "InvalidSignature"),
    (dict(creds=credentials.SessionCredentials(1, "OTHER", creds_for(1)[0].secret)), "InvalidSignature"),
    (dict(request_ts=T0 - 31 * SECOND), "StaleRequest"),
    (dict(request_ts=T0 + 31 * SECOND), "StaleRequest"),
    (dict(channel="aeron:udp"), "InvalidResponseChannel"),
    (dict(channel="aeron:udp?endpoint=" + "x" * 600), "InvalidResponseChannel"),
    (dict(channel="tcp://10.0.0.1:80"), "InvalidResponseChannel"),
    (dict(channel="aeron:udp?interface=127.0.0.1"), "InvalidResponseChannel"),                  # no endpoint
    (dict(channel="aeron:udp?endpoint=127.0.0.1:1|endpoint=127.0.0.1:2"), "InvalidResponseChannel"),
    (dict(channel="aeron:udp?endpoint=127.0.0.1:1|session-id=7"), "InvalidResponseChannel"),
    (dict(channel="aeron:udp?endpoint=127.0.0.1:1|term-length=1073741824"), "InvalidResponseChannel"),
    (dict(channel="aeron:udp?endpoint=127.0.0.1:1|term-length=100000"), "InvalidResponseChannel"),
    (dict(channel="aeron:udp?endpoint=127.0.0.1:1|mtu=65504"), "InvalidResponseChannel"),
    (dict(channel="aeron:udp?endpoint=127.0.0.1:1|"), "InvalidResponseChannel"),
    (dict(channel="aeron:udp?endpoint=127.0.0.1:1 |mtu=1408"), "InvalidResponseChannel"),
])
def test_negotiate_rejects(venue, change, reason):
    session = change.pop("session", 1)
    venue.now = T0
    out = venue.negotiate(session, 501, **change)
    request_ts = change.get("request_ts", T0)
    assert out == [(0, 501, {"_name": "NegotiationReject", "sessionId": session, "requestTimestamp": request_ts,
                             "reason": reason})]
    assert venue.engine.session(1)["state"] == "idle" and venue.engine.session(1)["transport"] == 0


@pytest.mark.parametrize("channel", ["aeron:ipc", "aeron:udp?endpoint=127.0.0.1:40999",
                                     "aeron:udp?endpoint=127.0.0.1:1|interface=127.0.0.1|mtu=8192|term-length=65536",
                                     "aeron:udp?term-length=4194304|endpoint=[::1]:9"])
def test_response_channels_the_venue_serves(venue, channel):
    assert names(venue.negotiate(1, 501, channel=channel)) == [(1, 501, "NegotiationResponse")]


def test_a_replayed_negotiate_is_refused(venue):
    frame = logon.negotiate(venue.creds[1], T0, 42, CHANNEL, 5)
    assert names(venue.send(frame, 501)) == [(1, 501, "NegotiationResponse")]
    venue.send(logon.terminate(1), 501)
    # the same bytes again (same timestamp and nonce), then a newer timestamp with the old nonce
    assert venue.send(frame, 502)[0][2]["reason"] == "NonceReused"
    assert venue.negotiate(1, 502, request_ts=T0 + 10, nonce=42)[0][2]["reason"] == "NonceReused"
    assert names(venue.negotiate(1, 502, request_ts=T0 + 10, nonce=43)) == [(1, 502, "NegotiationResponse")]
    assert venue.engine.session_counters["auth_failures"] == 2


def test_a_second_claim_on_an_established_session_gets_nothing_done(venue):
    venue.logon(1, 501)
    venue.send(nos(1, "Buy", 100, 5), 501)
    counters = venue.engine.session_counters["claims_rejected"]
    request_ts = venue.now
    assert venue.negotiate(1, 666, nonce=99) == [(0, 666, {"_name": "NegotiationReject", "sessionId": 1,
                                                           "requestTimestamp": request_ts, "reason": "SessionInUse"})]
    assert venue.negotiate(1, 501, nonce=98)[0][2]["reason"] == "SessionInUse"
    # the claimant's order entry is not the session's: its cancel is not even read
    assert venue.send(cancel(2, 1), 666) == [(0, 666, {
        "_name": "MessageReject", "seqNum": 0, "transactTime": venue.now, "refSeqNo": 0, "refClOrdId": 0,
        "refTemplateId": 2, "refLength": len(cancel(2, 1)), "reason": "NotEstablished"})]
    assert venue.engine.session_counters["claims_rejected"] == counters + 2
    assert venue.book() == [(1, 1, "Buy", 100, 5)]
    assert venue.engine.session(1)["transport"] == 501


def test_one_transport_cannot_hold_two_sessions(venue):
    venue.negotiate(1, 501)
    assert venue.negotiate(2, 501)[0][2]["reason"] == "SessionInUse"


# --- Establish --------------------------------------------------------------------------------------

def test_establish_acknowledges_with_both_sequence_numbers(venue):
    venue.negotiate(1, 501)
    assert venue.establish(1, 501, keep_alive_ms=250, request_ts=T0 + 9) == [
        (1, 501, {"_name": "EstablishmentAck", "sessionId": 1, "requestTimestamp": T0 + 9,
                  "keepAliveIntervalMs": 250, "nextSeqNo": 1, "nextRecvSeqNo": 1})]
    assert venue.engine.session(1)["state"] == "established"


@pytest.mark.parametrize("change, reason", [
    (dict(keep_alive_ms=99), "InvalidKeepAlive"),
    (dict(keep_alive_ms=60_001), "InvalidKeepAlive"),
    (dict(creds=credentials.SessionCredentials(1, "FIRM1", b"another secret!!")), "InvalidSignature"),
    (dict(request_ts=T0 - 60 * SECOND), "StaleRequest"),
    (dict(request_ts=T0 - 1), "NonceReused"),        # not after the Negotiate's timestamp
])
def test_establish_rejects(venue, change, reason):
    venue.now = T0
    venue.negotiate(1, 501, request_ts=T0)
    request_ts = change.get("request_ts", venue.now + 1)
    assert venue.establish(1, 501, **change) == [(0, 501, {
        "_name": "EstablishmentReject", "sessionId": 1, "requestTimestamp": request_ts, "reason": reason})]
    assert venue.engine.session(1)["state"] == "negotiated"


def test_establish_needs_the_negotiated_transport(venue):
    venue.negotiate(1, 501)
    assert venue.establish(1, 502)[0][2]["reason"] == "NotNegotiated"
    assert venue.establish(2, 501, creds=venue.creds[2])[0][2]["reason"] == "UnknownSession"


def test_nothing_but_logon_is_read_before_establish(venue):
    venue.negotiate(1, 501)
    frames = [nos(1, "Buy", 100, 5), cancel(2, 1), logon.sequence(5),
              logon.retransmit_request(1, venue.now, 1, 1)]
    for frame in frames:
        [(session, transport, reject)] = venue.send(frame, 501)
        assert (session, transport, reject["reason"], reject["seqNum"]) == (0, 501, "NotEstablished", 0)
    assert venue.book() == [] and venue.engine.next_order_id == 1


def test_rejects_to_unestablished_transports_are_rate_limited(venue):
    answered = sum(len(venue.send(nos(i, "Buy", 100, 1), 777)) for i in range(150))
    assert answered == 100
    assert venue.engine.session_counters["unauthenticated"] == 150
    venue.now += SECOND
    assert len(venue.send(nos(1, "Buy", 100, 1), 777)) == 1


# --- sequence numbers -------------------------------------------------------------------------------

def test_application_messages_are_numbered_implicitly(venue):
    venue.logon(1, 501)
    out = venue.send(b"junk", 501) + venue.send(nos(7, "Buy", 100, 1), 501) + venue.send(b"more junk", 501)
    assert [(m["_name"], m["seqNum"], m.get("refSeqNo")) for _, _, m in out] == [
        ("MessageReject", 1, 1), ("ExecutionReportNew", 2, None), ("MessageReject", 3, 3)]
    assert venue.engine.session(1)["next_recv_seq_no"] == 4


def test_a_gap_announced_at_establish_is_reported_and_accepted(venue):
    venue.negotiate(1, 501)
    assert [m for _, _, m in venue.establish(1, 501, next_seq_no=10)][1:] == [
        {"_name": "NotApplied", "fromSeqNo": 1, "count": 9}]
    assert venue.engine.session(1)["next_recv_seq_no"] == 10
    assert venue.engine.session_counters["gaps"] == 1


def test_sequence_from_the_client_reports_gaps_and_refuses_going_back(venue):
    venue.logon(1, 501)
    venue.send(nos(1, "Buy", 100, 1), 501)
    assert venue.send(logon.sequence(2), 501) == []
    assert venue.send(logon.sequence(5), 501) == [(1, 501, {"_name": "NotApplied", "fromSeqNo": 2, "count": 3})]
    [(_, _, reject)] = venue.send(logon.sequence(3), 501)
    assert (reject["_name"], reject["reason"], reject["refTemplateId"]) == ("MessageReject", "SequenceTooLow", 42)
    assert venue.engine.session(1)["next_recv_seq_no"] == 5


def test_establish_with_a_lower_sequence_number_is_refused_and_zero_continues(venue):
    venue.logon(1, 501)
    for i in range(3):
        venue.send(nos(i + 1, "Buy", 100, 1), 501)
    venue.send(logon.terminate(1), 501)
    venue.negotiate(1, 502, nonce=1234)
    assert venue.establish(1, 502, next_seq_no=2)[0][2]["reason"] == "SequenceTooLow"
    [(_, _, ack)] = venue.establish(1, 502, next_seq_no=0)
    assert (ack["_name"], ack["nextRecvSeqNo"]) == ("EstablishmentAck", 4)


# --- identity ---------------------------------------------------------------------------------------

def test_a_session_cannot_touch_another_sessions_orders(venue):
    venue.logon(1, 501)
    venue.logon(2, 502)
    venue.send(nos(1, "Buy", 100, 5), 501)
    [(session, transport, reject)] = venue.send(cancel(9, 1), 502)
    assert (session, transport, reject["_name"], reject["reason"], reject["orderId"]) == (
        2, 502, "OrderCancelReject", "UnknownOrder", 0)
    assert names(venue.send(messages.encode("OrderMassCancelRequest", clOrdId=10, instrumentId=0, side="Both"), 502)) == [
        (2, 502, "OrderMassCancelReport")]
    assert venue.book() == [(1, 1, "Buy", 100, 5)]


def test_reports_go_to_each_side_of_a_trade_on_its_own_route(venue):
    venue.logon(1, 501)
    venue.logon(2, 502)
    venue.send(nos(1, "Buy", 100, 5), 501)
    out = venue.send(nos(1, "Sell", 100, 5), 502)
    assert [(s, t, m["_name"], m["seqNum"], m.get("liquidity")) for s, t, m in out] == [
        (2, 502, "ExecutionReportNew", 1, None), (1, 501, "ExecutionReportTrade", 2, "Added"),
        (2, 502, "ExecutionReportTrade", 2, "Removed")]


# --- retransmission ---------------------------------------------------------------------------------

def test_retransmission_sends_the_original_bytes(venue):
    venue.logon(1, 501)
    venue.logon(2, 502)
    first = venue.raw(nos(1, "Buy", 100, 5), 501) + venue.raw(nos(1, "Sell", 100, 2), 502)
    originals = [f for s, _, f in first if s == 1]
    assert len(originals) == 2
    out = venue.raw(logon.retransmit_request(1, T0, 1, 2), 501)
    header = simplify(messages.decode(out[0][2]))
    assert header == {"_name": "Retransmission", "sessionId": 1, "requestTimestamp": T0, "fromSeqNo": 1, "count": 2}
    assert [f for _, _, f in out[1:]] == originals and {(s, t) for s, t, _ in out} == {(1, 501)}


@pytest.mark.parametrize("from_seq, count, reason", [
    (1, 0, "RetransmitTooLarge"), (1, 10_001, "RetransmitTooLarge"), (0, 1, "RetransmitOutOfRange"),
    (2, 1, "RetransmitOutOfRange"), (1, 2, "RetransmitOutOfRange")])
def test_retransmit_requests_beyond_what_is_kept(venue, from_seq, count, reason):
    venue.logon(1, 501)
    venue.send(nos(1, "Buy", 100, 5), 501)                 # seq 1 is all there is
    [(_, _, reject)] = venue.send(logon.retransmit_request(1, T0, from_seq, count), 501)
    assert (reject["_name"], reject["reason"], reject["refTemplateId"]) == ("MessageReject", reason, 43)


def test_retransmit_for_another_session_id_is_refused(venue):
    venue.logon(1, 501)
    venue.send(nos(1, "Buy", 100, 5), 501)
    [(_, _, reject)] = venue.send(logon.retransmit_request(2, T0, 1, 1), 501)
    assert reject["reason"] == "UnknownSession"


def test_the_ring_keeps_the_newest_messages():
    venue = Venue(ring_bytes=4096)
    venue.logon(1, 501)
    for i in range(200):                                    # 40-byte acknowledgements: more than 4 KiB
        venue.send(nos(i + 1, "Buy", 100, 1), 501)
    first, end = venue.engine.session(1)["retained"]
    assert end == 201 and 1 < first < 200 - 4096 // 60
    assert venue.send(logon.retransmit_request(1, T0, first - 1, 1), 501)[0][2]["reason"] == "RetransmitOutOfRange"
    first, end = venue.engine.session(1)["retained"]     # the reject is an application message too
    assert end == 202
    out = venue.send(logon.retransmit_request(1, T0, first, end - first), 501)
    assert [m["seqNum"] for _, _, m in out[1:]] == list(range(first, end))


# --- terminate, timeouts, cancel-on-disconnect --------------------------------------------------------

def test_terminate_ends_the_session_and_cancels_its_orders(venue):
    venue.logon(1, 501)
    venue.send(nos(1, "Buy", 100, 5), 501)
    out = venue.send(logon.terminate(1), 501)
    assert out[0] == (1, 501, {"_name": "Terminate", "sessionId": 1, "reason": "Finished"})
    assert [(s, t, m["_name"], m["reason"], m["seqNum"]) for s, t, m in out[1:]] == [
        (1, 0, "ExecutionReportCanceled", "CancelOnDisconnect", 2)]
    assert venue.book() == [] and venue.engine.session(1)["state"] == "idle"


def test_terminate_naming_someone_elses_session_is_refused(venue):
    venue.logon(1, 501)
    venue.logon(2, 502)
    venue.send(nos(1, "Buy", 100, 5), 502)
    [(session, transport, reject)] = venue.send(logon.terminate(2), 501)
    assert (session, transport, reject["reason"]) == (1, 501, "UnknownSession")
    assert venue.engine.session(2)["state"] == "established" and venue.book() == [(2, 1, "Buy", 100, 5)]


def test_heartbeats_when_idle_and_terminate_after_three_silent_intervals(venue):
    venue.logon(1, 501, keep_alive_ms=1000)
    start = venue.now
    assert venue.tick(start + SECOND // 2) == []
    assert venue.tick(start + SECOND) == [(1, 501, {"_name": "Sequence", "nextSeqNo": 1})]
    assert venue.tick(start + SECOND + 1) == []
    venue.send(logon.sequence(1), 501, at=start + 2 * SECOND)      # the client's heartbeat
    assert venue.tick(start + 4 * SECOND) == [(1, 501, {"_name": "Sequence", "nextSeqNo": 1})]
    assert venue.tick(start + 5 * SECOND) == [(1, 501, {"_name": "Sequence", "nextSeqNo": 1})]
    assert venue.tick(start + 5 * SECOND + 1) == [
        (1, 501, {"_name": "Terminate", "sessionId": 1, "reason": "KeepAliveTimeout"})]
    assert venue.engine.session(1)["state"] == "idle" and venue.engine.session_counters["timeouts"] == 1


def test_a_lost_transport_cancels_and_the_client_gets_it_all_back_after_logon(venue):
    venue.logon(1, 501)
    venue.logon(3, 503)
    venue.send(nos(1, "Buy", 100, 5), 501)
    venue.send(nos(1, "Buy", 99, 5), 503)
    out = venue.raw(messages.encode("TransportLost", transport=501), 0)
    assert [(s, t) for s, t, _ in out] == [(1, 0)]           # retained, sent to nobody
    assert venue.book() == [(3, 1, "Buy", 99, 5)]            # session 3 has cancel-on-disconnect off
    venue.raw(messages.encode("TransportLost", transport=503), 0)
    assert venue.book() == [(3, 1, "Buy", 99, 5)] and venue.engine.session(3)["state"] == "idle"

    venue.negotiate(1, 601, nonce=5555)
    [(_, _, ack)] = venue.establish(1, 601, next_seq_no=2)
    assert ack["nextSeqNo"] == 3                            # the client has seen 1: it asks for 2
    replay = venue.raw(logon.retransmit_request(1, T0, 2, 1), 601)
    assert replay[1] == (1, 601, out[0][2])


def test_engine_start_unbinds_everyone(venue):
    venue.logon(1, 501)
    venue.logon(2, 502)
    venue.send(nos(1, "Buy", 100, 5), 501)
    out = venue.send(messages.encode("EngineStart", reserved=0), 0)
    assert [(s, t, m["reason"]) for s, t, m in out] == [(1, 0, "CancelOnDisconnect")]
    assert [venue.engine.session(i)["state"] for i in (1, 2)] == ["idle", "idle"]
    assert names(venue.logon(1, 501, next_seq_no=0)) == [(1, 501, "EstablishmentAck")]


def test_engine_records_from_the_network_are_not_obeyed(venue):
    venue.logon(1, 501)
    venue.send(nos(1, "Buy", 100, 5), 501)
    for frame in (messages.encode("TransportLost", transport=501), messages.encode("EngineStart", reserved=0)):
        [(session, transport, reject)] = venue.send(frame, 777)
        assert (session, transport, reject["reason"]) == (0, 777, "UnknownTemplate")
    assert venue.book() == [(1, 1, "Buy", 100, 5)] and venue.engine.session(1)["state"] == "established"


# --- throttle -----------------------------------------------------------------------------------------

def test_throttle_rejects_what_is_over_the_rate(venue):
    venue.logon(4, 504)
    start = venue.now
    out = [venue.send(nos(i, "Buy", 100, 1), 504, at=start + i) for i in (1, 2, 3)]
    assert [o[0][2]["_name"] for o in out] == ["ExecutionReportNew", "ExecutionReportNew", "MessageReject"]
    assert out[2][0][2] == {"_name": "MessageReject", "seqNum": 3, "transactTime": start + 3, "refSeqNo": 3,
                            "refClOrdId": 3, "refTemplateId": 1, "refLength": len(nos(3)), "reason": "Throttled"}
    assert names(venue.send(nos(4, "Buy", 100, 1), 504, at=start + SECOND // 2 + 10)) == [(4, 504, "ExecutionReportNew")]
    assert venue.engine.session_counters["throttled"] == 1 and len(venue.book()) == 3


# --- hostile frames -----------------------------------------------------------------------------------

def test_truncated_and_lying_session_frames_are_malformed(venue):
    frame = logon.negotiate(venue.creds[1], venue.now, 1, CHANNEL, 5)
    for bad in (frame[:20], frame[:-1], frame[:8 + 72 + 1]):
        [(session, transport, reject)] = venue.send(bad, 501)
        assert (session, transport, reject["reason"]) == (0, 501, "MalformedFrame")
    lying = frame[:8 + 72] + struct.pack("<H", 1000) + frame[8 + 74:]       # a channel longer than the frame
    assert venue.send(lying, 501)[0][2]["reason"] == "MalformedFrame"
    assert venue.engine.session(1)["state"] == "idle"


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["Negotiate", "Establish", "Sequence", "RetransmitRequest", "Terminate"]),
       st.binary(max_size=120), st.data())
def test_random_session_frames_never_crash_or_log_anyone_on(name, body, data):
    venue = Venue()
    venue.logon(2, 502)
    venue.send(nos(1, "Buy", 100, 5), 502)
    template = messages.TEMPLATE_IDS[name] if hasattr(messages, "TEMPLATE_IDS") else {
        "Negotiate": 40, "Establish": 41, "Sequence": 42, "RetransmitRequest": 43, "Terminate": 44}[name]
    block = data.draw(st.integers(0, 100))
    frame = struct.pack("<HHHH", block, template, messages.SCHEMA_ID, messages.SCHEMA_VERSION) + body
    venue.send(frame, 501)
    assert venue.engine.session(1)["state"] != "established"
    assert venue.book() == [(2, 1, "Buy", 100, 5)]
