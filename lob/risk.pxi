# Part of lob/core.pyx (included): pre-trade risk. Reference-data checks per instrument (state, lot,
# maximum quantity and notional, price band) and per-account limits (open orders, position) kept in a
# bounded table of (account, instrument) entries. Every check reads only the core's state, so a replay
# makes the same decisions.

# ---------------------------------------------------------------------------------------------------
# The account table

cdef int risk_init(EngineCore* core, uint32_t capacity, const AccountLimits* limits, uint32_t count,
                   AccountLimits default_limits) noexcept nogil:
    cdef RiskTable* t = &core.risk
    cdef uint32_t size = 8
    while size < 2 * <uint64_t>capacity:
        size *= 2
    region_unmap(t.entries, (<size_t>t.mask + 2) * sizeof(AccountEntry))
    free(t.limits)
    memset(t, 0, sizeof(RiskTable))
    core.pool.accounts = NULL
    t.entries = <AccountEntry*>region_map((<size_t>size + 1) * sizeof(AccountEntry))
    t.limits = <AccountLimits*>calloc(count + 1, sizeof(AccountLimits))
    if t.entries == NULL or t.limits == NULL:
        return CORE_ERR_NOMEM
    t.mask = size - 1
    t.capacity = capacity
    if count:
        memcpy(t.limits, limits, count * sizeof(AccountLimits))
    t.limit_count = count
    t.default_limits = default_limits
    core.pool.accounts = t.entries
    return CORE_OK


cdef void risk_close(EngineCore* core) noexcept nogil:
    if core.risk.entries != NULL:
        region_unmap(core.risk.entries, (<size_t>core.risk.mask + 2) * sizeof(AccountEntry))
    free(core.risk.limits)
    memset(&core.risk, 0, sizeof(RiskTable))
    core.pool.accounts = NULL


cdef const AccountLimits* account_limits(const RiskTable* t, uint32_t account) noexcept nogil:
    cdef uint32_t lo = 0, hi = t.limit_count, mid
    while lo < hi:
        mid = (lo + hi) // 2
        if t.limits[mid].account < account:
            lo = mid + 1
        else:
            hi = mid
    if lo < t.limit_count and t.limits[lo].account == account:
        return &t.limits[lo]
    return &t.default_limits


# The entry of (account, instrument), made on first use; NULL when the table is full.
cdef AccountEntry* risk_entry(EngineCore* core, uint32_t account, uint32_t instrument_index) noexcept nogil:
    cdef RiskTable* t = &core.risk
    cdef uint32_t key = instrument_index + 1
    cdef uint32_t i = ((account * 0x9E3779B1U) ^ (key * 0x85EBCA77U)) & t.mask
    cdef AccountEntry* e
    cdef const AccountLimits* limits
    while True:
        e = &t.entries[i + 1]
        if e.instrument == 0:
            break
        if e.account == account and e.instrument == key:
            return e
        i = (i + 1) & t.mask
    if t.count >= t.capacity:
        return NULL
    limits = account_limits(t, account)
    e.account = account
    e.instrument = key
    e.open_orders = 0
    e.position = 0
    e.max_open_orders = limits.max_open_orders
    e.max_position = limits.max_position
    t.count += 1
    return e


# ---------------------------------------------------------------------------------------------------
# Checks

cdef inline uint8_t state_reason(const Instrument* instrument) noexcept nogil:
    if instrument.state == InstrumentState_Trading:
        return Reason_None
    return Reason_InstrumentHalted if instrument.state == InstrumentState_Halted else Reason_InstrumentClosed


# The price the band is centred on: the last trade, else the configured reference (INT64_NULL: none).
cdef inline int64_t band_reference(const Instrument* instrument) noexcept nogil:
    return instrument.last_price if instrument.last_price != INT64_NULL else instrument.reference_price


# The furthest price an order of this side may reach: INT64_NULL when no band applies.
cdef inline int64_t band_edge(const Instrument* instrument, uint32_t side_index) noexcept nogil:
    cdef int64_t reference = band_reference(instrument), width
    if reference == INT64_NULL or (instrument.band_bp == 0 and instrument.band_ticks == 0):
        return INT64_NULL
    if instrument.band_ticks != 0:
        width = instrument.band_ticks * instrument.tick
    else:
        width = reference // 10000 * instrument.band_bp + reference % 10000 * instrument.band_bp // 10000
    return reference + width if side_index == BID else reference - width


