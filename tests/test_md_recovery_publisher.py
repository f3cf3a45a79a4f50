"""lob.md_recovery over real Aeron UDP, stepped by hand with chosen clock values: the snapshot loop,
requests coalesced per instrument and rate limited, bad requests counted, nothing walked without a
subscriber. Exact frames: they are Engine.book_snapshot_parts, byte for byte."""
import time

import pytest
from aeron_helpers import WAIT, client, media_driver, udp_channel  # noqa: F401  (fixtures)

from engine_helpers import Harness, nos
from lob.md_recovery import MarketDataRecovery
from lob.sbe import messages
from lob.transport.driver import free_udp_ports
from lob.transport.subscription import FrameCollector

MS = 1_000_000
SNAPSHOTS, REQUESTS = 3005, 3006


@pytest.fixture
def venue():
    h = Harness({1: 1, 7: 5})
    for i in range(5):
        h.send(nos(10 + i, "Buy", 90 - i, 1 + i))
        h.send(nos(20 + i, "Sell", 110 + i, 2))
    h.send(nos(30, "Sell", 500, 3, instrumentId=7))
    h.engine.take_market_data()
    return h


def wired(client, engine, **options):
    snap_port, request_port = free_udp_ports(2)
    publication = client.add_exclusive_publication(udp_channel(snap_port), SNAPSHOTS)
    subscription = client.add_subscription(udp_channel(snap_port), SNAPSHOTS)
    collector = FrameCollector()
    subscription.set_collector(collector)
    requests = client.add_subscription(udp_channel(request_port), REQUESTS)
    asker = client.add_exclusive_publication(udp_channel(request_port), REQUESTS)
    assert publication.wait_connected(WAIT) and asker.wait_connected(WAIT)
    recovery = MarketDataRecovery(engine, publication, requests, **options)
    return recovery, asker, subscription, collector


def received(subscription, collector, total):
    """The frames received since the last call, once `total` have come since the start (and a little
    more time has passed, for any that should not have come)."""
    assert subscription.poll_until(collector, total, WAIT) == total
    time.sleep(0.05)
    subscription.poll()
    return [frame for _, frame in collector.drain()]


def ask(asker, *frames):
    for frame in frames:
        assert asker.offer_retry(frame, timeout=WAIT) > 0


def request(instrument):
    return messages.encode("SnapshotRequest", instrumentId=instrument)


def poll_until_requests(recovery, now, count):
    """Poll at `now` until `count` requests (good or bad) have been read."""
    deadline = time.monotonic() + WAIT
    while recovery.counters()["requests"] + recovery.counters()["requests_malformed"] < count:
        assert time.monotonic() < deadline, recovery.counters()
        recovery.poll(now)


def test_the_loop_publishes_every_instrument_once_per_interval(client, venue):
    recovery, _, subscription, collector = wired(client, venue.engine, interval=1.0, levels_per_message=4)
    parts_1, parts_7 = venue.engine.book_snapshot_parts(1, 4), venue.engine.book_snapshot_parts(7, 4)
    assert (len(parts_1), len(parts_7)) == (3, 1)
    assert recovery.poll(5 * MS) == 1           # instrument 1 (three parts) ...
    assert recovery.poll(5 * MS) == 1           # ... then instrument 7, one per turn
    assert recovery.poll(6 * MS) == 0           # the loop is done until 1.005 s
    assert received(subscription, collector, 4) == parts_1 + parts_7
    assert recovery.poll(1004 * MS) == 0
    assert recovery.poll(1005 * MS) == 1
    assert received(subscription, collector, 7) == parts_1
    assert recovery.counters() == {"snapshots": 3, "messages": 7, "bytes": 2 * sum(map(len, parts_1)) + len(parts_7[0]),
                                   "requests": 0, "requests_unknown": 0, "requests_malformed": 0,
                                   "back_pressure_events": 0, "not_connected": 0, "errors": 0}


def test_requests_are_coalesced_per_instrument_and_rate_limited(client, venue):
    recovery, asker, subscription, collector = wired(client, venue.engine, interval=0, request_gap=0.1)
    whole_1, whole_7 = venue.engine.book_snapshot_parts(1, 62), venue.engine.book_snapshot_parts(7, 62)
    ask(asker, request(1), request(1), request(1), request(99), b"\x01\x02", request(0))
    poll_until_requests(recovery, 10 * MS, 6)
    while recovery.poll(10 * MS):               # 7 is wanted too (instrument 0: every one)
        pass
    # three asks for 1 and one for every instrument: one snapshot each, the unknown and the short one counted
    assert received(subscription, collector, 2) == whole_1 + whole_7
    counters = recovery.counters()
    assert (counters["requests"], counters["requests_unknown"], counters["requests_malformed"]) == (5, 1, 1)
    ask(asker, request(1))
    poll_until_requests(recovery, 50 * MS, 7)   # within the gap: wanted, not sent
    assert recovery.poll(50 * MS) == 0 and received(subscription, collector, 2) == []
    assert recovery.poll(110 * MS) == 1         # the gap has passed: once
    assert recovery.poll(500 * MS) == 0
    assert received(subscription, collector, 3) == whole_1
    assert recovery.counters()["snapshots"] == 3


def test_nothing_is_walked_without_a_subscriber(client, venue):
    (port,) = free_udp_ports(1)
    publication = client.add_exclusive_publication(udp_channel(port), SNAPSHOTS)
    recovery = MarketDataRecovery(venue.engine, publication, None, interval=0.001)
    for now in range(0, 100 * MS, MS):
        assert recovery.poll(now) == 0
    assert recovery.counters()["snapshots"] == 0 and recovery.counters()["messages"] == 0


def test_options_are_checked(client, venue):
    (port,) = free_udp_ports(1)
    publication = client.add_exclusive_publication(udp_channel(port), SNAPSHOTS)
    assert MarketDataRecovery(venue.engine, publication).levels_per_message == 62   # one frame at MTU 1408
    with pytest.raises(ValueError, match="levels per message 70000 must be in 1..65535"):
        MarketDataRecovery(venue.engine, publication, levels_per_message=70000)
    with pytest.raises(ValueError, match="longer than the recovery publication takes"):
        MarketDataRecovery(venue.engine, publication, levels_per_message=60000)
    with pytest.raises(ValueError, match="must be >= 0"):
        MarketDataRecovery(venue.engine, publication, interval=-1)
