# Part of lob/core.pyx (included): mapped memory regions, output buffers, the order and level pools.

# ---------------------------------------------------------------------------------------------------
# Memory regions: anonymous mappings are zero-filled and become resident page by page as they are
# touched, so a pool sized for a million orders costs only what is used, unless engine_prefault faults
# it all in at once (the service does, so that no page fault lands on the message path). Large regions
# ask for huge pages: random access over tens of megabytes (id table, order pool) otherwise misses the
# TLB on nearly every lookup, and growing output buffers would fault every 4 KiB.

cdef inline size_t region_length(size_t length) noexcept nogil:
    return (length + PAGE - 1) & ~(<size_t>PAGE - 1)


cdef void* region_map(size_t length) noexcept nogil:
    cdef void* p = mmap(NULL, region_length(length), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if p == MAP_FAILED:
        return NULL
    if length >= HUGE_PAGE:
        madvise(p, region_length(length), MADV_HUGEPAGE)
    return p


cdef void* region_map_small_pages(size_t length) noexcept nogil:
    """A region that is written front to back over a long time (a retransmission ring): without huge
    pages, its first pass costs a 4 KiB page fault now and then instead of zeroing 2 MiB on the message
    that first reaches each huge page (milliseconds here, for every session's first messages)."""
    cdef void* p = mmap(NULL, region_length(length), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if p == MAP_FAILED:
        return NULL
    madvise(p, region_length(length), MADV_NOHUGEPAGE)
    return p


cdef extern from *:
    """
    #include <sys/mman.h>
    #ifndef MADV_POPULATE_WRITE
    #define MADV_POPULATE_WRITE 23
    #endif
    /* Fault a mapped region in, writable, leaving its contents as they are. */
    static size_t lob_region_prefault(void *p, size_t length, size_t page)
    {
        if (p == NULL || length == 0)
            return 0;
        if (madvise(p, length, MADV_POPULATE_WRITE) != 0)
        {
            volatile unsigned char *b = (volatile unsigned char *)p;
            for (size_t off = 0; off < length; off += page)
                b[off] = b[off];
        }
        return length;
    }
    """
    size_t lob_region_prefault(void* p, size_t length, size_t page) noexcept nogil


cdef size_t region_prefault(void* p, size_t length) noexcept nogil:
    return lob_region_prefault(p, region_length(length), PAGE)


cdef void region_unmap(void* p, size_t length) noexcept nogil:
    if p != NULL:
        munmap(p, region_length(length))


# ---------------------------------------------------------------------------------------------------
# Output buffers (page-multiple capacities, grown with mremap: no copy)

cdef int outbuf_init(OutBuf* buf, size_t capacity) noexcept nogil:
    buf.data = <uint8_t*>region_map(capacity)
    buf.length = 0
    buf.capacity = capacity if buf.data != NULL else 0
    return 0 if buf.data != NULL else -1


cdef int outbuf_grow(OutBuf* buf, size_t needed) noexcept nogil:
    cdef size_t capacity = region_length(buf.capacity if buf.capacity else OUTBUF_INITIAL)
    while capacity < needed:
        capacity *= 2
    cdef void* data
    if buf.borrowed:
        data = region_map(capacity)
        if data == NULL:
            return -1
        memcpy(data, buf.data, buf.length)
        buf.borrowed = False
    else:
        data = mremap(buf.data, buf.capacity, capacity, MREMAP_MAYMOVE)
        if data == MAP_FAILED:
            return -1
        if capacity >= HUGE_PAGE:
            madvise(data, capacity, MADV_HUGEPAGE)
    buf.data = <uint8_t*>data
    buf.capacity = capacity
    return 0


cdef void outbuf_free(OutBuf* buf) noexcept nogil:
    if not buf.borrowed:
        region_unmap(buf.data, buf.capacity)
    buf.data = NULL
    buf.length = 0
    buf.capacity = 0
    buf.borrowed = False


cdef void outbuf_lend(OutBuf* buf, OutBuf* saved, uint8_t* data, size_t capacity) noexcept nogil:
    saved[0] = buf[0]
    buf.data = data
    buf.length = 0
    buf.capacity = capacity
    buf.borrowed = True


cdef bint outbuf_unlend(OutBuf* buf, OutBuf* saved) noexcept nogil:
    if buf.borrowed:
        buf[0] = saved[0]
        return True
    outbuf_free(saved)
    return False


# Reserve one outbound-framed frame of `frame_length` bytes; returns where the SBE frame goes.
cdef inline uint8_t* outbuf_claim(EngineCore* core, OutBuf* buf, uint32_t frame_length) noexcept nogil:
    cdef size_t needed = buf.length + OUTBOUND_FRAME_HEADER_LENGTH + frame_length
    if needed > buf.capacity and outbuf_grow(buf, needed) != 0:
        core.error = CORE_ERR_NOMEM
        return core.scratch if frame_length <= SCRATCH_LENGTH else NULL
    cdef uint8_t* p = buf.data + buf.length
    store_u32le(p, frame_length)
    buf.length = needed
    return p + OUTBOUND_FRAME_HEADER_LENGTH


cdef inline uint8_t* header_write(uint8_t* p, uint16_t block_length, uint16_t template_id) noexcept nogil:
    messageHeader_set_blockLength(p, block_length)
    messageHeader_set_templateId(p, template_id)
    messageHeader_set_schemaId(p, SCHEMA_ID)
    messageHeader_set_version(p, SCHEMA_VERSION)
    return p + HEADER_LENGTH


# ---------------------------------------------------------------------------------------------------
# Order pool and level pool: struct arrays with a free list; never-used slots are handed out from
# `high_water` up so that untouched memory stays unmapped.

cdef inline uint32_t pool_acquire(OrderPool* pool) noexcept nogil:
    cdef uint32_t slot = pool.free_head
    if slot != 0:
        pool.free_head = pool.items[slot].next
    elif pool.high_water < pool.capacity:
        pool.high_water += 1
        slot = pool.high_water
    else:
        return 0
    pool.live += 1
    return slot


cdef inline void pool_release(OrderPool* pool, uint32_t slot) noexcept nogil:
    pool.accounts[pool.items[slot].risk_slot].open_orders -= 1
    pool.items[slot].next = pool.free_head
    pool.free_head = slot
    pool.live -= 1


cdef inline uint32_t level_acquire(LevelPool* pool) noexcept nogil:
    cdef uint32_t slot = pool.free_head
    if slot != 0:
        pool.free_head = pool.items[slot].head
    elif pool.high_water < pool.capacity:
        pool.high_water += 1
        slot = pool.high_water
    else:
        return 0
    return slot


cdef inline void level_release(LevelPool* pool, uint32_t slot) noexcept nogil:
    pool.items[slot].head = pool.free_head
    pool.free_head = slot
