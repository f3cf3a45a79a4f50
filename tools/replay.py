"""`lob replay`: run a journal (or a `lob record` recording) through an offline engine, or republish it.

Offline (default): as fast as possible through a fresh engine (or one loaded from --snapshot), writing
the execution stream to --out in outbound framing; prints throughput and the output's SHA-256, so two
replays are easy to compare byte for byte.

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
    offline.add_argument("--out", metavar="FILE", help="write the execution stream here (outbound framing)")
    offline.add_argument("--snapshot", metavar="FILE", help="start from this snapshot instead of an empty engine "
                         "(replays from the record after the one it covers)")
    offline.add_argument("--instruments", default="1:1", metavar="ID:TICK,...",
                         help="instruments of a fresh engine (default 1:1)")
    offline.add_argument("--max-orders", type=int, default=1 << 20, help="order pool capacity (default 1048576)")
    publish = parser.add_argument_group("republish over Aeron")
    publish.add_argument("--publish", action="store_true", help="offer the frames on an Aeron publication")
    publish.add_argument("--channel", default="aeron:udp?endpoint=127.0.0.1:40101",
                         help="publication channel (default: the engine's order entry)")
    publish.add_argument("--stream", type=int, default=1001, help="stream id (default 1001)")
    publish.add_argument("--aeron-dir", metavar="DIR", help="use this running media driver (default: embed one)")
    publish.add_argument("--speed", type=float, default=1.0,
                         help="multiple of the recorded pace; 0 = as fast as possible (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args):
    if not list_segments(args.journal):
        print(f"lob replay: no journal segments in {args.journal}", file=sys.stderr)
        return 2
    try:
        return republish(args) if args.publish else replay_offline(args)
    except JournalError as exc:
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


def replay_offline(args):
    from lob.config import parse_instruments
    from lob.engine import Engine
    from lob.replay import replay_journal
    from lob.snapshot import load_snapshot

    from_seq = args.from_seq
    if args.snapshot:
        engine, covered = load_snapshot(args.snapshot, max_orders=args.max_orders)
        from_seq = max(from_seq, covered + 1)
    else:
        engine = Engine(instruments=parse_instruments(args.instruments), max_orders=args.max_orders)
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
    import pyaeron

    from lob.transport.driver import launch

    driver = launch(args.aeron_dir, attach=bool(args.aeron_dir))
    client = pyaeron.Aeron(dir=driver.dir)
    publication = client.add_exclusive_publication(args.channel, args.stream)
    sent = back_pressure = 0
    try:
        deadline = time.monotonic() + 10
        while not publication.is_connected:
            if time.monotonic() > deadline:
                print(f"lob replay: no subscriber on {args.channel} stream {args.stream}", file=sys.stderr)
                return 1
            time.sleep(0.01)
        first_ts = None
        started = time.perf_counter()
        with tqdm(unit="msg", disable=args.quiet, desc="republish", file=sys.stderr) as bar:
            for seq, timestamp, session, frame in read_journal(args.journal, args.from_seq):
                if args.speed > 0:
                    if first_ts is None:
                        first_ts = timestamp
                    due = started + (timestamp - first_ts) / 1e9 / args.speed
                    while time.perf_counter() < due:
                        time.sleep(0)
                while True:
                    result = publication.offer(frame)
                    if result is True:
                        break
                    if result is pyaeron.NOT_CONNECTED:
                        print("lob replay: the subscriber went away", file=sys.stderr)
                        return 1
                    back_pressure += 1
                    time.sleep(0)
                sent += 1
                bar.update(1)
        seconds = time.perf_counter() - started
        print(f"republished {sent:,} frames in {seconds:.3f} s ({sent / seconds if seconds else 0:,.0f}/s), "
              f"back-pressure retries {back_pressure}")
        return 0
    finally:
        publication.close()
        client.close()
        driver.close()
