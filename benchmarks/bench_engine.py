"""In-process engine benchmark: throughput, per-message latency, memory, Python objects per message.

The workload is the standard one (lob.tools.workload, fixed seed): one instrument, ~60% passive limit
adds 1..20 ticks from a random-walk mid, ~30% cancels of a random live order, ~10% aggressive limits
crossing the opposite touch by 1..5 ticks, quantities 1..100. It is encoded once, as one buffer of
inbound records, before anything is timed; the buffer starts with the logon (Negotiate, Establish) of its
one session, whose credentials the engine is given.

1. Throughput: `Engine.process` over the whole buffer on a fresh engine (market data on), timed with
   perf_counter; the best of --passes runs counts, each on a fresh engine. A first pass runs before
   them and is only reported: it maps the process's memory in, and on a VM the first touch of fresh
   memory can cost several times the engine's own work.
2. Latency: a second fresh engine runs the same buffer through `process_timed`, which reads
   CLOCK_MONOTONIC around every message inside the nogil loop; the values go into an HdrHistogram.
3. Memory: a child process rests 1,000,000 non-crossing orders, fed in chunks so that input and output
   buffers stay small, and reports its peak RSS.
4. Python objects: sys.getallocatedblocks() around one more process() call whose output is dropped.
5. Order-types mix: the same messages with 10% of the new orders made stop-limits (stop 25 ticks on the
   far side of their price, limit 2 ticks beyond), 10% icebergs (display a fifth of the quantity), every
   new order on one of 8 accounts with self-trade prevention CancelResting (the workload's order types:
   the load generator's --stop-share 0.1 --iceberg-share 0.1 --stp-accounts 8); throughput as in 1.
6. Deep book: --deep-orders (200,000) limit orders at uniformly random prices within W ticks below
   (bids) or above (asks) a fixed mid, alternating sides, so nothing crosses; then all of them canceled
   in random order; market data off, pools prefaulted. Inserts/s and cancels/s for W = 10 (the shallow book, ~20 levels)
   and each --deep-ticks W, best of --passes, each pass on a fresh engine.

    python benchmarks/bench_engine.py [--messages N] [--seed S] [--json PATH] [--deep-only]
"""
import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from array import array
from collections import Counter

