# cython: boundscheck=False, wraparound=False
"""Private execution streams: one exclusive publication per client transport, to the response channel
and stream its Negotiate named.

The engine loop drives everything here without the GIL:
- `private_streams_on_negotiate`, for every Negotiate frame (before the core sees it): starts an async
  add of the publication (with the venue's `term_length` added to a channel that names none, so the
  driver holds three such terms per client), unless the channel is not one the venue serves ("aeron:udp?..." or
  "aeron:ipc", at most 512 bytes) or `capacity` publications exist already. A Negotiate repeated with
  the same channel and stream keeps the publication; another channel replaces it.
- `private_streams_send`, for every routed frame: offered once, or kept in the transport's bounded
  buffer while the publication is being added, has no subscriber yet, or is back-pressured (then
  every later frame of that transport joins the buffer too, so order is kept). Terminate,
  NegotiationReject and EstablishmentReject mark it closing.
- `private_streams_poll`, between polls while some publication is adding, waiting, back-pressured or
  closing: finishes adds, flushes the buffer in order once a subscriber connects, drops it when
  `connect_timeout_ns` passes, retries back-pressured frames (at every call, never waiting), and
  closes a closing publication once the driver has sent all it was given (or after `linger_ns`; the
  driver itself still lingers a closed publication).

Slow consumers: one client that stops reading must not hold the engine back, so a back-pressured
transport whose buffer would exceed `buffer_limit`, or whose backlog has not moved (nothing of it taken
by the publication) for `slow_consumer_timeout_ns`, is disconnected: its buffered frames are dropped, its
publication closed, and its transport queued for `private_streams_next_slow`, from which the engine
loop writes a TransportLost record so the core ends the session like any lost transport (its
application messages stay retrievable by RetransmitRequest once it logs on again).

Memory is allocated per publication (the slot table up front, a transport's buffer on first use),
never per message.
"""
from libc.stdint cimport INT64_MAX
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.stdio cimport snprintf
from libc.string cimport memcmp, memcpy, memmove, strchr, strstr

from lob.core cimport response_channel_ok
from lob.sbe.messages cimport (
    HEADER_LENGTH, SCHEMA_ID, EstablishmentReject_TEMPLATE_ID, NegotiationReject_TEMPLATE_ID, Negotiate_BLOCK_LENGTH,
    Negotiate_TEMPLATE_ID, Negotiate_responseStreamId_OFFSET, Terminate_TEMPLATE_ID, messageHeader_blockLength_OFFSET,
    messageHeader_schemaId_OFFSET, messageHeader_templateId_OFFSET,
)
from lob.transport.aeron cimport api
from lob.transport.aeronc cimport (
    AERON_COUNTER_SENDER_POSITION_TYPE_ID, AERON_PUBLICATION_ADMIN_ACTION, AERON_PUBLICATION_BACK_PRESSURED,
    AERON_PUBLICATION_NOT_CONNECTED, aeron_publication_constants_t,
)
from lob.transport.client cimport Client
from lob.transport.publication cimport publication_offer

cdef enum:
    HOUSEKEEPING_INTERVAL_NS = 200000
    MAX_PUBLICATION_URI = MAX_RESPONSE_CHANNEL + 32


cdef inline uint16_t u16le(const uint8_t* p) noexcept nogil:
    return p[0] | (<uint16_t>p[1] << 8)


cdef inline uint32_t home(const private_streams_t* ps, uint32_t transport) noexcept nogil:
    cdef uint32_t h = transport * 2654435761u
    return (h ^ (h >> 16)) & ps.index_mask


cdef inline bint response_channel_allowed(const char* channel, size_t length) noexcept nogil:
    return length <= MAX_RESPONSE_CHANNEL and response_channel_ok(<const uint8_t*>channel, <uint32_t>length)


cdef int32_t find_slot(const private_streams_t* ps, uint32_t transport) noexcept nogil:
    cdef uint32_t i = home(ps, transport)
    cdef int32_t slot
    while True:
        slot = ps.index[i]
        if slot < 0 or ps.slots[slot].transport == transport:
            return slot
        i = (i + 1) & ps.index_mask


