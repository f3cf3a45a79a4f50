"""The engine over Aeron UDP against the transport ceiling, on this machine, in one run.

(a) raw Aeron UDP echo of same-size frames, no matching (benchmarks/bench_echo.py): the ceiling;
(b) `lob engine` (subprocess, attached to an embedded shared-mode driver in this process, with the sample
    credentials) under the load generator, logged on as `--sessions` sessions each with its private
    execution stream: closed-loop maximum throughput, and open-loop round-trip latency at each offered
    rate (latency from each message's scheduled send time: no coordinated omission).
Prints both, the ratio (b) closed loop / (a), and what the execution streams carry per inbound message
(SBE bytes, and with Aeron's framing).

    python benchmarks/bench_e2e.py --json results/e2e.json
    python benchmarks/bench_e2e.py --seconds 2 --rates 10000,50000     # quicker
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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="length of each open-loop run and of the echo measurement (default 5)")
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
    parser.add_argument("--engine-fragment-limit", type=int, default=None,
                        help="fragments per engine poll (default: the engine's)")
    parser.add_argument("--engine-arg", action="append", default=[], metavar="ARG",
                        help="one more `lob engine` argument (repeat for more), e.g. --engine-arg=--no-prefault")
    parser.add_argument("--sparse-terms", action="store_true",
                        help="create the driver's log buffers sparse (pages allocated on first write), "
                             "not whole (the default)")
    parser.add_argument("--skip-echo", action="store_true", help="do not measure the echo ceilings")
    parser.add_argument("--stall-seconds", type=float, default=2.0,
                        help="seconds of the platform stall measurement, 0: none (default 2)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--hdr-dir", metavar="DIR", help="write each run's HdrHistogram percentile distribution here")
    return parser.parse_args(argv)


def measure_echo(args, size, **shape):
    from bench_echo import measure_echo_ceiling

    return measure_echo_ceiling(args.seconds, size, idle=args.echo_idle, driver_idle=args.driver_idle,
                                sparse_terms=args.sparse_terms, **shape)


def run_engine(args, rates, frame_size_out):
    from lob.client import connection
    from lob.tools import loadgen
    from lob.tools.demo import LocalStack
    from lob.tools.workload import WorkloadSpec, generate

    largest = max([int(r * args.seconds) for r in rates] + [args.closed_loop_orders, args.warmup_orders, 1])
    print(f"generating and encoding {largest:,} messages (seed {args.seed}) ...", flush=True)
    t0 = time.perf_counter()
    spec = WorkloadSpec(orders=largest, seed=args.seed, sessions=args.sessions)
    encoded = generate(spec).encode()
    encoded.frame_list()
    frame_size_out.append(encoded.lengths[0])
    print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)

    results = {"open_loop": {}, "runs": []}
    engine_args = ["--idle", args.engine_idle]
    if args.engine_fragment_limit:
        engine_args += ["--fragment-limit", str(args.engine_fragment_limit)]
    engine_args += args.engine_arg
    with LocalStack(instruments={1: 1}, engine_args=engine_args, driver_idle=args.driver_idle,
                    driver_options={"sparse_terms": args.sparse_terms}) as stack, \
            connection.connect(stack.config) as conn:
        credentials = stack.sessions()
        options = {"idle": args.idle} if args.idle != "yield" else {}

        def once(count, **mode):
            report, histogram = loadgen.run_workload(conn.aeron, stack.config, encoded.head(count), credentials,
                                                     drain_timeout=30.0, **options, **mode)
            results["runs"].append(report.to_json())
            return report, histogram

        if args.warmup_orders:
            report, _ = once(args.warmup_orders, window=args.window)
            print(f"warm-up: {report.sent:,} messages closed loop, {report.throughput_per_s:,.0f} msg/s, "
                  f"lost {report.lost}", flush=True)

        report, histogram = once(args.closed_loop_orders, window=args.window)
        print(report.format(), flush=True)
        results["closed_loop"] = report.to_json()
        if args.hdr_dir:
            loadgen.write_percentile_distribution(histogram, os.path.join(args.hdr_dir, "closed_loop.hdr"))

        for rate in rates:
            count = max(1, int(rate * args.seconds))
            report, histogram = once(count, rate=rate)
            print(report.format(), flush=True)
            lat = report.latency_us
            results["open_loop"][str(rate)] = {
                "achieved_per_s": round(report.throughput_per_s, 1),
                "p50_us": lat.get("p50"), "p99_us": lat.get("p99"), "p999_us": lat.get("p99.9"),
                "max_us": lat.get("max"), "lost": report.lost,
                "duplicated": report.duplicated, "sent": report.sent, "send_rate_per_s": round(report.send_rate_per_s, 1),
                "logged_off": report.logged_off,
            }
            if args.hdr_dir:
                loadgen.write_percentile_distribution(histogram, os.path.join(args.hdr_dir, f"open_{rate}.hdr"))
        stack.stop_engine()
        results["engine_final_status"] = next((l for l in reversed(stack.lines) if "stopped" in l), None)
    results["leftovers"] = stack.leftovers()
    return results


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

    echo = shaped = None
    if not args.skip_echo:
        print(f"\nraw Aeron UDP echo of {size}-byte frames for {args.seconds:g} s ...", flush=True)
        echo = measure_echo(args, size)
        if reply_size >= 16 and replies_per_message >= 1.0:
            print(f"the same, answered with {replies_per_message:.2f} replies of {reply_size} bytes per message ...",
                  flush=True)
            shaped = measure_echo(args, size, reply_size=reply_size, replies_per_ping=replies_per_message)
    echo_rate = echo["echo_ceiling_per_s"] if echo else None
    shaped_rate = shaped["echo_ceiling_per_s"] if shaped else None
    runs = engine["runs"]
    lost = sum(r["lost"] for r in runs)
    duplicated = sum(r["duplicated"] for r in runs)
    not_logged_off = sum(r["sessions"] - r["logged_off"] for r in runs)
    sent = max(closed["sent"], 1)
    stream_bytes = {"sbe_per_message": closed["report_bytes"] / sent,
                    "aeron_framed_per_message": closed["report_framed_bytes"] / sent,
                    "messages_per_message": replies_per_message, "sbe_per_report": reply_size}

    print("\n== lob end-to-end over Aeron UDP (127.0.0.1, one shared-mode driver, "
          f"{os.cpu_count()} cores) ==")
    print(f"    idle: load generator {args.idle}, engine {args.engine_idle}, driver {args.driver_idle}; "
          f"load average {os.getloadavg()[0]:.2f}")
    if stalls:
        print(f"    platform stalls (nothing else running): {stalls['lost_fraction']:.1%} of a core's time lost to "
              f"stalls > 50 µs; {stalls['stalls_over_1ms']} stalls > 1 ms in {stalls['seconds']:g} s, longest "
              f"{stalls['max_us'] / 1000:,.1f} ms (worst of 2 threads)")
    if echo_rate:
        print(f"(a) raw echo ceiling         {echo_rate:>12,.0f} msg/s   ({size}-byte frames, no matching)")
    if shaped_rate:
        print(f"(a') echo, engine's answers  {shaped_rate:>12,.0f} msg/s   ({replies_per_message:.2f} replies of "
              f"{reply_size} bytes per {size}-byte message, no matching)")
    print(f"(b) engine, closed loop      {engine_rate:>12,.0f} msg/s   (window {args.window}; "
          f"p50 {closed['latency_us'].get('p50', 0):,.1f} µs, p99 {closed['latency_us'].get('p99', 0):,.1f} µs)")
    print(f"    execution streams        {stream_bytes['sbe_per_message']:>12.1f} SBE bytes per inbound message "
          f"({replies_per_message:.2f} reports of {reply_size} bytes); "
          f"{stream_bytes['aeron_framed_per_message']:.1f} with Aeron framing")
    if echo_rate:
        print(f"    ratio (b)/(a)            {engine_rate / echo_rate:>12.2f}   (same-size echo)")
    if shaped_rate:
        print(f"    ratio (b)/(a')           {engine_rate / shaped_rate:>12.2f}")
    print("    open loop (latency from the scheduled send time):")
    print(f"    {'offered/s':>10} {'achieved/s':>11} {'p50 µs':>9} {'p99 µs':>9} {'p99.9 µs':>9} {'max µs':>9} {'lost':>5}")
    for rate, r in engine["open_loop"].items():
        print(f"    {int(rate):>10,} {r['achieved_per_s']:>11,.0f} {r['p50_us']:>9,.1f} {r['p99_us']:>9,.1f} "
              f"{r['p999_us']:>9,.1f} {r['max_us']:>9,.1f} {r['lost']:>5}")
    print(f"    lost {lost}, duplicated {duplicated} over {len(runs)} runs ({sum(r['sent'] for r in runs):,} messages)"
          + (f"; {not_logged_off} session(s) not logged off" if not_logged_off else ""))
    if engine.get("engine_final_status"):
        print(f"    engine: {engine['engine_final_status']}")

    if args.json:
        out = {
            "echo_ceiling_per_s": echo_rate,
            "engine_closed_loop_per_s": engine_rate,
            "ratio": engine_rate / echo_rate if echo_rate else None,
            "echo_engine_shaped_per_s": shaped_rate,
            "ratio_engine_shaped": engine_rate / shaped_rate if shaped_rate else None,
            "engine_answers": {"replies_per_message": replies_per_message, "reply_size": reply_size},
            "execution_stream_bytes": stream_bytes,
            "echo_engine_shaped": shaped,
            "platform_stalls": stalls,
            "lost": lost,
            "duplicated": duplicated,
            "open_loop": engine["open_loop"],
            "closed_loop": closed,
            "echo": echo,
            "frame_size": size,
            "seconds": args.seconds,
            "window": args.window,
            "idle": {"loadgen": args.idle, "engine": args.engine_idle, "driver": args.driver_idle,
                     "echo": args.echo_idle},
            "sparse_terms": args.sparse_terms,
            "engine_args": args.engine_arg,
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
