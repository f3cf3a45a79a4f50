# cython: boundscheck=False, wraparound=False
"""The load generator's measured path in C: offer pre-encoded frames, poll the sessions' execution streams,
time the answers.

`LoadLoop` runs with the GIL released over logged-on sessions (lob.tools.loadgen_session): session k
offers its frames on its own order-entry publication and reads its own private execution stream. Open
loop: frame i is offered once `start + i * 1e9 / rate` has passed (every frame that is due goes out
before the next poll); closed loop: at most `window` frames are unanswered. Between sends it polls every
session's subscription through a C fragment handler that reads templateId, seqNum, clOrdId and liquidity
of the lean execution templates at the offsets the generated codec declares, checks each session's
seqNum runs on without gaps, and records the first answer to each message (CLOCK_MONOTONIC ns) in a
preallocated int64 array. Every loop idles (the configured strategy, `yield` by default) when a duty
cycle found nothing to send and nothing to read.

Answers (one per message; a second is a duplicate): ExecutionReportNew or ExecutionReportRejected for a
new order (a stop order too: its ExecutionReportTriggered comes later), ExecutionReportCanceled or
OrderCancelReject for a cancel, MessageReject (throttled, ...) for either. Trades (an iceberg's slices
are fills like any other), triggered stops, self-trade prevention cancels (reason SelfTradePrevented) and
restatements (DecrementAndCancel's ExecutionReportReplaced of an order of ours), other unsolicited
cancels, expiries, heartbeats (Sequence) and session frames are counted only.

The Python side (lob.tools.loadgen) turns the counts and arrays into the report and the HdrHistogram
after the run; nothing per message crosses into Python.
"""
from cpython.exc cimport PyErr_CheckSignals
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, qsort
from libc.string cimport memcpy, memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from lob.sbe.messages cimport (
    HEADER_LENGTH, LiquidityIndicator_Removed, messageHeader_templateId_OFFSET,
    EstablishmentAck_TEMPLATE_ID, EstablishmentReject_TEMPLATE_ID,
    ExecutionReportCanceled_BLOCK_LENGTH, ExecutionReportCanceled_TEMPLATE_ID, ExecutionReportCanceled_clOrdId_OFFSET,
    ExecutionReportCanceled_reason_OFFSET, ExecutionReportCanceled_seqNum_OFFSET,
    ExecutionReportExpired_BLOCK_LENGTH, ExecutionReportExpired_TEMPLATE_ID, ExecutionReportExpired_seqNum_OFFSET,
    ExecutionReportNew_BLOCK_LENGTH, ExecutionReportNew_TEMPLATE_ID, ExecutionReportNew_clOrdId_OFFSET,
    ExecutionReportNew_seqNum_OFFSET,
    ExecutionReportRejected_BLOCK_LENGTH, ExecutionReportRejected_TEMPLATE_ID, ExecutionReportRejected_clOrdId_OFFSET,
    ExecutionReportRejected_seqNum_OFFSET,
    ExecutionReportReplaced_BLOCK_LENGTH, ExecutionReportReplaced_TEMPLATE_ID, ExecutionReportReplaced_seqNum_OFFSET,
    ExecutionReportReplaced_clOrdId_OFFSET, ExecutionReportReplaced_origClOrdId_OFFSET,
    ExecutionReportTriggered_BLOCK_LENGTH, ExecutionReportTriggered_TEMPLATE_ID, ExecutionReportTriggered_clOrdId_OFFSET,
    ExecutionReportTriggered_seqNum_OFFSET, Reason_SelfTradePrevented,
    ExecutionReportTrade_BLOCK_LENGTH, ExecutionReportTrade_TEMPLATE_ID, ExecutionReportTrade_liquidity_OFFSET,
    ExecutionReportTrade_seqNum_OFFSET,
    MessageReject_BLOCK_LENGTH, MessageReject_TEMPLATE_ID, MessageReject_refClOrdId_OFFSET,
    MessageReject_seqNum_OFFSET,
    NegotiationReject_TEMPLATE_ID, NegotiationResponse_TEMPLATE_ID, NotApplied_TEMPLATE_ID,
    OrderCancelReject_BLOCK_LENGTH, OrderCancelReject_TEMPLATE_ID, OrderCancelReject_clOrdId_OFFSET,
    OrderCancelReject_seqNum_OFFSET,
    OrderMassCancelReport_BLOCK_LENGTH, OrderMassCancelReport_TEMPLATE_ID, OrderMassCancelReport_clOrdId_OFFSET,
    OrderMassCancelReport_seqNum_OFFSET,
    Retransmission_TEMPLATE_ID,
    Sequence_BLOCK_LENGTH, Sequence_TEMPLATE_ID, Sequence_nextSeqNo_OFFSET,
    Terminate_BLOCK_LENGTH, Terminate_TEMPLATE_ID, Terminate_reason_OFFSET,
)
from lob.transport.aeronc cimport (
    AERON_PUBLICATION_ADMIN_ACTION, AERON_PUBLICATION_BACK_PRESSURED, AERON_PUBLICATION_NOT_CONNECTED,
    aeron_exclusive_publication_t, aeron_header_t,
)
from lob.transport.idle cimport IdleStrategy, idle, idle_strategy_t
from lob.transport.publication cimport ExclusivePublication, publication_offer
from lob.transport.subscription cimport Subscription, fragment_poller_t, poller_poll

