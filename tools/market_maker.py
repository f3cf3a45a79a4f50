"""`lob marketmaker`: an example market maker built only on the client library (`lob.client`).

It quotes one bid and one ask around a fair price (the last trade, else the market-data mid of the other
participants, else `--mid`), skews both quotes against its inventory, stops quoting the side that would
grow the position past `--max-position`, re-quotes after every fill (and when the fair price moves), and
prints its position and P&L. On exit (Ctrl-C, SIGTERM or `--duration`) it cancels its quotes and prints
the final figures.

It logs on as the session `--session` of the credentials file `--credentials`. While the session is
re-establishing (the engine restarted, or ended the session) it does not quote; once it is back, the
reports it missed (cancel-on-disconnect among them) have been retransmitted and it quotes again.
"""
import signal
import sys
import time

from lob.client import Client, ClientError, to_decimal_str


class MarketMaker:
    def __init__(self, client, instrument, *, mid, half_spread, size, tick=1, max_position=100, skew=1,
                 out=sys.stdout):
        self.client = client
        self.instrument = instrument
        self.default_mid = mid
        self.half_spread = half_spread
        self.size = size
        self.tick = tick
        self.max_position = max_position
        self.skew = skew
        self.out = out
        self.quotes = {"Buy": None, "Sell": None}
        self.fills = 0
        self.dirty = True
        client.on_execution_report = self._on_report
        client.on_message_reject = self._on_message_reject
        client.on_session_state = self._on_session_state
        client.on_trade = self._on_market_trade

    def _on_report(self, message, order):
        name = message["_name"]
        if name == "ExecutionReportTrade":
            self.fills += 1
            self.dirty = True
        elif name in ("ExecutionReportCanceled", "ExecutionReportRejected", "ExecutionReportExpired"):
            self.dirty = True

    def _on_message_reject(self, message, order):
        self.dirty = True

    def _on_session_state(self, state):
        self.dirty = True

    def _on_market_trade(self, message, book):
        self.dirty = True

    def fair_price(self):
        book = self.client.book(self.instrument)
        if book.last_trade is not None:
            return book.last_trade[1]
        own = {o.price for o in self.client.open_orders(self.instrument)}
        bids = [p for p in book.bids if p not in own]
        asks = [p for p in book.asks if p not in own]
        if bids and asks:
            return (max(bids) + min(asks)) // 2
        return self.default_mid

    def targets(self):
        """Where each side should be quoted, or None to stay out of it."""
        position = self.client.position(self.instrument).quantity
        fair = self.fair_price() - self.skew * self.tick * position // max(self.size, 1)
        fair -= fair % self.tick
        bid = fair - self.half_spread * self.tick
        ask = fair + self.half_spread * self.tick
        return {
            "Buy": bid if position + self.size <= self.max_position and bid > 0 else None,
            "Sell": ask if position - self.size >= -self.max_position else None,
        }

    def requote(self):
        if not self.client.established:
            return  # dirty stays set: quote again once the session is back
        self.dirty = False
        for side, price in self.targets().items():
            order = self.quotes[side]
            live = order is not None and order.is_open
            if live and order.pending:
                self.dirty = True  # an earlier change is still on its way; look again afterwards
                continue
            if price is None:
                if live:
                    self.client.cancel(order)
                continue
            if not live:
                self.quotes[side] = self.client.place(self.instrument, side, self.size, price)
            elif order.price != price or order.leaves < self.size:
                self.client.replace(order, price=price, quantity=order.cum + self.size)

    def pnl_line(self):
        position = self.client.position(self.instrument)
        mark = self.fair_price()
        bid, ask = (self.quotes[s].price if self.quotes[s] is not None and self.quotes[s].is_open else None
                    for s in ("Buy", "Sell"))
        return (f"position {position.quantity:+d}  cash {to_decimal_str(position.cash)}  "
                f"P&L {to_decimal_str(position.pnl(mark))} at {to_decimal_str(mark)}  fills {self.fills}  "
                f"quotes {to_decimal_str(bid)} / {to_decimal_str(ask)}")

    def run(self, duration=None, report_every=1.0, stop=lambda: False):
        client = self.client
        end = None if duration is None else time.monotonic() + duration
        next_report = time.monotonic() + report_every
        while not stop() and (end is None or time.monotonic() < end):
            # While the session re-establishes, keep polling (that is what brings it back) without quoting.
            client.run(until=lambda: self.dirty and client.established or stop(), timeout=min(report_every, 0.05))
            if self.dirty:
                self.requote()
            now = time.monotonic()
            if now >= next_report:
                print(self.pnl_line(), file=self.out, flush=True)
                next_report = now + report_every
        self.shutdown()

    def shutdown(self, timeout=5.0):
        if self.client.established:
            request = self.client.mass_cancel(self.instrument)
            self.client.run(until=lambda: request not in self.client.tracker.requests, timeout=timeout)
        print("final: " + self.pnl_line(), file=self.out, flush=True)


def add_arguments(parser):
    from lob.client import connection

    parser.add_argument("--instrument", type=int, default=1)
    parser.add_argument("--mid", type=int, default=1_000_000,
                        help="fair price (mantissa, exponent -4) until the market shows one (default 1000000)")
    parser.add_argument("--half-spread", type=int, default=5, help="ticks each side of the fair price (default 5)")
    parser.add_argument("--size", type=int, default=10, help="quantity per quote (default 10)")
    parser.add_argument("--tick", type=int, default=1, help="instrument tick in price mantissa units (default 1)")
    parser.add_argument("--max-position", type=int, default=100)
    parser.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
    parser.add_argument("--report-every", type=float, default=1.0, help="seconds between P&L lines")
    connection.add_arguments(parser)
    connection.add_session_arguments(parser)


def run(args):
    from lob.client import connection

    try:
        config, credentials = connection.session_from_args(args)
    except (ValueError, OSError) as exc:
        print(f"lob marketmaker: {exc}", file=sys.stderr)
        return 2
    stopping = []
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    try:
        with connection.connect(config) as conn, Client(credentials, aeron=conn.aeron, config=config,
                                                        **connection.session_options(args)) as client:
            print(f"market maker: session {client.session_id}, instrument {args.instrument}, "
                  f"reports on {client.response_channel} stream {client.response_stream_id}, "
                  f"driver {conn.describe()}", flush=True)
            maker = MarketMaker(client, args.instrument, mid=args.mid, half_spread=args.half_spread, size=args.size,
                                tick=args.tick, max_position=args.max_position)
            try:
                maker.run(duration=args.duration, report_every=args.report_every, stop=lambda: bool(stopping))
            except KeyboardInterrupt:
                maker.shutdown()
        print(f"session: {client.sequence_state()}", flush=True)
    except ClientError as exc:
        print(f"lob marketmaker: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
