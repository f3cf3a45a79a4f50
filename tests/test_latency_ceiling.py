"""The latency ceiling of bench_e2e.py (benchmarks/latency_ceiling.py: a pong process on a real driver,
paused and resumed between runs) and the round-trip breakdown (benchmarks/latency_breakdown.py) on
hand-made times. Counts and exact arithmetic, never timing bounds."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

from latency_breakdown import join, summarize  # noqa: E402
from latency_ceiling import CeilingStack  # noqa: E402
from lob.transport.driver import MediaDriver  # noqa: E402


def test_ceiling_pong_answers_every_message_and_survives_a_pause():
    with MediaDriver(client_liveness_timeout=60.0) as driver:
        stack = CeilingStack(driver.dir, reply_size=51, replies_per_ping=1.5, term_length=64 << 10,
                             order_entry_term_length=64 << 10)
        try:
            first = stack.measure([61, 37] * 500, 20_000)
            stack.pause()
            stack.resume()
            second = stack.measure([61] * 400, 20_000)
            closed = stack.closed_loop(69, 0.2, window=32, warmup=0.05)
            third = stack.measure([61] * 10, 20_000)     # open loop again after the closed loop
        finally:
            stack.close()
        assert stack.process.returncode == 0
    assert closed["lost"] == 0 and closed["sent"] > 0 and closed["per_s"] > 0
    for figures, n in ((first, 1000), (second, 400), (third, 10)):
        assert (figures["sent"], figures["lost"], figures["duplicated"], figures["unknown"]) == (n, 0, 0, 0)
        assert 0 < figures["p50_us"] <= figures["p99_us"] <= figures["p999_us"] <= figures["max_us"]
        assert 1.0 <= figures["replies_per_message"] <= 1.5
    assert stack.next_sequence == 1410 + closed["sent"]


def test_breakdown_splits_each_round_trip_exactly():
    # transport 7: Negotiate (40), then the two application messages, then a mass cancel (4)
    records = [
        (100, 110, 150, 7, 40, 0, 1, 0, 0, 0),
        (1_000, 1_010, 1_100, 7, 1, 0, 2, 3, 5, 0),
        (1_020, 1_030, 1_100, 7, 2, 1, 2, 3, 5, 0),
        (1_200, 1_210, 1_250, 7, 1, 0, 1, 0, 7, 0),
        (5_000, 5_010, 5_050, 7, 4, 0, 1, 0, 9, 0),
    ]
    send_ns, recv_ns = [900, 950, 1_000], [1_300, 1_400, 1_500]
    rows, joined = join(records, [7], [], send_ns, recv_ns, start_ns=800, period_ns=100)
    # held back while the run's messages were answered (5 -> 7), not by the mass cancel after them (9)
    assert joined == {"unmatched": 0, "extra_engine_records": 0, "exec_frames_held_back": 2}
    assert [(r["index"], r["total"], r["send_lag"], r["inbound"], r["engine"], r["outbound"], r["match"])
            for r in rows] == [(0, 500, 100, 100, 100, 200, 10), (1, 500, 50, 70, 80, 300, 10),
                               (2, 500, 0, 200, 50, 250, 10)]
    assert [(r["index_in_poll"], r["poll_messages"], r["idle_polls"]) for r in rows] == [(0, 2, 3), (1, 2, 3),
                                                                                         (0, 1, 0)]
    summary = summarize(rows, slowest_fraction=0.2)
    assert summary["slowest"]["messages"] == 1
    assert summary["all"]["outbound"]["share"] == pytest.approx(750 / 1500)
    assert summary["slowest_dominated_by"]["outbound"] == 1


def test_breakdown_matches_sessions_by_transport_and_order():
    records = [(10, 11, 20, 5, 1, 0, 2, 0, 0, 0), (12, 13, 20, 6, 1, 1, 2, 0, 0, 0),
               (30, 31, 40, 6, 2, 0, 1, 0, 0, 0)]
    # message 0 from session 1 (transport 6), message 1 from session 0 (transport 5), message 2 session 1
    rows, joined = join(records, [5, 6], [1, 0, 1], [1, 2, 3], [50, 60, 70], start_ns=0, period_ns=1)
    assert joined["unmatched"] == 0
    assert [(r["index"], r["session"], r["inbound"]) for r in rows] == [(0, 1, 12 - 1), (1, 0, 10 - 2), (2, 1, 30 - 3)]
