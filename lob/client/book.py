"""A market-data view of one instrument's book that recovers by itself.

Levels come from BookUpdate messages on the incremental stream and from BookSnapshot messages on the
engine's recovery channel. Every incremental carries the stream's sequence number (one sequence over
all instruments); every snapshot carries the sequence number it is consistent with: it holds the
effect of every incremental up to and including that number and of none after it.

States:
  live        the book is the engine's book as of `seq` (and of every later message the feed has seen).
  recovering  a snapshot is awaited: incrementals are buffered; when a usable snapshot is complete the
              book takes it, applies the buffered incrementals after its sequence number and goes live.
  stale       the book cannot recover now (no recovery channel, or the engine has no such instrument):
              `why` says which. Its levels are those of `seq`, never a mix.

A snapshot is used only when it is whole (every part, each with a good checksum), self-consistent
(levels sorted, not crossed, quantities and counts positive, as many levels as it announces) and recent
enough: every incremental after its sequence number is held. Anything else is refused with the reason
in `why`, and the book waits for the next one.

Order-level instruments (the engine's `order_level` reference data) also have every displayed order:
`orders` (public id -> (side, price, displayed quantity)) and `queue(side, price)` in priority order,
from OrderAdd / OrderModify / OrderDelete / OrderExecute. Their recovery needs the BookSnapshot and the
OrderSnapshot of one seqNum, and the orders must add up to the levels; an order message naming an order
the book does not hold sends the book back to recovering.

The feed (lob.client.market_data.MarketDataFeed) owns the sequence: it tells each book where it joined
the stream (`on_join`), which ranges were lost (`on_gap`) and that the engine started afresh
(`on_restart`); the book only has to know which of those concern it.
"""
from .orders import mantissa

LIVE, RECOVERING, STALE = "live", "recovering", "stale"
MAX_PENDING = 100_000           # incrementals buffered while recovering; beyond, older ones are dropped
SIDES = ("Buy", "Sell")
ORDER_MESSAGES = ("OrderAdd", "OrderModify", "OrderDelete", "OrderExecute")


