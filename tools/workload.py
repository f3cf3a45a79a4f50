"""Deterministic order workloads for the load generator and the benchmarks.

`generate(spec)` draws the benchmark mix from a fixed seed: ~60% passive limit adds 1..20 ticks away
from a random-walk mid (pulled back to one tick off the opposite touch when the mid has walked through
it, so a passive add never trades), ~30% cancels of a random live order, ~10% aggressive limits priced
0..4 ticks through the opposite touch (so they reach 1..5 price levels); quantities 1..100; all GTC
limit orders.

Order types on top (all off by default, and then the workload is exactly the standard one): a share of
the new orders become stop-limits (`stop_share`: the stop 25 ticks on the far side of the order's
price, the limit 2 ticks beyond it, so they trigger when the mid walks that far), a share of the others
icebergs (`iceberg_share`: display a fifth of the quantity), and with `stp_accounts` N every new order
names one of accounts 0..N-1 and self-trade prevention `stp_mode` (CancelResting by default). Those
choices come from a second random stream, so the standard messages are the same with or without them.
The reference book below treats every order as the plain limit order it was drawn as (so the choices
change nothing else), which the engine does not: such a workload's `expected` keeps its message counts but
not fills, traded quantity or resting orders (None), and a cancel may name an order that already ended
(the engine answers OrderCancelReject: still one answer per message).

While drawing, it runs the orders through a small price-time-priority reference book, so a cancel
always names an order that is still live and the workload knows what a correct engine must answer
(acks, fills, traded quantity, orders left resting). Those expectations are exact when each session's
messages reach the engine in the generated order: always for one session; with several sessions the
engine may interleave them differently, so only the per-message response count stays exact.

Client order ids are `spec.first_cl_ord_id + index`, unique across all sessions of one workload, so a
report's clOrdId gives back the index of the message it answers.

In-process input (`EncodedWorkload.inbound_records`, for Engine.process and the benchmarks) starts with
the logon of every session (Negotiate and Establish records signed with its credentials), since the
engine carries out application messages of established sessions only.
"""
import hashlib
import heapq
import random
from array import array
from collections import deque
from dataclasses import asdict, dataclass

NEW = 1
CANCEL = 2

# In-process input (Engine.process, replay): one fixed clock for the logon and the orders.
LOGON_TIMESTAMP_NS = 1_700_000_000_000_000_000
IN_PROCESS_RESPONSE_CHANNEL = "aeron:ipc"
IN_PROCESS_RESPONSE_STREAM = 1002

BUY = 1
SELL = 2

STP_MODES = ("CancelAggressor", "CancelResting", "CancelBoth", "DecrementAndCancel")
STOP_TICKS = 25         # a stop-limit's stop lies this many ticks beyond its drawn price (away from the market)
STOP_LIMIT_TICKS = 2    # and its limit this many beyond the stop
ICEBERG_DISPLAY_DIVISOR = 5


@dataclass(frozen=True)
class WorkloadSpec:
    orders: int = 100_000
    seed: int = 1
    instruments: int = 1
    sessions: int = 1
    first_instrument: int = 1
    first_cl_ord_id: int = 1
    account: int = 0
    tick: int = 1
    start_mid: int = 1_000_000
    passive_ratio: float = 0.60
    cancel_ratio: float = 0.30
    aggressive_ratio: float = 0.10
    max_qty: int = 100
    passive_ticks: int = 20
    cross_ticks: int = 5
    stop_share: float = 0.0     # of the new orders: stop-limits
    iceberg_share: float = 0.0  # of the new orders: icebergs
    stp_accounts: int = 0       # > 0: orders spread over accounts 0..N-1 with self-trade prevention stp_mode
    stp_mode: str = "CancelResting"

    def __post_init__(self):
        if self.orders < 0 or self.instruments < 1 or self.sessions < 1:
            raise ValueError("orders >= 0, instruments >= 1 and sessions >= 1 are required")
        if self.tick < 1 or self.max_qty < 1 or self.passive_ticks < 1 or self.cross_ticks < 1:
            raise ValueError("tick, max_qty, passive_ticks and cross_ticks must be positive")
        total = self.passive_ratio + self.cancel_ratio + self.aggressive_ratio
        if total <= 0 or min(self.passive_ratio, self.cancel_ratio, self.aggressive_ratio) < 0:
            raise ValueError("the mix ratios must be non-negative and not all zero")
        # The mid is held above a floor that keeps every price positive; start well above it.
        if self.start_mid <= self.tick * (self.passive_ticks + self.cross_ticks + 1) * 4:
            raise ValueError("start_mid is too close to zero for the tick and the price offsets")
        if not (0 <= self.stop_share <= 1 and 0 <= self.iceberg_share <= 1
                and self.stop_share + self.iceberg_share <= 1):
            raise ValueError("stop_share and iceberg_share must lie in 0..1 and add up to at most 1")
        if self.stp_accounts < 0 or self.stp_accounts > 0xFFFFFFFF:
            raise ValueError("stp_accounts must be 0 (off) or a positive number of accounts")
        if self.stp_mode not in STP_MODES:
            raise ValueError(f"stp_mode must be one of {', '.join(STP_MODES)}")

    @property
    def order_types(self):
        """True when the workload mixes stops, icebergs or self-trade prevention in."""
        return bool(self.stop_share or self.iceberg_share or self.stp_accounts)


