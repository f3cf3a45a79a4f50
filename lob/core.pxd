# The nogil matching core: order pool, price levels, price index, id table, matching, report encoding.
#
# Index 0 of the order pool, the level pool and the id table means "none": links and table entries
# start zeroed, and a zeroed entry is empty.
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

cdef enum:
    CORE_OK = 0
    CORE_ERR_NOMEM = -1      # an output buffer could not grow: the message's output is incomplete
    INBOUND_RECORD_HEADER_LENGTH = 16   # u32 length | u32 transport | u64 timestamp_ns
    OUTBOUND_FRAME_HEADER_LENGTH = 4    # u32 length (market data)
    EXEC_FRAME_HEADER_LENGTH = 12       # u32 length | u32 session id | u32 transport (execution)
    NONCE_SLOTS = 16
    SESSION_IDLE = 0
    SESSION_NEGOTIATED = 1
    SESSION_ESTABLISHED = 2
    MAX_ORDER_QTY = 1000000000000
    MATCH_PRICE_TIME = 0
    MATCH_PRO_RATA = 1
    DEFAULT_MAX_ACCOUNTS = 65536
    SCRATCH_LENGTH = 512
    ICEBERG_MAX_SLICES = 1000   # display quantity >= total / this: bounds the fills one aggressor makes
    INDEX_MAX_HEIGHT = 11   # 64**11 > 2**63: enough index nodes on a path for any positive int64 price

# Framed frames (market data: outbound framing; execution: routed framing). The core owns `data` (mapped memory: never free or realloc it); a reader
# takes frames from data[0:length] and then sets length = 0.
cdef struct OutBuf:
    uint8_t* data
    size_t length
    size_t capacity
    bint borrowed           # data is lent by the caller (outbuf_lend)

# Risk state of one account in one instrument (risk.pxi); entry 0 is a sink for orders of none.
cdef struct AccountEntry:
    uint32_t account
    uint32_t instrument     # instrument index + 1; 0: the entry is free
    uint32_t open_orders    # its live orders (resting, or being matched)
    uint32_t max_open_orders    # 0: no limit
    int64_t position        # bought - sold, from fills
    int64_t max_position    # |position| limit; 0: none

# Limits of one account from the config; default_limits covers the accounts not listed.
cdef struct AccountLimits:
    uint32_t account
    uint32_t max_open_orders
    int64_t max_position

# (account, instrument) -> entry: open addressing over entries[1..mask+1], never deleted (positions stay).
cdef struct RiskTable:
    AccountEntry* entries
    uint32_t mask
    uint32_t count
    uint32_t capacity       # entries that may be used; a new pair beyond it is rejected PoolFull
    AccountLimits* limits   # sorted by account
    uint32_t limit_count
    AccountLimits default_limits

# GoodTillDate orders by (expire time, order id): a binary heap with lazy deletion (an entry whose slot
# no longer holds that order is dropped when it surfaces); compacted when full (capacity 2 x pool).
cdef struct ExpiryEntry:
    uint64_t order_id
    uint32_t expire_time
    uint32_t slot

cdef struct ExpiryHeap:
    ExpiryEntry* items
    uint32_t count
    uint32_t capacity

