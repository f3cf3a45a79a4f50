"""`lob loadgen`: send an SBE order workload to a running engine over Aeron and report round-trip latency.

Open loop (default): message i is due at start + i / rate; its latency runs from that scheduled time to
the first report that answers it, so a stall on either side shows up in the figures instead of quietly
slowing the sender (no coordinated omission). `--closed-loop` sends as fast as a bounded window of
unanswered messages allows and times each message from its actual send.

Every message expects exactly one first response: ExecutionReport New or Rejected for a new order,
ExecutionReport Canceled or OrderCancelReject for a cancel. A message without one is lost; a second one
is a duplicate. The whole workload is encoded before the clock starts; sending, receiving and timing
run in C with the GIL released (`lob.tools.loadgen_loop`), and the report and HdrHistogram are built
from its counts and per-message times after the run.
"""
import json
import sys
import time
from dataclasses import asdict, dataclass, field

from lob.client import wire
from lob.tools.workload import WorkloadSpec, generate

HIGHEST_TRACKABLE_NS = 60_000_000_000
SIGNIFICANT_FIGURES = 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
FRAGMENT_LIMIT = 256  # execution reports read per poll


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
    reports_received: int = 0  # execution-stream messages received during the run (every session's)
    report_bytes: int = 0
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
        if self.reports_received:
            lines.append(f"  reports     {self.reports_received:>12,}   (execution stream, "
                         f"{self.reports_received / max(self.sent, 1):.2f} per message sent, "
                         f"{self.report_bytes / self.reports_received:.0f} bytes each)")
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

    `aeron` is a `lob.transport.client.Client`, or anything with a `dir` attribute naming the media
    driver's directory (a pyaeron `Aeron`), in which case this generator opens a Client of its own.
    `encoded` is an `EncodedWorkload`; it can be run more than once (each LoadGenerator brings new
    publications, so new session ids, so the engine sees fresh client order ids).

    Pass `subscription` (from `exec_subscription`) to keep one execution-report subscription across
    several runs: the engine's execution stream is paced by its slowest subscriber, so a subscriber
    that has just closed holds the stream until the driver times it out (see lob.config).
    """

    def __init__(self, aeron, config, encoded, *, subscription=None, connect_timeout=10.0, idle="yield",
                 fragment_limit=FRAGMENT_LIMIT):
        self.config = config
        self.encoded = encoded
        self.workload = encoded.workload
        self.idle = idle
        self.fragment_limit = fragment_limit
        self.pubs = []
        self.sub = None
        self._exec = subscription
        self._own_exec = subscription is None
        channels = config.client_channels()
        order_entry, execution = channels["order_entry"], channels["execution"]
        try:
            if self._exec is None:
                self._exec = exec_subscription(aeron, config)
            self.client = self._exec.client
            self.sub = self._exec.subscription
            for _ in range(self.workload.spec.sessions):
                self.pubs.append(self.client.add_exclusive_publication(order_entry.channel, order_entry.stream_id))
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
        if self._own_exec and self._exec is not None:
            self._exec.close()
        self._exec = self.sub = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def run(self, rate=None, window=None, progress=False, drain_timeout=10.0, cancel_at_end=True,
            histogram=None):
        """Send the workload open-loop at `rate` msg/s, or closed-loop with `window` messages in flight.

        Returns (Report, HdrHistogram of round trips in ns)."""
        from lob.tools.loadgen_loop import LoadLoop

        if (rate is None) == (window is None):
            raise ValueError("give exactly one of rate (open loop) or window (closed loop)")
        workload = self.workload
        spec = workload.spec
        n = len(workload)
        report = Report(mode="open" if rate else "closed", offered_rate=float(rate or 0), window=window or 0,
                        sessions=spec.sessions, instruments=spec.instruments, seed=spec.seed,
                        expected_trades=workload.expected.fills if workload.expected else 0,
                        expected_trades_exact=workload.expected is not None and spec.sessions == 1)
        loop = LoadLoop(self.sub, self.pubs, self.session_ids, self.encoded, idle=self.idle,
                        fragment_limit=self.fragment_limit)
        bar = _progress(n, progress)
        shown = [0]

        def on_progress(answered):
            bar.update(answered - shown[0])
            shown[0] = answered

        try:
            times = loop.run(rate=rate, window=window, drain_timeout=drain_timeout,
                             progress=on_progress if bar is not None else None)
        finally:
            if bar is not None:
                on_progress(loop.counts()["answered"])
                bar.close()
        counts = loop.counts()
        sent = times["sent"]
        report.sent = sent
        report.acked, report.rejected, report.duplicated = counts["acked"], counts["rejected"], counts["duplicated"]
        report.lost = sent - counts["answered"]
        report.trades, report.trade_reports = counts["trades"], counts["trade_reports"]
        report.unsolicited_cancels, report.message_rejects = counts["unsolicited_cancels"], counts["message_rejects"]
        report.unknown_reports, report.exec_seq_gaps = counts["unknown_reports"], counts["exec_seq_gaps"]
        report.back_pressure = counts["back_pressure"]
        report.reports_received, report.report_bytes = counts["reports_received"], counts["report_bytes"]
        end = times["last_recv_ns"] if counts["answered"] else time.perf_counter_ns()
        report.elapsed_s = (end - times["first_send_ns"]) / 1e9
        send_span = (times["last_send_ns"] - times["first_send_ns"]) / 1e9
        report.send_rate_per_s = sent / send_span if send_span > 0 else 0.0
        report.throughput_per_s = counts["answered"] / report.elapsed_s if report.elapsed_s > 0 else 0.0

        histogram = histogram if histogram is not None else new_histogram()
        record = histogram.record_value
        for value, count in loop.latency_counts(
                1e9 / rate if rate else 0.0, times["start_ns"],
                histogram.sub_bucket_half_count_magnitude, histogram.unit_magnitude):
            record(value, count)
        report.latency_us = latency_summary(histogram)

        if cancel_at_end:
            self._mass_cancel(loop, n, drain_timeout)
        return report, histogram

    def _mass_cancel(self, loop, n, timeout):
        """Leave the engine's book as we found it: cancel what our sessions still have resting."""
        messages = self.encoded_codec()
        base = self.workload.spec.first_cl_ord_id
        frames = [messages.encode("OrderMassCancelRequest", clOrdId=base + n + s, instrumentId=0)
                  for s in range(len(self.pubs))]
        return loop.mass_cancel(frames, timeout)

    @staticmethod
    def encoded_codec():
        return wire.codec()


