"""The inbound journal: a segmented, memory-mapped write-ahead log of every inbound frame.

The record layout is in journal.pxd. Writing is `nogil` C (the engine loop appends each frame before
processing it and calls `journal_commit` before publishing the effects of a poll batch), with a helper
thread per writer that maps pages ahead of it and, for the batch policy, syncs; reading, recovery of a
torn tail and the Python API are here too.
"""
import os

from libc.errno cimport EBADF, EFBIG, EIO, errno
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdio cimport rename, snprintf
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset, strlen, strncpy
from posix.fcntl cimport O_CREAT, O_RDWR, O_TRUNC, open as c_open
from posix.mman cimport MAP_FAILED, MAP_SHARED, MS_SYNC, PROT_READ, PROT_WRITE, mmap, msync, munmap
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from posix.unistd cimport close as c_close, ftruncate

cdef extern from "<pthread.h>" nogil:
    int pthread_create(pthread_t* thread, const void* attr, void* (*start)(void*) noexcept nogil, void* arg)
    int pthread_join(pthread_t thread, void** result)
    int pthread_mutex_init(pthread_mutex_t* mutex, const void* attr)
    int pthread_mutex_destroy(pthread_mutex_t* mutex)
    int pthread_mutex_lock(pthread_mutex_t* mutex)
    int pthread_mutex_unlock(pthread_mutex_t* mutex)
    int pthread_cond_init(pthread_cond_t* cond, const void* attr)
    int pthread_cond_destroy(pthread_cond_t* cond)
    int pthread_cond_wait(pthread_cond_t* cond, pthread_mutex_t* mutex)
    ctypedef struct pthread_condattr_t:
        pass
    int pthread_condattr_init(pthread_condattr_t* attr)
    int pthread_condattr_setclock(pthread_condattr_t* attr, int clock)
    int pthread_cond_timedwait(pthread_cond_t* cond, pthread_mutex_t* mutex, const timespec* abstime)
    int pthread_cond_signal(pthread_cond_t* cond)
    int pthread_cond_broadcast(pthread_cond_t* cond)

cdef extern from *:
    """
    #include <stdint.h>
    #include <stddef.h>
    #include <string.h>

    static uint32_t lob_crc32c_table[256];
    static int lob_crc32c_hw = -1;

    static void lob_crc32c_init(void) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            lob_crc32c_table[i] = c;
        }
    #if defined(__x86_64__)
        __builtin_cpu_init();
        lob_crc32c_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    #else
        lob_crc32c_hw = 0;
    #endif
    }

    #if defined(__x86_64__)
    __attribute__((target("sse4.2")))
    static uint32_t lob_crc32c_sse42(uint32_t crc, const uint8_t *p, size_t n) {
        uint64_t c = crc;
        while (n >= 8) { uint64_t v; memcpy(&v, p, 8); c = __builtin_ia32_crc32di(c, v); p += 8; n -= 8; }
        uint32_t c32 = (uint32_t)c;
        while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
        return c32;
    }
    #endif

    /* CRC-32C (Castagnoli) as in iSCSI: initial and final XOR with 0xFFFFFFFF. */
    static uint32_t lob_crc32c(uint32_t crc, const uint8_t *p, size_t n) {
        crc = ~crc;
    #if defined(__x86_64__)
        if (lob_crc32c_hw == 1) return ~lob_crc32c_sse42(crc, p, n);
    #endif
        while (n--) crc = lob_crc32c_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
        return ~crc;
    }

    static inline uint32_t lob_load_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
    static inline uint64_t lob_load_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
    static inline void lob_store_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
    static inline void lob_store_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
    static inline void lob_release_store_u32(uint8_t *p, uint32_t v) {
        __atomic_store_n((uint32_t *)p, v, __ATOMIC_RELEASE);
    }
    """
    void lob_crc32c_init() noexcept nogil
    uint32_t lob_crc32c(uint32_t crc, const uint8_t* p, size_t n) noexcept nogil
    uint32_t lob_load_u32(const uint8_t* p) noexcept nogil
    uint64_t lob_load_u64(const uint8_t* p) noexcept nogil
    void lob_store_u32(uint8_t* p, uint32_t v) noexcept nogil
    void lob_store_u64(uint8_t* p, uint64_t v) noexcept nogil
    void lob_release_store_u32(uint8_t* p, uint32_t v) noexcept nogil

