from libc.stdint cimport int32_t, uint8_t, uint64_t
from lob.transport.aeron cimport api
from lob.transport.aeronc cimport (
    aeron_async_add_subscription_t, aeron_fragment_assembler_t, aeron_fragment_handler_t, aeron_header_t,
    aeron_subscription_t,
)
from lob.transport.client cimport Client


# What a nogil loop needs to poll one subscription: the handler passed to aeron_subscription_poll is
# either the caller's own C handler or Aeron's fragment assembler wrapping it.
ctypedef struct fragment_poller_t:
    aeron_subscription_t* subscription
    aeron_fragment_handler_t handler
    void* clientd


cdef inline int poller_poll(fragment_poller_t* poller, size_t fragment_limit) noexcept nogil:
    return api.subscription_poll(poller.subscription, poller.handler, poller.clientd, fragment_limit)


cdef class Subscription:
    cdef aeron_subscription_t* subscription
    cdef aeron_fragment_assembler_t* assembler
    cdef fragment_poller_t poller
    cdef readonly Client client
    cdef readonly str channel
    cdef readonly int stream_id
    cdef object handler_owner
    cdef readonly object images     # the ImageEvents its image handlers feed, or None
    cdef object __weakref__

    cdef int set_handler(self, aeron_fragment_handler_t handler, void* clientd, bint assemble=*,
                         object owner=*) except -1


cdef class PendingSubscription:
    cdef aeron_async_add_subscription_t* pending
    cdef object images
    cdef readonly Client client
    cdef readonly str channel
    cdef readonly int stream_id
    cdef object result


ctypedef struct frame_collector_t:
    uint8_t* data
    size_t length
    size_t capacity
    uint64_t count
    uint64_t dropped


cdef class FrameCollector:
    cdef frame_collector_t state


cdef void frame_collector_on_fragment(void* clientd, const uint8_t* buffer, size_t length,
                                      aeron_header_t* header) noexcept nogil
