"""A market-data subscriber: the incremental stream, the recovery channel, and a Book per instrument
that is the engine's book or says why it is not.

    feed = MarketDataFeed(aeron, config.client_channels())    # a pyaeron.Aeron, the engine's channels
    while True:
        if not feed.poll():
            os.sched_yield()
        book = feed.books.get(1)        # Book: bids, asks, depth(), state, why, seq, recoveries, gaps

The feed owns the stream's sequence (one sequence over all instruments): it sees where it joined, which
ranges were lost and when the engine started afresh, and tells every book (lob.client.book explains what
each book does with it). It routes BookSnapshot messages from the recovery channel to the books that
wait for one, after checking each message's checksum; and while any book is recovering it asks the
engine for snapshots on the request stream (SnapshotRequest, at most once per `request_interval`
seconds), so a book recovers in a fraction of the engine's snapshot interval.

The incremental stream has no heartbeat of its own: a lost last message would show as a gap only when
the next one came. The snapshots stand in for it: when the stream stays quiet for `quiet_after` seconds
while a snapshot has said the engine is at a later seqNum, the messages in between are a gap like any
other (`lost_tails` counts them), and the books recover.
"""
import collections
import struct
import time
import zlib

from . import wire
from .book import LIVE, RECOVERING, Book
from .reassembly import MessagePoller

INCREMENTALS = ("BookUpdate", "Trade", "InstrumentStatus", "OrderAdd", "OrderModify", "OrderDelete", "OrderExecute")
REQUEST_ALL_ABOVE = 8       # more books than this recovering: one request for every instrument


def _probe(name, field, base):
    """Offset of `field` in an encoded `name` message (the codec decides; nothing hard-coded)."""
    encode = wire.codec().encode
    a = bytearray(encode(name, **base))
    b = bytearray(encode(name, **dict(base, **{field: 0x01020304})))
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return diff[0]


_SNAPSHOT_BASE = dict(seqNum=0, transactTime=0, instrumentId=0, lastTradeId=0, instrumentCount=0, partIndex=0,
                      partCount=0, levelCount=0, checksum=0, orderLevel=0, levels=[])
_ORDER_SNAPSHOT_BASE = dict(seqNum=0, transactTime=0, instrumentId=0, partIndex=0, partCount=0, orderCount=0,
                            checksum=0, orders=[])
SNAPSHOT_TEMPLATE_ID = 22
ORDER_SNAPSHOT_TEMPLATE_ID = 29
INSTRUMENT_OFFSET = _probe("BookSnapshot", "instrumentId", _SNAPSHOT_BASE)
CHECKSUM_OFFSET = _probe("BookSnapshot", "checksum", _SNAPSHOT_BASE)
SNAPSHOT_MIN_LENGTH = len(wire.codec().encode("BookSnapshot", **_SNAPSHOT_BASE))
# template id -> (offset of instrumentId, of checksum, length without entries)
SNAPSHOTS = {
    SNAPSHOT_TEMPLATE_ID: (INSTRUMENT_OFFSET, CHECKSUM_OFFSET, SNAPSHOT_MIN_LENGTH),
    ORDER_SNAPSHOT_TEMPLATE_ID: (_probe("OrderSnapshot", "instrumentId", _ORDER_SNAPSHOT_BASE),
                                 _probe("OrderSnapshot", "checksum", _ORDER_SNAPSHOT_BASE),
                                 len(wire.codec().encode("OrderSnapshot", **_ORDER_SNAPSHOT_BASE))),
}
U32 = struct.Struct("<I")
GROUP_HEADER = struct.Struct("<HH")     # groupSizeEncoding: blockLength, numInGroup (ends the fixed part)


def snapshot_checksum_ok(frame, offset=CHECKSUM_OFFSET):
    """The CRC-32 the engine wrote over the message with the checksum field (at `offset`) zero."""
    data = bytearray(frame)
    stored = U32.unpack_from(data, offset)[0]
    data[offset:offset + 4] = b"\0\0\0\0"
    return zlib.crc32(data) == stored