cdef struct Order:
    uint64_t order_id
    uint64_t cl_ord_id
    int64_t price           # limit price mantissa (INT64_NULL: none, a market order)
    int64_t order_qty
    int64_t leaves_qty
    int64_t cum_qty
    int64_t display_qty     # iceberg visible quantity (later issue); INT64_NULL: fully displayed
    int64_t stop_price      # stop / stop-limit trigger (later issue); INT64_NULL: none
    uint32_t session        # slot of its trading session in EngineCore.sessions
    uint32_t account
    uint32_t instrument_id
    uint32_t level          # level slot while resting
    uint32_t prev           # FIFO neighbours within the level (order slots)
    uint32_t next
    uint16_t instrument     # index into EngineCore.instruments
    uint8_t side
    uint8_t ord_type
    uint8_t time_in_force
    uint8_t flags
    uint8_t stp_mode        # self-trade prevention mode when this order is the aggressor (lob/stp.pxi)
    uint32_t risk_slot      # its (account, instrument) entry in EngineCore.risk (risk.pxi)
    uint32_t expire_time    # GoodTillDate: expiry, seconds on the record clock; else 0
    uint32_t stp_group      # orders of one non-zero group never trade together (as orders of one account)
    int64_t shown           # resting quantity on the book: leaves_qty, or an iceberg's current slice
    uint8_t waiting         # an untriggered stop: in its side's StopBook, not on the book
    uint32_t md_slice       # order-level market data: 0 while its first slice shows (public id = order_id),
                            # else the public id's low bits for an iceberg's later slice (fits the padding)

cdef struct OrderPool:
    Order* items
    uint32_t capacity       # usable slots are 1..capacity
    uint32_t high_water     # slots above it were never used (keeps untouched memory unmapped)
    uint32_t free_head
    uint32_t live
    AccountEntry* accounts  # each order's entry counts it while it lives: released orders leave here

cdef struct Level:
    int64_t price
    int64_t qty             # sum of its orders' shown quantities (hidden iceberg quantity is not in it)
    uint32_t count
    uint32_t head           # oldest order slot
    uint32_t tail
    uint32_t touch          # 1 + index into EngineCore.touches during the current message, else 0

cdef struct LevelPool:
    Level* items
    uint32_t capacity
    uint32_t high_water
    uint32_t free_head      # free levels are chained through .head

# A node of a side's price index (price_index.pxi): bit d of `bits` set <=> child[d] != 0; child[d] is a
# node slot, or a level slot in a bottom node.
cdef struct IndexNode:
    uint64_t bits
    uint32_t child[64]

# The engine's one pool of index nodes, shared by every side; free nodes are chained through child[0].
cdef struct IndexPool:
    IndexNode* items
    uint32_t capacity       # usable slots are 1..capacity (mapped; grows by mremap up to `limit`)
    uint32_t limit
    uint32_t high_water
    uint32_t free_head
    uint32_t live

# One side of one instrument: a radix tree over price / tick whose bottom nodes hold level slots. The
# key is the price on the bid side and minus the price on the ask side, so "better" is "greater" on both.
cdef struct BookSide:
    IndexPool* nodes
    int64_t tick
    int64_t best_key        # key of the best level while there is one
    uint32_t best           # best level slot, 0 when the side is empty
    uint32_t root           # node covering tick indices below 64**height; 0 when empty
    uint32_t height
    uint32_t count          # levels
    bint bid

# One side's untriggered stop orders (pool slots), the next to trigger at the end: buy stops by stop
# price descending, sell stops ascending, equal stop prices the later order id first.
cdef struct StopBook:
    uint32_t* slots
    uint32_t count
    uint32_t capacity

cdef struct Instrument:
    uint32_t id
    int64_t tick
    int64_t last_price      # price of the last trade (INT64_NULL: none yet): stops trigger on it, bands centre on it
    BookSide sides[2]       # 0: bids, 1: asks
    int64_t lot             # order quantities are multiples of it (reference data, lob/instruments.py)
    int64_t band_bp         # price band around the reference, basis points of it (0: none)
    int64_t band_ticks      # or in ticks (0: none)
    int64_t reference_price # band centre until the first trade (INT64_NULL: none)
    int64_t max_order_qty   # per order (0: no limit)
    int64_t max_notional    # price mantissa x quantity per order (0: no limit)
    int64_t min_allocation  # pro-rata: a share below this many lots is not allocated (it goes by time)
    uint8_t state           # InstrumentState: new orders and replaces only while Trading
    uint8_t algorithm       # MATCH_PRICE_TIME / MATCH_PRO_RATA
    uint8_t stp_default     # SelfTradePrevention mode of orders that name none
    uint8_t order_level     # publish order-level market data (OrderAdd/Modify/Delete/Execute) too
    StopBook stops[2]       # 0: buy stops, 1: sell stops
    int64_t trade_high      # highest and lowest trade price since the stops were last checked (0: none)
    int64_t trade_low