cdef void index_remove(private_streams_t* ps, uint32_t transport) noexcept nogil:
    """Backward-shift deletion: no tombstones, so lookups stay short."""
    cdef uint32_t i = home(ps, transport)
    cdef uint32_t j, k
    while ps.index[i] >= 0 and ps.slots[ps.index[i]].transport != transport:
        i = (i + 1) & ps.index_mask
    if ps.index[i] < 0:
        return
    j = i
    while True:
        j = (j + 1) & ps.index_mask
        if ps.index[j] < 0:
            ps.index[i] = -1
            return
        k = home(ps, ps.slots[ps.index[j]].transport)
        if (i < k <= j) if i <= j else (i < k or k <= j):
            continue
        ps.index[i] = ps.index[j]
        i = j


cdef void drop_pending(private_streams_t* ps, private_stream_t* st, uint64_t* counter) noexcept nogil:
    counter[0] += st.pending_frames
    st.pending_head = 0
    st.pending_length = 0
    st.pending_frames = 0


cdef inline bint needs_housekeeping(const private_stream_t* st) noexcept nogil:
    return (st.closing or st.state == STREAM_ADDING or st.state == STREAM_WAITING
            or (st.state == STREAM_OPEN and st.pending_frames != 0))


cdef inline void backlog_start(private_streams_t* ps, private_stream_t* st, uint64_t now_ns) noexcept nogil:
    if st.backlog_since_ns == 0:
        st.backlog_since_ns = now_ns if now_ns else 1
        ps.backlogged += 1


cdef inline void backlog_end(private_streams_t* ps, private_stream_t* st) noexcept nogil:
    if st.backlog_since_ns != 0:
        st.backlog_since_ns = 0
        ps.backlogged -= 1


cdef void release(private_streams_t* ps, private_stream_t* st) noexcept nogil:
    """Close the publication (or abandon the add) and free the slot."""
    if needs_housekeeping(st):
        ps.busy -= 1
    backlog_end(ps, st)
    drop_pending(ps, st, &ps.counters.unsent if st.state == STREAM_OPEN else &ps.counters.dropped_unconnected)
    if st.publication != NULL:
        api.exclusive_publication_close(st.publication, NULL, NULL)
        st.publication = NULL
        ps.counters.closed += 1
    # An add in progress cannot be cancelled in the Aeron C API: the client conductor frees its state
    # once the driver answers, and the publication it made (if any) is closed with the client.
    st.adding = NULL
    index_remove(ps, st.transport)
    free(st.pending)
    st.pending = NULL
    st.pending_capacity = 0
    st.state = STREAM_FREE
    st.closing = False
    st.expired = False
    ps.count -= 1


cdef void disconnect_slow(private_streams_t* ps, private_stream_t* st) noexcept nogil:
    """Give up on a back-pressured transport: drop what it holds, close its publication, and queue it
    for the loop's TransportLost. The slot stays (STREAM_SLOW) until then, so later frames routed to it
    are dropped and counted instead of reopening anything."""
    if needs_housekeeping(st):
        ps.busy -= 1
    backlog_end(ps, st)
    drop_pending(ps, st, &ps.counters.dropped_slow_consumer)
    if st.publication != NULL:
        api.exclusive_publication_close(st.publication, NULL, NULL)
        st.publication = NULL
        ps.counters.closed += 1
    st.state = STREAM_SLOW
    st.closing = False
    ps.counters.slow_consumers_disconnected += 1
    if ps.slow_count < ps.capacity:   # a slot is queued at most once while it is STREAM_SLOW
        ps.slow[ps.slow_count] = st.transport
        ps.slow_count += 1


cdef bint private_streams_next_slow(private_streams_t* ps, uint32_t* transport) noexcept nogil:
    """The next transport disconnected as a slow consumer, oldest first; False when there is none.
    One that was released meanwhile (its image went away and was reported lost) is skipped."""
    cdef int32_t slot
    while ps.slow_head < ps.slow_count:
        transport[0] = ps.slow[ps.slow_head]
        ps.slow_head += 1
        slot = find_slot(ps, transport[0])
        if slot >= 0 and ps.slots[slot].state == STREAM_SLOW:
            return True
    ps.slow_head = ps.slow_count = 0
    return False


