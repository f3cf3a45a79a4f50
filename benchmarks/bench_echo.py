"""Raw Aeron UDP echo (no matching): the transport's ceiling on this machine.

One embedded media driver (shared threading, yield idle), two processes: this one pings, a child
process (this file with --role pong) echoes every frame back from a C fragment handler. Both loops
yield when a poll finds no work. Frames are same-size; UDP unicast over 127.0.0.1.

With --reply-size S --replies-per-ping R the pong answers like the engine instead: S-byte replies,
R per ping on average (the first one is timed; see lob.transport.echo): the ceiling for the engine's
own traffic.

Two phases:
  throughput  up to --window frames in flight: echoes per second is the ceiling the engine is compared to;
              the round trips include the queueing that throughput causes
  ping-pong   one frame in flight: the unloaded round-trip latency

    python benchmarks/bench_echo.py --seconds 5 --size 64 --json results/echo.json

`measure_echo_ceiling(seconds, size)` returns the same figures as a dict.
"""
import argparse
import json
import os
import subprocess
import sys
import time

PING_STREAM = 2001
PONG_STREAM = 2002
PERCENTILES = (50, 90, 99, 99.9)


def _channel(port):
    return f"aeron:udp?endpoint=127.0.0.1:{port}"


def _histogram(rtt_ns):
    from hdrh.histogram import HdrHistogram
    histogram = HdrHistogram(1, 60_000_000_000, 3)
    for value, count in rtt_ns:
        histogram.record_value(max(1, int(value)), count)
    return histogram


def _latency(result):
    histogram = _histogram(result["rtt_ns"])
    figures = {f"p{str(p).replace('.', '')}_us": histogram.get_value_at_percentile(p) / 1000 for p in PERCENTILES}
    figures["max_us"] = result["max_ns"] / 1000
    figures["mean_us"] = histogram.get_mean_value() / 1000
    return figures, histogram


def measure_echo_ceiling(seconds=5.0, size=64, *, window=256, pingpong_seconds=None, warmup=1.0,
                         idle="yield", driver_idle="yield", histogram_out=None, reply_size=0, replies_per_ping=1.0,
                         sparse_terms=False, socket_buffer=None, driver_threading="shared"):
    """Echo throughput ceiling and round-trip latency of same-size frames over one embedded driver
    (reply_size > 0: shaped replies, see the module's docstring).

    Returns {"echo_ceiling_per_s", "size", "window", "seconds", "sent", "received", "lost",
    "out_of_order", "throughput": {...latency under load}, "pingpong": {"round_trips_per_s", p50_us,
    p90_us, p99_us, p999_us, max_us, mean_us}}.
    """
    from lob.transport.client import Client
    from lob.transport.driver import MediaDriver, free_udp_ports
    from lob.transport.echo import run_ping, send_stop

    pingpong_seconds = seconds if pingpong_seconds is None else pingpong_seconds
    ping_port, pong_port = free_udp_ports(2)
    driver = MediaDriver(idle=driver_idle, sparse_terms=sparse_terms, socket_buffer=socket_buffer,
                         threading=driver_threading)
    pong = client = None
    try:
        pong = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--role", "pong", "--aeron-dir", driver.dir,
             "--ping-port", str(ping_port), "--pong-port", str(pong_port), "--idle", idle,
             "--reply-size", str(reply_size), "--replies-per-ping", repr(replies_per_ping)],
            stdout=subprocess.PIPE, text=True)
        if pong.stdout.readline().strip() != "ready":
            raise RuntimeError("the pong process did not start")
        client = Client(driver.dir, client_name="bench-echo-ping")
        publication = client.add_exclusive_publication(_channel(ping_port), PING_STREAM)
        subscription = client.add_subscription(_channel(pong_port), PONG_STREAM)
        if not (publication.wait_connected(10.0) and subscription.wait_connected(10.0)):
            raise RuntimeError("ping and pong did not connect within 10 s")
        loaded = run_ping(subscription, publication, size, seconds, window=window, warmup=warmup,
                          idle_strategy=idle)
        single = run_ping(subscription, publication, size, pingpong_seconds, window=1, warmup=min(warmup, 0.5),
                          idle_strategy=idle, first_sequence=loaded["next_sequence"])
        send_stop(publication)
        pong.wait(timeout=10)
    finally:
        if pong is not None and pong.poll() is None:
            pong.kill()
            pong.wait()
        if client is not None:
            client.close()
        driver.close()
    loaded_latency, _ = _latency(loaded)
    single_latency, histogram = _latency(single)
    if histogram_out:
        with open(histogram_out, "w") as f:
            histogram.output_percentile_distribution(f, 1000.0)
    ceiling = loaded["measured_received"] / loaded["measured_seconds"] if loaded["measured_seconds"] else 0.0
    answered = loaded["received"] + single["received"]
    return {
        "echo_ceiling_per_s": ceiling,
        "size": size, "window": window, "seconds": seconds,
        "reply_size": reply_size or size,
        "replies_per_ping": (answered + loaded["extra_replies"] + single["extra_replies"]) / answered if answered else 0.0,
        "sent": loaded["sent"] + single["sent"], "received": loaded["received"] + single["received"],
        "lost": loaded["lost"] + single["lost"], "out_of_order": loaded["out_of_order"] + single["out_of_order"],
        "throughput": {"per_s": ceiling, "back_pressure": loaded["back_pressure"], **loaded_latency},
        "pingpong": {"round_trips_per_s": (single["measured_received"] / single["measured_seconds"]
                                           if single["measured_seconds"] else 0.0), **single_latency},
    }


