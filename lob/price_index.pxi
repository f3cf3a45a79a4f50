# Part of lob/core.pyx (included): instruments by id, and each side's index of price levels.

# ---------------------------------------------------------------------------------------------------
# Instruments

cdef int instrument_index(const EngineCore* core, uint32_t instrument_id) noexcept nogil:
    if instrument_id == 0:
        return -1
    cdef uint32_t i = (instrument_id * 0x9E3779B1U) & core.instrument_mask
    while core.instrument_keys[i] != 0:
        if core.instrument_keys[i] == instrument_id:
            return core.instrument_values[i] - 1
        i = (i + 1) & core.instrument_mask
    return -1


# ---------------------------------------------------------------------------------------------------
# Price index: per side, a 64-ary radix tree over the tick index t = price / tick (a hierarchical bitmap
# of a tick ladder, allocated one 64-tick node at a time). A node's bit d says child[d] is non-empty;
# at the bottom child[d] is the level slot of tick t. The root covers t < 64**height and grows upwards
# when a price beyond it arrives, so any positive int64 price works and memory follows the levels,
# not the price range. Find, insert and remove cost one node per 6 bits of t (at most 11); the best
# level is cached; the next worse or better level is the nearest set bit below or above t's path.

cdef extern from *:
    int clz64 "__builtin_clzll"(uint64_t x) noexcept nogil
    int ctz64 "__builtin_ctzll"(uint64_t x) noexcept nogil


cdef inline int64_t side_key(uint32_t side_index, int64_t price) noexcept nogil:
    return price if side_index == BID else -price


cdef int index_pool_init(IndexPool* pool, uint32_t capacity, uint32_t limit) noexcept nogil:
    pool.items = <IndexNode*>region_map((<size_t>capacity + 1) * sizeof(IndexNode))
    pool.capacity = capacity if pool.items != NULL else 0
    pool.limit = limit
    pool.high_water = 0
    pool.free_head = 0
    pool.live = 0
    return 0 if pool.items != NULL else -1


cdef void index_pool_free(IndexPool* pool) noexcept nogil:
    region_unmap(pool.items, (<size_t>pool.capacity + 1) * sizeof(IndexNode))
    pool.items = NULL
    pool.capacity = 0


# Room for `nodes` more nodes, growing the pool (mremap: no copy, node slots stay valid) up to its limit.
cdef int index_pool_reserve(IndexPool* pool, uint32_t nodes) noexcept nogil:
    if pool.capacity - pool.live >= nodes:
        return 0
    cdef uint64_t capacity = pool.capacity if pool.capacity else INDEX_INITIAL
    while capacity - pool.live < nodes:
        capacity *= 2
    if capacity > pool.limit:
        capacity = pool.limit
        if capacity < <uint64_t>pool.live + nodes:
            return -1
    cdef size_t old_length = region_length((<size_t>pool.capacity + 1) * sizeof(IndexNode))
    cdef size_t length = region_length((<size_t>capacity + 1) * sizeof(IndexNode))
    cdef void* items = mremap(pool.items, old_length, length, MREMAP_MAYMOVE)
    if items == MAP_FAILED:
        return -1
    if length >= HUGE_PAGE:
        madvise(items, length, MADV_HUGEPAGE)
    pool.items = <IndexNode*>items
    pool.capacity = <uint32_t>capacity
    return 0


# Nodes come zeroed (fresh mapping, or cleared when released); the caller has reserved room.
cdef inline uint32_t index_node_acquire(IndexPool* pool) noexcept nogil:
    cdef uint32_t slot = pool.free_head
    if slot != 0:
        pool.free_head = pool.items[slot].child[0]
        pool.items[slot].child[0] = 0
    else:
        pool.high_water += 1
        slot = pool.high_water
    pool.live += 1
    return slot


cdef inline void index_node_release(IndexPool* pool, uint32_t slot) noexcept nogil:
    # a released node is empty (bits 0, every child 0) but for the free-list link
    pool.items[slot].child[0] = pool.free_head
    pool.free_head = slot
    pool.live -= 1


