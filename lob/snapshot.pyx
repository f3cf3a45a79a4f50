"""Engine snapshots: the whole engine state as SBE messages in one checksummed file.

File `snapshot-<journal seq, 20 digits>.snap`, written to a temporary name, synced, then renamed:
    "LOBSNAP\\0" | u32 version | u32 0
    outbound-framed SBE frames (u32 length | frame): one SnapshotHeader, one SnapshotInstrument per
    instrument, one SnapshotSession per trading session (its sequences, binding, throttle and the
    application messages kept for retransmission), one SnapshotOrder per resting order (instrument by
    instrument, bids then asks, each side's levels from the worst price to the best, oldest first within
    a level: restoring them in file order rebuilds price-time priority), then (version 3) one SnapshotAccount
    per (account, instrument) of the risk table. Version 4's SnapshotInstrument carries the instrument's
    settings too (lot, band, limits, matching algorithm, STP default); versions 2 and 3 only id, tick,
    state and last trade price.
    "LOBSEND\\0" | u32 crc32c of every byte before the trailer | u32 0
The journal sequence in the name (and in SnapshotHeader.journalSeq) is the last journal record whose
effects the snapshot holds: recovery replays the journal from the next one.
"""
import dataclasses
import os
import struct

from cpython.bytearray cimport PyByteArray_AS_STRING
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

from lob.core cimport (INT64_NULL, NONCE_SLOTS, AccountEntry, EngineCore, Instrument, Level, Order, Session,
                       engine_restore_order, instrument_index, load_u32le, load_u64le, ring_frame, ring_reserve,
                       ring_restore, risk_entry, session_slot, side_better, side_worst, store_u32le, transport_bind)
from lob.engine cimport Engine
from lob.journal cimport crc32c
from lob.sbe.messages cimport *

MAGIC = b"LOBSNAP\x00"
TRAILER_MAGIC = b"LOBSEND\x00"
VERSION = 4
READABLE_VERSIONS = (2, 3, 4)  # 2 has no SnapshotAccount frames (positions start at zero); 2 and 3 no settings
OLD_INSTRUMENT = struct.Struct("<IqBq")    # versions 2 and 3: instrumentId, tick, state, lastTradePrice
PREFIX = "snapshot-"
SUFFIX = ".snap"

cdef enum:
    FILE_HEADER = 16
    TRAILER = 16
    ORDER_FRAME = 4 + HEADER_LENGTH + SnapshotOrder_BLOCK_LENGTH
    ACCOUNT_FRAME = 4 + HEADER_LENGTH + SnapshotAccount_BLOCK_LENGTH


class SnapshotError(Exception):
    """A snapshot file is unreadable, fails its checksum, or does not fit the engine."""


cdef inline uint8_t* frame_start(uint8_t* p, uint16_t block_length, uint16_t template_id) noexcept nogil:
    store_u32le(p, HEADER_LENGTH + block_length)
    p += 4
    messageHeader_set_blockLength(p, block_length)
    messageHeader_set_templateId(p, template_id)
    messageHeader_set_schemaId(p, SCHEMA_ID)
    messageHeader_set_version(p, SCHEMA_VERSION)
    return p + HEADER_LENGTH


cdef uint8_t* encode_order(const EngineCore* core, uint8_t* p, const Order* o) noexcept nogil:
    cdef uint8_t* b = frame_start(p, SnapshotOrder_BLOCK_LENGTH, SnapshotOrder_TEMPLATE_ID)
    SnapshotOrder_set_orderId(b, o.order_id)
    SnapshotOrder_set_clOrdId(b, o.cl_ord_id)
    SnapshotOrder_set_sessionId(b, core.sessions[o.session].id)
    SnapshotOrder_set_account(b, o.account)
    SnapshotOrder_set_instrumentId(b, o.instrument_id)
    SnapshotOrder_set_side(b, o.side)
    SnapshotOrder_set_ordType(b, o.ord_type)
    SnapshotOrder_set_timeInForce(b, o.time_in_force)
    SnapshotOrder_set_flags(b, o.flags)
    SnapshotOrder_set_selfTradePrevention(b, o.stp_mode)
    PriceNull_set_mantissa(b + SnapshotOrder_price_OFFSET, o.price)
    SnapshotOrder_set_orderQty(b, o.order_qty)
    SnapshotOrder_set_leavesQty(b, o.leaves_qty)
    SnapshotOrder_set_cumQty(b, o.cum_qty)
    SnapshotOrder_set_displayQty(b, o.display_qty)
    SnapshotOrder_set_stpGroup(b, o.stp_group)
    SnapshotOrder_set_hiddenQty(b, 0 if o.waiting else o.leaves_qty - o.shown)
    SnapshotOrder_set_triggered(b, 0 if o.waiting else 1)
    PriceNull_set_mantissa(b + SnapshotOrder_stopPrice_OFFSET, o.stop_price)
    SnapshotOrder_set_expireTime(b, o.expire_time)
    return b + SnapshotOrder_BLOCK_LENGTH


