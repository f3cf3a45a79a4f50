"""`lob watch`'s screen, rendered headless into a string console from a known feed: the ladder, the
book's state, the rates, the last trades; and the watch loop's output when it is not a terminal."""
import collections
import io
import subprocess
import sys
import threading

from aeron_helpers import WAIT
from rich.console import Console

from lob.tools.watch import console as watch_console
from lob.tools.watch import watch
from lob.tools.watch_view import RateMeter, WatchView, clock_time

T0 = 1_700_000_000_000_000_000   # 2023-11-14 22:13:20 UTC


class FakeBook:
    """The Book interface lob watch reads (lob.client.book.Book)."""

    def __init__(self, instrument, bids=(), asks=(), last_trade=None, state="live", why=None, seq=0, recoveries=0,
                 gaps=0):
        self.instrument = instrument
        self.bids = {p: (q, n) for p, q, n in bids}
        self.asks = {p: (q, n) for p, q, n in asks}
        self.last_trade = last_trade
        self.state, self.why, self.seq, self.recoveries, self.gaps = state, why, seq, recoveries, gaps

    def depth(self, side, levels):
        book = self.bids if side == "Buy" else self.asks
        return [(p, *book[p]) for p in sorted(book, reverse=side == "Buy")[:levels]]


class FakeFeed:
    """The MarketDataFeed interface lob watch reads (lob.client.market_data)."""

    def __init__(self, books, trades=(), messages=0, trade_count=0, seq=None, gaps=0):
        self.books = {b.instrument: b for b in books}
        self.trades = collections.deque(trades)
        self.messages, self.trade_count, self.seq, self.gaps = messages, trade_count, seq, gaps
        self.polls = 0

    def poll(self, fragment_limit=256):
        self.polls += 1
        return 0


def text(renderable, width=120):
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, highlight=False).print(renderable)
    return "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())


def known_feed():
    one = FakeBook(1, bids=[(9990, 30, 2), (9980, 15, 1), (9970, 5, 1)],
                   asks=[(10010, 10, 1), (10020, 25, 3), (10030, 1, 1)], last_trade=(17, 10000, 5, "Sell"),
                   seq=1234, recoveries=1)
    two = FakeBook(2, bids=[(500, 1, 1)], state="recovering",
                   why="lost messages 5..9: waiting for a snapshot at seq >= 9", seq=4, gaps=1)
    trades = [(1, 16, 10010, 2, "Buy", T0 + 123_000_000), (2, 3, 500, 1, "Buy", T0 + 500_000_000),
              (1, 17, 10000, 5, "Sell", T0 + 1_000_000_000)]
    feed = FakeFeed([one, two], trades, messages=100, trade_count=2, seq=1240, gaps=1)
    feed.snapshot_messages = 12
    return feed


def test_renders_ladders_states_rates_and_trades():
    feed = known_feed()
    view = WatchView(feed, levels=2, trades=5)
    view.sample(10.0)
    feed.messages, feed.trade_count = 300, 4
    view.sample(11.0)
    assert text(view.render()) == """\
lob watch   messages 300 (200/s)   trades 4 (2/s)   feed seq 1,240   gaps 1   snapshots 12
╭─ Instrument 1  live  seq 1,234  recoveries 1  gaps 0 ─╮ ╭─ Instrument 2  recovering  seq 4  recoveries 0  gaps 1 ─╮
│ orders    bid qty        price    ask qty   orders    │ │ orders    bid qty        price    ask qty   orders      │
│ ──────────────────────────────────────────────────    │ │ ──────────────────────────────────────────────────      │
│                         1.0020         25        3    │ │      1          1       0.0500                          │
│                         1.0010         10        1    │ │ lost messages 5..9: waiting for a snapshot at seq >= 9  │
│                                                       │ ╰─────────────────────────────────────────────────────────╯
│      2         30       0.9990                        │
│      1         15       0.9980                        │
│ spread 0.0020  last 1.0000 x 5 (sell aggressor) #17   │
╰───────────────────────────────────────────────────────╯
last trades
time (UTC)     instrument   trade    price   qty   aggressor
────────────────────────────────────────────────────────────
22:13:21.000            1      17   1.0000     5   sell
22:13:20.500            2       3   0.0500     1   buy
22:13:20.123            1      16   1.0010     2   buy
"""