from lob.transport.idle import parse as parse_idle

cdef extern from *:
    int __builtin_clzll(unsigned long long x) noexcept nogil

# Message kinds, as lob.tools.workload spells them.
cdef enum:
    KIND_NEW = 1
    KIND_CANCEL = 2
    TICK_NS = 100000000          # how often the loop takes the GIL: progress and Ctrl-C
    QUIET_NS = 50000000          # after the last answer, the streams must be quiet this long (trailing fills)
    AERON_DATA_HEADER = 32       # Aeron's data frame header, and the alignment of frames in its log
    AERON_FRAME_ALIGNMENT = 32

# Why a phase ended before its work was done.
cdef enum:
    STOP_NONE = 0
    STOP_INTERRUPTED = 1
    STOP_PUBLICATION = 2
    STOP_POLL = 3

ctypedef struct counts_t:
    uint64_t frames                 # every message received on the sessions' execution streams
    uint64_t frame_bytes            # their SBE bytes
    uint64_t framed_bytes           # the same with Aeron's framing: 32-byte header, 32-byte alignment
    uint64_t answered
    uint64_t acked
    uint64_t rejected
    uint64_t duplicated
    uint64_t trade_reports
    uint64_t fills                  # trade reports with liquidity Removed: one per fill we took
    uint64_t unsolicited_cancels    # cancels and expiries of our orders that no request of ours asked for
    uint64_t triggered              # stop orders of ours whose stop price was reached
    uint64_t stp_cancels            # orders of ours canceled by self-trade prevention
    uint64_t stp_restated           # orders of ours restated (quantity down) by self-trade prevention
    uint64_t message_rejects
    uint64_t heartbeats             # Sequence from the engine
    uint64_t session_frames         # other session-layer frames during the run (NotApplied, ...)
    uint64_t terminations           # Terminate from the engine
    uint64_t last_terminate_reason
    uint64_t unknown
    uint64_t gaps                   # seqNum not the session's next one
    uint64_t mass_cancel_reports
    uint64_t back_pressure          # offers refused: BACK_PRESSURED or ADMIN_ACTION
    uint64_t not_connected          # offers refused: NOT_CONNECTED
    int64_t last_recv_ns
    int64_t publication_error

cdef struct loop_t      # defined below; a session points back to its loop

cdef struct session_t:
    loop_t* loop
    uint32_t index
    uint64_t next_seq               # the engine's next seqNum to this session; 0 = not known
    aeron_exclusive_publication_t* publication
    fragment_poller_t poller

cdef struct loop_t:
    const uint8_t* buffer
    const uint64_t* offsets
    const uint32_t* lengths
    const uint8_t* kinds
    const uint16_t* session_of      # NULL with one session
    uint64_t n
    uint64_t base                   # clOrdId of message 0
    session_t* sessions
    uint32_t session_count
    uint8_t* responses              # first responses seen per message (saturating at 255)
    int64_t* recv_ns                # when the first response arrived (0: none yet)
    int64_t* send_ns                # closed loop: when the message was offered
    idle_strategy_t idle
    size_t fragment_limit
    counts_t c


cdef inline int64_t monotonic_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000LL + <int64_t>ts.tv_nsec


# SBE is little-endian, and so is every machine this runs on (checked at import below).
cdef inline uint16_t u16(const uint8_t* p) noexcept nogil:
    cdef uint16_t v
    memcpy(&v, p, 2)
    return v

cdef inline uint64_t u64(const uint8_t* p) noexcept nogil:
    cdef uint64_t v
    memcpy(&v, p, 8)
    return v


