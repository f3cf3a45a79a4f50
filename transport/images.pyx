"""Image events of a subscription for a nogil polling loop.

    events = ImageEvents()
    sub = client.add_subscription(channel, stream_id, images=events)
    # the loop thread, nogil: while image_ring_pop(&events.ring, &kind, &session_id): ...

Aeron calls the image handlers on its client conductor thread; the handlers only push (kind, session
id) into a single-producer single-consumer ring, which one consumer thread drains. A full ring drops
the event and counts it (`overflow`).
"""
from lob.transport.aeron cimport api
from lob.transport.aeronc cimport aeron_image_constants_t

AVAILABLE = IMAGE_AVAILABLE
UNAVAILABLE = IMAGE_UNAVAILABLE


cdef inline void _push(void* clientd, aeron_image_t* image, uint32_t kind) noexcept nogil:
    cdef aeron_image_constants_t constants
    if api.image_constants(image, &constants) == 0:
        image_ring_push(<image_ring_t*>clientd, kind, constants.session_id)


cdef void image_events_on_available(void* clientd, aeron_subscription_t* subscription,
                                    aeron_image_t* image) noexcept nogil:
    _push(clientd, image, IMAGE_AVAILABLE)


cdef void image_events_on_unavailable(void* clientd, aeron_subscription_t* subscription,
                                      aeron_image_t* image) noexcept nogil:
    _push(clientd, image, IMAGE_UNAVAILABLE)


cdef class ImageEvents:
    """The ring the image handlers of one or more subscriptions (of one client) push into."""

    def __init__(self, bint available=False):
        """`available`: also record images that become available (unavailable ones always are)."""
        self.record_available = available

    @property
    def overflow(self):
        return self.ring.overflow

    @property
    def received(self):
        return self.ring.received

    def drain(self):
        """[(kind, session_id)] handed over since the last drain (for Python consumers and tests)."""
        cdef uint32_t kind, session_id
        out = []
        while image_ring_pop(&self.ring, &kind, &session_id):
            out.append((kind, <int32_t>session_id))
        return out
