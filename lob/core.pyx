# The matching core. Everything here runs without the GIL, allocates nothing per message (output
# buffers grow by doubling, which stops once they are large enough) and touches no Python object.
from libc.stdint cimport INT64_MIN, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, realloc
from libc.string cimport memcmp, memcpy, memmove, memset
from posix.mman cimport (MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_FAILED, MAP_PRIVATE, PROT_READ, PROT_WRITE, madvise, mmap,
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
    SIDE_INITIAL = 64
    GROUP_MAX = 65535
    PAGE = 4096
    HUGE_PAGE = 1 << 21


# ---------------------------------------------------------------------------------------------------
# Memory regions: anonymous mappings are zero-filled and become resident page by page as they are
# touched, so a pool sized for a million orders costs only what is used, unless engine_prefault faults
# it all in at once (the service does, so that no page fault lands on the message path). Large regions
# ask for huge pages: random access over tens of megabytes (id table, order pool) otherwise misses the
# TLB on nearly every lookup, and growing output buffers would fault every 4 KiB.

cdef inline size_t region_length(size_t length) noexcept nogil:
    return (length + PAGE - 1) & ~(<size_t>PAGE - 1)


cdef void* region_map(size_t length) noexcept nogil:
    cdef void* p = mmap(NULL, region_length(length), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if p == MAP_FAILED:
        return NULL
    if length >= HUGE_PAGE:
        madvise(p, region_length(length), MADV_HUGEPAGE)
    return p


cdef extern from *:
    """
    #include <sys/mman.h>
    #ifndef MADV_POPULATE_WRITE
    #define MADV_POPULATE_WRITE 23
    #endif
    /* Fault a mapped region in, writable, leaving its contents as they are. */
    static size_t lob_region_prefault(void *p, size_t length, size_t page)
    {
        if (p == NULL || length == 0)
            return 0;
        if (madvise(p, length, MADV_POPULATE_WRITE) != 0)
        {
            volatile unsigned char *b = (volatile unsigned char *)p;
            for (size_t off = 0; off < length; off += page)
                b[off] = b[off];
        }
        return length;
    }
    """
    size_t lob_region_prefault(void* p, size_t length, size_t page) noexcept nogil


cdef size_t region_prefault(void* p, size_t length) noexcept nogil:
    return lob_region_prefault(p, region_length(length), PAGE)


cdef void region_unmap(void* p, size_t length) noexcept nogil:
    if p != NULL:
        munmap(p, region_length(length))


# ---------------------------------------------------------------------------------------------------
# Output buffers (page-multiple capacities, grown with mremap: no copy)

cdef int outbuf_init(OutBuf* buf, size_t capacity) noexcept nogil:
    buf.data = <uint8_t*>region_map(capacity)
    buf.length = 0
    buf.capacity = capacity if buf.data != NULL else 0
    return 0 if buf.data != NULL else -1


cdef int outbuf_grow(OutBuf* buf, size_t needed) noexcept nogil:
    cdef size_t capacity = region_length(buf.capacity if buf.capacity else OUTBUF_INITIAL)
    while capacity < needed:
        capacity *= 2
    cdef void* data
    if buf.borrowed:
        data = region_map(capacity)
        if data == NULL:
            return -1
        memcpy(data, buf.data, buf.length)
        buf.borrowed = False
    else:
        data = mremap(buf.data, buf.capacity, capacity, MREMAP_MAYMOVE)
        if data == MAP_FAILED:
            return -1
        if capacity >= HUGE_PAGE:
            madvise(data, capacity, MADV_HUGEPAGE)
    buf.data = <uint8_t*>data
    buf.capacity = capacity
    return 0


cdef void outbuf_free(OutBuf* buf) noexcept nogil:
    if not buf.borrowed:
        region_unmap(buf.data, buf.capacity)
    buf.data = NULL
    buf.length = 0
    buf.capacity = 0
    buf.borrowed = False


cdef void outbuf_lend(OutBuf* buf, OutBuf* saved, uint8_t* data, size_t capacity) noexcept nogil:
    saved[0] = buf[0]
    buf.data = data
    buf.length = 0
    buf.capacity = capacity
    buf.borrowed = True


cdef bint outbuf_unlend(OutBuf* buf, OutBuf* saved) noexcept nogil:
    if buf.borrowed:
        buf[0] = saved[0]
        return True
    outbuf_free(saved)
    return False


# Reserve one outbound-framed frame of `frame_length` bytes; returns where the SBE frame goes.
cdef inline uint8_t* outbuf_claim(EngineCore* core, OutBuf* buf, uint32_t frame_length) noexcept nogil:
    cdef size_t needed = buf.length + OUTBOUND_FRAME_HEADER_LENGTH + frame_length
    if needed > buf.capacity and outbuf_grow(buf, needed) != 0:
        core.error = CORE_ERR_NOMEM
        return core.scratch if frame_length <= SCRATCH_LENGTH else NULL
    cdef uint8_t* p = buf.data + buf.length
    store_u32le(p, frame_length)
    buf.length = needed
    return p + OUTBOUND_FRAME_HEADER_LENGTH


cdef inline uint8_t* header_write(uint8_t* p, uint16_t block_length, uint16_t template_id) noexcept nogil:
    messageHeader_set_blockLength(p, block_length)
    messageHeader_set_templateId(p, template_id)
    messageHeader_set_schemaId(p, SCHEMA_ID)
    messageHeader_set_version(p, SCHEMA_VERSION)
    return p + HEADER_LENGTH


# ---------------------------------------------------------------------------------------------------
# Order pool and level pool: struct arrays with a free list; never-used slots are handed out from
# `high_water` up so that untouched memory stays unmapped.

cdef inline uint32_t pool_acquire(OrderPool* pool) noexcept nogil:
    cdef uint32_t slot = pool.free_head
    if slot != 0:
        pool.free_head = pool.items[slot].next
    elif pool.high_water < pool.capacity:
        pool.high_water += 1
        slot = pool.high_water
    else:
        return 0
    pool.live += 1
    return slot


cdef inline void pool_release(OrderPool* pool, uint32_t slot) noexcept nogil:
    pool.items[slot].next = pool.free_head
    pool.free_head = slot
    pool.live -= 1


cdef inline uint32_t level_acquire(LevelPool* pool) noexcept nogil:
    cdef uint32_t slot = pool.free_head
    if slot != 0:
        pool.free_head = pool.items[slot].head
    elif pool.high_water < pool.capacity:
        pool.high_water += 1
        slot = pool.high_water
    else:
        return 0
    return slot


cdef inline void level_release(LevelPool* pool, uint32_t slot) noexcept nogil:
    pool.items[slot].head = pool.free_head
    pool.free_head = slot


# ---------------------------------------------------------------------------------------------------
# Id table: (session, clOrdId) -> order slot

cdef inline uint64_t ids_hash(uint32_t session, uint64_t cl_ord_id) noexcept nogil:
    cdef uint64_t h = cl_ord_id ^ (<uint64_t>session * 0x9E3779B97F4A7C15ULL)
    h ^= h >> 33
    h *= 0xFF51AFD7ED558CCDULL
    h ^= h >> 33
    return h


cdef uint32_t ids_find(const EngineCore* core, uint32_t session, uint64_t cl_ord_id) noexcept nogil:
    cdef const IdTable* ids = &core.ids
    cdef uint32_t tag = <uint32_t>ids_hash(session, cl_ord_id)
    cdef uint64_t i = tag & ids.mask
    cdef const IdEntry* e
    cdef const Order* o
    while True:
        e = &ids.entries[i]
        if e.slot == 0:
            return 0
        if e.tag == tag:
            o = &core.pool.items[e.slot]
            if o.cl_ord_id == cl_ord_id and o.session == session:
                return e.slot
        i = (i + 1) & ids.mask


# The slot of the first entry whose tag matches, without reading any order: a hint for prefetching.
cdef inline uint32_t ids_guess(const IdTable* ids, uint32_t session, uint64_t cl_ord_id) noexcept nogil:
    cdef uint32_t tag = <uint32_t>ids_hash(session, cl_ord_id)
    cdef uint64_t i = tag & ids.mask
    while ids.entries[i].slot != 0 and ids.entries[i].tag != tag:
        i = (i + 1) & ids.mask
    return ids.entries[i].slot


# The key must be absent; the table is at most half full, so a free entry exists.
cdef inline void ids_insert(IdTable* ids, uint32_t session, uint64_t cl_ord_id, uint32_t slot) noexcept nogil:
    cdef uint32_t tag = <uint32_t>ids_hash(session, cl_ord_id)
    cdef uint64_t i = tag & ids.mask
    while ids.entries[i].slot != 0:
        i = (i + 1) & ids.mask
    ids.entries[i].tag = tag
    ids.entries[i].slot = slot


# Removes the entry of `slot`, whose key is (session, cl_ord_id). Backward-shift delete: no tombstones,
# so probe lengths do not grow with churn.
cdef void ids_remove(IdTable* ids, uint32_t session, uint64_t cl_ord_id, uint32_t slot) noexcept nogil:
    cdef uint64_t mask = ids.mask
    cdef uint64_t i = <uint32_t>ids_hash(session, cl_ord_id) & mask
    cdef uint64_t j, home
    cdef IdEntry* e = ids.entries
    while e[i].slot != slot:
        if e[i].slot == 0:
            return
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        if e[j].slot == 0:
            break
        home = e[j].tag & mask
        # e[j] may move back to the hole at i only if its home is not cyclically within (i, j].
        if (i <= j and (home <= i or home > j)) or (i > j and home <= i and home > j):
            e[i] = e[j]
            i = j
    e[i].slot = 0


# ---------------------------------------------------------------------------------------------------
# Instruments

cdef int instrument_index(const EngineCore* core, uint32_t instrument_id) noexcept nogil:
    if instrument_id == 0:
        return -1
    cdef uint32_t i = (instrument_id * 0x9E3779B1U) & core.instrument_mask
    while core.instrument_keys[i] != 0:
        if core.instrument_keys[i] == instrument_id:
            return core.instrument_values[i] - 1
        i = (i + 1) & core.instrument_mask
    return -1


# ---------------------------------------------------------------------------------------------------
# Price index: one sorted array of level keys per side, best at the end

cdef inline int64_t side_key(uint32_t side_index, int64_t price) noexcept nogil:
    return price if side_index == BID else -price


# First position whose key is >= key. Activity is near the touch, so look there before bisecting.
cdef inline uint32_t side_search(const BookSide* side, int64_t key) noexcept nogil:
    cdef uint32_t lo = 0, hi = side.count, mid
    if hi == 0 or side.keys[hi - 1] < key:
        return hi
    if hi >= 2 and side.keys[hi - 2] < key:
        return hi - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if side.keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int side_reserve(BookSide* side, uint32_t extra) noexcept nogil:
    if side.count + extra <= side.capacity:
        return 0
    cdef uint32_t capacity = side.capacity if side.capacity else SIDE_INITIAL
    while capacity < side.count + extra:
        capacity *= 2
    cdef int64_t* keys = <int64_t*>realloc(side.keys, capacity * sizeof(int64_t))
    if keys == NULL:
        return -1
    side.keys = keys
    cdef uint32_t* levels = <uint32_t*>realloc(side.levels, capacity * sizeof(uint32_t))
    if levels == NULL:
        return -1
    side.levels = levels
    side.capacity = capacity
    return 0


cdef inline void side_insert(BookSide* side, uint32_t pos, int64_t key, uint32_t level) noexcept nogil:
    cdef uint32_t tail = side.count - pos
    if tail:
        memmove(&side.keys[pos + 1], &side.keys[pos], tail * sizeof(int64_t))
        memmove(&side.levels[pos + 1], &side.levels[pos], tail * sizeof(uint32_t))
    side.keys[pos] = key
    side.levels[pos] = level
    side.count += 1


cdef inline void side_erase(BookSide* side, uint32_t pos) noexcept nogil:
    cdef uint32_t tail = side.count - pos - 1
    if tail:
        memmove(&side.keys[pos], &side.keys[pos + 1], tail * sizeof(int64_t))
        memmove(&side.levels[pos], &side.levels[pos + 1], tail * sizeof(uint32_t))
    side.count -= 1


# ---------------------------------------------------------------------------------------------------
# Level changes of the current message, for its BookUpdate

# Call before changing an existing level.
cdef inline void md_touch(EngineCore* core, Level* level, uint32_t slot, uint16_t instrument,
                          uint8_t side) noexcept nogil:
    if not core.market_data or level.touch != 0:
        return
    cdef Touch* t = &core.touches[core.touch_count]
    t.price = level.price
    t.qty_before = level.qty
    t.count_before = level.count
    t.level = slot
    t.instrument = instrument
    t.side = side
    t.existed = 1
    core.touch_count += 1
    level.touch = core.touch_count


cdef void md_touch_new(EngineCore* core, Level* level, uint32_t slot, uint16_t instrument,
                       uint8_t side) noexcept nogil:
    if not core.market_data:
        return
    cdef uint32_t i
    cdef Touch* t
    if core.touch_deleted:
        # the same price may have been emptied earlier in this message: it is the same level to readers
        for i in range(core.touch_count):
            t = &core.touches[i]
            if t.level == 0 and t.price == level.price and t.side == side and t.instrument == instrument:
                t.level = slot
                level.touch = i + 1
                core.touch_deleted -= 1
                return
    t = &core.touches[core.touch_count]
    t.price = level.price
    t.qty_before = 0
    t.count_before = 0
    t.level = slot
    t.instrument = instrument
    t.side = side
    t.existed = 0
    core.touch_count += 1
    level.touch = core.touch_count


cdef inline void md_touch_gone(EngineCore* core, Level* level) noexcept nogil:
    if level.touch != 0:
        core.touches[level.touch - 1].level = 0
        core.touch_deleted += 1
        level.touch = 0


cdef inline bint touch_changed(const EngineCore* core, const Touch* t) noexcept nogil:
    cdef const Level* level
    if t.level == 0:
        return t.existed
    if not t.existed:
        return True
    level = &core.level_pool.items[t.level]
    return level.qty != t.qty_before or level.count != t.count_before


cdef void md_book_update(EngineCore* core, uint32_t first, uint32_t end, uint32_t changed) noexcept nogil:
    cdef uint32_t length = (HEADER_LENGTH + BookUpdate_BLOCK_LENGTH + BookUpdate_levels_HEADER_LENGTH
                            + changed * BookUpdate_levels_BLOCK_LENGTH)
    cdef uint8_t* p = outbuf_claim(core, &core.md_out, length)
    if p == NULL:
        return
    cdef const Touch* t = &core.touches[first]
    cdef const Level* level
    cdef uint8_t* b = header_write(p, BookUpdate_BLOCK_LENGTH, BookUpdate_TEMPLATE_ID)
    BookUpdate_set_seqNum(b, core.next_md_seq)
    core.next_md_seq += 1
    BookUpdate_set_transactTime(b, core.last_transact_time)
    BookUpdate_set_instrumentId(b, core.instruments[t.instrument].id)
    cdef uint8_t* g = b + BookUpdate_BLOCK_LENGTH
    groupSizeEncoding_set_blockLength(g, BookUpdate_levels_BLOCK_LENGTH)
    groupSizeEncoding_set_numInGroup(g, <uint16_t>changed)
    g += BookUpdate_levels_HEADER_LENGTH
    cdef uint32_t i
    for i in range(first, end):
        t = &core.touches[i]
        if not touch_changed(core, t):
            continue
        if t.level == 0:
            BookUpdate_levels_set_action(g, BookAction_Delete)
            BookUpdate_levels_set_quantity(g, 0)
            BookUpdate_levels_set_orderCount(g, 0)
        else:
            level = &core.level_pool.items[t.level]
            BookUpdate_levels_set_action(g, BookAction_Change if t.existed else BookAction_New)
            BookUpdate_levels_set_quantity(g, level.qty)
            BookUpdate_levels_set_orderCount(g, level.count)
        BookUpdate_levels_set_side(g, t.side)
        Price_set_mantissa(g + BookUpdate_levels_price_OFFSET, t.price)
        g += BookUpdate_levels_BLOCK_LENGTH


# One BookUpdate per instrument touched (touches of one instrument are contiguous), at most
# GROUP_MAX levels each.
cdef void md_flush(EngineCore* core) noexcept nogil:
    cdef uint32_t i = 0, j, first, changed
    cdef uint16_t instrument
    while i < core.touch_count:
        instrument = core.touches[i].instrument
        first = i
        changed = 0
        j = i
        while j < core.touch_count and core.touches[j].instrument == instrument:
            if touch_changed(core, &core.touches[j]):
                changed += 1
                if changed == GROUP_MAX:
                    md_book_update(core, first, j + 1, changed)
                    first = j + 1
                    changed = 0
            j += 1
        if changed:
            md_book_update(core, first, j, changed)
        i = j
    for i in range(core.touch_count):
        if core.touches[i].level != 0:
            core.level_pool.items[core.touches[i].level].touch = 0
    core.touch_count = 0
    core.touch_deleted = 0


cdef inline void md_trade(EngineCore* core, uint32_t instrument_id, uint64_t trade_id, int64_t price,
                          int64_t qty, uint8_t aggressor_side) noexcept nogil:
    cdef uint8_t* p = outbuf_claim(core, &core.md_out, HEADER_LENGTH + Trade_BLOCK_LENGTH)
    cdef uint8_t* b = header_write(p, Trade_BLOCK_LENGTH, Trade_TEMPLATE_ID)
    Trade_set_seqNum(b, core.next_md_seq)
    core.next_md_seq += 1
    Trade_set_transactTime(b, core.last_transact_time)
    Trade_set_instrumentId(b, instrument_id)
    Trade_set_tradeId(b, trade_id)
    Price_set_mantissa(b + Trade_price_OFFSET, price)
    Trade_set_quantity(b, qty)
    Trade_set_aggressorSide(b, aggressor_side)


# ---------------------------------------------------------------------------------------------------
# Execution stream: routed frames (u32 length | u32 session id | u32 transport | frame). An application
# message (ids 60..69) to an established or away session takes the session's next seqNum and is kept in
# its ring; the copy into the ring waits until the next claim or the end of the inbound message, when the
# frame is complete.

cdef inline void exec_retain_pending(EngineCore* core) noexcept nogil:
    cdef Session* s
    if core.pending_slot != 0:
        s = &core.sessions[core.pending_slot]
        if core.error == CORE_OK:
            ring_append(&s.ring, core.exec_out.data + core.pending_offset, core.pending_length)
        core.pending_slot = 0


cdef inline uint8_t* exec_claim(EngineCore* core, uint32_t session_id, uint32_t transport,
                                uint32_t frame_length) noexcept nogil:
    exec_retain_pending(core)
    cdef size_t needed = core.exec_out.length + EXEC_FRAME_HEADER_LENGTH + frame_length
    if needed > core.exec_out.capacity and outbuf_grow(&core.exec_out, needed) != 0:
        core.error = CORE_ERR_NOMEM
        return core.scratch
    cdef uint8_t* p = core.exec_out.data + core.exec_out.length
    store_u32le(p, frame_length)
    store_u32le(p + 4, session_id)
    store_u32le(p + 8, transport)
    core.exec_out.length = needed
    return p + EXEC_FRAME_HEADER_LENGTH


# A session-layer frame (no seqNum) to a transport; returns the message body.
cdef inline uint8_t* session_claim(EngineCore* core, uint32_t session_id, uint32_t transport, uint16_t block_length,
                                   uint16_t template_id) noexcept nogil:
    return header_write(exec_claim(core, session_id, transport, HEADER_LENGTH + block_length), block_length,
                        template_id)


# An application message to the session in `slot`: seqNum and transactTime are set; returns the body.
cdef inline uint8_t* app_claim(EngineCore* core, uint32_t slot, uint16_t block_length,
                               uint16_t template_id) noexcept nogil:
    cdef Session* s = &core.sessions[slot]
    cdef uint32_t length = HEADER_LENGTH + block_length
    cdef uint8_t* b = header_write(exec_claim(core, s.id, s.transport, length), block_length, template_id)
    ExecutionReportNew_set_seqNum(b, s.next_out_seq)
    ExecutionReportNew_set_transactTime(b, core.last_transact_time)
    s.next_out_seq += 1
    s.last_out_ns = core.last_transact_time
    if core.error == CORE_OK:
        core.pending_slot = slot
        core.pending_offset = core.exec_out.length - length
        core.pending_length = length
    return b


cdef inline void rep_new(EngineCore* core, const Order* o) noexcept nogil:
    cdef uint8_t* b = app_claim(core, o.session, ExecutionReportNew_BLOCK_LENGTH, ExecutionReportNew_TEMPLATE_ID)
    ExecutionReportNew_set_clOrdId(b, o.cl_ord_id)
    ExecutionReportNew_set_orderId(b, o.order_id)


cdef inline void rep_trade(EngineCore* core, const Order* o, int64_t price, int64_t qty, uint64_t trade_id,
                           uint8_t liquidity) noexcept nogil:
    cdef uint8_t* b = app_claim(core, o.session, ExecutionReportTrade_BLOCK_LENGTH,
                                ExecutionReportTrade_TEMPLATE_ID)
    ExecutionReportTrade_set_clOrdId(b, o.cl_ord_id)
    ExecutionReportTrade_set_orderId(b, o.order_id)
    ExecutionReportTrade_set_tradeId(b, trade_id)
    Price_set_mantissa(b + ExecutionReportTrade_lastPx_OFFSET, price)
    ExecutionReportTrade_set_lastQty(b, qty)
    ExecutionReportTrade_set_leavesQty(b, o.leaves_qty)
    ExecutionReportTrade_set_liquidity(b, liquidity)


cdef void rep_canceled(EngineCore* core, const Order* o, uint64_t cl_ord_id, uint64_t orig_cl_ord_id,
                       uint8_t reason) noexcept nogil:
    cdef uint8_t* b = app_claim(core, o.session, ExecutionReportCanceled_BLOCK_LENGTH,
                                ExecutionReportCanceled_TEMPLATE_ID)
    ExecutionReportCanceled_set_clOrdId(b, cl_ord_id)
    ExecutionReportCanceled_set_origClOrdId(b, orig_cl_ord_id)
    ExecutionReportCanceled_set_orderId(b, o.order_id)
    ExecutionReportCanceled_set_reason(b, reason)


cdef void rep_replaced(EngineCore* core, const Order* o, uint64_t orig_cl_ord_id) noexcept nogil:
    cdef uint8_t* b = app_claim(core, o.session, ExecutionReportReplaced_BLOCK_LENGTH,
                                ExecutionReportReplaced_TEMPLATE_ID)
    ExecutionReportReplaced_set_clOrdId(b, o.cl_ord_id)
    ExecutionReportReplaced_set_origClOrdId(b, orig_cl_ord_id)
    ExecutionReportReplaced_set_orderId(b, o.order_id)
    Price_set_mantissa(b + ExecutionReportReplaced_price_OFFSET, o.price)
    ExecutionReportReplaced_set_orderQty(b, o.order_qty)
    ExecutionReportReplaced_set_leavesQty(b, o.leaves_qty)


cdef void rep_rejected(EngineCore* core, uint32_t slot, uint64_t cl_ord_id, uint8_t reason) noexcept nogil:
    cdef uint8_t* b = app_claim(core, slot, ExecutionReportRejected_BLOCK_LENGTH, ExecutionReportRejected_TEMPLATE_ID)
    ExecutionReportRejected_set_clOrdId(b, cl_ord_id)
    ExecutionReportRejected_set_reason(b, reason)


cdef void cancel_reject_write(EngineCore* core, uint32_t slot, uint64_t cl_ord_id, uint64_t orig_cl_ord_id,
                              uint64_t order_id, uint8_t response_to, uint8_t reason) noexcept nogil:
    cdef uint8_t* b = app_claim(core, slot, OrderCancelReject_BLOCK_LENGTH, OrderCancelReject_TEMPLATE_ID)
    OrderCancelReject_set_clOrdId(b, cl_ord_id)
    OrderCancelReject_set_origClOrdId(b, orig_cl_ord_id)
    OrderCancelReject_set_orderId(b, order_id)
    OrderCancelReject_set_responseTo(b, response_to)
    OrderCancelReject_set_reason(b, reason)


cdef void mass_cancel_report_write(EngineCore* core, uint32_t slot, uint64_t cl_ord_id, uint32_t instrument_id,
                                   uint32_t count, uint8_t reason) noexcept nogil:
    cdef uint8_t* b = app_claim(core, slot, OrderMassCancelReport_BLOCK_LENGTH, OrderMassCancelReport_TEMPLATE_ID)
    OrderMassCancelReport_set_clOrdId(b, cl_ord_id)
    OrderMassCancelReport_set_instrumentId(b, instrument_id)
    OrderMassCancelReport_set_canceledCount(b, count)
    OrderMassCancelReport_set_reason(b, reason)


# To an established session (`slot`, sequenced, refSeqNo its implicit number) or, with slot 0, to a bare
# transport (seqNum 0, not retained).
cdef void message_reject_write(EngineCore* core, uint32_t slot, uint32_t transport, uint64_t ref_seq,
                               uint64_t ref_cl_ord_id, uint32_t template_id, uint32_t length,
                               uint8_t reason) noexcept nogil:
    cdef uint8_t* b
    if slot != 0:
        b = app_claim(core, slot, MessageReject_BLOCK_LENGTH, MessageReject_TEMPLATE_ID)
    else:
        b = session_claim(core, 0, transport, MessageReject_BLOCK_LENGTH, MessageReject_TEMPLATE_ID)
        MessageReject_set_seqNum(b, 0)
        MessageReject_set_transactTime(b, core.last_transact_time)
    MessageReject_set_refSeqNo(b, ref_seq)
    MessageReject_set_refClOrdId(b, ref_cl_ord_id)
    MessageReject_set_refTemplateId(b, template_id)
    MessageReject_set_refLength(b, length)
    MessageReject_set_reason(b, reason)


# ---------------------------------------------------------------------------------------------------
# The book

# Rests an order at the tail of its price level. The side must have room for one more level.
cdef void book_add(EngineCore* core, uint32_t slot) noexcept nogil:
    cdef Order* o = &core.pool.items[slot]
    cdef uint32_t side_index = o.side - Side_Buy
    cdef BookSide* side = &core.instruments[o.instrument].sides[side_index]
    cdef int64_t key = side_key(side_index, o.price)
    cdef uint32_t pos = side_search(side, key)
    cdef uint32_t level_slot
    cdef Level* level
    if pos < side.count and side.keys[pos] == key:
        level_slot = side.levels[pos]
        level = &core.level_pool.items[level_slot]
        md_touch(core, level, level_slot, o.instrument, o.side)
    else:
        level_slot = level_acquire(&core.level_pool)   # never 0: there are no more levels than orders
        level = &core.level_pool.items[level_slot]
        level.price = o.price
        level.qty = 0
        level.count = 0
        level.head = 0
        level.tail = 0
        level.touch = 0
        side_insert(side, pos, key, level_slot)
        md_touch_new(core, level, level_slot, o.instrument, o.side)
    o.level = level_slot
    o.next = 0
    o.prev = level.tail
    if level.tail:
        core.pool.items[level.tail].next = slot
    else:
        level.head = slot
    level.tail = slot
    level.qty += o.leaves_qty
    level.count += 1


cdef void book_level_remove(EngineCore* core, Instrument* instrument, uint32_t side_index,
                            uint32_t level_slot) noexcept nogil:
    cdef BookSide* side = &instrument.sides[side_index]
    cdef Level* level = &core.level_pool.items[level_slot]
    cdef uint32_t pos = side_search(side, side_key(side_index, level.price))
    side_erase(side, pos)
    md_touch_gone(core, level)
    level_release(&core.level_pool, level_slot)


# Takes a resting order off the book (not out of the id table or the pool).
cdef void book_cancel(EngineCore* core, uint32_t slot) noexcept nogil:
    cdef Order* o = &core.pool.items[slot]
    cdef Level* level = &core.level_pool.items[o.level]
    md_touch(core, level, o.level, o.instrument, o.side)
    if o.prev:
        core.pool.items[o.prev].next = o.next
    else:
        level.head = o.next
    if o.next:
        core.pool.items[o.next].prev = o.prev
    else:
        level.tail = o.prev
    level.qty -= o.leaves_qty
    level.count -= 1
    if level.count == 0:
        book_level_remove(core, &core.instruments[o.instrument], o.side - Side_Buy, o.level)
    o.level = 0


# Key of the worst opposite level an order with this limit can trade against (INT64_MIN: any).
cdef inline int64_t cross_key(uint32_t side_index, int64_t price, bint any_price) noexcept nogil:
    return INT64_MIN if any_price else -side_key(side_index, price)


cdef inline bint book_crosses(const BookSide* opposite, int64_t limit_key) noexcept nogil:
    return opposite.count != 0 and opposite.keys[opposite.count - 1] >= limit_key


cdef int64_t book_crossable_qty(const EngineCore* core, const BookSide* opposite, int64_t limit_key,
                                int64_t wanted) noexcept nogil:
    cdef int64_t total = 0
    cdef uint32_t i = opposite.count
    while i > 0 and total < wanted:
        i -= 1
        if opposite.keys[i] < limit_key:
            break
        total += core.level_pool.items[opposite.levels[i]].qty
    return total


# Matches the taker against the opposite side in price-time priority at the makers' prices.
cdef void book_match(EngineCore* core, uint32_t taker_slot, int64_t limit_key) noexcept nogil:
    cdef Order* taker = &core.pool.items[taker_slot]
    cdef Instrument* instrument = &core.instruments[taker.instrument]
    cdef uint32_t opposite_index = ASK if taker.side == Side_Buy else BID
    cdef BookSide* opposite = &instrument.sides[opposite_index]
    cdef uint8_t opposite_side = Side_Sell if taker.side == Side_Buy else Side_Buy
    cdef uint32_t level_slot, maker_slot
    cdef Level* level
    cdef Order* maker
    cdef int64_t qty
    cdef uint64_t trade_id
    while taker.leaves_qty > 0 and book_crosses(opposite, limit_key):
        level_slot = opposite.levels[opposite.count - 1]
        level = &core.level_pool.items[level_slot]
        md_touch(core, level, level_slot, taker.instrument, opposite_side)
        while taker.leaves_qty > 0 and level.head != 0:
            maker_slot = level.head
            maker = &core.pool.items[maker_slot]
            prefetch(&core.pool.items[maker.next])
            prefetch(&core.pool.items[maker.next].next)
            if maker.leaves_qty <= taker.leaves_qty:
                prefetch(&core.ids.entries[ids_hash(maker.session, maker.cl_ord_id) & core.ids.mask])
            qty = taker.leaves_qty if taker.leaves_qty < maker.leaves_qty else maker.leaves_qty
            maker.leaves_qty -= qty
            maker.cum_qty += qty
            taker.leaves_qty -= qty
            taker.cum_qty += qty
            level.qty -= qty
            trade_id = core.next_trade_id
            core.next_trade_id += 1
            core.traded_qty += qty
            rep_trade(core, maker, level.price, qty, trade_id, LiquidityIndicator_Added)
            rep_trade(core, taker, level.price, qty, trade_id, LiquidityIndicator_Removed)
            if core.market_data:
                md_trade(core, instrument.id, trade_id, level.price, qty, taker.side)
            if maker.leaves_qty == 0:
                level.head = maker.next
                if level.head:
                    core.pool.items[level.head].prev = 0
                else:
                    level.tail = 0
                level.count -= 1
                ids_remove(&core.ids, maker.session, maker.cl_ord_id, maker_slot)
                pool_release(&core.pool, maker_slot)
        if level.count == 0:
            opposite.count -= 1
            md_touch_gone(core, level)
            level_release(&core.level_pool, level_slot)


# Ends an order that is not (or no longer) on the book.
cdef inline void order_end(EngineCore* core, uint32_t slot, uint8_t reason) noexcept nogil:
    cdef Order* o = &core.pool.items[slot]
    o.leaves_qty = 0
    rep_canceled(core, o, o.cl_ord_id, 0, reason)
    pool_release(&core.pool, slot)


# ---------------------------------------------------------------------------------------------------
# Message handlers

cdef inline bint valid_time_in_force(uint8_t tif) noexcept nogil:
    return (tif == TimeInForce_Day or tif == TimeInForce_GoodTillCancel
            or tif == TimeInForce_ImmediateOrCancel or tif == TimeInForce_FillOrKill)


cdef uint8_t new_order_check(EngineCore* core, const Order* o, int index, int64_t display_qty) noexcept nogil:
    cdef Instrument* instrument
    cdef BookSide* opposite
    if index < 0:
        return Reason_UnknownInstrument
    instrument = &core.instruments[index]
    if o.side != Side_Buy and o.side != Side_Sell:
        return Reason_InvalidSide
    if o.ord_type == OrdType_Stop or o.ord_type == OrdType_StopLimit:
        return Reason_Unsupported
    if o.ord_type != OrdType_Market and o.ord_type != OrdType_Limit:
        return Reason_InvalidOrdType
    if not valid_time_in_force(o.time_in_force):
        return Reason_InvalidTimeInForce
    if o.order_qty <= 0 or o.order_qty > MAX_ORDER_QTY:
        return Reason_InvalidQuantity
    if o.ord_type == OrdType_Limit:
        if o.price == INT64_NULL or o.price <= 0:
            return Reason_InvalidPrice
        if o.price % instrument.tick != 0:
            return Reason_PriceOffTick
    if display_qty != INT64_NULL:
        return Reason_Unsupported
    if o.stp_mode != SelfTradePrevention_None:
        return Reason_Unsupported
    if o.stop_price != INT64_NULL:
        return Reason_InvalidStopPrice
    if ids_find(core, o.session, o.cl_ord_id) != 0:
        return Reason_DuplicateClOrdId
    if (core.pool.free_head == 0 and core.pool.high_water == core.pool.capacity) \
            or side_reserve(&instrument.sides[o.side - Side_Buy], 1) != 0:
        return Reason_PoolFull
    if o.ord_type == OrdType_Limit and o.flags & (1 << OrderFlags_PostOnly_BIT):
        opposite = &instrument.sides[ASK if o.side == Side_Buy else BID]
        if book_crosses(opposite, cross_key(o.side - Side_Buy, o.price, False)):
            return Reason_PostOnlyWouldCross
    return Reason_None


cdef void on_new_order(EngineCore* core, const uint8_t* b, uint32_t session) noexcept nogil:
    cdef Order request
    request.order_id = 0
    request.cl_ord_id = NewOrderSingle_clOrdId(b)
    request.price = PriceNull_mantissa(b + NewOrderSingle_price_OFFSET)
    request.order_qty = NewOrderSingle_quantity(b)
    request.leaves_qty = 0
    request.cum_qty = 0
    request.display_qty = INT64_NULL
    request.stop_price = PriceNull_mantissa(b + NewOrderSingle_stopPrice_OFFSET)
    request.session = session
    request.account = NewOrderSingle_account(b)
    request.instrument_id = NewOrderSingle_instrumentId(b)
    request.level = 0
    request.prev = 0
    request.next = 0
    request.instrument = 0
    request.side = NewOrderSingle_side(b)
    request.ord_type = NewOrderSingle_ordType(b)
    request.time_in_force = NewOrderSingle_timeInForce(b)
    request.flags = NewOrderSingle_flags(b)
    request.stp_mode = NewOrderSingle_selfTradePrevention(b)
    cdef int index = instrument_index(core, request.instrument_id)
    cdef uint8_t reason = new_order_check(core, &request, index, NewOrderSingle_displayQty(b))
    if reason != Reason_None:
        rep_rejected(core, session, request.cl_ord_id, reason)
        return

    cdef uint32_t slot = pool_acquire(&core.pool)
    cdef Order* o = &core.pool.items[slot]
    o[0] = request
    o.order_id = core.next_order_id
    core.next_order_id += 1
    o.instrument = <uint16_t>index
    o.leaves_qty = o.order_qty
    rep_new(core, o)

    cdef bint market = o.ord_type == OrdType_Market
    cdef int64_t limit_key = cross_key(o.side - Side_Buy, o.price, market)
    cdef BookSide* opposite = &core.instruments[index].sides[ASK if o.side == Side_Buy else BID]
    if o.time_in_force == TimeInForce_FillOrKill:
        if book_crossable_qty(core, opposite, limit_key, o.order_qty) < o.order_qty:
            order_end(core, slot, Reason_FillOrKillNotFillable)
            return
    book_match(core, slot, limit_key)
    if o.leaves_qty == 0:
        pool_release(&core.pool, slot)
    elif market:
        order_end(core, slot, Reason_NoLiquidity)
    elif o.time_in_force == TimeInForce_ImmediateOrCancel:
        order_end(core, slot, Reason_ImmediateOrCancel)
    else:
        book_add(core, slot)
        ids_insert(&core.ids, o.session, o.cl_ord_id, slot)


cdef void on_cancel(EngineCore* core, const uint8_t* b, uint32_t session) noexcept nogil:
    cdef uint64_t cl_ord_id = OrderCancelRequest_clOrdId(b)
    cdef uint64_t orig_cl_ord_id = OrderCancelRequest_origClOrdId(b)
    cdef uint32_t instrument_id = OrderCancelRequest_instrumentId(b)
    cdef uint8_t side = OrderCancelRequest_side(b)
    cdef uint32_t slot = ids_find(core, session, orig_cl_ord_id)
    cdef Order* o
    if slot == 0:
        cancel_reject_write(core, session, cl_ord_id, orig_cl_ord_id, 0,
                            CancelRejectResponseTo_Cancel, Reason_UnknownOrder)
        return
    o = &core.pool.items[slot]
    if o.instrument_id != instrument_id or o.side != side:
        cancel_reject_write(core, session, cl_ord_id, orig_cl_ord_id, o.order_id,
                            CancelRejectResponseTo_Cancel, Reason_UnknownOrder)
        return
    book_cancel(core, slot)
    ids_remove(&core.ids, session, orig_cl_ord_id, slot)
    o.leaves_qty = 0
    rep_canceled(core, o, cl_ord_id, orig_cl_ord_id, Reason_UserRequest)
    pool_release(&core.pool, slot)


cdef void on_replace(EngineCore* core, const uint8_t* b, uint32_t session) noexcept nogil:
    cdef uint64_t cl_ord_id = OrderCancelReplaceRequest_clOrdId(b)
    cdef uint64_t orig_cl_ord_id = OrderCancelReplaceRequest_origClOrdId(b)
    cdef uint32_t instrument_id = OrderCancelReplaceRequest_instrumentId(b)
    cdef uint8_t side = OrderCancelReplaceRequest_side(b)
    cdef int64_t price = Price_mantissa(b + OrderCancelReplaceRequest_price_OFFSET)
    cdef int64_t qty = OrderCancelReplaceRequest_quantity(b)
    cdef uint32_t slot = ids_find(core, session, orig_cl_ord_id)
    cdef Order* o
    if slot == 0:
        cancel_reject_write(core, session, cl_ord_id, orig_cl_ord_id, 0,
                            CancelRejectResponseTo_Replace, Reason_UnknownOrder)
        return
    o = &core.pool.items[slot]
    cdef Instrument* instrument = &core.instruments[o.instrument]
    cdef uint32_t side_index = o.side - Side_Buy
    cdef uint8_t reason = Reason_None
    if o.instrument_id != instrument_id or o.side != side:
        reason = Reason_UnknownOrder
    elif qty <= 0 or qty > MAX_ORDER_QTY:
        reason = Reason_InvalidQuantity
    elif price <= 0:
        reason = Reason_InvalidPrice
    elif price % instrument.tick != 0:
        reason = Reason_PriceOffTick
    elif cl_ord_id != orig_cl_ord_id and ids_find(core, session, cl_ord_id) != 0:
        reason = Reason_DuplicateClOrdId
    if reason != Reason_None:
        cancel_reject_write(core, session, cl_ord_id, orig_cl_ord_id, o.order_id,
                            CancelRejectResponseTo_Replace, reason)
        return

    if qty <= o.cum_qty:
        book_cancel(core, slot)
        ids_remove(&core.ids, session, orig_cl_ord_id, slot)
        o.leaves_qty = 0
        rep_canceled(core, o, cl_ord_id, orig_cl_ord_id, Reason_ReplacedAtOrBelowFilled)
        pool_release(&core.pool, slot)
        return

    cdef int64_t limit_key = cross_key(side_index, price, False)
    cdef bint crosses = book_crosses(&instrument.sides[1 - side_index], limit_key)
    if crosses and o.flags & (1 << OrderFlags_PostOnly_BIT):
        reason = Reason_PostOnlyWouldCross
    elif side_reserve(&instrument.sides[side_index], 1) != 0:
        reason = Reason_PoolFull
    if reason != Reason_None:
        cancel_reject_write(core, session, cl_ord_id, orig_cl_ord_id, o.order_id,
                            CancelRejectResponseTo_Replace, reason)
        return

    cdef Level* level
    cdef int64_t reduction
    if price == o.price and qty <= o.order_qty:
        # keeps its place in the queue
        reduction = o.order_qty - qty
        level = &core.level_pool.items[o.level]
        md_touch(core, level, o.level, o.instrument, o.side)
        level.qty -= reduction
        o.leaves_qty -= reduction
        o.order_qty = qty
        if cl_ord_id != orig_cl_ord_id:
            ids_remove(&core.ids, session, orig_cl_ord_id, slot)
            ids_insert(&core.ids, session, cl_ord_id, slot)
        o.cl_ord_id = cl_ord_id
        rep_replaced(core, o, orig_cl_ord_id)
        return

    book_cancel(core, slot)
    ids_remove(&core.ids, session, orig_cl_ord_id, slot)
    o.cl_ord_id = cl_ord_id
    o.price = price
    o.order_qty = qty
    o.leaves_qty = qty - o.cum_qty
    rep_replaced(core, o, orig_cl_ord_id)
    if crosses:
        book_match(core, slot, limit_key)
    if o.leaves_qty == 0:
        pool_release(&core.pool, slot)
    else:
        book_add(core, slot)
        ids_insert(&core.ids, session, cl_ord_id, slot)


# Book order: bids best to worst, then asks best to worst, FIFO within a level.
cdef uint32_t mass_cancel_instrument(EngineCore* core, uint32_t index, uint32_t session, uint8_t reason) noexcept nogil:
    cdef Instrument* instrument = &core.instruments[index]
    cdef uint32_t count = 0, side_index, i, slot, next_slot
    cdef Order* o
    for side_index in range(2):
        i = instrument.sides[side_index].count
        while i > 0:
            i -= 1
            # canceling empties at most level i, and erasing it moves only the levels already visited
            slot = core.level_pool.items[instrument.sides[side_index].levels[i]].head
            while slot != 0:
                o = &core.pool.items[slot]
                next_slot = o.next
                if o.session == session:
                    book_cancel(core, slot)
                    ids_remove(&core.ids, session, o.cl_ord_id, slot)
                    o.leaves_qty = 0
                    rep_canceled(core, o, o.cl_ord_id, 0, reason)
                    pool_release(&core.pool, slot)
                    count += 1
                slot = next_slot
    return count


cdef void on_mass_cancel(EngineCore* core, const uint8_t* b, uint32_t session) noexcept nogil:
    cdef uint64_t cl_ord_id = OrderMassCancelRequest_clOrdId(b)
    cdef uint32_t instrument_id = OrderMassCancelRequest_instrumentId(b)
    cdef uint32_t count = 0, i
    cdef int index
    if instrument_id == 0:
        for i in range(core.instrument_count):
            count += mass_cancel_instrument(core, i, session, Reason_MassCancel)
    else:
        index = instrument_index(core, instrument_id)
        if index < 0:
            mass_cancel_report_write(core, session, cl_ord_id, instrument_id, 0, Reason_UnknownInstrument)
            return
        count = mass_cancel_instrument(core, index, session, Reason_MassCancel)
    mass_cancel_report_write(core, session, cl_ord_id, instrument_id, count, Reason_None)


include "session_layer.pxi"


# ---------------------------------------------------------------------------------------------------
# Frames

cdef inline uint16_t inbound_block_length(uint16_t template_id) noexcept nogil:
    if template_id == NewOrderSingle_TEMPLATE_ID:
        return NewOrderSingle_BLOCK_LENGTH
    if template_id == OrderCancelRequest_TEMPLATE_ID:
        return OrderCancelRequest_BLOCK_LENGTH
    if template_id == OrderCancelReplaceRequest_TEMPLATE_ID:
        return OrderCancelReplaceRequest_BLOCK_LENGTH
    if template_id == OrderMassCancelRequest_TEMPLATE_ID:
        return OrderMassCancelRequest_BLOCK_LENGTH
    if template_id == Negotiate_TEMPLATE_ID:
        return Negotiate_BLOCK_LENGTH
    if template_id == Establish_TEMPLATE_ID:
        return Establish_BLOCK_LENGTH
    if template_id == Sequence_TEMPLATE_ID:
        return Sequence_BLOCK_LENGTH
    if template_id == RetransmitRequest_TEMPLATE_ID:
        return RetransmitRequest_BLOCK_LENGTH
    if template_id == Terminate_TEMPLATE_ID:
        return Terminate_BLOCK_LENGTH
    if template_id == EngineTick_TEMPLATE_ID:
        return EngineTick_BLOCK_LENGTH
    if template_id == TransportLost_TEMPLATE_ID:
        return TransportLost_BLOCK_LENGTH
    if template_id == EngineStart_TEMPLATE_ID:
        return EngineStart_BLOCK_LENGTH
    return 0


cdef inline bint is_session_template(uint16_t template_id) noexcept nogil:
    return (Negotiate_TEMPLATE_ID <= template_id <= Terminate_TEMPLATE_ID
            or EngineTick_TEMPLATE_ID <= template_id <= EngineStart_TEMPLATE_ID)


# Reason_None when the frame is a well-formed message of ours; reads what it can of the header.
cdef inline uint8_t frame_check(const uint8_t* frame, uint32_t length, uint16_t* template_id,
                                uint16_t* block_length) noexcept nogil:
    cdef uint16_t ours
    template_id[0] = 0
    block_length[0] = 0
    if length < HEADER_LENGTH:
        if length >= messageHeader_templateId_OFFSET + 2:
            template_id[0] = messageHeader_templateId(frame)
        return Reason_MalformedFrame
    template_id[0] = messageHeader_templateId(frame)
    block_length[0] = messageHeader_blockLength(frame)
    if messageHeader_schemaId(frame) != SCHEMA_ID:
        return Reason_UnknownSchema
    # a newer version is fine: read our fields and skip what follows (SBE extension rules)
    if <uint32_t>HEADER_LENGTH + block_length[0] > length:
        return Reason_MalformedFrame
    ours = inbound_block_length(template_id[0])
    if ours == 0:
        return Reason_UnknownTemplate
    if block_length[0] < ours:
        return Reason_MalformedFrame
    return Reason_None


cdef int engine_on_frame(EngineCore* core, const uint8_t* frame, uint32_t length, uint32_t transport,
                         uint64_t timestamp_ns) noexcept nogil:
    core.error = CORE_OK
    core.last_transact_time = timestamp_ns
    cdef uint16_t template_id, block_length
    cdef uint8_t reason = frame_check(frame, length, &template_id, &block_length)
    cdef uint32_t slot
    cdef uint64_t seq
    cdef Session* s
    if is_session_template(template_id):
        if reason == Reason_None:
            session_on_frame(core, frame, length, template_id, block_length, transport)
        else:
            unestablished_reject(core, transport, template_id, length, reason)
    else:
        slot = established_slot(core, transport, template_id, length)
        if slot != 0:
            s = &core.sessions[slot]
            seq = s.next_in_seq
            s.next_in_seq += 1
            if reason != Reason_None:
                message_reject_write(core, slot, 0, seq, 0, template_id, length, reason)
            elif s.rate != 0 and not bucket_take(&s.tokens, &s.tokens_ns, s.rate, s.burst, timestamp_ns):
                core.session_counters.throttled += 1
                # every order-entry message starts with its clOrdId
                message_reject_write(core, slot, 0, seq, NewOrderSingle_clOrdId(frame + HEADER_LENGTH),
                                     template_id, length, Reason_Throttled)
            elif template_id == NewOrderSingle_TEMPLATE_ID:
                on_new_order(core, frame + HEADER_LENGTH, slot)
            elif template_id == OrderCancelRequest_TEMPLATE_ID:
                on_cancel(core, frame + HEADER_LENGTH, slot)
            elif template_id == OrderCancelReplaceRequest_TEMPLATE_ID:
                on_replace(core, frame + HEADER_LENGTH, slot)
            else:
                on_mass_cancel(core, frame + HEADER_LENGTH, slot)
    exec_retain_pending(core)
    if core.touch_count:
        md_flush(core)
    return core.error


cdef inline int64_t monotonic_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


# The id-table key a record will look up first, or 0 for none.
cdef inline uint64_t record_key(const uint8_t* record, uint16_t* template_id) noexcept nogil:
    cdef uint32_t length = load_u32le(record)
    cdef const uint8_t* frame = record + INBOUND_RECORD_HEADER_LENGTH
    template_id[0] = 0
    if length < HEADER_LENGTH + 16:
        return 0
    template_id[0] = messageHeader_templateId(frame)
    if template_id[0] == NewOrderSingle_TEMPLATE_ID:
        return NewOrderSingle_clOrdId(frame + HEADER_LENGTH)
    if template_id[0] == OrderCancelRequest_TEMPLATE_ID:
        return OrderCancelRequest_origClOrdId(frame + HEADER_LENGTH)
    if template_id[0] == OrderCancelReplaceRequest_TEMPLATE_ID:
        return OrderCancelReplaceRequest_origClOrdId(frame + HEADER_LENGTH)
    return 0


cdef inline uint32_t record_target(EngineCore* core, const uint8_t* record) noexcept nogil:
    """Best guess at the order slot a cancel or replace record names (0: none)."""
    cdef uint16_t template_id
    cdef uint64_t key = record_key(record, &template_id)
    if template_id == OrderCancelRequest_TEMPLATE_ID or template_id == OrderCancelReplaceRequest_TEMPLATE_ID:
        return ids_guess(&core.ids, transport_find(core, load_u32le(record + 4)), key)
    return 0


# Batches know what comes next, so the cache misses of the next records overlap with the work on this
# one, in three steps a record apart: the id-table entry its key hashes to (three records ahead), the
# order a cancel or replace names (two ahead), then that order's queue neighbours and level (next).
cdef inline void prefetch_ahead(EngineCore* core, const uint8_t* r1, const uint8_t* r2,
                                const uint8_t* r3) noexcept nogil:
    cdef uint16_t template_id
    cdef uint64_t key
    cdef uint32_t slot
    cdef const Order* o
    if r3 != NULL:
        key = record_key(r3, &template_id)
        if template_id != 0:
            prefetch(&core.ids.entries[ids_hash(transport_find(core, load_u32le(r3 + 4)), key) & core.ids.mask])
    if r2 != NULL:
        slot = record_target(core, r2)
        if slot != 0:
            o = &core.pool.items[slot]
            prefetch(o)
            prefetch(<const uint8_t*>o + sizeof(Order) - 1)
    if r1 != NULL:
        slot = record_target(core, r1)
        if slot != 0:
            o = &core.pool.items[slot]
            prefetch(&core.pool.items[o.prev].next)
            prefetch(&core.pool.items[o.next].prev)
            prefetch(&core.level_pool.items[o.level])


cdef inline size_t record_next(const uint8_t* records, size_t length, size_t offset) noexcept nogil:
    return offset + INBOUND_RECORD_HEADER_LENGTH + load_u32le(records + offset) if offset < length else length


cdef int engine_on_records(EngineCore* core, const uint8_t* records, size_t length, size_t* consumed,
                           int64_t* latencies, size_t* outbound_bytes) noexcept nogil:
    cdef size_t offset = 0, o1, o2, o3, n = 0
    cdef int rc = CORE_OK
    cdef int64_t start = 0
    while offset < length:
        if latencies != NULL:
            start = monotonic_ns()
        o1 = record_next(records, length, offset)
        o2 = record_next(records, length, o1)
        o3 = record_next(records, length, o2)
        prefetch_ahead(core, records + o1 if o1 < length else NULL, records + o2 if o2 < length else NULL,
                       records + o3 if o3 < length else NULL)
        rc = engine_on_frame(core, records + offset + INBOUND_RECORD_HEADER_LENGTH, load_u32le(records + offset),
                             load_u32le(records + offset + 4), load_u64le(records + offset + 8))
        if latencies != NULL:
            latencies[n] = monotonic_ns() - start
            outbound_bytes[0] += core.exec_out.length + core.md_out.length
            core.exec_out.length = 0
            core.md_out.length = 0
        if rc != CORE_OK:
            break
        offset = o1
        n += 1
    consumed[0] = offset
    return rc


# ---------------------------------------------------------------------------------------------------
# Setup

cdef size_t engine_prefault(EngineCore* core) noexcept nogil:
    """Fault the pools and the id table in now (contents unchanged); returns the bytes they span."""
    cdef size_t slots = <size_t>core.pool.capacity + 1
    return (region_prefault(core.pool.items, slots * sizeof(Order))
            + region_prefault(core.level_pool.items, slots * sizeof(Level))
            + region_prefault(core.ids.entries, (<size_t>core.ids.mask + 1) * sizeof(IdEntry))
            + region_prefault(core.touches, slots * sizeof(Touch)))


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
    if (core.pool.items == NULL or core.level_pool.items == NULL or core.ids.entries == NULL
            or core.touches == NULL or core.instruments == NULL or core.instrument_keys == NULL
            or core.instrument_values == NULL
            or outbuf_init(&core.exec_out, OUTBUF_INITIAL) != 0 or outbuf_init(&core.md_out, OUTBUF_INITIAL) != 0):
        engine_close(core)
        return CORE_ERR_NOMEM
    for i in range(count):
        core.instruments[i].id = ids[i]
        core.instruments[i].tick = ticks[i]
        for j in range(2):
            if side_reserve(&core.instruments[i].sides[j], SIDE_INITIAL) != 0:
                engine_close(core)
                return CORE_ERR_NOMEM
        j = (ids[i] * 0x9E3779B1U) & core.instrument_mask
        while core.instrument_keys[j] != 0:
            j = (j + 1) & core.instrument_mask
        core.instrument_keys[j] = ids[i]
        core.instrument_values[j] = <uint16_t>(i + 1)
    return CORE_OK


cdef void engine_close(EngineCore* core) noexcept nogil:
    cdef uint32_t i, j
    if core.sessions != NULL:
        for i in range(core.session_count + 1):
            ring_free(&core.sessions[i].ring)
    free(core.sessions)
    free(core.transport_keys)
    free(core.transport_values)
    if core.instruments != NULL:
        for i in range(core.instrument_count):
            for j in range(2):
                free(core.instruments[i].sides[j].keys)
                free(core.instruments[i].sides[j].levels)
    free(core.instruments)
    free(core.instrument_keys)
    free(core.instrument_values)
    region_unmap(core.pool.items, (<size_t>core.pool.capacity + 1) * sizeof(Order))
    region_unmap(core.level_pool.items, (<size_t>core.level_pool.capacity + 1) * sizeof(Level))
    region_unmap(core.ids.entries, (core.ids.mask + 1) * sizeof(IdEntry))
    region_unmap(core.touches, (<size_t>core.pool.capacity + 1) * sizeof(Touch))
    outbuf_free(&core.exec_out)
    outbuf_free(&core.md_out)
    memset(core, 0, sizeof(EngineCore))


# ---------------------------------------------------------------------------------------------------
# Snapshot

cdef size_t book_snapshot_length(const EngineCore* core, uint32_t index) noexcept nogil:
    cdef const Instrument* instrument = &core.instruments[index]
    return (HEADER_LENGTH + BookSnapshot_BLOCK_LENGTH + BookSnapshot_levels_HEADER_LENGTH
            + (<size_t>instrument.sides[BID].count + instrument.sides[ASK].count) * BookSnapshot_levels_BLOCK_LENGTH)


# `out` holds book_snapshot_length() bytes; the caller checks the level count fits the group (65535).
cdef void book_snapshot_encode(const EngineCore* core, uint32_t index, uint8_t* out) noexcept nogil:
    cdef const Instrument* instrument = &core.instruments[index]
    cdef uint8_t* b = header_write(out, BookSnapshot_BLOCK_LENGTH, BookSnapshot_TEMPLATE_ID)
    BookSnapshot_set_seqNum(b, core.next_md_seq - 1)
    BookSnapshot_set_transactTime(b, core.last_transact_time)
    BookSnapshot_set_instrumentId(b, instrument.id)
    BookSnapshot_set_lastTradeId(b, core.next_trade_id - 1)
    cdef uint8_t* g = b + BookSnapshot_BLOCK_LENGTH
    groupSizeEncoding_set_blockLength(g, BookSnapshot_levels_BLOCK_LENGTH)
    groupSizeEncoding_set_numInGroup(g, <uint16_t>(instrument.sides[BID].count + instrument.sides[ASK].count))
    g += BookSnapshot_levels_HEADER_LENGTH
    cdef uint32_t side_index, i
    cdef const BookSide* side
    cdef const Level* level
    for side_index in range(2):
        side = &instrument.sides[side_index]
        i = side.count
        while i > 0:
            i -= 1
            level = &core.level_pool.items[side.levels[i]]
            BookSnapshot_levels_set_side(g, Side_Buy + side_index)
            Price_set_mantissa(g + BookSnapshot_levels_price_OFFSET, level.price)
            BookSnapshot_levels_set_quantity(g, level.qty)
            BookSnapshot_levels_set_orderCount(g, level.count)
            g += BookSnapshot_levels_BLOCK_LENGTH


# ---------------------------------------------------------------------------------------------------
# Snapshot restore (not on the hot path)

cdef uint32_t engine_restore_order(EngineCore* core, const Order* order) noexcept nogil:
    """Rest an order read from a snapshot at the tail of its level: no reports, no market data.

    Orders restored in the snapshot's order get back their time priority. Returns the pool slot, or
    0 when the order does not fit (unknown instrument, bad side, nothing left, duplicate id, pool full).
    """
    cdef int index = instrument_index(core, order.instrument_id)
    if index < 0 or (order.side != Side_Buy and order.side != Side_Sell) or order.leaves_qty <= 0:
        return 0
    if ids_find(core, order.session, order.cl_ord_id) != 0:
        return 0
    if side_reserve(&core.instruments[index].sides[order.side - Side_Buy], 1) != 0:
        return 0
    cdef uint32_t slot = pool_acquire(&core.pool)
    if slot == 0:
        return 0
    cdef Order* o = &core.pool.items[slot]
    o[0] = order[0]
    o.instrument = <uint16_t>index
    o.level = 0
    o.prev = 0
    o.next = 0
    cdef bint market_data = core.market_data
    core.market_data = False
    book_add(core, slot)
    core.market_data = market_data
    ids_insert(&core.ids, o.session, o.cl_ord_id, slot)
    return slot
