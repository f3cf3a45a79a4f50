"""Prometheus exposition of the engine loop's counters."""
from prometheus_client import generate_latest

from lob.metrics import EngineMetrics
from lob.service import status_line
from lob.service_loop import LATENCY_BOUNDS_NS, TEMPLATE_OTHER


def snapshot(**overrides):
    buckets = [0] * (len(LATENCY_BOUNDS_NS) + 1)
    buckets[2], buckets[5], buckets[-1] = 3, 1, 1
    stream = {"frames": 0, "bytes": 0, "back_pressure_events": 0, "not_connected": 0, "unsent": 0, "errors": 0}
    private = {"frames": 6, "bytes": 700, "back_pressure_events": 2, "dropped_unconnected": 4, "unrouted": 3,
               "no_route": 1, "unsent": 0, "errors": 0, "opened": 3, "closed": 1, "add_failures": 0,
               "limit_refused": 2, "channel_refused": 1, "open": 2, "slow_consumers_disconnected": 1,
               "dropped_slow_consumer": 5}
    s = {"frames_in": 6, "bytes_in": 400, "core_errors": 0, "forged": 2,
         "records": {"ticks": 40, "starts": 1, "transports_lost": 1},
         "in_by_template": {1: 4, 2: 1, TEMPLATE_OTHER: 1}, "out_by_template": {60: 5, 69: 1, 20: 4, 21: 1},
         "rejects_by_reason": {8: 1, 5: 2}, "trades": 1,
         "streams": {"execution": {"frames": 6, "bytes": 700, "back_pressure_events": 2, "not_connected": 4,
                                   "unsent": 0, "errors": 0},
                     "market_data": {**stream, "frames": 3, "bytes": 300, "not_connected": 2},
                     "drop_copy": {**stream, "frames": 9}},
         "private": private,
         "sessions": {"established": 2, "establishments": 3, "claims_rejected": 1, "auth_failures": 2,
                      "unauthenticated": 5, "throttled": 7, "gaps": 0, "retransmitted": 0, "timeouts": 0,
                      "canceled_on_disconnect": 0},
         "service_buckets": buckets, "service_ns_sum": 5_000_000, "service_ns_max": 4_000_000}
    s.update(overrides)
    return s


def test_collector_exposes_the_latest_snapshot():
    metrics = EngineMetrics(LATENCY_BOUNDS_NS, other_template=TEMPLATE_OTHER)
    assert generate_latest(metrics.registry) == b""
    metrics.update(snapshot())
    text = generate_latest(metrics.registry).decode()
    for line in ('lob_messages_in_total{type="NewOrderSingle"} 4.0', 'lob_messages_in_total{type="other"} 1.0',
                 'lob_messages_out_total{type="MessageReject"} 1.0', 'lob_messages_out_total{type="Trade"} 1.0',
                 'lob_messages_out_total{type="ExecutionReportNew"} 5.0', 'lob_published_total{stream="drop_copy"} 9.0',
                 'lob_sessions_established 2.0', 'lob_session_claims_rejected_total 1.0',
                 'lob_unauthenticated_messages_total 5.0', 'lob_throttled_total 7.0',
                 'lob_private_publications_open 2.0', 'lob_private_publications_total{event="limit_refused"} 2.0',
                 'lob_execution_unsent_total{why="session_disconnected"} 3.0',
                 'lob_execution_unsent_total{why="no_publication"} 1.0', 'lob_forged_engine_records_total 2.0',
                 'lob_execution_unsent_total{why="slow_consumer"} 5.0', 'lob_slow_consumers_disconnected_total 1.0',
                 'lob_engine_records_total{kind="tick"} 40.0', 'lob_engine_records_total{kind="transport_lost"} 1.0',
                 'lob_not_connected_drops_total{stream="execution"} 4.0',
                 'lob_rejects_total{reason="MalformedFrame"} 1.0', 'lob_rejects_total{reason="PriceOffTick"} 2.0',
                 'lob_trades_total 1.0', 'lob_published_total{stream="market_data"} 3.0',
                 'lob_back_pressure_events_total{stream="execution"} 2.0',
                 'lob_not_connected_drops_total{stream="market_data"} 2.0', 'lob_inbound_bytes_total 400.0',
                 'lob_service_time_seconds_count 5.0', 'lob_service_time_seconds_sum 0.005',
                 'lob_service_time_seconds_bucket{le="+Inf"} 5.0'):
        assert line in text, line
    # cumulative buckets: 3 below 512 ns (bucket 2), 4 below 4096 ns (bucket 5)
    assert 'lob_service_time_seconds_bucket{le="5.12e-07"} 3.0' in text
    assert 'lob_service_time_seconds_bucket{le="4.096e-06"} 4.0' in text
    assert 'lob_service_time_seconds_bucket{le="2.56e-07"} 0.0' in text


def test_status_line():
    before = snapshot(frames_in=2)
    line = status_line(snapshot(), before, 2.0)
    assert line == ("in 6 (+4, 2/s) | out exec 6 md 3 | rejects 3 | trades 1"
                    " | sessions 2 established, 1 claims rejected, 5 unauthenticated, 7 throttled"
                    " | publications 2 | dropped unconnected 4 | slow consumers disconnected 1"
                    " | back-pressure exec 2 md 0 | no subscriber md 2"
                    " | forged 2")
    assert "errors" not in line and "errors 1" in status_line(snapshot(core_errors=1), None, 0)
    assert "forged" not in status_line(snapshot(forged=0), None, 0)


RECOVERY = {"snapshots": 12, "messages": 30, "bytes": 9000, "requests": 4, "requests_unknown": 1,
            "requests_malformed": 2, "back_pressure_events": 0, "not_connected": 0, "errors": 0}


def test_status_line_with_market_data_recovery():
    line = status_line(snapshot(forged=0, recovery=RECOVERY), None, 0)
    assert line.endswith(" | no subscriber md 2 | md snapshots 12 (30 messages), requests 4")


def test_market_data_recovery_metrics():
    metrics = EngineMetrics(LATENCY_BOUNDS_NS, other_template=TEMPLATE_OTHER)
    metrics.update(snapshot())
    assert "lob_md_recovery" not in generate_latest(metrics.registry).decode()
    metrics.update(snapshot(recovery=RECOVERY))
    text = generate_latest(metrics.registry).decode()
    for line in ("lob_md_recovery_snapshots_total 12.0", "lob_md_recovery_messages_total 30.0",
                 'lob_md_recovery_requests_total{result="read"} 4.0',
                 'lob_md_recovery_requests_total{result="unknown_instrument"} 1.0',
                 'lob_md_recovery_requests_total{result="malformed"} 2.0'):
        assert line in text, line