cdef uint64_t encode_orders(const EngineCore* core, uint8_t* p) noexcept nogil:
    """Every resting order, level by level from the worst price to the best, oldest first within a
    level; returns how many. Restored in this order, each order goes at the tail of its level."""
    cdef uint64_t count = 0
    cdef uint32_t i, s, level_slot, slot, pos
    cdef const Instrument* instrument
    cdef const Level* level
    for i in range(core.instrument_count):
        instrument = &core.instruments[i]
        for s in range(2):
            level_slot = side_worst(&instrument.sides[s])
            while level_slot != 0:
                level = &core.level_pool.items[level_slot]
                slot = level.head
                while slot != 0:
                    p = encode_order(core, p, &core.pool.items[slot])
                    count += 1
                    slot = core.pool.items[slot].next
                level_slot = side_better(&instrument.sides[s], level.price)
            # untriggered stops, the last to trigger first (restoring sorts them again)
            for pos in range(instrument.stops[s].count):
                p = encode_order(core, p, &core.pool.items[instrument.stops[s].slots[pos]])
                count += 1
    return count


cdef uint8_t* encode_accounts(const EngineCore* core, uint8_t* p) noexcept nogil:
    cdef uint32_t i
    cdef const AccountEntry* e
    cdef uint8_t* b
    for i in range(1, core.risk.mask + 2):
        e = &core.risk.entries[i]
        if e.instrument == 0:
            continue
        b = frame_start(p, SnapshotAccount_BLOCK_LENGTH, SnapshotAccount_TEMPLATE_ID)
        SnapshotAccount_set_account(b, e.account)
        SnapshotAccount_set_instrumentId(b, core.instruments[e.instrument - 1].id)
        SnapshotAccount_set_openOrders(b, e.open_orders)
        SnapshotAccount_set_position(b, e.position)
        p = b + SnapshotAccount_BLOCK_LENGTH
    return p


cdef restore_accounts(EngineCore* core, const uint8_t* p, const uint8_t* end, str path):
    """SnapshotAccount frames: positions (open orders were counted again as the orders were restored)."""
    cdef const uint8_t* b
    cdef AccountEntry* e
    cdef int index
    while p < end:
        if (p + ACCOUNT_FRAME > end or load_u32le(p) != HEADER_LENGTH + SnapshotAccount_BLOCK_LENGTH
                or messageHeader_templateId(p + 4) != SnapshotAccount_TEMPLATE_ID):
            raise SnapshotError(f"{path}: a damaged SnapshotAccount frame")
        b = p + 4 + HEADER_LENGTH
        index = instrument_index(core, SnapshotAccount_instrumentId(b))
        e = risk_entry(core, SnapshotAccount_account(b), index) if index >= 0 else NULL
        if e == NULL:
            raise SnapshotError(f"{path}: account {SnapshotAccount_account(b)} of instrument "
                                f"{SnapshotAccount_instrumentId(b)} does not fit the engine")
        if e.open_orders != SnapshotAccount_openOrders(b):
            raise SnapshotError(f"{path}: account {e.account} has {SnapshotAccount_openOrders(b)} open orders in "
                                f"instrument {SnapshotAccount_instrumentId(b)}, its orders say {e.open_orders}")
        e.position = SnapshotAccount_position(b)
        p += ACCOUNT_FRAME


def snapshot_path(directory, uint64_t journal_seq):
    return os.path.join(directory, f"{PREFIX}{journal_seq:020d}{SUFFIX}")


