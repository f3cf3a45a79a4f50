# cython: boundscheck=False, wraparound=False
"""The engine's nogil duty cycle: poll order entry, match, route execution frames to each client's
private publication, publish market data.

Per inbound message, with no Python in between: Aeron's fragment assembler hands the whole message to
`on_fragment`, which stamps it (CLOCK_REALTIME, the transactTime the core writes into its reports),
appends it to the journal (when there is one), and calls `engine_on_frame` with the image's session id
(the transport). Frames whose template id is an engine record's (70..79) are dropped and counted as
forged: only the loop writes those. A Negotiate also starts the transport's private publication
(lob.private_streams) before the core answers it.

The loop writes its own records, journaled and processed exactly like inbound messages with transport
0: EngineStart once before the first poll, EngineTick every `tick_ns` of CLOCK_MONOTONIC, and
TransportLost when the order-entry subscription reports an unavailable image (the Aeron conductor
thread hands the session id over through lob.transport.images' ring) or when lob.private_streams
disconnected the transport as a slow consumer.

After each poll (up to `fragment_limit` messages) the loop commits the journal per its durability
policy and only then walks the core's exec_out (routed framing: u32 length | u32 session | u32
transport | frame) and md_out: no effect of a message is published before the message is journaled.

Outbound policy:
- market data and the drop copy, on back-pressure (and admin action): idle and retry until the frame
  is taken; counted once per frame. Never dropped.
- a private publication is never waited for: a back-pressured frame, and every later one of that
  transport, waits in the transport's bounded buffer and is retried at every loop iteration. A client
  whose buffer would overflow, or that stays back-pressured longer than the slow-consumer timeout, is
  disconnected: TransportLost (journaled) ends its session in the core, cancel-on-disconnect applies,
  and its application messages stay in its retransmission ring. One slow client never holds the
  others, market data or the journal back.
- an execution frame for transport 0 (a session not connected) is not sent (the core retains it for
  retransmission); for a transport without a publication it is dropped and counted; before a private
  publication connects it waits in a bounded buffer (lob.private_streams).
- NOT_CONNECTED (no subscriber): the frame is dropped and counted. A venue does not stop matching
  because nobody listens.
- market data CLOSED / MAX_POSITION_EXCEEDED / ERROR: counted; the loop stops and the service exits
  with an error. On a private publication or the drop copy they are counted and matching goes on.

With a latency trace (lob.latency_trace, `lob engine --trace-file`), on_fragment and the loop also write
each message's receive, match and publish times into that side ring: nothing of it reaches the
execution stream or the journal.

Counters are plain C integers written by the loop thread only; the service copies them into
Prometheus and the status line from another thread (torn reads of a monotonic 64-bit counter on
x86-64 do not happen, and a value one message old is fine there).
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from posix.time cimport CLOCK_MONOTONIC, CLOCK_REALTIME, clock_gettime, timespec

from lob.core cimport CORE_OK, SESSION_ESTABLISHED, EngineCore, OutBuf, engine_on_frame, load_u32le
from lob.engine cimport Engine
from lob.journal cimport Journal, JournalWriter, journal_append, journal_commit
from lob.md_recovery cimport MarketDataRecovery, md_recovery_poll, md_recovery_t
from lob.latency_trace cimport LatencyTrace, trace_begin, trace_end, trace_poll_done, trace_record_t, trace_t
from lob.private_streams cimport (
    PrivateStreams, private_streams_next_slow, private_streams_on_negotiate, private_streams_pending,
    private_streams_poll, private_streams_send, private_streams_t, private_streams_transport_lost,
)
from lob.sbe.messages cimport (
    HEADER_LENGTH, SCHEMA_ID, SCHEMA_VERSION, EngineStart_TEMPLATE_ID, EngineTick_TEMPLATE_ID,
    EstablishmentReject_TEMPLATE_ID, EstablishmentReject_reason_OFFSET, ExecutionReportRejected_TEMPLATE_ID,
    ExecutionReportRejected_reason_OFFSET, ExecutionReportTrade_TEMPLATE_ID, ExecutionReportTrade_liquidity_OFFSET,
    LiquidityIndicator_Removed, MessageReject_TEMPLATE_ID, MessageReject_reason_OFFSET,
    NegotiationReject_TEMPLATE_ID, NegotiationReject_reason_OFFSET, Negotiate_TEMPLATE_ID,
    OrderCancelReject_TEMPLATE_ID, OrderCancelReject_reason_OFFSET, Retransmission_TEMPLATE_ID,
    Retransmission_count_OFFSET, TransportLost_TEMPLATE_ID, messageHeader_templateId_OFFSET,
)
from lob.transport.aeron cimport api
from lob.transport.aeronc cimport (
    AERON_PUBLICATION_ADMIN_ACTION, AERON_PUBLICATION_BACK_PRESSURED, AERON_PUBLICATION_NOT_CONNECTED,
    aeron_exclusive_publication_t, aeron_header_t, aeron_header_values_t,
)
from lob.transport.idle cimport IdleStrategy, idle, idle_strategy_t, lob_load_flag, lob_store_flag
from lob.transport.images cimport IMAGE_UNAVAILABLE, ImageEvents, image_ring_pop, image_ring_t
from lob.transport.publication cimport ExclusivePublication, offer_with_retry
from lob.transport.subscription cimport Subscription, fragment_poller_t, poller_poll

from lob.transport.idle import parse as parse_idle

cdef extern from *:
    int __builtin_clzll(unsigned long long x) noexcept nogil

cdef enum:
    TEMPLATE_SLOTS = 128        # template ids 0..127 counted individually, the rest in slot 128
    REASON_SLOTS = 256
    LATENCY_BUCKETS = 24        # bucket i < 2**(LATENCY_SHIFT + i) ns; the last one is +Inf
    LATENCY_SHIFT = 7
    ROUTED_HEADER = 12          # u32 length | u32 session | u32 transport
    ENGINE_RECORD_FIRST = 70
    ENGINE_RECORD_LAST = 79
    RECORD_LENGTH = 12          # message header + one u32 field: every engine record the loop writes
    STOPPED_POLL_ERROR = 1
    STOPPED_PUBLICATION = 2
    STOPPED_JOURNAL = 3

ctypedef struct stream_counters_t:
    uint64_t frames                 # offered
    uint64_t bytes
    uint64_t back_pressure_events   # frames that had to wait for back-pressure to clear
    uint64_t not_connected          # frames dropped: no subscriber
    uint64_t unsent                 # frames given up while back-pressured at an aborted shutdown
    uint64_t errors                 # CLOSED / MAX_POSITION_EXCEEDED / ERROR
    int64_t last_error

ctypedef struct service_counters_t:
    uint64_t frames_in
    uint64_t bytes_in
    uint64_t journaled
    uint64_t core_errors
    uint64_t forged                 # network frames carrying an engine record's template id
    uint64_t ticks
    uint64_t starts
    uint64_t transports_lost
    uint64_t in_by_template[TEMPLATE_SLOTS + 1]
    uint64_t out_by_template[TEMPLATE_SLOTS + 1]
    uint64_t rejects_by_reason[REASON_SLOTS]
    uint64_t trades
    uint64_t retransmitted          # frames sent again after a Retransmission (not counted as new events)
    stream_counters_t market_data
    stream_counters_t drop_copy
    uint64_t service_buckets[LATENCY_BUCKETS]
    uint64_t service_ns_sum
    uint64_t service_ns_max

ctypedef struct service_loop_t:
    fragment_poller_t poller
    EngineCore* core
    private_streams_t* streams
    aeron_exclusive_publication_t* market_data   # NULL: market data off
    aeron_exclusive_publication_t* drop_copy     # NULL: no drop copy
    image_ring_t* images                         # NULL: transports are never reported lost
    md_recovery_t* recovery                      # NULL: no market-data recovery channel
    Journal* journal     # NULL: no journal
    trace_t* trace       # NULL: no latency trace (lob.latency_trace)
    idle_strategy_t idle
    size_t fragment_limit
    uint64_t tick_ns     # 0: no EngineTick records
    uint64_t next_tick_ns
    uint32_t retransmit_left    # frames after a Retransmission still to come (counted apart)
    uint64_t batch_end_ns       # when the poll's previous message was done (0: none yet in this poll)
    int64_t realtime_offset_ns  # CLOCK_REALTIME - CLOCK_MONOTONIC, read at each poll's first message
    int snapshot_requested
    int running         # poll for new orders
    int publishing      # keep retrying back-pressured offers (cleared only to abort a shutdown)
    int stopped_by      # STOPPED_* when the loop ended by itself
    service_counters_t counters


cdef inline uint64_t now_ns(int clock) noexcept nogil:
    cdef timespec ts
    clock_gettime(clock, &ts)
    return <uint64_t>ts.tv_sec * 1000000000ULL + <uint64_t>ts.tv_nsec


cdef inline uint16_t template_id_of(const uint8_t* frame, size_t length) noexcept nogil:
    """The frame's template id, 0xFFFF when it has no whole header."""
    if length < HEADER_LENGTH:
        return 0xFFFF
    return frame[messageHeader_templateId_OFFSET] | (<uint16_t>frame[messageHeader_templateId_OFFSET + 1] << 8)


