"""The engine over Aeron UDP against the transport's ceilings, on this machine, in one run.

(a) raw Aeron echoes in closed loop, no matching: same-size frames echoed once, and (a') answered as the engine
    answers; C pongs on the same driver started like the engine, in `--closed-loop-pairs` rounds interleaved
    with (b)'s closed loop (the side not measured stopped): the throughput ceiling, ratios as medians;
(b) `lob engine` (subprocess, attached to the driver embedded in this process (`--driver-threading`), with a generated
    credentials file) under the load generator, logged on as `--sessions` sessions each with its private
    execution stream: closed-loop maximum throughput, and open-loop round-trip latency at each offered
    rate (latency from each message's scheduled send time: no coordinated omission);
(c) the latency ceiling (benchmarks/latency_ceiling.py): a C pong on the same driver, started like the
    engine, answering the workload's frame sizes as the engine answers (its average number and size of
    execution messages, on a publication to the sender's response channel), timed like (b); at every
    offered rate, `--repeats` times, interleaved with (b) in alternating order, the side not measured
    stopped (SIGSTOP) so that its idle loop does not compete;
(d) where (b)'s round trips go: the engine runs with its latency trace (`--trace-file`, off with
    --no-trace), joined per message with the load generator's send and receive times
    (benchmarks/latency_breakdown.py);
(e) `--sessions-sweep` session counts at the same aggregate rates (`--sweep-rates`), per session and overall.
Prints the platform's stalls first, then all of it with the ratios engine/ceiling.

    python benchmarks/bench_e2e.py --json results/e2e.json          # the full set (~6 min on a quiet machine)
    python benchmarks/bench_e2e.py --seconds 2 --rates 10000,50000 --sessions-sweep= --skip-echo   # quicker
    python benchmarks/bench_e2e.py --idle backoff:1000:50000 --engine-idle backoff:1000:50000   # see README

The workload is the benchmark mix (lob.tools.workload) from a fixed seed, encoded once before any
clock starts; each run uses a prefix of it, logs on, cancels its leftover orders at the end and logs
off, so every run starts from an empty book.
"""
import argparse
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

DEFAULT_RATES = (10_000, 50_000, 100_000, 200_000)


