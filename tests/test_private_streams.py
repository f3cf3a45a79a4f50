"""Private execution publications per client transport (lob.private_streams) over a real embedded driver,
and image events handed from the Aeron conductor thread (lob.transport.images)."""
import pytest
from aeron_helpers import client, media_driver, udp_channel, wait_until  # noqa: F401  (fixtures)

from lob import credentials, logon
from lob.private_streams import PrivateStreams
from lob.sbe.messages import encode
from lob.transport.driver import free_udp_ports
from lob.transport.images import UNAVAILABLE, ImageEvents
from lob.transport.subscription import FrameCollector

CREDS = credentials.for_tests([1001])[0]
TRANSPORT = 0x7000_0001


def negotiate(channel, stream_id=9):
    return logon.negotiate(CREDS, 1, 1, channel, stream_id)


def frames(count, first=1):
    return [encode("Sequence", nextSeqNo=first + i) for i in range(count)]


def reject(template="NegotiationReject"):
    return encode(template, sessionId=1001, requestTimestamp=1, reason="InvalidSignature")


def subscribe(client, channel, stream_id=9):
    sub = client.add_subscription(channel, stream_id)
    collector = FrameCollector()
    sub.set_collector(collector)
    return sub, collector


def pump(streams, sub, collector, count):
    return wait_until(lambda: streams.poll() >= 0 and sub.poll() >= 0 and collector.count >= count)


def test_frames_wait_for_the_subscriber_then_arrive_in_order(client):
    (port,) = free_udp_ports(1)
    channel = udp_channel(port)
    streams = PrivateStreams(client, 4)
    streams.negotiate(TRANSPORT, negotiate(channel))
    assert streams.publications() == {TRANSPORT: ("adding", channel, 9, False, 0)}
    sent = frames(5)
    for frame in sent[:3]:
        streams.send(TRANSPORT, frame)
    assert streams.publications()[TRANSPORT][4] == 3
    sub, collector = subscribe(client, channel)
    assert pump(streams, sub, collector, 3)
    for frame in sent[3:]:
        streams.send(TRANSPORT, frame)
    assert pump(streams, sub, collector, 5)
    assert [payload for _, payload in collector.drain()] == sent
    assert streams.publications()[TRANSPORT][0] == "open"
    counters = streams.counters()
    assert (counters["frames"], counters["opened"], counters["open"], counters["dropped_unconnected"]) == (5, 1, 1, 0)
    streams.close()
    assert streams.counters()["closed"] == 1 and streams.publications() == {}


def test_a_reject_closes_the_publication_after_it_was_sent(client):
    (port,) = free_udp_ports(1)
    channel = udp_channel(port)
    sub, collector = subscribe(client, channel)
    streams = PrivateStreams(client, 4, linger=30.0)
    streams.negotiate(TRANSPORT, negotiate(channel))
    frame = reject()
    streams.send(TRANSPORT, frame)
    assert streams.publications()[TRANSPORT][3] is True   # closing
    assert pump(streams, sub, collector, 1)
    assert wait_until(lambda: streams.poll() >= 0 and not streams.publications())
    assert [payload for _, payload in collector.drain()] == [frame]
    assert streams.counters()["closed"] == 1


def test_a_repeated_negotiate_keeps_a_closing_publication(client):
    (port,) = free_udp_ports(1)
    channel = udp_channel(port)
    streams = PrivateStreams(client, 4, linger=30.0)
    streams.negotiate(TRANSPORT, negotiate(channel))
    streams.send(TRANSPORT, reject("EstablishmentReject"))
    streams.negotiate(TRANSPORT, negotiate(channel))
    assert streams.publications()[TRANSPORT][3] is False
    streams.transport_lost(TRANSPORT)
    assert streams.publications()[TRANSPORT][3] is True
    streams.close()