def _pong(args):
    from lob.transport.client import Client
    from lob.transport.echo import run_pong

    with Client(args.aeron_dir, client_name="bench-echo-pong") as client:
        subscription = client.add_subscription(_channel(args.ping_port), PING_STREAM)
        publication = client.add_exclusive_publication(_channel(args.pong_port), PONG_STREAM)
        print("ready", flush=True)
        run_pong(subscription, publication, idle_strategy=args.idle, reply_size=args.reply_size,
                 replies_per_ping=args.replies_per_ping)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per phase (default 5)")
    parser.add_argument("--size", type=int, default=64, help="frame size in bytes (default 64, min 16)")
    parser.add_argument("--window", type=int, default=256, help="frames in flight in the throughput phase")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring (default 1)")
    parser.add_argument("--reply-size", type=int, default=0,
                        help="pong answers with replies of this size (default 0: the echo, same size)")
    parser.add_argument("--replies-per-ping", type=float, default=1.0,
                        help="with --reply-size: replies per ping on average, >= 1 (default 1)")
    parser.add_argument("--idle", default="yield", help="idle strategy of the ping and pong loops")
    parser.add_argument("--driver-idle", default="yield", help="idle strategy of the media driver")
    parser.add_argument("--sparse-terms", action="store_true",
                        help="create the driver's log buffers sparse (pages allocated on first write), "
                             "not whole (the default)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--hdr-out", metavar="PATH", help="write the ping-pong percentile distribution")
    parser.add_argument("--role", choices=("bench", "pong"), default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--aeron-dir", help=argparse.SUPPRESS)
    parser.add_argument("--ping-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pong-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "pong":
        return _pong(args)
    started = time.monotonic()
    r = measure_echo_ceiling(args.seconds, args.size, window=args.window, warmup=args.warmup, idle=args.idle,
                             driver_idle=args.driver_idle, histogram_out=args.hdr_out, reply_size=args.reply_size,
                             replies_per_ping=args.replies_per_ping, sparse_terms=args.sparse_terms)
    t, p = r["throughput"], r["pingpong"]
    replies = (f", answered with {r['replies_per_ping']:.2f} replies of {r['reply_size']} bytes each"
               if args.reply_size else "")
    print(f"raw Aeron UDP echo, {r['size']}-byte frames{replies}, one embedded shared-mode driver, 2 processes "
          f"({os.cpu_count()} cores)")
    print(f"  throughput  {r['echo_ceiling_per_s']:>12,.0f} echoes/s  (window {r['window']}; round trip "
          f"p50 {t['p50_us']:.1f} µs  p99 {t['p99_us']:.1f} µs  max {t['max_us']:.1f} µs)")
    print(f"  ping-pong   {p['round_trips_per_s']:>12,.0f} round trips/s  p50 {p['p50_us']:.1f} µs  "
          f"p90 {p['p90_us']:.1f} µs  p99 {p['p99_us']:.1f} µs  p99.9 {p['p999_us']:.1f} µs  max {p['max_us']:.1f} µs")
    print(f"  sent {r['sent']:,}  received {r['received']:,}  lost {r['lost']}  out of order {r['out_of_order']}"
          f"  ({time.monotonic() - started:.1f} s)")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0 if r["lost"] == 0 and r["out_of_order"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
