"""The load generator's sessions and C loop (lob.tools.loadgen_session, lob.tools.loadgen_loop) against
`lob engine` over real Aeron UDP on 127.0.0.1: logon, private execution streams, exact counts and bytes,
logoff.

Counts only (sent, acked, rejected, trades, lost, duplicated, bytes), checked against what the workload's
reference book expects; never times.
"""
import dataclasses

import pytest

from lob.sbe.messages import BLOCK_LENGTHS, HEADER_LENGTH
from lob.tools import loadgen
from aeron_helpers import running_stack
from lob.tools.loadgen_session import LogonError
from lob.tools.workload import WorkloadSpec, generate
from lob.transport.client import Client

WAIT = 30.0


def size(name):
    return HEADER_LENGTH + BLOCK_LENGTHS[name]


def framed(length):
    return (32 + length + 31) // 32 * 32


@pytest.fixture(scope="module")
def stack():
    yield from running_stack(instruments={1: 1, 2: 1})


@pytest.fixture
def client(stack):
    c = Client(stack.aeron_dir, client_name="lob-test-loadgen")
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def credentials(stack):
    return stack.sessions()


@pytest.mark.parametrize("mode", [{"rate": 20_000}, {"window": 64}], ids=["open-loop", "closed-loop"])
def test_exact_counts_and_bytes_against_the_workload(stack, client, credentials, mode):
    spec = WorkloadSpec(orders=5_000, seed=31, first_instrument=1)
    workload = generate(spec)
    encoded = workload.encode()
    e = workload.expected
    with loadgen.LoadGenerator(client, stack.config, encoded, credentials, logon_timeout=WAIT) as generator:
        session = generator.sessions[0]
        assert session.next_seq >= 1 and session.next_recv_seq >= 1
        first_seq = session.next_seq
        loop = generator.loop()
        times = loop.run(drain_timeout=WAIT, **mode)
        counts = loop.counts()
        assert times["sent"] == 5_000
        assert (counts["answered"], counts["acked"], counts["rejected"]) == (5_000, 5_000, 0)
        assert (counts["duplicated"], counts["unknown_reports"], counts["unsolicited_cancels"]) == (0, 0, 0)
        assert (counts["trades"], counts["trade_reports"]) == (e.fills, 2 * e.fills)
        assert (counts["message_rejects"], counts["exec_seq_gaps"], counts["terminations"]) == (0, 0, 0)
        # Our private stream carries our reports only: one answer per message and two per fill.
        reports = {"ExecutionReportNew": e.new_orders, "ExecutionReportCanceled": e.cancels,
                   "ExecutionReportTrade": 2 * e.fills}
        assert counts["reports_received"] - counts["heartbeats"] == sum(reports.values())
        assert counts["report_bytes"] - counts["heartbeats"] * size("Sequence") == sum(
            size(name) * count for name, count in reports.items())
        assert counts["report_framed_bytes"] - counts["heartbeats"] * framed(size("Sequence")) == sum(
            framed(size(name)) * count for name, count in reports.items())
        assert loop.next_seqs() == [first_seq + sum(reports.values())]
        assert bytes(loop.responses) == b"\x01" * 5_000   # exactly one first response each: none lost
        assert all(loop.recv_ns)
        period = 1e9 / mode["rate"] if "rate" in mode else 0.0
        sent_at = ([times["start_ns"] + int(i * period) for i in range(5_000)] if period
                   else list(loop.send_ns))
        assert list(loop.round_trips(period, times["start_ns"])) == [r - s for r, s in zip(loop.recv_ns, sent_at)]
        assert loop.mass_cancel(loadgen.mass_cancel_frames(spec.first_cl_ord_id, 5_000, 1), timeout=WAIT)
        assert loop.counts()["mass_cancel_reports"] == 1
        assert loop.counts()["exec_seq_gaps"] == 0
    assert generator.terminate_reasons == ["Finished"]


def test_rejects_are_counted_as_answers(stack, client, credentials):
    # Instrument 9 is not listed by the engine: every new order is rejected, and every cancel (of an
    # order the engine never accepted) gets an OrderCancelReject.
    spec = WorkloadSpec(orders=2_000, seed=32, first_instrument=9)
    workload = generate(spec)
    with loadgen.LoadGenerator(client, stack.config, workload.encode(), credentials,
                               logon_timeout=WAIT) as generator:
        loop = generator.loop()
        loop.run(window=32, drain_timeout=WAIT)
        counts = loop.counts()
        e = workload.expected
        assert (counts["answered"], counts["acked"], counts["rejected"]) == (2_000, 0, 2_000)
        assert (counts["duplicated"], counts["trades"], counts["trade_reports"], counts["unknown_reports"]) == (
            0, 0, 0, 0)
        assert counts["report_bytes"] == (e.new_orders * size("ExecutionReportRejected")
                                          + e.cancels * size("OrderCancelReject"))


