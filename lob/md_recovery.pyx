# cython: boundscheck=False, wraparound=False
"""Market-data recovery: a loop of per-instrument book snapshots on a channel of its own.

The engine publishes a BookSnapshot of every instrument, one instrument per service-loop iteration,
once per `interval`, and again soon after a subscriber asks (SnapshotRequest on the request stream).
Each snapshot carries the incremental stream's sequence number it is consistent with (the last one the
engine published before taking it): the service loop calls md_recovery_poll only after it has offered
everything the core staged, between two batches, so the book it walks is exactly the book after that
message. Nothing here runs inside matching, reads the core's clock or changes the core: the incremental
stream, the journal and replay are byte for byte what they were without recovery.

A book larger than one message is written as several (partIndex of partCount, each at most `per_part`
levels so each fits one network frame); all parts of one snapshot share instrumentId and seqNum and are
offered back to back on one exclusive publication, so a reader sees them in order. Every message carries
a CRC-32 of its bytes so a corrupted one is recognised, not applied.

Requests are coalesced per instrument: asking marks the instrument wanted, and a wanted instrument is
published at most once per `request_gap` whatever the number of askers. The recovery channel is a
multicast-style fan-out, so one snapshot serves every subscriber recovering that instrument; the cost of
requests to the engine is bounded by instruments x book size / request_gap, not by the number of clients
or how often they ask. A request is not journaled: it changes no state that replay reproduces.

When nobody subscribes to the recovery channel, md_recovery_poll only reads requests and checks the
publication's connection: no book is walked.
"""
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset

from lob.core cimport (EngineCore, OrderCursor, SnapshotCursor, book_snapshot_levels, book_snapshot_part,
                       book_snapshot_part_length, book_snapshot_start, instrument_index, load_u32le,
                       order_snapshot_orders, order_snapshot_part, order_snapshot_part_length, order_snapshot_start)
from lob.engine cimport Engine
from lob.sbe.messages cimport (
    HEADER_LENGTH, SCHEMA_ID, BookSnapshot_BLOCK_LENGTH, BookSnapshot_checksum_OFFSET,
    BookSnapshot_levels_BLOCK_LENGTH, BookSnapshot_levels_HEADER_LENGTH, OrderSnapshot_BLOCK_LENGTH,
    OrderSnapshot_checksum_OFFSET, OrderSnapshot_orders_BLOCK_LENGTH, OrderSnapshot_orders_HEADER_LENGTH,
    SnapshotRequest_BLOCK_LENGTH,
    SnapshotRequest_TEMPLATE_ID, SnapshotRequest_instrumentId_OFFSET,
)
from lob.transport.aeron cimport api
from lob.transport.aeronc cimport AERON_PUBLICATION_NOT_CONNECTED, aeron_header_t
from lob.transport.idle cimport IdleStrategy, idle_strategy_t
from lob.transport.publication cimport ExclusivePublication, offer_with_retry
from lob.transport.subscription cimport Subscription, poller_poll

cdef enum:
    MAX_GROUP = 65535
    REQUESTS_PER_POLL = 16

cdef uint32_t CRC_TABLE[256]


cdef void crc_init() noexcept:
    cdef uint32_t i, c, k
    for i in range(256):
        c = i
        for k in range(8):
            c = (<uint32_t>0xEDB88320U ^ (c >> 1)) if c & 1 else (c >> 1)
        CRC_TABLE[i] = c


crc_init()


cdef uint32_t crc32(const uint8_t* p, size_t n) noexcept nogil:
    """CRC-32 (IEEE 802.3, as zlib.crc32)."""
    cdef uint32_t c = <uint32_t>0xFFFFFFFFU
    cdef size_t i
    for i in range(n):
        c = CRC_TABLE[(c ^ p[i]) & 0xFF] ^ (c >> 8)
    return c ^ <uint32_t>0xFFFFFFFFU


def checksum(data):
    """The CRC-32 this module computes (for tests: the same as zlib.crc32)."""
    cdef const uint8_t[:] view = data
    return crc32(&view[0], len(view)) if len(view) else 0


cdef size_t part_length_max(uint32_t per_part, uint32_t orders_per_part) noexcept nogil:
    cdef size_t levels = book_snapshot_part_length(per_part), orders = order_snapshot_part_length(orders_per_part)
    return levels if levels > orders else orders