# 8 bytes: the key itself lives in the order, the entry keeps its slot and the hash's low 32 bits (the
# home position, and a filter that spares reading the order on almost every mismatch).
cdef struct IdEntry:
    uint32_t tag
    uint32_t slot           # 0: empty

# (session, clOrdId) -> order slot: open addressing, linear probing, backward-shift delete;
# power-of-two size at least twice the pool, so it is at most half full.
cdef struct IdTable:
    IdEntry* entries
    uint64_t mask

# A level changed by the current message, for its BookUpdate.
cdef struct Touch:
    int64_t price
    int64_t qty_before
    uint32_t count_before
    uint32_t level          # the live level slot, 0 once the level is gone
    uint16_t instrument
    uint8_t side
    uint8_t existed         # the level existed before the message

# A session's application messages as first sent, for retransmission: frames stored `u32 length | frame`
# at absolute byte positions (a frame never wraps: the tail of the buffer is skipped instead); the
# oldest are dropped when bytes or slots run out.
cdef struct Ring:
    uint8_t* data           # `capacity` bytes, mapped on first use
    uint64_t* offsets       # absolute position of seq s at offsets[s & (slots - 1)]
    uint64_t capacity       # bytes, a power of two
    uint32_t slots          # frames at most, a power of two
    uint64_t first_seq      # oldest retained seq (== next seq when empty)
    uint64_t first_pos      # absolute position of first_seq's frame
    uint64_t next_seq       # seq of the next frame appended
    uint64_t head           # absolute position of the next write

cdef struct Session:
    uint32_t id             # trading session id (credentials file)
    uint32_t transport      # Aeron session id of the client's publication while bound, else 0
    uint8_t state           # SESSION_IDLE / NEGOTIATED / ESTABLISHED
    uint8_t cancel_on_disconnect
    uint8_t admin           # may send InstrumentStateRequest / EndOfDayRequest
    uint32_t keepalive_ms
    uint64_t next_out_seq   # seqNum of the next application message to the client
    uint64_t next_in_seq    # implicit sequence number of the client's next application message
    uint64_t last_in_ns     # record clock: last frame from the client
    uint64_t last_out_ns    # record clock: last frame to the client
    uint64_t last_request_ns    # requestTimestamp of the last accepted Negotiate/Establish
    int64_t rate            # throttle: messages per second (0: none)
    int64_t burst
    int64_t tokens          # token bucket in messages x 1e9
    uint64_t tokens_ns
    uint64_t nonces[NONCE_SLOTS]
    uint32_t nonce_next
    Ring ring

# Per-session settings from the credentials file, for engine_init.
cdef struct SessionConfig:
    uint32_t id
    int64_t rate
    int64_t burst
    uint8_t cancel_on_disconnect
    uint8_t admin

# Checks a Negotiate or Establish frame's signature with the session's secret: 1 valid, 0 not.
ctypedef int (*verify_fn)(void* ctx, uint32_t slot, const uint8_t* frame, uint32_t length) noexcept nogil

cdef struct SessionCounters:
    uint64_t established    # successful Establish
    uint64_t claims_rejected    # Negotiate for a session bound elsewhere, or from a transport bound to another
    uint64_t auth_failures  # unknown session, bad signature, stale or replayed request
    uint64_t unauthenticated    # application messages from a transport with no established session
    uint64_t throttled
    uint64_t gaps           # NotApplied sent
    uint64_t retransmitted  # frames sent again
    uint64_t timeouts       # sessions ended by the keep-alive timeout
    uint64_t canceled_on_disconnect

