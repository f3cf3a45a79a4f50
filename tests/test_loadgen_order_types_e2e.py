"""The load generator with stops, icebergs and self-trade prevention mixed in, against `lob engine` over real
Aeron UDP on 127.0.0.1: nothing lost, and the triggered stops, STP cancels and fills it counts are exactly
what an in-process Engine answers to the same workload (one session, so the engine sees the generated
order)."""
import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from lob.client import connection
from lob.engine import Engine
from lob.framing import iter_execution
from lob.sbe import messages
from lob.tools import loadgen
from aeron_helpers import running_stack
from lob.tools.workload import WorkloadSpec, generate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_TIMEOUT = 120


@pytest.fixture(scope="module")
def stack():
    yield from running_stack(instruments={1: 1, 2: 1})


def in_process(spec, credentials):
    """Counter of (message name, reason or liquidity) an Engine answers to the workload, the session as
    `credentials`."""
    engine = Engine(instruments={1: 1, 2: 1}, sessions=credentials)
    out = engine.process(generate(spec).encode().inbound_records(credentials))
    counts = Counter()
    for _, _, frame in iter_execution(out):
        d = messages.decode(frame)
        counts[d["_name"], d.get("reason", d.get("liquidity"))] += 1
    return counts


@pytest.mark.parametrize("stp_mode", ["CancelResting", "DecrementAndCancel"])
def test_order_types_run_loses_nothing_and_counts_what_the_engine_sends(stack, stp_mode):
    spec = WorkloadSpec(orders=3_000, seed=41, first_instrument=2, stop_share=0.1, iceberg_share=0.1,
                        stp_accounts=4, stp_mode=stp_mode)
    credentials = stack.sessions()
    want = in_process(spec, credentials[:1])
    with connection.connect(stack.config) as conn:
        report, _ = loadgen.run_workload(conn.aeron, stack.config, generate(spec).encode(), credentials,
                                         window=64, drain_timeout=30.0)
    e = generate(spec).expected
    assert (report.sent, report.lost, report.duplicated, report.unknown_reports) == (3_000, 0, 0, 0)
    assert report.exec_seq_gaps == 0 and report.logged_off == 1
    assert report.acked == e.new_orders + want["ExecutionReportCanceled", "UserRequest"]
    assert report.rejected == want["OrderCancelReject", "UnknownOrder"]
    assert (report.stops, report.icebergs, report.stp_accounts) == (e.stops, e.icebergs, 4)
    assert report.triggered == want["ExecutionReportTriggered", None] > 0
    assert report.stp_cancels == want["ExecutionReportCanceled", "SelfTradePrevented"] > 0
    assert report.stp_restated == want["ExecutionReportReplaced", None]
    assert (report.stp_restated > 0) == (stp_mode == "DecrementAndCancel")
    assert report.trades == want["ExecutionReportTrade", "Removed"]
    assert report.trade_reports == 2 * report.trades and not report.expected_trades_exact
    line = next(text for text in report.format().splitlines() if text.strip().startswith("order types"))
    assert line.split() == ["order", "types", f"{e.stops:,}", "stop-limits", f"({report.triggered:,}", "triggered),",
                            f"{e.icebergs:,}", "icebergs,", "4", "STP", "accounts", f"({report.stp_cancels:,}", "STP",
                            "cancels,", f"{report.stp_restated:,}", "restated)"]


def test_loadgen_command_takes_the_order_type_flags(stack, tmp_path):
    json_path = tmp_path / "report.json"
    port_base = int(stack.config.order_entry.channel.rsplit(":", 1)[1])
    command = [sys.executable, "-m", "lob.cli", "loadgen", "--orders", "1000", "--rate", "4000", "--seed", "7",
               "--stop-share", "0.2", "--iceberg-share", "0.1", "--stp-accounts", "3",
               "--aeron-dir", stack.aeron_dir, "--port-base", str(port_base), "--no-progress", "--json", str(json_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lost                   0" in done.stdout and "  order types " in done.stdout
    summary = json.loads(json_path.read_text())
    want = in_process(WorkloadSpec(orders=1_000, seed=7, stop_share=0.2, iceberg_share=0.1, stp_accounts=3),
                      stack.sessions()[:1])
    assert (summary["sent"], summary["lost"], summary["duplicated"], summary["unknown_reports"]) == (1_000, 0, 0, 0)
    assert summary["triggered"] == want["ExecutionReportTriggered", None]
    assert summary["stp_cancels"] == want["ExecutionReportCanceled", "SelfTradePrevented"]


def test_bad_order_type_flags_are_refused_with_a_message():
    done = subprocess.run([sys.executable, "-m", "lob.cli", "loadgen", "--stop-share", "0.7", "--iceberg-share", "0.7"],
                          cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 2
    assert "stop_share and iceberg_share must lie in 0..1 and add up to at most 1" in done.stderr
