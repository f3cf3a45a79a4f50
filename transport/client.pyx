"""An Aeron client connected to a media driver (aeron_context_t + aeron_t).

    with Client(aeron_dir) as client:
        sub = client.add_subscription("aeron:udp?endpoint=127.0.0.1:40101", 1001)
        pub = client.add_exclusive_publication("aeron:udp?endpoint=127.0.0.1:40101", 1001)

Publications and subscriptions belong to their client: closing the client closes them. A client, like
its publications and subscriptions, is used by one thread at a time (the Aeron C client's own conductor
thread runs beside it).
"""
import time
import weakref

from libc.stdint cimport int64_t, uint64_t
from lob.transport.aeron cimport api, raise_aeron_error


cdef class Client:
    def __cinit__(self):
        self.context = NULL
        self.aeron = NULL
        self._resources = weakref.WeakSet()

    def __init__(self, str aeron_dir=None, *, uint64_t driver_timeout_ms=10_000, str client_name="lob"):
        """Connect to the media driver at `aeron_dir` (None: AERON_DIR or Aeron's default directory).

        Raises DriverTimeout when no driver answers within driver_timeout_ms.
        """
        cdef aeron_context_t* context = NULL
        cdef aeron_t* aeron = NULL
        cdef int rc
        if api.context_init(&context) < 0:
            raise_aeron_error("aeron_context_init")
        self.context = context
        if aeron_dir is not None and api.context_set_dir(context, aeron_dir.encode()) < 0:
            raise_aeron_error("aeron_context_set_dir")
        api.context_set_driver_timeout_ms(context, driver_timeout_ms)
        api.context_set_client_name(context, client_name.encode())
        self.client_name = client_name
        self.aeron_dir = api.context_get_dir(context).decode()
        with nogil:
            rc = api.init(&aeron, context)
        if rc < 0:
            raise_aeron_error(f"cannot connect to a media driver in {self.aeron_dir}")
        self.aeron = aeron
        with nogil:
            rc = api.start(aeron)
        if rc < 0:
            raise_aeron_error("aeron_start")

    cdef int ensure_open(self) except -1:
        if self.aeron == NULL:
            raise RuntimeError("the Aeron client is closed")
        if api.is_closed(self.aeron):
            raise RuntimeError("the Aeron client was closed by the Aeron conductor (driver timeout?)")
        return 0

    cdef void track(self, object resource):
        self._resources.add(resource)

    @property
    def is_closed(self):
        return self.aeron == NULL or api.is_closed(self.aeron)

    @property
    def client_id(self):
        self.ensure_open()
        return api.client_id(self.aeron)

    def async_add_subscription(self, str channel, int stream_id, images=None):
        """Start adding a subscription; poll() the returned handle until it yields the Subscription.

        `images`: an ImageEvents (lob.transport.images) that receives its image events."""
        from lob.transport.subscription import PendingSubscription
        return PendingSubscription(self, channel, stream_id, images)

    def add_subscription(self, str channel, int stream_id, timeout=None, images=None):
        """Add a subscription and wait for the driver (Aeron's driver timeout applies; `timeout` in s)."""
        return self.async_add_subscription(channel, stream_id, images).wait(timeout)

    def async_add_exclusive_publication(self, str channel, int stream_id):
        """Start adding an exclusive publication; poll() the handle until it yields the publication."""
        from lob.transport.publication import PendingExclusivePublication
        return PendingExclusivePublication(self, channel, stream_id)

    def add_exclusive_publication(self, str channel, int stream_id, timeout=None):
        """Add an exclusive publication and wait for the driver."""
        return self.async_add_exclusive_publication(channel, stream_id).wait(timeout)

    def close(self):
        """Close every publication and subscription of this client, then the client itself."""
        cdef aeron_t* aeron = self.aeron
        if aeron == NULL:
            return
        for resource in list(self._resources):
            resource.close()
        self.aeron = NULL
        with nogil:
            api.close(aeron)
        api.context_close(self.context)
        self.context = NULL

    def __dealloc__(self):
        # Resources hold a reference to their client, so none is alive here.
        if self.aeron != NULL:
            with nogil:
                api.close(self.aeron)
        if self.context != NULL:
            api.context_close(self.context)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if self.aeron == NULL else "open"
        return f"Client(aeron_dir={self.aeron_dir!r}, {state})"


def wait_for_add(poll, str what, timeout=None):
    """Call `poll` (an async add's poll) every millisecond until it returns the resource; Aeron fails the
    add after its driver timeout. `timeout` in seconds (None: Aeron's); TimeoutError names `what`."""
    from lob.transport.idle import parse as parse_idle

    deadline = None if timeout is None else time.monotonic() + timeout
    sleeper = parse_idle("sleep:1000000")
    while True:
        result = poll()
        if result is not None:
            return result
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{what}: no answer from the driver in {timeout} s")
        sleeper.idle()