def test_chosen_instruments_only_and_one_without_data():
    view = WatchView(known_feed(), [1, 3], levels=1, trades=1)
    assert text(view.render()) == """\
lob watch   messages 100 (0/s)   trades 2 (0/s)   feed seq 1,240   gaps 1   snapshots 12
╭─ Instrument 1  live  seq 1,234  recoveries 1  gaps 0 ─╮ ╭─ Instrument 3 ─────╮
│ orders    bid qty        price    ask qty   orders    │ │ no market data yet │
│ ──────────────────────────────────────────────────    │ ╰────────────────────╯
│                         1.0010         10        1    │
│                                                       │
│      2         30       0.9990                        │
│ spread 0.0020  last 1.0000 x 5 (sell aggressor) #17   │
╰───────────────────────────────────────────────────────╯
last trades
time (UTC)     instrument   trade    price   qty   aggressor
────────────────────────────────────────────────────────────
22:13:21.000            1      17   1.0000     5   sell
"""


def test_empty_feed_and_empty_book():
    assert text(WatchView(FakeFeed([])).render(), 80) == """\
lob watch   messages 0 (0/s)   trades 0 (0/s)   gaps 0
waiting for market data ...
last trades
time (UTC)   instrument   trade   price   qty   aggressor
─────────────────────────────────────────────────────────
none yet
"""
    stale = FakeBook(5, state="stale", why="instrument 5 is not among the engine's 2 instruments")
    screen = text(WatchView(FakeFeed([stale])).ladder(5), 60).splitlines()
    assert screen[0] == "╭─ Instrument 5  stale  seq 0  recoveries 0  gaps 0 ───────╮"
    assert screen[3:5] == ["│                          empty                           │",
                           "│ instrument 5 is not among the engine's 2 instruments     │"]


def test_a_book_without_recovery_state_renders_too():
    class PlainBook(FakeBook):   # the Book before it recovered by itself: levels and last trade only
        def __init__(self):
            super().__init__(1, bids=[(100, 1, 1)])
            del self.state, self.why, self.seq, self.recoveries, self.gaps

    feed = FakeFeed([PlainBook()])
    del feed.seq, feed.gaps
    screen = text(WatchView(feed).render(), 80).splitlines()
    assert screen[:2] == ["lob watch   messages 0 (0/s)   trades 0 (0/s)",
                          "╭─ Instrument 1 ─────────────────────────────────────╮"]
    assert screen[4] == "│      1          1       0.0100                     │"


def test_rate_meter_keeps_a_window():
    meter = RateMeter(window=2.0)
    assert meter.rate == 0.0
    for second, count in ((0, 0), (1, 100), (2, 300), (3, 600), (4, 600)):
        meter.sample(float(second), count)
    assert meter.samples[0] == (2.0, 300)          # older samples fell out of the 2 s window
    assert meter.rate == 150.0                      # (600 - 300) / (4 - 2)


def test_clock_time_is_utc_milliseconds():
    assert clock_time(T0 + 1_234_567_890) == "22:13:21.234"


def test_watch_loop_prints_changed_screens_when_not_a_terminal():
    feed = known_feed()
    out = io.StringIO()
    screen = watch_console(width=120, file=out)
    assert not screen.is_terminal
    view = WatchView(feed, [1], levels=1, trades=1)
    watch(feed, view, screen, refresh_s=0.0, duration=0.0)
    printed = out.getvalue()
    assert printed.count("╭─ Instrument 1") == 1          # the same screen is not printed twice
    assert printed.splitlines()[0].startswith("lob watch   messages 100 (0/s)")
    assert feed.polls >= 2                               # polled, then drained before the last screen


def test_watch_loop_stops_when_told_and_reports_connection():
    feed = known_feed()
    feed.connected = False
    stop = threading.Event()
    events = []

    def poll(fragment_limit=256):
        feed.polls += 1
        if feed.polls == 3:
            feed.connected = True
        if feed.polls == 5:
            stop.set()
        return 0

    feed.poll = poll
    watch(feed, WatchView(feed), watch_console(width=120, file=io.StringIO()), refresh_s=0.0, stop=stop,
          on_connected=lambda: events.append(feed.polls))
    assert events == [3]
    assert feed.polls == 6            # five in the loop, one to drain


