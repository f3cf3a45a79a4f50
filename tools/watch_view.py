"""What `lob watch` shows, as rich renderables: a price ladder per instrument, the last trades, the
feed's rates and each book's sequence state.

`WatchView` reads any object shaped like lob.client.market_data.MarketDataFeed: `books` ({instrument:
Book}), `trades` (a deque of (instrument, trade id, price mantissa, quantity, aggressor side,
transactTime ns), newest last), `messages` and `trade_count`; optionally `seq` and `gaps` (the stream's)
and `snapshot_messages` (those of the recovery channel).
Each Book gives `depth(side, levels)` -> [(price, quantity, orders)], `last_trade` (trade id, price,
quantity, aggressor side) and, when it recovers by itself, `state` ("live" | "recovering" | "stale"),
`why`, `seq`, `recoveries` and `gaps`. Nothing here touches Aeron, so a test renders a known book into
a string console and checks the text.
"""
import collections
import time
from datetime import datetime, timezone

from rich import box
from rich.console import Group
from rich.columns import Columns
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from lob.client.orders import to_decimal_str

STATE_STYLES = {"live": "bold green", "recovering": "bold yellow", "stale": "bold red"}
RATE_WINDOW_S = 2.0


class RateMeter:
    """Per-second rate of a growing counter over the last `window` seconds of samples."""

    def __init__(self, window=RATE_WINDOW_S):
        self.window = window
        self.samples = collections.deque()

    def sample(self, now, count):
        self.samples.append((now, count))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()

    @property
    def rate(self):
        if len(self.samples) < 2:
            return 0.0
        (t0, c0), (t1, c1) = self.samples[0], self.samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0


def price(mantissa):
    return "" if mantissa is None else to_decimal_str(mantissa)


def clock_time(ns):
    """transactTime (ns since the epoch) as UTC HH:MM:SS.mmm."""
    moment = datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc)
    return f"{moment:%H:%M:%S}.{ns // 1_000_000 % 1000:03d}"


class WatchView:
    """The screen of `lob watch` over `feed`. `instruments`: the ones to show (None: every book the feed
    has, by id). `levels`: ladder depth per side; `trades`: rows of the last-trades table. Call sample()
    about once per screen refresh (it feeds the rate meters), then render()."""

    def __init__(self, feed, instruments=None, *, levels=10, trades=10, title="lob watch", clock=time.monotonic):
        self.feed = feed
        self.instruments = list(instruments) if instruments else None
        self.levels = levels
        self.trades = trades
        self.title = title
        self.clock = clock
        self.message_rate = RateMeter()
        self.trade_rate = RateMeter()

    def sample(self, now=None):
        now = self.clock() if now is None else now
        self.message_rate.sample(now, self.feed.messages)
        self.trade_rate.sample(now, self.feed.trade_count)

    def shown(self):
        return self.instruments if self.instruments is not None else sorted(self.feed.books)

    def render(self):
        ladders = [self.ladder(i) for i in self.shown()]
        return Group(self.header(),
                     Columns(ladders, padding=(0, 1)) if ladders else Text("waiting for market data ...", style="dim"),
                     self.last_trades())

    def header(self):
        feed = self.feed
        text = Text()
        text.append(self.title, style="bold")
        text.append(f"   messages {feed.messages:,} ({self.message_rate.rate:,.0f}/s)"
                    f"   trades {feed.trade_count:,} ({self.trade_rate.rate:,.0f}/s)")
        seq = getattr(feed, "seq", None)
        if seq is not None:
            text.append(f"   feed seq {seq:,}")
        gaps = getattr(feed, "gaps", None)
        if gaps is not None:
            text.append(f"   gaps {gaps:,}", style="bold red" if gaps else None)
        snapshots = getattr(feed, "snapshot_messages", None)
        if snapshots is not None:
            text.append(f"   snapshots {snapshots:,}")
        return text

    def book_state(self, book):
        """The title line of a book's panel: its state, sequence and recoveries."""
        text = Text()
        text.append(f"Instrument {book.instrument}")
        state = getattr(book, "state", None)
        if state is not None:
            text.append("  ")
            text.append(state, style=STATE_STYLES.get(state))
        seq = getattr(book, "seq", None)
        if seq is not None:
            text.append(f"  seq {seq:,}")
        for name in ("recoveries", "gaps"):
            value = getattr(book, name, None)
            if value is not None:
                text.append(f"  {name} {value:,}")
        return text

    def ladder(self, instrument):
        """Asks above (best ask lowest), bids below (best bid highest): orders, quantity and price of the
        top `levels` levels of each side, then the spread and the last trade."""
        book = self.feed.books.get(instrument)
        if book is None:
            return Panel(Text("no market data yet", style="dim"), title=f"Instrument {instrument}",
                         title_align="left", box=box.ROUNDED)
        live = getattr(book, "state", "live") == "live"
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, style=None if live else "dim")
        for name, style, width in (("orders", "green", 6), ("bid qty", "bold green", 8), ("price", "bold", 10),
                                   ("ask qty", "bold red", 8), ("orders", "red", 6)):
            table.add_column(name, justify="right", style=style if live else "dim", min_width=width)
        asks = book.depth("Sell", self.levels)
        bids = book.depth("Buy", self.levels)
        for index, (level_price, quantity, orders) in enumerate(reversed(asks)):
            table.add_row("", "", price(level_price), f"{quantity:,}", f"{orders:,}",
                          end_section=index == len(asks) - 1)
        for level_price, quantity, orders in bids:
            table.add_row(f"{orders:,}", f"{quantity:,}", price(level_price), "", "")
        if not asks and not bids:
            table.add_row("", "", Text("empty", style="dim"), "", "")
        facts = []
        if asks and bids:
            facts.append(f"spread {price(asks[0][0] - bids[0][0])}")
        if book.last_trade is not None:
            trade_id, trade_price, quantity, side = book.last_trade
            facts.append(f"last {price(trade_price)} x {quantity:,} ({side.lower()} aggressor) #{trade_id}")
        lines = [table] + ([Text("  ".join(facts))] if facts else [])
        state = getattr(book, "state", None)
        if state not in (None, "live"):
            lines.append(Text(getattr(book, "why", "") or state, style=STATE_STYLES.get(state)))
        return Panel(Group(*lines), title=self.book_state(book), title_align="left", box=box.ROUNDED)

    def last_trades(self):
        table = Table(title="last trades", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                      show_edge=False)
        for name in ("time (UTC)", "instrument", "trade", "price", "qty", "aggressor"):
            table.add_column(name, justify="left" if name in ("time (UTC)", "aggressor") else "right")
        shown = None if self.instruments is None else set(self.instruments)
        rows = 0
        for instrument, trade_id, trade_price, quantity, side, transact_time in reversed(self.feed.trades):
            if rows >= self.trades:
                break
            if shown is not None and instrument not in shown:
                continue
            table.add_row(clock_time(transact_time), str(instrument), str(trade_id), price(trade_price),
                          f"{quantity:,}", Text(side.lower(), style="green" if side == "Buy" else "red"))
            rows += 1
        if rows == 0:
            table.add_row(Text("none yet", style="dim"), "", "", "", "", "")
        return table
