"""`lob snapshot`: rebuild a journal's engine state offline (newest snapshot + journal tail) and write
a snapshot of it, so a restart replays less. Safe while the engine runs: it only reads the journal."""
import sys
import time

from lob.journal import JournalError


def add_arguments(parser):
    parser.add_argument("journal", metavar="JOURNAL_DIR")
    parser.add_argument("--snapshot-dir", metavar="DIR", help="default: JOURNAL_DIR/snapshots")
    parser.add_argument("--instruments", default="1:1", metavar="ID:TICK,...",
                        help="instruments when no snapshot exists yet (default 1:1)")
    parser.add_argument("--instruments-file", metavar="FILE", help="the engine's instrument reference data")
    parser.add_argument("--config", metavar="FILE", help="the engine's TOML config: instruments file, account limits")
    parser.add_argument("--max-orders", type=int, default=1 << 20)
    parser.add_argument("--credentials", metavar="FILE", help="the engine's credentials file")


def run(args):
    import os

    from lob.credentials import CredentialsError, load
    from lob.recovery import recover
    from lob.snapshot import SnapshotError, write_snapshot
    from lob.tools.replay import reference_data

    directory = args.snapshot_dir or os.path.join(args.journal, "snapshots")
    started = time.monotonic()
    try:
        sessions = load(args.credentials) if args.credentials else ()
        instruments, risk = reference_data(args)
        recovered = recover(args.journal, directory, instruments=instruments, max_orders=args.max_orders,
                            log=lambda m: print(m, file=sys.stderr), sessions=sessions, **risk)
        path = write_snapshot(recovered.engine, directory, recovered.last_seq)
    except (JournalError, SnapshotError, CredentialsError, ValueError, OSError) as exc:
        print(f"lob snapshot: {exc}", file=sys.stderr)
        return 1
    print(f"{recovered.describe()}; wrote {path} ({recovered.engine.live_orders} orders) "
          f"in {time.monotonic() - started:.3f} s")
    return 0
