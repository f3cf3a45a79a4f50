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
# Price index: one sorted array of level keys per side, best at the end

cdef inline int64_t side_key(uint32_t side_index, int64_t price) noexcept nogil:
    return price if side_index == BID else -price


# First position whose key is >= key. Activity is near the touch, so look there before bisecting.
cdef inline uint32_t side_search(const BookSide* side, int64_t key) noexcept nogil:
    cdef uint32_t lo = 0, hi = side.count, mid
    if hi == 0 or side.keys[hi - 1] < key:
        return hi
    if hi >= 2 and side.keys[hi - 2] < key:
        return hi - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if side.keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int side_reserve(BookSide* side, uint32_t extra) noexcept nogil:
    if side.count + extra <= side.capacity:
        return 0
    cdef uint32_t capacity = side.capacity if side.capacity else SIDE_INITIAL
    while capacity < side.count + extra:
        capacity *= 2
    cdef int64_t* keys = <int64_t*>realloc(side.keys, capacity * sizeof(int64_t))
    if keys == NULL:
        return -1
    side.keys = keys
    cdef uint32_t* levels = <uint32_t*>realloc(side.levels, capacity * sizeof(uint32_t))
    if levels == NULL:
        return -1
    side.levels = levels
    side.capacity = capacity
    return 0


cdef inline void side_insert(BookSide* side, uint32_t pos, int64_t key, uint32_t level) noexcept nogil:
    cdef uint32_t tail = side.count - pos
    if tail:
        memmove(&side.keys[pos + 1], &side.keys[pos], tail * sizeof(int64_t))
        memmove(&side.levels[pos + 1], &side.levels[pos], tail * sizeof(uint32_t))
    side.keys[pos] = key
    side.levels[pos] = level
    side.count += 1


cdef inline void side_erase(BookSide* side, uint32_t pos) noexcept nogil:
    cdef uint32_t tail = side.count - pos - 1
    if tail:
        memmove(&side.keys[pos], &side.keys[pos + 1], tail * sizeof(int64_t))
        memmove(&side.levels[pos], &side.levels[pos + 1], tail * sizeof(uint32_t))
    side.count -= 1
