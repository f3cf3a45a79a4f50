"""Journaled processing and journal replay: the engine driven record by record from C.

`process_journaled` is the in-process equivalent of the engine service's loop with a journal: each
inbound record is appended to the journal, then processed; every `batch` records the journal is
committed (per its durability policy) before that batch's output counts as published.
`replay_journal` runs a journal through an engine as fast as possible, optionally writing the
outbound frames to a file: the same input gives the same bytes.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t, uint32_t, uint64_t

from lob.core cimport EngineCore, OutBuf, engine_on_frame, load_u32le, load_u64le
from lob.engine cimport Engine
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
    FLUSH_BYTES = 1 << 22


cdef inline uint64_t monotonic_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <uint64_t>ts.tv_sec * 1000000000 + <uint64_t>ts.tv_nsec


cdef bytes drain(OutBuf* out):
    cdef bytes data = PyBytes_FromStringAndSize(<char*>out.data, out.length)
    out.length = 0
    return data


def process_journaled(Engine engine, JournalWriter writer, inbound, uint32_t batch=64):
    """Journal then process inbound-framed records; returns the execution stream like Engine.process.

    Market data, if the engine makes it, stays in the engine for `take_market_data()`.
    """
    cdef const uint8_t[::1] view = memoryview(inbound).cast("B")
    cdef const uint8_t* p = &view[0] if view.shape[0] else NULL
    cdef size_t size = view.shape[0]
    cdef size_t offset = 0
    cdef uint32_t length, session, in_batch = 0
    cdef uint64_t timestamp
    cdef EngineCore* core = engine.core
    cdef Journal* j = writer.j
    cdef int failed = 0
    with nogil:
        while offset + INBOUND_HEADER <= size:
            length = load_u32le(p + offset)
            if offset + INBOUND_HEADER + length > size:
                break
            session = load_u32le(p + offset + 4)
            timestamp = load_u64le(p + offset + 8)
            if journal_append(j, session, timestamp, p + offset + INBOUND_HEADER, length) == 0:
                failed = 1
                break
            engine_on_frame(core, p + offset + INBOUND_HEADER, length, session, timestamp)
            offset += INBOUND_HEADER + length
            in_batch += 1
            if in_batch == batch:
                in_batch = 0
                if journal_commit(j, monotonic_ns()) != 0:
                    failed = 1
                    break
        if not failed and journal_commit(j, monotonic_ns()) != 0:
            failed = 1
    if failed:
        raise JournalError(f"journal write failed: {os.strerror(j.error)}")
    if offset != size:
        raise ValueError(f"inbound buffer ends inside a record at offset {offset}")
    return drain(&core.exec_out)


cdef uint64_t replay_segment(EngineCore* core, const uint8_t* base, uint64_t end, uint64_t from_seq,
                             uint64_t* last_seq, object out) except? 0:
    cdef uint64_t offset = JOURNAL_FILE_HEADER_LENGTH
    cdef uint64_t seq, count = 0
    cdef uint32_t length
    while offset < end:
        length = load_u32le(base + offset)
        seq = load_u64le(base + offset + 8)
        if seq >= from_seq:
            engine_on_frame(core, base + offset + JOURNAL_RECORD_HEADER_LENGTH, length,
                            load_u32le(base + offset + 24), load_u64le(base + offset + 16))
            count += 1
            last_seq[0] = seq
            if core.exec_out.length >= FLUSH_BYTES or core.md_out.length >= FLUSH_BYTES:
                flush(core, out)
        offset += journal_record_length(length)
    return count


cdef flush(EngineCore* core, object out):
    if out is not None:
        out.write(drain(&core.exec_out))
    else:
        core.exec_out.length = 0
    core.md_out.length = 0


def replay_journal(Engine engine, directory, uint64_t from_seq=1, out=None, progress=None):
    """Run every journal record with seq >= from_seq through `engine`.

    `out`: a binary file that receives the execution stream (outbound framing), or None to drop it.
    `progress`: called with the number of records replayed after each segment.
    Returns (records replayed, last journal sequence seen). A corrupt record raises
    JournalCorruptError before anything from its segment is processed.
    """
    cdef uint64_t total = 0, last_seq = from_seq - 1
    cdef SegmentView segment
    paths = list_segments(directory)
    expect = segment_first_seq(paths[0]) if paths else 1
    for index, path in enumerate(paths):
        segment = SegmentView(path)
        try:
            end, count, last, torn = check_segment(segment, index == len(paths) - 1, expect)
            if last >= from_seq:
                total += replay_segment(engine.core, segment.base, end, from_seq, &last_seq, out)
            expect = last + 1
        finally:
            segment.close()
        if progress is not None:
            progress(total)
    flush(engine.core, out)
    return total, max(last_seq, expect - 1)
