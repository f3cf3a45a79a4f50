"""The Python boundary of the matching core: batches of inbound-framed records in, routed frames out.

Inbound framing (also the journal record body), little-endian:
    u32 length | u32 transport | u64 timestamp_ns | SBE frame[length]
Execution output (routed framing):
    u32 length | u32 session id | u32 transport | SBE frame[length]
Market data (outbound framing):
    u32 length | SBE frame[length]

`transport` is the Aeron session id of the client's publication: routing only. Identity comes from the
session's Negotiate/Establish, signed with its secret (lob.credentials).
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.object cimport PyObject
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t, uintptr_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy
from posix.mman cimport MADV_HUGEPAGE, madvise

from lob.core cimport (MATCH_PRO_RATA, AccountEntry, AccountLimits, CORE_OK, DEFAULT_MAX_ACCOUNTS, INBOUND_RECORD_HEADER_LENGTH,
                       INT64_NULL, BookSide, EngineCore, Instrument, risk_init,
                       IdEntry, Level, OrderCursor, OutBuf, Order, Session, SessionConfig, SnapshotCursor, Touch, book_snapshot_levels,
                       order_snapshot_orders, order_snapshot_part, order_snapshot_part_length, order_snapshot_start,
                       book_snapshot_part, book_snapshot_part_length, book_snapshot_start,
                       engine_close, engine_init, engine_on_records, engine_prefault, ids_find, instrument_index,
                       load_u32le, outbuf_lend, outbuf_unlend, ring_frame, session_slot, side_best, side_worse)

cdef extern from "Python.h":
    PyObject* new_bytes "PyBytes_FromStringAndSize"(const char* data, Py_ssize_t length)
    int bytes_resize "_PyBytes_Resize"(PyObject** bytes, Py_ssize_t length)
    void decref "Py_DECREF"(PyObject* o)

from lob.sbe cimport messages as sbe
from lob.sbe import messages

from array import array

from lob.accounts import AccountRules
from lob.instruments import ALGORITHMS, STATES, specs_of

import sys
if sys.byteorder != "little":
    raise ImportError("lob's core reads and writes SBE's little-endian fields natively: this host is big-endian")

_SIDES = {v: k for k, v in messages.ENUMS["Side"].items()}
_ORD_TYPES = {v: k for k, v in messages.ENUMS["OrdType"].items()}
_TIME_IN_FORCE = {v: k for k, v in messages.ENUMS["TimeInForce"].items()}
_SIDE_INDEX = {"Buy": 0, "Sell": 1, sbe.Side_Buy: 0, sbe.Side_Sell: 1}
_MAX_GROUP = 65535

# lob/market_data.pxi writes the four order-level messages through OrderAdd's field offsets.
if not ((sbe.OrderAdd_seqNum_OFFSET, sbe.OrderAdd_transactTime_OFFSET, sbe.OrderAdd_instrumentId_OFFSET,
         sbe.OrderAdd_orderId_OFFSET, sbe.OrderAdd_side_OFFSET, sbe.OrderAdd_price_OFFSET)
        == (sbe.OrderModify_seqNum_OFFSET, sbe.OrderModify_transactTime_OFFSET, sbe.OrderModify_instrumentId_OFFSET,
            sbe.OrderModify_orderId_OFFSET, sbe.OrderModify_side_OFFSET, sbe.OrderModify_price_OFFSET)
        == (sbe.OrderDelete_seqNum_OFFSET, sbe.OrderDelete_transactTime_OFFSET, sbe.OrderDelete_instrumentId_OFFSET,
            sbe.OrderDelete_orderId_OFFSET, sbe.OrderDelete_side_OFFSET, sbe.OrderDelete_price_OFFSET)
        == (sbe.OrderExecute_seqNum_OFFSET, sbe.OrderExecute_transactTime_OFFSET, sbe.OrderExecute_instrumentId_OFFSET,
            sbe.OrderExecute_orderId_OFFSET, sbe.OrderExecute_side_OFFSET, sbe.OrderExecute_price_OFFSET)
        and sbe.OrderAdd_quantity_OFFSET == sbe.OrderModify_quantity_OFFSET):
    raise ImportError("schema: OrderModify, OrderDelete and OrderExecute must begin with OrderAdd's fields")

cdef enum:
    HUGE_PAGE = 1 << 21
    HUGE_ADVICE_MIN = 1 << 23
    # A batch's execution stream is first given room for this many bytes per inbound byte (an order's
    # acknowledgement is about twice its size; fills add more); pages of it never written cost nothing.
    OUTPUT_GUESS_FACTOR = 4
    OUTPUT_GUESS_MIN = 1 << 12


cdef size_t check_framing(const uint8_t* p, size_t n) except? 0:
    """Number of whole records; raises if the buffer does not end on a record boundary."""
    cdef size_t offset = 0, count = 0
    cdef uint32_t length
    while offset < n:
        if n - offset < INBOUND_RECORD_HEADER_LENGTH:
            raise ValueError(f"truncated record header at offset {offset}")
        length = load_u32le(p + offset)
        if length > n - offset - INBOUND_RECORD_HEADER_LENGTH:
            raise ValueError(f"record at offset {offset} claims {length} bytes, "
                             f"{n - offset - INBOUND_RECORD_HEADER_LENGTH} remain")
        offset += INBOUND_RECORD_HEADER_LENGTH + length
        count += 1
    return count


cdef void advise_huge(uint8_t* p, size_t length) noexcept nogil:
    """Ask for huge pages for a large buffer before it is first written: faulting in hundreds of
    megabytes 4 KiB at a time costs more than writing them."""
    cdef uintptr_t start, end
    if length >= HUGE_ADVICE_MIN:
        start = (<uintptr_t>p + HUGE_PAGE - 1) & ~(<uintptr_t>HUGE_PAGE - 1)
        end = (<uintptr_t>p + length) & ~(<uintptr_t>HUGE_PAGE - 1)
        if end > start:
            madvise(<void*>start, end - start, MADV_HUGEPAGE)


cdef bytes copy_out(const uint8_t* data, size_t length):
    out = PyBytes_FromStringAndSize(NULL, length)
    cdef uint8_t* p = <uint8_t*>PyBytes_AS_STRING(out)
    advise_huge(p, length)
    memcpy(p, data, length)
    return out


cdef PyObject* lend_bytes(EngineCore* core, size_t guess, OutBuf* saved) except NULL:
    """A new bytes object with room for `guess` bytes, lent to the core as its execution output (the
    core's own buffer is kept in `saved`). End the loan with take_back_bytes."""
    cdef PyObject* out = new_bytes(NULL, guess)
    if out == NULL:
        raise MemoryError()
    cdef uint8_t* data = <uint8_t*>PyBytes_AS_STRING(<object>out)
    advise_huge(data, guess)
    outbuf_lend(&core.exec_out, saved, data, guess)
    return out


cdef object take_back_bytes(EngineCore* core, PyObject* out, OutBuf* saved):
    """End lend_bytes' loan and return the execution stream written meanwhile: the lent object shrunk to
    fit or, when the stream outgrew it and moved to the core's own buffer, a copy of that (emptied).
    Consumes the reference to `out`."""
    cdef size_t length = core.exec_out.length
    if outbuf_unlend(&core.exec_out, saved):
        if bytes_resize(&out, length) != 0:   # which has released `out` already
            raise MemoryError()
        result = <object>out
    else:
        result = copy_out(core.exec_out.data, length)
        core.exec_out.length = 0
    decref(out)
    return result


cdef object run_into_bytes(EngineCore* core, const uint8_t* records, size_t n):
    """Runs a well-framed batch and returns its execution stream. The stream is written straight into the
    bytes object returned, made with room for a guess and shrunk after; a stream that outgrows the guess
    moves to the core's own buffer and is copied out once."""
    cdef OutBuf saved
    cdef PyObject* out = lend_bytes(core, OUTPUT_GUESS_FACTOR * n + OUTPUT_GUESS_MIN, &saved)
    cdef size_t consumed = 0
    cdef int rc
    with nogil:
        rc = engine_on_records(core, records, n, &consumed, NULL, NULL)
    result = take_back_bytes(core, out, &saved)
    if rc != CORE_OK:
        core.md_out.length = 0
        raise MemoryError(f"an output buffer could not grow; stopped at the record at offset {consumed}")
    return result


_SESSION_STATES = {0: "idle", 1: "negotiated", 2: "established"}
_STATE_NAMES = {v: k for k, v in STATES.items()}


cdef configure_risk(EngineCore* core, dict specs, rules, uint32_t max_accounts):
    """Reference data into the instruments, account limits into a fresh account table."""
    cdef Instrument* instrument
    cdef AccountLimits default_limits
    cdef AccountLimits* limits = <AccountLimits*>calloc(len(rules.accounts) + 1, sizeof(AccountLimits))
    if limits == NULL:
        raise MemoryError()
    try:
        for i, account in enumerate(sorted(rules.accounts)):
            limits[i].account = account
            limits[i].max_open_orders = rules.accounts[account].max_open_orders
            limits[i].max_position = rules.accounts[account].max_position
        default_limits.account = 0
        default_limits.max_open_orders = rules.default.max_open_orders
        default_limits.max_position = rules.default.max_position
        if risk_init(core, max_accounts, limits, len(rules.accounts), default_limits) != CORE_OK:
            raise MemoryError(f"cannot allocate an account table for {max_accounts} accounts")
    finally:
        free(limits)
    for instrument_id, spec in specs.items():
        instrument = find_instrument(core, instrument_id)
        instrument.lot = spec.lot
        instrument.band_bp = spec.band_bp
        instrument.band_ticks = spec.band_ticks
        instrument.reference_price = INT64_NULL if spec.reference_price is None else spec.reference_price
        instrument.max_order_qty = spec.max_order_qty
        instrument.max_notional = spec.max_notional
        instrument.min_allocation = spec.min_allocation
        instrument.algorithm = ALGORITHMS[spec.algorithm]
        instrument.stp_default = messages.ENUMS["SelfTradePrevention"][spec.stp]
        instrument.state = STATES[spec.state]
        instrument.order_level = spec.order_level


cdef int verify_signature(void* ctx, uint32_t slot, const uint8_t* frame, uint32_t length) noexcept nogil:
    with gil:
        engine = <Engine>ctx
        try:
            return 1 if engine._verify(slot, frame[:length]) else 0
        except BaseException as exc:    # a frame the codec cannot read is not validly signed
            engine._verify_error = exc
            return 0


_STP_MODES = {"None": sbe.SelfTradePrevention_None, "CancelAggressor": sbe.SelfTradePrevention_CancelAggressor,
              "CancelResting": sbe.SelfTradePrevention_CancelResting,
              "CancelBoth": sbe.SelfTradePrevention_CancelBoth,
              "DecrementAndCancel": sbe.SelfTradePrevention_DecrementAndCancel}


cdef dict order_dict(const EngineCore* core, const Order* o):
    return {
        "order_id": o.order_id,
        "session": core.sessions[o.session].id,
        "cl_ord_id": o.cl_ord_id,
        "account": o.account,
        "instrument_id": o.instrument_id,
        "side": _SIDES.get(o.side, o.side),
        "ord_type": _ORD_TYPES.get(o.ord_type, o.ord_type),
        "time_in_force": _TIME_IN_FORCE.get(o.time_in_force, o.time_in_force),
        "post_only": bool(o.flags & (1 << sbe.OrderFlags_PostOnly_BIT)),
        "price": None if o.price == INT64_NULL else o.price,
        "order_qty": o.order_qty,
        "leaves_qty": o.leaves_qty,
        "cum_qty": o.cum_qty,
        **({"expire_time": o.expire_time} if o.expire_time else {}),
    }


cdef Instrument* find_instrument(EngineCore* core, instrument_id) except NULL:
    cdef int index = -1
    if isinstance(instrument_id, int) and 0 < instrument_id < 1 << 32:
        index = instrument_index(core, instrument_id)
    if index < 0:
        raise KeyError(instrument_id)
    return &core.instruments[index]


cdef class Engine:
    """A matching engine over many instruments.

    instruments: {instrument_id: tick_size}, default {1: 1}. max_orders: capacity of the order pool
    (resting orders of all instruments). market_data: generate BookUpdate/Trade frames.
    sessions: [lob.credentials.SessionCredentials], the trading sessions that may log on (none: every
    message is answered NotEstablished). ring_bytes: per session, the application messages kept for
    retransmission (the oldest are dropped first).
    An engine is driven from one thread at a time; process() releases the GIL while it runs (and takes it
    back only to check the signature of a Negotiate or Establish).
    """

    def __cinit__(self, instruments=None, max_orders=1 << 20, market_data=True, sessions=(), ring_bytes=1 << 22,
                  accounts=None, max_accounts=DEFAULT_MAX_ACCOUNTS, stp_defaults=None, matching=None):
        self.core = NULL
        credentials = list(sessions or ())
        if len({c.session_id for c in credentials}) != len(credentials):
            raise ValueError("session ids must be unique")
        if len(credentials) > 65535:
            raise ValueError("at most 65535 sessions")
        if not 4096 <= ring_bytes <= 1 << 34:
            raise ValueError("ring_bytes must be in 4096..2**34")
        self._credentials = credentials
        ticks = {1: 1} if instruments is None else {int(k): int(getattr(v, "tick", v)) for k, v in dict(instruments).items()}
        if not ticks or len(ticks) > 65535:
            raise ValueError("an engine needs between 1 and 65535 instruments")
        for instrument_id, tick in ticks.items():
            if not 0 < instrument_id < 1 << 32:
                raise ValueError(f"instrument id {instrument_id} is outside 1..2**32-1")
            if not 0 < tick < 1 << 62:
                raise ValueError(f"tick size {tick} of instrument {instrument_id} must be positive")
        if not 0 < max_orders < 1 << 31:
            raise ValueError("max_orders must be in 1..2**31-1")
        if not 0 < max_accounts < 1 << 31:
            raise ValueError("max_accounts must be in 1..2**31-1")
        # instrument id -> the self-trade prevention mode of its orders that name none (overrides the
        # instruments' reference data)
        stp_defaults = {int(k): v for k, v in dict(stp_defaults or {}).items()}
        for instrument_id, mode in stp_defaults.items():
            if instrument_id not in ticks or mode not in _STP_MODES:
                raise ValueError(f"bad STP default {mode!r} for instrument {instrument_id}")
        # instrument id -> "price-time" or ("pro-rata", minimum allocation)
        matching = {int(k): v for k, v in dict(matching or {}).items()}
        for instrument_id, how in matching.items():
            if instrument_id not in ticks or not (how == "price-time" or (
                    isinstance(how, tuple) and len(how) == 2 and how[0] == "pro-rata" and 0 <= how[1] < 1 << 62)):
                raise ValueError(f"bad matching {how!r} for instrument {instrument_id}")
        self._ticks = ticks
        self._specs = specs_of(instruments if instruments is not None else ticks)
        self._accounts = accounts if accounts is not None else AccountRules()
        self.max_orders = max_orders
        cdef uint32_t count = len(ticks)
        cdef uint32_t* ids = <uint32_t*>calloc(count, sizeof(uint32_t))
        cdef int64_t* tick_sizes = <int64_t*>calloc(count, sizeof(int64_t))
        cdef uint32_t session_count = len(credentials)
        cdef SessionConfig* configs = <SessionConfig*>calloc(session_count + 1, sizeof(SessionConfig))
        cdef uint32_t[::1] account_view
        account_lists = []      # alive until engine_init has copied them
        self.core = <EngineCore*>calloc(1, sizeof(EngineCore))
        try:
            if ids == NULL or tick_sizes == NULL or configs == NULL or self.core == NULL:
                raise MemoryError()
            for i, (instrument_id, tick) in enumerate(ticks.items()):
                ids[i] = instrument_id
                tick_sizes[i] = tick
            for i, c in enumerate(credentials):
                configs[i].id = c.session_id
                configs[i].rate = c.rate
                configs[i].burst = c.burst
                configs[i].cancel_on_disconnect = c.cancel_on_disconnect
                configs[i].admin = getattr(c, "admin", False)
                accounts = getattr(c, "accounts", None)
                if accounts:
                    account_lists.append(array("I", sorted(set(accounts))))
                    account_view = account_lists[-1]
                    configs[i].accounts = &account_view[0]
                    configs[i].account_count = len(account_lists[-1])
            if engine_init(self.core, ids, tick_sizes, count, max_orders, bool(market_data), configs, session_count,
                           ring_bytes) != CORE_OK:
                free(self.core)
                self.core = NULL
                raise MemoryError(f"cannot allocate an engine for {max_orders} orders")
            self.core.verify = verify_signature
            self.core.verify_ctx = <void*>self
            configure_risk(self.core, self._specs, self._accounts, max_accounts)
            for instrument_id, mode in stp_defaults.items():
                self.core.instruments[instrument_index(self.core, instrument_id)].stp_default = _STP_MODES[mode]
            for instrument_id, how in matching.items():
                if how != "price-time":
                    self.core.instruments[instrument_index(self.core, instrument_id)].algorithm = MATCH_PRO_RATA
                    self.core.instruments[instrument_index(self.core, instrument_id)].min_allocation = how[1]
        finally:
            free(ids)
            free(tick_sizes)
            free(configs)

    def __dealloc__(self):
        if self.core != NULL:
            engine_close(self.core)
            free(self.core)
            self.core = NULL

    def _verify(self, uint32_t slot, bytes frame):
        from lob import credentials as creds_module

        c = self._credentials[slot - 1]
        m = messages.decode(frame)
        if m["_name"] == "Negotiate":
            request = creds_module.negotiate_request(m["sessionId"], m["firm"], m["requestTimestamp"], m["nonce"],
                                                     m["responseChannel"], m["responseStreamId"])
            if m["firm"] != c.firm:
                return False
        else:
            request = creds_module.establish_request(m["sessionId"], m["requestTimestamp"],
                                                     m["keepAliveIntervalMs"], m["nextSeqNo"])
        return creds_module.verify(c.secret, request, bytes(m["signature"]))

    def session(self, session_id):
        """A trading session's state as a dict (no secret), or None for an unknown id."""
        cdef uint32_t slot = session_slot(self.core, session_id) if 0 < session_id < 1 << 32 else 0
        if slot == 0:
            return None
        cdef const Session* s = &self.core.sessions[slot]
        return {"session_id": s.id, "state": _SESSION_STATES[s.state], "transport": s.transport,
                "next_seq_no": s.next_out_seq, "next_recv_seq_no": s.next_in_seq,
                "keep_alive_ms": s.keepalive_ms, "retained": (s.ring.first_seq, s.ring.next_seq)}

    def retained(self, session_id, from_seq_no, count):
        """The application messages kept for retransmission from_seq_no.. (fewer when not all are kept)."""
        cdef uint32_t slot = session_slot(self.core, session_id) if 0 < session_id < 1 << 32 else 0
        if slot == 0:
            raise KeyError(session_id)
        cdef uint32_t length
        cdef const uint8_t* frame
        out = []
        for seq in range(from_seq_no, from_seq_no + count):
            frame = ring_frame(&self.core.sessions[slot].ring, seq, &length)
            if frame == NULL:
                break
            out.append(frame[:length])
        return out

    @property
    def session_counters(self):
        """Session-layer counters since start: established, claims rejected, auth failures, ..."""
        return dict(self.core.session_counters)

    @property
    def session_ids(self):
        return [c.session_id for c in self._credentials]

    def prefault(self):
        """Fault the order and level pools and the id table in now, sized for max_orders, leaving the
        engine's state as it is; returns the bytes they span. They are mapped lazily, so without this
        the first time a session reaches each new page costs a page fault (and a huge page's zeroing)
        on the message path. `lob engine` does it before it serves."""
        cdef size_t n
        with nogil:
            n = engine_prefault(self.core)
        return n

    def process(self, const uint8_t[::1] inbound not None):
        """Run every inbound-framed record of the buffer; return the execution stream (outbound framing)."""
        cdef size_t n = inbound.shape[0]
        if n == 0:
            return b""
        check_framing(&inbound[0], n)
        return run_into_bytes(self.core, &inbound[0], n)

    def process_timed(self, const uint8_t[::1] inbound not None, int64_t[::1] latencies not None):
        """Like process(), timing each record (CLOCK_MONOTONIC ns) into latencies[i].

        Outbound frames are dropped after each record, as a transport drains them once offered;
        returns the number of outbound bytes (both streams, outbound framing) they added up to.
        """
        cdef size_t n = inbound.shape[0]
        if n == 0:
            return 0
        cdef const uint8_t* p = &inbound[0]
        cdef size_t records = check_framing(p, n)
        if <size_t>latencies.shape[0] < records:
            raise ValueError(f"latencies holds {latencies.shape[0]} values, the batch has {records} records")
        cdef size_t consumed = 0, outbound = 0
        cdef int rc
        with nogil:
            rc = engine_on_records(self.core, p, n, &consumed, &latencies[0], &outbound)
        if rc != CORE_OK:
            raise MemoryError(f"an output buffer could not grow; stopped after the record at offset {consumed}")
        return outbound

    def take_market_data(self):
        """BookUpdate and Trade frames (outbound framing) produced since the last call."""
        out = copy_out(self.core.md_out.data, self.core.md_out.length)
        self.core.md_out.length = 0
        return out

    def order(self, session, cl_ord_id):
        """The live order (session, cl_ord_id) as a dict, or None."""
        if not (0 <= session < 1 << 32 and 0 <= cl_ord_id < 1 << 64):
            return None
        cdef uint32_t slot = session_slot(self.core, session)
        if slot == 0:
            return None
        slot = ids_find(self.core, slot, cl_ord_id)
        return order_dict(self.core, &self.core.pool.items[slot]) if slot else None

    def orders(self, instrument_id):
        """Resting orders of an instrument in priority order: bids best first, then asks best first."""
        cdef Instrument* instrument = find_instrument(self.core, instrument_id)
        cdef const BookSide* side
        cdef uint32_t side_index, level_slot, slot
        result = []
        for side_index in range(2):
            side = &instrument.sides[side_index]
            level_slot = side_best(side)
            while level_slot:
                slot = self.core.level_pool.items[level_slot].head
                while slot:
                    result.append(order_dict(self.core, &self.core.pool.items[slot]))
                    slot = self.core.pool.items[slot].next
                level_slot = side_worse(side, self.core.level_pool.items[level_slot].price)
        return result

    def stop_orders(self, instrument_id):
        """Untriggered stops of an instrument, each side the next to trigger first: buys, then sells."""
        cdef Instrument* instrument = find_instrument(self.core, instrument_id)
        cdef uint32_t side_index, i
        result = []
        for side_index in range(2):
            i = instrument.stops[side_index].count
            while i > 0:
                i -= 1
                o = order_dict(self.core, &self.core.pool.items[instrument.stops[side_index].slots[i]])
                o["stop_price"] = self.core.pool.items[instrument.stops[side_index].slots[i]].stop_price
                result.append(o)
        return result

    def levels(self, instrument_id, side):
        """[(price, quantity, order_count)] of one side ("Buy"/"Sell" or 1/2), best first."""
        cdef Instrument* instrument = find_instrument(self.core, instrument_id)
        cdef const BookSide* book_side = &instrument.sides[<int>_SIDE_INDEX[side]]
        cdef const Level* level
        cdef uint32_t level_slot = side_best(book_side)
        result = []
        while level_slot:
            level = &self.core.level_pool.items[level_slot]
            result.append((level.price, level.qty, level.count))
            level_slot = side_worse(book_side, level.price)
        return result

    def last_price(self, instrument_id):
        """The price of the instrument's last trade, or None before its first."""
        cdef Instrument* instrument = find_instrument(self.core, instrument_id)
        return None if instrument.last_price == INT64_NULL else instrument.last_price

    def book_snapshot(self, instrument_id):
        """An encoded BookSnapshot frame of every level of the instrument (no framing prefix), one part."""
        cdef Instrument* instrument = find_instrument(self.core, instrument_id)
        cdef uint32_t index = instrument - self.core.instruments
        if book_snapshot_levels(self.core, index) > _MAX_GROUP:
            raise ValueError("the book has more levels than one BookSnapshot group can hold")
        return self.book_snapshot_parts(instrument_id, _MAX_GROUP)[0]

    def order_snapshot_parts(self, instrument_id, uint32_t per_part):
        """The instrument's displayed orders in priority order as OrderSnapshot messages of at most
        `per_part` orders each, with checksums (what the recovery channel carries for an order-level
        instrument)."""
        _check_per_part(per_part, "orders")
        cdef Instrument* instrument = find_instrument(self.core, instrument_id)
        cdef uint32_t index = instrument - self.core.instruments
        cdef uint32_t total = order_snapshot_orders(self.core, index)
        cdef uint32_t parts = max(1, (total + per_part - 1) // per_part)
        cdef OrderCursor cursor
        cdef uint32_t part
        cdef size_t length
        order_snapshot_start(self.core, index, &cursor)
        frames = []
        for part in range(parts):
            out = bytearray(order_snapshot_part_length(min(per_part, total - part * per_part) if total else 0))
            length = order_snapshot_part(self.core, index, &cursor, part, parts, per_part, <uint8_t*><char*>out)
            assert length == len(out)
            frames.append(_sealed(out, sbe.OrderSnapshot_checksum_OFFSET))
        return frames

    def book_snapshot_parts(self, instrument_id, uint32_t per_part):
        """The instrument's book as the BookSnapshot messages the recovery channel carries: parts of at
        most `per_part` levels, each with its checksum."""
        _check_per_part(per_part, "levels")
        cdef Instrument* instrument = find_instrument(self.core, instrument_id)
        cdef uint32_t index = instrument - self.core.instruments
        cdef uint32_t total = book_snapshot_levels(self.core, index)
        cdef uint32_t parts = max(1, (total + per_part - 1) // per_part)
        cdef SnapshotCursor cursor
        cdef uint32_t part
        cdef size_t length
        book_snapshot_start(self.core, index, &cursor)
        frames = []
        for part in range(parts):
            out = bytearray(book_snapshot_part_length(min(per_part, total - part * per_part)))
            length = book_snapshot_part(self.core, index, &cursor, part, parts, per_part, <uint8_t*><char*>out)
            assert length == len(out)
            frames.append(_sealed(out, sbe.BookSnapshot_checksum_OFFSET))
        return frames

    @property
    def instruments(self):
        return dict(self._ticks)

    @property
    def instrument_specs(self):
        """{id: lob.instruments.InstrumentSpec}: the reference data the engine started with."""
        return dict(self._specs)

    @property
    def account_rules(self):
        return self._accounts

    @property
    def max_accounts(self):
        return self.core.risk.capacity

    def instrument_state(self, instrument_id):
        """"trading", "halted" or "closed"."""
        return _STATE_NAMES[find_instrument(self.core, instrument_id).state]

    def account(self, account, instrument_id):
        """{"open_orders", "position"} of an account in an instrument (zeros when it never traded there)."""
        cdef Instrument* instrument = find_instrument(self.core, instrument_id)
        for entry in self.accounts():
            if entry["account"] == account and entry["instrument_id"] == instrument_id:
                return {"open_orders": entry["open_orders"], "position": entry["position"]}
        return {"open_orders": 0, "position": 0}

    def accounts(self):
        """Every (account, instrument) the engine keeps: [{account, instrument_id, open_orders, position}],
        by account then instrument id."""
        cdef const AccountEntry* e
        cdef uint32_t i
        out = []
        for i in range(1, self.core.risk.mask + 2):
            e = &self.core.risk.entries[i]
            if e.instrument != 0:
                out.append({"account": e.account, "instrument_id": self.core.instruments[e.instrument - 1].id,
                            "open_orders": e.open_orders, "position": e.position})
        return sorted(out, key=lambda d: (d["account"], d["instrument_id"]))

    @property
    def market_data(self):
        return bool(self.core.market_data)

    @property
    def live_orders(self):
        return self.core.pool.live

    @property
    def next_order_id(self):
        return self.core.next_order_id

    @property
    def next_trade_id(self):
        return self.core.next_trade_id

    @property
    def traded_quantity(self):
        """Sum of the quantities of all fills."""
        return self.core.traded_qty

    @property
    def next_md_seq(self):
        """Sequence number of the next market-data message."""
        return self.core.next_md_seq


def pool_bytes(uint32_t max_orders):
    """The bytes of the regions sized by max_orders (order and level pools, touch list, id table), as
    Engine.prefault() faults them in; the account table and the rest do not grow with it."""
    cdef uint64_t table_size = 8
    while table_size < 2 * <uint64_t>max_orders:
        table_size *= 2
    return ((<size_t>max_orders + 1) * (sizeof(Order) + sizeof(Level) + sizeof(Touch))
            + table_size * sizeof(IdEntry))


def _check_per_part(uint32_t per_part, what):
    if not 0 < per_part <= _MAX_GROUP:
        raise ValueError(f"{what} per part {per_part} must be in 1..{_MAX_GROUP}")


def _sealed(bytearray out, size_t checksum_offset):
    """The snapshot message `out` with its CRC-32 (taken over the message with a zero checksum) written in."""
    import zlib

    cdef size_t offset = sbe.HEADER_LENGTH + checksum_offset
    out[offset:offset + 4] = zlib.crc32(out).to_bytes(4, "little")
    return bytes(out)