@dataclass(frozen=True)
class Expected:
    """What a correct engine answers when it sees the messages in the generated order. With order types
    mixed in, fills, traded_quantity and resting_at_end are None (the reference book does not model them)."""
    new_orders: int
    cancels: int
    passive: int
    aggressive: int
    fills: int
    traded_quantity: int
    resting_at_end: int
    stops: int = 0
    icebergs: int = 0

    @property
    def trade_reports(self):
        return None if self.fills is None else 2 * self.fills

    @property
    def first_responses(self):
        return self.new_orders + self.cancels


class Workload:
    """A generated workload as parallel arrays (one entry per message).

    `kind` NEW or CANCEL; `session` index 0..sessions-1; `instrument` id; `orig_cl_ord_id` the order a
    cancel names (0 for NEW); `side` BUY/SELL; `price` mantissa (0 for CANCEL); `qty` (0 for CANCEL).
    With order types (`spec.order_types`) three more: `stop_price` (a stop-limit's stop, else 0),
    `display_qty` (an iceberg's display, else 0) and `account`; otherwise they are None.
    """

    def __init__(self, spec, kind, session, instrument, orig_cl_ord_id, side, price, qty, expected,
                 stop_price=None, display_qty=None, account=None):
        self.spec = spec
        self.kind = kind
        self.session = session
        self.instrument = instrument
        self.orig_cl_ord_id = orig_cl_ord_id
        self.side = side
        self.price = price
        self.qty = qty
        self.expected = expected
        self.stop_price = stop_price
        self.display_qty = display_qty
        self.account = account

    def _columns(self):
        base = (self.kind, self.session, self.instrument, self.orig_cl_ord_id, self.side, self.price, self.qty)
        extra = (self.stop_price, self.display_qty, self.account)
        return base + extra if self.stop_price is not None else base

    def __len__(self):
        return len(self.kind)

    def head(self, count):
        """The first `count` messages as a workload of their own (a prefix is always consistent: cancels
        only name earlier orders). Its `expected` is None: the reference book ran over the whole one."""
        count = min(count, len(self))
        extra = [c[:count] if c is not None else None for c in (self.stop_price, self.display_qty, self.account)]
        return Workload(self.spec, self.kind[:count], self.session[:count], self.instrument[:count],
                        self.orig_cl_ord_id[:count], self.side[:count], self.price[:count], self.qty[:count], None,
                        *extra)

    def cl_ord_id(self, index):
        return self.spec.first_cl_ord_id + index

    def op(self, index):
        """One message as a dict (for tests and debugging, not for hot loops)."""
        return {
            "kind": "NEW" if self.kind[index] == NEW else "CANCEL",
            "session": self.session[index],
            "clOrdId": self.cl_ord_id(index),
            "origClOrdId": self.orig_cl_ord_id[index],
            "instrumentId": self.instrument[index],
            "side": "Buy" if self.side[index] == BUY else "Sell",
            "price": self.price[index],
            "quantity": self.qty[index],
            **({"stopPrice": self.stop_price[index], "displayQty": self.display_qty[index],
                "account": self.account[index]} if self.stop_price is not None else {}),
        }

    def digest(self):
        h = hashlib.sha256(repr(sorted(asdict(self.spec).items())).encode())
        for column in self._columns():
            h.update(bytes(column))
        return h.hexdigest()

    def encode(self, codec=None):
        """Encode every message once; see `EncodedWorkload`."""
        from lob.client.wire import OrderEntryEncoder

        return EncodedWorkload(self, OrderEntryEncoder(codec))


