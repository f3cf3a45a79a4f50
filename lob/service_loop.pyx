# cython: boundscheck=False, wraparound=False
"""The engine's nogil duty cycle: poll order entry, match, publish execution reports and market data.

Per inbound message, with no Python in between: Aeron's fragment assembler hands the whole message to
`on_fragment`, which stamps it (CLOCK_REALTIME, the transactTime the core writes into its reports),
appends it to the journal (when there is one), and calls `engine_on_frame` with the image's session id.
After each poll (up to `fragment_limit` messages) the loop commits the journal per its durability
policy and only then offers every frame the core staged in exec_out and md_out to their publications:
no effect of a message is published before the message is journaled.

Outbound policy:
- back-pressure (and admin action): idle and retry until the frame is taken; counted once per frame.
  Never dropped, on either stream.
- NOT_CONNECTED (no subscriber): the frame is dropped and counted, on both streams. A venue does not
  stop matching because nobody listens: market data is a broadcast, and an execution report no one is
  subscribed to cannot be delivered later either (clients subscribe before they send orders).
- CLOSED / MAX_POSITION_EXCEEDED / ERROR: counted; the loop stops and the service exits with an error.

Counters are plain C integers written by the loop thread only; the service copies them into
Prometheus and the status line from another thread (torn reads of a monotonic 64-bit counter on
x86-64 do not happen, and a value one message old is fine there).
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memset
from posix.time cimport CLOCK_MONOTONIC, CLOCK_REALTIME, clock_gettime, timespec

from lob.core cimport CORE_OK, EngineCore, OutBuf, engine_on_frame, load_u32le
from lob.engine cimport Engine
from lob.journal cimport Journal, JournalWriter, journal_append, journal_commit
from lob.sbe.messages cimport (
    HEADER_LENGTH, ExecutionReportRejected_TEMPLATE_ID, ExecutionReportRejected_reason_OFFSET,
    ExecutionReportTrade_TEMPLATE_ID, ExecutionReportTrade_liquidity_OFFSET, LiquidityIndicator_Removed,
    MessageReject_TEMPLATE_ID, MessageReject_reason_OFFSET, OrderCancelReject_TEMPLATE_ID,
    OrderCancelReject_reason_OFFSET, messageHeader_templateId_OFFSET,
)
from lob.transport.aeron cimport api
from lob.transport.aeronc cimport (
    AERON_PUBLICATION_ADMIN_ACTION, AERON_PUBLICATION_BACK_PRESSURED, AERON_PUBLICATION_NOT_CONNECTED,
    aeron_exclusive_publication_t, aeron_header_t, aeron_header_values_t,
)
from lob.transport.idle cimport IdleStrategy, idle, idle_strategy_t, lob_load_flag, lob_store_flag
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
    uint64_t in_by_template[TEMPLATE_SLOTS + 1]
    uint64_t out_by_template[TEMPLATE_SLOTS + 1]
    uint64_t rejects_by_reason[REASON_SLOTS]
    uint64_t trades
    stream_counters_t execution
    stream_counters_t market_data
    uint64_t service_buckets[LATENCY_BUCKETS]
    uint64_t service_ns_sum
    uint64_t service_ns_max

ctypedef struct service_loop_t:
    fragment_poller_t poller
    EngineCore* core
    aeron_exclusive_publication_t* execution
    aeron_exclusive_publication_t* market_data   # NULL: market data off
    Journal* journal     # NULL: no journal
    idle_strategy_t idle
    size_t fragment_limit
    int snapshot_requested
    int running         # poll for new orders
    int publishing      # keep retrying back-pressured offers (cleared only to abort a shutdown)
    int stopped_by      # STOPPED_* when the loop ended by itself
    service_counters_t counters


cdef inline uint64_t now_ns(int clock) noexcept nogil:
    cdef timespec ts
    clock_gettime(clock, &ts)
    return <uint64_t>ts.tv_sec * 1000000000ULL + <uint64_t>ts.tv_nsec


cdef inline uint16_t template_of(const uint8_t* frame, size_t length) noexcept nogil:
    if length < HEADER_LENGTH:
        return TEMPLATE_SLOTS
    cdef uint16_t template_id = frame[messageHeader_templateId_OFFSET] | (
        <uint16_t>frame[messageHeader_templateId_OFFSET + 1] << 8)
    return template_id if template_id < TEMPLATE_SLOTS else TEMPLATE_SLOTS


cdef inline void count_outbound(service_counters_t* c, const uint8_t* frame, size_t length) noexcept nogil:
    cdef uint16_t template_id = template_of(frame, length)
    cdef const uint8_t* body = frame + HEADER_LENGTH
    c.out_by_template[template_id] += 1
    if template_id == ExecutionReportTrade_TEMPLATE_ID and length > HEADER_LENGTH + ExecutionReportTrade_liquidity_OFFSET:
        if body[ExecutionReportTrade_liquidity_OFFSET] == LiquidityIndicator_Removed:
            c.trades += 1   # one taker report per fill
    elif (template_id == ExecutionReportRejected_TEMPLATE_ID
          and length > HEADER_LENGTH + ExecutionReportRejected_reason_OFFSET):
        c.rejects_by_reason[body[ExecutionReportRejected_reason_OFFSET]] += 1
    elif template_id == OrderCancelReject_TEMPLATE_ID and length > HEADER_LENGTH + OrderCancelReject_reason_OFFSET:
        c.rejects_by_reason[body[OrderCancelReject_reason_OFFSET]] += 1
    elif template_id == MessageReject_TEMPLATE_ID and length > HEADER_LENGTH + MessageReject_reason_OFFSET:
        c.rejects_by_reason[body[MessageReject_reason_OFFSET]] += 1


cdef void publish(service_loop_t* s, OutBuf* out, size_t header, aeron_exclusive_publication_t* publication,
                  stream_counters_t* sc) noexcept nogil:
    cdef size_t offset = 0
    cdef uint32_t length
    cdef const uint8_t* frame
    cdef int64_t result
    while offset + header <= out.length:
        length = load_u32le(out.data + offset)
        frame = out.data + offset + header
        offset += header + length
        count_outbound(&s.counters, frame, length)
        if publication == NULL:
            continue
        result = offer_with_retry(publication, frame, length, &s.idle, &s.publishing, False,
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
            s.stopped_by = STOPPED_PUBLICATION
            lob_store_flag(&s.running, 0)
    out.length = 0


cdef void on_fragment(void* clientd, const uint8_t* buffer, size_t length, aeron_header_t* header) noexcept nogil:
    cdef service_loop_t* s = <service_loop_t*>clientd
    cdef service_counters_t* c = &s.counters
    cdef aeron_header_values_t values
    cdef uint64_t started = now_ns(CLOCK_MONOTONIC)
    cdef uint64_t elapsed
    cdef int bucket
    cdef uint64_t timestamp = now_ns(CLOCK_REALTIME)
    cdef uint32_t session
    if not lob_load_flag(&s.running):
        return  # stopped by a journal failure earlier in this poll: leave the rest unprocessed
    api.header_values(header, &values)
    session = <uint32_t>values.frame.session_id
    if s.journal != NULL:
        if journal_append(s.journal, session, timestamp, buffer, <uint32_t>length) == 0:
            s.stopped_by = STOPPED_JOURNAL
            lob_store_flag(&s.running, 0)
            return
        c.journaled += 1
    c.frames_in += 1
    c.bytes_in += length
    c.in_by_template[template_of(buffer, length)] += 1
    if engine_on_frame(s.core, buffer, <uint32_t>length, session, timestamp) != CORE_OK:
        c.core_errors += 1
    elapsed = now_ns(CLOCK_MONOTONIC) - started
    c.service_ns_sum += elapsed
    if elapsed > c.service_ns_max:
        c.service_ns_max = elapsed
    bucket = 0 if elapsed < (1ULL << LATENCY_SHIFT) else 64 - __builtin_clzll(elapsed) - LATENCY_SHIFT
    c.service_buckets[bucket if bucket < LATENCY_BUCKETS else LATENCY_BUCKETS - 1] += 1


cdef int commit_and_publish(service_loop_t* s) noexcept nogil:
    """Make the journal as durable as its policy promises, then publish what the core staged."""
    if s.journal != NULL and journal_commit(s.journal, now_ns(CLOCK_MONOTONIC)) != 0:
        s.stopped_by = STOPPED_JOURNAL
        lob_store_flag(&s.running, 0)
        return -1
    if s.core.exec_out.length:
        publish(s, &s.core.exec_out, 12, s.execution, &s.counters.execution)
    if s.core.md_out.length:
        publish(s, &s.core.md_out, 4, s.market_data, &s.counters.market_data)
    return 0


cdef int run_loop(service_loop_t* s, uint64_t drain_ns, object on_snapshot) noexcept nogil:
    cdef int work
    while lob_load_flag(&s.running):
        work = poller_poll(&s.poller, s.fragment_limit)
        if work < 0:
            s.stopped_by = STOPPED_POLL_ERROR
            return -1
        if work > 0 or s.journal != NULL:  # an idle commit lets a batch policy's time limit pass
            if commit_and_publish(s) != 0:
                return -1
        if lob_load_flag(&s.snapshot_requested):
            lob_store_flag(&s.snapshot_requested, 0)
            with gil:
                on_snapshot()
        idle(&s.idle, work)
    if s.stopped_by:
        return -1
    # Answer what already arrived: poll until a poll finds nothing (bounded by drain_ns).
    cdef uint64_t deadline = now_ns(CLOCK_MONOTONIC) + drain_ns
    while lob_load_flag(&s.publishing) and now_ns(CLOCK_MONOTONIC) < deadline:
        work = poller_poll(&s.poller, s.fragment_limit)
        if commit_and_publish(s) != 0:
            return -1
        if work <= 0:
            break
    return 0


cdef dict stream_snapshot(const stream_counters_t* sc):
    return {"frames": sc.frames, "bytes": sc.bytes, "back_pressure_events": sc.back_pressure_events,
            "not_connected": sc.not_connected, "unsent": sc.unsent, "errors": sc.errors}


TEMPLATE_OTHER = TEMPLATE_SLOTS
LATENCY_BOUNDS_NS = tuple(1 << (LATENCY_SHIFT + i) for i in range(LATENCY_BUCKETS - 1))


cdef class ServiceLoop:
    """One engine, one order-entry subscription, two exclusive publications; `run()` blocks (nogil)."""

    cdef service_loop_t state
    cdef readonly Engine engine
    cdef readonly Subscription order_entry
    cdef readonly ExclusivePublication execution
    cdef readonly ExclusivePublication market_data
    cdef readonly IdleStrategy idle_strategy
    cdef readonly JournalWriter journal
    cdef object on_snapshot
    cdef bint started

    def __init__(self, Engine engine not None, Subscription order_entry not None,
                 ExclusivePublication execution not None, ExclusivePublication market_data=None,
                 idle="yield", size_t fragment_limit=16, JournalWriter journal=None, on_snapshot=None):
        """`journal`: every inbound message is appended to it before it is processed.
        `on_snapshot`: called on the loop thread, between messages, after request_snapshot()."""
        memset(&self.state, 0, sizeof(service_loop_t))
        self.engine, self.order_entry, self.execution, self.market_data = engine, order_entry, execution, market_data
        self.journal = journal
        self.state.journal = journal.j if journal is not None else NULL
        self.on_snapshot = on_snapshot
        self.idle_strategy = parse_idle(idle)
        self.state.core = engine.core
        self.state.execution = execution.publication
        self.state.market_data = market_data.publication if market_data is not None else NULL
        self.state.idle = self.idle_strategy.state
        self.state.fragment_limit = fragment_limit
        self.state.running = 1
        self.state.publishing = 1
        order_entry.set_handler(on_fragment, &self.state, True, self)
        self.state.poller = order_entry.poller

    def run(self, double drain_seconds=1.0):
        """Run the duty cycle until stop(); then answer what already arrived (up to drain_seconds).

        Returns 0, or raises RuntimeError when the loop stopped by itself (poll or publication error).
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
            e = self.state.counters.execution.last_error or self.state.counters.market_data.last_error
            raise RuntimeError(f"an outbound publication failed: {result_name(e)}")
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
        streams = {"execution": stream_snapshot(&c.execution), "market_data": stream_snapshot(&c.market_data)}
        return {
            "frames_in": c.frames_in, "bytes_in": c.bytes_in, "journaled": c.journaled,
            "core_errors": c.core_errors,
            "in_by_template": in_by_template, "out_by_template": out_by_template,
            "rejects_by_reason": rejects, "trades": c.trades, "streams": streams,
            "service_buckets": [c.service_buckets[i] for i in range(LATENCY_BUCKETS)],
            "service_ns_sum": c.service_ns_sum, "service_ns_max": c.service_ns_max,
        }
