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

cdef enum:
    JOURNAL_FILE_HEADER_LENGTH = 64
    JOURNAL_RECORD_HEADER_LENGTH = 32
    JOURNAL_VERSION = 1

cdef enum JournalPolicy:
    POLICY_NONE = 0     # page cache only: survives a process crash, not a power loss
    POLICY_BATCH = 1    # msync every N records or T microseconds, whichever comes first
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
    uint64_t syncs
    int error                 # errno of the first failure; appends fail once it is set

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