cdef inline void check_sequence(session_t* k, uint64_t seq) noexcept nogil:
    if seq == 0:                    # MessageReject to a sender without an established session
        return
    if k.next_seq and seq != k.next_seq:
        k.loop.c.gaps += 1
    k.next_seq = seq + 1


cdef inline int64_t message_index(session_t* k, uint64_t cl) noexcept nogil:
    """The index of this session's message with client order id `cl`, -1 if there is none."""
    cdef loop_t* s = k.loop
    cdef uint64_t i
    if cl < s.base or cl - s.base >= s.n:
        return -1
    i = cl - s.base
    if s.session_of != NULL and s.session_of[i] != k.index:
        return -1
    return <int64_t>i


cdef inline void answer(loop_t* s, int64_t i, bint positive) noexcept nogil:
    cdef uint8_t count = s.responses[i]
    cdef int64_t now
    if count:
        s.c.duplicated += 1
        if count < 255:
            s.responses[i] = count + 1
        return
    now = monotonic_ns()
    s.recv_ns[i] = now
    s.responses[i] = 1
    s.c.answered += 1
    s.c.last_recv_ns = now
    if positive:
        s.c.acked += 1
    else:
        s.c.rejected += 1


cdef inline void answer_if(session_t* k, uint64_t cl, int kind, bint positive) noexcept nogil:
    """Message `cl` of this session is answered, if it is one of ours of `kind` (0: any)."""
    cdef int64_t i = message_index(k, cl)
    if i < 0 or (kind and k.loop.kinds[i] != kind):
        k.loop.c.unknown += 1
        return
    answer(k.loop, i, positive)