class EncodedWorkload:
    """All frames of a workload in one buffer: frame i is `buffer[offsets[i]:offsets[i] + lengths[i]]`."""

    def __init__(self, workload, encoder):
        self.workload = workload
        n = len(workload)
        new_len = encoder.new_order_length
        cancel_len = encoder.cancel_length
        kind = workload.kind
        lengths = array("I", (new_len if k == NEW else cancel_len for k in kind))
        offsets = array("Q", bytes(8 * n))
        pos = 0
        for i in range(n):
            offsets[i] = pos
            pos += lengths[i]
        buf = bytearray(pos)
        pack_new = encoder.pack_new_order
        pack_cancel = encoder.pack_cancel
        first = workload.spec.first_cl_ord_id
        account = workload.spec.account
        instrument, orig = workload.instrument, workload.orig_cl_ord_id
        side, price, qty = workload.side, workload.price, workload.qty
        typed = workload.stop_price is not None
        if typed:
            stop, display, accounts = workload.stop_price, workload.display_qty, workload.account
            stp = (encoder.messages.ENUMS["SelfTradePrevention"][workload.spec.stp_mode]
                   if workload.spec.stp_accounts else 0)
            pack_typed = encoder.pack_typed_order
        for i in range(n):
            if kind[i] != NEW:
                pack_cancel(buf, offsets[i], first + i, orig[i], instrument[i], side[i])
            elif typed:
                pack_typed(buf, offsets[i], first + i, instrument[i], side[i], price[i], qty[i], accounts[i],
                           stop[i], display[i], stp)
            else:
                pack_new(buf, offsets[i], first + i, instrument[i], side[i], price[i], qty[i], account)
        self.buffer = bytes(buf)
        self.offsets = offsets
        self.lengths = lengths

    def __len__(self):
        return len(self.offsets)

    def head(self, count):
        """The first `count` frames (sharing this buffer), for the workload's `head(count)`."""
        part = object.__new__(EncodedWorkload)
        part.workload = self.workload.head(count)
        part.buffer = self.buffer
        part.offsets = self.offsets[:count]
        part.lengths = self.lengths[:count]
        frames = getattr(self, "_frames", None)
        if frames is not None:
            part._frames = frames[:count]
        return part

    def frame_list(self):
        """Every frame as its own bytes object (built once, cached): the cheapest thing to offer."""
        frames = getattr(self, "_frames", None)
        if frames is None:
            buf, offsets, lengths = self.buffer, self.offsets, self.lengths
            frames = self._frames = [buf[offsets[i]:offsets[i] + lengths[i]] for i in range(len(offsets))]
        return frames

    def frame(self, index):
        start = self.offsets[index]
        return self.buffer[start:start + self.lengths[index]]

    def frames(self):
        for i in range(len(self.offsets)):
            yield self.frame(i)

    def inbound_records(self, credentials=None, timestamp_ns=LOGON_TIMESTAMP_NS, logon=True):
        """The engine's batch input (`lob.framing` inbound records) at `timestamp_ns`: the logon of every
        session (`logon_records`), then the workload, session index k sent as `credentials[k]` with its
        session id as transport. Default credentials: `test_credentials(sessions)`, which the engine
        must be given too (`Engine(sessions=...)`)."""
        from lob.framing import INBOUND_HEADER

        count = self.workload.spec.sessions
        credentials = list(credentials) if credentials is not None else test_credentials(count)
        if len(credentials) < count:
            raise ValueError(f"{count} sessions need {count} credentials, {len(credentials)} given")
        pack = INBOUND_HEADER.pack
        sessions = self.workload.session
        ids = [c.session_id for c in credentials[:count]]
        preamble = logon_records(credentials[:count], timestamp_ns) if logon else b""
        return preamble + b"".join(pack(self.lengths[i], ids[sessions[i]], timestamp_ns) + self.frame(i)
                                   for i in range(len(self.offsets)))


