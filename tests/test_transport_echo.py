"""The echo loops of benchmarks/bench_echo.py (lob.transport.echo) over real Aeron UDP on 127.0.0.1.

The plain pong returns every frame unchanged; the shaped pong answers each ping with reply_size-byte
replies, replies_per_ping on average. Counts and bytes only, never times.
"""
import threading

import pytest

from aeron_helpers import WAIT, client, free_port_base, media_driver, udp_channel  # noqa: F401  (fixtures)
from lob.transport.echo import run_ping, run_pong, send_stop

PING_STREAM, PONG_STREAM = 3001, 3002


def echo_round(client, size, **pong_options):
    """Ping for a moment against a pong on a thread; returns (ping result, pong result)."""
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
            ping = run_ping(ping_sub, ping_pub, size, 0.3, window=32, warmup=0.0)
        finally:
            assert send_stop(ping_pub)
            pong.join(WAIT)
        assert not pong.is_alive()
        return ping, pong_result
    finally:
        for resource in (ping_pub, ping_sub, pong_sub, pong_pub):
            resource.close()


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