class MarketDataFeed:
    """Books of `instruments` (None: every instrument the streams carry) kept from the engine's market
    data; `poll()` it. `channels`: as EngineConfig.client_channels() returns ("market_data", and
    "recovery" / "recovery_requests" when the engine runs market-data recovery). With `aeron` None the
    feed subscribes to nothing: hand it frames with on_incremental_frame / on_snapshot_frame."""

    def __init__(self, aeron, channels, instruments=None, *, recent_trades=1000, request_interval=0.25,
                 quiet_after=1.0, on_message=None):
        """`on_message(message, book)`: called with every decoded incremental and snapshot message of a
        book the feed keeps, after the book has seen it."""
        self.aeron = aeron
        self._decode = wire.codec().decode
        self._encode = wire.codec().encode
        self.instruments = None if instruments is None else set(instruments)
        self.trades = collections.deque(maxlen=recent_trades)
        self.messages = 0           # on both streams
        self.trade_count = 0
        self.seq = None             # last incremental sequence number seen
        self.first_seq = None       # the first one seen (where the feed joined the stream)
        self.gaps = 0               # ranges of the incremental stream lost
        self.lost_tails = 0         # ... of them found by a snapshot ahead of a quiet stream
        self.restarts = 0           # the stream started again at 1 (a fresh engine)
        self.duplicates = 0         # incrementals at or below `seq` (ignored)
        self.undecodable = 0
        self.snapshot_messages = 0
        self.snapshots_refused = 0  # checksum, truncated, undecodable
        self.other_instruments = 0  # messages of instruments not asked for
        self.requests_sent = 0
        self.engine_instruments = None    # instruments in the engine's snapshot loop, once one came
        self.request_interval = request_interval
        self.quiet_after = quiet_after
        self.on_message = on_message
        self._ahead = None          # the highest snapshot seqNum above `seq` ...
        self._ahead_seq = None      # ... the `seq` it was first (or last) seen with
        self._ahead_since = 0.0
        self._complete_from = None
        self._snapshotted = set()
        self._checks = []           # live books holding an engine snapshot to compare with
        self.verified = 0           # live books found identical to an engine snapshot at its seq
        self.mismatches = 0         # ... and different (they recovered)
        self._next_request = 0.0
        self._md_sub = self._recovery_sub = self._request_pub = None
        self._recoverable = channels.get("recovery") is not None
        try:
            if aeron is not None:
                md = channels["market_data"]
                self._md_sub = MessagePoller(aeron.add_subscription(md.channel, md.stream_id), self._on_incremental)
                if self._recoverable:
                    recovery = channels["recovery"]
                    self._recovery_sub = MessagePoller(aeron.add_subscription(recovery.channel, recovery.stream_id),
                                                       self._on_snapshot)
                    if channels.get("recovery_requests") is not None:
                        requests = channels["recovery_requests"]
                        self._request_pub = aeron.add_publication(requests.channel, requests.stream_id)
        except BaseException:
            self.close()
            raise
        self.books = {}
        for instrument in instruments or ():
            self._book(instrument)

    @property
    def recoverable(self):
        """The engine runs market-data recovery: books recover from gaps (else they go stale)."""
        return self._recoverable

    def _book(self, instrument):
        book = self.books.get(instrument)
        if book is None:
            book = self.books[instrument] = Book(instrument, recoverable=self.recoverable)
            if self._complete_from == 1:
                book.on_restart()
            elif self._complete_from is not None:
                book.on_join(self._complete_from)
        return book

    def _wanted(self, instrument):
        if self.instruments is not None and instrument not in self.instruments:
            self.other_instruments += 1
            return None
        return self._book(instrument)

    # -- polling -------------------------------------------------------------------------------------
    def poll(self, fragment_limit=256):
        """Read both streams, ask for snapshots when a book needs one; returns the work done."""
        work = 0
        if self._md_sub is not None:
            work += self._md_sub.poll(fragment_limit)
        if self._recovery_sub is not None:
            work += self._recovery_sub.poll(fragment_limit)
        now = time.monotonic()
        if self._ahead is not None:
            self.check_quiet(now)
        if self._request_pub is not None:
            work += self._request_snapshots(now)
        if self._checks and self.seq is not None:
            self._verify(self.seq)
        return work

    def check_quiet(self, now):
        """A snapshot said the engine is past `seq` and the stream has not moved for `quiet_after`
        seconds (`now` on time.monotonic's clock): what lies between was lost."""
        if self.seq is None or self._ahead is None or self.seq >= self._ahead:
            self._ahead = None
            return
        if self.seq != self._ahead_seq:
            self._ahead_seq, self._ahead_since = self.seq, now
            return
        if now - self._ahead_since < self.quiet_after:
            return
        last, self._ahead = self._ahead, None
        self.lost_tails += 1
        self._lost(self.seq + 1, last)
        self.seq = last

    def _lost(self, first, last):
        """Incrementals first..last will never arrive: every book they could touch recovers."""
        self.gaps += 1
        self._complete_from = last + 1
        for book in self.books.values():
            book.on_gap(first, last)

    def _snapshot_seq(self, seq, now):
        if self.seq is not None and seq > self.seq and (self._ahead is None or seq > self._ahead):
            if self._ahead is None:
                self._ahead_seq, self._ahead_since = self.seq, now
            self._ahead = seq

    def _verify(self, stream_seq):
        for book in self._checks:
            result = book.verify(stream_seq)
            if result is not None:
                self.verified += result
                self.mismatches += not result
        self._checks = [book for book in self._checks if book.check is not None]

    def _on_incremental(self, buffer, header):
        self.on_incremental_frame(bytes(buffer))

    def _on_snapshot(self, buffer, header):
        self.on_snapshot_frame(bytes(buffer))

    def on_incremental_frame(self, frame):
        """One message of the incremental stream (public so tests and replays can feed frames)."""
        self.messages += 1
        try:
            message = self._decode(frame)
        except Exception:
            self.undecodable += 1
            return
        name = message["_name"]
        if name not in INCREMENTALS:
            return
        seq = message["seqNum"]
        if not self._sequence(seq):
            return
        instrument = message["instrumentId"]
        book = self._wanted(instrument)
        if book is None:
            return
        book.on_incremental(message)
        if self.on_message is not None:
            self.on_message(message, book)
        if name == "Trade":
            self.trade_count += 1
            self.trades.append((instrument, message["tradeId"], message["price"]["mantissa"], message["quantity"],
                                message["aggressorSide"], message["transactTime"]))

    def _sequence(self, seq):
        """Account for `seq`; False when the message is one already seen."""
        last = self.seq
        if self._checks and last is not None and seq > last:
            self._verify(last)      # before this message: the books are at `last`
        if last is None or seq == 1 and last >= 1:
            if last is not None:
                self.restarts += 1
            else:
                self.first_seq = seq
            self._complete_from = seq
            for book in self.books.values():
                book.on_join(seq)
        elif seq <= last:
            self.duplicates += 1
            return False
        elif seq != last + 1:
            self._lost(last + 1, seq - 1)
        self.seq = seq
        return True

    def on_snapshot_frame(self, frame):
        """One message of the recovery channel."""
        self.messages += 1
        self.snapshot_messages += 1
        header = wire.HEADER.unpack_from(frame) if len(frame) >= wire.HEADER.size else None
        if header is None or header[1] not in SNAPSHOTS:
            self.undecodable += 1
            return
        instrument_offset, checksum_offset, min_length = SNAPSHOTS[header[1]]
        instrument = U32.unpack_from(frame, instrument_offset)[0] if len(frame) >= instrument_offset + 4 else None
        book = None
        if instrument is not None:
            book = self.books.get(instrument) if self.instruments is not None else self._book(instrument)
        if len(frame) < min_length:
            return self._refuse(book, f"truncated: {len(frame)} bytes")
        block, count = GROUP_HEADER.unpack_from(frame, min_length - GROUP_HEADER.size)
        if len(frame) != min_length + block * count:
            return self._refuse(book, f"truncated: {len(frame)} bytes, its levels need {min_length + block * count}")
        if not snapshot_checksum_ok(frame, checksum_offset):
            return self._refuse(book, "checksum mismatch: corrupted")
        try:
            message = self._decode(frame)
        except Exception as exc:
            return self._refuse(book, f"undecodable: {exc}")
        if header[1] == ORDER_SNAPSHOT_TEMPLATE_ID:
            if book is not None:
                book.on_order_snapshot(message)
                if self.on_message is not None:
                    self.on_message(message, book)
            return
        self.engine_instruments = message["instrumentCount"]
        self._snapshotted.add(instrument)
        self._snapshot_seq(message["seqNum"], time.monotonic())
        if book is not None:
            book.on_snapshot(message)
            if book.check is not None and book not in self._checks:
                self._checks.append(book)
                if self.seq is not None:
                    self._verify(self.seq)
            if self.on_message is not None:
                self.on_message(message, book)
        if len(self._snapshotted) >= self.engine_instruments:
            for other in self.books.values():
                if other.instrument not in self._snapshotted:
                    other.on_unknown(self.engine_instruments)

    def _refuse(self, book, reason):
        self.snapshots_refused += 1
        if book is not None:
            book.refuse_snapshot(reason)

    def _request_snapshots(self, now):
        if now < self._next_request:
            return 0
        waiting = [b.instrument for b in self.books.values() if b.state == RECOVERING]
        if not waiting and (self.instruments is not None or self.books or self.seq is not None):
            return 0
        self._next_request = now + self.request_interval
        if not waiting or len(waiting) > REQUEST_ALL_ABOVE:
            waiting = [0]   # a new feed that knows no instrument yet, or many: every instrument
        return sum(self.request_snapshots(instrument) for instrument in waiting)

    def request_snapshots(self, instrument=0):
        """Ask the engine for a snapshot of `instrument` (0: every one) now; 1 if the request went out.
        The engine answers each instrument at most once per its request gap, whoever asks."""
        if self._request_pub is None:
            return 0
        if self._request_pub.offer(self._encode("SnapshotRequest", instrumentId=instrument)) is True:
            self.requests_sent += 1
            return 1
        return 0

    # -- reading -------------------------------------------------------------------------------------
    def book(self, instrument):
        """The instrument's Book (created, and recovering, if the feed had none)."""
        if self.instruments is not None:
            self.instruments.add(instrument)
        return self._book(instrument)

    @property
    def connected(self):
        """The incremental stream has the engine's publication."""
        return self._md_sub is not None and self._md_sub.is_connected

    @property
    def live(self):
        """True when every book is live."""
        return all(book.state == LIVE for book in self.books.values())

    def close(self):
        for resource in (self._md_sub, self._recovery_sub, self._request_pub):
            if resource is not None:
                try:
                    resource.close()
                except Exception:
                    pass
        self._md_sub = self._recovery_sub = self._request_pub = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