cdef bytes session_frame(const Session* s):
    """A SnapshotSession frame (framed) for one session."""
    from lob.sbe import messages
    cdef uint32_t length, i
    cdef const uint8_t* frame
    ring = bytearray()
    for seq in range(s.ring.first_seq, s.ring.next_seq):
        frame = ring_frame(&s.ring, seq, &length)
        if frame == NULL:
            break
        ring += length.to_bytes(4, "little") + frame[:length]
    nonces = b"".join(s.nonces[(s.nonce_next + i) % NONCE_SLOTS].to_bytes(8, "little") for i in range(NONCE_SLOTS))
    encoded = messages.encode(
        "SnapshotSession", sessionId=s.id, state=s.state, transport=s.transport, nextSeqNo=s.next_out_seq,
        nextRecvSeqNo=s.next_in_seq, keepAliveIntervalMs=s.keepalive_ms, lastRecvTime=s.last_in_ns,
        lastSentTime=s.last_out_ns, lastRequestTimestamp=s.last_request_ns, tokens=s.tokens, tokensTime=s.tokens_ns,
        ringFirstSeqNo=s.ring.first_seq if ring else s.next_out_seq, nonces=nonces, ring=bytes(ring))
    return len(encoded).to_bytes(4, "little") + encoded


cdef restore_session(EngineCore* core, dict m, str path):
    cdef uint32_t slot = session_slot(core, m["sessionId"])
    if slot == 0:
        raise SnapshotError(f"{path}: session {m['sessionId']} is not in the credentials")
    cdef Session* s = &core.sessions[slot]
    cdef const uint8_t[::1] ring = m["ring"]
    cdef size_t offset = 0, n = len(m["ring"])
    cdef uint32_t length, i
    s.state = m["state"]
    s.next_out_seq = m["nextSeqNo"]
    s.next_in_seq = m["nextRecvSeqNo"]
    s.keepalive_ms = m["keepAliveIntervalMs"]
    s.last_in_ns = m["lastRecvTime"]
    s.last_out_ns = m["lastSentTime"]
    s.last_request_ns = m["lastRequestTimestamp"]
    s.tokens = m["tokens"]
    s.tokens_ns = m["tokensTime"]
    nonces = m["nonces"]
    for i in range(NONCE_SLOTS):
        s.nonces[i] = int.from_bytes(nonces[8 * i:8 * i + 8], "little")
    s.nonce_next = 0
    if m["transport"]:
        transport_bind(core, m["transport"], slot)
    if ring_reserve(core, &s.ring) != 0:
        raise SnapshotError(f"{path}: no memory for the retransmission ring of session {s.id}")
    s.ring.first_seq = s.ring.next_seq = m["ringFirstSeqNo"]
    while offset + 4 <= n:
        length = load_u32le(&ring[offset])
        if offset + 4 + length > n or length < HEADER_LENGTH + 8:
            raise SnapshotError(f"{path}: the ring of session {s.id} is damaged")
        ring_restore(&s.ring, &ring[offset + 4], length)
        offset += 4 + length


