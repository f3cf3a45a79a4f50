# The matching core. Everything here runs without the GIL, allocates nothing per message (output
# buffers grow by doubling, which stops once they are large enough) and touches no Python object.
#
# One C module made of files with one job each, included in dependency order: the matching loop calls
# across all of them per message, and within one module the C compiler inlines those calls (as separate
# extension modules they would go through function-pointer tables).
from libc.stdint cimport INT64_MIN, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcmp, memcpy, memmove, memset, strlen
from posix.mman cimport (MADV_HUGEPAGE, MADV_NOHUGEPAGE, MAP_ANONYMOUS, MAP_FAILED, MAP_PRIVATE, PROT_READ, PROT_WRITE, madvise, mmap,
                         mremap, munmap)
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from lob.sbe.messages cimport *

cdef extern from "<sys/mman.h>":
    enum: MREMAP_MAYMOVE

cdef extern from *:
    void prefetch "__builtin_prefetch"(const void* p) noexcept nogil

cdef enum:
    BID = 0
    ASK = 1
    OUTBUF_INITIAL = 1 << 16
    INDEX_INITIAL = 1024    # index nodes mapped at start (264 KiB)
    GROUP_MAX = 65535
    PAGE = 4096
    HUGE_PAGE = 1 << 21


include "memory.pxi"
include "id_table.pxi"
include "price_index.pxi"
include "market_data.pxi"
include "reports.pxi"
include "stp.pxi"
include "pro_rata.pxi"
include "book.pxi"
include "risk.pxi"
include "expiry.pxi"
include "stops.pxi"
include "order_entry.pxi"
include "admin.pxi"
include "session_layer.pxi"
include "dispatch.pxi"


# ---------------------------------------------------------------------------------------------------
# Setup

cdef size_t engine_prefault(EngineCore* core) noexcept nogil:
    """Fault the pools and the id table in now (contents unchanged); returns the bytes they span."""
    cdef size_t slots = <size_t>core.pool.capacity + 1
    return (region_prefault(core.pool.items, slots * sizeof(Order))
            + region_prefault(core.level_pool.items, slots * sizeof(Level))
            + region_prefault(core.ids.entries, (<size_t>core.ids.mask + 1) * sizeof(IdEntry))
            + region_prefault(core.touches, slots * sizeof(Touch))
            + region_prefault(core.risk.entries, (<size_t>core.risk.mask + 2) * sizeof(AccountEntry)))