lob_crc32c_init()

MAGIC = b"LOBJRNL\x00"
POLICIES = {"none": POLICY_NONE, "batch": POLICY_BATCH, "every": POLICY_EVERY}
SEGMENT_PREFIX = "journal-"
SEGMENT_SUFFIX = ".seg"
MIN_SEGMENT_SIZE = 1 << 20
cdef enum:
    PAGE = 4096
    PREFAULT_CHUNK = 2 << 20        # the prefaulter maps this much ahead at a time ...
    PREFAULT_AHEAD = 16 << 20       # ... keeping up to this much mapped ahead of the writer

cdef extern from "<sched.h>" nogil:
    cdef struct sched_param:
        int sched_priority
    int SCHED_BATCH
    int sched_setscheduler(int pid, int policy, const sched_param* param)

cdef extern from "<sys/mman.h>" nogil:
    int MADV_POPULATE_WRITE
    int MADV_DONTNEED
    int MADV_RANDOM
    int madvise(void* addr, size_t length, int advice)


class JournalError(Exception):
    """A journal cannot be written or read."""


class JournalCorruptError(JournalError):
    """A record failed its checksum somewhere other than the torn tail of the newest segment."""

    def __init__(self, path, offset, why):
        super().__init__(f"{path}: corrupt journal record at offset {offset}: {why}")
        self.path = path
        self.offset = offset


cdef uint32_t crc32c(uint32_t crc, const uint8_t* data, size_t length) noexcept nogil:
    return lob_crc32c(crc, data, length)


def crc32c_of(data, uint32_t crc=0):
    """CRC-32C of a bytes-like object (for tools and tests)."""
    cdef const uint8_t[::1] view = memoryview(data).cast("B")
    if view.shape[0] == 0:
        return lob_crc32c(crc, NULL, 0)
    return lob_crc32c(crc, &view[0], view.shape[0])


cdef size_t journal_record_length(uint32_t frame_length) noexcept nogil:
    return (JOURNAL_RECORD_HEADER_LENGTH + frame_length + 7) & ~(<size_t>7)


cdef inline uint64_t monotonic_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <uint64_t>ts.tv_sec * 1000000000 + <uint64_t>ts.tv_nsec


cdef void segment_path(const Journal* j, uint64_t first_seq, char* out, size_t size) noexcept nogil:
    snprintf(out, size, "%s/journal-%020llu.seg", j.directory, <unsigned long long>first_seq)


