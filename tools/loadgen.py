"""`lob loadgen`: send an SBE order workload to a running engine over Aeron and report round-trip latency.

Each load session logs on with its own credentials (`--credentials FILE`, default the sample file;
`--sessions N` takes the first N): its own publication to order entry, its own private execution stream
on a free UDP port of 127.0.0.1 named in its Negotiate (lob.tools.loadgen_session). Then the run, then
Terminate.

Open loop (default): message i is due at start + i / rate; its latency runs from that scheduled time to
the first report that answers it, so a stall on either side shows up in the figures instead of quietly
slowing the sender (no coordinated omission). `--closed-loop` sends as fast as a bounded window of
unanswered messages allows and times each message from its actual send.

Every message expects exactly one first answer: ExecutionReportNew or ExecutionReportRejected for a new
order, ExecutionReportCanceled or OrderCancelReject for a cancel, or a MessageReject naming it. A message
without one is lost; a second one is a duplicate. `--stop-share`, `--iceberg-share` and `--stp-accounts`
mix stop-limits, icebergs and self-trade prevention into the workload (lob.tools.workload); triggered
stops, self-trade prevention cancels and restatements are counted and reported, never taken for answers. The whole workload is encoded before the clock starts;
sending, receiving and timing run in C with the GIL released (`lob.tools.loadgen_loop`), and the report
and HdrHistogram are built from its counts and per-message times after the run.
"""
import json
import sys
import time
from dataclasses import asdict, dataclass, field

from lob.tools.loadgen_session import DEFAULT_KEEP_ALIVE_MS, RESPONSE_STREAM_ID, LoadSession, LogonError
from lob.tools.workload import WorkloadSpec, generate

