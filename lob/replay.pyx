"""Journaled processing and journal replay: the engine driven from C.

`process_journaled` is the in-process equivalent of the engine service's loop with a journal: each
batch of inbound records is appended to the journal, then processed, then the journal is committed
(per its durability policy) before that batch's output counts as published.
`replay_journal` runs a journal through an engine as fast as possible, optionally writing the
outbound frames to a file: the same input gives the same bytes.
"""
from cpython.buffer cimport PyBUF_READ
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.object cimport PyObject
from libc.stdint cimport uint8_t, uint32_t, uint64_t

from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

from lob.core cimport CORE_OK, EngineCore, OutBuf, engine_on_records, load_u32le, load_u64le, store_u32le
from lob.engine cimport Engine, lend_bytes, take_back_bytes
from lob.journal cimport (
    JOURNAL_FILE_HEADER_LENGTH,
    JOURNAL_RECORD_HEADER_LENGTH,
    Journal,
    JournalWriter,
    SegmentView,
    journal_append,
    journal_commit,
    journal_record_length,
)
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

import os

from lob.journal import JournalError, check_segment, list_segments, segment_first_seq

cdef enum:
    INBOUND_HEADER = 16
    FLUSH_BYTES = 1 << 19      # execution stream handed to `out` at a time (stays in cache)
    STAGING_BYTES = 1 << 18   # records copied into inbound framing per engine_on_records call
    # as Engine.process: room for this many execution-stream bytes per inbound byte, to begin with
    OUTPUT_GUESS_FACTOR = 4
    OUTPUT_GUESS_MIN = 1 << 12


cdef inline uint64_t monotonic_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <uint64_t>ts.tv_sec * 1000000000 + <uint64_t>ts.tv_nsec


def process_journaled(Engine engine, JournalWriter writer, inbound, uint32_t batch=64):
    """Journal then process inbound-framed records; returns the execution stream like Engine.process.

    Per batch of `batch` records: append them to the journal, run them through the engine (which works
    a few records ahead to prefetch, as Engine.process does), then commit the journal. As in
    Engine.process, the execution stream is written straight into the bytes object returned. Market
    data, if the engine makes it, stays in the engine for `take_market_data()`.
    """
    cdef const uint8_t[::1] view = memoryview(inbound).cast("B")
    cdef const uint8_t* p = &view[0] if view.shape[0] else NULL
    cdef size_t size = view.shape[0]
    cdef size_t offset = 0, start = 0, consumed = 0
    cdef uint32_t frame_length, in_batch
    cdef EngineCore* core = engine.core
    cdef Journal* j = writer.j
    cdef int failed = 0, rc = CORE_OK
    if batch == 0:
        raise ValueError("batch must be at least 1")
    cdef OutBuf saved
    cdef PyObject* out = lend_bytes(core, OUTPUT_GUESS_FACTOR * size + OUTPUT_GUESS_MIN, &saved)
    with nogil:
        while offset + INBOUND_HEADER <= size:
            start = offset
            in_batch = 0
            while in_batch < batch and offset + INBOUND_HEADER <= size:
                frame_length = load_u32le(p + offset)
                if offset + INBOUND_HEADER + frame_length > size:
                    break
                if journal_append(j, load_u32le(p + offset + 4), load_u64le(p + offset + 8),
                                  p + offset + INBOUND_HEADER, frame_length) == 0:
                    failed = 1
                    break
                offset += INBOUND_HEADER + frame_length
                in_batch += 1
            if in_batch == 0:
                break
            rc = engine_on_records(core, p + start, offset - start, &consumed, NULL, NULL)
            if failed or rc != CORE_OK:
                break
            if journal_commit(j, monotonic_ns()) != 0:
                failed = 1
                break
    result = take_back_bytes(core, out, &saved)
    if failed:
        raise JournalError(f"journal write failed: {os.strerror(j.error)}")
    if rc != CORE_OK:
        core.md_out.length = 0
        raise MemoryError(f"an output buffer could not grow; stopped at the record at offset {start + consumed}")
    if offset != size:
        raise ValueError(f"inbound buffer ends inside a record at offset {offset}")
    return result


cdef class Staging:
    """A reusable buffer of inbound-framed records (engine_on_records input), grown on demand."""
    cdef uint8_t* data
    cdef size_t capacity

    def __cinit__(self, size_t capacity):
        self.data = <uint8_t*>malloc(capacity)
        if self.data == NULL:
            raise MemoryError()
        self.capacity = capacity

    def __dealloc__(self):
        free(self.data)

    cdef int reserve(self, size_t capacity) except -1:
        cdef uint8_t* grown
        if capacity > self.capacity:
            grown = <uint8_t*>realloc(self.data, capacity)
            if grown == NULL:
                raise MemoryError()
            self.data = grown
            self.capacity = capacity
        return 0