cdef inline uint16_t slot_of(uint16_t template_id) noexcept nogil:
    return template_id if template_id < TEMPLATE_SLOTS else TEMPLATE_SLOTS


cdef inline void count_reason(service_counters_t* c, const uint8_t* frame, size_t length, size_t offset) noexcept nogil:
    if length > HEADER_LENGTH + offset:
        c.rejects_by_reason[frame[HEADER_LENGTH + offset]] += 1


cdef void count_execution(service_loop_t* s, const uint8_t* frame, size_t length, uint16_t template_id) noexcept nogil:
    """By template; rejects by reason and trades, except in frames sent again after a Retransmission."""
    cdef service_counters_t* c = &s.counters
    c.out_by_template[slot_of(template_id)] += 1
    if s.retransmit_left:
        s.retransmit_left -= 1
        c.retransmitted += 1
        return
    if template_id == ExecutionReportRejected_TEMPLATE_ID:
        count_reason(c, frame, length, ExecutionReportRejected_reason_OFFSET)
    elif template_id == ExecutionReportTrade_TEMPLATE_ID:
        if (length > HEADER_LENGTH + ExecutionReportTrade_liquidity_OFFSET
                and frame[HEADER_LENGTH + ExecutionReportTrade_liquidity_OFFSET] == LiquidityIndicator_Removed):
            c.trades += 1   # one taker report per fill
    elif template_id == OrderCancelReject_TEMPLATE_ID:
        count_reason(c, frame, length, OrderCancelReject_reason_OFFSET)
    elif template_id == MessageReject_TEMPLATE_ID:
        count_reason(c, frame, length, MessageReject_reason_OFFSET)
    elif template_id == NegotiationReject_TEMPLATE_ID:
        count_reason(c, frame, length, NegotiationReject_reason_OFFSET)
    elif template_id == EstablishmentReject_TEMPLATE_ID:
        count_reason(c, frame, length, EstablishmentReject_reason_OFFSET)
    elif template_id == Retransmission_TEMPLATE_ID and length >= HEADER_LENGTH + Retransmission_count_OFFSET + 4:
        s.retransmit_left = load_u32le(frame + HEADER_LENGTH + Retransmission_count_OFFSET)