cdef void set_closing(private_streams_t* ps, private_stream_t* st, uint64_t now_ns) noexcept nogil:
    cdef uint64_t deadline = now_ns + ps.linger_ns
    if st.state != STREAM_OPEN and not st.expired and st.connect_deadline_ns > deadline:
        deadline = st.connect_deadline_ns   # whoever connects late still gets the reject
    if not needs_housekeeping(st):
        ps.busy += 1
    st.closing = True
    st.close_deadline_ns = deadline


cdef const char* publication_uri(const private_streams_t* ps, const private_stream_t* st, char* uri) noexcept nogil:
    """The channel as the client named it, with the venue's term length added when it names none (the
    driver then holds three terms per connected client instead of its default's)."""
    if ps.term_length == 0 or strstr(st.channel, "term-length=") != NULL:
        return st.channel
    snprintf(uri, MAX_PUBLICATION_URI, "%s%sterm-length=%u", st.channel,
             "|" if strchr(st.channel, c'?') != NULL else "?", ps.term_length)
    return uri


cdef void private_streams_on_negotiate(private_streams_t* ps, uint32_t transport, const uint8_t* frame,
                                       size_t length, uint64_t now_ns) noexcept nogil:
    cdef char uri[MAX_PUBLICATION_URI]
    cdef size_t block_length, channel_length
    cdef const char* channel
    cdef int32_t stream_id, slot
    cdef uint32_t i
    cdef private_stream_t* st
    if length < HEADER_LENGTH or u16le(frame + messageHeader_templateId_OFFSET) != Negotiate_TEMPLATE_ID:
        return
    if u16le(frame + messageHeader_schemaId_OFFSET) != SCHEMA_ID or transport == 0:
        return
    block_length = u16le(frame + messageHeader_blockLength_OFFSET)
    if block_length < Negotiate_BLOCK_LENGTH or length < HEADER_LENGTH + block_length + 2:
        return   # the core rejects it as malformed
    channel_length = u16le(frame + HEADER_LENGTH + block_length)
    if HEADER_LENGTH + block_length + 2 + channel_length > length:
        return
    channel = <const char*>(frame + HEADER_LENGTH + block_length + 2)
    memcpy(&stream_id, frame + HEADER_LENGTH + Negotiate_responseStreamId_OFFSET, 4)
    if not response_channel_allowed(channel, channel_length):
        ps.counters.channel_refused += 1
        return
    slot = find_slot(ps, transport)
    if slot >= 0:
        st = &ps.slots[slot]
        if st.state == STREAM_SLOW:
            return   # the loop reports the transport lost first; a Negotiate after that opens anew
        if (st.stream_id == stream_id and st.channel_length == channel_length
                and memcmp(st.channel, channel, channel_length) == 0):
            if st.closing:
                st.closing = False
                if not needs_housekeeping(st):
                    ps.busy -= 1
            return
        if st.adding != NULL:
            return   # an add cannot be cancelled: the first channel stays until it completes
        release(ps, st)
    if ps.count >= ps.capacity:
        ps.counters.limit_refused += 1
        return
    for i in range(ps.capacity):
        if ps.slots[i].state == STREAM_FREE:
            slot = i
            break
    st = &ps.slots[slot]
    memcpy(st.channel, channel, channel_length)
    st.channel[channel_length] = 0
    st.channel_length = <uint16_t>channel_length
    st.stream_id = stream_id
    st.adding = NULL
    if api.async_add_exclusive_publication(&st.adding, ps.aeron, publication_uri(ps, st, uri), stream_id) < 0:
        ps.counters.add_failures += 1
        return
    st.transport = transport
    st.state = STREAM_ADDING
    st.publication = NULL
    st.sender_position_id = -1
    st.backlog_since_ns = 0
    st.connect_deadline_ns = now_ns + ps.connect_timeout_ns
    ps.count += 1
    ps.busy += 1
    i = home(ps, transport)
    while ps.index[i] >= 0:
        i = (i + 1) & ps.index_mask
    ps.index[i] = slot