cdef inline int64_t side_price_key(const BookSide* side, int64_t price) noexcept nogil:
    return price if side.bid else -price


cdef inline uint64_t side_tick_index(const BookSide* side, int64_t price) noexcept nogil:
    # a 64-bit division costs tens of cycles; a tick of 1 is common and needs none
    return <uint64_t>price if side.tick == 1 else <uint64_t>(price // side.tick)


cdef inline bint index_covers(uint32_t height, uint64_t t) noexcept nogil:
    return height >= INDEX_MAX_HEIGHT or (t >> (6 * height)) == 0


# Room for `extra` new levels: each may add a path of new nodes and new roots above the old one.
cdef int side_reserve(BookSide* side, uint32_t extra) noexcept nogil:
    return index_pool_reserve(side.nodes, 2 * INDEX_MAX_HEIGHT * extra)


cdef inline uint32_t side_count(const BookSide* side) noexcept nogil:
    return side.count


cdef uint32_t side_best(const BookSide* side) noexcept nogil:
    return side.best


# The level slot at `price`, 0 when there is none.
cdef inline uint32_t side_find(const BookSide* side, int64_t price) noexcept nogil:
    cdef uint64_t t = side_tick_index(side, price)
    cdef uint32_t height = side.height, node = side.root
    cdef const IndexNode* items = side.nodes.items
    if height == 0 or not index_covers(height, t):
        return 0
    while height > 1 and node != 0:
        height -= 1
        node = items[node].child[(t >> (6 * height)) & 63]
    return items[node].child[t & 63] if node != 0 else 0


# Prefetch the bottom node where `price` is or would go: in a deep book it is the index's one likely
# cache miss (the few nodes above it stay cached).
cdef inline void side_prefetch(const BookSide* side, int64_t price) noexcept nogil:
    cdef uint64_t t = side_tick_index(side, price)
    cdef uint32_t height = side.height, node = side.root
    cdef const IndexNode* items = side.nodes.items
    if price <= 0 or height == 0 or not index_covers(height, t):
        return
    while height > 1 and node != 0:
        height -= 1
        node = items[node].child[(t >> (6 * height)) & 63]
    if node != 0:
        prefetch(&items[node].bits)
        prefetch(&items[node].child[t & 63])


# Below node `node` at `height` (1: a bottom node), the highest (`high`) or lowest tick's level slot;
# `t` gets the tick index, `base` holding the bits above this node's.
cdef inline uint32_t index_extreme(const IndexNode* items, uint32_t node, uint32_t height, uint64_t base,
                                   bint high, uint64_t* t) noexcept nogil:
    cdef uint32_t digit
    while True:
        digit = <uint32_t>(63 - clz64(items[node].bits)) if high else <uint32_t>ctz64(items[node].bits)
        base = (base << 6) | digit
        if height == 1:
            t[0] = base
            return items[node].child[digit]
        node = items[node].child[digit]
        height -= 1


# t's bits above a node at height h (shifting by 64 or more is undefined in C).
cdef inline uint64_t index_prefix(uint64_t t, uint32_t h) noexcept nogil:
    return 0 if h >= INDEX_MAX_HEIGHT else t >> (6 * h)


# The level slot of the nearest tick below t (`down`) or above it, t itself excluded (it need not be in
# the index); 0 when there is none. `found` gets its tick index.
cdef uint32_t index_neighbour(const BookSide* side, uint64_t t, bint down, uint64_t* found) noexcept nogil:
    cdef const IndexNode* items = side.nodes.items
    cdef uint32_t height = side.height
    cdef uint32_t path[INDEX_MAX_HEIGHT]
    cdef uint32_t node = side.root, depth = 0, h, digit
    cdef uint64_t bits
    if height == 0:
        return 0
    if not index_covers(height, t):
        return index_extreme(items, node, height, 0, True, found) if down else 0
    # path[k]: the node at height - k on t's path, as far as the path exists
    while True:
        path[depth] = node
        depth += 1
        h = height - depth + 1
        if h == 1:
            break
        node = items[node].child[(t >> (6 * (h - 1))) & 63]
        if node == 0:
            break
    while depth > 0:
        depth -= 1
        h = height - depth
        node = path[depth]
        digit = <uint32_t>((t >> (6 * (h - 1))) & 63)
        bits = items[node].bits
        bits = bits & ((1ULL << digit) - 1) if down else bits & ~((2ULL << digit) - 1)
        if bits:
            digit = <uint32_t>(63 - clz64(bits)) if down else <uint32_t>ctz64(bits)
            if h == 1:
                found[0] = (t & ~63ULL) | digit
                return items[node].child[digit]
            # the bits of t above this node, then the digit taken here
            return index_extreme(items, items[node].child[digit], h - 1,
                                 (index_prefix(t, h) << 6) | digit, down, found)
    return 0


# The next worse level than `price` (which need not be in the index), 0 when there is none.
cdef uint32_t side_worse(const BookSide* side, int64_t price) noexcept nogil:
    cdef uint64_t t
    return index_neighbour(side, side_tick_index(side, price), side.bid, &t)


cdef uint32_t side_better(const BookSide* side, int64_t price) noexcept nogil:
    cdef uint64_t t
    return index_neighbour(side, side_tick_index(side, price), not side.bid, &t)


cdef uint32_t side_worst(const BookSide* side) noexcept nogil:
    cdef uint64_t t
    if side.height == 0:
        return 0
    return index_extreme(side.nodes.items, side.root, side.height, 0, not side.bid, &t)


# Adds level `level` at `price`, which is not in the index; side_reserve has made room.
cdef void side_insert(BookSide* side, int64_t price, uint32_t level) noexcept nogil:
    cdef IndexPool* pool = side.nodes
    cdef uint64_t t = side_tick_index(side, price)
    cdef uint32_t node, child, digit, height
    if side.height == 0:
        # an empty root can start as high as t needs
        side.root = index_node_acquire(pool)
        side.height = 1
        while not index_covers(side.height, t):
            side.height += 1
    while not index_covers(side.height, t):
        node = index_node_acquire(pool)
        pool.items[node].child[0] = side.root
        pool.items[node].bits = 1
        side.root = node
        side.height += 1
    node = side.root
    height = side.height
    while height > 1:
        height -= 1
        digit = <uint32_t>((t >> (6 * height)) & 63)
        child = pool.items[node].child[digit]
        if child == 0:
            child = index_node_acquire(pool)
            pool.items[node].child[digit] = child
            pool.items[node].bits |= 1ULL << digit
        node = child
    digit = <uint32_t>(t & 63)
    pool.items[node].child[digit] = level
    pool.items[node].bits |= 1ULL << digit
    side.count += 1
    cdef int64_t key = side_price_key(side, price)
    if side.best == 0 or key > side.best_key:
        side.best = level
        side.best_key = key


# Removes the level at `price`, which is in the index.
cdef void side_remove(BookSide* side, int64_t price) noexcept nogil:
    cdef IndexPool* pool = side.nodes
    cdef IndexNode* items = pool.items
    cdef uint64_t t = side_tick_index(side, price)
    cdef uint32_t path[INDEX_MAX_HEIGHT]
    cdef uint32_t node = side.root, height = side.height, depth = 0, digit
    while height > 1:
        path[depth] = node
        depth += 1
        height -= 1
        node = items[node].child[(t >> (6 * height)) & 63]
    # from the bottom up: clear t's bit, and release each node it leaves empty
    height = 1
    while True:
        digit = <uint32_t>((t >> (6 * (height - 1))) & 63)
        items[node].child[digit] = 0
        items[node].bits &= ~(1ULL << digit)
        if items[node].bits != 0:
            break
        index_node_release(pool, node)
        if depth == 0:
            side.root = 0
            side.height = 0
            break
        depth -= 1
        node = path[depth]
        height += 1
    side.count -= 1
    cdef uint64_t best_t
    if side.best_key == side_price_key(side, price):
        side.best = index_neighbour(side, t, side.bid, &best_t)
        if side.best != 0:
            side.best_key = side_price_key(side, <int64_t>best_t * side.tick)