cdef inline int poll_batch(service_loop_t* s) noexcept nogil:
    s.batch_end_ns = 0
    return poller_poll(&s.poller, s.fragment_limit)


cdef void offer_counted(service_loop_t* s, aeron_exclusive_publication_t* publication, const uint8_t* data,
                        size_t length, stream_counters_t* sc, bint fatal) noexcept nogil:
    cdef int64_t result = offer_with_retry(publication, data, length, &s.idle, &s.publishing, False,
                                           &sc.back_pressure_events)
    if result > 0:
        sc.frames += 1
        sc.bytes += length
    elif result == AERON_PUBLICATION_NOT_CONNECTED:
        sc.not_connected += 1
    elif result == AERON_PUBLICATION_BACK_PRESSURED or result == AERON_PUBLICATION_ADMIN_ACTION:
        sc.unsent += 1
    else:
        sc.errors += 1
        sc.last_error = result
        if fatal:
            s.stopped_by = STOPPED_PUBLICATION
            lob_store_flag(&s.running, 0)


cdef void route_executions(service_loop_t* s, uint64_t now) noexcept nogil:
    """Each routed frame to its transport's private publication (and the whole record to the drop copy)."""
    cdef OutBuf* out = &s.core.exec_out
    cdef size_t offset = 0
    cdef uint32_t length, transport
    cdef const uint8_t* frame
    cdef uint16_t template_id
    while offset + ROUTED_HEADER <= out.length:
        length = load_u32le(out.data + offset)
        transport = load_u32le(out.data + offset + 8)
        frame = out.data + offset + ROUTED_HEADER
        template_id = template_id_of(frame, length)
        count_execution(s, frame, length, template_id)
        if s.drop_copy != NULL:
            offer_counted(s, s.drop_copy, out.data + offset, ROUTED_HEADER + length, &s.counters.drop_copy, False)
        private_streams_send(s.streams, transport, frame, length, template_id, now)
        offset += ROUTED_HEADER + length
    out.length = 0