cdef struct EngineCore:
    OutBuf exec_out         # execution and session frames, routed framing
    OutBuf md_out           # BookUpdate, Trade
    bint market_data        # generate md_out at all
    OrderPool pool
    LevelPool level_pool
    IndexPool index_pool    # nodes of every side's price index
    IdTable ids
    Instrument* instruments
    uint32_t instrument_count
    uint32_t* instrument_keys       # small open-addressing table: instrument id -> index + 1
    uint16_t* instrument_values
    uint32_t instrument_mask
    uint64_t next_order_id
    uint64_t next_trade_id
    uint64_t next_md_seq
    uint64_t traded_qty     # sum of all fills' quantities
    uint64_t last_transact_time
    Touch* touches
    uint32_t touch_count
    uint32_t touch_deleted  # levels deleted in the current message
    int error               # CORE_ERR_NOMEM once an output buffer failed to grow
    Session* sessions       # slots 1..session_count (0: none)
    uint32_t session_count
    uint32_t* transport_keys    # open addressing: bound transport -> session slot
    uint32_t* transport_values
    uint32_t transport_mask
    uint32_t last_transport     # the last transport looked up and its slot: batches come mostly from one
    uint32_t last_slot
    uint64_t ring_bytes     # per session
    uint64_t request_window_ns  # Negotiate/Establish requestTimestamp must be this close to the clock
    uint32_t max_retransmit
    verify_fn verify
    void* verify_ctx
    uint32_t pending_slot   # the last application frame claimed, appended to its ring at the next claim
    size_t pending_offset
    uint32_t pending_length
    int64_t reject_tokens   # rate limit of rejects to unestablished transports (x 1e9)
    uint64_t reject_tokens_ns
    SessionCounters session_counters
    uint8_t scratch[SCRATCH_LENGTH]     # frames go here when an output buffer cannot grow
    RiskTable risk
    ExpiryHeap expiry

cdef extern from *:
    """
    #define LOB_INT64_NULL INT64_MIN
    """
    # SBE's null value of an optional int64 (PriceNull.mantissa, QtyNull)
    const int64_t INT64_NULL "LOB_INT64_NULL"