def encode_snapshot(Engine engine, uint64_t journal_seq):
    """The snapshot file's bytes for the engine's current state."""
    cdef EngineCore* core = engine.core
    cdef uint64_t orders = core.pool.live
    cdef uint64_t accounts = core.risk.count
    sessions = b"".join(session_frame(&core.sessions[i]) for i in range(1, core.session_count + 1))
    cdef size_t size = (FILE_HEADER + 4 + HEADER_LENGTH + SnapshotHeader_BLOCK_LENGTH
                        + core.instrument_count * (4 + HEADER_LENGTH + SnapshotInstrument_BLOCK_LENGTH)
                        + len(sessions) + orders * ORDER_FRAME + accounts * ACCOUNT_FRAME + TRAILER)
    data = bytearray(size)
    cdef uint8_t* start = <uint8_t*>PyByteArray_AS_STRING(data)
    cdef uint8_t* p = start
    cdef uint8_t* b
    cdef uint32_t i
    cdef uint64_t written
    memcpy(p, <const char*>MAGIC, 8)
    store_u32le(p + 8, VERSION)
    p += FILE_HEADER
    b = frame_start(p, SnapshotHeader_BLOCK_LENGTH, SnapshotHeader_TEMPLATE_ID)
    SnapshotHeader_set_journalSeq(b, journal_seq)
    SnapshotHeader_set_nextOrderId(b, core.next_order_id)
    SnapshotHeader_set_nextTradeId(b, core.next_trade_id)
    SnapshotHeader_set_nextMdSeq(b, core.next_md_seq)
    SnapshotHeader_set_lastTransactTime(b, core.last_transact_time)
    SnapshotHeader_set_instrumentCount(b, core.instrument_count)
    SnapshotHeader_set_orderCount(b, orders)
    SnapshotHeader_set_tradedQty(b, core.traded_qty)
    SnapshotHeader_set_sessionCount(b, core.session_count)
    p = b + SnapshotHeader_BLOCK_LENGTH
    for i in range(core.instrument_count):
        b = frame_start(p, SnapshotInstrument_BLOCK_LENGTH, SnapshotInstrument_TEMPLATE_ID)
        SnapshotInstrument_set_instrumentId(b, core.instruments[i].id)
        SnapshotInstrument_set_tick(b, core.instruments[i].tick)
        PriceNull_set_mantissa(b + SnapshotInstrument_lastTradePrice_OFFSET, core.instruments[i].last_price)
        SnapshotInstrument_set_state(b, core.instruments[i].state)
        SnapshotInstrument_set_lot(b, core.instruments[i].lot)
        SnapshotInstrument_set_bandBp(b, core.instruments[i].band_bp)
        SnapshotInstrument_set_bandTicks(b, core.instruments[i].band_ticks)
        PriceNull_set_mantissa(b + SnapshotInstrument_referencePrice_OFFSET, core.instruments[i].reference_price)
        SnapshotInstrument_set_maxOrderQty(b, core.instruments[i].max_order_qty)
        SnapshotInstrument_set_maxNotional(b, core.instruments[i].max_notional)
        SnapshotInstrument_set_algorithm(b, core.instruments[i].algorithm)
        SnapshotInstrument_set_minAllocation(b, core.instruments[i].min_allocation)
        SnapshotInstrument_set_stpDefault(b, core.instruments[i].stp_default)
        p = b + SnapshotInstrument_BLOCK_LENGTH
    memcpy(p, <const char*>sessions, len(sessions))
    p += len(sessions)
    with nogil:
        written = encode_orders(core, p)
    if written != orders:
        raise SnapshotError(f"engine holds {orders} live orders but {written} rest in its books")
    p += orders * ORDER_FRAME
    with nogil:
        p = encode_accounts(core, p)
    memcpy(p, <const char*>TRAILER_MAGIC, 8)
    store_u32le(p + 8, crc32c(0, start, p - start))
    return bytes(data)


def write_snapshot(Engine engine, directory, uint64_t journal_seq):
    """Write the engine's state atomically (temporary file, fsync, rename, fsync the directory)."""
    os.makedirs(directory, exist_ok=True)
    data = encode_snapshot(engine, journal_seq)
    path = snapshot_path(directory, journal_seq)
    temporary = path + ".tmp"
    with open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def list_snapshots(directory):
    """Snapshot paths, newest (highest journal sequence) first."""
    if not os.path.isdir(directory):
        return []
    names = [n for n in os.listdir(directory) if n.startswith(PREFIX) and n.endswith(SUFFIX)]
    return [os.path.join(directory, n) for n in sorted(names, reverse=True)]


def check_snapshot(data, path="snapshot"):
    """Raise SnapshotError unless `data` is a whole, uncorrupted snapshot file."""
    cdef const uint8_t[::1] view = data
    cdef size_t size = view.shape[0]
    if size < FILE_HEADER + TRAILER or bytes(data[:8]) != MAGIC:
        raise SnapshotError(f"{path}: not a snapshot file")
    if load_u32le(&view[8]) not in READABLE_VERSIONS:
        raise SnapshotError(f"{path}: unsupported snapshot version {load_u32le(&view[8])}")
    if bytes(data[size - TRAILER:size - TRAILER + 8]) != TRAILER_MAGIC:
        raise SnapshotError(f"{path}: truncated (no trailer)")
    if crc32c(0, &view[0], size - TRAILER) != load_u32le(&view[size - TRAILER + 8]):
        raise SnapshotError(f"{path}: checksum mismatch")