def test_credentials(sessions):
    """Credentials of sessions 1..N with secrets derived from the id (lob.credentials.for_tests)."""
    from lob.credentials import for_tests

    return for_tests(range(1, sessions + 1))


def logon_records(credentials, timestamp_ns=LOGON_TIMESTAMP_NS, keep_alive_ms=60_000):
    """Inbound records that log each session on in process (lob.logon.logon_records): Negotiate then
    Establish (continue where it is) at `timestamp_ns`, with the session id itself as the transport and a
    fixed nonce, so the same input always gives the same bytes out."""
    from lob import logon

    return b"".join(logon.logon_records(c, c.session_id, timestamp_ns, keep_alive_ms, next_seq_no=0,
                                        channel=IN_PROCESS_RESPONSE_CHANNEL, stream_id=IN_PROCESS_RESPONSE_STREAM)
                    for c in credentials)


class _ReferenceBook:
    """Price-time priority for one instrument: a FIFO of client order ids per price level.

    Canceled ids stay in their FIFO until matching reaches them (the caller drops them from `live`);
    `count` holds the live orders per level so an emptied level disappears at once.
    """

    __slots__ = ("levels", "count", "bid_heap", "ask_heap")

    def __init__(self):
        self.levels = ({}, {})  # index 0 bids, 1 asks: price -> deque of client order ids
        self.count = ({}, {})
        self.bid_heap = []  # negated prices; stale entries are skipped lazily
        self.ask_heap = []

    def best(self, side):
        levels = self.levels[side - 1]
        heap = self.bid_heap if side == BUY else self.ask_heap
        while heap:
            price = -heap[0] if side == BUY else heap[0]
            if price in levels:
                return price
            heapq.heappop(heap)
        return None

    def rest(self, side, price, cl_ord_id):
        levels = self.levels[side - 1]
        count = self.count[side - 1]
        queue = levels.get(price)
        if queue is None:
            levels[price] = queue = deque()
            count[price] = 0
            heapq.heappush(self.bid_heap if side == BUY else self.ask_heap, -price if side == BUY else price)
        queue.append(cl_ord_id)
        count[price] += 1

    def remove(self, side, price):
        count = self.count[side - 1]
        count[price] -= 1
        if not count[price]:
            del count[price]
            del self.levels[side - 1][price]


