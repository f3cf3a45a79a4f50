# Part of lob/core.pyx (included): market data: the levels a message changed (BookUpdate), trades,
# book snapshots.

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
# Order-level market data (instruments with order_level): each displayed order's add / modify / delete /
# execute, inline in the stream like trades. Nothing here is reached for other instruments.

cdef inline bint md_orders(const EngineCore* core, const Order* o) noexcept nogil:
    return core.market_data and core.instruments[o.instrument].order_level


# The id the feed knows the order's current slice by: its order id for the first slice, a fresh id (high
# bit set) for each later slice of an iceberg, so that no one can tell two slices are one order.
cdef inline uint64_t md_public_id(const Order* o) noexcept nogil:
    return o.order_id if o.md_slice == 0 else ((<uint64_t>1) << 63) | o.md_slice


# OrderAdd / OrderModify (qty: displayed), OrderDelete, OrderExecute (qty: executed, with trade_id).
cdef void md_order(EngineCore* core, uint16_t template_id, const Order* o, int64_t qty,
                   uint64_t trade_id) noexcept nogil:
    cdef uint16_t block
    if template_id == OrderAdd_TEMPLATE_ID:
        block = OrderAdd_BLOCK_LENGTH
    elif template_id == OrderModify_TEMPLATE_ID:
        block = OrderModify_BLOCK_LENGTH
    elif template_id == OrderDelete_TEMPLATE_ID:
        block = OrderDelete_BLOCK_LENGTH
    else:
        block = OrderExecute_BLOCK_LENGTH
    cdef uint8_t* p = outbuf_claim(core, &core.md_out, HEADER_LENGTH + block)
    if p == NULL:
        return
    cdef uint8_t* b = header_write(p, block, template_id)
    # The four messages share their first fields (seqNum, transactTime, instrumentId, orderId, side,
    # price); the layout check at import (lob.engine) holds the generator to that.
    OrderAdd_set_seqNum(b, core.next_md_seq)
    core.next_md_seq += 1
    OrderAdd_set_transactTime(b, core.last_transact_time)
    OrderAdd_set_instrumentId(b, core.instruments[o.instrument].id)
    OrderAdd_set_orderId(b, md_public_id(o))
    OrderAdd_set_side(b, o.side)
    Price_set_mantissa(b + OrderAdd_price_OFFSET, o.price)
    if template_id == OrderExecute_TEMPLATE_ID:
        OrderExecute_set_quantity(b, qty)
        OrderExecute_set_tradeId(b, trade_id)
    elif template_id != OrderDelete_TEMPLATE_ID:
        OrderAdd_set_quantity(b, qty)


# ---------------------------------------------------------------------------------------------------
# Book snapshots for market-data recovery (lob/md_recovery.pyx), taken between messages, never inside
# matching. A book is written as `parts` BookSnapshot messages of at most `per_part` levels each, bids
# best first then asks best first; the cursor carries the walk from one part to the next.

cdef uint32_t book_snapshot_levels(const EngineCore* core, uint32_t index) noexcept nogil:
    cdef const Instrument* instrument = &core.instruments[index]
    return instrument.sides[BID].count + instrument.sides[ASK].count


cdef size_t book_snapshot_part_length(uint32_t levels) noexcept nogil:
    return (HEADER_LENGTH + BookSnapshot_BLOCK_LENGTH + BookSnapshot_levels_HEADER_LENGTH
            + <size_t>levels * BookSnapshot_levels_BLOCK_LENGTH)


cdef void book_snapshot_start(const EngineCore* core, uint32_t index, SnapshotCursor* cursor) noexcept nogil:
    cursor.side = BID
    cursor.level = side_best(&core.instruments[index].sides[BID])
    if cursor.level == 0:
        cursor.side = ASK
        cursor.level = side_best(&core.instruments[index].sides[ASK])