def read_frames(data):
    """The SBE frames of a checked snapshot file, as memoryviews."""
    view = memoryview(data)
    offset, end = FILE_HEADER, len(view) - TRAILER
    while offset < end:
        length = int.from_bytes(view[offset:offset + 4], "little")
        yield view[offset + 4:offset + 4 + length]
        offset += 4 + length


cdef uint64_t restore_orders(EngineCore* core, const uint8_t* p, const uint8_t* end) noexcept nogil:
    """Restore SnapshotOrder frames in file order; returns how many, or stops at the first bad one."""
    cdef uint64_t count = 0
    cdef Order o
    cdef const uint8_t* b
    cdef uint32_t length
    memset(&o, 0, sizeof(Order))
    while p + 4 <= end:
        length = load_u32le(p)
        if length != HEADER_LENGTH + SnapshotOrder_BLOCK_LENGTH or p + 4 + length > end:
            break
        if messageHeader_templateId(p + 4) != SnapshotOrder_TEMPLATE_ID:
            break
        b = p + 4 + HEADER_LENGTH
        o.order_id = SnapshotOrder_orderId(b)
        o.cl_ord_id = SnapshotOrder_clOrdId(b)
        o.session = session_slot(core, SnapshotOrder_sessionId(b))
        if o.session == 0:
            break
        o.account = SnapshotOrder_account(b)
        o.instrument_id = SnapshotOrder_instrumentId(b)
        o.side = SnapshotOrder_side(b)
        o.ord_type = SnapshotOrder_ordType(b)
        o.time_in_force = SnapshotOrder_timeInForce(b)
        o.flags = SnapshotOrder_flags(b)
        o.stp_mode = SnapshotOrder_selfTradePrevention(b)
        o.price = PriceNull_mantissa(b + SnapshotOrder_price_OFFSET)
        o.order_qty = SnapshotOrder_orderQty(b)
        o.leaves_qty = SnapshotOrder_leavesQty(b)
        o.cum_qty = SnapshotOrder_cumQty(b)
        o.display_qty = SnapshotOrder_displayQty(b)
        o.stp_group = SnapshotOrder_stpGroup(b)
        o.shown = o.leaves_qty - SnapshotOrder_hiddenQty(b)
        o.waiting = (o.ord_type == OrdType_Stop or o.ord_type == OrdType_StopLimit) and SnapshotOrder_triggered(b) == 0
        o.stop_price = PriceNull_mantissa(b + SnapshotOrder_stopPrice_OFFSET)
        o.expire_time = SnapshotOrder_expireTime(b)
        if engine_restore_order(core, &o) == 0:
            break
        count += 1
        p += 4 + length
    return count