def _ints(text):
    return tuple(int(float(v)) for v in text.split(",") if v.strip())


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="length of each open-loop run (default 5)")
    parser.add_argument("--rates", default=",".join(str(r) for r in DEFAULT_RATES),
                        help="offered rates for the open-loop runs, msg/s (default 10000,50000,100000,200000)")
    parser.add_argument("--closed-loop-orders", type=int, default=500_000,
                        help="messages in the closed-loop run (default 500000)")
    parser.add_argument("--window", type=int, default=256, help="closed-loop messages in flight (default 256)")
    parser.add_argument("--sessions", type=int, default=1,
                        help="load sessions, the first N of the sample credentials (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    parser.add_argument("--warmup-orders", type=int, default=50_000, help="closed-loop warm-up before measuring")
    parser.add_argument("--idle", default="yield", help="idle strategy of the load generator's loop (default yield)")
    parser.add_argument("--echo-idle", default="yield", help="idle strategy of the echo loops (default yield)")
    parser.add_argument("--engine-idle", default="yield", help="idle strategy of the engine's loop (default yield)")
    parser.add_argument("--driver-idle", default="yield", help="idle strategy of the media driver (default yield)")
    parser.add_argument("--driver-threading", default="dedicated", choices=("shared", "shared_network", "dedicated"),
                        help="threading mode of the media driver the load generator embeds, used by the echo "
                             "ceilings too (default dedicated: with one shared thread, 32-100 sessions at 50k/s "
                             "fall into a loss-recovery storm; benchmarks/README.md)")
    parser.add_argument("--engine-fragment-limit", type=int, default=None,
                        help="fragments per engine poll (default: the engine's)")
    parser.add_argument("--engine-arg", action="append", default=[], metavar="ARG",
                        help="one more `lob engine` argument (repeat for more), e.g. --engine-arg=--no-prefault")
    parser.add_argument("--sparse-terms", action="store_true",
                        help="create the driver's log buffers sparse (pages allocated on first write), "
                             "not whole (the default)")
    parser.add_argument("--skip-echo", action="store_true", help="do not measure the echo ceilings")
    parser.add_argument("--closed-loop-pairs", type=int, default=3,
                        help="rounds of engine closed loop, same-size echo and engine-shaped echo on the same driver, "
                             "in alternating order; the ratios are their medians (default 3)")
    parser.add_argument("--echo-seconds", type=float, default=1.0,
                        help="measured length of each closed-loop echo run (default 1)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="interleaved ceiling/engine pairs per offered rate (default 2)")
    parser.add_argument("--no-ceiling", action="store_true", help="do not measure the latency ceiling")
    parser.add_argument("--sessions-sweep", type=_ints, default=(1, 8, 32, 100), metavar="N1,N2,...",
                        help="session counts measured at the same aggregate rates (default 1,8,32,100; '' none)")
    parser.add_argument("--sweep-rates", type=_ints, default=(10_000, 50_000), metavar="R1,R2,...",
                        help="aggregate offered rates of the sessions sweep (default 10000,50000)")
    parser.add_argument("--private-term-kb", type=int, default=1024,
                        help="term length of the engine's private publications (default 1024, the engine's)")
    parser.add_argument("--socket-buffer-kb", type=int, default=0,
                        help="SO_RCVBUF/SO_SNDBUF of the driver's UDP sockets (default 0: Aeron's, 128 KiB)")
    parser.add_argument("--driver-setting", action="append", default=[], metavar="AERON_NAME=VALUE",
                        help="one more setting of the benchmark's media driver (repeat for more), e.g. "
                             "AERON_RECEIVER_IO_VECTOR_CAPACITY=16")
    parser.add_argument("--no-trace", action="store_true",
                        help="run the engine without its latency trace (no breakdown of the round trips)")
    parser.add_argument("--trace-capacity", type=int, default=1 << 21, help="records in the engine's trace ring")
    parser.add_argument("--stall-seconds", type=float, default=2.0,
                        help="seconds of the platform stall measurement, 0: none (default 2)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--hdr-dir", metavar="DIR", help="write each run's HdrHistogram percentile distribution here")
    return parser.parse_args(argv)


def write_credentials(path, count):
    """A credentials file with `count` load sessions (ids 1001..), random secrets, generous rates."""
    import secrets

    with open(path, "w") as f:
        f.write("# generated by benchmarks/bench_e2e.py for one run; secrets are random and thrown away\n")
        for k in range(count):
            f.write(f"{1001 + k} LOADGEN {secrets.token_hex(32)} rate=1000000 burst=200000\n")
    return path


def encode_workload(orders, seed, sessions):
    from lob.tools.workload import WorkloadSpec, generate

    encoded = generate(WorkloadSpec(orders=orders, seed=seed, sessions=sessions)).encode()
    encoded.frame_list()
    return encoded


def session_percentiles(round_trips, session_of, sessions):
    """p50/p99 (µs) of each session's answered messages."""
    from latency_ceiling import summarize

    per = [[] for _ in range(sessions)]
    for i, value in enumerate(round_trips):
        if value >= 0:
            per[session_of[i] if len(session_of) else 0].append(value)
    return [summarize(values) if values else {} for values in per]


class EngineRuns:
    """The engine stack of one benchmark: `lob engine` attached to the driver in this process, the load
    generator, and the latency ceiling's pong on the same driver; only one of engine and pong runs at a
    time, the other is stopped (SIGSTOP) so that its idle loop does not compete."""

    def __init__(self, args, stack, conn, trace_path):
        self.args, self.stack, self.conn, self.trace_path = args, stack, conn, trace_path
        self.credentials = stack.sessions()
        self.runs = []
        self.ceiling = None      # the pong answering as the engine answers
        self.same_size = None    # the pong echoing each message once, same size

    def engine_paused(self, paused):
        import signal

        if self.stack.process is not None and self.stack.process.poll() is None:
            os.kill(self.stack.process.pid, signal.SIGSTOP if paused else signal.SIGCONT)

    def once(self, encoded, sessions=1, **mode):
        """One load generator run over `sessions` sessions: (report, histogram, extras)."""
        from lob.tools import loadgen

        options = {"idle": self.args.idle} if self.args.idle != "yield" else {}
        since = trace_written(self.trace_path)
        drops = udp_receive_drops()
        generator = loadgen.LoadGenerator(self.conn.aeron, self.stack.config, encoded, self.credentials[:sessions],
                                          **options)
        try:
            transports = [session.transport for session in generator.sessions]
            report, histogram = generator.run(drain_timeout=30.0, **mode)
        finally:
            generator.close()
        report.logged_off = generator.logged_off
        if report.logged_off < sessions:
            print(f"  run {len(self.runs) + 1} ({report.sent:,} messages, {sessions} session(s)): "
                  f"{sessions - report.logged_off} not logged off; terminations by the engine during the run "
                  f"{report.terminations}; Terminate answers {generator.terminate_reasons}", flush=True)
        self.runs.append(report.to_json())
        extras = {"loop": generator.last_loop, "times": generator.last_times, "transports": transports,
                  "trace_since": since, "udp_drops": _drops_since(drops)}
        return report, histogram, extras

    def breakdown(self, encoded, extras, rate):
        from latency_breakdown import join, summarize
        from lob.latency_trace import read

        if not self.trace_path:
            return None
        loop, times = extras["loop"], extras["times"]
        rows, joined = join(read(self.trace_path, extras["trace_since"]), extras["transports"],
                            encoded.workload.session if len(extras["transports"]) > 1 else [],
                            loop.send_ns, loop.recv_ns, times["start_ns"], 1e9 / rate)
        summary = summarize(rows)
        summary.update(joined)
        return summary

    def _pong(self, reply_size, replies_per_message):
        from latency_ceiling import CeilingStack
        from lob.tools.loadgen_session import ORDER_ENTRY_TERM_LENGTH

        pong = CeilingStack(self.stack.aeron_dir, reply_size=reply_size, replies_per_ping=max(1.0, replies_per_message),
                            idle=self.args.echo_idle, term_length=self.args.private_term_kb << 10,
                            order_entry_term_length=ORDER_ENTRY_TERM_LENGTH)
        pong.pause()
        return pong

    def start_ceiling(self, reply_size, replies_per_message):
        self.ceiling = self._pong(reply_size, replies_per_message)

    def start_same_size_echo(self, size):
        self.same_size = self._pong(size, 1.0)

    def echo_closed_loop(self, pong, size):
        """`pong`'s closed-loop throughput on this driver, the engine stopped meanwhile."""
        self.engine_paused(True)
        pong.resume()
        try:
            return pong.closed_loop(size, self.args.echo_seconds, window=self.args.window)
        finally:
            pong.pause()
            self.engine_paused(False)

    def ceiling_run(self, lengths, rate):
        self.engine_paused(True)
        self.ceiling.resume()
        drops = udp_receive_drops()
        try:
            figures = self.ceiling.measure(lengths, rate)
            figures["udp_drops"] = _drops_since(drops)
            return figures
        finally:
            self.ceiling.pause()
            self.engine_paused(False)

    def close(self):
        for pong in (self.ceiling, self.same_size):
            if pong is not None:
                pong.close()

    def closed_loop_pairs(self, encoded, size):
        """`--closed-loop-pairs` rounds of the engine's closed loop, the same-size echo and the engine-shaped
        echo, on this driver, in alternating order: [{"engine", "echo", "echo_shaped", "ratio", ...}]."""
        pairs = []
        for index in range(self.args.closed_loop_pairs):
            sides = ["engine", "echo", "echo_shaped"]
            if index % 2:
                sides.reverse()
            pair = {}
            for side in sides:
                if side == "engine":
                    report, _, _ = self.once(encoded, self.args.sessions, window=self.args.window)
                    pair["engine"], pair["engine_lost"] = report.throughput_per_s, report.lost
                else:
                    pong = self.same_size if side == "echo" else self.ceiling
                    result = self.echo_closed_loop(pong, size)
                    pair[side], pair[side + "_lost"] = result["per_s"], result["lost"]
            pair["ratio"] = _ratio(pair["engine"], pair["echo"])
            pair["ratio_shaped"] = _ratio(pair["engine"], pair["echo_shaped"])
            print(f"closed loop pair {index + 1}: engine {pair['engine']:,.0f}, same-size echo {pair['echo']:,.0f}, "
                  f"engine-shaped echo {pair['echo_shaped']:,.0f} msg/s: ratios {pair['ratio'] or 0:.2f}, "
                  f"{pair['ratio_shaped'] or 0:.2f}", flush=True)
            pairs.append(pair)
        return pairs


def udp_receive_drops():
    """Datagrams the kernel dropped for want of receive-buffer space so far (Linux, this network
    namespace, every process's); None where /proc/net/snmp is not there."""
    try:
        with open("/proc/net/snmp") as f:
            lines = [line.split() for line in f if line.startswith("Udp:")]
        return int(lines[1][lines[0].index("RcvbufErrors")])
    except (OSError, ValueError, IndexError):
        return None


def _drops_since(before):
    after = udp_receive_drops()
    return after - before if after is not None and before is not None else None


def trace_written(path):
    if not path:
        return 0
    from lob.latency_trace import written
    return written(path)


def open_figures(report):
    lat = report.latency_us
    return {"achieved_per_s": round(report.throughput_per_s, 1), "p50_us": lat.get("p50"), "p90_us": lat.get("p90"),
            "p99_us": lat.get("p99"), "p999_us": lat.get("p99.9"), "max_us": lat.get("max"), "lost": report.lost,
            "duplicated": report.duplicated, "sent": report.sent,
            "send_rate_per_s": round(report.send_rate_per_s, 1), "logged_off": report.logged_off,
            "back_pressure": report.back_pressure}


def run_engine(args, rates, frame_size_out):
    import tempfile

    from lob.client import connection
    from lob.tools import loadgen
    from lob.tools.demo import LocalStack

    sweep = [n for n in args.sessions_sweep if n > 0]
    session_count = max([args.sessions, *sweep])
    largest = max([int(r * args.seconds) for r in rates] + [args.closed_loop_orders, args.warmup_orders, 1])
    print(f"generating and encoding {largest:,} messages (seed {args.seed}) ...", flush=True)
    t0 = time.perf_counter()
    encoded = encode_workload(largest, args.seed, args.sessions)
    frame_size_out.append(encoded.lengths[0])
    print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)

    results = {"open_loop": {}, "pairs": [], "sessions": [], "breakdown": {}}
    workdir = tempfile.mkdtemp(prefix="lob-bench-e2e-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    trace_path = None if args.no_trace else os.path.join(workdir, "engine.trace")
    engine_args = ["--idle", args.engine_idle, "--private-term-kb", str(args.private_term_kb)]
    if args.engine_fragment_limit:
        engine_args += ["--fragment-limit", str(args.engine_fragment_limit)]
    if trace_path:
        engine_args += ["--trace-file", trace_path, "--trace-capacity", str(args.trace_capacity)]
    engine_args += args.engine_arg
    credentials = write_credentials(os.path.join(workdir, "credentials.txt"), max(session_count, 1))
    # The pong and the engine are stopped in turn for a whole run: the driver must not time them out.
    driver_options = {"sparse_terms": args.sparse_terms, "client_liveness_timeout": 300.0,
                      "threading": args.driver_threading,
                      "socket_buffer": args.socket_buffer_kb << 10 or None,
                      "extra_settings": dict(v.split("=", 1) for v in args.driver_setting)}
    try:
        with LocalStack(instruments={1: 1}, engine_args=engine_args, driver_idle=args.driver_idle,
                        driver_options=driver_options, credentials=credentials) as stack, \
                connection.connect(stack.config) as conn:
            bench = EngineRuns(args, stack, conn, trace_path)
            results["engine_banner"] = [line for line in stack.lines
                                        if line.strip().startswith(("engine", "executions", "pools"))]
            try:
                if args.warmup_orders:
                    report, _, _ = bench.once(encoded.head(args.warmup_orders), args.sessions, window=args.window)
                    print(f"warm-up: {report.sent:,} messages closed loop, {report.throughput_per_s:,.0f} msg/s, "
                          f"lost {report.lost}", flush=True)
                report, histogram, _ = bench.once(encoded.head(args.closed_loop_orders), args.sessions,
                                                  window=args.window)
                print(report.format(), flush=True)
                results["closed_loop"] = closed = report.to_json()
                if args.hdr_dir:
                    loadgen.write_percentile_distribution(histogram, os.path.join(args.hdr_dir, "closed_loop.hdr"))
                reply_size = round(closed["report_bytes"] / closed["reports_received"]) if closed["reports_received"] else 0
                replies = closed["reports_received"] / closed["sent"] if closed["sent"] else 1.0
                if (not args.no_ceiling or not args.skip_echo) and reply_size >= 16:
                    print(f"latency ceiling: a pong answering {replies:.2f} messages of {reply_size} bytes per "
                          f"message on the same driver ...", flush=True)
                    bench.start_ceiling(reply_size, replies)
                    results["ceiling_shape"] = {"reply_size": reply_size, "replies_per_message": replies}
                if not args.skip_echo and bench.ceiling is not None and args.closed_loop_pairs:
                    bench.start_same_size_echo(encoded.lengths[0])
                    results["closed_loop_pairs"] = bench.closed_loop_pairs(encoded.head(args.closed_loop_orders),
                                                                           encoded.lengths[0])
                if args.no_ceiling and bench.ceiling is not None:
                    bench.ceiling.close()
                    bench.ceiling = None

                for repeat in range(args.repeats):
                    for position, rate in enumerate(rates):
                        count = max(1, int(rate * args.seconds))
                        head = encoded.head(count)
                        pair = {"rate": rate, "repeat": repeat}
                        sides = ["ceiling", "engine"] if (repeat + position) % 2 == 0 else ["engine", "ceiling"]
                        for side in sides:
                            if side == "ceiling":
                                if bench.ceiling is None:
                                    continue
                                pair["ceiling"] = c = bench.ceiling_run(head.lengths, rate)
                                print(f"ceiling  {rate:>9,}/s  p50 {c['p50_us']:>8,.1f}  p99 {c['p99_us']:>9,.1f}  "
                                      f"p99.9 {c['p999_us']:>9,.1f}  max {c['max_us']:>9,.1f} µs  lost {c['lost']}  "
                                      f"UDP drops {c['udp_drops']}", flush=True)
                            else:
                                report, histogram, extras = bench.once(head, args.sessions, rate=rate)
                                pair["engine"] = e = open_figures(report)
                                e["udp_drops"] = extras["udp_drops"]
                                print(f"engine   {rate:>9,}/s  p50 {e['p50_us']:>8,.1f}  p99 {e['p99_us']:>9,.1f}  "
                                      f"p99.9 {e['p999_us']:>9,.1f}  max {e['max_us']:>9,.1f} µs  lost {e['lost']}  "
                                      f"UDP drops {e['udp_drops']}", flush=True)
                                summary = bench.breakdown(head, extras, rate)
                                if summary:
                                    pair["breakdown"] = summary
                                if args.hdr_dir:
                                    loadgen.write_percentile_distribution(
                                        histogram, os.path.join(args.hdr_dir, f"open_{rate}_{repeat}.hdr"))
                        results["pairs"].append(pair)
                        results["open_loop"].setdefault(str(rate), pair["engine"])

                for sessions in sweep:
                    sweep_encoded = encode_workload(max(int(r * args.seconds) for r in args.sweep_rates), args.seed,
                                                    sessions)
                    for rate in args.sweep_rates:
                        head = sweep_encoded.head(max(1, int(rate * args.seconds)))
                        report, _, extras = bench.once(head, sessions, rate=rate)
                        loop, times = extras["loop"], extras["times"]
                        per = session_percentiles(loop.round_trips(1e9 / rate, times["start_ns"]),
                                                  head.workload.session if sessions > 1 else [], sessions)
                        p99s = sorted(p["p99_us"] for p in per if p)
                        row = {"sessions": sessions, "rate": rate, **open_figures(report), "udp_drops": extras["udp_drops"],
                               "per_session_p50_us": [p.get("p50_us") for p in per],
                               "per_session_p99_us": [p.get("p99_us") for p in per],
                               "session_p99_min_us": p99s[0] if p99s else None,
                               "session_p99_median_us": p99s[len(p99s) // 2] if p99s else None,
                               "session_p99_max_us": p99s[-1] if p99s else None}
                        summary = bench.breakdown(head, extras, rate)
                        if summary:
                            row["breakdown"] = summary
                        results["sessions"].append(row)
                        print(f"sessions {sessions:>4} at {rate:>7,}/s: p50 {row['p50_us']:,.1f} p99 {row['p99_us']:,.1f} "
                              f"p99.9 {row['p999_us']:,.1f} µs; per-session p99 {row['session_p99_min_us']:,.1f}.."
                              f"{row['session_p99_max_us']:,.1f} µs; lost {row['lost']} duplicated {row['duplicated']}; "
                              f"UDP drops {row['udp_drops']}",
                              flush=True)
                        if summary:
                            from latency_breakdown import format_summary
                            print(format_summary(summary), flush=True)
            finally:
                bench.close()
            results["runs"] = bench.runs
            stack.stop_engine()
            results["engine_final_status"] = next((l for l in reversed(stack.lines) if "stopped" in l), None)
        results["leftovers"] = stack.leftovers()
    finally:
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def median(values):
    values = sorted(values)
    return values[len(values) // 2] if values else None


def _ratio(a, b):
    return a / b if a is not None and b else None


def print_open_loop(engine):
    """Each interleaved pair: the latency ceiling and the engine at one offered rate, and their ratios."""
    print("    open loop, latency from the scheduled send time (µs); ceiling = raw Aeron shaped like the engine, "
          "same driver, same run:")
    print(f"    {'offered/s':>10} {'run':>3} {'':>8} {'p50':>8} {'p99':>9} {'p99.9':>9} {'max':>9} {'lost':>5} "
          f"{'UDP drops':>9}")
    for pair in engine["pairs"]:
        c, e = pair.get("ceiling"), pair["engine"]
        rows = ([("ceiling", c)] if c else []) + [("engine", e)]
        for name, f in rows:
            print(f"    {pair['rate']:>10,} {pair['repeat']:>3} {name:>8} {f['p50_us']:>8,.1f} {f['p99_us']:>9,.1f} "
                  f"{f['p999_us']:>9,.1f} {f['max_us']:>9,.1f} {f['lost']:>5} {str(f.get('udp_drops')):>9}")
        if c:
            ratios = {k: _ratio(e[k], c[k]) for k in ("p50_us", "p99_us", "p999_us", "max_us")}
            pair["ratios"] = ratios
            print(f"    {'':>10} {'':>3} {'ratio':>8} {ratios['p50_us']:>8.2f} {ratios['p99_us']:>9.2f} "
                  f"{ratios['p999_us']:>9.2f} {ratios['max_us']:>9.2f}")
        if pair.get("breakdown"):
            from latency_breakdown import format_summary
            print(format_summary(pair["breakdown"]))


def print_sessions(rows):
    if not rows:
        return
    print("    sessions at the same aggregate rate (each its own publication and private stream), µs:")
    print(f"    {'sessions':>8} {'offered/s':>10} {'p50':>8} {'p99':>9} {'p99.9':>9} {'session p99 min/med/max':>27} "
          f"{'lost':>5} {'dup':>4}")
    for r in rows:
        spread = f"{r['session_p99_min_us']:,.0f} / {r['session_p99_median_us']:,.0f} / {r['session_p99_max_us']:,.0f}"
        print(f"    {r['sessions']:>8} {r['rate']:>10,} {r['p50_us']:>8,.1f} {r['p99_us']:>9,.1f} {r['p999_us']:>9,.1f} "
              f"{spread:>27} {r['lost']:>5} {r['duplicated']:>4}")


def main(argv=None):
    args = parse_args(argv)
    rates = [int(float(r)) for r in args.rates.split(",") if r.strip()]
    if args.hdr_dir:
        os.makedirs(args.hdr_dir, exist_ok=True)

    stalls = None
    if args.stall_seconds > 0:
        from lob.tools.stalls import measure as measure_stalls
        print(f"platform stalls: 2 threads reading the clock for {args.stall_seconds:g} s ...", flush=True)
        stalls = measure_stalls(args.stall_seconds, threads=2, threshold_us=50.0)

    frame_size = []
    engine = run_engine(args, rates, frame_size)
    size = frame_size[0]
    closed = engine["closed_loop"]
    engine_rate = closed["throughput_per_s"]
    reply_size = round(closed["report_bytes"] / closed["reports_received"]) if closed["reports_received"] else 0
    replies_per_message = closed["reports_received"] / closed["sent"] if closed["sent"] else 0.0

    pairs = engine.get("closed_loop_pairs") or []
    echo_rate = median([p["echo"] for p in pairs])
    shaped_rate = median([p["echo_shaped"] for p in pairs])
    ratio = median([p["ratio"] for p in pairs if p["ratio"] is not None])
    ratio_shaped = median([p["ratio_shaped"] for p in pairs if p["ratio_shaped"] is not None])
    runs = engine["runs"]
    lost = sum(r["lost"] for r in runs)
    duplicated = sum(r["duplicated"] for r in runs)
    not_logged_off = sum(r["sessions"] - r["logged_off"] for r in runs)
    sent = max(closed["sent"], 1)
    stream_bytes = {"sbe_per_message": closed["report_bytes"] / sent,
                    "aeron_framed_per_message": closed["report_framed_bytes"] / sent,
                    "messages_per_message": replies_per_message, "sbe_per_report": reply_size}

    print(f"\n== lob end-to-end over Aeron UDP (127.0.0.1, one driver in {args.driver_threading} threading, "
          f"{os.cpu_count()} cores) ==")
    print(f"    idle: load generator {args.idle}, engine {args.engine_idle}, driver {args.driver_idle}; "
          f"load average {os.getloadavg()[0]:.2f}")
    if stalls:
        print(f"    platform stalls (nothing else running): {stalls['lost_fraction']:.1%} of a core's time lost to "
              f"stalls > 50 µs; {stalls['stalls_over_1ms']} stalls > 1 ms in {stalls['seconds']:g} s, longest "
              f"{stalls['max_us'] / 1000:,.1f} ms (worst of 2 threads)")
    print(f"(b) engine, closed loop      {engine_rate:>12,.0f} msg/s   (window {args.window}; "
          f"p50 {closed['latency_us'].get('p50', 0):,.1f} µs, p99 {closed['latency_us'].get('p99', 0):,.1f} µs)")
    print(f"    execution streams        {stream_bytes['sbe_per_message']:>12.1f} SBE bytes per inbound message "
          f"({replies_per_message:.2f} reports of {reply_size} bytes); "
          f"{stream_bytes['aeron_framed_per_message']:.1f} with Aeron framing")
    if pairs:
        print(f"    closed loop against raw Aeron on the same driver, {len(pairs)} interleaved rounds (msg/s):")
        print("     round      (b) engine   (a) same-size echo  (a') engine-shaped echo   (b)/(a)  (b)/(a')")
        for index, p in enumerate(pairs):
            print(f"     {index + 1:>5}  {p['engine']:>14,.0f}  {p['echo']:>19,.0f}  {p['echo_shaped']:>23,.0f}  "
                  f"{p['ratio'] or 0:>8.2f}  {p['ratio_shaped'] or 0:>8.2f}")
        print(f"    median                                                                  {ratio or 0:>8.2f}  "
              f"{ratio_shaped or 0:>8.2f}")
    print_open_loop(engine)
    print_sessions(engine["sessions"])
    print(f"    lost {lost}, duplicated {duplicated} over {len(runs)} runs ({sum(r['sent'] for r in runs):,} messages)"
          + (f"; {not_logged_off} session(s) not logged off" if not_logged_off else ""))
    if engine.get("engine_final_status"):
        print(f"    engine: {engine['engine_final_status']}")

    if args.json:
        out = {
            "echo_ceiling_per_s": echo_rate,
            "engine_closed_loop_per_s": engine_rate,
            "ratio": ratio,
            "echo_engine_shaped_per_s": shaped_rate,
            "ratio_engine_shaped": ratio_shaped,
            "closed_loop_pairs": pairs,
            "engine_answers": {"replies_per_message": replies_per_message, "reply_size": reply_size},
            "execution_stream_bytes": stream_bytes,
            "platform_stalls": stalls,
            "lost": lost,
            "duplicated": duplicated,
            "open_loop": engine["open_loop"],
            "pairs": engine["pairs"],
            "ceiling_shape": engine.get("ceiling_shape"),
            "sessions_sweep": engine["sessions"],
            "engine_banner": engine.get("engine_banner"),
            "closed_loop": closed,
            "frame_size": size,
            "seconds": args.seconds,
            "window": args.window,
            "idle": {"loadgen": args.idle, "engine": args.engine_idle, "driver": args.driver_idle, "driver_threading": args.driver_threading,
                     "echo": args.echo_idle},
            "sparse_terms": args.sparse_terms,
            "engine_args": args.engine_arg,
            "socket_buffer_kb": args.socket_buffer_kb,
            "driver_settings": args.driver_setting,
            "load_average": os.getloadavg(),
            "sessions": args.sessions,
            "seed": args.seed,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")
        print(f"wrote {args.json}")
    return 0 if lost == 0 and duplicated == 0 and not not_logged_off and not engine["leftovers"] else 1


if __name__ == "__main__":
    sys.exit(main())
