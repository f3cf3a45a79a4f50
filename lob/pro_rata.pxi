# Part of lob/core.pyx (included): pro-rata allocation at a price level, for instruments whose
# `algorithm` is MATCH_PRO_RATA.
#
# An aggressor that cannot take the whole level first meets the level's orders of its own account or
# STP group in time order (self-trade prevention as in stp.pxi). What it can still take, Q, is then
# shared among the other orders in proportion to their shown quantity: order i gets
# floor(Q * shown_i / total shown), or nothing if that is below the instrument's minimum allocation;
# what is left goes in time order, each order up to its shown quantity. The fills come out in time
# order, one per order. While the aggressor can take all the level shows, it fills in time order as
# under price-time (the matching loop does that, and asks again after each fill, as an iceberg's next
# slice can tip the balance). Lots are 1 until instruments have lot sizes.

cdef extern from *:
    """
    static inline long long lob_mul_div(long long a, long long b, long long c)
    {
        return (long long)(((__int128)a * b) / c);
    }
    """
    int64_t lob_mul_div(int64_t a, int64_t b, int64_t c) noexcept nogil


cdef inline int64_t pro_rata_share(int64_t q, int64_t shown, int64_t total, int64_t minimum) noexcept nogil:
    cdef int64_t share = lob_mul_div(q, shown, total)
    return share if share >= minimum else 0


cdef void pro_rata_fill(EngineCore* core, Order* taker, Level* level, uint32_t maker_slot, int64_t qty,
                        uint8_t opposite_side) noexcept nogil:
    cdef Order* maker = &core.pool.items[maker_slot]
    cdef Instrument* instrument = &core.instruments[taker.instrument]
    cdef uint64_t trade_id = core.next_trade_id
    core.next_trade_id += 1
    core.traded_qty += qty
    maker.shown -= qty
    maker.leaves_qty -= qty
    maker.cum_qty += qty
    taker.leaves_qty -= qty
    taker.cum_qty += qty
    level.qty -= qty
    instrument.last_price = level.price
    if level.price > instrument.trade_high:
        instrument.trade_high = level.price
    if level.price < instrument.trade_low or instrument.trade_low == 0:
        instrument.trade_low = level.price
    rep_trade(core, maker, level.price, qty, trade_id, LiquidityIndicator_Added)
    rep_trade(core, taker, level.price, qty, trade_id, LiquidityIndicator_Removed)
    if core.market_data:
        md_trade(core, instrument.id, trade_id, level.price, qty, taker.side)
        if instrument.order_level:
            md_order(core, OrderExecute_TEMPLATE_ID, maker, qty, trade_id)


# Unlinks an order anywhere in the level (the level stays, even if empty).
cdef void level_unlink(EngineCore* core, Level* level, Order* o) noexcept nogil:
    if o.prev:
        core.pool.items[o.prev].next = o.next
    else:
        level.head = o.next
    if o.next:
        core.pool.items[o.next].prev = o.prev
    else:
        level.tail = o.prev


cdef void pro_rata_level(EngineCore* core, Order* taker, Level* level, uint8_t opposite_side) noexcept nogil:
    cdef uint32_t slot, next_slot, count, n
    cdef Order* maker
    cdef int64_t q, total, share, left, extra
    cdef int64_t minimum = core.instruments[taker.instrument].min_allocation * core.instruments[taker.instrument].lot
    if taker.leaves_qty >= level.qty:
        return
    if taker.stp_mode != SelfTradePrevention_None:
        slot = level.head
        while slot != 0 and taker.leaves_qty > 0:
            maker = &core.pool.items[slot]
            next_slot = maker.next
            if stp_conflict(taker, maker):
                if slot != level.head:
                    # meet it as the head of the level, as stp_apply expects
                    level_unlink(core, level, maker)
                    maker.prev = 0
                    maker.next = level.head
                    core.pool.items[level.head].prev = slot
                    level.head = slot
                    stp_apply(core, taker, level, slot)
                    if level.head == slot:      # still there (reduced): back to its place
                        level_unlink(core, level, maker)
                        pro_rata_relink(core, level, slot, next_slot)
                else:
                    stp_apply(core, taker, level, slot)
            slot = next_slot
        if taker.leaves_qty == 0 or taker.leaves_qty >= level.qty:
            return
    # Every order left may trade with the taker (any same-account order still here was reduced by
    # DecrementAndCancel, and then the taker is gone).
    q = taker.leaves_qty
    total = level.qty
    left = q
    slot = level.head
    while slot != 0:
        maker = &core.pool.items[slot]
        left -= pro_rata_share(q, maker.shown, total, minimum)
        slot = maker.next
    count = level.count
    slot = level.head
    n = 0
    while n < count:
        maker = &core.pool.items[slot]
        next_slot = maker.next
        share = pro_rata_share(q, maker.shown, total, minimum)     # its shown is as in the first pass
        extra = maker.shown - share
        if extra > left:
            extra = left
        left -= extra
        share += extra
        if share > 0:
            pro_rata_fill(core, taker, level, slot, share, opposite_side)
            if maker.leaves_qty == 0:
                level_unlink(core, level, maker)
                level.count -= 1
                ids_remove(&core.ids, maker.session, maker.cl_ord_id, slot)
                pool_release(&core.pool, slot)
            elif maker.shown == 0:
                level_unlink(core, level, maker)
                maker.prev = 0
                maker.next = level.head
                if level.head:
                    core.pool.items[level.head].prev = slot
                else:
                    level.tail = slot
                level.head = slot
                iceberg_requeue(core, level, slot)
        slot = next_slot
        n += 1


# Puts `slot` back before `before` (0: at the tail).
cdef void pro_rata_relink(EngineCore* core, Level* level, uint32_t slot, uint32_t before) noexcept nogil:
    cdef Order* o = &core.pool.items[slot]
    o.next = before
    if before:
        o.prev = core.pool.items[before].prev
        core.pool.items[before].prev = slot
    else:
        o.prev = level.tail
        level.tail = slot
    if o.prev:
        core.pool.items[o.prev].next = slot
    else:
        level.head = slot