cdef bint buffer_frame(private_streams_t* ps, private_stream_t* st, const uint8_t* frame,
                       uint32_t length) noexcept nogil:
    """Append a frame; False when the transport would hold more than `buffer_limit` bytes.

    Frames leave from `pending_head`. The space they leave is reclaimed (one memmove) only once it is
    half the allocation, so each byte is moved O(1) times; the allocation may therefore reach twice
    the limit on what is held."""
    cdef size_t held = st.pending_length - st.pending_head + 4 + length
    cdef size_t end = st.pending_length + 4 + length
    cdef size_t capacity
    cdef uint8_t* grown
    if held > ps.buffer_limit:
        return False
    if end > st.pending_capacity and st.pending_head and st.pending_head >= st.pending_capacity // 2:
        memmove(st.pending, st.pending + st.pending_head, st.pending_length - st.pending_head)
        st.pending_length -= st.pending_head
        st.pending_head = 0
        end = held
    if end > st.pending_capacity:
        capacity = st.pending_capacity * 2 if st.pending_capacity else 4096
        while capacity < end:
            capacity *= 2
        if capacity > 2 * ps.buffer_limit:
            capacity = 2 * ps.buffer_limit   # >= end: a head below half of it leaves room for the limit
        grown = <uint8_t*>realloc(st.pending, capacity)
        if grown == NULL:
            return False
        st.pending, st.pending_capacity = grown, capacity
    memcpy(st.pending + st.pending_length, &length, 4)
    memcpy(st.pending + st.pending_length + 4, frame, length)
    st.pending_length = end
    st.pending_frames += 1
    return True


cdef inline bint held_back(int64_t result) noexcept nogil:
    return result == AERON_PUBLICATION_BACK_PRESSURED or result == AERON_PUBLICATION_ADMIN_ACTION


cdef void account(private_streams_t* ps, int64_t result, uint32_t length) noexcept nogil:
    """Count the outcome of an offer that was not held back."""
    cdef private_counters_t* c = &ps.counters
    if result > 0:
        c.frames += 1
        c.bytes += length
    elif result == AERON_PUBLICATION_NOT_CONNECTED:
        c.dropped_unconnected += 1
    else:
        c.errors += 1   # this client's publication is gone; the others go on


cdef int offer_pending(private_streams_t* ps, private_stream_t* st) noexcept nogil:
    """Offer buffered frames, oldest first, until one is held back; the number that left the buffer."""
    cdef uint32_t length
    cdef int64_t result
    cdef int taken = 0
    while st.pending_frames:
        memcpy(&length, st.pending + st.pending_head, 4)
        result = publication_offer(st.publication, st.pending + st.pending_head + 4, length)
        if held_back(result):
            break
        account(ps, result, length)
        st.pending_head += 4 + length
        st.pending_frames -= 1
        taken += 1
    if st.pending_frames == 0:
        st.pending_head = st.pending_length = 0
    return taken


cdef inline void mark_closing(private_streams_t* ps, private_stream_t* st, uint16_t template_id,
                              uint64_t now_ns) noexcept nogil:
    if (template_id == Terminate_TEMPLATE_ID or template_id == NegotiationReject_TEMPLATE_ID
            or template_id == EstablishmentReject_TEMPLATE_ID):
        set_closing(ps, st, now_ns)