cdef void on_request(void* clientd, const uint8_t* buffer, size_t length, aeron_header_t* header) noexcept nogil:
    cdef md_recovery_t* r = <md_recovery_t*>clientd
    cdef uint16_t template_id, schema_id
    cdef uint32_t instrument_id, i
    cdef int index
    if length < HEADER_LENGTH + SnapshotRequest_BLOCK_LENGTH:
        r.counters.requests_malformed += 1
        return
    template_id = buffer[2] | (<uint16_t>buffer[3] << 8)
    schema_id = buffer[4] | (<uint16_t>buffer[5] << 8)
    if template_id != SnapshotRequest_TEMPLATE_ID or schema_id != SCHEMA_ID:
        r.counters.requests_malformed += 1
        return
    r.counters.requests += 1
    instrument_id = load_u32le(buffer + HEADER_LENGTH + SnapshotRequest_instrumentId_OFFSET)
    if instrument_id == 0:
        for i in range(r.core.instrument_count):
            if not r.wanted[i]:
                r.wanted[i] = 1
                r.wanted_count += 1
        return
    index = instrument_index(r.core, instrument_id)
    if index < 0:
        r.counters.requests_unknown += 1
    elif not r.wanted[index]:
        r.wanted[index] = 1
        r.wanted_count += 1


cdef int offer_part(md_recovery_t* r, size_t length, size_t checksum_offset, idle_strategy_t* idle,
                    const int* running) noexcept nogil:
    """Checksum and offer one message of r.buffer; 0, or -1 when it was not taken."""
    cdef uint32_t crc = crc32(r.buffer, length)
    cdef uint8_t* field = r.buffer + HEADER_LENGTH + checksum_offset
    field[0], field[1], field[2], field[3] = crc & 0xFF, (crc >> 8) & 0xFF, (crc >> 16) & 0xFF, crc >> 24
    cdef int64_t result = offer_with_retry(r.publication, r.buffer, length, idle, running, False,
                                           &r.counters.back_pressure_events)
    if result > 0:
        r.counters.messages += 1
        r.counters.bytes += length
        return 0
    if result == AERON_PUBLICATION_NOT_CONNECTED:
        r.counters.not_connected += 1
    else:
        r.counters.errors += 1
        r.counters.last_error = result
    return -1


cdef int publish_orders(md_recovery_t* r, uint32_t index, idle_strategy_t* idle, const int* running) noexcept nogil:
    """Every part of one order-level instrument's OrderSnapshot (after its BookSnapshot, same seqNum)."""
    cdef uint32_t orders = order_snapshot_orders(r.core, index)
    cdef uint32_t parts = (orders + r.orders_per_part - 1) // r.orders_per_part if orders else 1
    cdef uint32_t part
    cdef OrderCursor cursor
    order_snapshot_start(r.core, index, &cursor)
    for part in range(parts):
        if offer_part(r, order_snapshot_part(r.core, index, &cursor, part, parts, r.orders_per_part, r.buffer),
                      OrderSnapshot_checksum_OFFSET, idle, running) != 0:
            return -1
    return 0


cdef int publish_book(md_recovery_t* r, uint32_t index, uint64_t now, idle_strategy_t* idle,
                      const int* running) noexcept nogil:
    """Every part of one instrument's book (and of its orders, order-level); 0, or -1 when a part was
    not taken."""
    cdef uint32_t levels = book_snapshot_levels(r.core, index)
    cdef uint32_t parts = (levels + r.per_part - 1) // r.per_part if levels else 1
    cdef uint32_t part
    cdef SnapshotCursor cursor
    r.last_sent_ns[index] = now
    book_snapshot_start(r.core, index, &cursor)
    for part in range(parts):
        if offer_part(r, book_snapshot_part(r.core, index, &cursor, part, parts, r.per_part, r.buffer),
                      BookSnapshot_checksum_OFFSET, idle, running) != 0:
            return -1
    if r.core.instruments[index].order_level and publish_orders(r, index, idle, running) != 0:
        return -1
    r.counters.snapshots += 1
    return 0


cdef int md_recovery_poll(md_recovery_t* r, uint64_t now, idle_strategy_t* idle, const int* running) noexcept nogil:
    cdef int work = 0
    cdef uint32_t i, count = r.core.instrument_count
    if r.requests.subscription != NULL:
        work = poller_poll(&r.requests, REQUESTS_PER_POLL)
        if work < 0:
            work = 0
    if not api.exclusive_publication_is_connected(r.publication):
        return work
    if r.wanted_count:
        for i in range(count):
            if r.wanted[i] and (r.last_sent_ns[i] == 0 or now >= r.last_sent_ns[i] + r.request_gap_ns):
                r.wanted[i] = 0
                r.wanted_count -= 1
                publish_book(r, i, now, idle, running)
                return work + 1
    if r.interval_ns == 0:
        return work
    if not r.cycling:
        if now < r.next_cycle_ns:
            return work
        r.cycling = True
        r.cycle_next = 0
    i = r.cycle_next
    r.cycle_next += 1
    if r.cycle_next >= count:
        r.cycling = False
        r.next_cycle_ns = now + r.interval_ns
    if r.wanted[i]:   # asked for and published with the loop: one answer is enough
        r.wanted[i] = 0
        r.wanted_count -= 1
    publish_book(r, i, now, idle, running)
    return work + 1