# Writes part `part` (of `parts`) into `out` (book_snapshot_part_length(levels in it) bytes, at most
# per_part levels) with a zero checksum; returns its length.
cdef size_t book_snapshot_part(const EngineCore* core, uint32_t index, SnapshotCursor* cursor, uint32_t part,
                               uint32_t parts, uint32_t per_part, uint8_t* out) noexcept nogil:
    cdef const Instrument* instrument = &core.instruments[index]
    cdef uint32_t total = book_snapshot_levels(core, index)
    cdef uint32_t done = part * per_part
    cdef uint32_t n = total - done if total - done < per_part else per_part
    if done > total:
        n = 0
    cdef uint8_t* b = header_write(out, BookSnapshot_BLOCK_LENGTH, BookSnapshot_TEMPLATE_ID)
    BookSnapshot_set_seqNum(b, core.next_md_seq - 1)
    BookSnapshot_set_transactTime(b, core.last_transact_time)
    BookSnapshot_set_instrumentId(b, instrument.id)
    BookSnapshot_set_lastTradeId(b, core.next_trade_id - 1)
    BookSnapshot_set_instrumentCount(b, core.instrument_count)
    BookSnapshot_set_partIndex(b, part)
    BookSnapshot_set_partCount(b, parts)
    BookSnapshot_set_levelCount(b, total)
    BookSnapshot_set_checksum(b, 0)
    BookSnapshot_set_orderLevel(b, instrument.order_level)
    cdef uint8_t* g = b + BookSnapshot_BLOCK_LENGTH
    groupSizeEncoding_set_blockLength(g, BookSnapshot_levels_BLOCK_LENGTH)
    groupSizeEncoding_set_numInGroup(g, <uint16_t>n)
    g += BookSnapshot_levels_HEADER_LENGTH
    cdef const Level* level
    cdef uint32_t i
    for i in range(n):
        level = &core.level_pool.items[cursor.level]
        BookSnapshot_levels_set_side(g, Side_Buy + cursor.side)
        Price_set_mantissa(g + BookSnapshot_levels_price_OFFSET, level.price)
        BookSnapshot_levels_set_quantity(g, level.qty)
        BookSnapshot_levels_set_orderCount(g, level.count)
        g += BookSnapshot_levels_BLOCK_LENGTH
        cursor.level = side_worse(&instrument.sides[cursor.side], level.price)
        if cursor.level == 0 and cursor.side == BID:
            cursor.side = ASK
            cursor.level = side_best(&instrument.sides[ASK])
    return book_snapshot_part_length(n)


cdef uint32_t order_snapshot_orders(const EngineCore* core, uint32_t index) noexcept nogil:
    cdef const Instrument* instrument = &core.instruments[index]
    cdef uint32_t total = 0, side_index, level_slot
    cdef const Level* level
    for side_index in range(2):
        level_slot = side_best(&instrument.sides[side_index])
        while level_slot != 0:
            level = &core.level_pool.items[level_slot]
            total += level.count
            level_slot = side_worse(&instrument.sides[side_index], level.price)
    return total


cdef size_t order_snapshot_part_length(uint32_t orders) noexcept nogil:
    return (HEADER_LENGTH + OrderSnapshot_BLOCK_LENGTH + OrderSnapshot_orders_HEADER_LENGTH
            + <size_t>orders * OrderSnapshot_orders_BLOCK_LENGTH)


cdef void order_snapshot_start(const EngineCore* core, uint32_t index, OrderCursor* cursor) noexcept nogil:
    cdef const Instrument* instrument = &core.instruments[index]
    cursor.side = BID
    cursor.level = side_best(&instrument.sides[BID])
    if cursor.level == 0:
        cursor.side = ASK
        cursor.level = side_best(&instrument.sides[ASK])
    cursor.order = core.level_pool.items[cursor.level].head if cursor.level else 0


# Every displayed order in priority order: bids best level first, then asks, each level oldest first.
cdef size_t order_snapshot_part(const EngineCore* core, uint32_t index, OrderCursor* cursor, uint32_t part,
                                uint32_t parts, uint32_t per_part, uint8_t* out) noexcept nogil:
    cdef const Instrument* instrument = &core.instruments[index]
    cdef uint32_t total = order_snapshot_orders(core, index)
    cdef uint32_t done = part * per_part
    cdef uint32_t n = 0
    if done < total:
        n = total - done if total - done < per_part else per_part
    cdef uint8_t* b = header_write(out, OrderSnapshot_BLOCK_LENGTH, OrderSnapshot_TEMPLATE_ID)
    OrderSnapshot_set_seqNum(b, core.next_md_seq - 1)
    OrderSnapshot_set_transactTime(b, core.last_transact_time)
    OrderSnapshot_set_instrumentId(b, instrument.id)
    OrderSnapshot_set_partIndex(b, part)
    OrderSnapshot_set_partCount(b, parts)
    OrderSnapshot_set_orderCount(b, total)
    OrderSnapshot_set_checksum(b, 0)
    cdef uint8_t* g = b + OrderSnapshot_BLOCK_LENGTH
    groupSizeEncoding_set_blockLength(g, OrderSnapshot_orders_BLOCK_LENGTH)
    groupSizeEncoding_set_numInGroup(g, <uint16_t>n)
    g += OrderSnapshot_orders_HEADER_LENGTH
    cdef const Order* o
    cdef const Level* level
    cdef uint32_t i
    for i in range(n):
        o = &core.pool.items[cursor.order]
        OrderSnapshot_orders_set_orderId(g, md_public_id(o))
        OrderSnapshot_orders_set_side(g, o.side)
        Price_set_mantissa(g + OrderSnapshot_orders_price_OFFSET, o.price)
        OrderSnapshot_orders_set_quantity(g, o.shown)
        g += OrderSnapshot_orders_BLOCK_LENGTH
        cursor.order = o.next
        if cursor.order == 0:
            level = &core.level_pool.items[cursor.level]
            cursor.level = side_worse(&instrument.sides[cursor.side], level.price)
            if cursor.level == 0 and cursor.side == BID:
                cursor.side = ASK
                cursor.level = side_best(&instrument.sides[ASK])
            cursor.order = core.level_pool.items[cursor.level].head if cursor.level else 0
    return order_snapshot_part_length(n)