cdef void publish_market_data(service_loop_t* s) noexcept nogil:
    cdef OutBuf* out = &s.core.md_out
    cdef size_t offset = 0
    cdef uint32_t length
    cdef const uint8_t* frame
    while offset + 4 <= out.length:
        length = load_u32le(out.data + offset)
        frame = out.data + offset + 4
        offset += 4 + length
        s.counters.out_by_template[slot_of(template_id_of(frame, length))] += 1
        if s.market_data != NULL:
            offer_counted(s, s.market_data, frame, length, &s.counters.market_data, True)
    out.length = 0


cdef int write_record(service_loop_t* s, uint16_t template_id, uint32_t value) noexcept nogil:
    """Journal an engine record and process it as if it had arrived with transport 0."""
    cdef uint8_t frame[RECORD_LENGTH]
    cdef uint16_t header[4]
    cdef uint64_t timestamp = now_ns(CLOCK_REALTIME)
    header[0], header[1], header[2], header[3] = 4, template_id, SCHEMA_ID, SCHEMA_VERSION
    memcpy(frame, header, HEADER_LENGTH)   # little-endian, as the whole engine assumes
    memcpy(frame + HEADER_LENGTH, &value, 4)
    if s.journal != NULL:
        if journal_append(s.journal, 0, timestamp, frame, RECORD_LENGTH) == 0:
            s.stopped_by = STOPPED_JOURNAL
            lob_store_flag(&s.running, 0)
            return -1
        s.counters.journaled += 1
    if engine_on_frame(s.core, frame, RECORD_LENGTH, 0, timestamp) != CORE_OK:
        s.counters.core_errors += 1
    return 0


cdef void on_fragment(void* clientd, const uint8_t* buffer, size_t length, aeron_header_t* header) noexcept nogil:
    cdef service_loop_t* s = <service_loop_t*>clientd
    cdef service_counters_t* c = &s.counters
    cdef aeron_header_values_t values
    # One clock read per message: a message starts where the poll's previous one ended, and its
    # receive timestamp is derived from the monotonic clock (a clock read costs ~25 ns, ~10% of the
    # loop's time at 800,000 messages a second when it took three).
    cdef uint64_t started = s.batch_end_ns
    if started == 0:
        started = now_ns(CLOCK_MONOTONIC)
        s.realtime_offset_ns = <int64_t>(now_ns(CLOCK_REALTIME) - started)
    cdef uint64_t elapsed
    cdef int bucket
    cdef uint64_t timestamp = started + <uint64_t>s.realtime_offset_ns
    cdef uint32_t transport
    cdef uint16_t template_id = template_id_of(buffer, length)
    cdef trace_record_t* traced = NULL
    if not lob_load_flag(&s.running):
        return  # stopped by a journal failure earlier in this poll: leave the rest unprocessed
    c.frames_in += 1
    c.bytes_in += length
    c.in_by_template[slot_of(template_id)] += 1
    if ENGINE_RECORD_FIRST <= template_id <= ENGINE_RECORD_LAST:
        c.forged += 1
        return
    api.header_values(header, &values)
    transport = <uint32_t>values.frame.session_id
    if s.journal != NULL:
        if journal_append(s.journal, transport, timestamp, buffer, <uint32_t>length) == 0:
            s.stopped_by = STOPPED_JOURNAL
            lob_store_flag(&s.running, 0)
            return
        c.journaled += 1
    if template_id == Negotiate_TEMPLATE_ID:
        private_streams_on_negotiate(s.streams, transport, buffer, length, started)
    if s.trace != NULL:
        traced = trace_begin(s.trace, started, transport, template_id)
    if engine_on_frame(s.core, buffer, <uint32_t>length, transport, timestamp) != CORE_OK:
        c.core_errors += 1
    s.batch_end_ns = now_ns(CLOCK_MONOTONIC)
    elapsed = s.batch_end_ns - started
    if traced != NULL:
        trace_end(s.trace, traced, started + elapsed)
    c.service_ns_sum += elapsed
    if elapsed > c.service_ns_max:
        c.service_ns_max = elapsed
    bucket = 0 if elapsed < (1ULL << LATENCY_SHIFT) else 64 - __builtin_clzll(elapsed) - LATENCY_SHIFT
    c.service_buckets[bucket if bucket < LATENCY_BUCKETS else LATENCY_BUCKETS - 1] += 1