def test_several_sessions_each_on_its_own_stream(stack, client, credentials):
    spec = WorkloadSpec(orders=3_000, seed=33, sessions=3, instruments=2, first_instrument=1)
    workload = generate(spec)
    with loadgen.LoadGenerator(client, stack.config, workload.encode(), credentials,
                               logon_timeout=WAIT) as generator:
        assert generator.session_ids == [c.session_id for c in credentials[:3]]
        assert len({s.channel for s in generator.sessions}) == 3
        loop = generator.loop()
        loop.run(window=48, drain_timeout=WAIT)
        counts = loop.counts()
        # A report of one session's order on another session's stream would count as unknown.
        assert (counts["answered"], counts["duplicated"], counts["unknown_reports"]) == (3_000, 0, 0)
        assert counts["acked"] + counts["rejected"] == 3_000
        assert counts["acked"] >= workload.expected.new_orders
        assert counts["exec_seq_gaps"] == 0
        assert loop.mass_cancel(loadgen.mass_cancel_frames(spec.first_cl_ord_id, 3_000, 3), timeout=WAIT)
        assert loop.counts()["mass_cancel_reports"] == 3
    assert generator.terminate_reasons == ["Finished"] * 3


def test_histogram_from_latency_counts_equals_recording_every_value(stack, client, credentials):
    spec = WorkloadSpec(orders=2_000, seed=34, first_instrument=2)
    with loadgen.LoadGenerator(client, stack.config, generate(spec).encode(), credentials,
                               logon_timeout=WAIT) as generator:
        loop = generator.loop()
        times = loop.run(rate=10_000, drain_timeout=WAIT)
        loop.mass_cancel(loadgen.mass_cancel_frames(spec.first_cl_ord_id, 2_000, 1), timeout=WAIT)
    period = 1e9 / 10_000
    grouped, each = loadgen.new_histogram(), loadgen.new_histogram()
    for value, count in loop.latency_counts(period, times["start_ns"], grouped.sub_bucket_half_count_magnitude,
                                            grouped.unit_magnitude):
        grouped.record_value(value, count)
    for i, received in enumerate(loop.recv_ns):
        each.record_value(max(1, received - (times["start_ns"] + int(i * period))))
    assert grouped.get_total_count() == each.get_total_count() == 2_000
    assert list(grouped.counts) == list(each.counts)
    assert (grouped.get_min_value(), grouped.get_max_value()) == (each.get_min_value(), each.get_max_value())


def test_a_session_logs_on_again_and_its_sequences_continue(stack, client, credentials):
    spec = WorkloadSpec(orders=500, seed=36, first_instrument=1)
    encoded = generate(spec).encode()
    seen, after = [], []
    for _ in range(2):
        with loadgen.LoadGenerator(client, stack.config, encoded, credentials, logon_timeout=WAIT) as generator:
            session = generator.sessions[0]
            seen.append((session.next_seq, session.next_recv_seq))
            report, _ = generator.run(window=32, drain_timeout=WAIT)
            assert (report.sent, report.lost, report.duplicated, report.exec_seq_gaps) == (500, 0, 0, 0)
            after.append(session.next_seq)
    # Logged on again, the session continues both ways: the engine's stream where it left off (cancels on
    # disconnect, if any, were numbered while it was away) and the count of our application messages.
    (seq1, recv1), (seq2, recv2) = seen
    assert seq2 >= after[0] > seq1 and after[1] > seq2
    assert recv2 == recv1 + 500 + 1   # the workload and the mass cancel


def test_logon_rejects_name_the_reason(stack, client, credentials):
    encoded = generate(WorkloadSpec(orders=10, seed=37)).encode()
    wrong_secret = dataclasses.replace(credentials[0], secret=b"\x00" * 32)
    unknown = dataclasses.replace(credentials[0], session_id=999_999)
    for creds, reason in ((wrong_secret, "InvalidSignature"), (unknown, "UnknownSession")):
        with pytest.raises(LogonError, match=f"Negotiate rejected: {reason}"):
            loadgen.LoadGenerator(client, stack.config, encoded, [creds], logon_timeout=WAIT)
    with loadgen.LoadGenerator(client, stack.config, encoded, credentials, logon_timeout=WAIT):
        with pytest.raises(LogonError, match="Negotiate rejected: SessionInUse"):
            loadgen.LoadGenerator(client, stack.config, encoded, credentials, logon_timeout=WAIT)


def test_no_engine_is_a_clear_timeout(client, credentials):
    from lob.config import Channel, EngineConfig
    from lob.transport.driver import free_port_base

    config = EngineConfig(order_entry=Channel(f"aeron:udp?endpoint=127.0.0.1:{free_port_base(1)}", 1001))
    encoded = generate(WorkloadSpec(orders=10, seed=38)).encode()
    with pytest.raises(LogonError, match="no engine subscribed to order entry within 0.5s"):
        loadgen.LoadGenerator(client, config, encoded, credentials, logon_timeout=0.5)
