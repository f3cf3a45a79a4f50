# Image events of a subscription, handed from the Aeron client's conductor thread (which runs the
# on_available/on_unavailable image handlers) to one polling thread through a lock-free SPSC ring.
from libc.stdint cimport int32_t, uint32_t, uint64_t
from lob.transport.aeronc cimport aeron_image_t, aeron_subscription_t

cdef enum:
    IMAGE_RING_SIZE = 4096              # a power of two
    IMAGE_AVAILABLE = 1
    IMAGE_UNAVAILABLE = 2

ctypedef struct image_ring_t:
    uint32_t head                       # next entry the consumer reads (written by the consumer only)
    uint32_t tail                       # next entry the producer writes (written by the producer only)
    uint64_t entries[IMAGE_RING_SIZE]   # kind << 32 | session id (as uint32)
    uint64_t overflow                   # events lost to a full ring (producer side)
    uint64_t received                   # events handed over (producer side)

cdef extern from *:
    """
    static inline uint32_t lob_load_u32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline void lob_store_u32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    """
    uint32_t lob_load_u32(const uint32_t* p) noexcept nogil
    void lob_store_u32(uint32_t* p, uint32_t v) noexcept nogil


cdef inline void image_ring_push(image_ring_t* ring, uint32_t kind, int32_t session_id) noexcept nogil:
    cdef uint32_t tail = ring.tail
    if tail - lob_load_u32(&ring.head) >= IMAGE_RING_SIZE:
        ring.overflow += 1
        return
    ring.entries[tail & (IMAGE_RING_SIZE - 1)] = (<uint64_t>kind << 32) | <uint32_t>session_id
    ring.received += 1
    lob_store_u32(&ring.tail, tail + 1)


cdef inline int image_ring_pop(image_ring_t* ring, uint32_t* kind, uint32_t* session_id) noexcept nogil:
    """1 and the oldest event, or 0 when the ring is empty (consumer side)."""
    cdef uint32_t head = ring.head
    if head == lob_load_u32(&ring.tail):
        return 0
    cdef uint64_t entry = ring.entries[head & (IMAGE_RING_SIZE - 1)]
    kind[0] = <uint32_t>(entry >> 32)
    session_id[0] = <uint32_t>entry
    lob_store_u32(&ring.head, head + 1)
    return 1


cdef void image_events_on_available(void* clientd, aeron_subscription_t* subscription,
                                    aeron_image_t* image) noexcept nogil
cdef void image_events_on_unavailable(void* clientd, aeron_subscription_t* subscription,
                                      aeron_image_t* image) noexcept nogil


cdef class ImageEvents:
    cdef image_ring_t ring
    cdef bint record_available
