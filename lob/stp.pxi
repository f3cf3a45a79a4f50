# Part of lob/core.pyx (included): self-trade prevention and iceberg slices, used by the matching loop.
#
# STP applies when the aggressor names a mode (or its instrument's default does): it never trades with a
# resting order of the same account, nor of the same non-zero STP group. The aggressor's mode decides
# what happens when it meets one (the resting order's own mode counts only when it is the aggressor):
#   CancelAggressor     the aggressor's remainder is canceled; the resting order stays.
#   CancelResting       the resting order is canceled and matching goes on.
#   CancelBoth          both are canceled.
#   DecrementAndCancel  the smaller of the two leaves quantities (hidden iceberg quantity included) is
#                       taken off both: the one left with nothing is canceled, the other reduced (order
#                       and leaves quantity down by it, told by an ExecutionReportReplaced restatement with
#                       clOrdId == origClOrdId) and, for the aggressor, matching goes on.
# Every cancel says SelfTradePrevented. The aggressor's reports come after the resting order's.

cdef inline bint stp_conflict(const Order* taker, const Order* maker) noexcept nogil:
    return maker.account == taker.account or (taker.stp_group != 0 and maker.stp_group == taker.stp_group)


# The quantity an iceberg shows next: the display quantity or what is left, whichever is smaller.
cdef inline int64_t order_slice(const Order* o) noexcept nogil:
    if o.display_qty == INT64_NULL or o.display_qty >= o.leaves_qty:
        return o.leaves_qty
    return o.display_qty


# Unlinks the head order of a level that matching is working on (the level stays, even if empty: the
# matching loop removes it).
cdef inline void level_pop_head(EngineCore* core, Level* level, Order* head) noexcept nogil:
    level.head = head.next
    if level.head:
        core.pool.items[level.head].prev = 0
    else:
        level.tail = 0


# An iceberg whose slice was filled joins the back of its level with the next slice.
cdef inline void iceberg_requeue(EngineCore* core, Level* level, uint32_t slot) noexcept nogil:
    cdef Order* o = &core.pool.items[slot]
    level_pop_head(core, level, o)
    o.shown = order_slice(o)
    if md_orders(core, o):   # a new slice: a new public id, so the feed never links the slices
        o.md_slice = <uint32_t>core.next_md_seq if <uint32_t>core.next_md_seq != 0 else 1
        md_order(core, OrderAdd_TEMPLATE_ID, o, o.shown, 0)
    o.next = 0
    o.prev = level.tail
    if level.tail:
        core.pool.items[level.tail].next = slot
    else:
        level.head = slot
    level.tail = slot
    level.qty += o.shown


cdef void stp_cancel_maker(EngineCore* core, Level* level, uint32_t slot) noexcept nogil:
    cdef Order* o = &core.pool.items[slot]
    if md_orders(core, o):
        md_order(core, OrderDelete_TEMPLATE_ID, o, 0, 0)
    level_pop_head(core, level, o)
    level.qty -= o.shown
    level.count -= 1
    ids_remove(&core.ids, o.session, o.cl_ord_id, slot)
    o.leaves_qty = 0
    rep_canceled(core, o, o.cl_ord_id, 0, Reason_SelfTradePrevented)
    pool_release(&core.pool, slot)


cdef inline void stp_cancel_taker(EngineCore* core, Order* taker) noexcept nogil:
    taker.leaves_qty = 0
    rep_canceled(core, taker, taker.cl_ord_id, 0, Reason_SelfTradePrevented)


cdef inline void stp_decrement(EngineCore* core, Order* o, int64_t qty) noexcept nogil:
    o.order_qty -= qty
    o.leaves_qty -= qty
    rep_replaced(core, o, o.cl_ord_id)


# The taker met `maker` (the head of `level`, same account or group). Afterwards the taker's leaves are
# 0 when it was canceled.
cdef void stp_apply(EngineCore* core, Order* taker, Level* level, uint32_t maker_slot) noexcept nogil:
    cdef Order* maker = &core.pool.items[maker_slot]
    cdef uint8_t mode = taker.stp_mode
    cdef int64_t qty, shown
    if mode == SelfTradePrevention_CancelAggressor:
        stp_cancel_taker(core, taker)
    elif mode == SelfTradePrevention_CancelResting:
        stp_cancel_maker(core, level, maker_slot)
    elif mode == SelfTradePrevention_CancelBoth:
        stp_cancel_maker(core, level, maker_slot)
        stp_cancel_taker(core, taker)
    elif maker.leaves_qty <= taker.leaves_qty:
        qty = maker.leaves_qty
        stp_cancel_maker(core, level, maker_slot)
        if qty == taker.leaves_qty:
            stp_cancel_taker(core, taker)
        else:
            stp_decrement(core, taker, qty)
    else:
        qty = taker.leaves_qty
        shown = maker.shown
        stp_decrement(core, maker, qty)
        if maker.shown > maker.leaves_qty:
            maker.shown = maker.leaves_qty
        level.qty -= shown - maker.shown
        if shown != maker.shown and md_orders(core, maker):
            md_order(core, OrderModify_TEMPLATE_ID, maker, maker.shown, 0)
        stp_cancel_taker(core, taker)