@pytest.mark.parametrize("channel", ["aeron:tcp?endpoint=127.0.0.1:1", "aeron:udp", "aeron:ipc?x=1",
                                     "aeron:udp?endpoint=127.0.0.1:1|" + "x" * 500, "aeron:udp?a=\x00b", "",
                                     "aeron:udp?endpoint=127.0.0.1:1|term-length=1073741824",
                                     "aeron:udp?endpoint=127.0.0.1:1|session-id=7",
                                     "aeron:udp?interface=127.0.0.1"])
def test_channels_the_venue_does_not_serve_get_no_publication(client, channel):
    streams = PrivateStreams(client, 4)
    streams.negotiate(TRANSPORT, negotiate(channel))
    streams.send(TRANSPORT, frames(1)[0])
    assert streams.publications() == {}
    counters = streams.counters()
    assert (counters["channel_refused"], counters["no_route"], counters["opened"]) == (1, 1, 0)


def test_ipc_is_served(client):
    streams = PrivateStreams(client, 4)
    streams.negotiate(TRANSPORT, negotiate("aeron:ipc"))
    assert streams.publications()[TRANSPORT][1] == "aeron:ipc"
    streams.close()


def test_the_number_of_publications_is_bounded(client):
    ports = free_udp_ports(3)
    streams = PrivateStreams(client, 2)
    for i, port in enumerate(ports):
        streams.negotiate(TRANSPORT + i, negotiate(udp_channel(port)))
    assert sorted(streams.publications()) == [TRANSPORT, TRANSPORT + 1]
    assert streams.counters()["limit_refused"] == 1
    streams.send(TRANSPORT + 2, frames(1)[0])
    assert streams.counters()["no_route"] == 1
    streams.transport_lost(TRANSPORT)   # closing frees the slot (after the linger without a subscriber)
    streams.close()
    streams.negotiate(TRANSPORT + 2, negotiate(udp_channel(ports[2])))
    assert sorted(streams.publications()) == [TRANSPORT + 2]
    streams.close()


def test_unconnected_transports_drop_after_the_timeout_and_transport_zero_is_never_sent(client):
    (port,) = free_udp_ports(1)
    streams = PrivateStreams(client, 4, connect_timeout=0.05)
    streams.negotiate(TRANSPORT, negotiate(udp_channel(port)))
    for frame in frames(3):
        streams.send(TRANSPORT, frame)
    assert wait_until(lambda: streams.poll() >= 0 and streams.counters()["dropped_unconnected"] == 3)
    assert wait_until(lambda: streams.poll() >= 0 and streams.publications()[TRANSPORT][0] == "open")
    streams.send(TRANSPORT, frames(1)[0])      # offered, nobody listens
    streams.send(0, frames(1)[0])
    counters = streams.counters()
    assert (counters["dropped_unconnected"], counters["unrouted"], counters["frames"]) == (4, 1, 0)
    streams.close()


def test_a_full_buffer_drops_and_counts(client):
    (port,) = free_udp_ports(1)
    frame = frames(1)[0]
    streams = PrivateStreams(client, 4, buffer_bytes=3 * (4 + len(frame)))
    streams.negotiate(TRANSPORT, negotiate(udp_channel(port)))
    for _ in range(5):
        streams.send(TRANSPORT, frame)
    assert streams.publications()[TRANSPORT][4] == 3 and streams.counters()["dropped_unconnected"] == 2
    streams.close()
    assert streams.counters()["dropped_unconnected"] == 5


def test_unavailable_images_reach_the_ring_with_their_session_id(client):
    (port,) = free_udp_ports(1)
    events = ImageEvents()
    sub = client.add_subscription(udp_channel(port), 5, images=events)
    pub = client.add_exclusive_publication(udp_channel(port), 5)
    assert sub.images is events
    assert wait_until(lambda: sub.is_connected)
    session_id = pub.session_id
    pub.close()
    assert wait_until(lambda: events.received >= 1)
    assert events.drain() == [(UNAVAILABLE, session_id)]
    assert events.overflow == 0


SLOW, FAST = TRANSPORT, TRANSPORT + 1