def max_levels_per_message(size_t max_payload_length, bint orders=False):
    """How many levels (orders) one BookSnapshot (OrderSnapshot) message holds within
    `max_payload_length` bytes (one frame)."""
    cdef size_t fixed = HEADER_LENGTH + BookSnapshot_BLOCK_LENGTH + BookSnapshot_levels_HEADER_LENGTH
    cdef size_t entry = BookSnapshot_levels_BLOCK_LENGTH
    if orders:
        fixed = HEADER_LENGTH + OrderSnapshot_BLOCK_LENGTH + OrderSnapshot_orders_HEADER_LENGTH
        entry = OrderSnapshot_orders_BLOCK_LENGTH
    if max_payload_length <= fixed + entry:
        raise ValueError(f"a message of {max_payload_length} bytes holds no snapshot entry")
    return min(MAX_GROUP, (max_payload_length - fixed) // entry)


cdef class MarketDataRecovery:
    """The recovery publisher of one engine: its publication, its request subscription (optional), the
    loop's schedule. Hand it to ServiceLoop(recovery=...); `counters()` may be read from another thread."""

    def __cinit__(self):
        memset(&self.state, 0, sizeof(md_recovery_t))

    def __init__(self, Engine engine not None, ExclusivePublication publication not None,
                 Subscription requests=None, double interval=1.0, double request_gap=0.1,
                 uint32_t levels_per_message=0):
        """`interval`: seconds between two loops over every instrument (0: on request only).
        `request_gap`: seconds an instrument waits after it was published before a request publishes it again.
        `levels_per_message`: 0: as many as one network frame of the publication holds."""
        if interval < 0 or request_gap < 0:
            raise ValueError("the recovery interval and request gap must be >= 0")
        cdef uint32_t orders_per_message = levels_per_message
        if levels_per_message == 0:
            levels_per_message = max_levels_per_message(publication.max_payload_length)
            orders_per_message = max_levels_per_message(publication.max_payload_length, True)
        if not 0 < levels_per_message <= MAX_GROUP:
            raise ValueError(f"levels per message {levels_per_message} must be in 1..{MAX_GROUP}")
        if part_length_max(levels_per_message, orders_per_message) > publication.max_message_length:
            raise ValueError(f"{levels_per_message} levels per message make messages longer than the recovery "
                             f"publication takes ({publication.max_message_length} bytes)")
        self.engine, self.publication, self.requests = engine, publication, requests
        cdef uint32_t count = engine.core.instrument_count
        self.state.core = engine.core
        self.state.publication = publication.publication
        self.state.interval_ns = <uint64_t>(interval * 1e9)
        self.state.request_gap_ns = <uint64_t>(request_gap * 1e9)
        self.state.per_part = levels_per_message
        self.state.orders_per_part = orders_per_message
        self.state.wanted = <uint8_t*>calloc(count + 1, 1)
        self.state.last_sent_ns = <uint64_t*>calloc(count + 1, sizeof(uint64_t))
        self.state.buffer = <uint8_t*>calloc(part_length_max(levels_per_message, orders_per_message), 1)
        if self.state.wanted == NULL or self.state.last_sent_ns == NULL or self.state.buffer == NULL:
            raise MemoryError()
        if requests is not None:
            requests.set_handler(on_request, &self.state, True, self)
            self.state.requests = requests.poller

    def __dealloc__(self):
        free(self.state.wanted)
        free(self.state.last_sent_ns)
        free(self.state.buffer)

    @property
    def levels_per_message(self):
        return self.state.per_part

    @property
    def orders_per_message(self):
        return self.state.orders_per_part

    def counters(self):
        cdef md_recovery_counters_t* c = &self.state.counters
        return {"snapshots": c.snapshots, "messages": c.messages, "bytes": c.bytes, "requests": c.requests,
                "requests_unknown": c.requests_unknown, "requests_malformed": c.requests_malformed,
                "back_pressure_events": c.back_pressure_events, "not_connected": c.not_connected,
                "errors": c.errors}

    def poll(self, uint64_t now_ns):
        """One step outside a service loop (tests): read requests, publish at most one book."""
        from lob.transport.idle import parse as parse_idle
        cdef IdleStrategy strategy = parse_idle("yield")
        cdef int running = 1
        return md_recovery_poll(&self.state, now_ns, &strategy.state, &running)
