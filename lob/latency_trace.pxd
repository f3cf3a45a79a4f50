# The engine loop's latency trace (lob/latency_trace.pyx): one fixed-size record per inbound message in
# a ring mapped from a file, written by the loop thread only, read by another process while it runs.
from libc.stdint cimport uint16_t, uint32_t, uint64_t

cdef extern from *:
    """
    static inline void lob_trace_publish(unsigned long long *counter, unsigned long long value)
    { __atomic_store_n(counter, value, __ATOMIC_RELEASE); }
    """
    void lob_trace_publish(unsigned long long* counter, unsigned long long value) noexcept nogil

ctypedef struct trace_record_t:
    uint64_t received_ns            # the fragment handler started on it (CLOCK_MONOTONIC)
    uint64_t matched_ns             # the core returned from it
    uint64_t published_ns           # the poll that read it had offered all its execution frames
    uint32_t transport
    uint16_t template_id
    uint16_t index_in_poll          # its position among the messages of that poll (0-based)
    uint32_t poll_messages          # messages that poll read
    uint32_t idle_polls             # polls that found nothing since the previous one that found work
    uint32_t exec_back_pressure     # execution frames held back by back-pressure so far (low 32 bits)
    uint32_t md_back_pressure       # market-data frames that waited for back-pressure so far (low 32 bits)

ctypedef struct trace_header_t:
    uint64_t magic
    uint32_t version
    uint32_t record_size
    uint64_t capacity               # records in the ring (a power of two)
    uint64_t written                # records written since the start; record i is at i % capacity
    uint64_t reserved[4]

ctypedef struct trace_t:
    trace_header_t* header
    trace_record_t* records
    uint64_t mask
    uint64_t poll_first             # `written` when the current poll started
    uint32_t idle_polls


cdef inline trace_record_t* trace_begin(trace_t* t, uint64_t received_ns, uint32_t transport,
                                        uint16_t template_id) noexcept nogil:
    cdef uint64_t i = t.header.written
    cdef trace_record_t* r = &t.records[i & t.mask]
    r.received_ns = received_ns
    r.matched_ns = 0
    r.published_ns = 0
    r.transport = transport
    r.template_id = template_id
    r.index_in_poll = <uint16_t>(i - t.poll_first)
    r.poll_messages = 0
    r.idle_polls = t.idle_polls
    return r


cdef inline void trace_end(trace_t* t, trace_record_t* r, uint64_t matched_ns) noexcept nogil:
    r.matched_ns = matched_ns
    lob_trace_publish(<unsigned long long*>&t.header.written, t.header.written + 1)


cdef inline void trace_poll_done(trace_t* t, int work, uint64_t published_ns, uint64_t exec_back_pressure,
                                 uint64_t md_back_pressure) noexcept nogil:
    """After a poll and its publishing: stamp the poll's records, or count an empty poll."""
    cdef uint64_t i, end = t.header.written
    cdef trace_record_t* r
    if end == t.poll_first:
        if work <= 0:
            t.idle_polls += 1
        return
    i = t.poll_first
    if end - i > t.mask + 1:
        i = end - t.mask - 1
    while i < end:
        r = &t.records[i & t.mask]
        r.published_ns = published_ns
        r.poll_messages = <uint32_t>(end - t.poll_first)
        r.exec_back_pressure = <uint32_t>exec_back_pressure
        r.md_back_pressure = <uint32_t>md_back_pressure
        i += 1
    t.poll_first = end
    t.idle_polls = 0


cdef class LatencyTrace:
    cdef trace_t t
    cdef readonly str path
    cdef readonly uint64_t capacity
    cdef object _map
    cdef object _file