cdef void on_frame(session_t* k, const uint8_t* buffer, size_t length) noexcept nogil:
    """One whole message from session k's execution stream."""
    cdef loop_t* s = k.loop
    cdef const uint8_t* body = buffer + HEADER_LENGTH
    cdef size_t block = length - HEADER_LENGTH if length >= HEADER_LENGTH else 0
    cdef uint16_t template_id
    cdef uint64_t cl
    cdef int64_t i
    s.c.frames += 1
    s.c.frame_bytes += length
    s.c.framed_bytes += ((AERON_DATA_HEADER + length + AERON_FRAME_ALIGNMENT - 1)
                         & ~(<uint64_t>AERON_FRAME_ALIGNMENT - 1))
    if length < HEADER_LENGTH:
        s.c.unknown += 1
        return
    template_id = u16(buffer + messageHeader_templateId_OFFSET)
    if template_id == ExecutionReportNew_TEMPLATE_ID and block >= ExecutionReportNew_BLOCK_LENGTH:
        check_sequence(k, u64(body + ExecutionReportNew_seqNum_OFFSET))
        answer_if(k, u64(body + ExecutionReportNew_clOrdId_OFFSET), KIND_NEW, True)
    elif template_id == ExecutionReportTrade_TEMPLATE_ID and block >= ExecutionReportTrade_BLOCK_LENGTH:
        check_sequence(k, u64(body + ExecutionReportTrade_seqNum_OFFSET))
        s.c.trade_reports += 1
        if body[ExecutionReportTrade_liquidity_OFFSET] == LiquidityIndicator_Removed:
            s.c.fills += 1
    elif template_id == ExecutionReportCanceled_TEMPLATE_ID and block >= ExecutionReportCanceled_BLOCK_LENGTH:
        check_sequence(k, u64(body + ExecutionReportCanceled_seqNum_OFFSET))
        # Answering a cancel request, clOrdId is the request's; canceled by the engine (IOC remainder,
        # mass cancel, cancel-on-disconnect), it is the order's own.
        i = message_index(k, u64(body + ExecutionReportCanceled_clOrdId_OFFSET))
        if i < 0:
            s.c.unknown += 1
        elif s.kinds[i] == KIND_CANCEL:
            answer(s, i, True)
        elif body[ExecutionReportCanceled_reason_OFFSET] == Reason_SelfTradePrevented:
            s.c.stp_cancels += 1
        else:
            s.c.unsolicited_cancels += 1
    elif template_id == ExecutionReportRejected_TEMPLATE_ID and block >= ExecutionReportRejected_BLOCK_LENGTH:
        check_sequence(k, u64(body + ExecutionReportRejected_seqNum_OFFSET))
        answer_if(k, u64(body + ExecutionReportRejected_clOrdId_OFFSET), KIND_NEW, False)
    elif template_id == OrderCancelReject_TEMPLATE_ID and block >= OrderCancelReject_BLOCK_LENGTH:
        check_sequence(k, u64(body + OrderCancelReject_seqNum_OFFSET))
        answer_if(k, u64(body + OrderCancelReject_clOrdId_OFFSET), KIND_CANCEL, False)
    elif template_id == MessageReject_TEMPLATE_ID and block >= MessageReject_BLOCK_LENGTH:
        check_sequence(k, u64(body + MessageReject_seqNum_OFFSET))
        s.c.message_rejects += 1
        cl = u64(body + MessageReject_refClOrdId_OFFSET)
        if message_index(k, cl) >= 0:
            answer_if(k, cl, 0, False)
    elif template_id == OrderMassCancelReport_TEMPLATE_ID and block >= OrderMassCancelReport_BLOCK_LENGTH:
        check_sequence(k, u64(body + OrderMassCancelReport_seqNum_OFFSET))
        # The mass cancel at the end uses clOrdId base + n + session index.
        if u64(body + OrderMassCancelReport_clOrdId_OFFSET) == s.base + s.n + k.index:
            s.c.mass_cancel_reports += 1
        else:
            s.c.unknown += 1
    elif template_id == ExecutionReportExpired_TEMPLATE_ID and block >= ExecutionReportExpired_BLOCK_LENGTH:
        check_sequence(k, u64(body + ExecutionReportExpired_seqNum_OFFSET))
        s.c.unsolicited_cancels += 1
    elif template_id == ExecutionReportTriggered_TEMPLATE_ID and block >= ExecutionReportTriggered_BLOCK_LENGTH:
        check_sequence(k, u64(body + ExecutionReportTriggered_seqNum_OFFSET))
        i = message_index(k, u64(body + ExecutionReportTriggered_clOrdId_OFFSET))
        if i >= 0 and s.kinds[i] == KIND_NEW:
            s.c.triggered += 1
        else:
            s.c.unknown += 1
    elif template_id == ExecutionReportReplaced_TEMPLATE_ID and block >= ExecutionReportReplaced_BLOCK_LENGTH:
        check_sequence(k, u64(body + ExecutionReportReplaced_seqNum_OFFSET))
        # The workload never replaces: only self-trade prevention restates an order (clOrdId unchanged).
        cl = u64(body + ExecutionReportReplaced_clOrdId_OFFSET)
        i = message_index(k, cl)
        if i >= 0 and s.kinds[i] == KIND_NEW and cl == u64(body + ExecutionReportReplaced_origClOrdId_OFFSET):
            s.c.stp_restated += 1
        else:
            s.c.unknown += 1
    elif template_id == Sequence_TEMPLATE_ID and block >= Sequence_BLOCK_LENGTH:
        # A heartbeat carries the engine's next seqNum: a report lost at the end of a burst shows here.
        s.c.heartbeats += 1
        cl = u64(body + Sequence_nextSeqNo_OFFSET)
        if k.next_seq and cl != k.next_seq:
            s.c.gaps += 1
        k.next_seq = cl
    elif template_id == Terminate_TEMPLATE_ID and block >= Terminate_BLOCK_LENGTH:
        s.c.terminations += 1
        s.c.last_terminate_reason = body[Terminate_reason_OFFSET]
    elif (template_id == NotApplied_TEMPLATE_ID or template_id == Retransmission_TEMPLATE_ID
          or template_id == NegotiationResponse_TEMPLATE_ID or template_id == NegotiationReject_TEMPLATE_ID
          or template_id == EstablishmentAck_TEMPLATE_ID or template_id == EstablishmentReject_TEMPLATE_ID):
        s.c.session_frames += 1
    else:
        s.c.unknown += 1


cdef void on_fragment(void* clientd, const uint8_t* buffer, size_t length, aeron_header_t* header) noexcept nogil:
    on_frame(<session_t*>clientd, buffer, length)


cdef int poll_all(loop_t* s) noexcept nogil:
    """Poll every session's stream once: fragments read, or -1 when a poll failed."""
    cdef uint32_t k
    cdef int taken, work = 0
    for k in range(s.session_count):
        taken = poller_poll(&s.sessions[k].poller, s.fragment_limit)
        if taken < 0:
            return -1
        work += taken
    return work


