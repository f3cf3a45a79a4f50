# Part of lob/core.pyx (included): the order-entry messages: new order, cancel, replace, mass cancel.

# ---------------------------------------------------------------------------------------------------
# Message handlers

cdef inline bint valid_time_in_force(uint8_t tif) noexcept nogil:
    return (tif == TimeInForce_Day or tif == TimeInForce_GoodTillCancel
            or tif == TimeInForce_ImmediateOrCancel or tif == TimeInForce_FillOrKill
            or tif == TimeInForce_GoodTillDate)


cdef uint8_t new_order_check(EngineCore* core, Order* o, int index) noexcept nogil:
    cdef Instrument* instrument
    cdef BookSide* opposite
    cdef uint8_t reason
    if index < 0:
        return Reason_UnknownInstrument
    instrument = &core.instruments[index]
    if o.side != Side_Buy and o.side != Side_Sell:
        return Reason_InvalidSide
    cdef bint stop = o.ord_type == OrdType_Stop or o.ord_type == OrdType_StopLimit
    if o.ord_type != OrdType_Market and o.ord_type != OrdType_Limit and not stop:
        return Reason_InvalidOrdType
    if stop and o.flags & (1 << OrderFlags_PostOnly_BIT):
        return Reason_InvalidOrdType
    if not valid_time_in_force(o.time_in_force):
        return Reason_InvalidTimeInForce
    if o.order_qty <= 0 or o.order_qty > MAX_ORDER_QTY:
        return Reason_InvalidQuantity
    if o.ord_type == OrdType_Limit or o.ord_type == OrdType_StopLimit:
        if o.price == INT64_NULL or o.price <= 0:
            return Reason_InvalidPrice
        if o.price % instrument.tick != 0:
            return Reason_PriceOffTick
    if o.display_qty != INT64_NULL and (
            (o.ord_type != OrdType_Limit and o.ord_type != OrdType_StopLimit)
            or o.display_qty <= 0 or o.display_qty > o.order_qty
            or o.display_qty * ICEBERG_MAX_SLICES < o.order_qty):
        return Reason_InvalidDisplayQty
    if o.stp_mode > SelfTradePrevention_DecrementAndCancel:
        return Reason_InvalidSelfTradePrevention
    if stop != (o.stop_price != INT64_NULL) or (stop and o.stop_price <= 0):
        return Reason_InvalidStopPrice
    if stop and o.stop_price % instrument.tick != 0:
        return Reason_PriceOffTick
    # a waiting stop is in no book the end-of-day and expiry sweeps walk: it lives until canceled
    if stop and (o.time_in_force == TimeInForce_Day or o.time_in_force == TimeInForce_GoodTillDate):
        return Reason_InvalidTimeInForce
    reason = risk_check_new(core, o, index)
    if reason != Reason_None:
        return reason
    if ids_find(core, o.session, o.cl_ord_id) != 0:
        return Reason_DuplicateClOrdId
    if (core.pool.free_head == 0 and core.pool.high_water == core.pool.capacity) \
            or side_reserve(&instrument.sides[o.side - Side_Buy], 1) != 0 \
            or (stop and stops_reserve(&instrument.stops[o.side - Side_Buy]) != 0):
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
    request.display_qty = NewOrderSingle_displayQty(b)
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
    request.risk_slot = 0
    request.expire_time = NewOrderSingle_expireTime(b)
    request.stp_group = NewOrderSingle_stpGroup(b)
    request.shown = 0
    request.waiting = 0
    request.md_slice = 0
    cdef int index = instrument_index(core, request.instrument_id)
    cdef uint8_t reason = new_order_check(core, &request, index)
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
    if o.stp_mode == SelfTradePrevention_None:
        o.stp_mode = core.instruments[index].stp_default
    risk_on_accept(core, o)
    rep_new(core, o)
    if o.ord_type == OrdType_Stop or o.ord_type == OrdType_StopLimit:
        ids_insert(&core.ids, o.session, o.cl_ord_id, slot)
        stop_place(core, slot)
        return

    cdef bint market = o.ord_type == OrdType_Market
    cdef int64_t limit_key = (risk_market_key(&core.instruments[index], o.side - Side_Buy) if market
                              else cross_key(o.side - Side_Buy, o.price, False))
    cdef BookSide* opposite = &core.instruments[index].sides[ASK if o.side == Side_Buy else BID]
    if o.time_in_force == TimeInForce_FillOrKill:
        if book_crossable_qty(core, o, opposite, limit_key, o.order_qty) < o.order_qty:
            order_end(core, slot, Reason_FillOrKillNotFillable)
            return
    book_match(core, slot, limit_key)
    if o.leaves_qty == 0:
        pool_release(&core.pool, slot)
    elif market:
        order_end(core, slot, risk_market_end_reason(&core.instruments[index], o.side - Side_Buy, limit_key))
    elif o.time_in_force == TimeInForce_ImmediateOrCancel:
        order_end(core, slot, Reason_ImmediateOrCancel)
    else:
        book_add(core, slot)
        ids_insert(&core.ids, o.session, o.cl_ord_id, slot)
        if o.expire_time != 0:
            expiry_add(core, slot)
    stops_run(core, index)


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
    order_take_off(core, slot)
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
    elif o.display_qty != INT64_NULL and o.display_qty * ICEBERG_MAX_SLICES < qty:
        reason = Reason_InvalidDisplayQty
    elif cl_ord_id != orig_cl_ord_id and ids_find(core, session, cl_ord_id) != 0:
        reason = Reason_DuplicateClOrdId
    else:
        reason = risk_check_replace(core, o, price, qty)
    if reason != Reason_None:
        cancel_reject_write(core, session, cl_ord_id, orig_cl_ord_id, o.order_id,
                            CancelRejectResponseTo_Replace, reason)
        return

    if o.waiting:
        stop_replace(core, slot, cl_ord_id, orig_cl_ord_id, price, qty)
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
        o.leaves_qty -= reduction
        if o.shown > o.leaves_qty:
            level.qty -= o.shown - o.leaves_qty
            o.shown = o.leaves_qty
            if md_orders(core, o):
                md_order(core, OrderModify_TEMPLATE_ID, o, o.shown, 0)
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
    stops_run(core, instrument - core.instruments)


