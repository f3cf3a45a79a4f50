# Part of lob/core.pyx (included): venue administration from sessions marked admin in the credentials:
# instrument state changes and the end of the trading day. Each request gets an AdminReport on the
# sender's stream; a state change is published as InstrumentStatus on market data.

cdef void admin_report_write(EngineCore* core, uint32_t slot, uint64_t cl_ord_id, uint16_t template_id,
                             uint32_t instrument_id, uint32_t count, uint8_t reason) noexcept nogil:
    cdef uint8_t* b = app_claim(core, slot, AdminReport_BLOCK_LENGTH, AdminReport_TEMPLATE_ID)
    AdminReport_set_clOrdId(b, cl_ord_id)
    AdminReport_set_refTemplateId(b, template_id)
    AdminReport_set_instrumentId(b, instrument_id)
    AdminReport_set_count(b, count)
    AdminReport_set_reason(b, reason)


cdef void md_instrument_status(EngineCore* core, const Instrument* instrument) noexcept nogil:
    cdef uint8_t* p = outbuf_claim(core, &core.md_out, HEADER_LENGTH + InstrumentStatus_BLOCK_LENGTH)
    cdef uint8_t* b = header_write(p, InstrumentStatus_BLOCK_LENGTH, InstrumentStatus_TEMPLATE_ID)
    InstrumentStatus_set_seqNum(b, core.next_md_seq)
    core.next_md_seq += 1
    InstrumentStatus_set_transactTime(b, core.last_transact_time)
    InstrumentStatus_set_instrumentId(b, instrument.id)
    InstrumentStatus_set_state(b, instrument.state)


cdef void on_instrument_state(EngineCore* core, const uint8_t* b, uint32_t slot) noexcept nogil:
    cdef uint64_t cl_ord_id = InstrumentStateRequest_clOrdId(b)
    cdef uint32_t instrument_id = InstrumentStateRequest_instrumentId(b)
    cdef uint8_t state = InstrumentStateRequest_state(b)
    cdef int index = instrument_index(core, instrument_id)
    cdef uint8_t reason = Reason_None
    cdef Instrument* instrument
    if not core.sessions[slot].admin:
        reason = Reason_NotAuthorized
    elif index < 0:
        reason = Reason_UnknownInstrument
    elif state != InstrumentState_Trading and state != InstrumentState_Halted and state != InstrumentState_Closed:
        reason = Reason_InvalidInstrumentState
    if reason == Reason_None:
        instrument = &core.instruments[index]
        if instrument.state != state:
            instrument.state = state
            if core.market_data:
                md_instrument_status(core, instrument)
    admin_report_write(core, slot, cl_ord_id, InstrumentStateRequest_TEMPLATE_ID, instrument_id, 0, reason)


cdef void on_end_of_day(EngineCore* core, const uint8_t* b, uint32_t slot) noexcept nogil:
    cdef uint64_t cl_ord_id = EndOfDayRequest_clOrdId(b)
    cdef uint32_t instrument_id = EndOfDayRequest_instrumentId(b)
    cdef uint32_t count = 0, i
    cdef int index
    cdef uint8_t reason = Reason_None
    if not core.sessions[slot].admin:
        reason = Reason_NotAuthorized
    elif instrument_id == 0:
        for i in range(core.instrument_count):
            count += end_of_day_instrument(core, i)
    else:
        index = instrument_index(core, instrument_id)
        if index < 0:
            reason = Reason_UnknownInstrument
        else:
            count = end_of_day_instrument(core, <uint32_t>index)
    admin_report_write(core, slot, cl_ord_id, EndOfDayRequest_TEMPLATE_ID, instrument_id, count, reason)


cdef inline void on_admin(EngineCore* core, uint16_t template_id, const uint8_t* b, uint32_t slot) noexcept nogil:
    if template_id == InstrumentStateRequest_TEMPLATE_ID:
        on_instrument_state(core, b, slot)
    else:
        on_end_of_day(core, b, slot)
