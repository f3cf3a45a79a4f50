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
                                     "aeron:udp?endpoint=127.0.0.1:1|" + "x" * 500, "aeron:udp?a=\x00b", ""])
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
