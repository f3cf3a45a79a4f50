# cython: boundscheck=False, wraparound=False
"""Raw Aeron echo loops (no matching): the transport's ceiling, measured by benchmarks/bench_echo.py.

Every frame starts with u64 send time (CLOCK_MONOTONIC ns) | u64 sequence; the rest is padding. The
pong side offers every message back unchanged from its C fragment handler; the ping side keeps at most
`window` messages in flight, records each round trip into a 10 ns-resolution count array, and checks
that echoes come back in sequence. A frame with sequence STOP_SEQUENCE ends the pong loop.

`run_ping_open` is the open-loop ping of the latency ceiling (benchmarks/bench_e2e.py): frame i, of
`lengths[i]` bytes, is offered once start + i / rate has passed, and its round trip runs from that
scheduled time to the arrival of its first answer, as the load generator times the engine.

A shaped pong (reply_size > 0) answers like the engine does instead: `reply_size`-byte replies, the
first carrying the ping's header and on average `replies_per_ping - 1` more carrying its sequence with
EXTRA_FLAG set, which the ping side counts and otherwise ignores. It moves the engine's bytes and
messages over the transport with no matching: the ceiling for the engine's traffic.
"""
from libc.stdint cimport UINT64_MAX, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from lob.transport.aeron cimport api
from lob.transport.aeronc cimport (
    AERON_PUBLICATION_ADMIN_ACTION, AERON_PUBLICATION_BACK_PRESSURED, AERON_PUBLICATION_NOT_CONNECTED,
    aeron_exclusive_publication_t, aeron_header_t,
)
from lob.transport.idle cimport IdleStrategy, idle, idle_strategy_t, lob_load_flag, lob_store_flag
from lob.transport.publication cimport ExclusivePublication, offer_with_retry, publication_offer
from lob.transport.subscription cimport Subscription, fragment_poller_t, poller_poll

from lob.transport.idle import parse as parse_idle

cdef enum:
    HEADER = 16
    BUCKET_NS = 10
    BUCKETS = 1 << 20          # 10.48 ms at 10 ns resolution
    OVERFLOW_CAPACITY = 1 << 16
    FRAGMENT_LIMIT = 64

STOP_SEQUENCE = UINT64_MAX
MIN_SIZE = HEADER
cdef uint64_t EXTRA_FLAG = 1ULL << 62


cdef inline uint64_t monotonic_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <uint64_t>ts.tv_sec * 1000000000ULL + <uint64_t>ts.tv_nsec


ctypedef struct pong_t:
    aeron_exclusive_publication_t* publication
    idle_strategy_t idle
    int running
    int stop_seen
    uint64_t echoed
    uint64_t extra_replies
    uint64_t back_pressure_events
    uint64_t failed
    uint8_t* reply          # shaped replies: reply_size bytes; NULL: echo each frame unchanged
    size_t reply_size
    double extra_per_ping   # replies beyond the first, on average
    double credit


cdef inline void pong_offer(pong_t* p, const uint8_t* buffer, size_t length) noexcept nogil:
    if offer_with_retry(p.publication, buffer, length, &p.idle, &p.running, False, &p.back_pressure_events) > 0:
        p.echoed += 1
    else:
        p.failed += 1


cdef void pong_on_fragment(void* clientd, const uint8_t* buffer, size_t length, aeron_header_t* header) noexcept nogil:
    cdef pong_t* p = <pong_t*>clientd
    cdef uint64_t sequence = 0
    if length >= HEADER:
        memcpy(&sequence, buffer + 8, 8)
        if sequence == UINT64_MAX:
            p.stop_seen = 1
    if p.reply == NULL or length < HEADER:
        pong_offer(p, buffer, length)
        return
    memcpy(p.reply, buffer, HEADER)
    pong_offer(p, p.reply, p.reply_size)
    if p.stop_seen:
        return
    p.credit += p.extra_per_ping
    sequence |= EXTRA_FLAG
    memcpy(p.reply + 8, &sequence, 8)
    while p.credit >= 1.0:
        p.credit -= 1.0
        pong_offer(p, p.reply, p.reply_size)
        p.extra_replies += 1


