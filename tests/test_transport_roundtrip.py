"""lob.transport over real Aeron UDP on 127.0.0.1: Cython publications and subscriptions with C handlers."""
import struct
import threading

import pytest
from aeron_helpers import WAIT, client, media_driver, udp_channel  # noqa: F401  (fixtures)

from lob.transport.driver import free_udp_ports
from lob.transport.publication import BACK_PRESSURED, NOT_CONNECTED
from lob.transport.subscription import FrameCollector

STREAM = 3001


def connected_pair(client, **params):
    (port,) = free_udp_ports(1)
    channel = udp_channel(port, **params)
    subscription = client.add_subscription(channel, STREAM)
    publication = client.add_exclusive_publication(channel, STREAM)
    collector = FrameCollector()
    subscription.set_collector(collector)
    assert publication.wait_connected(WAIT) and subscription.wait_connected(WAIT)
    return publication, subscription, collector


def test_round_trip_through_the_c_handler(client):
    publication, subscription, collector = connected_pair(client)
    messages = [b"hello", bytes(range(200)), b"x" * 1000]
    for message in messages:
        assert publication.offer_retry(message, timeout=WAIT) > 0
    assert subscription.poll_until(collector, len(messages), WAIT) == len(messages)
    assert collector.drain() == [(publication.session_id, m) for m in messages]
    assert collector.drain() == []
    assert publication.position == publication.sender_position() or publication.sender_position() >= 0


def test_try_claim_commit_and_abort(client):
    publication, subscription, collector = connected_pair(client)
    claim = publication.try_claim(16)
    assert claim.length == 16
    memoryview(claim)[:] = b"0123456789abcdef"
    claim.commit()
    aborted = publication.try_claim(8)
    memoryview(aborted)[:] = b"--------"
    aborted.abort()
    with pytest.raises(ValueError):
        aborted.commit()
    assert publication.offer(b"after") > 0 or publication.offer_retry(b"after", timeout=WAIT) > 0
    assert subscription.poll_until(collector, 2, WAIT) == 2
    assert [m for _, m in collector.drain()] == [b"0123456789abcdef", b"after"]


def test_message_larger_than_the_mtu_is_reassembled(client):
    publication, subscription, collector = connected_pair(client)
    big = bytes(i % 251 for i in range(5 * publication.max_payload_length + 123))
    assert len(big) > publication.max_payload_length
    assert publication.offer_retry(big, timeout=WAIT) > 0
    assert publication.offer_retry(b"small", timeout=WAIT) > 0
    assert subscription.poll_until(collector, 2, WAIT) == 2
    assert collector.drain() == [(publication.session_id, big), (publication.session_id, b"small")]


def test_without_the_assembler_the_handler_sees_fragments(client):
    publication, subscription, _ = connected_pair(client)
    fragments = FrameCollector()
    subscription.set_collector(fragments, assemble=False)
    big = bytes(i % 253 for i in range(3 * publication.max_payload_length))
    assert publication.offer_retry(big, timeout=WAIT) > 0
    assert subscription.poll_until(fragments, 3, WAIT) == 3
    parts = [m for _, m in fragments.drain()]
    assert all(len(p) <= publication.max_payload_length for p in parts)
    assert b"".join(parts) == big


def test_burst_larger_than_the_term_window_arrives_complete_and_in_order(client):
    # 64 KiB terms: the log holds 192 KiB and the flow-control window is 32 KiB; the burst is 2.5 MiB.
    publication, subscription, collector = connected_pair(client, term_length=65536)
    count, size = 20000, 128
    assert count * size > 3 * publication.term_buffer_length
    results = []

    def publish():
        payload = bytearray(size)
        for sequence in range(count):
            struct.pack_into("<Q", payload, 0, sequence)
            results.append(publication.offer_retry(payload, timeout=WAIT))

    publisher = threading.Thread(target=publish)
    publisher.start()
    received = []
    while len(received) < count:
        before = len(received)
        subscription.poll_until(collector, collector.count + 1, WAIT)
        received.extend(collector.drain())
        if len(received) == before:
            break
    publisher.join(WAIT)
    assert not publisher.is_alive()
    assert all(r > 0 for r in results) and len(results) == count
    assert len(received) == count
    assert [struct.unpack_from("<Q", m)[0] for _, m in received] == list(range(count))
    assert all(len(m) == size for _, m in received)


def test_offer_results_without_a_subscriber(client):
    (port,) = free_udp_ports(1)
    publication = client.add_exclusive_publication(udp_channel(port), STREAM)
    assert publication.offer(b"nobody listens") == NOT_CONNECTED
    assert publication.offer_retry(b"nobody listens", retry_not_connected=False) == NOT_CONNECTED
    with pytest.raises(TimeoutError):
        publication.offer_retry(b"nobody listens", timeout=0.05)
    assert BACK_PRESSURED == -2


def test_closing_the_client_closes_its_resources(media_driver):
    from lob.transport.client import Client
    c = Client(media_driver.dir)
    publication, subscription, _ = connected_pair(c)
    c.close()
    assert publication.is_closed and subscription.is_closed and c.is_closed
    with pytest.raises(RuntimeError):
        publication.offer(b"x")
    with pytest.raises(RuntimeError):
        subscription.poll()
    with pytest.raises(RuntimeError):
        c.add_subscription(udp_channel(free_udp_ports(1)[0]), STREAM)
    c.close()