cdef int segment_map(Journal* j, const char* path, bint create) noexcept nogil:
    cdef int flags = O_RDWR | (O_CREAT | O_TRUNC if create else 0)
    cdef int fd = c_open(path, flags, 0o644)
    if fd < 0:
        return -1
    if create and ftruncate(fd, j.capacity) != 0:
        c_close(fd)
        return -1
    cdef void* addr = mmap(NULL, j.capacity, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
    if addr == MAP_FAILED:
        c_close(fd)
        return -1
    # No readahead: a fault maps single pages, never a large folio, so that syncing the pages behind
    # the writer cannot write-protect the ones it is filling.
    madvise(addr, j.capacity, MADV_RANDOM)
    j.fd = fd
    j.map = <uint8_t*>addr
    j.prefaulted = 0
    return 0


cdef int segment_create(Journal* j) noexcept nogil:
    """A new segment for j.next_seq. It is made under a temporary name and renamed once its header is
    written, so that a crash never leaves a segment without one."""
    cdef char path[3200]
    cdef char temporary[3300]
    segment_path(j, j.next_seq, path, sizeof(path))
    snprintf(temporary, sizeof(temporary), "%s.tmp", path)
    if segment_map(j, temporary, True) != 0:
        return -1
    memcpy(j.map, b"LOBJRNL\x00", 8)
    lob_store_u32(j.map + 8, JOURNAL_VERSION)
    lob_store_u32(j.map + 12, JOURNAL_FILE_HEADER_LENGTH)
    lob_store_u64(j.map + 16, j.next_seq)
    lob_store_u64(j.map + 24, j.capacity)
    if rename(temporary, path) != 0:
        munmap(j.map, j.capacity)
        j.map = NULL
        c_close(j.fd)
        j.fd = -1
        return -1
    j.segment_first_seq = j.next_seq
    j.position = JOURNAL_FILE_HEADER_LENGTH
    j.synced_position = 0
    return 0


cdef int segment_close(Journal* j, bint shrink) noexcept nogil:
    """Sync (unless the policy is none), unmap, and shrink a finished segment to its written length.

    With helper threads, the caller holds them off (helper_pause) around this."""
    cdef int rc = 0
    if j.map == NULL:
        return 0
    if j.policy != POLICY_NONE and sync_now(j) != 0:
        rc = -1
    munmap(j.map, j.capacity)
    j.map = NULL
    if shrink and ftruncate(j.fd, j.position) != 0:
        rc = -1
    c_close(j.fd)
    j.fd = -1
    return rc


cdef int sync_now(Journal* j) noexcept nogil:
    """msync everything appended to the current segment, on this thread."""
    cdef uint64_t start = j.synced_position & ~(<uint64_t>(PAGE - 1))
    if j.position > j.synced_position:
        if msync(j.map + start, j.position - start, MS_SYNC) != 0:
            j.error = errno
            return -1
        j.synced_position = j.position
        if j.policy != POLICY_BATCH:
            j.syncs += 1
    j.pending = 0
    return 0


# Helper threads do the journal's slow work off the matching thread:
# - the prefaulter keeps the pages ahead of the writer mapped writable (MADV_POPULATE_WRITE), so that
#   appending is a copy into memory and never a page fault (a fault on a fresh page of a file costs
#   microseconds);
# - batch policy: at each group commit the writer hands the syncer the end of the records and goes on.
#   The syncer msyncs what it was handed, at most once per batch interval (more often only when more
#   than half of `max_lag` is waiting), so under load one sync covers every group since the last. The
#   writer waits only when more than `max_lag` bytes are unsynced (the disk is slower than the input).
# Around a segment roll (which unmaps the segment) and an explicit sync the writer holds them off.
# They are two threads because a sync can take tens of milliseconds, longer than the writer needs to
# run through the prefaulted pages.

cdef bint helper_pause(Journal* j) noexcept nogil:
    """With helpers: lock them out and wait for their current steps to end. True: call helper_resume."""
    if j.helper_state == 0:
        return False
    pthread_mutex_lock(&j.lock)
    while j.prefault_busy or j.sync_busy:
        pthread_cond_wait(&j.done, &j.lock)
    return True


cdef void helper_resume(Journal* j) noexcept nogil:
    pthread_cond_signal(&j.prefault_wake)
    pthread_cond_signal(&j.sync_wake)
    pthread_mutex_unlock(&j.lock)


cdef inline bint prefault_wanted(const Journal* j, uint64_t ahead) noexcept nogil:
    return j.map != NULL and j.prefaulted < j.capacity and j.prefaulted < j.position + ahead


cdef void background(Journal* j) noexcept nogil:
    """Helpers never preempt the matching thread when woken (measured: with the default scheduling
    policy a batch-policy run took ten times more involuntary context switches on the matching thread)."""
    cdef sched_param param
    param.sched_priority = 0
    sched_setscheduler(0, SCHED_BATCH, &param)


cdef void* prefaulter_main(void* arg) noexcept nogil:
    cdef Journal* j = <Journal*>arg
    cdef uint64_t start, length
    cdef uint8_t* base
    cdef int rc
    background(j)
    pthread_mutex_lock(&j.lock)
    while j.helper_state == 1:
        if prefault_wanted(j, PREFAULT_AHEAD):
            start = (j.prefaulted if j.prefaulted > j.position else j.position) & ~(<uint64_t>(PAGE - 1))
            length = min(<uint64_t>PREFAULT_CHUNK, j.capacity - start)
            base = j.map
            j.prefault_busy = 1
            pthread_mutex_unlock(&j.lock)
            rc = madvise(base + start, length, MADV_POPULATE_WRITE)
            pthread_mutex_lock(&j.lock)
            j.prefault_busy = 0
            j.prefaulted = j.capacity if rc != 0 else start + length  # no prefaulting: the writer faults
            pthread_cond_broadcast(&j.done)
        else:
            pthread_cond_wait(&j.prefault_wake, &j.lock)
    pthread_mutex_unlock(&j.lock)
    return NULL


cdef inline void deadline_ts(timespec* ts, uint64_t ns) noexcept nogil:
    ts.tv_sec = ns // 1000000000
    ts.tv_nsec = ns % 1000000000


cdef void* syncer_main(void* arg) noexcept nogil:
    cdef Journal* j = <Journal*>arg
    cdef timespec ts
    cdef uint64_t start, target
    cdef uint8_t* base
    cdef int rc, failure
    cdef bint whole
    background(j)
    pthread_mutex_lock(&j.lock)
    while j.helper_state == 1:
        if (j.sync_target > j.synced_position and j.sync_error == 0
                and monotonic_ns() < j.last_sync_started + j.batch_ns
                and j.position - j.synced_position <= j.max_lag / 2):
            # at most one sync per batch interval, unless the lag grows
            deadline_ts(&ts, j.last_sync_started + j.batch_ns)
            pthread_cond_timedwait(&j.sync_wake, &j.lock, &ts)
        elif j.sync_target > j.synced_position and j.sync_error == 0:
            j.last_sync_started = monotonic_ns()
            # Whole pages only, while the writer is past them: the writer never touches them again, so
            # they are first unmapped from it, one TLB flush for the range; written back while still
            # mapped, every page would be write-protected under the writer with a TLB-flush interrupt
            # of its CPU each (measured: most of what the batch policy cost the matching thread). A
            # writer that has not filled a page since the last sync gets its partial page synced as is.
            target = j.sync_target & ~(<uint64_t>(PAGE - 1))
            whole = target > j.synced_position
            if not whole:
                target = j.sync_target
            start = j.synced_position & ~(<uint64_t>(PAGE - 1))
            base = j.map
            j.sync_busy = 1
            pthread_mutex_unlock(&j.lock)
            if whole:
                madvise(base + start, target - start, MADV_DONTNEED)
            rc = msync(base + start, target - start, MS_SYNC)
            failure = errno if rc != 0 else 0
            pthread_mutex_lock(&j.lock)
            j.sync_busy = 0
            if failure != 0:
                j.sync_error = failure
            elif target > j.synced_position:
                j.synced_position = target
            pthread_cond_broadcast(&j.done)
        else:
            pthread_cond_wait(&j.sync_wake, &j.lock)
    pthread_mutex_unlock(&j.lock)
    return NULL


cdef inline void helper_nudge(Journal* j) noexcept nogil:
    """Wake the prefaulter when the writer gets halfway through the prefaulted pages (read unlocked: a hint)."""
    if j.helper_state == 1 and prefault_wanted(j, PREFAULT_AHEAD / 2):
        pthread_mutex_lock(&j.lock)
        pthread_cond_signal(&j.prefault_wake)
        pthread_mutex_unlock(&j.lock)


cdef int sync_request(Journal* j) noexcept nogil:
    """A batch group commit: hand everything appended so far to the syncer."""
    cdef int failure
    pthread_mutex_lock(&j.lock)
    j.sync_target = j.position
    j.syncs += 1
    pthread_cond_signal(&j.sync_wake)
    while j.sync_error == 0 and j.position - j.synced_position > j.max_lag:
        pthread_cond_wait(&j.done, &j.lock)
    failure = j.sync_error
    pthread_mutex_unlock(&j.lock)
    j.pending = 0
    if failure != 0:
        j.error = failure
        return -1
    return 0


cdef int helper_start(Journal* j) noexcept nogil:
    if pthread_mutex_init(&j.lock, NULL) != 0:
        return -1
    cdef pthread_condattr_t monotonic
    pthread_condattr_init(&monotonic)
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC)
    if (pthread_cond_init(&j.prefault_wake, NULL) != 0 or pthread_cond_init(&j.sync_wake, &monotonic) != 0
            or pthread_cond_init(&j.done, NULL) != 0):
        return -1
    j.sync_target = j.synced_position
    j.helper_state = 1
    if pthread_create(&j.prefaulter, NULL, prefaulter_main, j) != 0:
        j.helper_state = 0
        return -1
    j.helpers = 1
    if j.policy == POLICY_BATCH:
        if pthread_create(&j.syncer, NULL, syncer_main, j) != 0:
            helper_stop(j)
            return -1
        j.helpers = 2
    return 0