cdef inline bint outside_band(const Instrument* instrument, uint32_t side_index, int64_t price) noexcept nogil:
    cdef int64_t edge = band_edge(instrument, side_index)
    if edge == INT64_NULL:
        return False
    return price > edge if side_index == BID else price < edge


# A market order's worst acceptable price is the band edge: the cross key it matches with.
cdef inline int64_t risk_market_key(const Instrument* instrument, uint32_t side_index) noexcept nogil:
    cdef int64_t edge = band_edge(instrument, side_index)
    return INT64_MIN if edge == INT64_NULL else cross_key(side_index, edge, False)


# Why a market order's remainder ends: the band held it back from liquidity beyond, or there was none.
cdef inline uint8_t risk_market_end_reason(const Instrument* instrument, uint32_t side_index,
                                           int64_t limit_key) noexcept nogil:
    if limit_key != INT64_MIN and side_count(&instrument.sides[1 - side_index]) != 0:
        return Reason_RiskPriceBand
    return Reason_NoLiquidity


cdef inline bint over_notional(const Instrument* instrument, int64_t price, int64_t qty) noexcept nogil:
    if instrument.max_notional == 0 or price == INT64_NULL or price <= 0:
        return False
    return qty > instrument.max_notional // price


cdef inline bint over_position(const AccountEntry* e, uint8_t side, int64_t qty) noexcept nogil:
    cdef int64_t after
    if e.max_position == 0:
        return False
    after = e.position + qty if side == Side_Buy else e.position - qty
    return after > e.max_position or after < -e.max_position


# A new order that passed the format checks: instrument state, lot, expiry, limits. Sets o.risk_slot.
cdef uint8_t risk_check_new(EngineCore* core, Order* o, int index) noexcept nogil:
    cdef Instrument* instrument = &core.instruments[index]
    cdef uint32_t side_index = o.side - Side_Buy
    cdef uint8_t reason = state_reason(instrument)
    cdef int64_t price
    cdef AccountEntry* e
    if reason != Reason_None:
        return reason
    if o.order_qty % instrument.lot != 0:
        return Reason_InvalidLot
    if o.time_in_force == TimeInForce_GoodTillDate:
        if <uint64_t>o.expire_time * 1000000000ULL <= core.last_transact_time:
            return Reason_InvalidExpireTime
    else:
        o.expire_time = 0
    if instrument.max_order_qty != 0 and o.order_qty > instrument.max_order_qty:
        return Reason_RiskMaxOrderQty
    if o.ord_type == OrdType_Market or o.price == INT64_NULL:      # a stop order's price is null too
        price = band_edge(instrument, side_index)
        if price == INT64_NULL:
            price = band_reference(instrument)
    else:
        price = o.price
        if outside_band(instrument, side_index, price):
            return Reason_RiskPriceBand
    if over_notional(instrument, price, o.order_qty):
        return Reason_RiskMaxNotional
    e = risk_entry(core, o.account, <uint32_t>index)
    if e == NULL:
        return Reason_PoolFull
    if e.max_open_orders != 0 and e.open_orders >= e.max_open_orders:
        return Reason_RiskMaxOpenOrders
    if over_position(e, o.side, o.order_qty):
        return Reason_RiskMaxPosition
    o.risk_slot = <uint32_t>(e - core.risk.entries)
    return Reason_None


# A replace of a live order to (price, qty), after the format checks.
cdef uint8_t risk_check_replace(EngineCore* core, const Order* o, int64_t price, int64_t qty) noexcept nogil:
    cdef const Instrument* instrument = &core.instruments[o.instrument]
    cdef uint8_t reason = state_reason(instrument)
    if reason != Reason_None:
        return reason
    if qty % instrument.lot != 0:
        return Reason_InvalidLot
    if instrument.max_order_qty != 0 and qty > instrument.max_order_qty:
        return Reason_RiskMaxOrderQty
    if price != o.price and outside_band(instrument, o.side - Side_Buy, price):
        return Reason_RiskPriceBand
    if over_notional(instrument, price, qty):
        return Reason_RiskMaxNotional
    if qty > o.order_qty and over_position(&core.risk.entries[o.risk_slot], o.side, qty - o.cum_qty):
        return Reason_RiskMaxPosition
    return Reason_None


cdef inline void risk_on_accept(EngineCore* core, const Order* o) noexcept nogil:
    core.risk.entries[o.risk_slot].open_orders += 1


# Every fill of an order passes here once.
cdef inline void risk_on_fill(EngineCore* core, const Order* o, int64_t qty) noexcept nogil:
    core.risk.entries[o.risk_slot].position += qty if o.side == Side_Buy else -qty