cdef int transport_lost(service_loop_t* s, uint32_t transport, uint64_t now) noexcept nogil:
    if write_record(s, TransportLost_TEMPLATE_ID, transport) != 0:
        return -1
    s.counters.transports_lost += 1
    private_streams_transport_lost(s.streams, transport, now)
    return 0


cdef int engine_records(service_loop_t* s, uint64_t now) noexcept nogil:
    """TransportLost for each image gone since the last call, EngineTick when due; the number written."""
    cdef uint32_t kind, transport
    cdef int written = 0
    if s.images != NULL:
        while image_ring_pop(s.images, &kind, &transport):
            if kind != IMAGE_UNAVAILABLE:
                continue
            if transport_lost(s, transport, now) != 0:
                return -1
            written += 1
    if s.tick_ns and now >= s.next_tick_ns:
        if write_record(s, EngineTick_TEMPLATE_ID, 0) != 0:
            return -1
        s.counters.ticks += 1
        s.next_tick_ns += s.tick_ns
        if s.next_tick_ns <= now:   # after a stall: one tick, not a burst of them
            s.next_tick_ns = now + s.tick_ns
        written += 1
    return written


cdef int slow_consumer_records(service_loop_t* s, uint64_t now) noexcept nogil:
    """TransportLost for each slow consumer the private streams disconnected; the number written."""
    cdef uint32_t transport
    cdef int written = 0
    while private_streams_next_slow(s.streams, &transport):
        if transport_lost(s, transport, now) != 0:
            return -1
        written += 1
    return written


cdef int commit_and_publish(service_loop_t* s, uint64_t now) noexcept nogil:
    """Make the journal as durable as its policy promises, then send what the core staged."""
    if s.journal != NULL and journal_commit(s.journal, now) != 0:
        s.stopped_by = STOPPED_JOURNAL
        lob_store_flag(&s.running, 0)
        return -1
    if s.core.exec_out.length:
        route_executions(s, now)
    if s.core.md_out.length:
        publish_market_data(s)
    return 0


cdef int run_loop(service_loop_t* s, uint64_t drain_ns, object on_snapshot) noexcept nogil:
    cdef int work, records
    cdef uint64_t now = now_ns(CLOCK_MONOTONIC)
    if write_record(s, EngineStart_TEMPLATE_ID, 0) != 0 or commit_and_publish(s, now) != 0:
        return -1
    s.counters.starts += 1
    s.next_tick_ns = now + s.tick_ns
    while lob_load_flag(&s.running):
        work = poll_batch(s)
        if work < 0:
            s.stopped_by = STOPPED_POLL_ERROR
            return -1
        now = now_ns(CLOCK_MONOTONIC)
        records = engine_records(s, now)
        if records < 0:
            return -1
        if work > 0 or records > 0 or s.journal != NULL:  # an idle commit lets a batch policy's time limit pass
            if commit_and_publish(s, now) != 0:
                return -1
        if s.trace != NULL:
            trace_poll_done(s.trace, work, now_ns(CLOCK_MONOTONIC) if work > 0 else 0,
                            s.streams.counters.back_pressure_events, s.counters.market_data.back_pressure_events)
        work += records + private_streams_poll(s.streams, now)
        # Before the next poll, so the session ends before more of its messages are processed.
        records = slow_consumer_records(s, now)
        while records > 0:
            if commit_and_publish(s, now) != 0:
                return -1
            work += records
            records = slow_consumer_records(s, now)   # publishing those records may disconnect another
        if records < 0:
            return -1
        if s.recovery != NULL:   # between batches, everything staged published: books match the md seq
            work += md_recovery_poll(s.recovery, now, &s.idle, &s.publishing)
        if lob_load_flag(&s.snapshot_requested):
            lob_store_flag(&s.snapshot_requested, 0)
            with gil:
                on_snapshot()
        idle(&s.idle, work)
    if s.stopped_by:
        return -1
    # Answer what already arrived: poll until a poll finds nothing (bounded by drain_ns), and let
    # publications still connecting or back-pressured take their buffered frames.
    cdef uint64_t deadline = now_ns(CLOCK_MONOTONIC) + drain_ns
    while lob_load_flag(&s.publishing):
        now = now_ns(CLOCK_MONOTONIC)
        if now >= deadline:
            break
        work = poll_batch(s)
        if commit_and_publish(s, now) != 0:
            return -1
        private_streams_poll(s.streams, now)
        if work <= 0 and not private_streams_pending(s.streams):
            break
        idle(&s.idle, work)
    return 0