cdef void helper_stop(Journal* j) noexcept nogil:
    if j.helper_state != 1:
        return
    pthread_mutex_lock(&j.lock)
    j.helper_state = 2
    pthread_cond_broadcast(&j.prefault_wake)
    pthread_cond_broadcast(&j.sync_wake)
    pthread_mutex_unlock(&j.lock)
    pthread_join(j.prefaulter, NULL)
    if j.helpers == 2:
        pthread_join(j.syncer, NULL)
    j.helpers = 0
    j.helper_state = 0
    if j.sync_error != 0 and j.error == 0:
        j.error = j.sync_error
    pthread_cond_destroy(&j.prefault_wake)
    pthread_cond_destroy(&j.sync_wake)
    pthread_cond_destroy(&j.done)
    pthread_mutex_destroy(&j.lock)


cdef int journal_sync(Journal* j) noexcept nogil:
    """Sync everything appended so far before returning."""
    # Only the batch policy's helper syncs too; prefaulting may go on meanwhile.
    cdef bint paused = helper_pause(j) if j.policy == POLICY_BATCH else False
    cdef int rc = -1
    if j.sync_error != 0:
        j.error = j.sync_error
    else:
        rc = sync_now(j)
    if paused:
        helper_resume(j)
    return rc


cdef int journal_append(Journal* j, uint32_t session, uint64_t timestamp_ns,
                        const uint8_t* frame, uint32_t length) noexcept nogil:
    """Append one record; returns 1, or 0 on failure (j.error says why)."""
    cdef size_t record_length = journal_record_length(length)
    cdef bint paused
    cdef int rc
    if j.error != 0:
        return 0
    if j.map == NULL:
        j.error = EBADF  # closed
        return 0
    if j.position + record_length > j.capacity:
        if record_length + JOURNAL_FILE_HEADER_LENGTH > j.capacity:
            j.error = EFBIG  # a frame larger than a segment
            return 0
        paused = helper_pause(j)
        rc = segment_close(j, True)
        if rc == 0:
            rc = segment_create(j)
        j.sync_target = 0
        if paused:
            helper_resume(j)
        if rc != 0:
            j.error = errno if errno != 0 else EIO
            return 0
    cdef uint8_t* r = j.map + j.position
    lob_store_u64(r + 8, j.next_seq)
    lob_store_u64(r + 16, timestamp_ns)
    lob_store_u32(r + 24, session)
    lob_store_u32(r + 28, 0)
    memcpy(r + JOURNAL_RECORD_HEADER_LENGTH, frame, length)
    memset(r + JOURNAL_RECORD_HEADER_LENGTH + length, 0, record_length - JOURNAL_RECORD_HEADER_LENGTH - length)
    lob_store_u32(r + 4, lob_crc32c(0, r + 8, JOURNAL_RECORD_HEADER_LENGTH - 8 + length))
    # The length goes in last: a reader that sees it non-zero sees the whole record.
    lob_release_store_u32(r, length)
    j.position += record_length
    j.pending += 1
    j.next_seq += 1
    return 1


