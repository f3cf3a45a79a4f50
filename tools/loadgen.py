"""`lob loadgen`: send an SBE order workload to a running engine over Aeron and report round-trip latency.

Open loop (default): message i is due at start + i / rate; its latency runs from that scheduled time to
the first report that answers it, so a stall on either side shows up in the figures instead of quietly
slowing the sender (no coordinated omission). `--closed-loop` sends as fast as a bounded window of
unanswered messages allows and times each message from its actual send.

Every message expects exactly one first response: ExecutionReport New or Rejected for a new order,
ExecutionReport Canceled or OrderCancelReject for a cancel. A message without one is lost; a second one
is a duplicate. The whole workload is encoded before the clock starts; the receive path reads fixed
offsets with `struct` and does no dict decoding.
"""
import gc
import json
import os
import struct
import sys
import time
from array import array
from dataclasses import asdict, dataclass, field

from lob.client import wire
from lob.tools.workload import CANCEL, NEW, WorkloadSpec, generate

HIGHEST_TRACKABLE_NS = 60_000_000_000
SIGNIFICANT_FIGURES = 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)

# ExecType values on the wire (a char enum carries the character code).
EXEC_NEW, EXEC_CANCELED, EXEC_REJECTED, EXEC_TRADE = (ord(c) for c in "048F")
LIQUIDITY_REMOVED = 2


@dataclass
class Report:
    mode: str
    offered_rate: float  # 0 for closed loop
    window: int  # 0 for open loop
    sessions: int
    instruments: int
    seed: int
    sent: int = 0
    acked: int = 0
    rejected: int = 0
    lost: int = 0
    duplicated: int = 0
    trades: int = 0  # fills where one of our orders was the aggressor
    trade_reports: int = 0
    unsolicited_cancels: int = 0
    message_rejects: int = 0
    unknown_reports: int = 0
    exec_seq_gaps: int = 0
    back_pressure: int = 0
    expected_trades: int = 0
    expected_trades_exact: bool = False
    elapsed_s: float = 0.0
    send_rate_per_s: float = 0.0
    throughput_per_s: float = 0.0
    latency_us: dict = field(default_factory=dict)  # p50, p90, p99, p99.9, max, mean, min

    def to_json(self):
        return asdict(self)

    def format(self):
        lat = self.latency_us
        mode = (f"open loop at {self.offered_rate:,.0f} msg/s offered" if self.mode == "open"
                else f"closed loop, window {self.window}")
        lines = [
            f"lob loadgen: {mode}; {self.sessions} session(s), {self.instruments} instrument(s), seed {self.seed}",
            f"  sent        {self.sent:>12,}",
            f"  acked       {self.acked:>12,}",
            f"  rejected    {self.rejected:>12,}",
            f"  trades      {self.trades:>12,}" + (f"   (expected {self.expected_trades:,})"
                                                   if self.expected_trades_exact else ""),
            f"  lost        {self.lost:>12,}",
            f"  duplicated  {self.duplicated:>12,}",
        ]
        if self.message_rejects or self.unknown_reports or self.exec_seq_gaps:
            lines.append(f"  message rejects {self.message_rejects:,}, unknown reports {self.unknown_reports:,}, "
                         f"exec sequence gaps {self.exec_seq_gaps:,}")
        lines += [
            f"  elapsed     {self.elapsed_s:>12.3f} s   (back-pressured offers: {self.back_pressure:,})",
            f"  send rate   {self.send_rate_per_s:>12,.0f} msg/s",
            f"  throughput  {self.throughput_per_s:>12,.0f} msg/s answered",
        ]
        if lat:
            lines.append("  round trip  " + "  ".join(
                f"{k} {lat[k]:,.1f}" for k in ("p50", "p90", "p99", "p99.9", "max")) + "  (µs)")
        return "\n".join(lines)


def new_histogram():
    from hdrh.histogram import HdrHistogram

    return HdrHistogram(1, HIGHEST_TRACKABLE_NS, SIGNIFICANT_FIGURES)


def latency_summary(histogram):
    if histogram.get_total_count() == 0:
        return {}
    out = {f"p{p:g}": histogram.get_value_at_percentile(p) / 1000 for p in PERCENTILES}
    out["max"] = histogram.get_max_value() / 1000
    out["min"] = histogram.get_min_value() / 1000
    out["mean"] = histogram.get_mean_value() / 1000
    return out


def write_percentile_distribution(histogram, path):
    """The standard HdrHistogram percentile-distribution text, values in microseconds."""
    with open(path, "wb") as out:
        histogram.output_percentile_distribution(out, 1000)