TARGET_MPS = 3_000_000
TARGET_MIX_MPS = 4_000_000
TARGET_P99_NS = 2_000
TARGET_RSS = 256 * 2 ** 20
SHALLOW_TICKS = 10
DEEP_TARGET_TICKS = 100_000     # ~126,000 levels with 200,000 orders
DEEP_TARGET_RATIO = 0.5         # of the shallow book's insert rate


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000, help="workload length (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    parser.add_argument("--rss-orders", type=int, default=1_000_000,
                        help="resting orders for the peak RSS measurement (default 1,000,000)")
    parser.add_argument("--passes", type=int, default=3,
                        help="timed throughput passes after the cold one; the best counts (default 3)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--deep-orders", type=int, default=200_000,
                        help="orders rested for the deep-book figure (default 200,000)")
    parser.add_argument("--deep-ticks", type=int, nargs="+", default=[100_000, 1_000_000], metavar="W",
                        help="price ranges per side, in ticks, for the deep-book figure (default 100,000 1,000,000)")
    parser.add_argument("--deep-only", action="store_true", help="measure the deep-book figure only")
    parser.add_argument("--rss-child", type=int, metavar="N", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def build_workload(messages, seed):
    from lob.tools.workload import generate, test_credentials

    workload = generate(orders=messages, seed=seed)
    credentials = test_credentials(workload.spec.sessions)
    return workload, credentials, workload.encode().inbound_records(credentials)


def new_engine(credentials):
    from lob.engine import Engine

    return Engine(sessions=credentials)


def measure_throughput(records, credentials, passes):
    """Seconds of the first (cold) pass and of each timed pass; each pass runs on a fresh engine."""
    timings = []
    for _ in range(1 + passes):
        engine = new_engine(credentials)
        start = time.perf_counter()
        out = engine.process(records)
        timings.append(time.perf_counter() - start)
        md = engine.take_market_data()
    return engine, timings[0], timings[1:], len(out), len(md)


def order_types_records(messages, seed, credentials, stops=0.10, icebergs=0.10, accounts=8):
    """The standard workload with stop-limits, icebergs and STP mixed in (see 5.), as inbound records."""
    from lob.tools.workload import generate

    workload = generate(orders=messages, seed=seed, stop_share=stops, iceberg_share=icebergs, stp_accounts=accounts)
    return workload.encode().inbound_records(credentials)


def measure_latency(records, credentials, messages):
    """Per-record times of the order messages (the logon records before them are left out)."""
    from hdrh.histogram import HdrHistogram

    logon = 2 * len(credentials)
    latencies = array("q", bytes(8 * (logon + messages)))
    outbound = new_engine(credentials).process_timed(records, latencies)
    histogram = HdrHistogram(1, 60_000_000_000, 3)
    for value, count in Counter(latencies[logon:]).items():
        histogram.record_value(max(value, 1), count)
    return histogram, outbound


def measure_python_blocks(records, credentials):
    engine = new_engine(credentials)
    engine.process(records[:0])
    before = sys.getallocatedblocks()
    engine.process(records)
    after = sys.getallocatedblocks()
    return after - before


def rest_orders(count, seed):
    """Child process: rest `count` orders, print the peak RSS in bytes."""
    from lob.client.wire import OrderEntryEncoder
    from lob.framing import INBOUND_HEADER
    from lob.tools.workload import LOGON_TIMESTAMP_NS, logon_records, test_credentials

    credentials = test_credentials(8)
    encoder = OrderEntryEncoder()
    frame_length = encoder.new_order_length
    record_length = INBOUND_HEADER.size + frame_length
    chunk = 10_000
    buf = bytearray(chunk * record_length)
    rng = random.Random(seed)
    mid = 1_000_000
    engine = new_engine(credentials)
    engine.process(logon_records(credentials, LOGON_TIMESTAMP_NS))
    for first in range(0, count, chunk):
        n = min(chunk, count - first)
        for j in range(n):
            i = first + j
            offset = j * record_length
            side = 1 + (i & 1)
            ticks = 1 + rng.randrange(5_000)
            price = mid - ticks if side == 1 else mid + ticks
            INBOUND_HEADER.pack_into(buf, offset, frame_length, credentials[i % 8].session_id, LOGON_TIMESTAMP_NS)
            encoder.pack_new_order(buf, offset + INBOUND_HEADER.size, i + 1, 1, side, price, 1 + rng.randrange(100))
        engine.process(memoryview(buf)[:n * record_length])
        engine.take_market_data()
    if engine.live_orders != count:
        raise SystemExit(f"only {engine.live_orders} of {count} orders rest")
    return peak_rss_bytes()


def deep_book_records(orders, ticks, seed):
    """Inbound records: the logon, `orders` non-crossing limit orders at uniform prices within `ticks` of
    the mid on their side, and cancels of all of them in random order."""
    from lob.client.wire import OrderEntryEncoder
    from lob.framing import INBOUND_HEADER
    from lob.tools.workload import LOGON_TIMESTAMP_NS, logon_records, test_credentials

    credentials = test_credentials(1)
    session = credentials[0].session_id
    encoder = OrderEntryEncoder()
    rng = random.Random(seed)
    mid = 2 * ticks + 10

    def records(frame_length, count, pack):
        record_length = INBOUND_HEADER.size + frame_length
        buf = bytearray(count * record_length)
        for i in range(count):
            offset = i * record_length
            INBOUND_HEADER.pack_into(buf, offset, frame_length, session, LOGON_TIMESTAMP_NS)
            pack(buf, offset + INBOUND_HEADER.size, i)
        return bytes(buf)

    sides = [1 + (i & 1) for i in range(orders)]
    prices = [mid - 1 - rng.randrange(ticks) if side == 1 else mid + 1 + rng.randrange(ticks) for side in sides]
    inserts = records(encoder.new_order_length, orders, lambda buf, offset, i: encoder.pack_new_order(
        buf, offset, i + 1, 1, sides[i], prices[i], 1 + rng.randrange(100)))
    order = list(range(orders))
    rng.shuffle(order)
    cancels = records(encoder.cancel_length, orders, lambda buf, offset, i: encoder.pack_cancel(
        buf, offset, orders + i + 1, order[i] + 1, 1, sides[order[i]]))
    return credentials, logon_records(credentials, LOGON_TIMESTAMP_NS), inserts, cancels, len(set(prices))


def measure_deep_book(orders, ticks, seed, passes):
    """(best inserts/s, best cancels/s, levels after the inserts) over `passes` fresh engines."""
    from lob.engine import Engine

    credentials, logon, inserts, cancels, levels = deep_book_records(orders, ticks, seed)
    insert_times, cancel_times = [], []
    for _ in range(passes):
        engine = Engine(sessions=credentials, market_data=False, max_orders=max(1 << 20, orders))
        # as the service does: pools faulted in up front, so the figure is the index's, not first touch's
        engine.prefault()
        engine.process(logon)
        start = time.perf_counter()
        engine.process(inserts)
        insert_times.append(time.perf_counter() - start)
        if engine.live_orders != orders:
            raise SystemExit(f"deep book: {engine.live_orders} of {orders} orders rest")
        book_levels = len(engine.levels(1, "Buy")) + len(engine.levels(1, "Sell"))
        if book_levels != levels:
            raise SystemExit(f"deep book: {book_levels} levels, expected {levels}")
        start = time.perf_counter()
        engine.process(cancels)
        cancel_times.append(time.perf_counter() - start)
        if engine.live_orders != 0:
            raise SystemExit(f"deep book: {engine.live_orders} orders left after the cancels")
    return orders / min(insert_times), orders / min(cancel_times), levels


def deep_book_figures(args):
    rows = []
    for ticks in [SHALLOW_TICKS] + list(args.deep_ticks):
        inserts, cancels, levels = measure_deep_book(args.deep_orders, ticks, args.seed, max(1, args.passes))
        rows.append({"ticks_per_side": ticks, "levels": levels, "inserts_per_second": inserts,
                     "cancels_per_second": cancels})
    return rows


def deep_book_report(rows, orders):
    shallow = rows[0]["inserts_per_second"]
    lines = [f"  deep book    {orders:,} non-crossing orders at uniform prices, then canceled in random order "
             f"(market data off, best of passes)"]
    for row in rows:
        lines.append(f"    {row['ticks_per_side']:>9,} ticks a side, {row['levels']:>7,} levels: "
                     f"inserts {row['inserts_per_second'] / 1e6:5.2f} M/s "
                     f"({row['inserts_per_second'] / shallow:4.0%} of the shallow book), "
                     f"cancels {row['cancels_per_second'] / 1e6:5.2f} M/s")
    target = [r for r in rows if r["ticks_per_side"] == DEEP_TARGET_TICKS]
    if target:
        ratio = target[0]["inserts_per_second"] / shallow
        lines.append(f"    target: at {DEEP_TARGET_TICKS:,} ticks a side inserts >= {DEEP_TARGET_RATIO:.0%} of the shallow "
                     f"book's: {ratio:.0%} {yes(ratio >= DEEP_TARGET_RATIO)}")
    return "\n".join(lines)


def peak_rss_bytes():
    """This process's peak RSS. VmHWM belongs to the current address space; ru_maxrss would carry over
    the parent's peak from before exec."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure_peak_rss(count, seed):
    child = subprocess.run([sys.executable, os.path.abspath(__file__), "--rss-child", str(count), "--seed", str(seed)],
                           capture_output=True, text=True)
    if child.returncode != 0:
        raise SystemExit(f"the peak RSS child failed:\n{child.stderr}")
    return int(child.stdout.split()[-1])


def mib(n):
    return f"{n / 2 ** 20:.1f} MiB"


def ns(n):
    return f"{n / 1000:.2f} us" if n >= 10_000 else f"{n} ns"


def yes(ok):
    return "met" if ok else "MISSED"


def main(argv=None):
    args = parse_args(argv)
    if args.rss_child is not None:
        print(rest_orders(args.rss_child, args.seed))
        return 0
    if args.deep_only:
        rows = deep_book_figures(args)
        print(deep_book_report(rows, args.deep_orders))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"deep_book": rows}, f, indent=2)
                f.write("\n")
        return 0

    print(f"drawing {args.messages:,} messages (seed {args.seed}) and encoding them ...", flush=True)
    workload, credentials, records = build_workload(args.messages, args.seed)
    expected = workload.expected

    engine, cold_seconds, passes, exec_bytes, md_bytes = measure_throughput(records, credentials, max(1, args.passes))
    seconds = min(passes)
    trades, traded = engine.next_trade_id - 1, engine.traded_quantity
    if (trades, traded, engine.live_orders) != (expected.fills, expected.traded_quantity, expected.resting_at_end):
        raise SystemExit(f"engine disagrees with the workload's reference book: {trades} fills, {traded} traded, "
                         f"{engine.live_orders} resting; expected {expected}")
    histogram, timed_outbound = measure_latency(records, credentials, args.messages)
    blocks = measure_python_blocks(records, credentials)
    mix_engine, _, mix_passes, _, _ = measure_throughput(order_types_records(args.messages, args.seed, credentials), credentials,
                                                         max(1, args.passes))
    mix_mps = args.messages / min(mix_passes)
    print(f"resting {args.rss_orders:,} orders in a child process ...", flush=True)
    peak_rss = measure_peak_rss(args.rss_orders, args.seed)
    print("deep book ...", flush=True)
    deep_rows = deep_book_figures(args)

    figures = {
        "messages": args.messages,
        "seconds": seconds,
        "messages_per_second": args.messages / seconds,
        "trades": trades,
        "traded_quantity": traded,
        "outbound_bytes": exec_bytes + md_bytes,
        "p50_ns": histogram.get_value_at_percentile(50),
        "p99_ns": histogram.get_value_at_percentile(99),
        "p999_ns": histogram.get_value_at_percentile(99.9),
        "peak_rss_bytes": peak_rss,
        "order_types_messages_per_second": mix_mps,
        "deep_book": deep_rows,
    }
    mps = figures["messages_per_second"]
    print(f"""
lob engine benchmark: {args.messages:,} messages, seed {args.seed}, one instrument, market data on
  workload     {expected.passive:,} passive adds, {expected.cancels:,} cancels, {expected.aggressive:,} aggressive limits
  throughput   Engine.process {seconds:.3f} s = {mps / 1e6:.2f} M msg/s   (best of {len(passes)}: \
{", ".join(f"{p:.3f}" for p in passes)} s; first, cold pass {cold_seconds:.3f} s)
  trades       {trades:,} fills, {traded:,} traded quantity, {engine.live_orders:,} orders resting (as the reference book)
  outbound     {mib(exec_bytes)} execution stream + {mib(md_bytes)} market data = {mib(exec_bytes + md_bytes)}
  latency      per message (process_timed): p50 {ns(figures['p50_ns'])}  p99 {ns(figures['p99_ns'])}  \
p99.9 {ns(figures['p999_ns'])}  max {ns(histogram.get_max_value())}
  order types  10% stop-limits, 10% icebergs, STP on: {mix_mps / 1e6:.2f} M msg/s (best of {len(mix_passes)}), \
{mix_engine.next_trade_id - 1:,} fills, {mix_engine.live_orders:,} live at the end  \
target >= {TARGET_MIX_MPS / 1e6:.0f} M msg/s {yes(mix_mps >= TARGET_MIX_MPS)}
  memory       peak RSS {mib(peak_rss)} with {args.rss_orders:,} resting orders (child process)
  python       {blocks:+d} allocated blocks across a {args.messages:,}-message process() call \
({blocks / args.messages:.6f} per message)
  targets      >= {TARGET_MPS / 1e6:.0f} M msg/s {yes(mps >= TARGET_MPS)}, p99 < {ns(TARGET_P99_NS)} \
{yes(figures['p99_ns'] < TARGET_P99_NS)}, <= {mib(TARGET_RSS)} RSS {yes(peak_rss <= TARGET_RSS)}""")
    print(deep_book_report(deep_rows, args.deep_orders))
    if timed_outbound != exec_bytes + md_bytes:
        print(f"  note         the timed pass produced {timed_outbound:,} outbound bytes, the plain pass "
              f"{exec_bytes + md_bytes:,}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
            f.write("\n")
        print(f"  json         {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