cdef void private_streams_send(private_streams_t* ps, uint32_t transport, const uint8_t* frame, uint32_t length,
                               uint16_t template_id, uint64_t now_ns) noexcept nogil:
    cdef int32_t slot
    cdef int64_t result
    cdef private_stream_t* st
    if transport == 0:
        ps.counters.unrouted += 1
        return
    slot = find_slot(ps, transport)
    if slot < 0:
        ps.counters.no_route += 1
        return
    st = &ps.slots[slot]
    if st.state == STREAM_OPEN:
        if st.pending_frames == 0:
            result = publication_offer(st.publication, frame, length)
            if not held_back(result):
                account(ps, result, length)
                mark_closing(ps, st, template_id, now_ns)
                return
        if not buffer_frame(ps, st, frame, length):
            disconnect_slow(ps, st)
            ps.counters.dropped_slow_consumer += 1
            return
        ps.counters.back_pressure_events += 1
        if st.pending_frames == 1 and not st.closing:
            ps.busy += 1   # open and nothing held back until now: housekeeping retries it from here on
        backlog_start(ps, st, now_ns)
    elif st.state == STREAM_SLOW:
        ps.counters.dropped_slow_consumer += 1
        return
    elif st.expired or not buffer_frame(ps, st, frame, length):
        ps.counters.dropped_unconnected += 1
    mark_closing(ps, st, template_id, now_ns)


cdef void private_streams_transport_lost(private_streams_t* ps, uint32_t transport, uint64_t now_ns) noexcept nogil:
    cdef int32_t slot = find_slot(ps, transport)
    if slot < 0:
        return
    if ps.slots[slot].state == STREAM_SLOW:
        release(ps, &ps.slots[slot])   # nothing left to send: the slot is free for a new Negotiate
    else:
        set_closing(ps, &ps.slots[slot], now_ns)


cdef bint driver_sent_all(private_streams_t* ps, private_stream_t* st) noexcept nogil:
    """The driver has sent everything offered to the publication (unknown for IPC: False)."""
    if st.publication == NULL:
        return False
    if st.sender_position_id < 0:
        st.sender_position_id = api.counters_reader_find_by_type_id_and_registration_id(
            api.counters_reader(ps.aeron), AERON_COUNTER_SENDER_POSITION_TYPE_ID, st.registration_id)
        if st.sender_position_id < 0:
            return False   # IPC has no sender: wait for the linger
    return (api.counters_reader_addr(api.counters_reader(ps.aeron), st.sender_position_id)[0]
            >= api.exclusive_publication_position(st.publication))


cdef inline bint sent_everything(private_streams_t* ps, private_stream_t* st) noexcept nogil:
    return st.pending_frames == 0 and driver_sent_all(ps, st)


cdef int housekeep(private_streams_t* ps, private_stream_t* st, uint64_t now_ns) noexcept nogil:
    """Advance one adding, waiting, back-pressured or closing publication; 1 when something changed."""
    cdef aeron_publication_constants_t constants
    cdef int rc
    cdef int work = 0
    if st.state == STREAM_ADDING and st.adding != NULL:
        rc = api.async_add_exclusive_publication_poll(&st.publication, st.adding)
        if rc < 0:
            ps.counters.add_failures += 1
            st.adding = NULL
            release(ps, st)
            return 1
        if rc > 0:
            st.adding = NULL
            ps.counters.opened += 1
            if api.exclusive_publication_constants(st.publication, &constants) == 0:
                st.registration_id = constants.registration_id
            st.state = STREAM_OPEN if st.expired else STREAM_WAITING
            work = 1
    if st.state == STREAM_WAITING and api.exclusive_publication_is_connected(st.publication):
        st.state = STREAM_OPEN
        offer_pending(ps, st)
        if st.pending_frames:
            backlog_start(ps, st, now_ns)
        work = 1
    elif st.state == STREAM_OPEN and st.pending_frames:
        if offer_pending(ps, st):
            work = 1
            if st.pending_frames:   # it reads, only slower than we send: the clock restarts
                st.backlog_since_ns = now_ns if now_ns else 1
        if st.pending_frames == 0:
            backlog_end(ps, st)
        elif now_ns >= st.backlog_since_ns and now_ns - st.backlog_since_ns >= ps.slow_consumer_timeout_ns:
            disconnect_slow(ps, st)
            return 1
    if not st.expired and st.state != STREAM_OPEN and now_ns >= st.connect_deadline_ns:
        drop_pending(ps, st, &ps.counters.dropped_unconnected)
        st.expired = True
        if st.state == STREAM_WAITING:
            st.state = STREAM_OPEN
        work = 1
    if st.closing and st.adding == NULL and (now_ns >= st.close_deadline_ns or (st.state == STREAM_OPEN and sent_everything(ps, st))):
        release(ps, st)
        return 1
    if not needs_housekeeping(st):
        ps.busy -= 1
    return work


