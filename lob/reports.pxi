# Part of lob/core.pyx (included): encoding the execution stream (routed, per-session sequenced frames).

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
    risk_on_fill(core, o, qty)
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
    # an untriggered Stop reports its stop price; 0: a market order restated by self-trade prevention
    Price_set_mantissa(b + ExecutionReportReplaced_price_OFFSET,
                       o.stop_price if o.waiting and o.ord_type == OrdType_Stop
                       else 0 if o.price == INT64_NULL else o.price)
    ExecutionReportReplaced_set_orderQty(b, o.order_qty)
    ExecutionReportReplaced_set_leavesQty(b, o.leaves_qty)


cdef void rep_triggered(EngineCore* core, const Order* o) noexcept nogil:
    cdef uint8_t* b = app_claim(core, o.session, ExecutionReportTriggered_BLOCK_LENGTH,
                                ExecutionReportTriggered_TEMPLATE_ID)
    ExecutionReportTriggered_set_clOrdId(b, o.cl_ord_id)
    ExecutionReportTriggered_set_orderId(b, o.order_id)


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
