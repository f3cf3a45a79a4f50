# Part of lob/core.pyx (included): reading inbound frames and dispatching them; the batch loop.

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
    if template_id == InstrumentStateRequest_TEMPLATE_ID:
        return InstrumentStateRequest_BLOCK_LENGTH
    if template_id == EndOfDayRequest_TEMPLATE_ID:
        return EndOfDayRequest_BLOCK_LENGTH
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
            elif template_id == OrderMassCancelRequest_TEMPLATE_ID:
                on_mass_cancel(core, frame + HEADER_LENGTH, slot)
            else:
                on_admin(core, template_id, frame + HEADER_LENGTH, slot)
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


# A new order's place in its side's price index (`level`: the level at its price, whose bottom index
# node was prefetched a record earlier).
cdef inline void record_prefetch_index(EngineCore* core, const uint8_t* record, bint level) noexcept nogil:
    cdef const uint8_t* b = record + INBOUND_RECORD_HEADER_LENGTH
    if (load_u32le(record) < HEADER_LENGTH + NewOrderSingle_BLOCK_LENGTH
            or messageHeader_templateId(b) != NewOrderSingle_TEMPLATE_ID):
        return
    b += HEADER_LENGTH
    cdef int index = instrument_index(core, NewOrderSingle_instrumentId(b))
    cdef uint8_t side = NewOrderSingle_side(b)
    if index < 0 or (side != Side_Buy and side != Side_Sell):
        return
    cdef const BookSide* book_side = &core.instruments[index].sides[side - Side_Buy]
    cdef int64_t price = PriceNull_mantissa(b + NewOrderSingle_price_OFFSET)
    cdef uint32_t level_slot
    if not level:
        side_prefetch(book_side, price)
    elif price > 0:
        level_slot = side_find(book_side, price)
        if level_slot != 0:
            prefetch(&core.level_pool.items[level_slot])


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
        else:
            record_prefetch_index(core, r2, False)
    if r1 != NULL:
        slot = record_target(core, r1)
        if slot != 0:
            o = &core.pool.items[slot]
            prefetch(&core.pool.items[o.prev].next)
            prefetch(&core.pool.items[o.next].prev)
            prefetch(&core.level_pool.items[o.level])
        else:
            record_prefetch_index(core, r1, True)


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
