"""The echo loops of benchmarks/bench_echo.py (lob.transport.echo) over real Aeron UDP on 127.0.0.1.

The plain pong returns every frame unchanged; the shaped pong answers each ping with reply_size-byte
replies, replies_per_ping on average. Counts and bytes only, never times.
"""
import threading

import pytest

from aeron_helpers import WAIT, client, free_port_base, media_driver, udp_channel  # noqa: F401  (fixtures)
from lob.transport.echo import run_ping, run_ping_open, run_pong, send_stop

PING_STREAM, PONG_STREAM = 3001, 3002


def ping_pong_round(client, ping, **pong_options):
    """`ping(subscription, publication)` against a pong on a thread; returns (ping result, pong result)."""
    port = free_port_base(2)
    ping_pub = client.add_exclusive_publication(udp_channel(port), PING_STREAM)
    ping_sub = client.add_subscription(udp_channel(port + 1), PONG_STREAM)
    pong_sub = client.add_subscription(udp_channel(port), PING_STREAM)
    pong_pub = client.add_exclusive_publication(udp_channel(port + 1), PONG_STREAM)
    try:
        assert ping_pub.wait_connected(WAIT) and pong_pub.wait_connected(WAIT)
        pong_result = {}
        pong = threading.Thread(target=lambda: pong_result.update(
            run_pong(pong_sub, pong_pub, idle_timeout=WAIT, **pong_options)))
        pong.start()
        try:
            ping_result = ping(ping_sub, ping_pub)
        finally:
            assert send_stop(ping_pub)
            pong.join(WAIT)
        assert not pong.is_alive()
        return ping_result, pong_result
    finally:
        for resource in (ping_pub, ping_sub, pong_sub, pong_pub):
            resource.close()


def echo_round(client, size, **pong_options):
    """Ping for a moment against a pong on a thread; returns (ping result, pong result)."""
    return ping_pong_round(client, lambda sub, pub: run_ping(sub, pub, size, 0.3, window=32, warmup=0.0),
                           **pong_options)


def test_plain_echo_returns_every_frame_in_order(client):
    ping, pong = echo_round(client, 64)
    assert ping["sent"] > 0
    assert (ping["received"], ping["lost"], ping["out_of_order"]) == (ping["sent"], 0, 0)
    assert (ping["extra_replies"], ping["reply_bytes"]) == (0, 64 * ping["received"])
    assert pong["stopped"] and pong["failed"] == 0
    assert (pong["echoed"], pong["extra_replies"]) == (ping["sent"] + 1, 0)   # + the STOP frame


@pytest.mark.parametrize("replies_per_ping, extra_of", [(1.5, lambda n: n // 2), (3.0, lambda n: 2 * n)])
def test_shaped_pong_sends_the_asked_replies(client, replies_per_ping, extra_of):
    ping, pong = echo_round(client, 61, reply_size=100, replies_per_ping=replies_per_ping)
    n = ping["sent"]
    assert n > 0
    assert (ping["received"], ping["lost"], ping["out_of_order"]) == (n, 0, 0)
    assert pong["stopped"] and pong["failed"] == 0
    assert pong["extra_replies"] == extra_of(n)                         # no extras for the STOP frame
    assert pong["echoed"] == n + 1 + extra_of(n)
    # The ping stops reading once every first reply is in: extras of the last pings may be unread.
    assert ping["extra_replies"] <= pong["extra_replies"]
    assert ping["reply_bytes"] == 100 * (ping["received"] + ping["extra_replies"])


def test_shaped_pong_rejects_impossible_shapes(client):
    port = free_port_base(2)
    sub = client.add_subscription(udp_channel(port), PING_STREAM)
    pub = client.add_exclusive_publication(udp_channel(port + 1), PONG_STREAM)
    try:
        with pytest.raises(ValueError, match="reply_size 8"):
            run_pong(sub, pub, reply_size=8)
        with pytest.raises(ValueError, match="replies_per_ping 0.5"):
            run_pong(sub, pub, reply_size=64, replies_per_ping=0.5)
    finally:
        sub.close()
        pub.close()


def open_round(client, lengths, rate, **pong_options):
    """run_ping_open against a pong on a thread; returns (ping result, pong result)."""
    return ping_pong_round(client, lambda sub, pub: run_ping_open(sub, pub, lengths, rate, first_sequence=1000,
                                                                  drain_timeout=WAIT), **pong_options)


def test_open_loop_ping_answers_every_message_of_its_own_size(client):
    lengths = [61, 37, 61, 16] * 250
    ping, pong = open_round(client, lengths, 20_000)
    n = len(lengths)
    assert (ping["sent"], ping["answered"], ping["lost"], ping["duplicated"], ping["unknown"]) == (n, n, 0, 0, 0)
    assert ping["reply_bytes"] == sum(lengths)          # the plain pong returns each frame as it came
    assert (ping["failed"], ping["next_sequence"], ping["period_ns"]) == (0, 1000 + n, 50_000.0)
    recv = ping["recv_ns"]
    assert len(recv) == n
    # every answer came after its scheduled send (causality, not a timing bound)
    assert all(recv[i] >= ping["start_ns"] + int(i * ping["period_ns"]) for i in range(n))
    assert pong["echoed"] == n + 1 and pong["failed"] == 0


def test_open_loop_ping_against_a_shaped_pong(client):
    lengths = [61] * 1000
    ping, pong = open_round(client, lengths, 20_000, reply_size=51, replies_per_ping=1.5)
    assert (ping["sent"], ping["answered"], ping["lost"], ping["duplicated"], ping["unknown"]) == (1000, 1000, 0, 0, 0)
    assert pong["extra_replies"] == 500 and pong["echoed"] == 1000 + 1 + 500
    assert ping["extra_replies"] <= 500
    assert ping["reply_bytes"] == 51 * (1000 + ping["extra_replies"])


def test_open_loop_ping_refuses_short_frames_and_bad_rates(client):
    port = free_port_base(2)
    pub = client.add_exclusive_publication(udp_channel(port), PING_STREAM)
    sub = client.add_subscription(udp_channel(port + 1), PONG_STREAM)
    try:
        with pytest.raises(ValueError, match="frame 1: 15 bytes"):
            run_ping_open(sub, pub, [16, 15], 1000)
        with pytest.raises(ValueError, match="rate must be positive"):
            run_ping_open(sub, pub, [16], 0)
    finally:
        sub.close()
        pub.close()
