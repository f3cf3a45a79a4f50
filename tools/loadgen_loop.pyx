# cython: boundscheck=False, wraparound=False
"""The load generator's measured path in C: offer pre-encoded frames, poll execution reports, time them.

`LoadLoop` runs with the GIL released. Open loop: frame i is offered once `start + i * 1e9 / rate`
has passed (every frame that is due goes out before the next poll); closed loop: at most `window`
frames are unanswered. Between sends it polls the execution-report subscription through a C fragment
handler that reads templateId, seqNum, sessionId, clOrdId, execType and liquidity at the offsets the
generated codec declares, and records the first response to each message (CLOCK_MONOTONIC ns) in a
preallocated int64 array. Every loop idles (the configured strategy, `yield` by default) when a duty
cycle found nothing to send and nothing to read.

The Python side (lob.tools.loadgen) turns the counts and arrays into the report and the HdrHistogram
after the run; nothing per message crosses into Python. Every first response follows the rules of
loadgen's module docstring: ExecutionReport New/Rejected answers a new order, ExecutionReport Canceled
or OrderCancelReject answers a cancel; a second one is a duplicate.
"""
from cpython.exc cimport PyErr_CheckSignals
from libc.stdint cimport INT64_MAX, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, qsort
from libc.string cimport memcpy, memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from lob.sbe.messages cimport (
    HEADER_LENGTH, ExecutionReportCanceled_TEMPLATE_ID, ExecutionReportNew_TEMPLATE_ID,
    ExecutionReportRejected_TEMPLATE_ID, ExecutionReportTrade_TEMPLATE_ID, ExecutionReportTrade_liquidity_OFFSET,
    LiquidityIndicator_Removed, MessageReject_TEMPLATE_ID, OrderCancelReject_TEMPLATE_ID,
    OrderMassCancelReport_TEMPLATE_ID, messageHeader_templateId_OFFSET,
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
    QUIET_NS = 50000000          # after the last answer, the stream must be quiet this long (trailing fills)

# Why a phase ended before its work was done.
cdef enum:
    STOP_NONE = 0
    STOP_INTERRUPTED = 1
    STOP_PUBLICATION = 2
    STOP_POLL = 3

ctypedef struct counts_t:
    uint64_t frames                 # every execution-stream message received (any session)
    uint64_t frame_bytes
    uint64_t answered
    uint64_t acked
    uint64_t rejected
    uint64_t duplicated
    uint64_t trade_reports
    uint64_t fills                  # trade reports with liquidity Removed: one per fill we took
    uint64_t unsolicited_cancels
    uint64_t message_rejects
    uint64_t unknown
    uint64_t gaps
    uint64_t mass_cancel_reports
    uint64_t back_pressure          # offers refused: BACK_PRESSURED or ADMIN_ACTION
    uint64_t not_connected          # offers refused: NOT_CONNECTED
    uint64_t last_seq
    int64_t last_recv_ns
    int64_t publication_error

ctypedef struct loop_t:
    const uint8_t* buffer
    const uint64_t* offsets
    const uint32_t* lengths
    const uint8_t* kinds
    const uint16_t* session_of
    uint64_t n
    uint64_t base                   # clOrdId of message 0
    aeron_exclusive_publication_t** publications
    uint32_t* session_ids           # ours, as the engine writes them into reports
    uint32_t sessions
    uint8_t* responses              # first responses seen per message (saturating at 255)
    int64_t* recv_ns                # when the first response arrived (0: none yet)
    int64_t* send_ns                # closed loop: when the message was offered
    fragment_poller_t poller
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

cdef inline uint32_t u32(const uint8_t* p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v

cdef inline uint64_t u64(const uint8_t* p) noexcept nogil:
    cdef uint64_t v
    memcpy(&v, p, 8)
    return v


cdef inline bint is_mine(const loop_t* s, uint32_t session) noexcept nogil:
    cdef uint32_t k
    for k in range(s.sessions):
        if s.session_ids[k] == session:
            return True
    return False


cdef inline void check_sequence(loop_t* s, uint64_t seq) noexcept nogil:
    if s.c.last_seq and seq != s.c.last_seq + 1:
        s.c.gaps += 1
    s.c.last_seq = seq


cdef void on_fragment(void* clientd, const uint8_t* buffer, size_t length, aeron_header_t* header) noexcept nogil:
    cdef loop_t* s = <loop_t*>clientd
    cdef const uint8_t* body = buffer + HEADER_LENGTH
    cdef uint16_t template_id
    cdef uint64_t seq, cl, i
    cdef uint32_t session
    cdef uint8_t exec_type, count
    cdef bint positive
    cdef int64_t now
    s.c.frames += 1
    s.c.frame_bytes += length
    if length < HEADER_LENGTH:
        return
    template_id = u16(buffer + messageHeader_templateId_OFFSET)
    # the execution stream is this client's own: every report is for one of its sessions
    if template_id < ExecutionReportNew_TEMPLATE_ID or template_id > MessageReject_TEMPLATE_ID:
        return
    if length < HEADER_LENGTH + 24:
        return
    check_sequence(s, u64(body))
    if template_id == MessageReject_TEMPLATE_ID:
        s.c.message_rejects += 1
        return
    cl = u64(body + 16)
    if template_id == OrderMassCancelReport_TEMPLATE_ID:
        if cl >= s.base + s.n and cl - s.base - s.n < s.sessions:
            s.c.mass_cancel_reports += 1
        return
    if cl < s.base or cl - s.base >= s.n:
        s.c.unknown += 1
        return
    i = cl - s.base
    if template_id == ExecutionReportTrade_TEMPLATE_ID:
        s.c.trade_reports += 1
        if length > HEADER_LENGTH + ExecutionReportTrade_liquidity_OFFSET and (
                body[ExecutionReportTrade_liquidity_OFFSET] == LiquidityIndicator_Removed):
            s.c.fills += 1
        return
    if template_id == OrderCancelReject_TEMPLATE_ID:
        if s.kinds[i] != KIND_CANCEL:
            s.c.unknown += 1
            return
        positive = False
    elif s.kinds[i] == KIND_NEW:
        if template_id != ExecutionReportNew_TEMPLATE_ID and template_id != ExecutionReportRejected_TEMPLATE_ID:
            if template_id == ExecutionReportCanceled_TEMPLATE_ID:
                s.c.unsolicited_cancels += 1
            return
        positive = template_id == ExecutionReportNew_TEMPLATE_ID
    elif template_id == ExecutionReportCanceled_TEMPLATE_ID:
        positive = True
    else:
        s.c.unknown += 1
        return
    count = s.responses[i]
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


cdef inline int offer_frame(loop_t* s, uint64_t i) noexcept nogil:
    """1 when frame i was taken, 0 when it must be retried later, -1 on a publication failure."""
    cdef uint32_t session = s.session_of[i] if s.session_of != NULL else 0
    cdef int64_t result = publication_offer(s.publications[session], s.buffer + s.offsets[i], s.lengths[i])
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
    """The rest of a send loop's duty cycle: poll the reports, idle if nothing happened, report progress
    every TICK_NS. -1 (p.stopped_by set) when the loop must stop."""
    cdef int taken = poller_poll(&s.poller, s.fragment_limit)
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
    """Poll until every message is answered and the stream has been quiet for QUIET_NS (or timeout)."""
    cdef int64_t now = monotonic_ns()
    cdef int64_t deadline = now + timeout_ns, quiet_since = 0, next_tick = now + TICK_NS
    cdef int work
    while now < deadline:
        work = poller_poll(&s.poller, s.fragment_limit)
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
    """One workload, its publications (one per session) and the execution-report subscription.

    `run(rate=...)` or `run(window=...)` once, then `mass_cancel(frames)` if wanted; the counts are
    in `counts()`, per-message times in `recv_ns` / `send_ns` (array('q'); 0 = no response).
    """

    cdef loop_t s
    cdef readonly Subscription subscription
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

    def __init__(self, Subscription subscription not None, publications, session_ids, encoded, *,
                 idle="yield", size_t fragment_limit=256):
        """`encoded`: a lob.tools.workload.EncodedWorkload; `publications[k]` sends session k's
        frames; `session_ids[k]` is the session id the engine writes into its reports for it."""
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
        sessions = len(publications)
        if sessions < 1 or len(session_ids) != sessions:
            raise ValueError("one session id per publication, and at least one publication")
        if workload.spec.sessions != sessions:
            raise ValueError(f"the workload has {workload.spec.sessions} sessions, {sessions} publications given")
        if fragment_limit < 1:
            raise ValueError("fragment_limit must be positive")
        self.subscription = subscription
        self.publications = list(publications)
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

        self.s.publications = <aeron_exclusive_publication_t**>malloc(sessions * sizeof(void*))
        self.s.session_ids = <uint32_t*>malloc(sessions * sizeof(uint32_t))
        if self.s.publications == NULL or self.s.session_ids == NULL:
            raise MemoryError()
        for k in range(sessions):
            publication = publications[k]
            if publication.publication == NULL:
                raise RuntimeError("a publication is closed")
            self.s.publications[k] = publication.publication
            self.s.session_ids[k] = <uint32_t>(session_ids[k] & 0xFFFFFFFF)
        self.s.sessions = sessions
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
        if not self.installed:
            self.subscription.set_handler(on_fragment, &self.s, True, self)
            self.s.poller = self.subscription.poller
            self.installed = True
        return 0

    def _uninstall(self):
        if self.installed:
            self.subscription.clear_handler()
            self.installed = False

    def run(self, rate=None, window=None, double drain_timeout=10.0, progress=None):
        """Send the whole workload open-loop at `rate` msg/s or closed-loop with `window` in flight, then
        drain. `progress(answered)` is called about ten times a second. Returns `phase()`."""
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
        self.ran = True
        self._install()
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
        """Offer frames[k] on publication k (an OrderMassCancelRequest with clOrdId base + n + k), then
        poll until every session's OrderMassCancelReport arrived or `timeout` passed. True when all did."""
        cdef const uint8_t[::1] frame
        cdef aeron_exclusive_publication_t* pub
        cdef int64_t deadline, result
        cdef int work
        cdef Py_ssize_t k
        if len(frames) != self.s.sessions:
            raise ValueError("one frame per session")
        self._install()
        try:
            for k in range(self.s.sessions):
                frame = frames[k]
                pub = self.s.publications[k]
                with nogil:
                    deadline = monotonic_ns() + <int64_t>(timeout * 1e9)
                    while True:
                        result = publication_offer(pub, &frame[0], frame.shape[0])
                        if result > 0 or monotonic_ns() > deadline:
                            break
                        work = poller_poll(&self.s.poller, self.s.fragment_limit)
                        idle(&self.s.idle, work if work > 0 else 0)
                if result <= 0:
                    return False
            with nogil:
                deadline = monotonic_ns() + <int64_t>(timeout * 1e9)
                while self.s.c.mass_cancel_reports < self.s.sessions and monotonic_ns() < deadline:
                    work = poller_poll(&self.s.poller, self.s.fragment_limit)
                    if work < 0:
                        break
                    idle(&self.s.idle, work)
        finally:
            self._uninstall()
        return self.s.c.mass_cancel_reports >= self.s.sessions

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

    def counts(self):
        cdef counts_t* c = &self.s.c
        return {"answered": c.answered, "acked": c.acked, "rejected": c.rejected, "duplicated": c.duplicated,
                "trade_reports": c.trade_reports, "trades": c.fills, "unsolicited_cancels": c.unsolicited_cancels,
                "message_rejects": c.message_rejects, "unknown_reports": c.unknown, "exec_seq_gaps": c.gaps,
                "mass_cancel_reports": c.mass_cancel_reports, "back_pressure": c.back_pressure,
                "not_connected": c.not_connected, "reports_received": c.frames, "report_bytes": c.frame_bytes}

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
        free(self.s.publications)
        free(self.s.session_ids)


import sys as _sys
if _sys.byteorder != "little":
    raise ImportError("lob.tools.loadgen_loop reads SBE (little-endian) fields natively: little-endian hosts only")