DEFAULT_RESPONSE_HOST = "127.0.0.1"
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
    session_ids: list = field(default_factory=list)
    sent: int = 0
    acked: int = 0
    rejected: int = 0
    lost: int = 0
    duplicated: int = 0
    trades: int = 0  # fills where one of our orders was the aggressor
    trade_reports: int = 0
    unsolicited_cancels: int = 0
    triggered: int = 0  # ExecutionReportTriggered: our stop orders that triggered
    stp_cancels: int = 0  # our orders canceled by self-trade prevention
    stp_restated: int = 0  # our orders restated by self-trade prevention (DecrementAndCancel)
    stops: int = 0  # stop-limit orders in the workload
    icebergs: int = 0  # iceberg orders in the workload
    stp_accounts: int = 0
    message_rejects: int = 0
    unknown_reports: int = 0
    exec_seq_gaps: int = 0
    heartbeats: int = 0  # Sequence from the engine during the run
    session_frames: int = 0  # other session-layer frames during the run
    terminations: int = 0  # Terminate from the engine during the run (the session ended under us)
    back_pressure: int = 0
    reports_received: int = 0  # messages on the sessions' execution streams during the run
    report_bytes: int = 0  # their SBE bytes
    report_framed_bytes: int = 0  # the same with Aeron's framing (32-byte header, 32-byte alignment)
    logged_off: int = 0  # sessions whose Terminate the engine answered at the end
    expected_trades: int = 0
    expected_trades_exact: bool = False
    elapsed_s: float = 0.0
    send_rate_per_s: float = 0.0
    throughput_per_s: float = 0.0
    latency_us: dict = field(default_factory=dict)  # p50, p90, p99, p99.9, max, mean, min

    def to_json(self):
        return asdict(self)

    @property
    def bytes_per_message(self):
        """Execution-stream bytes per message sent: (SBE, with Aeron framing)."""
        sent = max(self.sent, 1)
        return self.report_bytes / sent, self.report_framed_bytes / sent

    def format(self):
        lat = self.latency_us
        mode = (f"open loop at {self.offered_rate:,.0f} msg/s offered" if self.mode == "open"
                else f"closed loop, window {self.window}")
        ids = ",".join(str(i) for i in self.session_ids)
        lines = [
            f"lob loadgen: {mode}; {self.sessions} session(s) ({ids}), {self.instruments} instrument(s), "
            f"seed {self.seed}",
            f"  sent        {self.sent:>12,}",
            f"  acked       {self.acked:>12,}",
            f"  rejected    {self.rejected:>12,}",
            f"  trades      {self.trades:>12,}" + (f"   (expected {self.expected_trades:,})"
                                                   if self.expected_trades_exact else ""),
            f"  lost        {self.lost:>12,}",
            f"  duplicated  {self.duplicated:>12,}",
        ]
        if self.stops or self.icebergs or self.stp_accounts:
            lines.append(f"  order types {self.stops:,} stop-limits ({self.triggered:,} triggered), "
                         f"{self.icebergs:,} icebergs, {self.stp_accounts:,} STP accounts "
                         f"({self.stp_cancels:,} STP cancels, {self.stp_restated:,} restated)")
        if self.reports_received:
            sbe, framed = self.bytes_per_message
            lines.append(f"  reports     {self.reports_received:>12,}   (execution streams, "
                         f"{self.reports_received / max(self.sent, 1):.2f} per message sent, "
                         f"{self.report_bytes / self.reports_received:.1f} bytes each)")
            lines.append(f"  stream      {sbe:>12.1f} bytes per message sent   ({framed:.1f} with Aeron framing)")
        if (self.message_rejects or self.unknown_reports or self.exec_seq_gaps or self.heartbeats
                or self.session_frames or self.terminations):
            lines.append(f"  message rejects {self.message_rejects:,}, unknown reports {self.unknown_reports:,}, "
                         f"exec sequence gaps {self.exec_seq_gaps:,}, heartbeats {self.heartbeats:,}, "
                         f"session frames {self.session_frames:,}, terminated by the engine {self.terminations:,}")
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
    """Logged-on sessions (lob.tools.loadgen_session.LoadSession) for one workload: session k of the
    workload runs as `credentials[k]`.

    `aeron` is a `lob.transport.client.Client`, or anything with a `dir` attribute naming the media
    driver's directory (a pyaeron `Aeron`), in which case this generator opens a Client of its own.
    `encoded` is an `EncodedWorkload`; it can be run more than once, one LoadGenerator per run: the
    previous run's orders are gone (mass cancel, then cancel-on-disconnect at Terminate), so its client
    order ids are free again. close() terminates the sessions.
    """

    def __init__(self, aeron, config, encoded, credentials, *, logon_timeout=10.0, idle="yield",
                 fragment_limit=FRAGMENT_LIMIT, response_host=DEFAULT_RESPONSE_HOST,
                 response_stream=RESPONSE_STREAM_ID, keep_alive_ms=DEFAULT_KEEP_ALIVE_MS):
        from lob.transport.driver import free_port_base

        self.config = config
        self.encoded = encoded
        self.workload = encoded.workload
        self.idle = idle
        self.fragment_limit = fragment_limit
        self.sessions = []
        self.terminate_reasons = []
        self.last_loop = self.last_times = None
        count = self.workload.spec.sessions
        if len(credentials) < count:
            raise ValueError(f"{count} sessions need {count} credentials, {len(credentials)} given")
        self.client, self._own_client = transport_client(aeron)
        try:
            port = free_port_base(count, response_host)
            for k in range(count):
                self.sessions.append(LoadSession(self.client, credentials[k], config.order_entry, host=response_host,
                                                 port=port + k, stream_id=response_stream,
                                                 keep_alive_ms=keep_alive_ms))
            for session in self.sessions:
                session.logon(logon_timeout)
        except BaseException:
            self.close()
            raise

    @property
    def session_ids(self):
        return [s.session_id for s in self.sessions]

    @property
    def logged_off(self):
        return sum(1 for reason in self.terminate_reasons if reason is not None)

    def close(self):
        """Terminate every established session (waiting for the engine's Terminate), then close them."""
        try:
            for session in self.sessions:
                if session.established:
                    self.terminate_reasons.append(session.terminate())
        finally:
            for session in self.sessions:
                session.close()
            self.sessions = []
            if self._own_client and self.client is not None:
                self.client.close()
            self.client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def loop(self):
        """A LoadLoop over these sessions (one run)."""
        from lob.tools.loadgen_loop import LoadLoop

        return LoadLoop(self.encoded, [s.publication for s in self.sessions],
                        [s.subscription for s in self.sessions], [s.next_seq for s in self.sessions],
                        idle=self.idle, fragment_limit=self.fragment_limit)

    def run(self, rate=None, window=None, progress=False, drain_timeout=10.0, cancel_at_end=True,
            histogram=None):
        """Send the workload open-loop at `rate` msg/s, or closed-loop with `window` messages in flight.

        Returns (Report, HdrHistogram of round trips in ns)."""
        if (rate is None) == (window is None):
            raise ValueError("give exactly one of rate (open loop) or window (closed loop)")
        workload = self.workload
        spec = workload.spec
        n = len(workload)
        report = Report(mode="open" if rate else "closed", offered_rate=float(rate or 0), window=window or 0,
                        sessions=spec.sessions, instruments=spec.instruments, seed=spec.seed,
                        session_ids=self.session_ids,
                        expected_trades=(workload.expected.fills or 0) if workload.expected else 0,
                        expected_trades_exact=(workload.expected is not None and workload.expected.fills is not None
                                               and spec.sessions == 1),
                        stops=workload.expected.stops if workload.expected else 0,
                        icebergs=workload.expected.icebergs if workload.expected else 0,
                        stp_accounts=spec.stp_accounts)
        loop = self.loop()
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
        report.lost = sent - counts["answered"]
        for name in ("acked", "rejected", "duplicated", "trades", "trade_reports", "unsolicited_cancels",
                     "triggered", "stp_cancels", "stp_restated",
                     "message_rejects", "unknown_reports", "exec_seq_gaps", "heartbeats", "session_frames",
                     "terminations", "back_pressure", "reports_received", "report_bytes", "report_framed_bytes"):
            setattr(report, name, counts[name])
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
        self.last_loop, self.last_times = loop, times   # per-message times, for benchmarks' breakdowns

        if cancel_at_end:
            loop.mass_cancel(mass_cancel_frames(spec.first_cl_ord_id, n, len(self.sessions)), drain_timeout)
        for session, next_seq in zip(self.sessions, loop.next_seqs()):
            session.next_seq = next_seq
        return report, histogram


