"""Best bid and ask, trades and traded volume of one instrument over a recorded session.

The journal (or `lob record` recording) runs through an offline engine, the one `lob replay` builds from
the same flags, and what is drawn is the market data that engine publishes while it runs: the
BookUpdates and Trades a subscriber got during the session, as replay reproduces them byte for byte.
Times are the journal's record clock (transactTime), in seconds from the first market-data message.
"""
from dataclasses import dataclass, field

from lob.client.orders import PRICE_EXPONENT, mantissa
from lob.framing import iter_outbound, pack_inbound

BATCH_RECORDS = 4096   # journal records run through the engine between reads of its market data
VOLUME_BUCKETS = 60


@dataclass
class BookSeries:
    """What one instrument's market data said over the session. Prices are mantissas (PRICE_EXPONENT);
    times nanoseconds on the journal's clock. A None best price: that side of the book was empty."""
    instrument: int
    times: list = field(default_factory=list)        # one point per change of the best bid or ask
    best_bids: list = field(default_factory=list)
    best_asks: list = field(default_factory=list)
    trade_times: list = field(default_factory=list)
    trade_prices: list = field(default_factory=list)
    trade_quantities: list = field(default_factory=list)
    trade_sides: list = field(default_factory=list)  # aggressor side, "Buy" / "Sell"
    updates: int = 0                                 # BookUpdate messages
    bids: dict = field(default_factory=dict, repr=False)   # price -> quantity now
    asks: dict = field(default_factory=dict, repr=False)

    @property
    def volume(self):
        return sum(self.trade_quantities)

    @property
    def messages(self):
        return self.updates + len(self.trade_times)

    def best(self):
        return (max(self.bids) if self.bids else None, min(self.asks) if self.asks else None)

    def apply_levels(self, time_ns, levels):
        before = self.best()
        for side, price, quantity, deleted in levels:
            book = self.bids if side == "Buy" else self.asks
            if deleted or quantity <= 0:
                book.pop(price, None)
            else:
                book[price] = quantity
        self.updates += 1
        self._point(time_ns, before)

    def apply_trade(self, time_ns, price, quantity, aggressor_side):
        self.trade_times.append(time_ns)
        self.trade_prices.append(price)
        self.trade_quantities.append(quantity)
        self.trade_sides.append(aggressor_side)

    def _point(self, time_ns, before):
        best = self.best()
        if best != before or not self.times:
            self.times.append(time_ns)
            self.best_bids.append(best[0])
            self.best_asks.append(best[1])


def market_data_frames(engine, journal_dir, from_seq=1, batch_records=BATCH_RECORDS):
    """Yield every market-data frame `engine` publishes while it runs the journal from `from_seq`
    (lob.journal.JournalError on a corrupt journal)."""
    from lob.journal import read_journal

    batch = []
    for _, timestamp, session, frame in read_journal(journal_dir, from_seq):
        batch.append(pack_inbound(frame, session, timestamp))
        if len(batch) >= batch_records:
            yield from _run(engine, batch)
            batch = []
    if batch:
        yield from _run(engine, batch)


def _run(engine, batch):
    engine.process(b"".join(batch))   # the execution stream is not drawn
    yield from iter_outbound(engine.take_market_data())


def book_series(frames, seed=None):
    """{instrument: BookSeries} from market-data frames. `seed`: {instrument: (bid levels, ask levels)},
    the book before the first frame (from a snapshot), as Engine.levels gives them."""
    from lob.sbe import messages

    series = {}
    for instrument, (bids, asks) in (seed or {}).items():
        s = series[instrument] = BookSeries(instrument)
        s.bids = {price: quantity for price, quantity, _ in bids}
        s.asks = {price: quantity for price, quantity, _ in asks}
    for frame in frames:
        message = messages.decode(frame)
        name = message["_name"]
        if name not in ("BookUpdate", "Trade"):
            continue
        instrument = message["instrumentId"]
        s = series.get(instrument)
        if s is None:
            s = series[instrument] = BookSeries(instrument)
        if name == "BookUpdate":
            s.apply_levels(message["transactTime"], [
                (level["side"], mantissa(level["price"]), level["quantity"], level["action"] == "Delete")
                for level in message["levels"]])
        else:
            s.apply_trade(message["transactTime"], mantissa(message["price"]), message["quantity"],
                          message["aggressorSide"])
    return series


def busiest(series):
    """The instrument with the most market-data messages (the lowest id of equals)."""
    return min(series, key=lambda i: (-series[i].messages, i))


def _price(m):
    return float("nan") if m is None else m * 10.0 ** PRICE_EXPONENT


def book_figure(series, *, title=None, width_px=1200, height_px=700, dpi=100, buckets=VOLUME_BUCKETS):
    """A matplotlib Figure (no pyplot): best bid and ask as steps with the trades over them, and the
    traded volume per time bucket below, split by aggressor side."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    times = series.times + series.trade_times
    if not times:
        raise ValueError(f"instrument {series.instrument}: no market data to plot")
    origin = min(times)
    seconds = lambda ns: (ns - origin) / 1e9  # noqa: E731
    end = max(seconds(t) for t in times)
    figure = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    prices, volume = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1)})
    xs = [seconds(t) for t in series.times] + [end]
    for label, values, colour in (("best bid", series.best_bids, "tab:green"),
                                  ("best ask", series.best_asks, "tab:red")):
        ys = [_price(v) for v in values]
        prices.plot(xs, ys + ys[-1:], drawstyle="steps-post", color=colour, linewidth=1.2, label=label)
    if series.trade_times:
        prices.scatter([seconds(t) for t in series.trade_times], [_price(p) for p in series.trade_prices],
                       s=9 if len(series.trade_times) < 1000 else 2, color="black", alpha=0.6, zorder=3,
                       label=f"trades ({len(series.trade_times):,})")
    prices.set_ylabel("price")
    prices.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:,.{-PRICE_EXPONENT}f}"))   # no offset
    prices.set_title(title or f"Instrument {series.instrument}: {series.updates:,} book updates, "
                              f"{len(series.trade_times):,} trades, volume {series.volume:,}")
    prices.grid(True, linestyle=":", linewidth=0.8)
    prices.legend(loc="upper left", fontsize="small")

    width = max(end, 1e-9) / buckets
    buy, sell = [0] * buckets, [0] * buckets
    for t, quantity, side in zip(series.trade_times, series.trade_quantities, series.trade_sides):
        bucket = min(int(seconds(t) / width), buckets - 1)
        (buy if side == "Buy" else sell)[bucket] += quantity
    lefts = [i * width for i in range(buckets)]
    volume.bar(lefts, buy, width=width, align="edge", color="tab:blue", label="buyer aggressor")
    volume.bar(lefts, sell, width=width, align="edge", bottom=buy, color="tab:orange", label="seller aggressor")
    volume.set_ylabel("volume")
    volume.set_xlabel("seconds from the first market-data message")
    volume.grid(True, axis="y", linestyle=":", linewidth=0.8)
    volume.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    return figure
