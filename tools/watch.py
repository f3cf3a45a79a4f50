"""`lob watch`: a live terminal view of instruments from the engine's market-data stream.

Market data is public: no logon. The feed (lob.client.market_data.MarketDataFeed) subscribes to the
engine's channels from lob.config (the same flags and config file as the other tools) and keeps a
recovering Book per instrument; lob.tools.watch_view draws them. On a terminal the screen is redrawn in
place (rich's Live) a few times a second; when the output is not a terminal (a pipe, a file, a test),
each screen that differs from the last is printed in turn, so `lob watch --duration 5 > book.txt` keeps
what was seen.

Ctrl-C, SIGTERM or `--duration` stop it; the last screen stays.
"""
import contextlib
import signal
import sys
import threading
import time

DEFAULT_LEVELS = 10
DEFAULT_TRADES = 10


def add_arguments(parser):
    from lob.client import connection

    connection.add_arguments(parser)
    parser.add_argument("--embedded", action="store_true",
                        help="embed a media driver of its own even when one runs in Aeron's default directory")
    parser.add_argument("--instrument", "-i", dest="show", type=int, action="append", metavar="ID",
                        help="an instrument to show; repeat for more (default: every instrument in the market data)")
    parser.add_argument("--levels", type=int, default=DEFAULT_LEVELS,
                        help=f"price levels per side (default {DEFAULT_LEVELS})")
    parser.add_argument("--trades", type=int, default=DEFAULT_TRADES,
                        help=f"rows of last trades (default {DEFAULT_TRADES})")
    parser.add_argument("--refresh", type=float, default=4.0, metavar="PER_SECOND",
                        help="screens per second (default 4)")
    parser.add_argument("--duration", type=float, default=0.0, metavar="SECONDS",
                        help="stop after this long (default 0: until Ctrl-C)")
    parser.add_argument("--width", type=int, metavar="COLUMNS", help="screen width (default: the terminal's)")
    parser.add_argument("--idle", default="backoff", help="poll loop idle strategy (default backoff: parks up to 1 ms)")


def run(args):
    from lob.client import connection
    from lob.transport.idle import IdleStrategy

    if args.levels < 1 or args.trades < 0 or args.refresh <= 0 or args.duration < 0:
        print("lob watch: --levels must be positive, --trades and --duration not negative, --refresh positive",
              file=sys.stderr)
        return 2
    try:
        config = config_from_args(args)
        idle = IdleStrategy(args.idle)
    except ValueError as exc:
        print(f"lob watch: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with connection.connect(config, embed=args.embedded) as conn:
        with open_feed(conn.aeron, config, args.show) as feed:
            channel = config.client_channels()["market_data"]
            print(f"lob watch: market data {channel} ({conn.describe()}); Ctrl-C to stop", file=sys.stderr, flush=True)
            view = new_view(feed, args)
            try:
                watch(feed, view, console(args.width), refresh_s=1.0 / args.refresh,
                      duration=args.duration or None, stop=stop, idle=idle)
            except KeyboardInterrupt:
                pass
    return 0


def config_from_args(args):
    """The engine's channels from the flags and --config; ValueError naming the file that is wrong."""
    import tomllib

    from lob.client import connection

    try:
        return connection.config_from_args(args)
    except OSError as exc:
        raise ValueError(f"{exc.filename or args.config}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{args.config}: not valid TOML: {exc}") from None


def open_feed(aeron, config, instruments):
    from lob.client.market_data import MarketDataFeed

    return MarketDataFeed(aeron, config.client_channels(), instruments)


def new_view(feed, args):
    from lob.tools.watch_view import WatchView

    return WatchView(feed, args.show, levels=args.levels, trades=args.trades)


def console(width=None, file=None):
    from rich.console import Console

    return Console(width=width, file=file, highlight=False)


def watch(feed, view, console, *, refresh_s=0.25, duration=None, stop=None, idle=None, on_connected=None):
    """Poll `feed` and redraw `view` every `refresh_s` until `stop` is set or `duration` seconds pass.
    On a terminal the screen is redrawn in place; otherwise each screen that changed is printed.
    `on_connected()` is called once the feed's stream is connected (a feed without `connected` counts
    as connected from the start)."""
    from rich.live import Live

    stop = stop or threading.Event()
    deadline = None if duration is None else time.monotonic() + duration
    printer = _ScreenPrinter(console)
    live = Live(console=console, auto_refresh=False, transient=False) if console.is_terminal else None
    connected = False
    next_screen = 0.0
    with live if live is not None else contextlib.nullcontext():
        while not stop.is_set():
            work = feed.poll()
            now = time.monotonic()
            if not connected and getattr(feed, "connected", True):
                connected = True
                if on_connected is not None:
                    on_connected()
            if now >= next_screen:
                view.sample(now)
                if live is not None:
                    live.update(view.render(), refresh=True)
                else:
                    printer.show(view.render())
                next_screen = now + refresh_s
            if deadline is not None and now >= deadline:
                break
            if idle is not None:
                idle.idle(work)
            elif not work:
                time.sleep(0.001)
        while feed.poll():     # what already arrived belongs on the last screen
            pass
        view.sample()
        if live is not None:
            live.update(view.render(), refresh=True)
        else:
            printer.show(view.render())


class _ScreenPrinter:
    """Prints a screen when it differs from the last one printed (output that is not a terminal)."""

    def __init__(self, console):
        self.console = console
        self.last = None

    def show(self, renderable):
        with self.console.capture() as capture:
            self.console.print(renderable)
        text = capture.get()
        if text != self.last:
            self.console.file.write(text + "\n")
            self.console.file.flush()
            self.last = text


@contextlib.contextmanager
def in_background(aeron, config, instruments=None, *, levels=5, trades=5, title="lob watch", out=None):
    """`lob watch` in a thread of this process while the `with` block runs (lob demo --watch): a feed on
    `aeron` (a pyaeron.Aeron) with its own view; the last screen stays when the block ends."""
    from lob.tools.watch_view import WatchView
    from lob.transport.idle import IdleStrategy

    feed = open_feed(aeron, config, instruments)
    view = WatchView(feed, instruments, levels=levels, trades=trades, title=title)
    screen = console(file=out)
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(feed, view, screen), name="lob-watch", daemon=True,
                              kwargs=dict(refresh_s=0.25 if screen.is_terminal else 1.0, stop=stop,
                                          idle=IdleStrategy("backoff")))
    thread.start()
    try:
        yield view
    finally:
        stop.set()
        thread.join(10)
        feed.close()