cdef inline int offer_frame(loop_t* s, uint64_t i) noexcept nogil:
    """1 when frame i was taken, 0 when it must be retried later, -1 on a publication failure."""
    cdef uint32_t k = s.session_of[i] if s.session_of != NULL else 0
    cdef int64_t result = publication_offer(s.sessions[k].publication, s.buffer + s.offsets[i], s.lengths[i])
    if result > 0:
        return 1
    if result == AERON_PUBLICATION_BACK_PRESSURED or result == AERON_PUBLICATION_ADMIN_ACTION:
        s.c.back_pressure += 1
        return 0
    if result == AERON_PUBLICATION_NOT_CONNECTED:
        s.c.not_connected += 1
        return 0
    s.c.publication_error = result
    return -1


cdef int tick(object progress, uint64_t answered) except -1 with gil:
    """Between duty cycles, every TICK_NS: report progress, and let Ctrl-C raise (-1)."""
    if progress is not None:
        progress(answered)
    return PyErr_CheckSignals()


ctypedef struct phase_t:
    int64_t start_ns        # open loop: the schedule's origin
    int64_t first_send_ns
    int64_t last_send_ns
    uint64_t sent
    int stopped_by


cdef inline int poll_idle_tick(loop_t* s, int work, int64_t now, int64_t* next_tick, phase_t* p,
                               object progress) noexcept nogil:
    """The rest of a send loop's duty cycle: poll the streams, idle if nothing happened, report progress
    every TICK_NS. -1 (p.stopped_by set) when the loop must stop."""
    cdef int taken = poll_all(s)
    if taken < 0:
        p.stopped_by = STOP_POLL
        return -1
    idle(&s.idle, work + taken)
    if now >= next_tick[0]:
        next_tick[0] = now + TICK_NS
        if tick(progress, s.c.answered) < 0:
            p.stopped_by = STOP_INTERRUPTED
            return -1
    return 0


cdef int send_open(loop_t* s, double period_ns, phase_t* p, object progress) noexcept nogil:
    cdef uint64_t i = 0
    cdef int64_t now, next_tick
    cdef int work, taken
    now = monotonic_ns()
    p.start_ns = p.first_send_ns = now
    next_tick = now + TICK_NS
    while i < s.n:
        work = 0
        now = monotonic_ns()
        while i < s.n and p.start_ns + <int64_t>(i * period_ns) <= now:
            taken = offer_frame(s, i)
            if taken <= 0:
                if taken < 0:
                    p.stopped_by = STOP_PUBLICATION
                    p.sent = i
                    return -1
                break
            s.send_ns[i] = now
            i += 1
            work += 1
        if poll_idle_tick(s, work, now, &next_tick, p, progress) < 0:
            p.sent = i
            return -1
    p.last_send_ns = monotonic_ns()
    p.sent = i
    return 0


cdef int send_closed(loop_t* s, uint64_t window, phase_t* p, object progress) noexcept nogil:
    cdef uint64_t i = 0
    cdef int64_t now, next_tick
    cdef int work, taken
    now = monotonic_ns()
    p.start_ns = p.first_send_ns = now
    next_tick = now + TICK_NS
    while i < s.n:
        work = 0
        while i < s.n and i - s.c.answered < window:
            now = monotonic_ns()
            taken = offer_frame(s, i)
            if taken <= 0:
                if taken < 0:
                    p.stopped_by = STOP_PUBLICATION
                    p.sent = i
                    return -1
                break
            s.send_ns[i] = now
            i += 1
            work += 1
        if poll_idle_tick(s, work, monotonic_ns(), &next_tick, p, progress) < 0:
            p.sent = i
            return -1
    p.last_send_ns = monotonic_ns()
    p.sent = i
    return 0


cdef int drain(loop_t* s, int64_t timeout_ns, phase_t* p, object progress) noexcept nogil:
    """Poll until every message is answered and the streams have been quiet for QUIET_NS (or timeout)."""
    cdef int64_t now = monotonic_ns()
    cdef int64_t deadline = now + timeout_ns, quiet_since = 0, next_tick = now + TICK_NS
    cdef int work
    while now < deadline:
        work = poll_all(s)
        if work < 0:
            p.stopped_by = STOP_POLL
            return -1
        now = monotonic_ns()
        if work:
            quiet_since = 0
            idle(&s.idle, work)
            continue
        if s.c.answered >= p.sent:
            if quiet_since == 0:
                quiet_since = now
            elif now - quiet_since > QUIET_NS:
                break
        if now >= next_tick:
            next_tick = now + TICK_NS
            if tick(progress, s.c.answered) < 0:
                p.stopped_by = STOP_INTERRUPTED
                return -1
        idle(&s.idle, 0)
    return 0