class SlowAndFast:
    """Two transports of one PrivateStreams on 64 KiB terms (a window of about a thousand Sequence frames):
    SLOW's subscriber reads only when told to, FAST's after every step; every frame sent is recorded."""

    def __init__(self, client, streams):
        self.streams = streams
        self.subs = {}
        self.sent = {SLOW: [], FAST: []}
        for transport, port in zip((SLOW, FAST), free_udp_ports(2)):
            channel = udp_channel(port, term_length=65536)
            self.subs[transport] = subscribe(client, channel)
            streams.negotiate(transport, negotiate(channel))
        assert wait_until(lambda: streams.poll() >= 0 and all(
            streams.publications()[t][0] == "open" for t in (SLOW, FAST)))

    def send(self, transport):
        frame = encode("Sequence", nextSeqNo=len(self.sent[transport]) + 1)
        self.sent[transport].append(frame)
        self.streams.send(transport, frame)

    def step(self, until, steps=64, limit=200):
        """Send `steps` frames to each transport, then let FAST read all it was sent; repeat until
        until() holds after a frame to SLOW (True), at most `limit` times (False)."""
        for _ in range(limit):
            for _ in range(steps):
                self.send(SLOW)
                if until():
                    self.catch_up(FAST)
                    return True
                self.send(FAST)
            self.catch_up(FAST)
        return False

    def catch_up(self, transport):
        sub, collector = self.subs[transport]
        assert pump(self.streams, sub, collector, len(self.sent[transport]))

    def received(self, transport):
        return [payload for _, payload in self.subs[transport][1].drain()]

    def pending(self, transport):
        return self.streams.publications()[transport][4]


def test_a_back_pressured_transport_keeps_its_frames_in_order_while_the_others_go_on(client):
    streams = PrivateStreams(client, 4, slow_consumer_timeout=600.0)
    s = SlowAndFast(client, streams)
    assert s.step(lambda: s.pending(SLOW) > 0)
    for _ in range(100):   # all of these wait behind the first held-back frame
        s.send(SLOW)
        s.send(FAST)
    s.catch_up(FAST)
    assert streams.poll() >= 0
    waiting = s.pending(SLOW)
    taken_by_slow = streams.counters()["frames"] - len(s.sent[FAST])
    assert waiting > 0 and taken_by_slow + waiting == len(s.sent[SLOW])   # retried, held back, none lost
    assert streams.counters()["back_pressure_events"] >= waiting
    s.catch_up(SLOW)        # the client reads again: the buffer drains, in order
    assert s.received(SLOW) == s.sent[SLOW] and s.received(FAST) == s.sent[FAST]
    assert s.pending(SLOW) == 0 and streams.publications()[SLOW][0] == "open"
    counters = streams.counters()
    assert counters["frames"] == len(s.sent[SLOW]) + len(s.sent[FAST])
    assert (counters["slow_consumers_disconnected"], counters["dropped_slow_consumer"],
            counters["dropped_unconnected"], counters["unsent"], counters["errors"]) == (0, 0, 0, 0, 0)
    assert streams.slow_consumers() == []
    streams.close()


def test_a_transport_whose_buffer_would_overflow_is_disconnected(client):
    frame_bytes = 4 + len(frames(1)[0])
    streams = PrivateStreams(client, 4, buffer_bytes=50 * frame_bytes, slow_consumer_timeout=600.0)
    s = SlowAndFast(client, streams)
    assert s.step(lambda: streams.publications()[SLOW][0] == "slow")
    counters = streams.counters()
    taken_by_slow = counters["frames"] - len(s.sent[FAST])
    # 50 frames held, the 51st would not fit: all 51 dropped with the disconnection.
    assert len(s.sent[SLOW]) - taken_by_slow == 51
    assert (counters["slow_consumers_disconnected"], counters["dropped_slow_consumer"], counters["closed"]) == (
        1, 51, 1)
    assert streams.slow_consumers() == [SLOW] and streams.slow_consumers() == []
    s.send(SLOW)            # until the loop has reported it lost, the transport's frames are dropped
    assert streams.counters()["dropped_slow_consumer"] == 52
    streams.transport_lost(SLOW)
    assert sorted(streams.publications()) == [FAST]
    s.send(SLOW)
    s.send(FAST)
    s.catch_up(FAST)
    assert s.received(FAST) == s.sent[FAST]
    assert s.received(SLOW) == []   # it never read; what the driver had sent it is not ours to count
    counters = streams.counters()
    assert (counters["no_route"], counters["frames"], counters["dropped_unconnected"], counters["errors"]) == (
        1, taken_by_slow + len(s.sent[FAST]), 0, 0)
    streams.close()