def run_pong(Subscription subscription not None, ExclusivePublication publication not None, idle_strategy="yield",
             double idle_timeout=30.0, size_t reply_size=0, double replies_per_ping=1.0):
    """Echo every message until a STOP frame (or `idle_timeout` seconds without any message).

    reply_size > 0: answer with shaped replies instead (see the module's docstring)."""
    if reply_size and not HEADER <= reply_size <= publication.max_message_length:
        raise ValueError(f"reply_size {reply_size} must be in {HEADER}..{publication.max_message_length}")
    if replies_per_ping < 1.0:
        raise ValueError(f"replies_per_ping {replies_per_ping} must be >= 1")
    cdef pong_t state
    cdef IdleStrategy strategy = parse_idle(idle_strategy)
    cdef fragment_poller_t poller
    cdef int work
    cdef uint64_t last_work, now, timeout_ns = <uint64_t>(idle_timeout * 1e9)
    memset(&state, 0, sizeof(state))
    state.publication = publication.publication
    state.idle = strategy.state
    state.running = 1
    if reply_size:
        state.reply = <uint8_t*>calloc(reply_size, 1)
        if state.reply == NULL:
            raise MemoryError()
        state.reply_size = reply_size
        state.extra_per_ping = replies_per_ping - 1.0
    try:
        subscription.set_handler(pong_on_fragment, &state, True, None)
        poller = subscription.poller
        with nogil:
            last_work = monotonic_ns()
            while not state.stop_seen:
                work = poller_poll(&poller, FRAGMENT_LIMIT)
                if work < 0:
                    break
                if work > 0:
                    last_work = monotonic_ns()
                elif monotonic_ns() - last_work > timeout_ns:
                    break
                idle(&state.idle, work)
        subscription.clear_handler()
    finally:
        free(state.reply)
    return {"echoed": state.echoed, "extra_replies": state.extra_replies,
            "back_pressure_events": state.back_pressure_events, "failed": state.failed,
            "stopped": bool(state.stop_seen)}


ctypedef struct ping_t:
    uint64_t extra_replies
    uint64_t reply_bytes
    uint64_t received
    uint64_t measured
    uint64_t out_of_order
    uint64_t next_sequence
    int recording
    uint64_t* buckets
    uint64_t* overflow
    uint64_t overflow_count
    uint64_t max_ns


