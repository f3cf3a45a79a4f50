# The session layer of the core (included by core.pyx): who a transport is, FIXP-style logon, implicit
# inbound sequence numbers, throttling, heartbeats and keep-alive timeouts, retransmission from each
# session's ring, cancel-on-disconnect. Every decision reads only the record clock (the inbound record's
# timestamp), so a journal replays it exactly.

cdef enum:
    KEEPALIVE_MIN_MS = 100
    KEEPALIVE_MAX_MS = 60000
    NEGOTIATED_TIMEOUT_NS = 10000000000     # a session negotiated but never established is dropped after
    REJECTS_PER_SECOND = 100                # answers to transports with no established session
    RESPONSE_CHANNEL_MAX = 512

cdef extern from *:
    """
    #define LOB_NS_PER_S 1000000000LL
    """
    const int64_t NS_PER_S "LOB_NS_PER_S"


# ---------------------------------------------------------------------------------------------------
# Token buckets (tokens are messages x 1e9, so a rate needs no division)

cdef inline bint bucket_take(int64_t* tokens, uint64_t* at, int64_t rate, int64_t burst, uint64_t now) noexcept nogil:
    cdef int64_t cap = burst * NS_PER_S
    cdef uint64_t elapsed = now - at[0] if now > at[0] else 0
    at[0] = now if now > at[0] else at[0]
    if elapsed >= <uint64_t>(cap // rate + 1):
        tokens[0] = cap
    else:
        tokens[0] += <int64_t>elapsed * rate
        if tokens[0] > cap:
            tokens[0] = cap
    if tokens[0] < NS_PER_S:
        return False
    tokens[0] -= NS_PER_S
    return True


# ---------------------------------------------------------------------------------------------------
# Transports: bound Aeron session id -> session slot (open addressing, backward-shift delete)

cdef inline uint32_t transport_home(const EngineCore* core, uint32_t transport) noexcept nogil:
    return (transport * 0x9E3779B1U) & core.transport_mask


cdef inline uint32_t transport_find(EngineCore* core, uint32_t transport) noexcept nogil:
    if transport == core.last_transport:
        return core.last_slot
    if transport == 0:
        return 0
    cdef uint32_t i = transport_home(core, transport)
    while core.transport_keys[i] != 0 and core.transport_keys[i] != transport:
        i = (i + 1) & core.transport_mask
    core.last_transport = transport
    core.last_slot = core.transport_values[i]
    return core.last_slot


cdef void transport_bind(EngineCore* core, uint32_t transport, uint32_t slot) noexcept nogil:
    cdef uint32_t i = transport_home(core, transport)
    core.last_transport = 0
    core.last_slot = 0
    while core.transport_keys[i] != 0 and core.transport_keys[i] != transport:
        i = (i + 1) & core.transport_mask
    core.transport_keys[i] = transport
    core.transport_values[i] = slot
    core.sessions[slot].transport = transport


cdef void transport_unbind(EngineCore* core, uint32_t transport) noexcept nogil:
    cdef uint32_t mask = core.transport_mask, i = transport_home(core, transport), j, home
    core.last_transport = 0
    core.last_slot = 0
    while core.transport_keys[i] != transport:
        if core.transport_keys[i] == 0:
            return
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        if core.transport_keys[j] == 0:
            break
        home = transport_home(core, core.transport_keys[j])
        if (i <= j and (home <= i or home > j)) or (i > j and home <= i and home > j):
            core.transport_keys[i] = core.transport_keys[j]
            core.transport_values[i] = core.transport_values[j]
            i = j
    core.transport_keys[i] = 0
    core.transport_values[i] = 0


cdef uint32_t session_slot(const EngineCore* core, uint32_t session_id) noexcept nogil:
    cdef uint32_t slot
    for slot in range(1, core.session_count + 1):
        if core.sessions[slot].id == session_id:
            return slot
    return 0


# ---------------------------------------------------------------------------------------------------
# Retransmission rings

cdef int ring_reserve(EngineCore* core, Ring* ring) noexcept nogil:
    if ring.data != NULL:
        return 0
    cdef uint64_t capacity = 4096, slots = 64
    while capacity < core.ring_bytes:
        capacity *= 2
    while slots < capacity // 32:
        slots *= 2
    ring.data = <uint8_t*>region_map_small_pages(capacity)
    ring.offsets = <uint64_t*>region_map(slots * sizeof(uint64_t))
    if ring.data == NULL or ring.offsets == NULL:
        region_unmap(ring.data, capacity)
        region_unmap(ring.offsets, slots * sizeof(uint64_t))
        ring.data = NULL
        ring.offsets = NULL
        return -1
    ring.capacity = capacity
    ring.slots = <uint32_t>slots
    return 0


cdef void ring_free(Ring* ring) noexcept nogil:
    if ring.data != NULL:
        region_unmap(ring.data, ring.capacity)
        region_unmap(ring.offsets, <size_t>ring.slots * sizeof(uint64_t))
    ring.data = NULL
    ring.offsets = NULL


# `frame` is an application message whose seqNum follows the ring's last; one that does not (a frame
# lost to an allocation failure) starts the ring afresh.
cdef inline void ring_append(Ring* ring, const uint8_t* frame, uint32_t length) noexcept nogil:
    if ring.data == NULL:
        return
    cdef uint64_t seq = load_u64le(frame + HEADER_LENGTH)
    cdef uint64_t mask = ring.capacity - 1, pos = ring.head, end
    if (pos & mask) + 4 + length > ring.capacity:
        pos += ring.capacity - (pos & mask)
    end = pos + 4 + length
    if seq != ring.next_seq or ring.first_seq == ring.next_seq:
        ring.first_seq = seq
        ring.first_pos = pos
    else:
        while end - ring.first_pos > ring.capacity or seq - ring.first_seq >= ring.slots:
            ring.first_seq += 1
            if ring.first_seq == seq:
                ring.first_pos = pos
                break
            ring.first_pos = ring.offsets[ring.first_seq & (ring.slots - 1)]
    store_u32le(ring.data + (pos & mask), length)
    memcpy(ring.data + (pos & mask) + 4, frame, length)
    ring.offsets[seq & (ring.slots - 1)] = pos
    ring.next_seq = seq + 1
    ring.head = end


cdef void ring_restore(Ring* ring, const uint8_t* frame, uint32_t length) noexcept nogil:
    ring_append(ring, frame, length)


cdef const uint8_t* ring_frame(const Ring* ring, uint64_t seq, uint32_t* length) noexcept nogil:
    if ring.data == NULL or seq < ring.first_seq or seq >= ring.next_seq:
        return NULL
    cdef const uint8_t* p = ring.data + (ring.offsets[seq & (ring.slots - 1)] & (ring.capacity - 1))
    length[0] = load_u32le(p)
    return p + 4


# ---------------------------------------------------------------------------------------------------
# Session frames

cdef void negotiation_answer(EngineCore* core, uint32_t session_id, uint32_t transport, uint64_t request_ts,
                             uint8_t reason) noexcept nogil:
    cdef uint8_t* b
    if reason == Reason_None:
        b = session_claim(core, session_id, transport, NegotiationResponse_BLOCK_LENGTH,
                          NegotiationResponse_TEMPLATE_ID)
        NegotiationResponse_set_sessionId(b, session_id)
        NegotiationResponse_set_requestTimestamp(b, request_ts)
    else:
        b = session_claim(core, 0, transport, NegotiationReject_BLOCK_LENGTH, NegotiationReject_TEMPLATE_ID)
        NegotiationReject_set_sessionId(b, session_id)
        NegotiationReject_set_requestTimestamp(b, request_ts)
        NegotiationReject_set_reason(b, reason)


cdef void establishment_reject(EngineCore* core, uint32_t session_id, uint32_t transport, uint64_t request_ts,
                               uint8_t reason) noexcept nogil:
    cdef uint8_t* b = session_claim(core, 0, transport, EstablishmentReject_BLOCK_LENGTH,
                                    EstablishmentReject_TEMPLATE_ID)
    EstablishmentReject_set_sessionId(b, session_id)
    EstablishmentReject_set_requestTimestamp(b, request_ts)
    EstablishmentReject_set_reason(b, reason)


cdef void not_applied(EngineCore* core, Session* s, uint64_t from_seq, uint64_t count) noexcept nogil:
    cdef uint8_t* b = session_claim(core, s.id, s.transport, NotApplied_BLOCK_LENGTH, NotApplied_TEMPLATE_ID)
    NotApplied_set_fromSeqNo(b, from_seq)
    NotApplied_set_count(b, <uint32_t>(count if count < 0xFFFFFFFFULL else 0xFFFFFFFFULL))
    core.session_counters.gaps += 1


cdef void sequence_write(EngineCore* core, Session* s) noexcept nogil:
    cdef uint8_t* b = session_claim(core, s.id, s.transport, Sequence_BLOCK_LENGTH, Sequence_TEMPLATE_ID)
    Sequence_set_nextSeqNo(b, s.next_out_seq)
    s.last_out_ns = core.last_transact_time


cdef void terminate_write(EngineCore* core, Session* s, uint8_t reason) noexcept nogil:
    cdef uint8_t* b = session_claim(core, s.id, s.transport, Terminate_BLOCK_LENGTH, Terminate_TEMPLATE_ID)
    Terminate_set_sessionId(b, s.id)
    Terminate_set_reason(b, reason)


# Answer to a transport with no established session: rate limited, never sequenced.
cdef void unestablished_reject(EngineCore* core, uint32_t transport, uint32_t template_id, uint32_t length,
                               uint8_t reason) noexcept nogil:
    core.session_counters.unauthenticated += 1
    if bucket_take(&core.reject_tokens, &core.reject_tokens_ns, REJECTS_PER_SECOND, REJECTS_PER_SECOND,
                   core.last_transact_time):
        message_reject_write(core, 0, transport, 0, 0, template_id, length, reason)


# ---------------------------------------------------------------------------------------------------
# Session lifecycle

cdef inline bint request_fresh(const EngineCore* core, uint64_t request_ts) noexcept nogil:
    cdef uint64_t now = core.last_transact_time
    return (request_ts <= now + core.request_window_ns) and (request_ts + core.request_window_ns >= now)


cdef inline bint nonce_seen(const Session* s, uint64_t nonce) noexcept nogil:
    cdef uint32_t i
    for i in range(NONCE_SLOTS):
        if s.nonces[i] == nonce:
            return True
    return False


cdef inline bint key_is(const uint8_t* p, uint32_t n, const char* key) noexcept nogil:
    return n == strlen(key) and memcmp(p, key, n) == 0


# A decimal value in lo..hi (and a power of two when asked).
cdef bint number_in(const uint8_t* p, uint32_t n, uint64_t lo, uint64_t hi, bint power_of_two) noexcept nogil:
    cdef uint64_t v = 0
    cdef uint32_t i
    if n == 0 or n > 10:
        return False
    for i in range(n):
        if p[i] < 48 or p[i] > 57:
            return False
        v = v * 10 + (p[i] - 48)
    return lo <= v <= hi and (not power_of_two or (v & (v - 1)) == 0)


# The channel the engine will publish a session's stream to: "aeron:ipc", or "aeron:udp?" with an endpoint
# and nothing but interface, mtu (<= 8192) and term-length (64 KiB .. 4 MiB): a client must not be able to
# make the engine allocate large logs or take another publication's session id.
cdef bint response_channel_ok(const uint8_t* p, uint32_t n) noexcept nogil:
    cdef uint32_t i, start, eq, end
    cdef bint endpoint = False
    if n == 9 and memcmp(p, b"aeron:ipc", 9) == 0:
        return True
    if n <= 10 or n > RESPONSE_CHANNEL_MAX or memcmp(p, b"aeron:udp?", 10) != 0:
        return False
    start = 10
    while start < n:
        end = start
        eq = 0
        while end < n and p[end] != 124:            # '|'
            if p[end] < 33 or p[end] > 126:
                return False
            if p[end] == 61 and eq == 0:            # '='
                eq = end
            end += 1
        if eq == 0 or eq + 1 >= end:
            return False
        if key_is(p + start, eq - start, "endpoint"):
            if endpoint:
                return False
            endpoint = True
        elif key_is(p + start, eq - start, "mtu"):
            if not number_in(p + eq + 1, end - eq - 1, 32, 8192, False):
                return False
        elif key_is(p + start, eq - start, "term-length"):
            if not number_in(p + eq + 1, end - eq - 1, 65536, 4194304, True):
                return False
        elif not key_is(p + start, eq - start, "interface"):
            return False
        start = end + 1
    return endpoint and p[n - 1] != 124


# Unbinds the session; with cancel-on-disconnect its orders are canceled (reports kept in its ring only).
cdef void session_end(EngineCore* core, uint32_t slot, uint8_t reason) noexcept nogil:
    cdef Session* s = &core.sessions[slot]
    cdef uint32_t i, count = 0
    if s.transport != 0:
        transport_unbind(core, s.transport)
        s.transport = 0
    s.state = SESSION_IDLE
    if s.cancel_on_disconnect:
        for i in range(core.instrument_count):
            count += mass_cancel_instrument(core, i, slot, Reason_CancelOnDisconnect, SideFilter_Both)
        core.session_counters.canceled_on_disconnect += count


cdef void on_negotiate(EngineCore* core, const uint8_t* frame, uint32_t length, uint32_t block_length,
                       uint32_t transport) noexcept nogil:
    cdef const uint8_t* b = frame + HEADER_LENGTH
    cdef uint32_t session_id = Negotiate_sessionId(b)
    cdef uint64_t request_ts = Negotiate_requestTimestamp(b)
    cdef uint64_t nonce = Negotiate_nonce(b)
    cdef const uint8_t* var = b + block_length
    cdef uint32_t channel_length
    cdef uint32_t slot = session_slot(core, session_id)
    cdef uint32_t bound = transport_find(core, transport)
    cdef Session* s = &core.sessions[slot]
    cdef uint8_t reason = Reason_None
    if <size_t>HEADER_LENGTH + block_length + Negotiate_responseChannel_HEADER_LENGTH > length:
        unestablished_reject(core, transport, Negotiate_TEMPLATE_ID, length, Reason_MalformedFrame)
        return
    channel_length = Negotiate_responseChannel_length(var)
    if <size_t>HEADER_LENGTH + block_length + Negotiate_responseChannel_HEADER_LENGTH + channel_length > length:
        unestablished_reject(core, transport, Negotiate_TEMPLATE_ID, length, Reason_MalformedFrame)
        return
    if slot == 0:
        reason = Reason_UnknownSession
    elif not response_channel_ok(var + Negotiate_responseChannel_HEADER_LENGTH, channel_length):
        reason = Reason_InvalidResponseChannel
    elif core.verify == NULL or not core.verify(core.verify_ctx, slot, frame, length):
        reason = Reason_InvalidSignature
    elif not request_fresh(core, request_ts):
        reason = Reason_StaleRequest
    elif request_ts <= s.last_request_ns or nonce_seen(s, nonce):
        reason = Reason_NonceReused
    elif (transport == 0 or (s.transport != 0 and s.transport != transport) or (bound != 0 and bound != slot)
          or s.state == SESSION_ESTABLISHED):
        reason = Reason_SessionInUse
        core.session_counters.claims_rejected += 1
    if reason != Reason_None:
        if reason != Reason_SessionInUse and reason != Reason_InvalidResponseChannel:
            core.session_counters.auth_failures += 1
        negotiation_answer(core, session_id, transport, request_ts, reason)
        return
    s.nonces[s.nonce_next] = nonce
    s.nonce_next = (s.nonce_next + 1) % NONCE_SLOTS
    s.last_request_ns = request_ts
    if s.transport == 0:
        transport_bind(core, transport, slot)
    s.state = SESSION_NEGOTIATED
    s.last_in_ns = core.last_transact_time
    negotiation_answer(core, session_id, transport, request_ts, Reason_None)


cdef void on_establish(EngineCore* core, const uint8_t* frame, uint32_t length, uint32_t transport) noexcept nogil:
    cdef const uint8_t* b = frame + HEADER_LENGTH
    cdef uint32_t session_id = Establish_sessionId(b)
    cdef uint64_t request_ts = Establish_requestTimestamp(b)
    cdef uint32_t keepalive = Establish_keepAliveIntervalMs(b)
    cdef uint64_t next_seq = Establish_nextSeqNo(b)
    cdef uint32_t slot = transport_find(core, transport)
    cdef Session* s = &core.sessions[slot]
    cdef uint8_t reason = Reason_None
    cdef uint64_t expected
    cdef uint8_t* a
    if slot == 0:
        reason = Reason_NotNegotiated
    elif s.id != session_id:
        reason = Reason_UnknownSession
    elif s.state == SESSION_ESTABLISHED:
        reason = Reason_SessionInUse
    elif core.verify == NULL or not core.verify(core.verify_ctx, slot, frame, length):
        reason = Reason_InvalidSignature
    elif not request_fresh(core, request_ts):
        reason = Reason_StaleRequest
    elif request_ts <= s.last_request_ns:
        reason = Reason_NonceReused
    elif keepalive < KEEPALIVE_MIN_MS or keepalive > KEEPALIVE_MAX_MS:
        reason = Reason_InvalidKeepAlive
    elif next_seq != 0 and next_seq < s.next_in_seq:
        reason = Reason_SequenceTooLow
    elif ring_reserve(core, &s.ring) != 0:
        reason = Reason_PoolFull
    if reason != Reason_None:
        if reason == Reason_InvalidSignature or reason == Reason_StaleRequest or reason == Reason_NonceReused:
            core.session_counters.auth_failures += 1
        establishment_reject(core, session_id, transport, request_ts, reason)
        return
    expected = s.next_in_seq
    if next_seq != 0:
        s.next_in_seq = next_seq
    s.state = SESSION_ESTABLISHED
    s.keepalive_ms = keepalive
    s.last_request_ns = request_ts
    s.last_in_ns = core.last_transact_time
    s.last_out_ns = core.last_transact_time
    core.session_counters.established += 1
    a = session_claim(core, s.id, transport, EstablishmentAck_BLOCK_LENGTH, EstablishmentAck_TEMPLATE_ID)
    EstablishmentAck_set_sessionId(a, s.id)
    EstablishmentAck_set_requestTimestamp(a, request_ts)
    EstablishmentAck_set_keepAliveIntervalMs(a, keepalive)
    EstablishmentAck_set_nextSeqNo(a, s.next_out_seq)
    EstablishmentAck_set_nextRecvSeqNo(a, s.next_in_seq)
    if s.next_in_seq > expected:
        not_applied(core, s, expected, s.next_in_seq - expected)


# The established session of `transport`, or 0 after answering NotEstablished.
cdef inline uint32_t established_slot(EngineCore* core, uint32_t transport, uint32_t template_id,
                                      uint32_t length) noexcept nogil:
    cdef uint32_t slot = transport_find(core, transport)
    if slot == 0 or core.sessions[slot].state != SESSION_ESTABLISHED:
        unestablished_reject(core, transport, template_id, length, Reason_NotEstablished)
        return 0
    core.sessions[slot].last_in_ns = core.last_transact_time
    return slot


cdef void on_sequence(EngineCore* core, const uint8_t* b, uint32_t length, uint32_t transport) noexcept nogil:
    cdef uint32_t slot = established_slot(core, transport, Sequence_TEMPLATE_ID, length)
    if slot == 0:
        return
    cdef Session* s = &core.sessions[slot]
    cdef uint64_t next_seq = Sequence_nextSeqNo(b)
    if next_seq > s.next_in_seq:
        not_applied(core, s, s.next_in_seq, next_seq - s.next_in_seq)
        s.next_in_seq = next_seq
    elif next_seq < s.next_in_seq:
        message_reject_write(core, slot, 0, 0, 0, Sequence_TEMPLATE_ID, length, Reason_SequenceTooLow)


cdef void on_retransmit_request(EngineCore* core, const uint8_t* b, uint32_t length,
                                uint32_t transport) noexcept nogil:
    cdef uint32_t slot = established_slot(core, transport, RetransmitRequest_TEMPLATE_ID, length)
    if slot == 0:
        return
    cdef Session* s = &core.sessions[slot]
    cdef uint64_t from_seq = RetransmitRequest_fromSeqNo(b)
    cdef uint32_t count = RetransmitRequest_count(b)
    cdef uint8_t reason = Reason_None
    cdef uint64_t seq
    cdef uint32_t frame_length
    cdef const uint8_t* frame
    cdef uint8_t* p
    exec_retain_pending(core)
    if RetransmitRequest_sessionId(b) != s.id:
        reason = Reason_UnknownSession
    elif count == 0 or count > core.max_retransmit:
        reason = Reason_RetransmitTooLarge
    elif from_seq < s.ring.first_seq or from_seq + count > s.ring.next_seq or s.ring.next_seq != s.next_out_seq:
        reason = Reason_RetransmitOutOfRange
    if reason != Reason_None:
        message_reject_write(core, slot, 0, 0, 0, RetransmitRequest_TEMPLATE_ID, length, reason)
        return
    p = session_claim(core, s.id, s.transport, Retransmission_BLOCK_LENGTH, Retransmission_TEMPLATE_ID)
    Retransmission_set_sessionId(p, s.id)
    Retransmission_set_requestTimestamp(p, RetransmitRequest_requestTimestamp(b))
    Retransmission_set_fromSeqNo(p, from_seq)
    Retransmission_set_count(p, count)
    for seq in range(from_seq, from_seq + count):
        frame = ring_frame(&s.ring, seq, &frame_length)
        p = exec_claim(core, s.id, s.transport, frame_length)
        if p != core.scratch:
            memcpy(p, frame, frame_length)
    core.session_counters.retransmitted += count
    s.last_out_ns = core.last_transact_time


cdef void on_terminate(EngineCore* core, const uint8_t* b, uint32_t length, uint32_t transport) noexcept nogil:
    cdef uint32_t slot = transport_find(core, transport)
    if slot == 0:
        unestablished_reject(core, transport, Terminate_TEMPLATE_ID, length, Reason_NotNegotiated)
        return
    cdef Session* s = &core.sessions[slot]
    if Terminate_sessionId(b) != s.id:
        if s.state == SESSION_ESTABLISHED:
            message_reject_write(core, slot, 0, 0, 0, Terminate_TEMPLATE_ID, length, Reason_UnknownSession)
        else:
            unestablished_reject(core, transport, Terminate_TEMPLATE_ID, length, Reason_UnknownSession)
        return
    terminate_write(core, s, Reason_Finished)
    session_end(core, slot, Reason_Finished)


cdef void on_tick(EngineCore* core) noexcept nogil:
    cdef uint64_t now = core.last_transact_time, keepalive_ns
    cdef uint32_t slot
    cdef Session* s
    for slot in range(1, core.session_count + 1):
        s = &core.sessions[slot]
        if s.state == SESSION_ESTABLISHED:
            keepalive_ns = <uint64_t>s.keepalive_ms * 1000000
            if now > s.last_in_ns + 3 * keepalive_ns:
                terminate_write(core, s, Reason_KeepAliveTimeout)
                core.session_counters.timeouts += 1
                session_end(core, slot, Reason_KeepAliveTimeout)
            elif now >= s.last_out_ns + keepalive_ns:
                sequence_write(core, s)
        elif s.state == SESSION_NEGOTIATED and now > s.last_in_ns + NEGOTIATED_TIMEOUT_NS:
            session_end(core, slot, Reason_KeepAliveTimeout)


cdef void on_transport_lost(EngineCore* core, uint32_t transport) noexcept nogil:
    cdef uint32_t slot = transport_find(core, transport)
    if slot != 0:
        session_end(core, slot, Reason_TransportLost)


cdef void on_engine_start(EngineCore* core) noexcept nogil:
    cdef uint32_t slot
    for slot in range(1, core.session_count + 1):
        if core.sessions[slot].transport != 0 or core.sessions[slot].state != SESSION_IDLE:
            session_end(core, slot, Reason_EngineRestart)


# Session and engine-record frames, already checked to be well framed (block length included).
cdef void session_on_frame(EngineCore* core, const uint8_t* frame, uint32_t length, uint16_t template_id,
                           uint32_t block_length, uint32_t transport) noexcept nogil:
    cdef const uint8_t* b = frame + HEADER_LENGTH
    if template_id >= EngineTick_TEMPLATE_ID:
        if transport != 0:     # engine records come from the engine only
            unestablished_reject(core, transport, template_id, length, Reason_UnknownTemplate)
        elif template_id == EngineTick_TEMPLATE_ID:
            expiry_on_tick(core)
            on_tick(core)
        elif template_id == TransportLost_TEMPLATE_ID:
            on_transport_lost(core, TransportLost_transport(b))
        else:
            on_engine_start(core)
    elif template_id == Negotiate_TEMPLATE_ID:
        on_negotiate(core, frame, length, block_length, transport)
    elif template_id == Establish_TEMPLATE_ID:
        on_establish(core, frame, length, transport)
    elif template_id == Sequence_TEMPLATE_ID:
        on_sequence(core, b, length, transport)
    elif template_id == RetransmitRequest_TEMPLATE_ID:
        on_retransmit_request(core, b, length, transport)
    else:
        on_terminate(core, b, length, transport)