cdef int private_streams_poll(private_streams_t* ps, uint64_t now_ns) noexcept nogil:
    cdef int work = 0
    cdef uint32_t i
    if ps.busy == 0 or (now_ns < ps.next_housekeeping_ns and ps.backlogged == 0):
        return 0
    ps.next_housekeeping_ns = now_ns + HOUSEKEEPING_INTERVAL_NS
    for i in range(ps.capacity):
        if ps.slots[i].state != STREAM_FREE and needs_housekeeping(&ps.slots[i]):
            work += housekeep(ps, &ps.slots[i], now_ns)
    return work


cdef bint private_streams_pending(const private_streams_t* ps) noexcept nogil:
    """Some publication still holds frames it could send (once its subscriber connects or reads)."""
    cdef uint32_t i
    for i in range(ps.capacity):
        if ps.slots[i].pending_frames:
            return True
    return False


cdef void private_streams_close_all(private_streams_t* ps) noexcept nogil:
    cdef uint32_t i
    for i in range(ps.capacity):
        if ps.slots[i].state != STREAM_FREE:
            release(ps, &ps.slots[i])
    ps.slow_head = ps.slow_count = 0


STATES = {STREAM_ADDING: "adding", STREAM_WAITING: "waiting", STREAM_OPEN: "open", STREAM_SLOW: "slow"}


