"""`lob plot`: charts where people would rather look than read, as PNG or SVG (matplotlib, no display).

    lob plot latency FILE... [--out latency.png]     HDR percentile curves of load-generator runs
    lob plot book JOURNAL [--instrument N] [--out book.png]   best bid/ask, trades and volume of a session
"""
import os
import sys

FORMATS = (".png", ".svg")


def add_arguments(parser):
    sub = parser.add_subparsers(dest="chart", metavar="CHART", required=True)
    latency = sub.add_parser("latency", help="percentile curves of HdrHistogram percentile distributions "
                                             "(lob loadgen/demo --hdr-out, bench_e2e.py --hdr-dir) on one chart")
    latency.add_argument("files", nargs="+", metavar="FILE", help="percentile distribution files (values in µs)")
    latency.add_argument("--label", action="append", metavar="NAME",
                         help="legend name of each file, in order (default: the file name)")
    latency.add_argument("--log-latency", action="store_true", help="log scale for the latency axis too")
    _output_arguments(latency, "latency.png", 1000, 600)

    book = sub.add_parser("book", help="best bid/ask, trades and volume over a recorded session: the journal "
                                       "run through an offline engine, as lob replay does")
    book.add_argument("journal", metavar="JOURNAL_DIR", help="journal or recording directory")
    book.add_argument("--instrument", type=int, metavar="ID",
                      help="instrument to draw (default: the one with the most market data)")
    book.add_argument("--from-seq", type=int, default=1, help="first journal sequence to run (default 1)")
    _output_arguments(book, "book.png", 1200, 700)
    from lob.tools.replay import add_offline_engine_arguments

    add_offline_engine_arguments(book.add_argument_group("offline engine (as for lob replay)"))


def _output_arguments(parser, default_out, width, height):
    parser.add_argument("--out", default=default_out, metavar="FILE",
                        help=f"image to write, .png or .svg (default {default_out})")
    parser.add_argument("--size", default=f"{width}x{height}", metavar="WxH",
                        help=f"image size in pixels at 100 dpi (default {width}x{height})")
    parser.add_argument("--title", help="chart title")


def parse_size(value):
    width, sep, height = value.lower().partition("x")
    try:
        size = int(width), int(height)
    except ValueError:
        size = None
    if not sep or size is None or not (100 <= size[0] <= 10_000 and 100 <= size[1] <= 10_000):
        raise ValueError(f"--size {value!r}: expected WIDTHxHEIGHT in pixels, each 100..10000")
    return size


def run(args):
    from lob.journal import JournalError
    from lob.snapshot import SnapshotError

    try:
        size = parse_size(args.size)
        if os.path.splitext(args.out)[1].lower() not in FORMATS:
            raise ValueError(f"--out {args.out}: the name must end in .png or .svg")
        figure, summary = (plot_latency if args.chart == "latency" else plot_book)(args, size)
    except (ValueError, OSError, JournalError, SnapshotError) as exc:
        print(f"lob plot {args.chart}: {exc}", file=sys.stderr)
        return 2
    try:
        figure.savefig(args.out)
    except OSError as exc:
        print(f"lob plot {args.chart}: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"{summary}\nwrote {args.out} ({size[0]}x{size[1]} px)")
    return 0


def plot_latency(args, size):
    from lob.tools.plot_latency import latency_figure, read_distribution

    labels = args.label or []
    if len(labels) > len(args.files):
        raise ValueError(f"{len(labels)} --label for {len(args.files)} file(s)")
    runs = [read_distribution(path, labels[i] if i < len(labels) else None) for i, path in enumerate(args.files)]
    figure = latency_figure(runs, title=args.title, width_px=size[0], height_px=size[1], log_values=args.log_latency)
    lines = [f"{run.name}: {run.total_count:,} samples, p50 {run.value_at(0.5):,.1f} p99 {run.value_at(0.99):,.1f} "
             f"p99.9 {run.value_at(0.999):,.1f} max {run.max:,.1f} µs" for run in runs]
    return figure, "\n".join(lines)


def plot_book(args, size):
    from lob.journal import list_segments
    from lob.tools.plot_book import book_figure, book_series, busiest, market_data_frames
    from lob.tools.replay import offline_engine

    if not os.path.isdir(args.journal):
        raise ValueError(f"{args.journal}: no such directory")
    if not list_segments(args.journal):
        raise ValueError(f"{args.journal}: no journal segments (journal-*.seg)")
    engine, from_seq = offline_engine(args, args.from_seq)
    if args.instrument is not None and args.instrument not in engine.instruments:
        raise ValueError(f"--instrument {args.instrument}: the engine has instruments "
                         f"{', '.join(map(str, sorted(engine.instruments)))} (see --instruments)")
    seed = {i: (engine.levels(i, "Buy"), engine.levels(i, "Sell")) for i in engine.instruments} if args.snapshot else None
    series = book_series(market_data_frames(engine, args.journal, from_seq), seed)
    if not any(s.messages for s in series.values()):
        raise ValueError(f"{args.journal}: the session produced no market data (wrong --instruments or "
                         f"--credentials? without the engine's sessions no order is accepted)")
    instrument = args.instrument if args.instrument is not None else busiest(series)
    chosen = series.get(instrument)
    if chosen is None or not chosen.messages:
        raise ValueError(f"instrument {instrument}: no market data in this session")
    figure = book_figure(chosen, title=args.title, width_px=size[0], height_px=size[1])
    others = sorted(i for i, s in series.items() if s.messages and i != instrument)
    return figure, (f"instrument {instrument}: {chosen.updates:,} book updates, {len(chosen.trade_times):,} trades, "
                    f"volume {chosen.volume:,}" + (f" (also in the session: {', '.join(map(str, others))})"
                                                   if others else ""))
