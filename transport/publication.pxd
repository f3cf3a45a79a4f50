from libc.stdint cimport int64_t, uint8_t, uint64_t
from lob.transport.aeron cimport api
from lob.transport.aeronc cimport (
    AERON_PUBLICATION_ADMIN_ACTION, AERON_PUBLICATION_BACK_PRESSURED, AERON_PUBLICATION_NOT_CONNECTED,
    aeron_async_add_exclusive_publication_t, aeron_buffer_claim_t, aeron_exclusive_publication_t,
    aeron_publication_constants_t,
)
from lob.transport.client cimport Client
from lob.transport.idle cimport idle, idle_reset, idle_strategy_t, lob_load_flag


cdef class ExclusivePublication:
    cdef aeron_exclusive_publication_t* publication
    cdef aeron_publication_constants_t constants
    cdef readonly Client client
    cdef readonly str channel
    cdef object __weakref__

    cdef int _check(self) except -1


cdef class PendingExclusivePublication:
    cdef aeron_async_add_exclusive_publication_t* pending
    cdef readonly Client client
    cdef readonly str channel
    cdef readonly int stream_id
    cdef object result


cdef class BufferClaim:
    cdef aeron_buffer_claim_t claim
    cdef ExclusivePublication owner
    cdef bint done


cdef inline int64_t publication_offer(aeron_exclusive_publication_t* publication, const uint8_t* buffer,
                                      size_t length) noexcept nogil:
    return api.exclusive_publication_offer(publication, buffer, length, NULL, NULL)


cdef inline int64_t publication_try_claim(aeron_exclusive_publication_t* publication, size_t length,
                                          aeron_buffer_claim_t* claim) noexcept nogil:
    """Claim `length` (<= max_payload_length) bytes: write claim.data, then claim_commit (or claim_abort)."""
    return api.exclusive_publication_try_claim(publication, length, claim)


cdef inline int claim_commit(aeron_buffer_claim_t* claim) noexcept nogil:
    return api.buffer_claim_commit(claim)


cdef inline int claim_abort(aeron_buffer_claim_t* claim) noexcept nogil:
    return api.buffer_claim_abort(claim)


cdef inline int64_t offer_with_retry(aeron_exclusive_publication_t* publication, const uint8_t* buffer,
                                     size_t length, idle_strategy_t* idle_strategy, const int* running,
                                     bint retry_not_connected, uint64_t* back_pressure_events) noexcept nogil:
    """Offer one message; on back-pressure (and admin action) idle and retry until it is taken.

    Counts one back-pressure event per message that had to wait. Returns the new position (> 0), or the
    first result it will not retry: NOT_CONNECTED unless retry_not_connected, CLOSED,
    MAX_POSITION_EXCEEDED, ERROR, or the last result when *running became 0 while retrying.
    """
    cdef int64_t result = api.exclusive_publication_offer(publication, buffer, length, NULL, NULL)
    if result > 0:
        return result
    cdef bint waited = False
    while (result == AERON_PUBLICATION_BACK_PRESSURED or result == AERON_PUBLICATION_ADMIN_ACTION
           or (result == AERON_PUBLICATION_NOT_CONNECTED and retry_not_connected)):
        if result == AERON_PUBLICATION_BACK_PRESSURED and not waited:
            waited = True
            back_pressure_events[0] += 1
        if running != NULL and not lob_load_flag(running):
            break
        idle(idle_strategy, 0)
        result = api.exclusive_publication_offer(publication, buffer, length, NULL, NULL)
        if result > 0:
            break
    if waited:
        idle_reset(idle_strategy)
    return result
