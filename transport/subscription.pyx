"""Subscriptions polled with C fragment handlers.

The engine installs its own nogil handler with `Subscription.set_handler(handler, clientd)` (Cython)
and polls through `poller_poll(&sub.poller, limit)`; by default Aeron's fragment assembler sits in
front of the handler, so a message longer than one frame arrives whole. From Python, a FrameCollector
is such a C handler: it appends every message to one buffer, and `drain()` returns them in batches:

    collector = FrameCollector()
    sub.set_collector(collector)
    sub.poll_until(collector, count=10, timeout=5.0)
    for session_id, payload in collector.drain(): ...
"""
import time

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport INT64_MAX, int64_t, uint32_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy
from lob.transport.aeron cimport raise_aeron_error
from lob.transport.aeronc cimport aeron_header_values_t, aeron_on_available_image_t, aeron_on_unavailable_image_t
from lob.transport.idle cimport IdleStrategy, idle, idle_strategy_t
from lob.transport.images cimport ImageEvents, image_events_on_available, image_events_on_unavailable

from lob.transport.client import wait_for_add
from lob.transport.idle import parse as parse_idle

DEFAULT_FRAGMENT_LIMIT = 16


cdef class PendingSubscription:
    """An aeron_async_add_subscription in progress."""

    def __init__(self, Client client, str channel, int stream_id, ImageEvents images=None):
        """`images`: its ring receives the subscription's image events (kept alive with the subscription)."""
        cdef aeron_async_add_subscription_t* pending = NULL
        cdef void* ring = NULL
        cdef aeron_on_available_image_t on_available = NULL
        cdef aeron_on_unavailable_image_t on_unavailable = NULL
        client.ensure_open()
        self.client, self.channel, self.stream_id, self.images = client, channel, stream_id, images
        if images is not None:
            ring = &images.ring
            on_unavailable = image_events_on_unavailable
            if images.record_available:
                on_available = image_events_on_available
        if api.async_add_subscription(&pending, client.aeron, channel.encode(), stream_id,
                                      on_available, ring, on_unavailable, ring) < 0:
            raise_aeron_error(f"add subscription {channel} stream {stream_id}")
        self.pending = pending

    def poll(self):
        """The Subscription once the driver has created it, else None."""
        cdef aeron_subscription_t* raw = NULL
        cdef int rc
        cdef Subscription subscription
        if self.result is not None:
            return self.result
        if self.pending == NULL:
            raise RuntimeError("this add failed")
        self.client.ensure_open()
        rc = api.async_add_subscription_poll(&raw, self.pending)
        if rc < 0:
            self.pending = NULL
            raise_aeron_error(f"add subscription {self.channel} stream {self.stream_id}")
        if rc == 0:
            return None
        self.pending = NULL
        subscription = Subscription.__new__(Subscription)
        subscription.subscription = raw
        subscription.poller.subscription = raw
        subscription.client = self.client
        subscription.channel = self.channel
        subscription.stream_id = self.stream_id
        subscription.images = self.images
        self.client.track(subscription)
        self.result = subscription
        return subscription

    def wait(self, timeout=None):
        """Poll until done (Aeron fails the add after its driver timeout); `timeout` in seconds."""
        return wait_for_add(self.poll, f"add subscription {self.channel} stream {self.stream_id}", timeout)


