"""Exclusive publications: one writer thread, offer or try_claim/commit.

Offer results follow the Aeron C API: the new stream position (> 0) or a negative code, exported here
as NOT_CONNECTED, BACK_PRESSURED, ADMIN_ACTION, CLOSED, MAX_POSITION_EXCEEDED, ERROR. nogil code uses
`publication_offer` / `offer_with_retry` from publication.pxd on the raw `publication` pointer.
"""
import time

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_FillInfo, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport INT64_MAX, int32_t, int64_t, uint64_t
from lob.transport.aeronc cimport (
    AERON_COUNTER_SENDER_POSITION_TYPE_ID, AERON_PUBLICATION_CLOSED, AERON_PUBLICATION_ERROR,
    AERON_PUBLICATION_MAX_POSITION_EXCEEDED,
)
from lob.transport.aeron cimport raise_aeron_error
from lob.transport.idle cimport IdleStrategy

from lob.transport.client import wait_for_add
from lob.transport.idle import parse as parse_idle

NOT_CONNECTED = AERON_PUBLICATION_NOT_CONNECTED
BACK_PRESSURED = AERON_PUBLICATION_BACK_PRESSURED
ADMIN_ACTION = AERON_PUBLICATION_ADMIN_ACTION
CLOSED = AERON_PUBLICATION_CLOSED
MAX_POSITION_EXCEEDED = AERON_PUBLICATION_MAX_POSITION_EXCEEDED
ERROR = AERON_PUBLICATION_ERROR
RESULT_NAMES = {NOT_CONNECTED: "NOT_CONNECTED", BACK_PRESSURED: "BACK_PRESSURED", ADMIN_ACTION: "ADMIN_ACTION",
                CLOSED: "CLOSED", MAX_POSITION_EXCEEDED: "MAX_POSITION_EXCEEDED", ERROR: "ERROR"}


def result_name(int64_t result):
    """'POSITION' for a successful offer, else the name of the negative code."""
    return "POSITION" if result > 0 else RESULT_NAMES.get(result, f"UNKNOWN({result})")


cdef class PendingExclusivePublication:
    """An aeron_async_add_exclusive_publication in progress."""

    def __init__(self, Client client, str channel, int stream_id):
        cdef aeron_async_add_exclusive_publication_t* pending = NULL
        client.ensure_open()
        self.client, self.channel, self.stream_id = client, channel, stream_id
        if api.async_add_exclusive_publication(&pending, client.aeron, channel.encode(), stream_id) < 0:
            raise_aeron_error(f"add exclusive publication {channel} stream {stream_id}")
        self.pending = pending

    def poll(self):
        """The ExclusivePublication once the driver has created it, else None."""
        cdef aeron_exclusive_publication_t* publication = NULL
        cdef int rc
        if self.result is not None:
            return self.result
        if self.pending == NULL:
            raise RuntimeError("this add failed")
        self.client.ensure_open()
        rc = api.async_add_exclusive_publication_poll(&publication, self.pending)
        if rc < 0:
            self.pending = NULL
            raise_aeron_error(f"add exclusive publication {self.channel} stream {self.stream_id}")
        if rc == 0:
            return None
        self.pending = NULL
        self.result = _wrap(self.client, publication, self.channel)
        return self.result

    def wait(self, timeout=None):
        """Poll until done (Aeron fails the add after its driver timeout); `timeout` in seconds."""
        return wait_for_add(self.poll, f"add exclusive publication {self.channel} stream {self.stream_id}",
                            timeout)


cdef ExclusivePublication _wrap(Client client, aeron_exclusive_publication_t* raw, str channel):
    cdef ExclusivePublication publication = ExclusivePublication.__new__(ExclusivePublication)
    publication.publication = raw
    publication.client = client
    publication.channel = channel
    if api.exclusive_publication_constants(raw, &publication.constants) < 0:
        raise_aeron_error("aeron_exclusive_publication_constants")
    client.track(publication)
    return publication


