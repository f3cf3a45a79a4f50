# The inbound journal (write-ahead log): segmented, memory-mapped, append-only.
#
# Segment file `journal-<first seq, 20 digits>.seg`: a 64-byte file header, then records, each
# 8-byte aligned:
#   0  u32 length      SBE frame length (0 marks the end of written data)
#   4  u32 crc32c      over bytes [8, 32 + length) of the record
#   8  u64 seq         journal sequence, 1, 2, ... without gaps across segments
#  16  u64 timestamp   receive time in ns: the only clock matching ever sees
#  24  u32 session     sender's session id
#  28  u32 reserved    0
#  32  SBE frame, then zero padding to a multiple of 8
from libc.stdint cimport uint8_t, uint32_t, uint64_t

cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_t:
        pass
    ctypedef struct pthread_mutex_t:
        pass
    ctypedef struct pthread_cond_t:
        pass

cdef enum:
    JOURNAL_FILE_HEADER_LENGTH = 64
    JOURNAL_RECORD_HEADER_LENGTH = 32
    JOURNAL_VERSION = 1

cdef enum JournalPolicy:
    POLICY_NONE = 0     # page cache only: survives a process crash, not a power loss
    POLICY_BATCH = 1    # group commit: msync every N records or T microseconds, on a syncer thread
    POLICY_EVERY = 2    # msync before the effects of any record are published

cdef struct Journal:
    char directory[3072]
    int fd
    uint8_t* map
    uint64_t capacity         # segment size in bytes
    uint64_t position         # next write offset in the current segment
    uint64_t synced_position  # everything before this offset has been msync'ed
    uint64_t next_seq
    uint64_t segment_first_seq
    int policy
    uint32_t batch_records
    uint64_t batch_ns
    uint32_t pending          # records appended since the last sync
    uint64_t last_sync_ns
    uint64_t syncs            # syncs done (every) or group commits handed to the syncer thread (batch)
    int error                 # errno of the first failure; appends fail once it is set
    # The helper threads (see journal.pyx) and what they share with the writer, guarded by lock.
    pthread_t prefaulter
    pthread_t syncer          # batch policy only
    pthread_mutex_t lock
    pthread_cond_t prefault_wake
    pthread_cond_t sync_wake
    pthread_cond_t done       # the writer waits here for a helper
    uint64_t prefaulted       # pages of the current segment before this offset are mapped writable
    uint64_t sync_target      # batch: the syncer syncs the current segment up to this offset
    uint64_t max_lag          # batch: a group commit waits while more than this many bytes are unsynced
    uint64_t last_sync_started
    int prefault_busy         # a helper is working on the current mapping without the lock
    int sync_busy
    int sync_error            # errno of a failed msync on the syncer
    int helpers               # threads started
    int helper_state          # 0: no helpers, 1: running, 2: asked to stop

cdef uint32_t crc32c(uint32_t crc, const uint8_t* data, size_t length) noexcept nogil
cdef size_t journal_record_length(uint32_t frame_length) noexcept nogil
cdef int journal_append(Journal* j, uint32_t session, uint64_t timestamp_ns,
                        const uint8_t* frame, uint32_t length) noexcept nogil
cdef int journal_commit(Journal* j, uint64_t now_ns) noexcept nogil
cdef int journal_sync(Journal* j) noexcept nogil

cdef class JournalWriter:
    cdef Journal* j
    cdef public object torn_offset  # offset of the torn record dropped on open, or -1

cdef class SegmentView:
    cdef readonly str path
    cdef readonly uint64_t size
    cdef readonly uint64_t first_seq
    cdef const uint8_t* base
    cdef object _mmap
    cdef object _view