cdef int journal_commit(Journal* j, uint64_t now_ns) noexcept nogil:
    """Called before the effects of the records appended so far are published."""
    helper_nudge(j)
    if j.pending == 0:
        return 0
    if j.policy == POLICY_EVERY:
        return journal_sync(j)
    if j.policy == POLICY_BATCH:
        if j.pending >= j.batch_records or now_ns - j.last_sync_ns >= j.batch_ns:
            j.last_sync_ns = now_ns
            return sync_request(j) if j.helper_state == 1 else journal_sync(j)
    return 0


cdef struct Scan:
    uint64_t end          # offset of the first byte after the last valid record
    uint64_t records
    uint64_t first_seq
    uint64_t last_seq
    int64_t bad_offset    # -1, or the offset of a record that failed its checks
    int bad_why           # 1 checksum, 2 runs past the end, 3 sequence gap


cdef Scan scan_records(const uint8_t* base, uint64_t size, uint64_t expect_seq) noexcept nogil:
    cdef Scan s
    s.end = JOURNAL_FILE_HEADER_LENGTH
    s.records = 0
    s.first_seq = 0
    s.last_seq = 0
    s.bad_offset = -1
    s.bad_why = 0
    cdef uint64_t offset = JOURNAL_FILE_HEADER_LENGTH
    cdef uint32_t length
    cdef uint64_t seq
    cdef size_t record_length
    while offset + JOURNAL_RECORD_HEADER_LENGTH <= size:
        length = lob_load_u32(base + offset)
        if length == 0:
            break
        record_length = journal_record_length(length)
        if offset + record_length > size:
            s.bad_offset = offset
            s.bad_why = 2
            break
        if lob_crc32c(0, base + offset + 8, JOURNAL_RECORD_HEADER_LENGTH - 8 + length) != lob_load_u32(base + offset + 4):
            s.bad_offset = offset
            s.bad_why = 1
            break
        seq = lob_load_u64(base + offset + 8)
        if seq != expect_seq:
            s.bad_offset = offset
            s.bad_why = 3
            break
        if s.records == 0:
            s.first_seq = seq
        s.last_seq = seq
        s.records += 1
        expect_seq += 1
        offset += record_length
    s.end = offset
    return s