def test_a_transport_back_pressured_longer_than_the_timeout_is_disconnected(client):
    streams = PrivateStreams(client, 4, slow_consumer_timeout=0.2)
    s = SlowAndFast(client, streams)
    assert s.step(lambda: s.pending(SLOW) > 0)
    assert wait_until(lambda: streams.poll() >= 0 and streams.publications()[SLOW][0] == "slow")
    assert streams.slow_consumers() == [SLOW]
    counters = streams.counters()
    held = len(s.sent[SLOW]) - (counters["frames"] - len(s.sent[FAST]))   # never taken by its publication
    assert held > 0
    assert (counters["slow_consumers_disconnected"], counters["dropped_slow_consumer"]) == (1, held)
    streams.transport_lost(SLOW)
    for _ in range(10):
        s.send(FAST)
    s.catch_up(FAST)
    assert s.received(FAST) == s.sent[FAST] and streams.publications()[FAST][0] == "open"
    assert streams.counters()["slow_consumers_disconnected"] == 1
    streams.close()


def test_a_consumer_that_reads_in_dribs_gets_every_frame_in_order(client):
    # Frames keep joining the back of the buffer while the front drains a few at a time, so the space
    # drained frames leave is reclaimed many times over; the bound (4 KiB, about 200 frames) is never hit.
    streams = PrivateStreams(client, 4, buffer_bytes=4096, slow_consumer_timeout=600.0)
    s = SlowAndFast(client, streams)
    assert s.step(lambda: s.pending(SLOW) > 0)
    sub = s.subs[SLOW][0]

    def dribble():
        if s.pending(SLOW) < 100:
            for _ in range(8):
                s.send(SLOW)
        sub.poll(6)
        streams.poll()
        return len(s.sent[SLOW]) >= 3000   # 60 KB through an allocation of at most 8 KiB

    assert wait_until(dribble, interval=0)
    s.catch_up(SLOW)
    s.catch_up(FAST)
    assert s.received(SLOW) == s.sent[SLOW] and s.received(FAST) == s.sent[FAST]
    counters = streams.counters()
    assert counters["frames"] == len(s.sent[SLOW]) + len(s.sent[FAST])
    assert (counters["slow_consumers_disconnected"], counters["dropped_slow_consumer"], counters["unsent"]) == (0, 0, 0)
    streams.close()


@pytest.mark.parametrize("named, term_length, expected", [
    ("", 64 << 10, 64 << 10),                          # the venue's term length is added
    ("|term-length=131072", 64 << 10, 128 << 10),      # the client's own choice stays
])
def test_publications_get_the_venue_term_length_unless_the_channel_names_one(client, named, term_length, expected):
    (port,) = free_udp_ports(1)
    channel = udp_channel(port) + named
    streams = PrivateStreams(client, 4, term_length=term_length)
    try:
        streams.negotiate(TRANSPORT, negotiate(channel))
        sub, collector = subscribe(client, udp_channel(port))
        streams.send(TRANSPORT, frames(1)[0])
        assert pump(streams, sub, collector, 1)
        assert streams.publications()[TRANSPORT][1] == channel      # as the client named it
        assert streams.publication_term_length(TRANSPORT) == expected
        assert streams.term_length == term_length
    finally:
        streams.close()


@pytest.mark.parametrize("term_length", [1000, 32 << 10, (64 << 10) + 1])
def test_term_length_must_be_a_power_of_two_of_64_kib_or_more(client, term_length):
    with pytest.raises(ValueError, match=f"term_length {term_length} must be a power of two"):
        PrivateStreams(client, 4, term_length=term_length)