cdef class Subscription:
    """An Aeron subscription (create with Client.add_subscription)."""

    def __init__(self):
        raise TypeError("create with Client.add_subscription")

    cdef int set_handler(self, aeron_fragment_handler_t handler, void* clientd, bint assemble=True,
                         object owner=None) except -1:
        """Deliver fragments to handler(clientd, ...); with `assemble`, whole messages only.

        `owner` is kept alive as long as the handler is installed (it usually owns `clientd`).
        """
        cdef aeron_fragment_assembler_t* assembler = NULL
        if self.subscription == NULL:
            raise RuntimeError("the subscription is closed")
        if assemble and api.fragment_assembler_create(&assembler, handler, clientd) < 0:
            raise_aeron_error("aeron_fragment_assembler_create")
        if self.assembler != NULL:
            api.fragment_assembler_delete(self.assembler)
        self.assembler = assembler
        if assemble:
            self.poller.handler = api.fragment_assembler_handler
            self.poller.clientd = assembler
        else:
            self.poller.handler = handler
            self.poller.clientd = clientd
        self.handler_owner = owner
        return 0

    def clear_handler(self):
        """Remove the fragment handler (poll() then fails until a new one is installed)."""
        if self.assembler != NULL:
            api.fragment_assembler_delete(self.assembler)
            self.assembler = NULL
        self.poller.handler = NULL
        self.poller.clientd = NULL
        self.handler_owner = None

    def set_collector(self, FrameCollector collector, bint assemble=True):
        """Deliver every message (or fragment, without `assemble`) to `collector`."""
        self.set_handler(frame_collector_on_fragment, &collector.state, assemble, collector)

    def poll(self, size_t fragment_limit=DEFAULT_FRAGMENT_LIMIT):
        """Poll once with the installed C handler; returns the number of fragments read."""
        cdef int n
        if self.subscription == NULL:
            raise RuntimeError("the subscription is closed")
        if self.poller.handler == NULL:
            raise RuntimeError("no fragment handler installed (set_handler / set_collector)")
        n = poller_poll(&self.poller, fragment_limit)
        if n < 0:
            raise_aeron_error(f"poll {self.channel} stream {self.stream_id}")
        return n

    def poll_until(self, FrameCollector collector, uint64_t count, double timeout,
                   idle_strategy="yield", size_t fragment_limit=DEFAULT_FRAGMENT_LIMIT):
        """Poll (GIL released, idling when there is no work) until `collector` holds `count` messages
        in total or `timeout` seconds pass; returns the collector's message count."""
        cdef IdleStrategy strategy = parse_idle(idle_strategy)
        cdef idle_strategy_t state = strategy.state
        cdef int64_t deadline = api.nano_clock() + <int64_t>(timeout * 1e9)
        cdef int n = 0
        if self.handler_owner is not collector:
            raise ValueError("the collector is not this subscription's handler (set_collector first)")
        if self.subscription == NULL:
            raise RuntimeError("the subscription is closed")
        with nogil:
            while collector.state.count < count and api.nano_clock() < deadline:
                n = poller_poll(&self.poller, fragment_limit)
                if n < 0:
                    break
                idle(&state, n)
        if n < 0:
            raise_aeron_error(f"poll {self.channel} stream {self.stream_id}")
        return collector.state.count

    @property
    def is_connected(self):
        """True when at least one publication's image is connected."""
        return self.subscription != NULL and api.subscription_is_connected(self.subscription)

    @property
    def image_count(self):
        return 0 if self.subscription == NULL else api.subscription_image_count(self.subscription)

    @property
    def is_closed(self):
        return self.subscription == NULL or api.subscription_is_closed(self.subscription)

    @property
    def channel_status(self):
        """1 active, -1 errored (e.g. the port is in use)."""
        return 0 if self.subscription == NULL else api.subscription_channel_status(self.subscription)

    def wait_connected(self, timeout=10.0):
        """Wait until a publication is connected; False on timeout."""
        deadline = time.monotonic() + timeout
        sleeper = parse_idle("sleep:1000000")
        while not self.is_connected:
            if self.subscription == NULL:
                raise RuntimeError("the subscription is closed")
            if time.monotonic() > deadline:
                return False
            sleeper.idle()
        return True

    def close(self):
        if self.subscription != NULL:
            api.subscription_close(self.subscription, NULL, NULL)
            self.subscription = NULL
            self.poller.subscription = NULL
            self.client._resources.discard(self)
        self.clear_handler()

    def __dealloc__(self):
        if self.subscription != NULL and self.client is not None and self.client.aeron != NULL:
            api.subscription_close(self.subscription, NULL, NULL)
        if self.assembler != NULL:
            api.fragment_assembler_delete(self.assembler)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"Subscription({self.channel!r}, stream_id={self.stream_id}"
                f"{', closed' if self.subscription == NULL else ''})")


cdef enum:
    RECORD_HEADER = 8  # uint32 length | int32 session id


cdef void frame_collector_on_fragment(void* clientd, const uint8_t* buffer, size_t length,
                                      aeron_header_t* header) noexcept nogil:
    cdef frame_collector_t* c = <frame_collector_t*>clientd
    cdef aeron_header_values_t values
    cdef size_t needed = c.length + RECORD_HEADER + length
    cdef size_t capacity
    cdef uint8_t* grown
    cdef uint32_t length32 = <uint32_t>length
    if needed > c.capacity:
        capacity = c.capacity * 2 if c.capacity else 65536
        while capacity < needed:
            capacity *= 2
        grown = <uint8_t*>realloc(c.data, capacity)
        if grown == NULL:
            c.dropped += 1
            return
        c.data, c.capacity = grown, capacity
    api.header_values(header, &values)
    memcpy(c.data + c.length, &length32, 4)
    memcpy(c.data + c.length + 4, &values.frame.session_id, 4)
    memcpy(c.data + c.length + RECORD_HEADER, buffer, length)
    c.length = needed
    c.count += 1


cdef class FrameCollector:
    """A C fragment handler that stores messages until drained (the Python side of a subscription)."""

    @property
    def count(self):
        """Messages collected since creation (drained or not)."""
        return self.state.count

    @property
    def dropped(self):
        """Messages lost because memory could not be allocated."""
        return self.state.dropped

    @property
    def pending_bytes(self):
        return self.state.length

    def drain(self):
        """The messages collected since the last drain, as [(session_id, bytes)]."""
        cdef size_t offset = 0
        cdef uint32_t length
        cdef int32_t session_id
        out = []
        while offset < self.state.length:
            memcpy(&length, self.state.data + offset, 4)
            memcpy(&session_id, self.state.data + offset + 4, 4)
            out.append((session_id, PyBytes_FromStringAndSize(
                <const char*>self.state.data + offset + RECORD_HEADER, length)))
            offset += RECORD_HEADER + length
        self.state.length = 0
        return out

    def __dealloc__(self):
        free(self.state.data)