cdef uint64_t replay_segment(EngineCore* core, const uint8_t* base, uint64_t end, uint64_t from_seq,
                             uint64_t* last_seq, object out, Staging staging, bint keep_exec) except? 0:
    """Replay the records of one checked segment. They are copied into inbound framing a chunk at a time
    and run with engine_on_records, which (as for Engine.process) works a few records ahead to prefetch."""
    cdef uint64_t offset = JOURNAL_FILE_HEADER_LENGTH
    cdef uint64_t seq, count = 0
    cdef uint32_t length
    cdef size_t used, consumed
    cdef uint8_t* p
    cdef int rc = CORE_OK
    while offset < end:
        with nogil:
            used = 0
            while offset < end:
                length = load_u32le(base + offset)
                seq = load_u64le(base + offset + 8)
                if seq >= from_seq:
                    if used + INBOUND_HEADER + length > staging.capacity:
                        break
                    p = staging.data + used
                    store_u32le(p, length)
                    memcpy(p + 4, base + offset + 24, 4)      # session
                    memcpy(p + 8, base + offset + 16, 8)      # timestamp
                    memcpy(p + INBOUND_HEADER, base + offset + JOURNAL_RECORD_HEADER_LENGTH, length)
                    used += INBOUND_HEADER + length
                    count += 1
                    last_seq[0] = seq
                offset += journal_record_length(length)
            if used:
                rc = engine_on_records(core, staging.data, used, &consumed, NULL, NULL)
        if rc != CORE_OK:
            raise MemoryError("an output buffer could not grow during replay")
        if used == 0 and offset < end:
            staging.reserve(INBOUND_HEADER + load_u32le(base + offset))   # a frame larger than the buffer
        if keep_exec:
            core.md_out.length = 0
        elif core.exec_out.length >= FLUSH_BYTES or core.md_out.length >= FLUSH_BYTES:
            flush(core, out)
    return count


cdef flush(EngineCore* core, object out):
    if out is not None and core.exec_out.length:
        view = PyMemoryView_FromMemory(<char*>core.exec_out.data, core.exec_out.length, PyBUF_READ)
        try:
            out.write(view)
        finally:
            view.release()
    core.exec_out.length = 0
    core.md_out.length = 0


def replay_journal(Engine engine, directory, uint64_t from_seq=1, out=None, progress=None):
    """Run every journal record with seq >= from_seq through `engine`.

    `out`: a binary file that receives the execution stream (outbound framing), or None to drop it;
    its write() gets a memoryview of the engine's buffer, valid only during the call.
    `progress`: called with the number of records replayed after each segment.
    Returns (records replayed, last journal sequence seen). A corrupt record raises
    JournalCorruptError before anything from its segment is processed.
    """
    total, last_seq = replay(engine, directory, from_seq, out, progress, False)
    flush(engine.core, out)
    return total, last_seq


def replay_journal_bytes(Engine engine, directory, uint64_t from_seq=1, progress=None):
    """Like replay_journal, returning the whole execution stream as bytes, which the engine writes in
    place as Engine.process does. Returns (records replayed, last journal sequence seen, stream)."""
    cdef EngineCore* core = engine.core
    cdef size_t guess = OUTPUT_GUESS_FACTOR * sum(os.path.getsize(p) for p in list_segments(directory))
    cdef OutBuf saved
    cdef PyObject* out = lend_bytes(core, guess + OUTPUT_GUESS_MIN, &saved)
    try:
        total, last_seq = replay(engine, directory, from_seq, None, progress, True)
    finally:
        core.md_out.length = 0
        result = take_back_bytes(core, out, &saved)
    return total, last_seq, result


cdef replay(Engine engine, directory, uint64_t from_seq, out, progress, bint keep_exec):
    cdef uint64_t total = 0, last_seq = from_seq - 1
    cdef SegmentView segment
    cdef Staging staging = Staging(STAGING_BYTES)
    paths = list_segments(directory)
    expect = segment_first_seq(paths[0]) if paths else 1
    for index, path in enumerate(paths):
        segment = SegmentView(path)
        try:
            end, count, last, torn = check_segment(segment, index == len(paths) - 1, expect)
            if last >= from_seq:
                total += replay_segment(engine.core, segment.base, end, from_seq, &last_seq, out, staging, keep_exec)
            expect = last + 1
        finally:
            segment.close()
        if progress is not None:
            progress(total)
    return total, max(last_seq, expect - 1)