def mass_cancel_frames(first_cl_ord_id, n, sessions):
    """Session k's OrderMassCancelRequest (all instruments) after an n-message workload: clOrdId
    first + n + k, which the receive loop recognises."""
    from lob.sbe import messages

    return [messages.encode("OrderMassCancelRequest", clOrdId=first_cl_ord_id + n + k, instrumentId=0, side="Both")
            for k in range(sessions)]


def _progress(total, enabled):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="msg", unit_scale=True, desc="answered", file=sys.stderr, leave=False,
                dynamic_ncols=True, mininterval=0.2)


def transport_client(aeron):
    """(a lob.transport Client on the same driver as `aeron`, whether the caller must close it)."""
    from lob.transport.client import Client

    if isinstance(aeron, Client):
        return aeron, False
    return Client(aeron.dir, client_name="lob-loadgen"), True


def load_credentials(path=None):
    """The sessions of a credentials file (default: the sample file)."""
    from lob import credentials
    from lob.tools import examples

    return credentials.load(path or examples.credentials_path())


def select_sessions(credentials, ids=None):
    """The credentials of the sessions named in `ids` ("1001,1003"), in that order; all of them if None."""
    if not ids:
        return credentials
    by_id = {c.session_id: c for c in credentials}
    try:
        wanted = [int(i) for i in ids.split(",") if i.strip()]
    except ValueError:
        raise ValueError(f"--session-ids {ids!r}: expected comma-separated numbers") from None
    missing = [i for i in wanted if i not in by_id]
    if missing or not wanted:
        raise ValueError(f"--session-ids: {', '.join(map(str, missing)) or 'none given'} not in the credentials file")
    return [by_id[i] for i in wanted]


def run_workload(aeron, config, encoded, credentials=None, *, rate=None, window=None, progress=False,
                 drain_timeout=10.0, cancel_at_end=True, idle="yield", fragment_limit=FRAGMENT_LIMIT, **session):
    """Log on, run `encoded` once, log off: (Report, histogram). `credentials` default: the sample file's.
    `session`: more LoadGenerator keywords (logon_timeout, response_host, response_stream, keep_alive_ms)."""
    credentials = credentials if credentials is not None else load_credentials()
    generator = LoadGenerator(aeron, config, encoded, credentials, idle=idle, fragment_limit=fragment_limit,
                              **session)
    try:
        result = generator.run(rate=rate, window=window, progress=progress, drain_timeout=drain_timeout,
                               cancel_at_end=cancel_at_end)
    finally:
        generator.close()
    result[0].logged_off = generator.logged_off
    return result


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
    parser.add_argument("--credentials", metavar="FILE", default=None,
                        help="session credentials (lob/credentials.py has the format; default: the sample file "
                             "examples/credentials.txt)")
    parser.add_argument("--sessions", type=int, default=1,
                        help="log on as the first N sessions of the credentials file (default 1)")
    parser.add_argument("--session-ids", metavar="LIST", default=None,
                        help="log on as these sessions of the credentials file instead (comma-separated ids)")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    parser.add_argument("--tick", type=int, default=1, help="price tick of every instrument (default 1)")
    add_order_type_arguments(parser)
    parser.add_argument("--drain-timeout", type=float, default=10.0,
                        help="seconds to wait for outstanding responses after the last send (default 10)")
    parser.add_argument("--keep-orders", action="store_true",
                        help="no mass cancel at the end (the orders stay only for sessions whose credentials say "
                             "cancel_on_disconnect=no: Terminate cancels the others)")
    parser.add_argument("--keep-alive-ms", type=int, default=DEFAULT_KEEP_ALIVE_MS,
                        help="keep-alive interval given at Establish; the run sends no heartbeats, so the engine "
                             f"ends a session silent for three of them (default {DEFAULT_KEEP_ALIVE_MS})")
    parser.add_argument("--logon-timeout", type=float, default=10.0,
                        help="seconds each session's logon (Negotiate, Establish) may take (default 10)")
    parser.add_argument("--response-host", default=DEFAULT_RESPONSE_HOST,
                        help="the address the engine sends each session's execution stream to, on a free UDP "
                             f"port (default {DEFAULT_RESPONSE_HOST})")
    parser.add_argument("--response-stream", type=int, default=RESPONSE_STREAM_ID,
                        help=f"stream id of the sessions' execution streams (default {RESPONSE_STREAM_ID})")
    parser.add_argument("--hdr-out", metavar="PATH", help="write the HdrHistogram percentile distribution (µs)")
    parser.add_argument("--json", metavar="PATH", help="write the report as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--idle", default="yield",
                        help="idle strategy of the send/receive loop: yield, spin, sleep:NS, backoff (default yield)")
    parser.add_argument("--fragment-limit", type=int, default=FRAGMENT_LIMIT,
                        help=f"execution reports read per poll (default {FRAGMENT_LIMIT})")
    connection.add_arguments(parser)


