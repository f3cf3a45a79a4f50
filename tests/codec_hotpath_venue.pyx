# cython: language_level=3
"""Hot-path checks for venue-style-schema.xml (module `sbe_venue`): the `_present` tests a decoder
written on the cdef accessors uses to tell absent fields (older version, shorter block) from present ones."""
from libc.stdint cimport uint8_t
from sbe_venue cimport *


def quote_presence(const uint8_t[::1] frame):
    """{field: present} for the Quote in `frame`, from its header's blockLength and version."""
    cdef const uint8_t* h = &frame[0]
    cdef Py_ssize_t bl = messageHeader_blockLength(h)
    cdef int v = messageHeader_version(h)
    return {
        "transactTime": Quote_transactTime_present(bl, v), "venueFlags": Quote_venueFlags_present(bl, v),
        "securityIdSource": Quote_securityIdSource_present(bl, v), "securityId": Quote_securityId_present(bl, v),
        "price": Quote_price_present(bl, v), "kind": Quote_kind_present(bl, v), "qty": Quote_qty_present(bl, v),
        "orderCount": Quote_orderCount_present(bl, v), "side": Quote_side_present(bl, v),
    }


def read_quote(const uint8_t[::1] frame):
    """The Quote's root block through the accessors, absent fields as None."""
    cdef const uint8_t* h = &frame[0]
    cdef const uint8_t* p = h + HEADER_LENGTH
    cdef Py_ssize_t bl = messageHeader_blockLength(h)
    cdef int v = messageHeader_version(h)
    qty = Quote_qty(p) if Quote_qty_present(bl, v) else None
    return {
        "transactTime": Quote_transactTime(p),
        "venueFlags": Quote_venueFlags(p) if Quote_venueFlags_present(bl, v) else None,
        "securityIdSource": chr(Quote_securityIdSource()[0]),
        "securityId": Quote_securityId(p), "price": Quote_price(p),
        "kind": chr(Quote_kind()) if Quote_kind_present(bl, v) else None,
        "qty": None if qty == Quote_qty_NULL_VALUE else qty,
        "orderCount": Quote_orderCount(p) if Quote_orderCount_present(bl, v) else None,
        "side": Quote_side(p) if Quote_side_present(bl, v) else None,
    }


def constants():
    return {
        "Quote_BLOCK_LENGTH": Quote_BLOCK_LENGTH, "Quote_venueFlags_OFFSET": Quote_venueFlags_OFFSET,
        "Quote_securityId_OFFSET": Quote_securityId_OFFSET, "Quote_price_OFFSET": Quote_price_OFFSET,
        "Quote_qty_OFFSET": Quote_qty_OFFSET, "Quote_orderCount_OFFSET": Quote_orderCount_OFFSET,
        "Quote_side_OFFSET": Quote_side_OFFSET, "Quote_venueFlags_SINCE_VERSION": Quote_venueFlags_SINCE_VERSION,
        "Quote_kind_SINCE_VERSION": Quote_kind_SINCE_VERSION, "Quote_legs_SINCE_VERSION": Quote_legs_SINCE_VERSION,
        "Quote_legs_BLOCK_LENGTH": Quote_legs_BLOCK_LENGTH, "Quote_legs_legPrice_OFFSET": Quote_legs_legPrice_OFFSET,
        "Quote_text_SINCE_VERSION": Quote_text_SINCE_VERSION, "Status_BLOCK_LENGTH": Status_BLOCK_LENGTH,
        "Status_seq_OFFSET": Status_seq_OFFSET, "Status_tail_OFFSET": Status_tail_OFFSET,
        "Status_flags_OFFSET": Status_flags_OFFSET,
    }