cdef bint all_zero(const uint8_t* p, uint64_t n) noexcept nogil:
    cdef uint64_t i
    for i in range(n):
        if p[i] != 0:
            return False
    return True


BAD_WHY = {1: "checksum mismatch", 2: "record runs past the end of the segment", 3: "sequence gap"}


def list_segments(directory):
    """Segment paths of a journal directory, oldest first."""
    if not os.path.isdir(directory):
        return []
    names = sorted(n for n in os.listdir(directory) if n.startswith(SEGMENT_PREFIX) and n.endswith(SEGMENT_SUFFIX))
    return [os.path.join(directory, n) for n in names]


def segment_first_seq(path):
    return int(os.path.basename(path)[len(SEGMENT_PREFIX):-len(SEGMENT_SUFFIX)])


cdef class SegmentView:
    """A read-only mapping of one segment file, checked record by record."""

    def __cinit__(self, str path):
        import mmap as mmap_module
        self.path = path
        self.size = os.path.getsize(path)
        if self.size < JOURNAL_FILE_HEADER_LENGTH:
            raise JournalCorruptError(path, 0, "file shorter than the segment header")
        with open(path, "rb") as f:
            self._mmap = mmap_module.mmap(f.fileno(), 0, access=mmap_module.ACCESS_READ)
        self._view = memoryview(self._mmap)
        cdef const uint8_t[::1] v = self._view
        self.base = &v[0]
        if bytes(self._view[:8]) != MAGIC:
            raise JournalCorruptError(path, 0, "not a journal segment (bad magic)")
        if lob_load_u32(self.base + 8) != JOURNAL_VERSION:
            raise JournalCorruptError(path, 8, f"unsupported journal version {lob_load_u32(self.base + 8)}")
        self.first_seq = lob_load_u64(self.base + 16)

    def close(self):
        self._view.release()
        self._mmap.close()

    def records(self, uint64_t end):
        """Yield (seq, timestamp_ns, session, frame bytes) for records before offset `end`."""
        cdef uint64_t offset = JOURNAL_FILE_HEADER_LENGTH
        cdef uint32_t length
        while offset < end:
            length = lob_load_u32(self.base + offset)
            yield (lob_load_u64(self.base + offset + 8), lob_load_u64(self.base + offset + 16),
                   lob_load_u32(self.base + offset + 24),
                   bytes(self._view[offset + JOURNAL_RECORD_HEADER_LENGTH:offset + JOURNAL_RECORD_HEADER_LENGTH + length]))
            offset += journal_record_length(length)


