# Part of lob/core.pyx (included): Day and GoodTillDate orders. Day orders expire at the end-of-day
# request; GoodTillDate orders when an EngineTick's record clock reaches their expiry (a heap by expiry
# then order id, so the Expired reports of one tick come in that order). Both sweeps cover untriggered
# stop orders too (a GoodTillDate stop's heap entry is made on arrival, and stays right once it rests).

cdef int expiry_init(EngineCore* core) noexcept nogil:
    cdef ExpiryHeap* h = &core.expiry
    h.capacity = 2 * core.pool.capacity if core.pool.capacity < 0x7FFFFFFF else 0xFFFFFFFF
    h.count = 0
    h.items = <ExpiryEntry*>region_map(<size_t>h.capacity * sizeof(ExpiryEntry))
    return CORE_OK if h.items != NULL else CORE_ERR_NOMEM


cdef void expiry_close(EngineCore* core) noexcept nogil:
    region_unmap(core.expiry.items, <size_t>core.expiry.capacity * sizeof(ExpiryEntry))
    memset(&core.expiry, 0, sizeof(ExpiryHeap))


cdef inline bint expiry_before(const ExpiryEntry* a, const ExpiryEntry* b) noexcept nogil:
    return a.expire_time < b.expire_time or (a.expire_time == b.expire_time and a.order_id < b.order_id)


cdef void expiry_sift_up(ExpiryHeap* h, uint32_t i) noexcept nogil:
    cdef ExpiryEntry e = h.items[i]
    cdef uint32_t parent
    while i > 0:
        parent = (i - 1) // 2
        if not expiry_before(&e, &h.items[parent]):
            break
        h.items[i] = h.items[parent]
        i = parent
    h.items[i] = e


cdef void expiry_sift_down(ExpiryHeap* h, uint32_t i) noexcept nogil:
    cdef ExpiryEntry e = h.items[i]
    cdef uint32_t child
    while True:
        child = 2 * i + 1
        if child >= h.count:
            break
        if child + 1 < h.count and expiry_before(&h.items[child + 1], &h.items[child]):
            child += 1
        if not expiry_before(&h.items[child], &e):
            break
        h.items[i] = h.items[child]
        i = child
    h.items[i] = e


# The order the entry was made for still lives in its slot (a slot reused gets a new order id; an order
# that ended is out of the id table).
cdef inline bint expiry_live(EngineCore* core, const ExpiryEntry* e) noexcept nogil:
    cdef const Order* o = &core.pool.items[e.slot]
    return o.order_id == e.order_id and ids_find(core, o.session, o.cl_ord_id) == e.slot


# Drops the entries of orders that ended; live GoodTillDate orders are at most the pool's capacity, so
# this frees at least half the heap.
cdef void expiry_compact(EngineCore* core) noexcept nogil:
    cdef ExpiryHeap* h = &core.expiry
    cdef uint32_t i, n = 0
    for i in range(h.count):
        if expiry_live(core, &h.items[i]):
            h.items[n] = h.items[i]
            n += 1
    h.count = n
    i = n // 2
    while i > 0:
        i -= 1
        expiry_sift_down(h, i)


# A GoodTillDate order now resting in `slot`.
cdef void expiry_add(EngineCore* core, uint32_t slot) noexcept nogil:
    cdef ExpiryHeap* h = &core.expiry
    cdef const Order* o = &core.pool.items[slot]
    if h.count == h.capacity:
        expiry_compact(core)
    h.items[h.count].order_id = o.order_id
    h.items[h.count].expire_time = o.expire_time
    h.items[h.count].slot = slot
    h.count += 1
    expiry_sift_up(h, h.count - 1)


cdef void rep_expired(EngineCore* core, const Order* o, uint8_t reason) noexcept nogil:
    cdef uint8_t* b = app_claim(core, o.session, ExecutionReportExpired_BLOCK_LENGTH,
                                ExecutionReportExpired_TEMPLATE_ID)
    ExecutionReportExpired_set_clOrdId(b, o.cl_ord_id)
    ExecutionReportExpired_set_orderId(b, o.order_id)
    ExecutionReportExpired_set_reason(b, reason)


cdef void order_expire(EngineCore* core, uint32_t slot, uint8_t reason) noexcept nogil:
    cdef Order* o = &core.pool.items[slot]
    if o.waiting:
        stops_remove(core, slot)
    elif o.level != 0:
        book_cancel(core, slot)
    ids_remove(&core.ids, o.session, o.cl_ord_id, slot)
    o.leaves_qty = 0
    rep_expired(core, o, reason)
    pool_release(&core.pool, slot)


# On every EngineTick: the GoodTillDate orders whose expiry the record clock has reached.
cdef void expiry_on_tick(EngineCore* core) noexcept nogil:
    cdef ExpiryHeap* h = &core.expiry
    cdef ExpiryEntry top
    while h.count != 0 and <uint64_t>h.items[0].expire_time * 1000000000ULL <= core.last_transact_time:
        top = h.items[0]
        h.count -= 1
        if h.count != 0:
            h.items[0] = h.items[h.count]
            expiry_sift_down(h, 0)
        if expiry_live(core, &top):
            order_expire(core, top.slot, Reason_ExpireTime)


# Every Day order of one instrument: each side in book order (bids best to worst, then asks), then
# that side's untriggered stops, the next to trigger first; returns how many.
cdef uint32_t end_of_day_instrument(EngineCore* core, uint32_t index) noexcept nogil:
    cdef Instrument* instrument = &core.instruments[index]
    cdef uint32_t count = 0, side_index, level_slot, slot, next_slot, i
    cdef int64_t price
    cdef StopBook* stops
    for side_index in range(2):
        level_slot = side_best(&instrument.sides[side_index])
        while level_slot != 0:
            # expiring empties at most this level; the next worse one is found from its price
            price = core.level_pool.items[level_slot].price
            slot = core.level_pool.items[level_slot].head
            while slot != 0:
                next_slot = core.pool.items[slot].next
                if core.pool.items[slot].time_in_force == TimeInForce_Day:
                    order_expire(core, slot, Reason_EndOfDay)
                    count += 1
                slot = next_slot
            level_slot = side_worse(&instrument.sides[side_index], price)
        stops = &instrument.stops[side_index]
        i = stops.count
        while i > 0:
            i -= 1
            slot = stops.slots[i]
            if core.pool.items[slot].time_in_force == TimeInForce_Day:
                stops_erase(stops, i)
                core.pool.items[slot].waiting = 0
                order_expire(core, slot, Reason_EndOfDay)
                count += 1
    return count