def add_order_type_arguments(parser):
    """The order-type mix of the workload (lob.tools.workload.WorkloadSpec); `make run`'s demo shares them."""
    from lob.tools.workload import STP_MODES

    group = parser.add_argument_group("order types")
    group.add_argument("--stop-share", type=float, default=0.0, metavar="F",
                       help="share of the new orders sent as stop-limits, 0..1 (stop 25 ticks beyond the drawn "
                            "price, limit 2 beyond the stop) (default 0)")
    group.add_argument("--iceberg-share", type=float, default=0.0, metavar="F",
                       help="share of the new orders sent as icebergs showing a fifth of their quantity, 0..1 "
                            "(default 0)")
    group.add_argument("--stp-accounts", type=int, default=0, metavar="N",
                       help="spread the new orders over accounts 0..N-1, each with self-trade prevention "
                            "--stp-mode (default 0: account 0, no self-trade prevention)")
    group.add_argument("--stp-mode", default="CancelResting", choices=STP_MODES,
                       help="self-trade prevention mode of the orders with --stp-accounts (default CancelResting)")


def order_type_options(args):
    """WorkloadSpec keywords from add_order_type_arguments' flags."""
    return dict(stop_share=args.stop_share, iceberg_share=args.iceberg_share, stp_accounts=args.stp_accounts,
                stp_mode=args.stp_mode)


def run(args):
    from lob.client import connection

    from lob.credentials import CredentialsError

    if args.orders < 1 or args.rate <= 0 or args.window < 1 or args.fragment_limit < 1 or args.sessions < 1:
        print("lob loadgen: --orders, --rate, --window, --sessions and --fragment-limit must be positive",
              file=sys.stderr)
        return 2
    try:
        from lob.transport.idle import IdleStrategy

        IdleStrategy(args.idle)
        credentials = select_sessions(load_credentials(args.credentials), args.session_ids)
        if args.session_ids:
            args.sessions = len(credentials)
        if len(credentials) < args.sessions:
            raise ValueError(f"--sessions {args.sessions}: the credentials file has {len(credentials)} sessions")
        config = connection.config_from_args(args)
        spec = WorkloadSpec(orders=args.orders, seed=args.seed, instruments=args.instrument_count,
                            sessions=args.sessions, tick=args.tick, **order_type_options(args))
    except (ValueError, OSError, CredentialsError) as exc:
        print(f"lob loadgen: {exc}", file=sys.stderr)
        return 2
    print(f"lob loadgen: encoding {spec.orders:,} messages (seed {spec.seed}) ...", file=sys.stderr)
    encoded = generate(spec).encode()
    try:
        with connection.connect(config) as conn:
            report, histogram = run_workload(
                conn.aeron, config, encoded, credentials, rate=None if args.closed_loop else args.rate,
                window=args.window if args.closed_loop else None, progress=not args.no_progress,
                drain_timeout=args.drain_timeout, cancel_at_end=not args.keep_orders, idle=args.idle,
                fragment_limit=args.fragment_limit, logon_timeout=args.logon_timeout,
                response_host=args.response_host, response_stream=args.response_stream,
                keep_alive_ms=args.keep_alive_ms)
    except (TimeoutError, LogonError) as exc:
        print(f"lob loadgen: {exc}", file=sys.stderr)
        return 1
    print(report.format())
    if args.hdr_out:
        write_percentile_distribution(histogram, args.hdr_out)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report.to_json(), out, indent=2)
            out.write("\n")
    return 0 if report.lost == 0 and report.duplicated == 0 and report.logged_off == report.sessions else 1