def check_segment(SegmentView segment, bint is_last, uint64_t expect_seq):
    """Validate a segment. Returns (end offset, records, last seq, torn offset or -1).

    A bad record is a torn tail, not corruption, only in the newest segment and only when nothing but
    zeros follows it (a write cut short by a crash or power loss); anything else raises.
    """
    if segment.first_seq != expect_seq:
        raise JournalCorruptError(segment.path, 16, f"segment starts at seq {segment.first_seq}, expected {expect_seq}")
    cdef Scan s = scan_records(segment.base, segment.size, segment.first_seq)
    cdef uint64_t after
    cdef uint32_t length
    if s.bad_offset >= 0:
        length = lob_load_u32(segment.base + s.bad_offset)
        after = min(<uint64_t>s.bad_offset + journal_record_length(length), segment.size)
        if not (is_last and s.bad_why != 3 and all_zero(segment.base + after, segment.size - after)):
            raise JournalCorruptError(segment.path, s.bad_offset, BAD_WHY[s.bad_why])
        return s.end, s.records, (s.last_seq if s.records else expect_seq - 1), s.bad_offset
    if not is_last and not all_zero(segment.base + s.end, segment.size - s.end):
        raise JournalCorruptError(segment.path, s.end, "data after the end of the records")
    return s.end, s.records, (s.last_seq if s.records else expect_seq - 1), -1


def read_journal(directory, uint64_t from_seq=1):
    """Yield (seq, timestamp_ns, session, frame) of every valid record with seq >= from_seq.

    Read-only: a torn tail is skipped (the writer truncates it when it reopens the journal); a corrupt
    record raises JournalCorruptError naming the file and offset.
    """
    paths = list_segments(directory)
    expect = segment_first_seq(paths[0]) if paths else 1
    for index, path in enumerate(paths):
        segment = SegmentView(path)
        try:
            end, count, last, torn = check_segment(segment, index == len(paths) - 1, expect)
            if last >= from_seq:
                for record in segment.records(end):
                    if record[0] >= from_seq:
                        yield record
            expect = last + 1
        finally:
            segment.close()


