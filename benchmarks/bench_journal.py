"""Journal benchmark: what journaling costs the engine, how long recovery takes, how fast replay is.

1. Throughput. The standard workload (lob.tools.workload, fixed seed, as in bench_engine.py), encoded
   once as one buffer of inbound records, through a fresh engine (market data on) with the journal off
   (`Engine.process`) and with each durability policy (`lob.replay.process_journaled`: append a batch
   of --batch records, run them, commit, as the engine service does per poll). Each journaled pass
   writes a fresh journal (64 MiB segments) in --dir, by default a directory in the project's build
   directory, so on the filesystem the project lives on. --passes rounds of passes are interleaved
   (off, none, batch, replay, off, ...); the best pass of each counts, except the process's very first
   (cold) one. `every` syncs at every commit, so it runs once. Every pass must answer byte for byte
   what the first `off` pass did.
2. Recovery. An engine rests --resting orders (journaled), is snapshotted, then runs the workload
   (journaled too: the tail). `lob.recovery.recover` (newest snapshot, then the journal after it) is
   timed from nothing to the recovered engine, whose books and counters must equal the original's;
   the files are in the page cache, as after a crash of the process. Best of 3.
3. Replay. In each round, `lob.replay.replay_journal_bytes` of the journal the none pass wrote, into a
   fresh engine: the execution stream is written into one bytes object, as Engine.process writes it.
   (`lob replay` streams it to a file instead, and hashes it.)
4. Determinism. The replays (one per round, of journals of the same input, and the last journal a
   second time) must give identical bytes, equal to Engine.process's.

    python benchmarks/bench_journal.py [--messages N] [--seed S] [--passes P] [--batch B]
                                       [--resting N] [--dir DIR] [--json PATH]
"""
import argparse
import json
import os
import random
import shutil
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DIR = os.path.join(ROOT, "build", "bench-journal")
TARGET_BATCH_COST = 0.30
TARGET_RECOVERY_S = 5.0
AIM_RECOVERY_S = 2.0
TARGET_REPLAY_SHORTFALL = 0.20


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000, help="workload length (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    parser.add_argument("--passes", type=int, default=5, help="rounds of throughput passes (default 5)")
    parser.add_argument("--batch", type=int, default=64, help="records per journal commit (default 64)")
    parser.add_argument("--resting", type=int, default=1_000_000,
                        help="resting orders in the snapshot for the recovery figure (default 1,000,000)")
    parser.add_argument("--dir", metavar="DIR", help=f"where journals go (default: {os.path.relpath(DEFAULT_DIR, ROOT)} "
                                                      "in the project)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    return parser.parse_args(argv)


def filesystem(path):
    """(type, device, mount point) of the filesystem holding `path`."""
    path = os.path.realpath(path)
    best = ("?", "?", "/")
    with open("/proc/self/mounts") as f:
        for line in f:
            device, mount, fstype = line.split()[:3]
            mount = mount.replace("\\040", " ")
            if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best[2]):
                best = (fstype, device, mount)
    return best


def fresh(directory):
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    return directory


def sessions():
    """The benchmark's trading sessions: 1 sends the workload, 2 rests the recovery test's orders."""
    from lob import credentials

    return credentials.for_tests([1, 2])


def new_engine(**options):
    from lob.engine import Engine

    return Engine(sessions=sessions(), **options)


def logon(session_id):
    """Inbound records logging `session_id` on (on transport session_id), before its orders."""
    from lob.logon import logon_records

    return logon_records(sessions()[session_id - 1], session_id, 2)


def run_off(records):
    engine = new_engine()
    started = time.perf_counter()
    out = engine.process(records)
    seconds = time.perf_counter() - started
    engine.take_market_data()
    return seconds, out, None


def run_journaled(records, policy, directory, batch):
    from lob.journal import JournalWriter
    from lob.replay import process_journaled

    engine = new_engine()
    writer = JournalWriter(fresh(directory), policy=policy)
    started = time.perf_counter()
    out = process_journaled(engine, writer, records, batch=batch)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    writer.close()   # syncs what the policy has not synced yet
    closing = time.perf_counter() - started
    engine.take_market_data()
    return seconds, out, (closing, writer.syncs)


def disk_sync_bandwidth(directory, size=64 << 20):
    """Bytes per second of one write of `size` bytes and its fdatasync, in `directory`."""
    path = os.path.join(directory, "disk-probe")
    data = os.urandom(1 << 20)
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for _ in range(size >> 20):
            os.write(fd, data)
        os.fdatasync(fd)
    finally:
        os.close(fd)
        os.remove(path)
    return size / (time.perf_counter() - started)