def generate(spec=None, **overrides):
    """Draw a workload; `generate(orders=1000, seed=7)` is short for `generate(WorkloadSpec(...))`."""
    if spec is None:
        spec = WorkloadSpec(**overrides)
    elif overrides:
        raise TypeError("pass either a WorkloadSpec or keyword overrides, not both")
    rng = random.Random(spec.seed)
    rand = rng.random
    n = spec.orders
    kind = bytearray(n)
    session = array("H", bytes(2 * n))
    instrument = array("I", bytes(4 * n))
    orig = array("Q", bytes(8 * n))
    side = bytearray(n)
    price = array("q", bytes(8 * n))
    qty = array("q", bytes(8 * n))
    typed = spec.order_types
    if typed:
        stop_price = array("q", bytes(8 * n))
        display_qty = array("q", bytes(8 * n))
        account = array("I", bytes(4 * n))
        # a stream of its own: the standard messages stay the same
        rand_types = random.Random(spec.seed * 1_000_003 + 17).random
        stop_cut, iceberg_cut = spec.stop_share, spec.stop_share + spec.iceberg_share
        stp_accounts = spec.stp_accounts
    else:
        stop_price = display_qty = account = None
    stops = icebergs = 0

    total = spec.passive_ratio + spec.cancel_ratio + spec.aggressive_ratio
    p_passive = spec.passive_ratio / total
    p_cancel = p_passive + spec.cancel_ratio / total
    tick = spec.tick
    floor_mid = tick * (spec.passive_ticks + spec.cross_ticks + 1) * 2
    books = [_ReferenceBook() for _ in range(spec.instruments)]
    mids = [spec.start_mid - spec.start_mid % tick] * spec.instruments
    # Live orders: client order id -> [instrument index, side, price, remaining, session]
    live = {}
    live_ids = []
    live_pos = {}

    def forget(cl_ord_id):
        i = live_pos.pop(cl_ord_id)
        last = live_ids.pop()
        if last != cl_ord_id:
            live_ids[i] = last
            live_pos[last] = i
        del live[cl_ord_id]

    news = cancels = passive = aggressive = fills = traded = 0
    first = spec.first_cl_ord_id
    first_instrument = spec.first_instrument
    n_instruments, n_sessions = spec.instruments, spec.sessions
    max_qty, passive_ticks, cross_ticks = spec.max_qty, spec.passive_ticks, spec.cross_ticks
    for i in range(n):
        cl_ord_id = first + i
        r = rand()
        if p_passive <= r < p_cancel and not live_ids:
            r = 0.0  # nothing to cancel yet: add instead
        if p_passive <= r < p_cancel:
            target = live_ids[int(rand() * len(live_ids))]
            inst, s, px, _, sess = live[target]
            forget(target)
            books[inst].remove(s, px)
            kind[i] = CANCEL
            session[i] = sess
            instrument[i] = first_instrument + inst
            orig[i] = target
            side[i] = s
            cancels += 1
            continue

        inst = int(rand() * n_instruments)
        book = books[inst]
        mid = mids[inst] + tick * (int(rand() * 3) - 1)
        if mid < floor_mid:
            mid = floor_mid
        mids[inst] = mid
        s = BUY if rand() < 0.5 else SELL
        q = 1 + int(rand() * max_qty)
        sess = int(rand() * n_sessions)
        if r < p_passive:
            offset = tick * (1 + int(rand() * passive_ticks))
            px = mid - offset if s == BUY else mid + offset
            # Stay passive when the mid has walked past the opposite touch: never cross it.
            touch = book.best(SELL if s == BUY else BUY)
            if touch is not None:
                if s == BUY and px >= touch:
                    px = touch - tick
                elif s == SELL and px <= touch:
                    px = touch + tick
            passive += 1
        else:
            touch = book.best(SELL if s == BUY else BUY)
            if touch is None:
                touch = mid + tick if s == BUY else mid - tick
            crossing = tick * int(rand() * cross_ticks)
            px = touch + crossing if s == BUY else touch - crossing
            aggressive += 1
        kind[i] = NEW
        session[i] = sess
        instrument[i] = first_instrument + inst
        side[i] = s
        price[i] = px
        qty[i] = q
        news += 1
        if typed:
            account[i] = int(rand_types() * stp_accounts) if stp_accounts else spec.account
            t = rand_types()
            if t < stop_cut:
                direction = 1 if s == BUY else -1
                stop_price[i] = px + direction * STOP_TICKS * tick
                price[i] = stop_price[i] + direction * STOP_LIMIT_TICKS * tick
                stops += 1
            elif t < iceberg_cut:
                display_qty[i] = max(1, q // ICEBERG_DISPLAY_DIVISOR)
                icebergs += 1

        # Match against the opposite side, then rest what is left.
        other = SELL if s == BUY else BUY
        levels = book.levels[other - 1]
        remaining = q
        while remaining:
            best = book.best(other)
            if best is None or (best > px if s == BUY else best < px):
                break
            queue = levels[best]
            while remaining:
                maker = queue[0]
                entry = live.get(maker)
                if entry is None:  # canceled earlier
                    queue.popleft()
                    continue
                take = entry[3] if entry[3] < remaining else remaining
                entry[3] -= take
                remaining -= take
                fills += 1
                traded += take
                if entry[3] == 0:
                    queue.popleft()
                    forget(maker)
                    book.remove(other, best)
                    if best not in levels:
                        break
        if remaining:
            book.rest(s, px, cl_ord_id)
            live[cl_ord_id] = [inst, s, px, remaining, sess]
            live_pos[cl_ord_id] = len(live_ids)
            live_ids.append(cl_ord_id)

    if typed:
        expected = Expected(new_orders=news, cancels=cancels, passive=passive, aggressive=aggressive, fills=None,
                            traded_quantity=None, resting_at_end=None, stops=stops, icebergs=icebergs)
    else:
        expected = Expected(new_orders=news, cancels=cancels, passive=passive, aggressive=aggressive,
                            fills=fills, traded_quantity=traded, resting_at_end=len(live_ids))
    return Workload(spec, kind, session, instrument, orig, side, price, qty, expected,
                    stop_price, display_qty, account)
