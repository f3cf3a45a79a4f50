# Part of lob/core.pyx (included): the id table, (session, clOrdId) -> order slot.

# ---------------------------------------------------------------------------------------------------
# Id table: (session, clOrdId) -> order slot

cdef inline uint64_t ids_hash(uint32_t session, uint64_t cl_ord_id) noexcept nogil:
    cdef uint64_t h = cl_ord_id ^ (<uint64_t>session * 0x9E3779B97F4A7C15ULL)
    h ^= h >> 33
    h *= 0xFF51AFD7ED558CCDULL
    h ^= h >> 33
    return h


cdef uint32_t ids_find(const EngineCore* core, uint32_t session, uint64_t cl_ord_id) noexcept nogil:
    cdef const IdTable* ids = &core.ids
    cdef uint32_t tag = <uint32_t>ids_hash(session, cl_ord_id)
    cdef uint64_t i = tag & ids.mask
    cdef const IdEntry* e
    cdef const Order* o
    while True:
        e = &ids.entries[i]
        if e.slot == 0:
            return 0
        if e.tag == tag:
            o = &core.pool.items[e.slot]
            if o.cl_ord_id == cl_ord_id and o.session == session:
                return e.slot
        i = (i + 1) & ids.mask


# The slot of the first entry whose tag matches, without reading any order: a hint for prefetching.
cdef inline uint32_t ids_guess(const IdTable* ids, uint32_t session, uint64_t cl_ord_id) noexcept nogil:
    cdef uint32_t tag = <uint32_t>ids_hash(session, cl_ord_id)
    cdef uint64_t i = tag & ids.mask
    while ids.entries[i].slot != 0 and ids.entries[i].tag != tag:
        i = (i + 1) & ids.mask
    return ids.entries[i].slot


# The key must be absent; the table is at most half full, so a free entry exists.
cdef inline void ids_insert(IdTable* ids, uint32_t session, uint64_t cl_ord_id, uint32_t slot) noexcept nogil:
    cdef uint32_t tag = <uint32_t>ids_hash(session, cl_ord_id)
    cdef uint64_t i = tag & ids.mask
    while ids.entries[i].slot != 0:
        i = (i + 1) & ids.mask
    ids.entries[i].tag = tag
    ids.entries[i].slot = slot


# Removes the entry of `slot`, whose key is (session, cl_ord_id). Backward-shift delete: no tombstones,
# so probe lengths do not grow with churn.
cdef void ids_remove(IdTable* ids, uint32_t session, uint64_t cl_ord_id, uint32_t slot) noexcept nogil:
    cdef uint64_t mask = ids.mask
    cdef uint64_t i = <uint32_t>ids_hash(session, cl_ord_id) & mask
    cdef uint64_t j, home
    cdef IdEntry* e = ids.entries
    while e[i].slot != slot:
        if e[i].slot == 0:
            return
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        if e[j].slot == 0:
            break
        home = e[j].tag & mask
        # e[j] may move back to the hole at i only if its home is not cyclically within (i, j].
        if (i <= j and (home <= i or home > j)) or (i > j and home <= i and home > j):
            e[i] = e[j]
            i = j
    e[i].slot = 0
