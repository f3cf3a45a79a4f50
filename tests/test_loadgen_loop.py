"""The load generator's C loop (lob.tools.loadgen_loop) against `lob engine` over real Aeron UDP on 127.0.0.1.

Counts only (sent, acked, rejected, trades, lost, duplicated), checked against what the workload's
reference book expects; never times.
"""
import pytest

from lob.sbe.messages import BLOCK_LENGTHS, HEADER_LENGTH
from lob.tools import loadgen
from lob.tools.demo import LocalStack
from lob.tools.loadgen_loop import LoadLoop
from lob.tools.workload import WorkloadSpec, generate
from lob.transport.client import Client


@pytest.fixture(scope="module")
def stack():
    s = LocalStack(instruments={1: 1, 2: 1})
    try:
        s.start()
        yield s
    finally:
        s.close()
        assert not s.leftovers()
    assert s.exit_code == 0, "\n".join(s.lines)


@pytest.fixture
def client(stack):
    c = Client(stack.aeron_dir, client_name="lob-test-loadgen")
    try:
        yield c
    finally:
        c.close()


def make_loop(client, stack, encoded):
    """A LoadLoop on fresh publications (new sessions) and a fresh execution-report subscription."""
    execution = loadgen.exec_subscription(client, stack.config)
    generator = loadgen.LoadGenerator(client, stack.config, encoded, subscription=execution)
    loop = LoadLoop(generator.sub, generator.pubs, generator.session_ids, encoded)
    return generator, execution, loop


def mass_cancel_frames(generator, n):
    messages = generator.encoded_codec()
    base = generator.workload.spec.first_cl_ord_id
    return [messages.encode("OrderMassCancelRequest", clOrdId=base + n + s, instrumentId=0)
            for s in range(len(generator.pubs))]


@pytest.mark.parametrize("mode", [{"rate": 20_000}, {"window": 64}], ids=["open-loop", "closed-loop"])
def test_exact_counts_against_the_workload(stack, client, mode):
    spec = WorkloadSpec(orders=5_000, seed=31, first_instrument=1)
    workload = generate(spec)
    encoded = workload.encode()
    e = workload.expected
    generator, execution, loop = make_loop(client, stack, encoded)
    try:
        times = loop.run(drain_timeout=30.0, **mode)
        counts = loop.counts()
        assert times["sent"] == 5_000
        assert (counts["answered"], counts["acked"], counts["rejected"]) == (5_000, 5_000, 0)
        assert (counts["duplicated"], counts["unknown_reports"], counts["unsolicited_cancels"]) == (0, 0, 0)
        assert (counts["trades"], counts["trade_reports"]) == (e.fills, 2 * e.fills)
        assert (counts["message_rejects"], counts["exec_seq_gaps"]) == (0, 0)
        # Every report on the stream was ours: one answer per message and two per fill (taker and maker).
        assert counts["reports_received"] == 5_000 + 2 * e.fills
        assert counts["report_bytes"] == counts["reports_received"] * (HEADER_LENGTH + BLOCK_LENGTHS["ExecutionReport"])
        assert bytes(loop.responses) == b"\x01" * 5_000   # exactly one first response each: none lost
        assert all(loop.recv_ns)
        period = 1e9 / mode["rate"] if "rate" in mode else 0.0
        sent_at = ([times["start_ns"] + int(i * period) for i in range(5_000)] if period
                   else list(loop.send_ns))
        assert list(loop.round_trips(period, times["start_ns"])) == [r - s for r, s in zip(loop.recv_ns, sent_at)]
        assert loop.mass_cancel(mass_cancel_frames(generator, 5_000), timeout=30.0)
        assert loop.counts()["mass_cancel_reports"] == 1
    finally:
        generator.close()
        execution.close()


def test_rejects_are_counted_as_answers(stack, client):
    # Instrument 9 is not listed by the engine: every new order is rejected, and every cancel (of an
    # order the engine never accepted) gets an OrderCancelReject.
    spec = WorkloadSpec(orders=2_000, seed=32, first_instrument=9)
    workload = generate(spec)
    generator, execution, loop = make_loop(client, stack, workload.encode())
    try:
        loop.run(window=32, drain_timeout=30.0)
        counts = loop.counts()
        assert (counts["answered"], counts["acked"], counts["rejected"]) == (2_000, 0, 2_000)
        assert (counts["duplicated"], counts["trades"], counts["trade_reports"], counts["unknown_reports"]) == (
            0, 0, 0, 0)
    finally:
        generator.close()
        execution.close()


def test_several_sessions_each_answered_once(stack, client):
    spec = WorkloadSpec(orders=3_000, seed=33, sessions=3, instruments=2, first_instrument=1)
    workload = generate(spec)
    encoded = workload.encode()
    generator, execution, loop = make_loop(client, stack, encoded)
    try:
        loop.run(window=48, drain_timeout=30.0)
        counts = loop.counts()
        assert (counts["answered"], counts["duplicated"], counts["unknown_reports"]) == (3_000, 0, 0)
        assert counts["acked"] + counts["rejected"] == 3_000
        assert counts["acked"] >= workload.expected.new_orders
        assert loop.mass_cancel(mass_cancel_frames(generator, 3_000), timeout=30.0)
        assert loop.counts()["mass_cancel_reports"] == 3
    finally:
        generator.close()
        execution.close()


def test_histogram_from_latency_counts_equals_recording_every_value(stack, client):
    spec = WorkloadSpec(orders=2_000, seed=34, first_instrument=2)
    generator, execution, loop = make_loop(client, stack, generate(spec).encode())
    try:
        times = loop.run(rate=10_000, drain_timeout=30.0)
        loop.mass_cancel(mass_cancel_frames(generator, 2_000), timeout=30.0)
    finally:
        generator.close()
        execution.close()
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


def test_a_subscriber_leaving_does_not_cost_the_others_a_report(stack, client):
    # A second client subscribes to the execution stream and leaves; min flow control drops it after the
    # receiver timeout of the default channel, and the remaining subscriber gets every report.
    assert ",t:" in stack.config.execution.channel
    leaving = loadgen.exec_subscription(client, stack.config)
    assert leaving.subscription.wait_connected(30.0)
    leaving.close()
    spec = WorkloadSpec(orders=1_000, seed=35, first_instrument=1)
    report, histogram = loadgen.run_workload(client, stack.config, generate(spec).encode(), window=32,
                                             drain_timeout=30.0)
    assert (report.sent, report.acked, report.lost, report.duplicated) == (1_000, 1_000, 0, 0)
    assert report.trades == generate(spec).expected.fills
    assert histogram.get_total_count() == 1_000