class LoadGenerator:
    """Publications (one per session) and the execution-report subscription for one workload.

    `encoded` is an `EncodedWorkload`; it can be run more than once (each LoadGenerator brings new
    publications, so new session ids, so the engine sees fresh client order ids).

    Pass `subscription` (from `exec_subscription`) to keep one execution-report subscription across
    several runs: the engine's execution stream is paced by its slowest subscriber, and a subscriber
    that has just closed still counts until the driver times it out, stalling the next run.
    """

    def __init__(self, aeron, config, encoded, *, subscription=None, connect_timeout=10.0):
        self.aeron = aeron
        self.config = config
        self.encoded = encoded
        self.workload = encoded.workload
        self.pubs = []
        self.sub = subscription
        self._own_sub = subscription is None
        channels = config.client_channels()
        order_entry, execution = channels["order_entry"], channels["execution"]
        try:
            if self.sub is None:
                self.sub = exec_subscription(aeron, config)
            for _ in range(self.workload.spec.sessions):
                self.pubs.append(aeron.add_exclusive_publication(order_entry.channel, order_entry.stream_id))
            deadline = time.monotonic() + connect_timeout
            while not (self.sub.is_connected and all(p.is_connected for p in self.pubs)):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no engine on {order_entry} (or no execution reports from {execution}) "
                                       f"within {connect_timeout}s")
                time.sleep(0.001)
        except BaseException:
            self.close()
            raise
        self.session_ids = [p.session_id & 0xFFFFFFFF for p in self.pubs]

    def close(self):
        for p in self.pubs:
            if not p.is_closed:
                p.close()
        self.pubs = []
        if self._own_sub and self.sub is not None and not self.sub.is_closed:
            self.sub.close()
        self.sub = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def run(self, rate=None, window=None, progress=False, drain_timeout=10.0, cancel_at_end=True,
            histogram=None):
        """Send the workload open-loop at `rate` msg/s, or closed-loop with `window` messages in flight.

        Returns (Report, HdrHistogram of round trips in ns)."""
        if (rate is None) == (window is None):
            raise ValueError("give exactly one of rate (open loop) or window (closed loop)")
        workload, encoded = self.workload, self.encoded
        spec = workload.spec
        n = len(workload)
        report = Report(mode="open" if rate else "closed", offered_rate=float(rate or 0), window=window or 0,
                        sessions=spec.sessions, instruments=spec.instruments, seed=spec.seed, sent=n,
                        expected_trades=workload.expected.fills if workload.expected else 0,
                        expected_trades_exact=workload.expected is not None and spec.sessions == 1)

        layouts = wire.ExecStreamLayout(self.encoded_codec())
        er_tid = layouts.execution_report.template_id
        ocj_tid = layouts.cancel_reject.template_id
        mcr_tid = layouts.mass_cancel_report.template_id
        mrj_tid = layouts.message_reject.template_id
        # Execution reports are nearly all of the stream: one unpack reads the template id and the fields.
        er_read = layouts.execution_report.reader(
            "templateId", "seqNum", "sessionId", "clOrdId", "execType", "liquidity").unpack_from
        ocj_read = layouts.cancel_reject.reader("seqNum", "sessionId", "clOrdId").unpack_from
        mcr_read = layouts.mass_cancel_report.reader("seqNum", "sessionId", "clOrdId").unpack_from
        seq_read = layouts.message_reject.reader("seqNum", "sessionId").unpack_from
        tid_read = wire.TEMPLATE_ID.unpack_from
        struct_error = struct.error

        kinds = workload.kind
        base = spec.first_cl_ord_id
        mass_cancel_ids = {base + n + s: s for s in range(spec.sessions)}
        mine = frozenset(self.session_ids)
        responses = bytearray(n)
        recv_ns = array("q", bytes(8 * n))
        send_ns = array("q", bytes(8 * n)) if window else None
        now_ns = time.perf_counter_ns

        answered = acked = rejected = duplicated = 0
        trade_reports = fills = unsolicited = message_rejects = unknown = gaps = 0
        mass_cancel_reports = 0
        last_seq = 0

        def on_other(buffer):
            """Everything but an execution report: (seqNum, sessionId, clOrdId or None, template id)."""
            nonlocal mass_cancel_reports, message_rejects
            tid = tid_read(buffer, 2)[0]
            if tid == ocj_tid:
                return (*ocj_read(buffer), tid)
            if tid == mcr_tid:
                seq, session, cl = mcr_read(buffer)
                if session in mine and cl in mass_cancel_ids:
                    mass_cancel_reports += 1
                return seq, session, None, tid
            if tid == mrj_tid:
                seq, session = seq_read(buffer)
                if session in mine:
                    message_rejects += 1
                return seq, session, None, tid
            return None

        def on_fragment(buffer, header):
            nonlocal answered, acked, rejected, duplicated, trade_reports, fills, unsolicited
            nonlocal unknown, gaps, last_seq
            try:
                tid, seq, session, cl, exec_type, liquidity = er_read(buffer)
            except struct_error:  # shorter than an execution report
                tid = -1
            if tid != er_tid:
                other = on_other(buffer)
                if other is None:
                    return
                seq, session, cl, tid = other
                if seq != last_seq + 1 and last_seq:
                    gaps += 1
                last_seq = seq
                if cl is None or session not in mine:
                    return
                i = cl - base
                if not 0 <= i < n or kinds[i] != CANCEL:
                    unknown += 1
                    return
                positive = False
            else:
                if seq != last_seq + 1 and last_seq:
                    gaps += 1
                last_seq = seq
                if session not in mine:
                    return
                i = cl - base
                if not 0 <= i < n:
                    unknown += 1
                    return
                if exec_type == EXEC_TRADE:
                    trade_reports += 1
                    if liquidity == LIQUIDITY_REMOVED:
                        fills += 1
                    return
                if kinds[i] == NEW:
                    if exec_type != EXEC_NEW and exec_type != EXEC_REJECTED:
                        unsolicited += exec_type == EXEC_CANCELED
                        return
                    positive = exec_type == EXEC_NEW
                elif exec_type == EXEC_CANCELED:
                    positive = True
                else:
                    unknown += 1
                    return
            count = responses[i]
            if count:
                duplicated += 1
                if count < 255:
                    responses[i] = count + 1
                return
            recv_ns[i] = now_ns()
            responses[i] = 1
            answered += 1
            if positive:
                acked += 1
            else:
                rejected += 1

        frames = encoded.frame_list()
        offers = [p.offer for p in self.pubs]
        session_of = workload.session
        sends = [offers[session_of[j]] for j in range(n)] if len(offers) > 1 else None
        single = offers[0]
        poll = self.sub.poll
        yield_cpu = os.sched_yield
        back_pressure = 0
        bar = _progress(n, progress)
        next_progress = 0
        shown = 0

        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            i = 0
            if rate:
                period = 1e9 / rate
                start = now_ns()
                first_send = start
                while i < n:
                    now = now_ns()
                    due = int((now - start) / period) + 1
                    if due > n:
                        due = n
                    before = i
                    while i < due:
                        if (single if sends is None else sends[i])(frames[i]) is not True:
                            back_pressure += 1
                            before = i  # back-pressured: the driver needs the core, idle below
                            break
                        i += 1
                    if not poll(on_fragment, 256) and i == before:
                        yield_cpu()
                    if bar is not None and now >= next_progress:
                        bar.update(answered - shown)
                        shown = answered
                        next_progress = now + 200_000_000
                last_send = now_ns()
            else:
                first_send = start = now_ns()
                while answered < n:
                    before = i
                    while i < n and i - answered < window:
                        t = now_ns()
                        if (single if sends is None else sends[i])(frames[i]) is not True:
                            back_pressure += 1
                            before = i
                            break
                        send_ns[i] = t
                        i += 1
                    if not poll(on_fragment, 256) and i == before:
                        yield_cpu()
                    if bar is not None:
                        now = now_ns()
                        if now >= next_progress:
                            bar.update(answered - shown)
                            shown = answered
                            next_progress = now + 200_000_000
                    if i == n:
                        break
                last_send = now_ns()

            # Wait for the remaining first responses, then for the stream to go quiet (trailing fills).
            deadline = now_ns() + int(drain_timeout * 1e9)
            quiet_since = None
            while now_ns() < deadline:
                work = poll(on_fragment, 256)
                if work:
                    quiet_since = None
                    continue
                if answered >= n:
                    now = now_ns()
                    if quiet_since is None:
                        quiet_since = now
                    elif now - quiet_since > 50_000_000:
                        break
                if bar is not None and answered != shown:
                    bar.update(answered - shown)
                    shown = answered
                yield_cpu()
            end = max(recv_ns) if answered else now_ns()
        finally:
            if gc_was_enabled:
                gc.enable()
            if bar is not None:
                bar.update(answered - shown)
                bar.close()

        report.acked, report.rejected, report.duplicated = acked, rejected, duplicated
        report.lost = n - answered
        report.trades, report.trade_reports = fills, trade_reports
        report.unsolicited_cancels, report.message_rejects = unsolicited, message_rejects
        report.unknown_reports, report.exec_seq_gaps, report.back_pressure = unknown, gaps, back_pressure
        report.elapsed_s = (end - first_send) / 1e9
        send_span = (last_send - first_send) / 1e9
        report.send_rate_per_s = n / send_span if send_span > 0 else 0.0
        report.throughput_per_s = answered / report.elapsed_s if report.elapsed_s > 0 else 0.0

        histogram = histogram if histogram is not None else new_histogram()
        record = histogram.record_value
        for j in range(n):
            r = recv_ns[j]
            if r:
                sent_at = send_ns[j] if window else start + int(j * period)
                latency = r - sent_at
                record(latency if latency > 0 else 1)
        report.latency_us = latency_summary(histogram)

        if cancel_at_end:
            self._mass_cancel(n, poll, on_fragment, lambda: mass_cancel_reports, drain_timeout)
        return report, histogram

    def _mass_cancel(self, n, poll, on_fragment, reports_seen, timeout):
        """Leave the engine's book as we found it: cancel what our sessions still have resting."""
        messages = self.encoded_codec()
        base = self.workload.spec.first_cl_ord_id
        for s, pub in enumerate(self.pubs):
            frame = messages.encode("OrderMassCancelRequest", clOrdId=base + n + s, instrumentId=0)
            deadline = time.monotonic() + timeout
            while pub.offer(frame) is not True:
                if time.monotonic() > deadline:
                    return
                if not poll(on_fragment, 256):
                    os.sched_yield()
        deadline = time.monotonic() + timeout
        while reports_seen() < len(self.pubs) and time.monotonic() < deadline:
            if not poll(on_fragment, 256):
                os.sched_yield()

    @staticmethod
    def encoded_codec():
        return wire.codec()


