# cython: boundscheck=False, wraparound=False
"""A latency trace of the engine loop, off unless asked for (`lob engine --trace-file PATH`).

For every inbound message the loop writes one 48-byte record into a ring mapped from a file (normally
under /dev/shm): when its fragment handler started, when the core returned, when the poll that read it
had offered its execution frames, its transport and template id, its place in that poll, how many empty
polls came before the poll, and the back-pressure counters of the execution and market-data streams.
It is a side buffer: nothing in it reaches the execution stream or the journal, so replay and
determinism are untouched, and the cost is one clock read per poll and a few stores per message.

Another process (benchmarks/bench_e2e.py --trace) reads the file while the engine runs: `read(path)`
returns the records written so far (the newest `capacity` of them), oldest first. The header's `written`
count is stored with release order after each record is complete.
"""
import mmap
import os
import struct

from libc.stdint cimport uint8_t, uintptr_t

MAGIC = 0x4543415254424F4C    # "LOBTRACE" little-endian
VERSION = 1
HEADER_SIZE = 64
RECORD = struct.Struct("<QQQIHHIIII")
FIELDS = ("received_ns", "matched_ns", "published_ns", "transport", "template_id", "index_in_poll",
          "poll_messages", "idle_polls", "exec_back_pressure", "md_back_pressure")
_HEADER = struct.Struct("<QIIQQ")

assert RECORD.size == sizeof(trace_record_t) == 48 and sizeof(trace_header_t) == HEADER_SIZE


cdef class LatencyTrace:
    """The writer's side: a ring of `capacity` records (rounded up to a power of two) in a new file."""

    def __init__(self, path, capacity=1 << 20):
        cdef uint8_t[::1] view
        cdef uint64_t size = 1024
        if capacity < 1:
            raise ValueError("the trace capacity must be positive")
        while size < capacity:
            size *= 2
        self.path = str(path)
        self.capacity = size
        length = HEADER_SIZE + size * RECORD.size
        self._file = open(self.path, "w+b")
        self._file.truncate(length)
        self._map = mmap.mmap(self._file.fileno(), length)
        self._map[:_HEADER.size] = _HEADER.pack(MAGIC, VERSION, RECORD.size, size, 0)
        view = self._map
        self.t.header = <trace_header_t*>&view[0]
        self.t.records = <trace_record_t*>(<uintptr_t>&view[0] + sizeof(trace_header_t))
        self.t.mask = size - 1
        self.t.poll_first = 0
        self.t.idle_polls = 0
        # Fault the ring in now, not on the message path.
        for offset in range(0, length, mmap.PAGESIZE):
            self._map[offset] = self._map[offset]

    def close(self):
        """Unmap (the file stays for its readers; they remove it)."""
        self.t.header = NULL
        self.t.records = NULL
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:   # a view of it is still alive: the mapping goes with the object
                pass
            self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None


def written(path):
    """How many records the trace at `path` holds so far (all ever written, not only those still in the ring)."""
    with open(path, "rb") as f:
        return _check(path, f.read(HEADER_SIZE))[4]


def read(path, since=0):
    """The records numbered `since` and after in the trace file at `path`, oldest first, as tuples in
    FIELDS order (only the newest `capacity` are still there)."""
    with open(path, "rb") as f:
        magic, version, record_size, capacity, count = _check(path, f.read(HEADER_SIZE))
        first = max(since, count - capacity, 0)
        out = []
        i = first
        while i < count:
            end = min(count, i - i % capacity + capacity)   # up to the end of the ring, then wrap
            f.seek(HEADER_SIZE + (i % capacity) * RECORD.size)
            out.extend(RECORD.iter_unpack(f.read((end - i) * RECORD.size)))
            i = end
    return out


def _check(path, header):
    if len(header) < HEADER_SIZE:
        raise ValueError(f"{path}: not a latency trace (too short)")
    fields = _HEADER.unpack_from(header)
    if fields[0] != MAGIC or fields[1] != VERSION or fields[2] != RECORD.size:
        raise ValueError(f"{path}: not a version {VERSION} latency trace")
    return fields