cdef void ping_on_fragment(void* clientd, const uint8_t* buffer, size_t length, aeron_header_t* header) noexcept nogil:
    cdef ping_t* p = <ping_t*>clientd
    cdef uint64_t sent_at, sequence, rtt
    if length < HEADER:
        return
    memcpy(&sent_at, buffer, 8)
    memcpy(&sequence, buffer + 8, 8)
    if sequence == UINT64_MAX:
        return
    p.reply_bytes += length
    if sequence & EXTRA_FLAG:
        p.extra_replies += 1
        return
    rtt = monotonic_ns() - sent_at
    if sequence != p.next_sequence:
        p.out_of_order += 1
    p.next_sequence = sequence + 1
    p.received += 1
    if not p.recording:
        return
    p.measured += 1
    if rtt > p.max_ns:
        p.max_ns = rtt
    if rtt // BUCKET_NS < BUCKETS:
        p.buckets[rtt // BUCKET_NS] += 1
    elif p.overflow_count < OVERFLOW_CAPACITY:
        p.overflow[p.overflow_count] = rtt
        p.overflow_count += 1
    else:
        p.buckets[BUCKETS - 1] += 1


def run_ping(Subscription subscription not None, ExclusivePublication publication not None, size_t size,
             double seconds, size_t window=256, double warmup=1.0, idle_strategy="yield",
             uint64_t first_sequence=0):
    """Send `size`-byte frames with at most `window` in flight for warmup + seconds, then wait (up to 2 s)
    for the outstanding echoes. Round trips are recorded only after the warm-up.

    Returns counts, the measured interval and the round-trip distribution as `rtt_ns`: [(ns, count)].
    """
    if size < HEADER:
        raise ValueError(f"frames carry a {HEADER}-byte header: size must be >= {HEADER}")
    if size > publication.max_message_length:
        raise ValueError(f"size {size} exceeds the publication's max message length {publication.max_message_length}")
    cdef ping_t state
    cdef IdleStrategy strategy = parse_idle(idle_strategy)
    cdef idle_strategy_t idle_state = strategy.state
    cdef fragment_poller_t poller
    cdef aeron_exclusive_publication_t* pub = publication.publication
    cdef uint8_t* frame = <uint8_t*>calloc(size, 1)
    cdef uint64_t sent = 0, back_pressure = 0, not_connected = 0, failed = 0
    cdef uint64_t start, measure_start = 0, measure_end = 0, now, sequence, sent_at_measure_start = 0
    cdef uint64_t sent_at_measure_end = 0, received_at_measure_end = 0, received_at_measure_start = 0
    cdef uint64_t warmup_ns = <uint64_t>(warmup * 1e9), run_ns = <uint64_t>(seconds * 1e9)
    cdef int64_t result
    cdef int work
    memset(&state, 0, sizeof(state))
    state.next_sequence = first_sequence
    state.buckets = <uint64_t*>calloc(BUCKETS, sizeof(uint64_t))
    state.overflow = <uint64_t*>malloc(OVERFLOW_CAPACITY * sizeof(uint64_t))
    if frame == NULL or state.buckets == NULL or state.overflow == NULL:
        free(frame)
        free(state.buckets)
        free(state.overflow)
        raise MemoryError()
    try:
        subscription.set_handler(ping_on_fragment, &state, True, None)
        poller = subscription.poller
        with nogil:
            start = monotonic_ns()
            now = start
            while now - start < warmup_ns + run_ns:
                work = 0
                if sent - state.received < window:
                    sequence = first_sequence + sent
                    memcpy(frame + 8, &sequence, 8)
                    now = monotonic_ns()
                    memcpy(frame, &now, 8)
                    result = publication_offer(pub, frame, size)
                    if result > 0:
                        sent += 1
                        work += 1
                    elif result == AERON_PUBLICATION_BACK_PRESSURED:
                        back_pressure += 1
                    elif result == AERON_PUBLICATION_NOT_CONNECTED:
                        not_connected += 1
                    elif result != AERON_PUBLICATION_ADMIN_ACTION:
                        failed += 1
                        break
                work += poller_poll(&poller, FRAGMENT_LIMIT)
                now = monotonic_ns()
                if not state.recording and now - start >= warmup_ns:
                    state.recording = 1
                    measure_start = now
                    sent_at_measure_start = sent
                    received_at_measure_start = state.received
                idle(&idle_state, work)
            measure_end = now
            sent_at_measure_end = sent
            received_at_measure_end = state.received
            while state.received < sent and monotonic_ns() - measure_end < 2000000000ULL:
                work = poller_poll(&poller, FRAGMENT_LIMIT)
                idle(&idle_state, work)
        rtt = [(i * BUCKET_NS + BUCKET_NS // 2, state.buckets[i]) for i in range(BUCKETS) if state.buckets[i]]
        rtt.extend((state.overflow[i], 1) for i in range(state.overflow_count))
        return {
            "size": size, "window": window, "sent": sent, "received": state.received,
            "lost": sent - state.received, "out_of_order": state.out_of_order,
            "measured_seconds": (measure_end - measure_start) / 1e9 if state.recording else 0.0,
            "measured_sent": sent_at_measure_end - sent_at_measure_start,
            "measured_received": received_at_measure_end - received_at_measure_start,
            "back_pressure": back_pressure, "not_connected": not_connected, "failed": failed,
            "max_ns": state.max_ns, "rtt_ns": rtt, "next_sequence": first_sequence + sent,
            "extra_replies": state.extra_replies, "reply_bytes": state.reply_bytes,
        }
    finally:
        subscription.clear_handler()
        free(frame)
        free(state.buckets)
        free(state.overflow)


ctypedef struct open_ping_t:
    uint64_t first_sequence
    uint64_t n
    int64_t* recv_ns            # per message: when its first answer arrived (0: not yet)
    uint64_t answered
    uint64_t duplicated
    uint64_t unknown
    uint64_t extra_replies
    uint64_t reply_bytes


cdef void open_ping_on_fragment(void* clientd, const uint8_t* buffer, size_t length,
                                aeron_header_t* header) noexcept nogil:
    cdef open_ping_t* p = <open_ping_t*>clientd
    cdef uint64_t sequence, i
    if length < HEADER:
        p.unknown += 1
        return
    memcpy(&sequence, buffer + 8, 8)
    if sequence == UINT64_MAX:
        return
    p.reply_bytes += length
    if sequence & EXTRA_FLAG:
        p.extra_replies += 1
        return
    i = sequence - p.first_sequence
    if sequence < p.first_sequence or i >= p.n:
        p.unknown += 1
    elif p.recv_ns[i]:
        p.duplicated += 1
    else:
        p.recv_ns[i] = <int64_t>monotonic_ns()
        p.answered += 1


def run_ping_open(Subscription subscription not None, ExclusivePublication publication not None, lengths,
                  double rate, idle_strategy="yield", uint64_t first_sequence=0, double drain_timeout=10.0):
    """Offer frame i (`lengths[i]` bytes, >= 16) at start + i / rate, then wait up to `drain_timeout`
    seconds for the answers still due.

    Returns counts, `start_ns` (the schedule's origin, CLOCK_MONOTONIC), `period_ns` and `recv_ns`, an
    array('q') of each message's first-answer time (0: none): its round trip is
    recv_ns[i] - (start_ns + i * period_ns)."""
    from array import array
    cdef const uint32_t[::1] sizes = array("I", lengths) if len(lengths) else array("I", [HEADER])
    cdef uint64_t n = len(lengths), i = 0, k, largest = HEADER, back_pressure = 0, not_connected = 0, failed = 0
    cdef double period_ns
    if rate <= 0:
        raise ValueError("rate must be positive")
    period_ns = 1e9 / rate
    for k in range(n):
        if sizes[k] < HEADER or sizes[k] > publication.max_message_length:
            raise ValueError(f"frame {k}: {sizes[k]} bytes, must be in {HEADER}..{publication.max_message_length}")
        largest = max(largest, sizes[k])
    recv = array("q", bytes(8 * max(n, 1)))
    cdef int64_t[::1] recv_view = recv
    cdef open_ping_t state
    cdef IdleStrategy strategy = parse_idle(idle_strategy)
    cdef idle_strategy_t idle_state = strategy.state
    cdef fragment_poller_t poller
    cdef aeron_exclusive_publication_t* pub = publication.publication
    cdef uint8_t* frame = <uint8_t*>calloc(largest, 1)
    cdef uint64_t start, now, sequence, last_send = 0, deadline
    cdef int64_t result
    cdef int work
    if frame == NULL:
        raise MemoryError()
    memset(&state, 0, sizeof(state))
    state.first_sequence = first_sequence
    state.n = n
    state.recv_ns = &recv_view[0]
    try:
        subscription.set_handler(open_ping_on_fragment, &state, True, None)
        poller = subscription.poller
        with nogil:
            start = monotonic_ns()
            while i < n:
                work = 0
                now = monotonic_ns()
                while i < n and start + <uint64_t>(i * period_ns) <= now:
                    sequence = first_sequence + i
                    memcpy(frame, &now, 8)
                    memcpy(frame + 8, &sequence, 8)
                    result = publication_offer(pub, frame, sizes[i])
                    if result > 0:
                        i += 1
                        work += 1
                        continue
                    if result == AERON_PUBLICATION_BACK_PRESSURED or result == AERON_PUBLICATION_ADMIN_ACTION:
                        back_pressure += 1
                    elif result == AERON_PUBLICATION_NOT_CONNECTED:
                        not_connected += 1
                    else:
                        failed += 1
                    break
                if failed:
                    break
                work += poller_poll(&poller, FRAGMENT_LIMIT)
                idle(&idle_state, work)
            last_send = monotonic_ns()
            deadline = last_send + <uint64_t>(drain_timeout * 1e9)
            while state.answered < i and monotonic_ns() < deadline:
                work = poller_poll(&poller, FRAGMENT_LIMIT)
                idle(&idle_state, work)
            # trailing extra replies of the last messages
            deadline = monotonic_ns() + 20000000ULL
            while monotonic_ns() < deadline:
                work = poller_poll(&poller, FRAGMENT_LIMIT)
                idle(&idle_state, work)
    finally:
        subscription.clear_handler()
        free(frame)
    return {"sent": i, "answered": state.answered, "lost": i - state.answered, "duplicated": state.duplicated,
            "unknown": state.unknown, "extra_replies": state.extra_replies, "reply_bytes": state.reply_bytes,
            "back_pressure": back_pressure, "not_connected": not_connected, "failed": failed,
            "start_ns": start, "period_ns": period_ns, "last_send_ns": last_send,
            "next_sequence": first_sequence + i, "recv_ns": recv}


def send_stop(ExclusivePublication publication not None, size_t size=HEADER, double timeout=5.0):
    """Offer the STOP frame that ends run_pong; False if it could not be sent in `timeout` seconds."""
    cdef uint8_t* frame = <uint8_t*>calloc(max(size, <size_t>HEADER), 1)
    cdef uint64_t stop = UINT64_MAX
    cdef int64_t result
    cdef uint64_t deadline = monotonic_ns() + <uint64_t>(timeout * 1e9)
    cdef idle_strategy_t state = (<IdleStrategy>parse_idle("yield")).state
    if frame == NULL:
        raise MemoryError()
    memcpy(frame + 8, &stop, 8)
    try:
        with nogil:
            while True:
                result = publication_offer(publication.publication, frame, max(size, <size_t>HEADER))
                if result > 0 or monotonic_ns() > deadline:
                    break
                idle(&state, 0)
    finally:
        free(frame)
    return result > 0