def _progress(total, enabled):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="msg", unit_scale=True, desc="answered", file=sys.stderr, leave=False,
                dynamic_ncols=True, mininterval=0.2)


def exec_subscription(aeron, config):
    """A subscription to the engine's execution reports (one per process is enough)."""
    execution = config.client_channels()["execution"]
    return aeron.add_subscription(execution.channel, execution.stream_id)


def run_workload(aeron, config, encoded, *, rate=None, window=None, progress=False, drain_timeout=10.0,
                 cancel_at_end=True, subscription=None):
    """Connect, run `encoded` once, disconnect: (Report, histogram)."""
    with LoadGenerator(aeron, config, encoded, subscription=subscription) as generator:
        return generator.run(rate=rate, window=window, progress=progress, drain_timeout=drain_timeout,
                             cancel_at_end=cancel_at_end)


# -- command line --------------------------------------------------------------------------------
def add_arguments(parser):
    from lob.client import connection

    parser.add_argument("--orders", type=int, default=100_000, help="messages to send (default 100000)")
    parser.add_argument("--rate", type=float, default=50_000.0,
                        help="open loop: messages per second offered (default 50000)")
    parser.add_argument("--closed-loop", action="store_true",
                        help="send at maximum rate with at most --window unanswered messages")
    parser.add_argument("--window", type=int, default=256, help="closed loop: messages in flight (default 256)")
    parser.add_argument("--instruments", dest="instrument_count", type=int, default=1,
                        help="spread the orders over instruments 1..N (the engine must list them) (default 1)")
    parser.add_argument("--sessions", type=int, default=1, help="client sessions (publications) (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    parser.add_argument("--tick", type=int, default=1, help="price tick of every instrument (default 1)")
    parser.add_argument("--drain-timeout", type=float, default=10.0,
                        help="seconds to wait for outstanding responses after the last send (default 10)")
    parser.add_argument("--keep-orders", action="store_true",
                        help="leave resting orders in the book (default: mass-cancel them at the end)")
    parser.add_argument("--hdr-out", metavar="PATH", help="write the HdrHistogram percentile distribution (µs)")
    parser.add_argument("--json", metavar="PATH", help="write the report as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    connection.add_arguments(parser)


def run(args):
    from lob.client import connection

    if args.orders < 1 or args.rate <= 0 or args.window < 1:
        print("lob loadgen: --orders, --rate and --window must be positive", file=sys.stderr)
        return 2
    try:
        config = connection.config_from_args(args)
        spec = WorkloadSpec(orders=args.orders, seed=args.seed, instruments=args.instrument_count,
                            sessions=args.sessions, tick=args.tick)
    except (ValueError, OSError) as exc:
        print(f"lob loadgen: {exc}", file=sys.stderr)
        return 2
    print(f"lob loadgen: encoding {spec.orders:,} messages (seed {spec.seed}) ...", file=sys.stderr)
    encoded = generate(spec).encode()
    try:
        with connection.connect(config) as conn:
            report, histogram = run_workload(
                conn.aeron, config, encoded, rate=None if args.closed_loop else args.rate,
                window=args.window if args.closed_loop else None, progress=not args.no_progress,
                drain_timeout=args.drain_timeout, cancel_at_end=not args.keep_orders)
    except TimeoutError as exc:
        print(f"lob loadgen: {exc}", file=sys.stderr)
        return 1
    print(report.format())
    if args.hdr_out:
        write_percentile_distribution(histogram, args.hdr_out)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report.to_json(), out, indent=2)
            out.write("\n")
    return 0 if report.lost == 0 and report.duplicated == 0 else 1