cdef class ExclusivePublication:
    """An Aeron exclusive publication (create with Client.add_exclusive_publication)."""

    def __init__(self):
        raise TypeError("create with Client.add_exclusive_publication")

    cdef int _check(self) except -1:
        if self.publication == NULL:
            raise RuntimeError("the publication is closed")
        return 0

    @property
    def stream_id(self):
        return self.constants.stream_id

    @property
    def session_id(self):
        return self.constants.session_id

    @property
    def registration_id(self):
        return self.constants.registration_id

    @property
    def max_payload_length(self):
        """Longest message that fits one frame (the try_claim limit)."""
        return self.constants.max_payload_length

    @property
    def max_message_length(self):
        """Longest message offer accepts (fragmented above max_payload_length)."""
        return self.constants.max_message_length

    @property
    def term_buffer_length(self):
        return self.constants.term_buffer_length

    @property
    def is_connected(self):
        return self.publication != NULL and api.exclusive_publication_is_connected(self.publication)

    @property
    def is_closed(self):
        return self.publication == NULL or api.exclusive_publication_is_closed(self.publication)

    @property
    def position(self):
        self._check()
        return api.exclusive_publication_position(self.publication)

    @property
    def position_limit(self):
        self._check()
        return api.exclusive_publication_position_limit(self.publication)

    def sender_position(self):
        """How far the driver's sender has sent this publication (-1 for IPC or when unknown)."""
        self._check()
        cdef int32_t counter_id = api.counters_reader_find_by_type_id_and_registration_id(
            api.counters_reader(self.client.aeron), AERON_COUNTER_SENDER_POSITION_TYPE_ID,
            self.constants.registration_id)
        if counter_id < 0:
            return -1
        return api.counters_reader_addr(api.counters_reader(self.client.aeron), counter_id)[0]

    def offer(self, data):
        """Offer a bytes-like message once: the new position (> 0) or a negative result code."""
        cdef Py_buffer view
        cdef int64_t result
        self._check()
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            result = publication_offer(self.publication, <const uint8_t*>view.buf, <size_t>view.len)
        finally:
            PyBuffer_Release(&view)
        return result

    def offer_retry(self, data, idle_strategy="yield", bint retry_not_connected=True, timeout=None):
        """Offer, idling and retrying while back-pressured (and while not connected, unless told not to).

        Returns the new position, or NOT_CONNECTED when not retrying it. Raises TimeoutError when
        `timeout` seconds pass, RuntimeError when the publication is closed or failed.
        """
        cdef Py_buffer view
        cdef int64_t result
        cdef IdleStrategy strategy = parse_idle(idle_strategy)
        cdef idle_strategy_t state = strategy.state
        cdef int64_t deadline = INT64_MAX if timeout is None else api.nano_clock() + <int64_t>(timeout * 1e9)
        self._check()
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            with nogil:
                while True:
                    result = publication_offer(self.publication, <const uint8_t*>view.buf, <size_t>view.len)
                    if (result > 0 or not (result == AERON_PUBLICATION_BACK_PRESSURED
                                           or result == AERON_PUBLICATION_ADMIN_ACTION
                                           or (result == AERON_PUBLICATION_NOT_CONNECTED and retry_not_connected))
                            or api.nano_clock() > deadline):
                        break
                    idle(&state, 0)
        finally:
            PyBuffer_Release(&view)
        if result > 0 or (result == AERON_PUBLICATION_NOT_CONNECTED and not retry_not_connected):
            return result
        if result in (AERON_PUBLICATION_BACK_PRESSURED, AERON_PUBLICATION_ADMIN_ACTION, AERON_PUBLICATION_NOT_CONNECTED):
            raise TimeoutError(f"offer on {self.channel} stream {self.stream_id}: {result_name(result)} "
                               f"for {timeout} s")
        raise RuntimeError(f"offer on {self.channel} stream {self.stream_id}: {result_name(result)}")

    def try_claim(self, size_t length):
        """Claim `length` bytes in the log (length <= max_payload_length): a BufferClaim, or a negative code."""
        cdef BufferClaim claim = BufferClaim.__new__(BufferClaim)
        cdef int64_t result
        self._check()
        result = api.exclusive_publication_try_claim(self.publication, length, &claim.claim)
        if result < 0:
            return result
        claim.owner = self
        return claim

    def wait_connected(self, timeout=10.0):
        """Wait (GIL released between checks) until a subscriber is connected; False on timeout."""
        deadline = time.monotonic() + timeout
        sleeper = parse_idle("sleep:1000000")
        while not self.is_connected:
            self._check()
            if time.monotonic() > deadline:
                return False
            sleeper.idle()
        return True

    def close(self):
        if self.publication != NULL:
            api.exclusive_publication_close(self.publication, NULL, NULL)
            self.publication = NULL
            self.client._resources.discard(self)

    def __dealloc__(self):
        if self.publication != NULL and self.client is not None and self.client.aeron != NULL:
            api.exclusive_publication_close(self.publication, NULL, NULL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"ExclusivePublication({self.channel!r}, stream_id={self.constants.stream_id}, "
                f"session_id={self.constants.session_id}{', closed' if self.publication == NULL else ''})")


cdef class BufferClaim:
    """A claimed range of the log: write into it (buffer protocol), then commit() or abort()."""

    def __getbuffer__(self, Py_buffer* view, int flags):
        if self.done:
            raise ValueError("the claim is already committed or aborted")
        PyBuffer_FillInfo(view, self, self.claim.data, <Py_ssize_t>self.claim.length, 0, flags)

    def __releasebuffer__(self, Py_buffer* view):
        pass

    @property
    def length(self):
        return self.claim.length

    def commit(self):
        if self.done:
            raise ValueError("the claim is already committed or aborted")
        self.done = True
        if api.buffer_claim_commit(&self.claim) < 0:
            raise_aeron_error("aeron_buffer_claim_commit")

    def abort(self):
        if self.done:
            raise ValueError("the claim is already committed or aborted")
        self.done = True
        if api.buffer_claim_abort(&self.claim) < 0:
            raise_aeron_error("aeron_buffer_claim_abort")