cdef class JournalWriter:
    """Appends inbound frames to a journal directory; reopening continues after the last valid record.

    policy:
    - "none": records are in the page cache as soon as they are appended: they survive a crash of the
      process, not a power loss or a crash of the OS.
    - "batch" (group commit): a commit after `batch_records` records or `batch_us` microseconds,
      whichever comes first, hands everything appended to a syncer thread, which msyncs it (at most
      once per `batch_us`) while matching goes on. A power loss loses what was not synced yet: normally
      the input since the start of the last completed sync (a batch interval or two, plus the time a
      sync takes), never more than `batch_lag_bytes`, as commits wait for the disk beyond that. Effects
      of unsynced records may already be published.
    - "every": every commit msyncs before it returns, that is before the effects of its records are
      published: a power loss loses nothing that was published.
    first_seq: the sequence of the first record of an empty journal (after a snapshot that covers
    everything before it, when old segments were removed).
    """

    def __cinit__(self, directory, uint64_t segment_size=64 << 20, policy="batch",
                  uint32_t batch_records=512, uint64_t batch_us=1000, uint64_t first_seq=1,
                  uint64_t batch_lag_bytes=16 << 20):
        if policy not in POLICIES:
            raise ValueError(f"unknown durability policy {policy!r}; expected one of {sorted(POLICIES)}")
        if segment_size < MIN_SEGMENT_SIZE or segment_size % PAGE:
            raise ValueError(f"segment_size must be a multiple of {PAGE} and at least {MIN_SEGMENT_SIZE}")
        directory = os.path.abspath(directory)
        encoded = directory.encode()
        if len(encoded) >= 3000:
            raise ValueError("journal directory path too long")
        os.makedirs(directory, exist_ok=True)
        self.j = <Journal*>calloc(1, sizeof(Journal))
        if self.j == NULL:
            raise MemoryError()
        strncpy(self.j.directory, encoded, sizeof(self.j.directory) - 1)
        self.j.fd = -1
        self.j.capacity = segment_size
        self.j.policy = POLICIES[policy]
        self.j.batch_records = max(1, batch_records)
        self.j.batch_ns = batch_us * 1000
        self.j.last_sync_ns = monotonic_ns()
        self.j.max_lag = max(<uint64_t>PAGE, batch_lag_bytes)
        self._open_tail(first_seq)
        if helper_start(self.j) != 0:
            raise OSError(errno, "cannot start the journal's helper thread")

    def _open_tail(self, uint64_t first_seq):
        cdef SegmentView segment
        cdef uint64_t dirty_end = 0, torn_at
        paths = list_segments(self.directory)
        self.torn_offset = -1
        if not paths:
            self.j.next_seq = first_seq
            self._create_segment()
            return
        expect = segment_first_seq(paths[0])
        for index, path in enumerate(paths):
            segment = SegmentView(path)
            try:
                end, count, last, torn = check_segment(segment, index == len(paths) - 1, expect)
                if torn >= 0:
                    torn_at = torn
                    dirty_end = min(torn_at + journal_record_length(lob_load_u32(segment.base + torn_at)),
                                    segment.size)
            finally:
                segment.close()
            expect = last + 1
        self.torn_offset = torn
        self.j.next_seq = expect
        last_path = paths[len(paths) - 1]
        if os.path.getsize(last_path) != self.j.capacity:
            # Segments are created at the configured size; a finished (shrunk) or differently sized
            # last segment is cut at its last valid record and continued in a fresh one.
            os.truncate(last_path, end)
            self._create_segment()
            return
        if segment_map(self.j, last_path.encode(), False) != 0:
            raise OSError(errno, f"cannot map {last_path}")
        self.j.segment_first_seq = segment_first_seq(last_path)
        cdef uint64_t end_offset = end
        self.j.position = end_offset
        if torn >= 0:  # zero the torn record: again only zeros follow the last valid one
            memset(self.j.map + end_offset, 0, dirty_end - end_offset)
        self.j.synced_position = 0
        if self.j.policy != POLICY_NONE and journal_sync(self.j) != 0:
            raise OSError(self.j.error, f"cannot sync {last_path}: {os.strerror(self.j.error)}")

    def _create_segment(self):
        if segment_create(self.j) != 0:
            raise OSError(errno, f"cannot create a journal segment in {self.directory}: {os.strerror(errno)}")

    def __dealloc__(self):
        if self.j != NULL:
            helper_stop(self.j)
            segment_close(self.j, False)
            free(self.j)
            self.j = NULL

    @property
    def directory(self):
        return self.j.directory.decode()

    @property
    def next_seq(self):
        return self.j.next_seq

    @property
    def syncs(self):
        return self.j.syncs

    def append(self, uint32_t session, uint64_t timestamp_ns, frame):
        """Append one frame; returns its journal sequence."""
        cdef const uint8_t[::1] view = memoryview(frame).cast("B")
        cdef uint64_t seq = self.j.next_seq
        if view.shape[0] == 0:
            raise ValueError("empty frame")
        if journal_append(self.j, session, timestamp_ns, &view[0], view.shape[0]) == 0:
            raise OSError(self.j.error, f"journal append failed: {os.strerror(self.j.error)}")
        return seq

    def commit(self):
        """A group commit per the policy (see the class docstring)."""
        cdef int rc
        with nogil:
            rc = journal_commit(self.j, monotonic_ns())
        if rc != 0:
            raise OSError(self.j.error, f"journal sync failed: {os.strerror(self.j.error)}")

    def sync(self):
        """Sync everything appended so far, whatever the policy."""
        cdef int rc
        with nogil:
            rc = journal_sync(self.j) if self.j.map != NULL else 0
        if rc != 0:
            raise OSError(self.j.error, f"journal sync failed: {os.strerror(self.j.error)}")

    def close(self):
        """Sync per policy and close; the newest segment keeps its size so the next writer continues it."""
        helper_stop(self.j)
        if self.j.map != NULL and segment_close(self.j, False) != 0:
            raise OSError(self.j.error, "journal close failed")
