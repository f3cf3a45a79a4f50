"""`lob replay`: run a journal (or a `lob record` recording) through an offline engine, or republish it.

Offline (default): as fast as possible through a fresh engine (or one loaded from --snapshot), with the
sessions of --credentials (the engine's file: logons are checked again), writing the execution stream to
--out in execution framing; prints throughput and the output's SHA-256, so two replays are easy to
compare byte for byte.

Republish (--publish): offer the recorded frames on an Aeron publication at the recorded pace, a
multiple of it (--speed 10), or as fast as possible (--speed 0), for testing other consumers.
"""
import hashlib
import os
import sys
import time

from tqdm import tqdm

from lob.journal import JournalError, list_segments, read_journal


def add_arguments(parser):
    parser.add_argument("journal", metavar="JOURNAL_DIR", help="journal or recording directory")
    parser.add_argument("--from-seq", type=int, default=1, help="first journal sequence to replay (default 1)")
    offline = parser.add_argument_group("offline engine (default)")
    offline.add_argument("--out", metavar="FILE",
                         help="write the execution stream here (execution framing: length, session, transport)")
    add_offline_engine_arguments(offline)
    publish = parser.add_argument_group("republish over Aeron")
    publish.add_argument("--publish", action="store_true", help="offer the frames on an Aeron publication")
    publish.add_argument("--channel", default="aeron:udp?endpoint=127.0.0.1:40101",
                         help="publication channel (default: the engine's order entry)")
    publish.add_argument("--stream", type=int, default=1001, help="stream id (default 1001)")
    publish.add_argument("--aeron-dir", metavar="DIR", help="use this running media driver (default: embed one)")
    publish.add_argument("--speed", type=float, default=1.0,
                         help="multiple of the recorded pace; 0 = as fast as possible (default 1)")
    publish.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                         help="how long to wait for a subscriber, or for one that back-pressures (default 10)")
    publish.add_argument("--linger", type=float, default=0.2, metavar="SECONDS",
                         help="after the last frame, keep the driver up this long for retransmits (default 0.2)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_offline_engine_arguments(group):
    """The flags that make the offline engine a journal runs through (also `lob plot book`'s)."""
    group.add_argument("--credentials", metavar="FILE",
                       help="the engine's credentials file (without it no session can log on)")
    group.add_argument("--snapshot", metavar="FILE", help="start from this snapshot instead of an empty engine "
                       "(replays from the record after the one it covers)")
    group.add_argument("--instruments", default="1:1", metavar="ID:TICK,...",
                       help="instruments of a fresh engine (default 1:1)")
    group.add_argument("--instruments-file", metavar="FILE",
                       help="instrument reference data the engine ran with (replaces --instruments)")
    group.add_argument("--config", metavar="FILE",
                       help="the engine's TOML config: its instruments file and account limits")
    group.add_argument("--max-orders", type=int, default=1 << 20, help="order pool capacity (default 1048576)")


def run(args):
    if not list_segments(args.journal):
        print(f"lob replay: no journal segments in {args.journal}", file=sys.stderr)
        return 2
    from lob.snapshot import SnapshotError

    try:
        return republish(args) if args.publish else replay_offline(args)
    except (JournalError, SnapshotError) as exc:
        print(f"lob replay: {exc}", file=sys.stderr)
        return 1


def journal_bytes(directory):
    return sum(os.path.getsize(p) for p in list_segments(directory))


class HashingWriter:
    """A file-like sink that hashes (and optionally stores) what is written to it."""

    def __init__(self, path):
        self.file = open(path, "wb") if path else None
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data):
        self.sha256.update(data)
        self.bytes += len(data)
        if self.file is not None:
            self.file.write(data)

    def close(self):
        if self.file is not None:
            self.file.close()


def reference_data(args):
    """(instruments, {accounts, max_accounts}) from --instruments / --instruments-file / --config."""
    from lob.config import EngineConfig, load_file, parse_instruments
    from lob.instruments import load

    config = load_file(args.config) if args.config else EngineConfig()
    if args.instruments_file:
        return load(args.instruments_file), {"accounts": config.accounts, "max_accounts": config.max_accounts}
    if config.instruments_file:
        return load(config.instruments_file), {"accounts": config.accounts, "max_accounts": config.max_accounts}
    return parse_instruments(args.instruments), {"accounts": config.accounts, "max_accounts": config.max_accounts}


