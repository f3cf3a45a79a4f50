# Per-transport private execution publications (lob/private_streams.pyx): one ExclusivePublication per
# client transport, on the response channel its Negotiate named, driven from the engine loop (nogil).
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from lob.transport.aeronc cimport aeron_async_add_exclusive_publication_t, aeron_exclusive_publication_t, aeron_t

cdef enum:
    MAX_RESPONSE_CHANNEL = 512
    STREAM_FREE = 0
    STREAM_ADDING = 1       # async add in progress: frames wait in `pending`
    STREAM_WAITING = 2      # added, no subscriber yet: frames wait in `pending`
    STREAM_OPEN = 3         # frames are offered as they come; back-pressured ones wait in `pending`
    STREAM_SLOW = 4         # disconnected as a slow consumer: publication closed, frames dropped until the
                            # loop has fed the core its TransportLost

ctypedef struct private_stream_t:
    uint32_t transport                      # the client's order-entry Aeron session id
    int state                               # STREAM_*
    bint expired                            # the connect timeout passed: nothing is buffered any more
    bint closing                            # close once everything offered is sent, or at close_deadline
    aeron_async_add_exclusive_publication_t* adding
    aeron_exclusive_publication_t* publication
    int64_t registration_id
    int32_t sender_position_id              # counter of what the driver has sent, -1 unknown (IPC)
    int32_t stream_id
    uint16_t channel_length
    char channel[MAX_RESPONSE_CHANNEL + 1]
    uint8_t* pending                        # u32 length | frame, oldest (at pending_head) first
    size_t pending_head
    size_t pending_length
    size_t pending_capacity
    uint32_t pending_frames
    uint64_t connect_deadline_ns            # CLOCK_MONOTONIC
    uint64_t close_deadline_ns
    uint64_t backlog_since_ns               # open and back-pressured since (0: frames go straight out)

ctypedef struct private_counters_t:
    uint64_t frames                 # taken by a private publication
    uint64_t bytes
    uint64_t back_pressure_events   # frames that waited in a back-pressured transport's buffer
    uint64_t dropped_unconnected    # buffer full, connect timeout, or no subscriber (NOT_CONNECTED)
    uint64_t slow_consumers_disconnected
    uint64_t dropped_slow_consumer  # frames dropped with (or after) a slow consumer's disconnection
    uint64_t unrouted               # transport 0: the session is not connected (retained by the core only)
    uint64_t no_route               # no publication for the transport (invalid channel, limit, add failed)
    uint64_t unsent                 # still back-pressured when the publication closed
    uint64_t errors                 # CLOSED / MAX_POSITION_EXCEEDED / ERROR on a private publication
    uint64_t opened                 # publications added
    uint64_t closed
    uint64_t add_failures
    uint64_t limit_refused          # Negotiates beyond max_publications
    uint64_t channel_refused        # response channels the service will not create

ctypedef struct private_streams_t:
    aeron_t* aeron
    private_stream_t* slots
    uint32_t capacity               # max publications
    uint32_t count                  # slots in use
    uint32_t busy                   # slots adding, waiting, back-pressured or closing (need housekeeping)
    uint32_t backlogged             # open slots holding back-pressured frames (retried at every poll)
    int32_t* index                  # open addressing: transport -> slot, -1 empty; index_mask + 1 entries
    uint32_t index_mask
    size_t buffer_limit             # bytes buffered per transport (before it connects, or back-pressured)
    uint32_t term_length            # term-length added to channels that name none, 0: the driver's default
    uint64_t connect_timeout_ns
    uint64_t slow_consumer_timeout_ns   # back-pressured longer than this: disconnected
    uint64_t linger_ns              # bound on waiting for a closing publication to send what it was given
    uint64_t next_housekeeping_ns
    uint32_t* slow                  # transports disconnected as slow consumers, for the loop's TransportLost
    uint32_t slow_head
    uint32_t slow_count
    private_counters_t counters

cdef bint response_channel_allowed(const char* channel, size_t length) noexcept nogil
cdef void private_streams_on_negotiate(private_streams_t* ps, uint32_t transport, const uint8_t* frame,
                                       size_t length, uint64_t now_ns) noexcept nogil
cdef void private_streams_send(private_streams_t* ps, uint32_t transport, const uint8_t* frame, uint32_t length,
                               uint16_t template_id, uint64_t now_ns) noexcept nogil
cdef void private_streams_transport_lost(private_streams_t* ps, uint32_t transport, uint64_t now_ns) noexcept nogil
cdef int private_streams_poll(private_streams_t* ps, uint64_t now_ns) noexcept nogil
cdef bint private_streams_next_slow(private_streams_t* ps, uint32_t* transport) noexcept nogil
cdef bint private_streams_pending(const private_streams_t* ps) noexcept nogil
cdef void private_streams_close_all(private_streams_t* ps) noexcept nogil


cdef class PrivateStreams:
    cdef private_streams_t state
    cdef readonly object client