class StubSubscription:
    is_connected = True

    def poll(self, handler, fragment_limit):
        return 0

    def offer(self, frame):
        return True

    def close(self):
        pass


class StubAeron:
    """Stands in for pyaeron.Aeron: frames are handed to the feed directly."""

    def add_subscription(self, channel, stream_id):
        return StubSubscription()

    add_publication = add_subscription


def test_the_real_feed_and_book_render_the_engine_market_data_and_a_gap():
    from engine_helpers import nos, session_engine

    from lob.client.market_data import MarketDataFeed
    from lob.config import EngineConfig
    from lob.framing import pack_inbound, split_outbound

    engine = session_engine({1: 1})
    orders = [nos(1, "Buy", 990, 10), nos(2, "Sell", 1010, 8), nos(3, "Buy", 1000, 2), nos(4, "Sell", 1000, 3)]
    engine.process(b"".join(pack_inbound(f, 1, T0 + i) for i, f in enumerate(orders)))
    frames = split_outbound(engine.take_market_data())
    assert len(frames) == 5         # one BookUpdate per order, a Trade before the last one's
    feed = MarketDataFeed(StubAeron(), EngineConfig().client_channels())
    for frame in frames:
        feed.on_incremental_frame(frame)
    view = WatchView(feed, levels=2, trades=2)
    screen = text(view.render()).splitlines()
    assert screen[0] == "lob watch   messages 5 (0/s)   trades 1 (0/s)   feed seq 5   gaps 0   snapshots 0"
    assert screen[1:10] == [
        "╭─ Instrument 1  live  seq 5  recoveries 0  gaps 0 ──╮",
        "│ orders    bid qty        price    ask qty   orders │",
        "│ ────────────────────────────────────────────────── │",
        "│                         0.1010          8        1 │",
        "│                         0.1000          1        1 │",
        "│                                                    │",
        "│      1         10       0.0990                     │",
        "│ spread 0.0010  last 0.1000 x 2 (sell aggressor) #1 │",
        "╰────────────────────────────────────────────────────╯"]
    assert screen[13:] == [f"{clock_time(T0 + 3)}            1       1   0.1000     2   sell"]

    engine.process(pack_inbound(nos(5, "Buy", 995, 1), 1, T0 + 10) + pack_inbound(nos(6, "Buy", 996, 1), 1, T0 + 11))
    lost, kept = split_outbound(engine.take_market_data())
    feed.on_incremental_frame(kept)                      # seq 7 without 6
    screen = text(view.render()).splitlines()
    assert screen[0] == "lob watch   messages 6 (0/s)   trades 1 (0/s)   feed seq 7   gaps 1   snapshots 0"
    assert screen[1:11] == [                             # the book as of seq 5, dimmed, and why
        "╭─ Instrument 1  recovering  seq 5  recoveries 0  gaps 1 ─╮",
        "│ orders    bid qty        price    ask qty   orders      │",
        "│ ──────────────────────────────────────────────────      │",
        "│                         0.1010          8        1      │",
        "│                         0.1000          1        1      │",
        "│                                                         │",
        "│      1         10       0.0990                          │",
        "│ spread 0.0010  last 0.1000 x 2 (sell aggressor) #1      │",
        "│ lost messages 6..6: waiting for a snapshot at seq >= 6  │",
        "╰─────────────────────────────────────────────────────────╯"]


def test_watch_command_names_a_missing_or_malformed_config(tmp_path):
    (tmp_path / "bad.toml").write_text("[driver\n")
    for config, message in (("missing.toml", "lob watch: missing.toml: No such file or directory\n"),
                            ("bad.toml", "lob watch: bad.toml: not valid TOML: ")):
        done = subprocess.run([sys.executable, "-m", "lob.cli", "watch", "--config", config], cwd=tmp_path,
                              capture_output=True, text=True, timeout=WAIT)
        assert done.returncode == 2
        assert done.stderr.startswith(message), done.stderr
        assert done.stdout == ""