cdef class PrivateStreams:
    """The table of private publications of one engine (its Aeron client's), at most `max_publications`."""

    def __cinit__(self):
        self.state.slots = NULL
        self.state.index = NULL
        self.state.slow = NULL

    def __init__(self, Client client not None, uint32_t max_publications, size_t buffer_bytes=1 << 20,
                 double connect_timeout=5.0, double linger=1.0, double slow_consumer_timeout=2.0,
                 uint32_t term_length=0):
        """`buffer_bytes`: what a transport may hold while it connects or is back-pressured;
        `term_length`: of each publication whose channel names none (0: the driver's default);
        `slow_consumer_timeout`: how long (s) it may stay back-pressured before it is disconnected."""
        cdef uint32_t index_size = 16
        cdef uint32_t i
        if max_publications < 1:
            raise ValueError("max_publications must be at least 1")
        while index_size < 2 * max_publications:
            index_size *= 2
        self.client = client
        self.state.aeron = client.aeron
        self.state.capacity = max_publications
        self.state.slots = <private_stream_t*>calloc(max_publications, sizeof(private_stream_t))
        self.state.index = <int32_t*>malloc(index_size * sizeof(int32_t))
        self.state.slow = <uint32_t*>malloc(max_publications * sizeof(uint32_t))
        if self.state.slots == NULL or self.state.index == NULL or self.state.slow == NULL:
            raise MemoryError()
        for i in range(index_size):
            self.state.index[i] = -1
        self.state.index_mask = index_size - 1
        self.state.buffer_limit = buffer_bytes
        if term_length and (term_length < 65536 or term_length > 1 << 30 or term_length & (term_length - 1)):
            raise ValueError(f"term_length {term_length} must be a power of two in 64 KiB..1 GiB, or 0")
        self.state.term_length = term_length
        self.state.connect_timeout_ns = <uint64_t>(connect_timeout * 1e9)
        self.state.linger_ns = <uint64_t>(linger * 1e9)
        if slow_consumer_timeout <= 0:
            raise ValueError("slow_consumer_timeout must be > 0")
        self.state.slow_consumer_timeout_ns = <uint64_t>(slow_consumer_timeout * 1e9)

    @property
    def capacity(self):
        return self.state.capacity

    @property
    def term_length(self):
        return self.state.term_length

    @property
    def open_count(self):
        return self.state.count

    def negotiate(self, uint32_t transport, const uint8_t[::1] frame not None):
        """What the engine loop does with a Negotiate frame that arrived on `transport`."""
        if frame.shape[0]:
            private_streams_on_negotiate(&self.state, transport, &frame[0], frame.shape[0], api.nano_clock())

    def send(self, uint32_t transport, const uint8_t[::1] frame not None):
        """Route one frame to `transport`'s publication (offer, or buffer until it connects)."""
        cdef uint16_t template_id = 0
        if frame.shape[0] == 0:
            raise ValueError("empty frame")
        if frame.shape[0] >= HEADER_LENGTH:
            template_id = u16le(&frame[0] + messageHeader_templateId_OFFSET)
        with nogil:
            private_streams_send(&self.state, transport, &frame[0], <uint32_t>frame.shape[0], template_id,
                                 api.nano_clock())

    def transport_lost(self, uint32_t transport):
        private_streams_transport_lost(&self.state, transport, api.nano_clock())

    def poll(self):
        """One housekeeping pass (adds, connects, back-pressure retries, timeouts, closes); returns the
        work done."""
        cdef int work
        self.state.next_housekeeping_ns = 0
        with nogil:
            work = private_streams_poll(&self.state, api.nano_clock())
        return work

    def slow_consumers(self):
        """Take the transports disconnected as slow consumers since the last call (what the engine loop
        writes TransportLost records for), oldest first; each stays 'slow' until transport_lost()."""
        cdef uint32_t transport
        out = []
        while private_streams_next_slow(&self.state, &transport):
            out.append(transport)
        return out

    def publications(self):
        """{transport: (state, channel, stream id, closing, frames buffered)} of the slots in use."""
        cdef private_stream_t* st
        out = {}
        for i in range(self.state.capacity):
            st = &self.state.slots[i]
            if st.state != STREAM_FREE:
                out[st.transport] = (STATES[st.state], st.channel[:st.channel_length].decode("ascii", "replace"),
                                     st.stream_id, bool(st.closing), st.pending_frames)
        return out

    def publication_term_length(self, uint32_t transport):
        """The term length of `transport`'s publication as the driver made it (0: no publication yet)."""
        cdef aeron_publication_constants_t constants
        cdef int32_t slot = find_slot(&self.state, transport)
        if slot < 0 or self.state.slots[slot].publication == NULL:
            return 0
        if api.exclusive_publication_constants(self.state.slots[slot].publication, &constants) != 0:
            return 0
        return constants.term_buffer_length

    def counters(self):
        cdef private_counters_t* c = &self.state.counters
        return {"frames": c.frames, "bytes": c.bytes, "back_pressure_events": c.back_pressure_events,
                "dropped_unconnected": c.dropped_unconnected,
                "slow_consumers_disconnected": c.slow_consumers_disconnected,
                "dropped_slow_consumer": c.dropped_slow_consumer, "unrouted": c.unrouted, "no_route": c.no_route,
                "unsent": c.unsent, "errors": c.errors, "opened": c.opened, "closed": c.closed,
                "add_failures": c.add_failures, "limit_refused": c.limit_refused,
                "channel_refused": c.channel_refused, "open": self.state.count}

    def flush(self, double timeout):
        """Wait (up to `timeout` s) until the driver has sent everything offered to open publications."""
        import time
        cdef private_stream_t* st
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            waiting = False
            for i in range(self.state.capacity):
                st = &self.state.slots[i]
                if st.state == STREAM_OPEN and st.publication != NULL and not driver_sent_all(&self.state, st):
                    waiting = waiting or st.sender_position_id >= 0
            if not waiting:
                return True
            time.sleep(0.001)
        return False

    def close(self):
        """Close every publication (the engine loop must not be running)."""
        if self.state.slots != NULL:
            private_streams_close_all(&self.state)

    def __dealloc__(self):
        if self.state.slots != NULL:
            if self.client is not None and not self.client.is_closed:
                private_streams_close_all(&self.state)
            free(self.state.slots)
        free(self.state.index)
        free(self.state.slow)