def offline_engine(args, from_seq=1):
    """(Engine, first journal sequence to run) from the offline-engine flags. A bad credentials or
    reference-data file raises ValueError or OSError; a bad snapshot lob.snapshot.SnapshotError."""
    from lob.credentials import load
    from lob.engine import Engine
    from lob.snapshot import load_snapshot

    sessions = load(args.credentials) if args.credentials else ()
    instruments, risk = reference_data(args)
    if args.snapshot:
        engine, covered = load_snapshot(args.snapshot, max_orders=args.max_orders, sessions=sessions,
                                        instruments=instruments, **risk)
        return engine, max(from_seq, covered + 1)
    return Engine(instruments=instruments, max_orders=args.max_orders, sessions=sessions, **risk), from_seq


def replay_offline(args):
    from lob.replay import replay_journal

    try:
        engine, from_seq = offline_engine(args, args.from_seq)
    except (ValueError, OSError) as exc:
        print(f"lob replay: {exc}", file=sys.stderr)
        return 2
    out = HashingWriter(args.out)
    started = time.perf_counter()
    with tqdm(total=journal_bytes(args.journal), unit="B", unit_scale=True, disable=args.quiet,
              desc="replay", file=sys.stderr) as bar:
        sizes = iter([os.path.getsize(p) for p in list_segments(args.journal)])
        records, last_seq = replay_journal(engine, args.journal, from_seq=from_seq, out=out,
                                           progress=lambda _: bar.update(next(sizes, 0)))
    seconds = time.perf_counter() - started
    out.close()
    rate = records / seconds if seconds > 0 else 0.0
    print(f"replayed {records:,} records (journal seq {from_seq}..{last_seq}) in {seconds:.3f} s: "
          f"{rate:,.0f} msg/s")
    print(f"execution stream: {out.bytes:,} bytes{' -> ' + args.out if args.out else ''}, "
          f"sha256 {out.sha256.hexdigest()}")
    print(f"engine: {engine.live_orders:,} resting orders, next order id {engine.next_order_id}, "
          f"next trade id {engine.next_trade_id}")
    return 0


def republish(args):
    from lob.transport.client import Client
    from lob.transport.driver import launch
    from lob.transport.publication import result_name

    driver = launch(args.aeron_dir, attach=bool(args.aeron_dir))
    client = publication = None
    try:
        client = Client(driver.dir, client_name="lob-replay")
        publication = client.add_exclusive_publication(args.channel, args.stream)
        deadline = time.monotonic() + args.connect_timeout
        while not publication.is_connected:
            if time.monotonic() > deadline:
                print(f"lob replay: no subscriber on {args.channel} stream {args.stream}", file=sys.stderr)
                return 1
            time.sleep(0.001)
        sent, first_ts = 0, None
        started = time.perf_counter()
        with tqdm(unit="msg", disable=args.quiet, desc="republish", file=sys.stderr) as bar:
            for seq, timestamp, session, frame in read_journal(args.journal, args.from_seq):
                if args.speed > 0:
                    if first_ts is None:
                        first_ts = timestamp
                    wait_until(started + (timestamp - first_ts) / 1e9 / args.speed)
                try:
                    result = publication.offer_retry(frame, retry_not_connected=False, timeout=args.connect_timeout)
                except TimeoutError:
                    print(f"lob replay: the subscriber stopped reading (back-pressured for {args.connect_timeout} s) "
                          f"after {sent} frames", file=sys.stderr)
                    return 1
                if result < 0:
                    print(f"lob replay: the subscriber went away ({result_name(result)}) after {sent} frames",
                          file=sys.stderr)
                    return 1
                sent += 1
                bar.update(1)
        seconds = time.perf_counter() - started
        # The embedded driver goes away with this process: let it send everything offered, then answer
        # the subscriber's retransmit requests for a moment.
        deadline = time.monotonic() + 10
        while 0 <= publication.sender_position() < publication.position and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(args.linger)
        print(f"republished {sent:,} frames in {seconds:.3f} s ({sent / seconds if seconds else 0:,.0f}/s)")
        return 0
    finally:
        if publication is not None:
            publication.close()
        if client is not None:
            client.close()
        driver.close()


def wait_until(due):
    """Sleep until perf_counter() reaches `due`: in short sleeps, then yielding for the last stretch."""
    while True:
        left = due - time.perf_counter()
        if left <= 0:
            return
        time.sleep(min(left - 0.0002, 0.001) if left > 0.0005 else 0)
