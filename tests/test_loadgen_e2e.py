"""The load generator and `lob demo` against `lob engine` over real Aeron UDP on 127.0.0.1, logged on as
sessions of the sample credentials, each with its private execution stream.

Small runs; the figures asserted are counts (sent, answered, lost, duplicated, trades, bytes), never times.
"""
import json
import os
import subprocess
import sys

import pytest

from lob.client import connection
from lob.tools import loadgen
from aeron_helpers import running_stack
from lob.tools.workload import WorkloadSpec, generate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_TIMEOUT = 120


@pytest.fixture(scope="module")
def stack():
    yield from running_stack(instruments={1: 1, 2: 1, 3: 1})


def run_once(stack, spec, **kwargs):
    encoded = generate(spec).encode()
    with connection.connect(stack.config) as conn:
        return loadgen.run_workload(conn.aeron, stack.config, encoded, stack.sessions(), drain_timeout=30.0,
                                    **kwargs)


def test_open_loop_small_run_exact_counts(stack):
    spec = WorkloadSpec(orders=3_000, seed=21, first_instrument=1)
    report, histogram = run_once(stack, spec, rate=5_000)
    e = generate(spec).expected
    assert (report.sent, report.lost, report.duplicated) == (3_000, 0, 0)
    assert (report.acked, report.rejected) == (3_000, 0)
    assert (report.trades, report.trade_reports) == (e.fills, 2 * e.fills)
    assert report.expected_trades == e.fills and report.expected_trades_exact
    assert (report.unknown_reports, report.message_rejects, report.exec_seq_gaps) == (0, 0, 0)
    assert (report.unsolicited_cancels, report.terminations) == (0, 0)
    assert (report.session_ids, report.logged_off) == ([1001], 1)
    # Lean reports: New 40 bytes, Canceled 49, Trade 73 (96, 96 and 128 in Aeron's framing), and
    # heartbeats, if the engine sent any, 16 (64).
    reports = e.new_orders + e.cancels + 2 * e.fills
    assert report.reports_received == reports + report.heartbeats
    assert report.report_bytes == 40 * e.new_orders + 49 * e.cancels + 73 * 2 * e.fills + 16 * report.heartbeats
    assert report.report_framed_bytes == 96 * (e.new_orders + e.cancels) + 128 * 2 * e.fills + 64 * report.heartbeats
    assert report.bytes_per_message == (report.report_bytes / 3_000, report.report_framed_bytes / 3_000)
    assert histogram.get_total_count() == 3_000
    assert set(report.latency_us) >= {"p50", "p90", "p99", "p99.9", "max"}


def test_rerun_after_mass_cancel_gives_the_same_counts(stack):
    # The first run's mass cancel left the book empty, so the same workload trades the same again.
    spec = WorkloadSpec(orders=1_500, seed=22, first_instrument=2)
    first, _ = run_once(stack, spec, window=64)
    second, _ = run_once(stack, spec, window=64)
    for report in (first, second):
        assert (report.sent, report.acked, report.rejected, report.lost, report.duplicated) == (1_500, 1_500, 0, 0, 0)
    assert first.trades == second.trades == generate(spec).expected.fills


def test_closed_loop_several_sessions_and_instruments(stack):
    spec = WorkloadSpec(orders=4_000, seed=23, sessions=3, instruments=3, first_instrument=1)
    report, histogram = run_once(stack, spec, window=32)
    assert (report.sent, report.lost, report.duplicated) == (4_000, 0, 0)
    # Sessions may reach the engine interleaved differently from the generator's order, so a cancel can
    # find its order already filled: every message is still answered exactly once.
    assert report.acked + report.rejected == 4_000
    assert report.acked >= generate(spec).expected.new_orders
    assert report.trade_reports >= report.trades > 0
    assert report.exec_seq_gaps == 0 and report.unknown_reports == 0
    assert (report.session_ids, report.logged_off) == ([1001, 1002, 1003], 3)
    assert histogram.get_total_count() == 4_000


def test_loadgen_command_writes_json_and_hdr(stack, tmp_path):
    json_path, hdr_path = tmp_path / "report.json", tmp_path / "latency.hdr"
    command = [sys.executable, "-m", "lob.cli", "loadgen", "--orders", "800", "--rate", "4000", "--seed", "5",
               "--aeron-dir", stack.aeron_dir, "--port-base", str(_port_base(stack)), "--no-progress",
               "--json", str(json_path), "--hdr-out", str(hdr_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lost                   0" in done.stdout
    summary = json.loads(json_path.read_text())
    assert (summary["sent"], summary["acked"], summary["lost"], summary["duplicated"]) == (800, 800, 0, 0)
    assert (summary["session_ids"], summary["logged_off"]) == ([1001], 1)
    assert summary["trades"] == generate(WorkloadSpec(orders=800, seed=5)).expected.fills
    assert summary["mode"] == "open" and summary["offered_rate"] == 4000
    hdr = hdr_path.read_text()
    assert "Value     Percentile TotalCount" in hdr
    assert "TotalCount     =      800.000]" in hdr


def _port_base(stack):
    # The stack's config uses ports base, base + 1, base + 2; the order-entry endpoint carries the base.
    return int(stack.config.order_entry.channel.rsplit(":", 1)[1])


def test_demo_runs_and_cleans_up():
    done = subprocess.run([sys.executable, "-m", "lob.cli", "demo", "--seconds", "1", "--rate", "3000", "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "lost                   0" in out and "duplicated             0" in out
    assert "sent               3,000" in out
    assert "1 of 1 session(s) logged off" in out
    assert "nothing left behind" in out
    driver_line = next(line for line in out.splitlines() if line.startswith("lob demo: driver "))
    driver_dir = driver_line.rsplit(" in ", 1)[1]
    assert not os.path.exists(driver_dir)