def load_snapshot(path, max_orders=1 << 20, market_data=True, sessions=(), ring_bytes=1 << 22, instruments=None,
                  **risk):
    """Build an Engine from a snapshot file, for the sessions of the credentials given (every session the
    snapshot holds must be among them). Returns (engine, journal sequence it covers).

    The snapshot says which instruments exist, their ticks, states, last prices and (version 4) every
    setting matching depends on, which win over `instruments` ({id: InstrumentSpec}, as configured): the
    engine goes on as the one that wrote it. From `instruments` come the symbols, and for older snapshots
    the other settings. Account limits come from `risk` (accounts=, max_accounts=: lob.engine.Engine's)."""
    from lob.instruments import specs_of
    from lob.sbe import messages
    with open(path, "rb") as f:
        data = f.read()
    check_snapshot(data, path)
    frames = read_frames(data)
    header = messages.decode(next(frames))
    if header["_name"] != "SnapshotHeader":
        raise SnapshotError(f"{path}: first frame is {header['_name']}, not SnapshotHeader")
    reference = specs_of(instruments) if instruments is not None else {}
    version = int.from_bytes(data[8:12], "little")
    instruments, last_prices, states = {}, [], []
    offset = FILE_HEADER + 4 + HEADER_LENGTH + SnapshotHeader_BLOCK_LENGTH
    for _ in range(header["instrumentCount"]):
        frame = next(frames)
        instrument_id, spec, last_price, state = (instrument_settings(frame, reference) if version >= 4
                                                  else old_instrument(frame, reference))
        instruments[instrument_id] = spec
        last_prices.append(last_price)
        states.append(state)
        offset += 4 + len(frame)
    orders = header["orderCount"]
    if orders > max_orders:
        raise SnapshotError(f"{path}: {orders} resting orders do not fit an engine of {max_orders}")
    cdef Engine engine = Engine(instruments=instruments, max_orders=max_orders, market_data=market_data,
                                sessions=sessions, ring_bytes=ring_bytes, **risk)
    cdef EngineCore* core = engine.core
    cdef uint32_t i
    for i in range(core.instrument_count):
        core.instruments[i].last_price = INT64_NULL if last_prices[i] is None else last_prices[i]
        core.instruments[i].state = states[i]
    for _ in range(header["sessionCount"]):
        frame = next(frames)
        session = messages.decode(frame)
        if session["_name"] != "SnapshotSession":
            raise SnapshotError(f"{path}: expected a SnapshotSession, found {session['_name']}")
        restore_session(core, session, path)
        offset += 4 + len(frame)
    cdef const uint8_t[::1] view = data
    cdef uint64_t restored
    cdef size_t start = offset, stop = len(data) - TRAILER
    with nogil:
        restored = restore_orders(core, &view[start], &view[stop])
    if restored != orders or start + restored * ORDER_FRAME > stop:
        raise SnapshotError(f"{path}: order {restored + 1} of {orders} could not be restored")
    restore_accounts(core, &view[start + restored * ORDER_FRAME], &view[stop], path)
    core.next_order_id = header["nextOrderId"]
    core.next_trade_id = header["nextTradeId"]
    core.next_md_seq = header["nextMdSeq"]
    core.last_transact_time = header["lastTransactTime"]
    core.traded_qty = header["tradedQty"]
    return engine, header["journalSeq"]


def instrument_settings(frame, reference):
    """(id, InstrumentSpec, last trade price or None, state) of a version 4 SnapshotInstrument; the symbol
    from `reference` ({id: InstrumentSpec})."""
    from lob.instruments import ALGORITHMS, InstrumentSpec
    from lob.sbe import messages

    d = messages.decode(frame)
    configured = reference.get(d["instrumentId"])
    algorithms = {v: k for k, v in ALGORITHMS.items()}
    spec = InstrumentSpec(
        d["instrumentId"], symbol=configured.symbol if configured else "", tick=d["tick"], lot=d["lot"],
        band_bp=d["bandBp"], band_ticks=d["bandTicks"],
        reference_price=(d["referencePrice"] or {}).get("mantissa"), max_order_qty=d["maxOrderQty"],
        max_notional=d["maxNotional"], algorithm=algorithms[messages.ENUMS["MatchingAlgorithm"][d["algorithm"]]],
        min_allocation=d["minAllocation"], stp=d["stpDefault"], state=d["state"].lower())
    state = messages.ENUMS["InstrumentState"][d["state"]]
    return d["instrumentId"], spec, (d["lastTradePrice"] or {}).get("mantissa"), state


def old_instrument(frame, reference):
    """The same from a version 2 or 3 SnapshotInstrument (id, tick, state, last trade price); the other
    settings from `reference`, or the defaults."""
    instrument_id, tick, state, last_price = OLD_INSTRUMENT.unpack_from(frame, HEADER_LENGTH)
    configured = reference.get(instrument_id)
    spec = dataclasses.replace(configured, tick=tick) if configured else tick
    return instrument_id, spec, None if last_price == INT64_NULL else last_price, state


def latest_snapshot(directory, log=None, **engine_kwargs):
    """(engine, journal seq, path) from the newest loadable snapshot, or (None, 0, None).

    A newest snapshot that fails its checks is reported through `log` and the next older one is tried.
    """
    for path in list_snapshots(directory):
        try:
            engine, seq = load_snapshot(path, **engine_kwargs)
            return engine, seq, path
        except SnapshotError as exc:
            if log is not None:
                log(f"skipping {exc}")
    return None, 0, None
