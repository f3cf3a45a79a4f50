# Part of lob/core.pyx (included): resting, removing and matching orders on the book.

# ---------------------------------------------------------------------------------------------------
# The book

# Rests an order at the tail of its price level. The side must have room for one more level.
cdef void book_add(EngineCore* core, uint32_t slot) noexcept nogil:
    cdef Order* o = &core.pool.items[slot]
    cdef uint32_t side_index = o.side - Side_Buy
    cdef BookSide* side = &core.instruments[o.instrument].sides[side_index]
    cdef uint32_t level_slot = side_find(side, o.price)
    cdef Level* level
    if level_slot != 0:
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
        side_insert(side, o.price, level_slot)
        md_touch_new(core, level, level_slot, o.instrument, o.side)
    o.level = level_slot
    o.next = 0
    o.prev = level.tail
    if level.tail:
        core.pool.items[level.tail].next = slot
    else:
        level.head = slot
    level.tail = slot
    o.shown = order_slice(o)
    level.qty += o.shown
    level.count += 1
    if md_orders(core, o):
        md_order(core, OrderAdd_TEMPLATE_ID, o, o.shown, 0)


cdef void book_level_remove(EngineCore* core, Instrument* instrument, uint32_t side_index,
                            uint32_t level_slot) noexcept nogil:
    cdef BookSide* side = &instrument.sides[side_index]
    cdef Level* level = &core.level_pool.items[level_slot]
    side_remove(side, level.price)
    md_touch_gone(core, level)
    level_release(&core.level_pool, level_slot)


# Takes a resting order off the book (not out of the id table or the pool).
cdef void book_cancel(EngineCore* core, uint32_t slot) noexcept nogil:
    cdef Order* o = &core.pool.items[slot]
    cdef Level* level = &core.level_pool.items[o.level]
    md_touch(core, level, o.level, o.instrument, o.side)
    if md_orders(core, o):
        md_order(core, OrderDelete_TEMPLATE_ID, o, 0, 0)
    if o.prev:
        core.pool.items[o.prev].next = o.next
    else:
        level.head = o.next
    if o.next:
        core.pool.items[o.next].prev = o.prev
    else:
        level.tail = o.prev
    level.qty -= o.shown
    level.count -= 1
    if level.count == 0:
        book_level_remove(core, &core.instruments[o.instrument], o.side - Side_Buy, o.level)
    o.level = 0


# Key of the worst opposite level an order with this limit can trade against (INT64_MIN: any).
cdef inline int64_t cross_key(uint32_t side_index, int64_t price, bint any_price) noexcept nogil:
    return INT64_MIN if any_price else -side_key(side_index, price)


cdef inline bint book_crosses(const BookSide* opposite, int64_t limit_key) noexcept nogil:
    return side_best(opposite) != 0 and opposite.best_key >= limit_key


# What a FOK taker would fill, counted level by level until `wanted`: hidden iceberg quantity included,
# resting orders STP keeps it from trading with left out. Unless those are canceled as it meets them,
# matching stops at the first one, after only the slices ahead of it in its level (an iceberg's next
# slice would join the queue behind it).
cdef int64_t book_crossable_qty(const EngineCore* core, const Order* taker, const BookSide* opposite,
                                int64_t limit_key, int64_t wanted) noexcept nogil:
    cdef int64_t total = 0, level_total, shown
    cdef uint32_t level_slot = side_best(opposite), slot
    cdef const Level* level
    cdef const Order* maker
    cdef bint stp = taker.stp_mode != SelfTradePrevention_None
    while level_slot != 0 and total < wanted:
        level = &core.level_pool.items[level_slot]
        if side_price_key(opposite, level.price) < limit_key:
            break
        slot = level.head
        level_total = 0
        shown = 0
        while slot != 0:
            maker = &core.pool.items[slot]
            if stp and stp_conflict(taker, maker):
                if taker.stp_mode != SelfTradePrevention_CancelResting:
                    if (core.instruments[taker.instrument].algorithm == MATCH_PRO_RATA
                            and wanted - total < level.qty):
                        return total    # pro-rata meets the level's own orders before any fill there
                    return total + shown
            else:
                level_total += maker.leaves_qty
                shown += maker.shown
            slot = maker.next
        total += level_total
        level_slot = side_worse(opposite, level.price)
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
        level_slot = side_best(opposite)
        level = &core.level_pool.items[level_slot]
        md_touch(core, level, level_slot, taker.instrument, opposite_side)
        while taker.leaves_qty > 0 and level.head != 0:
            if instrument.algorithm == MATCH_PRO_RATA:
                # again after each fill: an iceberg's new slice can make the level more than the taker wants
                pro_rata_level(core, taker, level, opposite_side)
                if taker.leaves_qty == 0 or level.head == 0:
                    break
            maker_slot = level.head
            maker = &core.pool.items[maker_slot]
            prefetch(&core.pool.items[maker.next])
            prefetch(&core.pool.items[maker.next].next)
            if taker.stp_mode != SelfTradePrevention_None and stp_conflict(taker, maker):
                stp_apply(core, taker, level, maker_slot)
                continue
            if maker.shown <= taker.leaves_qty:
                prefetch(&core.ids.entries[ids_hash(maker.session, maker.cl_ord_id) & core.ids.mask])
            qty = taker.leaves_qty if taker.leaves_qty < maker.shown else maker.shown
            maker.shown -= qty
            maker.leaves_qty -= qty
            maker.cum_qty += qty
            taker.leaves_qty -= qty
            taker.cum_qty += qty
            level.qty -= qty
            trade_id = core.next_trade_id
            core.next_trade_id += 1
            core.traded_qty += qty
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
            if maker.leaves_qty != 0:
                if maker.shown == 0:
                    iceberg_requeue(core, level, maker_slot)
            else:
                level_pop_head(core, level, maker)
                level.count -= 1
                ids_remove(&core.ids, maker.session, maker.cl_ord_id, maker_slot)
                pool_release(&core.pool, maker_slot)
        if level.count == 0:
            side_remove(opposite, level.price)
            md_touch_gone(core, level)
            level_release(&core.level_pool, level_slot)


# Ends an order that is not (or no longer) on the book.
cdef inline void order_end(EngineCore* core, uint32_t slot, uint8_t reason) noexcept nogil:
    cdef Order* o = &core.pool.items[slot]
    o.leaves_qty = 0
    rep_canceled(core, o, o.cl_ord_id, 0, reason)
    pool_release(&core.pool, slot)
