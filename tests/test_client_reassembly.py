"""Messages longer than one frame arrive whole through lob.client.reassembly over real Aeron UDP on
127.0.0.1: exact bytes, in order, from two publications whose fragments interleave."""
import os
import time

import pyaeron
import pytest

from lob.client.reassembly import MessagePoller
from lob.transport.driver import free_udp_ports

from aeron_helpers import WAIT, media_driver, udp_channel, wait_until  # noqa: F401  (fixture)

STREAM = 77
PAYLOAD_PER_FRAME = 1376     # the default MTU (1,408) less the 32-byte frame header


@pytest.fixture
def aeron(media_driver):
    client = pyaeron.Aeron(dir=media_driver.dir)
    try:
        yield client
    finally:
        client.close()


def offer(publication, message):
    deadline = time.monotonic() + WAIT
    while publication.offer(message) is not True:
        assert time.monotonic() < deadline, "publication stayed back-pressured"
        time.sleep(0.0005)


def test_messages_of_every_size_arrive_whole_and_in_order(aeron):
    channel = udp_channel(free_udp_ports(1)[0])
    received = []
    poller = MessagePoller(aeron.add_subscription(channel, STREAM), lambda buffer, header: received.append(
        (header.session_id, bytes(buffer))))
    first = aeron.add_exclusive_publication(channel, STREAM)
    second = aeron.add_exclusive_publication(channel, STREAM)
    assert wait_until(lambda: first.is_connected and second.is_connected and poller.subscription.image_count == 2)
    sizes = [1, PAYLOAD_PER_FRAME, PAYLOAD_PER_FRAME + 1, 4640, 100, 3 * PAYLOAD_PER_FRAME, 60_000, 7]
    sent = {first.session_id: [], second.session_id: []}
    for size in sizes:   # one message of each publication in turn: fragments of both images interleave
        for publication in (first, second):
            message = os.urandom(size)
            offer(publication, message)
            sent[publication.session_id].append(message)
    assert wait_until(lambda: poller.poll(7) >= 0 and len(received) == 2 * len(sizes))
    for session_id, messages in sent.items():
        assert [m for s, m in received if s == session_id] == messages
    assert poller.reassembled == 2 * sum(size > PAYLOAD_PER_FRAME for size in sizes)
    assert poller.orphaned == 0
    poller.close()


def test_a_subscriber_joining_mid_message_skips_only_that_message():
    """Fragments whose first fragment this subscriber never saw are counted, not delivered as a message."""
    class Header:
        def __init__(self, flags):
            self.flags, self.session_id = flags, 5

    received = []
    poller = MessagePoller(None, lambda buffer, header: received.append(bytes(buffer)))
    poller._on_fragment(b"tail-of-an-earlier-message", Header(0x00))
    poller._on_fragment(b"its-end", Header(0x40))
    poller._on_fragment(b"whole", Header(0xC0))
    poller._on_fragment(b"begin-", Header(0x80))
    poller._on_fragment(b"middle-", Header(0x00))
    poller._on_fragment(b"end", Header(0x40))
    assert received == [b"whole", b"begin-middle-end"]
    assert (poller.orphaned, poller.reassembled) == (2, 1)
