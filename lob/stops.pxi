# Part of lob/core.pyx (included): stop and stop-limit orders waiting for their stop price, and
# triggering them.
#
# A buy stop triggers once a trade prints at or above its stop price, a sell stop at or below (one
# whose stop the last trade price has already reached triggers on arrival). Each instrument keeps the
# highest and lowest price traded since its stops were last checked; after every aggressor the stops
# those prices reached trigger in one generation: buy stops by ascending stop price, then sell stops by
# descending stop price, each in order of arrival (order id) at equal stops. Each sends
# ExecutionReportTriggered and then matches as a market (Stop) or limit (StopLimit) order; the trades of
# a generation decide the next one, until a generation trades nothing. A loop, not recursion: no depth.
#
# A replace of an untriggered stop sets its total quantity and, for a Stop, its stop price to the
# replace's price (a StopLimit: its limit price; the stop price stays). It keeps its arrival, and
# triggers at once if the last trade price has already reached its stop.

cdef inline bint stop_triggers_before(const Order* a, const Order* b) noexcept nogil:
    if a.stop_price != b.stop_price:
        return a.stop_price < b.stop_price if a.side == Side_Buy else a.stop_price > b.stop_price
    return a.order_id < b.order_id


cdef inline bint stop_reached_by(const Order* o, int64_t price) noexcept nogil:
    if price == INT64_NULL:
        return False
    return price >= o.stop_price if o.side == Side_Buy else price <= o.stop_price


cdef int stops_reserve(StopBook* book) noexcept nogil:
    if book.count < book.capacity:
        return 0
    cdef uint32_t capacity = book.capacity * 2 if book.capacity else 16
    cdef uint32_t* slots = <uint32_t*>realloc(book.slots, capacity * sizeof(uint32_t))
    if slots == NULL:
        return -1
    book.slots = slots
    book.capacity = capacity
    return 0


# First position whose order triggers before `o` (or is `o`): the array is sorted with the next to
# trigger at the end.
cdef uint32_t stops_search(const EngineCore* core, const StopBook* book, uint32_t slot) noexcept nogil:
    cdef const Order* o = &core.pool.items[slot]
    cdef uint32_t lo = 0, hi = book.count, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if book.slots[mid] == slot or stop_triggers_before(&core.pool.items[book.slots[mid]], o):
            hi = mid
        else:
            lo = mid + 1
    return lo


# The book must have room (stops_reserve).
cdef void stops_insert(EngineCore* core, uint32_t slot) noexcept nogil:
    cdef Order* o = &core.pool.items[slot]
    cdef StopBook* book = &core.instruments[o.instrument].stops[o.side - Side_Buy]
    cdef uint32_t pos = stops_search(core, book, slot)
    if pos < book.count:
        memmove(&book.slots[pos + 1], &book.slots[pos], (book.count - pos) * sizeof(uint32_t))
    book.slots[pos] = slot
    book.count += 1
    o.waiting = 1


cdef void stops_erase(StopBook* book, uint32_t pos) noexcept nogil:
    if pos + 1 < book.count:
        memmove(&book.slots[pos], &book.slots[pos + 1], (book.count - pos - 1) * sizeof(uint32_t))
    book.count -= 1


cdef void stops_remove(EngineCore* core, uint32_t slot) noexcept nogil:
    cdef Order* o = &core.pool.items[slot]
    cdef StopBook* book = &core.instruments[o.instrument].stops[o.side - Side_Buy]
    stops_erase(book, stops_search(core, book, slot))
    o.waiting = 0


# Takes a live order off the book or out of its stop book (not out of the id table or the pool).
cdef inline void order_take_off(EngineCore* core, uint32_t slot) noexcept nogil:
    if core.pool.items[slot].waiting:
        stops_remove(core, slot)
    else:
        book_cancel(core, slot)


cdef inline void stop_end(EngineCore* core, uint32_t slot, uint8_t reason) noexcept nogil:
    cdef Order* o = &core.pool.items[slot]
    ids_remove(&core.ids, o.session, o.cl_ord_id, slot)
    order_end(core, slot, reason)


# A triggered stop (in the id table) matches as a market or limit order, and rests if it may.
cdef void stop_execute(EngineCore* core, uint32_t slot) noexcept nogil:
    cdef Order* o = &core.pool.items[slot]
    cdef bint market = o.ord_type == OrdType_Stop
    cdef uint32_t side_index = o.side - Side_Buy
    cdef Instrument* instrument = &core.instruments[o.instrument]
    # a triggered Stop is a market order: the price band holds it too
    cdef int64_t limit_key = risk_market_key(instrument, side_index) if market else cross_key(side_index, o.price, False)
    rep_triggered(core, o)
    if o.time_in_force == TimeInForce_FillOrKill:
        if book_crossable_qty(core, o, &instrument.sides[1 - side_index], limit_key, o.leaves_qty) < o.leaves_qty:
            stop_end(core, slot, Reason_FillOrKillNotFillable)
            return
    book_match(core, slot, limit_key)
    if o.leaves_qty == 0:
        ids_remove(&core.ids, o.session, o.cl_ord_id, slot)
        pool_release(&core.pool, slot)
    elif market:
        stop_end(core, slot, risk_market_end_reason(instrument, side_index, limit_key))
    elif o.time_in_force == TimeInForce_ImmediateOrCancel:
        stop_end(core, slot, Reason_ImmediateOrCancel)
    elif side_reserve(&instrument.sides[side_index], 1) != 0:
        stop_end(core, slot, Reason_PoolFull)
    else:
        book_add(core, slot)


# After an aggressor has finished: trigger what its trades reached, generation by generation.
cdef void stops_run(EngineCore* core, uint32_t index) noexcept nogil:
    cdef Instrument* instrument = &core.instruments[index]
    cdef StopBook* book
    cdef int64_t high, low
    cdef uint32_t slot
    while instrument.trade_high != 0:
        high = instrument.trade_high
        low = instrument.trade_low
        instrument.trade_high = 0
        instrument.trade_low = 0
        book = &instrument.stops[BID]
        while book.count != 0 and core.pool.items[book.slots[book.count - 1]].stop_price <= high:
            book.count -= 1
            slot = book.slots[book.count]
            core.pool.items[slot].waiting = 0
            stop_execute(core, slot)
        book = &instrument.stops[ASK]
        while book.count != 0 and core.pool.items[book.slots[book.count - 1]].stop_price >= low:
            book.count -= 1
            slot = book.slots[book.count]
            core.pool.items[slot].waiting = 0
            stop_execute(core, slot)


# A new or replaced stop: triggers at once if the last trade price has reached it, else waits.
cdef void stop_place(EngineCore* core, uint32_t slot) noexcept nogil:
    cdef Order* o = &core.pool.items[slot]
    cdef uint32_t index = o.instrument
    if stop_reached_by(o, core.instruments[index].last_price):
        o.waiting = 0
        stop_execute(core, slot)
        stops_run(core, index)
    else:
        stops_insert(core, slot)


# Cancels `session`'s untriggered stops on one side of an instrument, the next to trigger first.
cdef uint32_t stops_mass_cancel(EngineCore* core, StopBook* book, uint32_t session, uint8_t reason) noexcept nogil:
    cdef uint32_t count = 0, i = book.count, slot
    cdef Order* o
    while i > 0:
        i -= 1
        slot = book.slots[i]
        o = &core.pool.items[slot]
        if o.session == session:
            stops_erase(book, i)
            o.waiting = 0
            ids_remove(&core.ids, session, o.cl_ord_id, slot)
            order_end(core, slot, reason)
            count += 1
    return count
