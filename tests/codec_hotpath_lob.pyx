# cython: language_level=3
"""Hot-path accessor checks for the lob schema: compiled by the codec tests against the generated
.pxd (module `sbe_lob`), compared with the generated Python encode/decode."""
from libc.stdint cimport uint8_t, int64_t, uint64_t
from sbe_lob cimport *


def constants():
    return {
        "SCHEMA_ID": SCHEMA_ID, "SCHEMA_VERSION": SCHEMA_VERSION, "HEADER_LENGTH": HEADER_LENGTH,
        "NewOrderSingle_TEMPLATE_ID": NewOrderSingle_TEMPLATE_ID,
        "NewOrderSingle_BLOCK_LENGTH": NewOrderSingle_BLOCK_LENGTH,
        "NewOrderSingle_SINCE_VERSION": NewOrderSingle_SINCE_VERSION,
        "NewOrderSingle_price_OFFSET": NewOrderSingle_price_OFFSET,
        "NewOrderSingle_displayQty_OFFSET": NewOrderSingle_displayQty_OFFSET,
        "NewOrderSingle_displayQty_NULL_VALUE": NewOrderSingle_displayQty_NULL_VALUE,
        "NewOrderSingle_displayQty_SINCE_VERSION": NewOrderSingle_displayQty_SINCE_VERSION,
        "PriceNull_mantissa_NULL_VALUE": PriceNull_mantissa_NULL_VALUE,
        "PriceNull_ENCODED_LENGTH": PriceNull_ENCODED_LENGTH,
        "PriceNull_exponent": PriceNull_exponent(),
        "Side_Buy": Side_Buy, "Side_Sell": Side_Sell, "Side_NULL_VALUE": Side_NULL_VALUE,
        "ExecType_Trade": ExecType_Trade, "ExecType_NULL_VALUE": ExecType_NULL_VALUE,
        "OrdStatus_PartiallyFilled": OrdStatus_PartiallyFilled,
        "OrderFlags_PostOnly_BIT": OrderFlags_PostOnly_BIT,
        "BookUpdate_levels_BLOCK_LENGTH": BookUpdate_levels_BLOCK_LENGTH,
        "BookUpdate_levels_HEADER_LENGTH": BookUpdate_levels_HEADER_LENGTH,
        "groupSizeEncoding_ENCODED_LENGTH": groupSizeEncoding_ENCODED_LENGTH,
    }


cdef int64_t _sum_quantities(const uint8_t* p) noexcept nogil:
    # proves the accessors need neither the GIL nor Python objects
    return NewOrderSingle_quantity(p) + PriceNull_mantissa(p + NewOrderSingle_price_OFFSET)


def read_new_order(const uint8_t[::1] frame):
    cdef const uint8_t* h = &frame[0]
    cdef const uint8_t* p = h + HEADER_LENGTH
    cdef int64_t total
    with nogil:
        total = _sum_quantities(p)
    return {
        "blockLength": messageHeader_blockLength(h), "templateId": messageHeader_templateId(h),
        "schemaId": messageHeader_schemaId(h), "version": messageHeader_version(h),
        "clOrdId": NewOrderSingle_clOrdId(p), "account": NewOrderSingle_account(p),
        "instrumentId": NewOrderSingle_instrumentId(p), "side": NewOrderSingle_side(p),
        "ordType": NewOrderSingle_ordType(p), "timeInForce": NewOrderSingle_timeInForce(p),
        "postOnly": (NewOrderSingle_flags(p) >> OrderFlags_PostOnly_BIT) & 1,
        "selfTradePrevention": NewOrderSingle_selfTradePrevention(p),
        "price": PriceNull_mantissa(p + NewOrderSingle_price_OFFSET),
        "quantity": NewOrderSingle_quantity(p),
        "stopPriceIsNull": PriceNull_mantissa(p + NewOrderSingle_stopPrice_OFFSET) == PriceNull_mantissa_NULL_VALUE,
        "displayQtyIsNull": NewOrderSingle_displayQty(p) == NewOrderSingle_displayQty_NULL_VALUE,
        "sum": total,
    }