# Little-endian loads and stores (the wire's byte order; lob checks at import that the host's is the same,
# so these compile to single moves).
cdef inline uint32_t load_u32le(const uint8_t* p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v

cdef inline uint64_t load_u64le(const uint8_t* p) noexcept nogil:
    cdef uint64_t v
    memcpy(&v, p, 8)
    return v

cdef inline void store_u32le(uint8_t* p, uint32_t v) noexcept nogil:
    memcpy(p, &v, 4)

cdef int engine_init(EngineCore* core, const uint32_t* ids, const int64_t* ticks, uint32_t count,
                     uint32_t max_orders, bint market_data, const SessionConfig* sessions, uint32_t session_count,
                     uint64_t ring_bytes) noexcept nogil
cdef void engine_close(EngineCore* core) noexcept nogil
cdef size_t engine_prefault(EngineCore* core) noexcept nogil
# Process one inbound SBE frame that arrived from `transport` (the Aeron session id of the client's
# publication; 0: an engine record); timestamp_ns becomes the transactTime of everything it produces and
# is the only clock the core reads. Appends routed frames to exec_out and outbound frames to md_out. CORE_OK, or CORE_ERR_NOMEM when an
# output buffer could not grow (the book is consistent; some of this frame's output is missing).
cdef int engine_on_frame(EngineCore* core, const uint8_t* frame, uint32_t length, uint32_t transport,
                         uint64_t timestamp_ns) noexcept nogil
# Inbound-framed records, already checked to be well framed; stops at the first error. With `latencies`,
# times each record (CLOCK_MONOTONIC ns) and then drops its output, adding its size to `outbound_bytes`,
# as a transport drains the buffers once it has offered the frames.
cdef int engine_on_records(EngineCore* core, const uint8_t* records, size_t length, size_t* consumed,
                           int64_t* latencies, size_t* outbound_bytes) noexcept nogil

# Lend `buf` a caller's buffer for one batch (the Engine writes the execution stream straight into the
# bytes object it returns). Should the batch outgrow it, the frames move to memory of the core's own.
cdef void outbuf_lend(OutBuf* buf, OutBuf* saved, uint8_t* data, size_t capacity) noexcept nogil
# Ends the loan. True: the frames are in the lent buffer, `buf` is as before the loan. False: they are
# in buf.data[0:buf.length], which is now the core's buffer.
cdef bint outbuf_unlend(OutBuf* buf, OutBuf* saved) noexcept nogil

# Introspection and snapshots (not on the hot path).
cdef int instrument_index(const EngineCore* core, uint32_t instrument_id) noexcept nogil
cdef uint32_t ids_find(const EngineCore* core, uint32_t session, uint64_t cl_ord_id) noexcept nogil
# Book snapshots in parts (market_data.pxi): start a cursor, then write parts 0..parts-1 in order.
cdef struct SnapshotCursor:
    uint32_t side           # BID / ASK being walked
    uint32_t level          # next level slot to write, 0: done
cdef uint32_t book_snapshot_levels(const EngineCore* core, uint32_t index) noexcept nogil
cdef size_t book_snapshot_part_length(uint32_t levels) noexcept nogil
cdef void book_snapshot_start(const EngineCore* core, uint32_t index, SnapshotCursor* cursor) noexcept nogil
# Order-level snapshots: every displayed order in priority order, in parts, as above.
cdef struct OrderCursor:
    uint32_t side
    uint32_t level
    uint32_t order          # next order slot to write, 0: done
cdef uint32_t order_snapshot_orders(const EngineCore* core, uint32_t index) noexcept nogil
cdef size_t order_snapshot_part_length(uint32_t orders) noexcept nogil
cdef void order_snapshot_start(const EngineCore* core, uint32_t index, OrderCursor* cursor) noexcept nogil
cdef size_t order_snapshot_part(const EngineCore* core, uint32_t index, OrderCursor* cursor, uint32_t part,
                                uint32_t parts, uint32_t per_part, uint8_t* out) noexcept nogil
cdef size_t book_snapshot_part(const EngineCore* core, uint32_t index, SnapshotCursor* cursor, uint32_t part,
                               uint32_t parts, uint32_t per_part, uint8_t* out) noexcept nogil
# Walking a side's levels (price_index.pxi): level slots, 0 past the end.
cdef uint32_t side_best(const BookSide* side) noexcept nogil
cdef uint32_t side_worst(const BookSide* side) noexcept nogil
cdef uint32_t side_worse(const BookSide* side, int64_t price) noexcept nogil
cdef uint32_t side_better(const BookSide* side, int64_t price) noexcept nogil
cdef uint32_t engine_restore_order(EngineCore* core, const Order* order) noexcept nogil
cdef uint32_t session_slot(const EngineCore* core, uint32_t session_id) noexcept nogil
cdef int ring_reserve(EngineCore* core, Ring* ring) noexcept nogil
cdef void ring_restore(Ring* ring, const uint8_t* frame, uint32_t length) noexcept nogil
cdef const uint8_t* ring_frame(const Ring* ring, uint64_t seq, uint32_t* length) noexcept nogil
cdef void transport_bind(EngineCore* core, uint32_t transport, uint32_t slot) noexcept nogil
# The one rule for a Negotiate's response channel, shared by the core and the service's publications.
cdef bint response_channel_ok(const uint8_t* p, uint32_t n) noexcept nogil
# Risk and reference data (risk.pxi): the account table sized for `capacity` (account, instrument) pairs
# with the configured limits; before any order. 0, or CORE_ERR_NOMEM.
cdef int risk_init(EngineCore* core, uint32_t capacity, const AccountLimits* limits, uint32_t count,
                   AccountLimits default_limits) noexcept nogil
cdef AccountEntry* risk_entry(EngineCore* core, uint32_t account, uint32_t instrument_index) noexcept nogil