def resting_orders(count, seed):
    """Inbound records logging session 2 on and resting `count` non-crossing GTC orders of it, far from the
    workload's prices."""
    from lob.client.wire import OrderEntryEncoder
    from lob.framing import INBOUND_HEADER

    encoder = OrderEntryEncoder()
    frame_length = encoder.new_order_length
    record_length = INBOUND_HEADER.size + frame_length
    buf = bytearray(count * record_length)
    rng = random.Random(seed)
    mid = 1_000_000
    for i in range(count):
        offset = i * record_length
        side = 1 + (i & 1)
        ticks = 100_000 + 1 + rng.randrange(5_000)
        INBOUND_HEADER.pack_into(buf, offset, frame_length, 2, 0)
        encoder.pack_new_order(buf, offset + INBOUND_HEADER.size, i + 1, 1, side,
                               mid - ticks if side == 1 else mid + ticks, 1 + rng.randrange(100))
    return logon(2) + bytes(buf)


def summary(engine):
    """What must survive recovery: counters and every level of both sides."""
    return (engine.live_orders, engine.next_order_id, engine.next_trade_id, engine.session(1), engine.session(2),
            engine.next_md_seq, engine.traded_quantity, engine.levels(1, "Buy"), engine.levels(1, "Sell"))


def measure_recovery(records, resting, seed, directory, passes):
    from lob.journal import JournalWriter
    from lob.recovery import recover
    from lob.replay import process_journaled
    from lob.snapshot import load_snapshot, write_snapshot

    max_orders = 1 << 21
    journal_dir, snapshot_dir = fresh(os.path.join(directory, "journal")), os.path.join(directory, "snapshots")
    engine = new_engine(max_orders=max_orders)
    writer = JournalWriter(journal_dir, policy="none")
    process_journaled(engine, writer, resting_orders(resting, seed), batch=1024)
    engine.take_market_data()
    if engine.live_orders != resting:
        raise SystemExit(f"only {engine.live_orders} of {resting} orders rest")
    started = time.perf_counter()
    snapshot = write_snapshot(engine, snapshot_dir, writer.next_seq - 1)
    snapshot_write = time.perf_counter() - started
    process_journaled(engine, writer, records, batch=1024)
    engine.take_market_data()
    writer.close()
    expected = summary(engine)
    timings = []
    for _ in range(passes):
        started = time.perf_counter()
        recovered = recover(journal_dir, snapshot_dir, max_orders=max_orders, sessions=sessions())
        timings.append(time.perf_counter() - started)
        if (recovered.snapshot_seq, recovered.replayed) != (resting + 2, len_records(records)):
            raise SystemExit(f"recovery used the wrong parts: {recovered.describe()}")
        if summary(recovered.engine) != expected:
            raise SystemExit("the recovered engine differs from the one that never stopped")
        del recovered
    started = time.perf_counter()
    load_snapshot(snapshot, max_orders=max_orders, sessions=sessions())
    snapshot_load = time.perf_counter() - started
    return {"seconds": timings, "snapshot_bytes": os.path.getsize(snapshot), "snapshot_write": snapshot_write,
            "snapshot_load": snapshot_load, "resting": resting, "live_after": expected[0],
            "journal_bytes": sum(os.path.getsize(os.path.join(journal_dir, n)) for n in os.listdir(journal_dir))}


def journal_length(records):
    """Bytes of journal the records take: segment headers aside, 32-byte record headers and 8-byte alignment."""
    from lob.framing import INBOUND_HEADER

    total, offset = 0, 0
    while offset < len(records):
        length = INBOUND_HEADER.unpack_from(records, offset)[0]
        total += (32 + length + 7) & ~7
        offset += INBOUND_HEADER.size + length
    return total


def len_records(records):
    from lob.framing import INBOUND_HEADER

    count, offset = 0, 0
    while offset < len(records):
        offset += INBOUND_HEADER.size + INBOUND_HEADER.unpack_from(records, offset)[0]
        count += 1
    return count


def run_replay(directory):
    from lob.replay import replay_journal_bytes

    engine = new_engine()
    started = time.perf_counter()
    _, _, out = replay_journal_bytes(engine, directory)
    return time.perf_counter() - started, out, None


def mps(messages, seconds):
    return messages / seconds


def yes(ok):
    return "met" if ok else "MISSED"