cdef int _compare_i64(const void* a, const void* b) noexcept nogil:
    cdef int64_t x = (<const int64_t*>a)[0], y = (<const int64_t*>b)[0]
    return (x > y) - (x < y)


cdef class LoadLoop:
    """One workload over logged-on sessions: session k sends on `publications[k]` and reads its execution
    stream on `subscriptions[k]`; `next_seqs[k]` is the engine's next seqNum to it (EstablishmentAck).

    `run(rate=...)` or `run(window=...)` once, then `mass_cancel(frames)` if wanted; the counts are
    in `counts()`, per-message times in `recv_ns` / `send_ns` (array('q'); 0 = no response / not sent;
    open loop: send_ns is when the duty cycle that offered the message read the clock).
    Without publications and subscriptions (both None) the loop cannot run, but `feed(k, frame)` hands
    it frames as if session k had received them: the receive path alone, for tests.
    """

    cdef loop_t s
    cdef readonly list subscriptions
    cdef readonly list publications
    cdef readonly object recv_ns
    cdef readonly object send_ns
    cdef readonly object responses
    cdef readonly IdleStrategy idle_strategy
    cdef object _keep          # the buffers the raw pointers point into
    cdef phase_t phase
    cdef bint ran
    cdef bint installed

    def __cinit__(self):
        memset(&self.s, 0, sizeof(loop_t))
        memset(&self.phase, 0, sizeof(phase_t))

    def __init__(self, encoded, publications, subscriptions, next_seqs, *, idle="yield", size_t fragment_limit=256):
        """`encoded`: a lob.tools.workload.EncodedWorkload with one session per entry of `next_seqs`."""
        from array import array

        cdef const uint8_t[::1] buffer
        cdef const uint64_t[::1] offsets
        cdef const uint32_t[::1] lengths
        cdef const uint8_t[::1] kinds
        cdef const uint16_t[::1] session_of
        cdef ExclusivePublication publication
        cdef uint64_t n = len(encoded)
        cdef Py_ssize_t k
        workload = encoded.workload
        sessions = len(next_seqs)
        detached = publications is None and subscriptions is None
        if sessions < 1:
            raise ValueError("at least one session")
        if not detached and (publications is None or subscriptions is None
                             or len(publications) != sessions or len(subscriptions) != sessions):
            raise ValueError("one publication, one subscription and one next seqNum per session")
        if workload.spec.sessions != sessions:
            raise ValueError(f"the workload has {workload.spec.sessions} sessions, {sessions} given")
        if fragment_limit < 1:
            raise ValueError("fragment_limit must be positive")
        self.publications = list(publications) if not detached else None
        self.subscriptions = list(subscriptions) if not detached else None
        self.idle_strategy = parse_idle(idle)
        # Views with at least one element, so taking &view[0] is valid for an empty workload.
        kind_bytes = bytes(workload.kind) or b"\0"
        session_array = workload.session if len(workload.session) else array("H", [0])
        offset_array = encoded.offsets if n else array("Q", [0])
        length_array = encoded.lengths if n else array("I", [0])
        buffer_bytes = encoded.buffer or b"\0"
        buffer, offsets, lengths = buffer_bytes, offset_array, length_array
        kinds, session_of = kind_bytes, session_array
        self._keep = (buffer_bytes, offset_array, length_array, kind_bytes, session_array)
        size = n if n else 1
        self.responses = bytearray(size)
        self.recv_ns = array("q", bytes(8 * size))
        self.send_ns = array("q", bytes(8 * size))
        cdef uint8_t[::1] responses = self.responses
        cdef int64_t[::1] recv = self.recv_ns
        cdef int64_t[::1] send = self.send_ns

        self.s.sessions = <session_t*>calloc(sessions, sizeof(session_t))
        if self.s.sessions == NULL:
            raise MemoryError()
        self.s.session_count = sessions
        for k in range(sessions):
            self.s.sessions[k].loop = &self.s
            self.s.sessions[k].index = k
            self.s.sessions[k].next_seq = next_seqs[k]
            if not detached:
                publication = publications[k]
                if publication.publication == NULL:
                    raise RuntimeError("a publication is closed")
                self.s.sessions[k].publication = publication.publication
        self.s.buffer = &buffer[0]
        self.s.offsets = &offsets[0]
        self.s.lengths = &lengths[0]
        self.s.kinds = &kinds[0]
        self.s.session_of = &session_of[0] if sessions > 1 else NULL
        self.s.n = n
        self.s.base = workload.spec.first_cl_ord_id
        self.s.responses = &responses[0]
        self.s.recv_ns = &recv[0]
        self.s.send_ns = &send[0]
        self.s.idle = self.idle_strategy.state
        self.s.fragment_limit = fragment_limit
        for k in range(<Py_ssize_t>n):
            if offsets[k] + lengths[k] > <uint64_t>len(encoded.buffer):
                raise ValueError(f"frame {k} of the encoded workload lies past its buffer")

    cdef int _install(self) except -1:
        cdef Subscription subscription
        cdef Py_ssize_t k
        if self.subscriptions is None:
            raise RuntimeError("this LoadLoop has no publications and subscriptions (feed() only)")
        if not self.installed:
            for k in range(self.s.session_count):
                subscription = self.subscriptions[k]
                subscription.set_handler(on_fragment, &self.s.sessions[k], True, self)
                self.s.sessions[k].poller = subscription.poller
            self.installed = True
        return 0

    def _uninstall(self):
        if self.installed:
            for subscription in self.subscriptions:
                subscription.clear_handler()
            self.installed = False

    def feed(self, Py_ssize_t session, frame):
        """Hand one message to the receive path as if `session` had read it from its stream."""
        cdef const uint8_t[::1] view = bytes(frame) or b"\0"
        if not 0 <= session < self.s.session_count:
            raise IndexError("no such session")
        on_frame(&self.s.sessions[session], &view[0], len(frame))

    def run(self, rate=None, window=None, double drain_timeout=10.0, progress=None):
        """Send the whole workload open-loop at `rate` msg/s or closed-loop with `window` in flight, then
        drain. `progress(answered)` is called about ten times a second. Returns `phase_dict()`."""
        cdef double period_ns = 0.0
        cdef uint64_t window_ = 0
        cdef int rc
        cdef int64_t drain_ns = <int64_t>(drain_timeout * 1e9)
        if (rate is None) == (window is None):
            raise ValueError("give exactly one of rate (open loop) or window (closed loop)")
        if self.ran:
            raise RuntimeError("a LoadLoop runs its workload once")
        if rate is not None:
            if rate <= 0:
                raise ValueError("rate must be positive")
            period_ns = 1e9 / rate
        else:
            if window < 1:
                raise ValueError("window must be positive")
            window_ = window
        self._install()
        self.ran = True
        try:
            with nogil:
                if period_ns > 0:
                    rc = send_open(&self.s, period_ns, &self.phase, progress)
                else:
                    rc = send_closed(&self.s, window_, &self.phase, progress)
                if rc == 0:
                    rc = drain(&self.s, drain_ns, &self.phase, progress)
            self._raise_if_stopped()
        finally:
            self._uninstall()
        return self.phase_dict()

    def mass_cancel(self, frames, double timeout=10.0):
        """Offer frames[k] on session k (an OrderMassCancelRequest with clOrdId base + n + k), then poll
        until every session's OrderMassCancelReport arrived or `timeout` passed. True when all did."""
        cdef const uint8_t[::1] frame
        cdef aeron_exclusive_publication_t* pub
        cdef int64_t deadline, result
        cdef int work
        cdef Py_ssize_t k
        if len(frames) != self.s.session_count:
            raise ValueError("one frame per session")
        self._install()
        try:
            for k in range(self.s.session_count):
                frame = frames[k]
                pub = self.s.sessions[k].publication
                with nogil:
                    deadline = monotonic_ns() + <int64_t>(timeout * 1e9)
                    while True:
                        result = publication_offer(pub, &frame[0], frame.shape[0])
                        if result > 0 or monotonic_ns() > deadline:
                            break
                        work = poll_all(&self.s)
                        idle(&self.s.idle, work if work > 0 else 0)
                if result <= 0:
                    return False
            with nogil:
                deadline = monotonic_ns() + <int64_t>(timeout * 1e9)
                while self.s.c.mass_cancel_reports < self.s.session_count and monotonic_ns() < deadline:
                    work = poll_all(&self.s)
                    if work < 0:
                        break
                    idle(&self.s.idle, work)
        finally:
            self._uninstall()
        return self.s.c.mass_cancel_reports >= self.s.session_count

    def _raise_if_stopped(self):
        stopped = self.phase.stopped_by
        if stopped == STOP_INTERRUPTED:
            raise KeyboardInterrupt
        if stopped == STOP_PUBLICATION:
            from lob.transport.publication import result_name
            raise RuntimeError(f"order entry publication failed: {result_name(self.s.c.publication_error)}")
        if stopped == STOP_POLL:
            from lob.transport.aeron import errmsg
            raise RuntimeError(f"polling execution reports failed: {errmsg()}")

    def phase_dict(self):
        """Times (CLOCK_MONOTONIC ns) of the last run: start (the open-loop schedule's origin), first and
        last send, last first-response; and how many frames were sent."""
        return {"start_ns": self.phase.start_ns, "first_send_ns": self.phase.first_send_ns,
                "last_send_ns": self.phase.last_send_ns, "last_recv_ns": self.s.c.last_recv_ns,
                "sent": self.phase.sent}

    def next_seqs(self):
        """The engine's next seqNum to each session, as far as the loop has seen."""
        return [self.s.sessions[k].next_seq for k in range(self.s.session_count)]

    def counts(self):
        cdef counts_t* c = &self.s.c
        return {"answered": c.answered, "acked": c.acked, "rejected": c.rejected, "duplicated": c.duplicated,
                "trade_reports": c.trade_reports, "trades": c.fills, "unsolicited_cancels": c.unsolicited_cancels,
                "triggered": c.triggered, "stp_cancels": c.stp_cancels, "stp_restated": c.stp_restated,
                "message_rejects": c.message_rejects, "heartbeats": c.heartbeats,
                "session_frames": c.session_frames, "terminations": c.terminations,
                "last_terminate_reason": c.last_terminate_reason, "unknown_reports": c.unknown,
                "exec_seq_gaps": c.gaps, "mass_cancel_reports": c.mass_cancel_reports,
                "back_pressure": c.back_pressure, "not_connected": c.not_connected,
                "reports_received": c.frames, "report_bytes": c.frame_bytes, "report_framed_bytes": c.framed_bytes}

    def latency_counts(self, double period_ns=0.0, int64_t start_ns=0, int sub_bucket_half_count_magnitude=10,
                       int unit_magnitude=0):
        """Round trips of every answered message as [(value_ns, count)], values rounded down to the
        lowest equivalent value of an HdrHistogram with these parameters (recording them with their
        counts gives the same histogram as recording each one). Open loop (period_ns > 0): from
        start_ns + i * period_ns; closed loop: from send_ns[i]. A round trip <= 0 counts as 1 ns."""
        cdef uint64_t n = self.s.n, i, m = 0, j
        cdef int64_t* values = <int64_t*>malloc((n if n else 1) * sizeof(int64_t))
        cdef int64_t v, sent
        cdef uint64_t mask = (1ULL << (sub_bucket_half_count_magnitude + 1)) - 1
        cdef int shift
        if values == NULL:
            raise MemoryError()
        try:
            with nogil:
                for i in range(n):
                    if self.s.recv_ns[i] == 0:
                        continue
                    sent = start_ns + <int64_t>(i * period_ns) if period_ns > 0 else self.s.send_ns[i]
                    v = self.s.recv_ns[i] - sent
                    if v < 1:
                        v = 1
                    shift = (64 - __builtin_clzll(<uint64_t>v | (mask << unit_magnitude))) - (
                        sub_bucket_half_count_magnitude + 1)
                    values[m] = (v >> shift) << shift
                    m += 1
                qsort(values, m, sizeof(int64_t), _compare_i64)
            out = []
            i = 0
            while i < m:
                j = i
                while j < m and values[j] == values[i]:
                    j += 1
                out.append((values[i], j - i))
                i = j
            return out
        finally:
            free(values)

    def round_trips(self, double period_ns=0.0, int64_t start_ns=0):
        """Each message's round trip in ns, in sending order, as an array('q'); -1 where unanswered.
        Open loop (period_ns > 0): from start_ns + i * period_ns; closed loop: from send_ns[i]."""
        from array import array
        cdef uint64_t n = self.s.n, i
        out = array("q", bytes(8 * n))
        cdef int64_t[::1] view = out
        with nogil:
            for i in range(n):
                if self.s.recv_ns[i] == 0:
                    view[i] = -1
                else:
                    view[i] = self.s.recv_ns[i] - (start_ns + <int64_t>(i * period_ns) if period_ns > 0
                                                   else self.s.send_ns[i])
        return out

    def __dealloc__(self):
        free(self.s.sessions)


import sys as _sys
if _sys.byteorder != "little":
    raise ImportError("lob.tools.loadgen_loop reads SBE (little-endian) fields natively: little-endian hosts only")