cdef int engine_init(EngineCore* core, const uint32_t* ids, const int64_t* ticks, uint32_t count,
                     uint32_t max_orders, bint market_data, const SessionConfig* sessions, uint32_t session_count,
                     uint64_t ring_bytes) noexcept nogil:
    memset(core, 0, sizeof(EngineCore))
    cdef uint32_t transport_size = 8
    while transport_size < 4 * session_count:
        transport_size *= 2
    core.session_count = session_count
    core.sessions = <Session*>calloc(session_count + 1, sizeof(Session))
    core.transport_keys = <uint32_t*>calloc(transport_size, sizeof(uint32_t))
    core.transport_values = <uint32_t*>calloc(transport_size, sizeof(uint32_t))
    core.transport_mask = transport_size - 1
    core.ring_bytes = ring_bytes
    core.request_window_ns = 30ULL * 1000000000ULL
    core.max_retransmit = 10000
    core.reject_tokens = REJECTS_PER_SECOND * NS_PER_S
    if core.sessions == NULL or core.transport_keys == NULL or core.transport_values == NULL:
        engine_close(core)
        return CORE_ERR_NOMEM
    cdef uint32_t k
    for k in range(session_count):
        core.sessions[k + 1].id = sessions[k].id
        core.sessions[k + 1].rate = sessions[k].rate
        core.sessions[k + 1].burst = sessions[k].burst
        core.sessions[k + 1].tokens = sessions[k].burst * NS_PER_S
        core.sessions[k + 1].cancel_on_disconnect = sessions[k].cancel_on_disconnect
        core.sessions[k + 1].admin = sessions[k].admin
        if sessions[k].account_count != 0:
            core.sessions[k + 1].accounts = <uint32_t*>malloc(sessions[k].account_count * sizeof(uint32_t))
            if core.sessions[k + 1].accounts == NULL:
                engine_close(core)
                return CORE_ERR_NOMEM
            memcpy(core.sessions[k + 1].accounts, sessions[k].accounts, sessions[k].account_count * sizeof(uint32_t))
            core.sessions[k + 1].account_count = sessions[k].account_count
        core.sessions[k + 1].next_out_seq = 1
        core.sessions[k + 1].next_in_seq = 1
        core.sessions[k + 1].ring.first_seq = 1
        core.sessions[k + 1].ring.next_seq = 1
    core.market_data = market_data
    core.next_order_id = 1
    core.next_trade_id = 1
    core.next_md_seq = 1
    cdef uint64_t table_size = 8
    while table_size < 2 * <uint64_t>max_orders:
        table_size *= 2
    cdef uint32_t instrument_size = 8, i, j
    while instrument_size < 2 * count:
        instrument_size *= 2
    core.pool.capacity = max_orders
    core.pool.items = <Order*>region_map((<size_t>max_orders + 1) * sizeof(Order))
    core.level_pool.capacity = max_orders
    core.level_pool.items = <Level*>region_map((<size_t>max_orders + 1) * sizeof(Level))
    core.ids.mask = table_size - 1
    core.ids.entries = <IdEntry*>region_map(table_size * sizeof(IdEntry))
    # a message touches at most every level plus one new one
    core.touches = <Touch*>region_map((<size_t>max_orders + 1) * sizeof(Touch))
    core.instruments = <Instrument*>calloc(count, sizeof(Instrument))
    core.instrument_count = count
    core.instrument_keys = <uint32_t*>calloc(instrument_size, sizeof(uint32_t))
    core.instrument_values = <uint16_t*>calloc(instrument_size, sizeof(uint16_t))
    core.instrument_mask = instrument_size - 1
    # at most INDEX_MAX_HEIGHT nodes a level (there are no more levels than orders), a root a side, and
    # the room side_reserve asks for on top
    index_pool_init(&core.index_pool, INDEX_INITIAL,
                    <uint32_t>min(<uint64_t>INDEX_MAX_HEIGHT * max_orders + 2 * count + 2 * INDEX_MAX_HEIGHT,
                                  0xFFFFFFF0ULL))
    if (core.pool.items == NULL or core.level_pool.items == NULL or core.index_pool.items == NULL or core.ids.entries == NULL
            or core.touches == NULL or core.instruments == NULL or core.instrument_keys == NULL
            or core.instrument_values == NULL
            or outbuf_init(&core.exec_out, OUTBUF_INITIAL) != 0 or outbuf_init(&core.md_out, OUTBUF_INITIAL) != 0
            or expiry_init(core) != 0 or risk_init(core, DEFAULT_MAX_ACCOUNTS, NULL, 0, core.risk.default_limits) != 0):
        engine_close(core)
        return CORE_ERR_NOMEM
    for i in range(count):
        core.instruments[i].id = ids[i]
        core.instruments[i].tick = ticks[i]
        core.instruments[i].last_price = INT64_NULL
        core.instruments[i].lot = 1
        core.instruments[i].reference_price = INT64_NULL
        core.instruments[i].min_allocation = 1
        for j in range(2):
            core.instruments[i].sides[j].nodes = &core.index_pool
            core.instruments[i].sides[j].tick = ticks[i]
            core.instruments[i].sides[j].bid = j == BID
        j = (ids[i] * 0x9E3779B1U) & core.instrument_mask
        while core.instrument_keys[j] != 0:
            j = (j + 1) & core.instrument_mask
        core.instrument_keys[j] = ids[i]
        core.instrument_values[j] = <uint16_t>(i + 1)
    return CORE_OK


cdef void engine_close(EngineCore* core) noexcept nogil:
    cdef uint32_t i
    if core.sessions != NULL:
        for i in range(core.session_count + 1):
            ring_free(&core.sessions[i].ring)
            free(core.sessions[i].accounts)
    free(core.sessions)
    free(core.transport_keys)
    free(core.transport_values)
    if core.instruments != NULL:
        for i in range(core.instrument_count):
            for j in range(2):
                free(core.instruments[i].stops[j].slots)
    index_pool_free(&core.index_pool)
    free(core.instruments)
    free(core.instrument_keys)
    free(core.instrument_values)
    region_unmap(core.pool.items, (<size_t>core.pool.capacity + 1) * sizeof(Order))
    region_unmap(core.level_pool.items, (<size_t>core.level_pool.capacity + 1) * sizeof(Level))
    region_unmap(core.ids.entries, (core.ids.mask + 1) * sizeof(IdEntry))
    region_unmap(core.touches, (<size_t>core.pool.capacity + 1) * sizeof(Touch))
    outbuf_free(&core.exec_out)
    outbuf_free(&core.md_out)
    risk_close(core)
    expiry_close(core)
    memset(core, 0, sizeof(EngineCore))