def main(argv=None):
    args = parse_args(argv)
    from lob.tools.workload import generate

    directory = os.path.abspath(args.dir or DEFAULT_DIR)
    os.makedirs(directory, exist_ok=True)
    fstype, device, mount = filesystem(directory)
    where = "the project's build directory" if args.dir is None else "--dir"
    print(f"drawing {args.messages:,} messages (seed {args.seed}) and encoding them ...", flush=True)
    records = generate(orders=args.messages, seed=args.seed).encode().inbound_records(sessions()[:1], timestamp_ns=2)
    n = args.messages

    disk = disk_sync_bandwidth(directory)
    print("rounds of passes: off, none, batch, replay; then every once ...", flush=True)
    timings = {"off": [], "none": [], "batch": [], "every": [], "replay": []}
    extra = {}
    reference = None
    identical = True
    for _ in range(max(2, args.passes)):
        for mode in ("off", "none", "batch", "replay"):
            if mode == "off":
                seconds, out, info = run_off(records)
            elif mode == "replay":   # the journal the none pass just wrote
                seconds, out, info = run_replay(os.path.join(directory, "none"))
            else:
                seconds, out, info = run_journaled(records, mode, os.path.join(directory, mode), args.batch)
                extra.setdefault(mode, []).append(info)
            if reference is None:
                reference = out
            elif out != reference:
                if mode != "replay":
                    raise SystemExit(f"the {mode} pass answered differently from Engine.process")
                identical = False
            timings[mode].append(seconds)
            del out
    seconds, out, info = run_replay(os.path.join(directory, "none"))   # the last journal, a second time
    identical = identical and out == reference
    timings["replay"].append(seconds)
    del out
    seconds, out, info = run_journaled(records, "every", os.path.join(directory, "every"), args.batch)
    if out != reference:
        raise SystemExit("the every pass answered differently from Engine.process")
    del out, reference
    timings["every"].append(seconds)
    extra["every"] = [info]
    shutil.rmtree(directory, ignore_errors=True)
    # Only the process's very first pass is cold (its memory is touched for the first time); every
    # journaled pass writes a fresh journal anyway.
    best = {mode: min(values[1:]) if mode == "off" else min(values) for mode, values in timings.items()}
    rates = {mode: mps(n, seconds) for mode, seconds in best.items()}
    journal_bytes = journal_length(records)
    replay_rate = rates["replay"]
    replay_timings = timings["replay"]

    print(f"resting {args.resting:,} orders, snapshot, {n:,}-record tail, recovering ...", flush=True)
    recovery = measure_recovery(records, args.resting, args.seed, os.path.join(directory, "recovery"), 3)
    recovery_seconds = min(recovery["seconds"])
    shutil.rmtree(directory, ignore_errors=True)

    def row(mode):
        values = ", ".join(f"{s:.3f}" for s in timings[mode])
        cost = 1 - rates[mode] / rates["off"]
        line = f"  {mode:6s} {best[mode]:.3f} s = {rates[mode] / 1e6:5.2f} M msg/s"
        if mode != "off":
            line += f"   {rates[mode] / rates['off']:6.1%} of off (cost {cost:.1%})"
            closing, syncs = extra[mode][-1]
            line += f"; syncs {syncs:,}, close {closing * 1e3:.0f} ms"
        return line + f"   [{values}]"

    batch_cost = 1 - rates["batch"] / rates["off"]
    replay_shortfall = 1 - replay_rate / rates["off"]
    print(f"""
lob journal benchmark: {n:,} messages, seed {args.seed}, one instrument, market data on, commit every {args.batch} records
  journal      {directory} ({where}; {fstype} on {device}, mounted at {mount}); {journal_bytes / 2 ** 20:.1f} MiB of records per run
  disk         64 MiB written and fdatasync'ed at {disk / 2 ** 20:.0f} MiB/s; the journal grows at \
{journal_bytes / best['off'] / 2 ** 20:.0f} MiB/s at the engine's full speed
  throughput   best pass of each (all passes in brackets; the first off pass is cold and does not count)
{row('off')}
{row('none')}
{row('batch')}
{row('every')}
  recovery     {recovery['resting']:,} resting orders (snapshot {recovery['snapshot_bytes'] / 2 ** 20:.1f} MiB, written in \
{recovery['snapshot_write']:.3f} s) + {n:,}-record journal tail: {recovery_seconds:.3f} s \
(passes {", ".join(f"{s:.3f}" for s in recovery['seconds'])}; snapshot load alone {recovery['snapshot_load']:.3f} s); \
{recovery['live_after']:,} orders after
  replay       {min(replay_timings):.3f} s = {replay_rate / 1e6:.2f} M msg/s ({replay_rate / rates['off']:.1%} of \
Engine.process)   [{", ".join(f"{s:.3f}" for s in replay_timings)}]
  determinism  {len(replay_timings)} replays (one per round, and the last round's journal again): \
{'byte-identical, and equal to Engine.process' if identical else 'they DIFFER'}
  targets      batch cost <= {TARGET_BATCH_COST:.0%}: {batch_cost:.1%} {yes(batch_cost <= TARGET_BATCH_COST)}; \
recovery < {TARGET_RECOVERY_S:.0f} s (aim {AIM_RECOVERY_S:.0f} s): {recovery_seconds:.2f} s {yes(recovery_seconds < TARGET_RECOVERY_S)}; \
replay >= off - {TARGET_REPLAY_SHORTFALL:.0%}: {-replay_shortfall:+.1%} {yes(replay_shortfall <= TARGET_REPLAY_SHORTFALL)}""")
    if args.json:
        figures = {
            "off_messages_per_second": rates["off"],
            "none_messages_per_second": rates["none"],
            "batch_messages_per_second": rates["batch"],
            "every_messages_per_second": rates["every"],
            "recovery_seconds": recovery_seconds,
            "replay_messages_per_second": replay_rate,
            "replay_identical": identical,
        }
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
            f.write("\n")
        print(f"  json         {args.json}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