cdef uint32_t established_now(const EngineCore* core) noexcept nogil:
    cdef uint32_t count = 0
    cdef uint32_t slot
    for slot in range(1, core.session_count + 1):
        count += core.sessions[slot].state == SESSION_ESTABLISHED
    return count


cdef dict stream_snapshot(const stream_counters_t* sc):
    return {"frames": sc.frames, "bytes": sc.bytes, "back_pressure_events": sc.back_pressure_events,
            "not_connected": sc.not_connected, "unsent": sc.unsent, "errors": sc.errors}


TEMPLATE_OTHER = TEMPLATE_SLOTS
LATENCY_BOUNDS_NS = tuple(1 << (LATENCY_SHIFT + i) for i in range(LATENCY_BUCKETS - 1))


cdef class ServiceLoop:
    """One engine, one order-entry subscription, a private publication per client transport, market data
    and an optional drop copy; `run()` blocks (nogil)."""

    cdef service_loop_t state
    cdef readonly Engine engine
    cdef readonly Subscription order_entry
    cdef readonly PrivateStreams streams
    cdef readonly ExclusivePublication market_data
    cdef readonly ExclusivePublication drop_copy
    cdef readonly ImageEvents images
    cdef readonly MarketDataRecovery recovery
    cdef readonly IdleStrategy idle_strategy
    cdef readonly JournalWriter journal
    cdef readonly LatencyTrace trace
    cdef object on_snapshot
    cdef bint started

    def __init__(self, Engine engine not None, Subscription order_entry not None, PrivateStreams streams not None,
                 ExclusivePublication market_data=None, ExclusivePublication drop_copy=None,
                 ImageEvents images=None, idle="yield", size_t fragment_limit=16, JournalWriter journal=None,
                 on_snapshot=None, double tick_ms=50.0, MarketDataRecovery recovery=None, LatencyTrace trace=None):
        """`journal`: every inbound message is appended to it before it is processed.
        `images`: the order-entry subscription's image events (TransportLost records come from them).
        `tick_ms`: interval of EngineTick records, 0: none.
        `on_snapshot`: called on the loop thread, between messages, after request_snapshot().
        `recovery`: the market-data recovery publisher (lob.md_recovery), stepped between batches.
        `trace`: record every inbound message's times into this lob.latency_trace ring (off: None)."""
        memset(&self.state, 0, sizeof(service_loop_t))
        self.engine, self.order_entry, self.streams = engine, order_entry, streams
        self.market_data, self.drop_copy, self.images = market_data, drop_copy, images
        self.journal = journal
        self.state.journal = journal.j if journal is not None else NULL
        self.trace = trace
        self.state.trace = &trace.t if trace is not None else NULL
        self.on_snapshot = on_snapshot
        self.idle_strategy = parse_idle(idle)
        self.state.core = engine.core
        self.state.streams = &streams.state
        self.state.market_data = market_data.publication if market_data is not None else NULL
        self.state.drop_copy = drop_copy.publication if drop_copy is not None else NULL
        self.state.images = &images.ring if images is not None else NULL
        self.recovery = recovery
        self.state.recovery = &recovery.state if recovery is not None else NULL
        self.state.idle = self.idle_strategy.state
        self.state.fragment_limit = fragment_limit
        self.state.tick_ns = <uint64_t>(tick_ms * 1e6) if tick_ms > 0 else 0
        self.state.running = 1
        self.state.publishing = 1
        order_entry.set_handler(on_fragment, &self.state, True, self)
        self.state.poller = order_entry.poller

    def run(self, double drain_seconds=1.0):
        """Write EngineStart, run the duty cycle until stop(); then answer what already arrived (up to
        drain_seconds).

        Returns 0, or raises RuntimeError when the loop stopped by itself (poll, journal or publication error).
        """
        cdef int rc
        cdef uint64_t drain_ns = <uint64_t>(drain_seconds * 1e9)
        if self.started:
            raise RuntimeError("a ServiceLoop runs once")
        self.started = True
        on_snapshot = self.on_snapshot if self.on_snapshot is not None else (lambda: None)
        with nogil:
            rc = run_loop(&self.state, drain_ns, on_snapshot)
        if self.state.stopped_by == STOPPED_JOURNAL:
            import os
            raise RuntimeError(f"journal write failed: {os.strerror(self.state.journal.error)}")
        if self.state.stopped_by == STOPPED_POLL_ERROR:
            raise RuntimeError(f"polling order entry failed: {api.errmsg().decode('utf-8', 'replace')}")
        if self.state.stopped_by == STOPPED_PUBLICATION:
            from lob.transport.publication import result_name
            raise RuntimeError(f"the market-data publication failed: "
                               f"{result_name(self.state.counters.market_data.last_error)}")
        return rc

    def stop(self):
        """Ask the loop to stop polling for new orders (thread-safe, async-signal-safe enough)."""
        lob_store_flag(&self.state.running, 0)

    def request_snapshot(self):
        """Ask the loop to call on_snapshot between two messages (thread-safe)."""
        lob_store_flag(&self.state.snapshot_requested, 1)

    def abort(self):
        """Also give up retrying back-pressured offers (a second signal during shutdown)."""
        lob_store_flag(&self.state.running, 0)
        lob_store_flag(&self.state.publishing, 0)

    def snapshot(self):
        """The loop's counters as plain Python values (read from another thread while it runs)."""
        cdef service_counters_t* c = &self.state.counters
        in_by_template = {i: c.in_by_template[i] for i in range(TEMPLATE_SLOTS + 1) if c.in_by_template[i]}
        out_by_template = {i: c.out_by_template[i] for i in range(TEMPLATE_SLOTS + 1) if c.out_by_template[i]}
        rejects = {i: c.rejects_by_reason[i] for i in range(REASON_SLOTS) if c.rejects_by_reason[i]}
        private = self.streams.counters()
        execution = {"frames": private["frames"], "bytes": private["bytes"],
                     "back_pressure_events": private["back_pressure_events"],
                     "not_connected": private["dropped_unconnected"], "unsent": private["unsent"],
                     "errors": private["errors"], "slow_consumers_disconnected": private["slow_consumers_disconnected"]}
        streams = {"execution": execution, "market_data": stream_snapshot(&c.market_data),
                   "drop_copy": stream_snapshot(&c.drop_copy)}
        sessions = dict(self.engine.core.session_counters)   # the core's, since start
        sessions["establishments"] = sessions.pop("established")
        sessions["established"] = established_now(self.engine.core)
        return {
            "frames_in": c.frames_in, "bytes_in": c.bytes_in, "journaled": c.journaled,
            "core_errors": c.core_errors, "forged": c.forged,
            "records": {"ticks": c.ticks, "starts": c.starts, "transports_lost": c.transports_lost},
            "image_events_lost": self.images.overflow if self.images is not None else 0,
            "in_by_template": in_by_template, "out_by_template": out_by_template,
            "rejects_by_reason": rejects, "trades": c.trades, "retransmitted": c.retransmitted,
            "streams": streams, "private": private, "sessions": sessions,
            "service_buckets": [c.service_buckets[i] for i in range(LATENCY_BUCKETS)],
            "service_ns_sum": c.service_ns_sum, "service_ns_max": c.service_ns_max,
        }