cdef void stop_replace(EngineCore* core, uint32_t slot, uint64_t cl_ord_id, uint64_t orig_cl_ord_id, int64_t price,
                       int64_t qty) noexcept nogil:
    cdef Order* o = &core.pool.items[slot]
    stops_remove(core, slot)
    if cl_ord_id != orig_cl_ord_id:
        ids_remove(&core.ids, o.session, orig_cl_ord_id, slot)
        ids_insert(&core.ids, o.session, cl_ord_id, slot)
    o.cl_ord_id = cl_ord_id
    if o.ord_type == OrdType_Stop:
        o.stop_price = price
    else:
        o.price = price
    o.order_qty = qty
    o.leaves_qty = qty
    o.waiting = 1   # reported as waiting
    rep_replaced(core, o, orig_cl_ord_id)
    o.waiting = 0
    stop_place(core, slot)


# Book order: bids best to worst, then asks best to worst, FIFO within a level. `side`: a SideFilter.
cdef uint32_t mass_cancel_instrument(EngineCore* core, uint32_t index, uint32_t session, uint8_t reason,
                                     uint8_t side) noexcept nogil:
    cdef Instrument* instrument = &core.instruments[index]
    cdef uint32_t count = 0, side_index, level_slot, slot, next_slot
    cdef int64_t price
    cdef Order* o
    for side_index in range(2):
        if side != SideFilter_Both and side != Side_Buy + side_index:
            continue
        level_slot = side_best(&instrument.sides[side_index])
        while level_slot != 0:
            # canceling empties at most this level; the next worse one is found from its price
            price = core.level_pool.items[level_slot].price
            slot = core.level_pool.items[level_slot].head
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
            level_slot = side_worse(&instrument.sides[side_index], price)
        count += stops_mass_cancel(core, &instrument.stops[side_index], session, reason)
    return count


cdef void on_mass_cancel(EngineCore* core, const uint8_t* b, uint32_t session) noexcept nogil:
    cdef uint64_t cl_ord_id = OrderMassCancelRequest_clOrdId(b)
    cdef uint32_t instrument_id = OrderMassCancelRequest_instrumentId(b)
    cdef uint8_t side = OrderMassCancelRequest_side(b)
    cdef uint32_t count = 0, i
    cdef int index
    if side != SideFilter_Both and side != SideFilter_Buy and side != SideFilter_Sell:
        mass_cancel_report_write(core, session, cl_ord_id, instrument_id, 0, Reason_InvalidSide)
        return
    if instrument_id == 0:
        for i in range(core.instrument_count):
            count += mass_cancel_instrument(core, i, session, Reason_MassCancel, side)
    else:
        index = instrument_index(core, instrument_id)
        if index < 0:
            mass_cancel_report_write(core, session, cl_ord_id, instrument_id, 0, Reason_UnknownInstrument)
            return
        count = mass_cancel_instrument(core, index, session, Reason_MassCancel, side)
    mass_cancel_report_write(core, session, cl_ord_id, instrument_id, count, Reason_None)


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
    if order.waiting and stops_reserve(&core.instruments[index].stops[order.side - Side_Buy]) != 0:
        return 0
    cdef AccountEntry* e = risk_entry(core, order.account, <uint32_t>index)
    if e == NULL:
        return 0
    cdef uint32_t slot = pool_acquire(&core.pool)
    if slot == 0:
        return 0
    cdef Order* o = &core.pool.items[slot]
    o[0] = order[0]
    o.md_slice = 0
    o.risk_slot = <uint32_t>(e - core.risk.entries)
    risk_on_accept(core, o)
    if o.expire_time != 0:
        expiry_add(core, slot)
    o.instrument = <uint16_t>index
    o.level = 0
    o.prev = 0
    o.next = 0
    if o.waiting:
        stops_insert(core, slot)
        ids_insert(&core.ids, o.session, o.cl_ord_id, slot)
        return slot
    cdef bint market_data = core.market_data
    core.market_data = False
    book_add(core, slot)
    if 0 < order.shown < o.shown:   # an iceberg part way through its slice
        core.level_pool.items[o.level].qty -= o.shown - order.shown
        o.shown = order.shown
    core.market_data = market_data
    ids_insert(&core.ids, o.session, o.cl_ord_id, slot)
    return slot