class Book:
    """Displayed price levels: `bids` / `asks` map price mantissa -> (quantity, order count)."""

    def __init__(self, instrument, recoverable=True):
        self.instrument = instrument
        self.bids = {}
        self.asks = {}
        self.last_trade = None  # (trade id, price, quantity, aggressor side)
        self.status = None      # the instrument's trading state from InstrumentStatus, once seen
        self.updates = 0
        self.seq = None         # last incremental applied (or the snapshot's, after a recovery)
        self.state = RECOVERING
        self.why = "waiting for a snapshot"
        self.recoveries = 0     # times the book went live from a snapshot (or from the stream's start)
        self.gaps = 0           # lost ranges of the stream that sent it back to recovering
        self.snapshots_refused = 0
        self.verified = 0       # engine snapshots a live book was compared with and matched
        self.mismatches = 0     # ... and did not (the book then recovered)
        self.check = None       # (seq, bids, asks) of an engine snapshot to compare with at that seq
        self.recoverable = recoverable   # False: no recovery channel, a gap makes the book stale
        self._base = None       # sequence number of the snapshot the live book was built from
        self._complete_from = None   # the feed has every incremental from here on (None: unknown yet)
        self._pending = []      # (seq, message) while recovering
        self._parts = []        # the parts of the snapshot being assembled
        self.order_level = False     # the instrument has order-level market data
        self.orders = {}        # public order id -> (side, price, displayed quantity)
        self._queues = {}       # (side, price) -> {public order id: None}, oldest first
        self._order_parts = []
        self._held = None       # (seq, bids, asks) of a whole BookSnapshot awaiting its OrderSnapshot

    # -- plain updates (no sequence checks): the building blocks -------------------------------------
    def _side(self, side):
        return self.bids if side == "Buy" else self.asks

    def apply_update(self, message):
        for level in message.get("levels", ()):
            levels = self._side(level["side"])
            price = mantissa(level["price"])
            if level["action"] == "Delete" or level["quantity"] <= 0:
                levels.pop(price, None)
            else:
                levels[price] = (level["quantity"], level["orderCount"])
        self.updates += 1

    def apply_snapshot(self, message):
        self.bids.clear()
        self.asks.clear()
        for level in message.get("levels", ()):
            self._side(level["side"])[mantissa(level["price"])] = (level["quantity"], level["orderCount"])
        self.updates += 1

    def apply_trade(self, message):
        self.last_trade = (message["tradeId"], mantissa(message["price"]), message["quantity"],
                           message["aggressorSide"])

    def apply_status(self, message):
        self.status = message["state"]

    def apply_order(self, message):
        """An order-level message; False when it names an order the book does not (or already) hold."""
        name, order_id = message["_name"], message["orderId"]
        self.order_level = True
        if name == "OrderAdd":
            if order_id in self.orders:
                return False
            key = (message["side"], mantissa(message["price"]))
            self.orders[order_id] = (*key, message["quantity"])
            self._queues.setdefault(key, {})[order_id] = None
            return True
        order = self.orders.get(order_id)
        if order is None:
            return False
        side, price, qty = order
        if name == "OrderModify":
            self.orders[order_id] = (side, price, message["quantity"])
            return True
        if name == "OrderExecute" and qty > message["quantity"]:
            self.orders[order_id] = (side, price, qty - message["quantity"])
            return True
        del self.orders[order_id]           # deleted, or executed down to nothing
        queue = self._queues[(side, price)]
        del queue[order_id]
        if not queue:
            del self._queues[(side, price)]
        return True

    def queue(self, side, price):
        """The displayed orders at one level in priority order: [(public order id, quantity)]."""
        return [(order_id, self.orders[order_id][2]) for order_id in self._queues.get((side, price), ())]

    def _apply(self, message):
        name = message["_name"]
        if name == "BookUpdate":
            self.apply_update(message)
        elif name == "Trade":
            self.apply_trade(message)
        elif name == "InstrumentStatus":
            self.apply_status(message)
        elif not self.apply_order(message):
            self.seq = message["seqNum"]
            return False
        self.seq = message["seqNum"]
        return True

    # -- the feed's events ---------------------------------------------------------------------------
    def on_incremental(self, message):
        """A BookUpdate, Trade or InstrumentStatus of this instrument, in stream order. True if applied."""
        seq = message["seqNum"]
        if self.seq is not None and seq <= self.seq:
            return False    # already in the book (it came with the snapshot)
        if self.state == LIVE:
            if self._apply(message):
                return True
            self._complete_from = seq + 1
            self._recover(f"{message['_name']} of order {message['orderId']} does not match the book: "
                          f"waiting for a snapshot at seq >= {seq}")
            return False
        if message["_name"] in ("Trade", "InstrumentStatus"):
            # A trade or a status is the latest one whatever the levels' state: taken at once, not
            # buffered (a snapshot does not carry it, and applying it later could only make it older).
            if message["_name"] == "Trade":
                self.apply_trade(message)
            else:
                self.apply_status(message)
            return True
        if len(self._pending) >= MAX_PENDING:
            self._pending.clear()
            self._complete_from = seq
            self.why = (f"recovery buffer full ({MAX_PENDING} messages) before a usable snapshot came; "
                        f"waiting for one at seq >= {seq - 1}")
        self._pending.append((seq, message))
        return False

    def on_join(self, first_seq):
        """The feed's first incremental is `first_seq`; it has every one from there on."""
        if first_seq == 1:
            self.on_restart()
            return
        self._complete_from = first_seq
        if self.state == LIVE and self._base is not None and self._base >= first_seq - 1:
            return
        self._recover(f"joined the stream at seq {first_seq}: waiting for a snapshot at seq >= {first_seq - 1}")

    def on_gap(self, first, last):
        """Incrementals first..last were lost."""
        if self.state == LIVE and self._base is not None and last <= self._base:
            return          # all of them are in the snapshot the book was built from
        self.gaps += 1
        self._complete_from = last + 1
        self._pending = [(s, m) for s, m in self._pending if s > last]
        during = " during recovery" if self.state != LIVE else ""
        self._recover(f"lost messages {first}..{last}{during}: waiting for a snapshot at seq >= {last}")

    def on_restart(self):
        """The stream starts at seq 1: the engine started with empty books, and nothing was missed."""
        self.bids.clear()
        self.asks.clear()
        self.orders, self._queues = {}, {}
        self._parts = []
        self._pending = []
        self._go_live(0, 0, recovered=False)

    def on_unknown(self, instruments):
        """A whole snapshot loop went by without this instrument: the engine does not have it."""
        if self.state != LIVE:
            self.state = STALE
            self.why = f"instrument {self.instrument} is not among the engine's {instruments} instruments"

    def on_snapshot(self, message):
        """A BookSnapshot part (decoded, checksum verified by the feed). A live book keeps a whole one
        as `check`, for the feed to compare it with once the stream is at its seq (`verify`)."""
        part, parts = message["partIndex"], message["partCount"]
        if not 0 <= part < parts:
            return self.refuse_snapshot(f"part {part} of {parts}")
        if part == 0:
            self._parts = [message]
        elif (self._parts and len(self._parts) == part and self._parts[0]["seqNum"] == message["seqNum"]
              and self._parts[0]["partCount"] == parts):
            self._parts.append(message)
        else:
            self._parts = []
            return self.refuse_snapshot(f"part {part} of {parts} at seq {message['seqNum']} came without "
                                        f"the parts before it")
        if len(self._parts) < parts:
            return False
        parts, self._parts = self._parts, []
        if parts[0].get("orderLevel") and self.state != LIVE:
            levels = [level for p in parts for level in p["levels"]]
            problem = self._check(levels, parts[0]["levelCount"], parts)
            if problem:
                return self.refuse_snapshot(f"seq {parts[0]['seqNum']}: {problem}")
            self._held = (parts[0]["seqNum"], *self._levels_of(levels))
            return False
        if self.state == LIVE:
            levels = [level for p in parts for level in p["levels"]]
            if self._check(levels, parts[0]["levelCount"], parts) is None:
                bids, asks = self._levels_of(levels)
                self.check = (parts[0]["seqNum"], bids, asks)
            return False
        return self._take(parts)

    def on_order_snapshot(self, message):
        """An OrderSnapshot part: with the BookSnapshot of the same seqNum, the book recovers."""
        if self.state == LIVE:
            return False
        part, parts = message["partIndex"], message["partCount"]
        if not 0 <= part < parts:
            return self.refuse_snapshot(f"order part {part} of {parts}")
        if part == 0:
            self._order_parts = [message]
        elif (self._order_parts and len(self._order_parts) == part
              and self._order_parts[0]["seqNum"] == message["seqNum"] and self._order_parts[0]["partCount"] == parts):
            self._order_parts.append(message)
        else:
            self._order_parts = []
            return self.refuse_snapshot(f"order part {part} of {parts} at seq {message['seqNum']} came without "
                                        f"the parts before it")
        if len(self._order_parts) < parts:
            return False
        parts, self._order_parts = self._order_parts, []
        held, self._held = self._held, None
        seq = parts[0]["seqNum"]
        if held is None or held[0] != seq:
            return self.refuse_snapshot(f"order snapshot at seq {seq} without the book snapshot of that seq")
        if self._complete_from is not None and seq < self._complete_from - 1:
            return self.refuse_snapshot(f"seq {seq} is older than the incrementals held, which start at "
                                        f"{self._complete_from}")
        orders = [order for p in parts for order in p["orders"]]
        problem = self._check_orders(orders, parts[0]["orderCount"], held[1], held[2])
        if problem:
            return self.refuse_snapshot(f"seq {seq}: {problem}")
        self.bids, self.asks = held[1], held[2]
        self.orders, self._queues = {}, {}
        for order in orders:
            key = (order["side"], mantissa(order["price"]))
            self.orders[order["orderId"]] = (*key, order["quantity"])
            self._queues.setdefault(key, {})[order["orderId"]] = None
        self.order_level = True
        self.updates += 1
        self._go_live(seq, seq)
        return True

    def _check_orders(self, orders, announced, bids, asks):
        if len(orders) != announced:
            return f"{len(orders)} orders, {announced} announced"
        if len({o["orderId"] for o in orders}) != len(orders):
            return "an order twice"
        levels = {}
        for order in orders:
            if order["side"] not in SIDES or order["quantity"] <= 0:
                return f"bad order {order['orderId']}"
            key = (order["side"], mantissa(order["price"]))
            qty, count = levels.get(key, (0, 0))
            levels[key] = (qty + order["quantity"], count + 1)
        expected = {("Buy", p): v for p, v in bids.items()} | {("Sell", p): v for p, v in asks.items()}
        if levels != expected:
            return "its orders do not add up to its levels"
        return None

    def verify(self, stream_seq):
        """Compare with `check` if the book is at its seq: the stream is at stream_seq (>= the check's)
        and nothing of this instrument after the check's seq has been applied. Returns True (same),
        False (different: the book recovers), None (no check, or it can no longer be made)."""
        if self.check is not None and self.state != LIVE:
            self.check = None
        if self.check is None or stream_seq < self.check[0]:
            return None
        seq, bids, asks = self.check
        self.check = None
        if self.seq is not None and self.seq > seq:
            return None
        if (bids, asks) == (self.bids, self.asks):
            self.verified += 1
            return True
        self.mismatches += 1
        self._complete_from = seq + 1
        self._recover(f"differs from the engine's snapshot at seq {seq}: waiting for a snapshot")
        return False

    def refuse_snapshot(self, reason):
        """A snapshot (or part) that cannot be used: say why, wait for the next."""
        self.snapshots_refused += 1
        self._parts = []
        if self.state != LIVE:
            self.why = f"snapshot refused ({reason}); waiting for the next"
        return False

    def _levels_of(self, levels):
        bids, asks = {}, {}
        for level in levels:
            (bids if level["side"] == "Buy" else asks)[mantissa(level["price"])] = (level["quantity"],
                                                                                   level["orderCount"])
        return bids, asks

    # -- recovery ------------------------------------------------------------------------------------
    def _recover(self, why):
        self._parts, self._order_parts, self._held = [], [], None
        if not self.recoverable:
            self.state = STALE
            self.why = why.split(":")[0] + ": no recovery channel to rebuild the book from"
            return
        self.state = RECOVERING
        self.why = why

    def _take(self, parts):
        first = parts[0]
        seq = first["seqNum"]
        if self._complete_from is not None and seq < self._complete_from - 1:
            return self.refuse_snapshot(f"seq {seq} is older than the incrementals held, which start at "
                                        f"{self._complete_from}")
        levels = [level for p in parts for level in p["levels"]]
        problem = self._check(levels, first["levelCount"], parts)
        if problem:
            return self.refuse_snapshot(f"seq {seq}: {problem}")
        self.bids, self.asks = self._levels_of(levels)
        self.updates += 1
        self._go_live(seq, seq)
        return True

    def _check(self, levels, announced, parts):
        if any(p["levelCount"] != announced or p["instrumentId"] != self.instrument for p in parts):
            return "its parts disagree"
        if len(levels) != announced:
            return f"{len(levels)} levels, {announced} announced"
        previous = {"Buy": None, "Sell": None}
        seen_sell = False
        for level in levels:
            side, price = level["side"], mantissa(level["price"])
            if side not in SIDES or level["quantity"] <= 0 or level["orderCount"] <= 0:
                return f"bad level {side} {price} {level['quantity']}x{level['orderCount']}"
            if side == "Buy" and seen_sell:
                return "bids after asks"
            seen_sell |= side == "Sell"
            last = previous[side]
            if last is not None and (price >= last if side == "Buy" else price <= last):
                return f"{side} levels out of order at {price}"
            previous[side] = price
        bids = [level for level in levels if level["side"] == "Buy"]
        asks = [level for level in levels if level["side"] == "Sell"]
        if bids and asks and mantissa(bids[0]["price"]) >= mantissa(asks[0]["price"]):
            return "crossed book"
        return None

    def _go_live(self, base, seq, recovered=True):
        self.check = None
        self._base = base
        self.seq = seq
        pending, self._pending = self._pending, []
        for s, message in pending:
            if s > seq and not self._apply(message):
                self._complete_from = s + 1
                self._recover(f"{message['_name']} of order {message['orderId']} does not match the snapshot "
                              f"at seq {seq}: waiting for a snapshot at seq >= {s}")
                return
        self.state = LIVE
        self.why = None
        self.recoveries += recovered

    # -- reading -------------------------------------------------------------------------------------
    @property
    def live(self):
        return self.state == LIVE

    @property
    def best_bid(self):
        return max(self.bids) if self.bids else None

    @property
    def best_ask(self):
        return min(self.asks) if self.asks else None

    @property
    def mid(self):
        bid, ask = self.best_bid, self.best_ask
        if bid is None or ask is None:
            return None
        return (bid + ask) // 2

    def depth(self, side, levels=5):
        book = self._side(side)
        prices = sorted(book, reverse=(side == "Buy"))[:levels]
        return [(p, *book[p]) for p in prices]

    def levels(self, side):
        """Every level of one side, best first: [(price, quantity, order count)] (as Engine.levels)."""
        return self.depth(side, len(self._side(side)))

    def __repr__(self):
        return (f"Book({self.instrument}, {self.state}, seq={self.seq}, bid={self.best_bid}, ask={self.best_ask}, "
                f"levels={len(self.bids)}/{len(self.asks)})")
