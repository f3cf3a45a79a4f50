from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from lob.core cimport EngineCore
from lob.engine cimport Engine
from lob.transport.aeronc cimport aeron_exclusive_publication_t
from lob.transport.idle cimport idle_strategy_t
from lob.transport.publication cimport ExclusivePublication
from lob.transport.subscription cimport Subscription, fragment_poller_t


ctypedef struct md_recovery_counters_t:
    uint64_t snapshots              # books published (each one or more messages)
    uint64_t messages               # BookSnapshot messages offered and taken
    uint64_t bytes
    uint64_t requests               # SnapshotRequests read
    uint64_t requests_unknown       # naming an instrument the engine does not have
    uint64_t requests_malformed     # too short, another template or schema
    uint64_t back_pressure_events
    uint64_t not_connected          # snapshots abandoned: the last subscriber left mid-book
    uint64_t errors
    int64_t last_error

# The market-data recovery publisher's state, owned by a MarketDataRecovery and driven by the service
# loop between batches (md_recovery_poll), never from inside matching.
ctypedef struct md_recovery_t:
    EngineCore* core
    aeron_exclusive_publication_t* publication
    fragment_poller_t requests      # subscription NULL: no request stream
    uint64_t interval_ns            # a snapshot of every instrument once per interval; 0: on request only
    uint64_t request_gap_ns         # on request, an instrument is published at most once per request_gap_ns
    uint64_t next_cycle_ns
    uint32_t cycle_next             # index of the next instrument of the current loop
    bint cycling                    # a loop is under way
    uint32_t per_part               # levels per BookSnapshot message
    uint32_t orders_per_part        # orders per OrderSnapshot message (order-level instruments)
    uint32_t wanted_count
    uint8_t* wanted                 # per instrument index: asked for and not yet published
    uint64_t* last_sent_ns          # per instrument index (0: never)
    uint8_t* buffer                 # one message
    md_recovery_counters_t counters


# Read requests; publish at most one instrument's book (every part of it). Returns the work done.
cdef int md_recovery_poll(md_recovery_t* r, uint64_t now, idle_strategy_t* idle, const int* running) noexcept nogil


cdef class MarketDataRecovery:
    cdef md_recovery_t state
    cdef readonly Engine engine
    cdef readonly ExclusivePublication publication
    cdef readonly Subscription requests