def write_new_order(uint64_t cl_ord_id, int side, int64_t price, int64_t quantity, bint post_only):
    cdef bytearray out = bytearray(HEADER_LENGTH + NewOrderSingle_BLOCK_LENGTH)
    cdef uint8_t* h = out
    cdef uint8_t* p = h + HEADER_LENGTH
    with nogil:
        messageHeader_set_blockLength(h, NewOrderSingle_BLOCK_LENGTH)
        messageHeader_set_templateId(h, NewOrderSingle_TEMPLATE_ID)
        messageHeader_set_schemaId(h, SCHEMA_ID)
        messageHeader_set_version(h, SCHEMA_VERSION)
        NewOrderSingle_set_clOrdId(p, cl_ord_id)
        NewOrderSingle_set_account(p, 7)
        NewOrderSingle_set_instrumentId(p, 42)
        NewOrderSingle_set_side(p, side)
        NewOrderSingle_set_ordType(p, OrdType_Limit)
        NewOrderSingle_set_timeInForce(p, TimeInForce_GoodTillCancel)
        NewOrderSingle_set_flags(p, (1 << OrderFlags_PostOnly_BIT) if post_only else 0)
        NewOrderSingle_set_selfTradePrevention(p, SelfTradePrevention_None)
        PriceNull_set_mantissa(p + NewOrderSingle_price_OFFSET, price)
        NewOrderSingle_set_quantity(p, quantity)
        PriceNull_set_mantissa(p + NewOrderSingle_stopPrice_OFFSET, PriceNull_mantissa_NULL_VALUE)
        NewOrderSingle_set_displayQty(p, NewOrderSingle_displayQty_NULL_VALUE)
    return bytes(out)


def read_trade_report(const uint8_t[::1] frame):
    cdef const uint8_t* p = &frame[0] + HEADER_LENGTH
    return {
        "seqNum": ExecutionReportTrade_seqNum(p),
        "lastPx": Price_mantissa(p + ExecutionReportTrade_lastPx_OFFSET),
        "lastQty": ExecutionReportTrade_lastQty(p),
        "leavesQty": ExecutionReportTrade_leavesQty(p),
        "tradeId": ExecutionReportTrade_tradeId(p),
        "removed": ExecutionReportTrade_liquidity(p) == LiquidityIndicator_Removed,
    }


def read_book_update(const uint8_t[::1] frame):
    """Walk the levels group with the dimension's composite accessors."""
    cdef const uint8_t* h = &frame[0]
    cdef const uint8_t* p = h + HEADER_LENGTH + messageHeader_blockLength(h)
    cdef Py_ssize_t n = groupSizeEncoding_numInGroup(p)
    cdef Py_ssize_t entry_length = groupSizeEncoding_blockLength(p)
    levels = []
    p += BookUpdate_levels_HEADER_LENGTH
    for _ in range(n):
        levels.append((BookUpdate_levels_action(p), BookUpdate_levels_side(p),
                       Price_mantissa(p + BookUpdate_levels_price_OFFSET), BookUpdate_levels_quantity(p),
                       BookUpdate_levels_orderCount(p)))
        p += entry_length
    return {"instrumentId": BookUpdate_instrumentId(h + HEADER_LENGTH), "levels": levels,
            "end": p - h}


def write_book_update(uint64_t seq, levels):
    cdef Py_ssize_t n = len(levels)
    cdef bytearray out = bytearray(HEADER_LENGTH + BookUpdate_BLOCK_LENGTH + BookUpdate_levels_HEADER_LENGTH
                                   + n * BookUpdate_levels_BLOCK_LENGTH)
    cdef uint8_t* h = out
    cdef uint8_t* p = h + HEADER_LENGTH
    messageHeader_set_blockLength(h, BookUpdate_BLOCK_LENGTH)
    messageHeader_set_templateId(h, BookUpdate_TEMPLATE_ID)
    messageHeader_set_schemaId(h, SCHEMA_ID)
    messageHeader_set_version(h, SCHEMA_VERSION)
    BookUpdate_set_seqNum(p, seq)
    BookUpdate_set_transactTime(p, 1000)
    BookUpdate_set_instrumentId(p, 3)
    p += BookUpdate_BLOCK_LENGTH
    groupSizeEncoding_set_blockLength(p, BookUpdate_levels_BLOCK_LENGTH)
    groupSizeEncoding_set_numInGroup(p, n)
    p += BookUpdate_levels_HEADER_LENGTH
    for action, side, price, quantity, count in levels:
        BookUpdate_levels_set_action(p, action)
        BookUpdate_levels_set_side(p, side)
        Price_set_mantissa(p + BookUpdate_levels_price_OFFSET, price)
        BookUpdate_levels_set_quantity(p, quantity)
        BookUpdate_levels_set_orderCount(p, count)
        p += BookUpdate_levels_BLOCK_LENGTH
    return bytes(out)