def _progress(total, enabled):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="msg", unit_scale=True, desc="answered", file=sys.stderr, leave=False,
                dynamic_ncols=True, mininterval=0.2)


class ExecSubscription:
    """The execution-report subscription (a `lob.transport` Subscription) and the Client it lives on."""

    def __init__(self, client, subscription, owns_client):
        self.client = client
        self.subscription = subscription
        self._owns_client = owns_client

    @property
    def is_connected(self):
        return self.subscription.is_connected

    @property
    def is_closed(self):
        return self.subscription.is_closed

    def close(self):
        self.subscription.close()
        if self._owns_client:
            self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def transport_client(aeron):
    """(a lob.transport Client on the same driver as `aeron`, whether the caller must close it)."""
    from lob.transport.client import Client

    if isinstance(aeron, Client):
        return aeron, False
    return Client(aeron.dir, client_name="lob-loadgen"), True


def exec_subscription(aeron, config):
    """A subscription to the engine's execution reports (one per process is enough); close() it."""
    execution = config.client_channels()["execution"]
    client, owned = transport_client(aeron)
    try:
        return ExecSubscription(client, client.add_subscription(execution.channel, execution.stream_id), owned)
    except BaseException:
        if owned:
            client.close()
        raise


def run_workload(aeron, config, encoded, *, rate=None, window=None, progress=False, drain_timeout=10.0,
                 cancel_at_end=True, subscription=None, idle="yield", fragment_limit=FRAGMENT_LIMIT):
    """Connect, run `encoded` once, disconnect: (Report, histogram)."""
    with LoadGenerator(aeron, config, encoded, subscription=subscription, idle=idle,
                       fragment_limit=fragment_limit) as generator:
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
    parser.add_argument("--idle", default="yield",
                        help="idle strategy of the send/receive loop: yield, spin, sleep:NS, backoff (default yield)")
    parser.add_argument("--fragment-limit", type=int, default=FRAGMENT_LIMIT,
                        help=f"execution reports read per poll (default {FRAGMENT_LIMIT})")
    connection.add_arguments(parser)


def run(args):
    from lob.client import connection

    if args.orders < 1 or args.rate <= 0 or args.window < 1 or args.fragment_limit < 1:
        print("lob loadgen: --orders, --rate, --window and --fragment-limit must be positive", file=sys.stderr)
        return 2
    try:
        from lob.transport.idle import IdleStrategy

        IdleStrategy(args.idle)
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
                drain_timeout=args.drain_timeout, cancel_at_end=not args.keep_orders, idle=args.idle,
                fragment_limit=args.fragment_limit)
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
